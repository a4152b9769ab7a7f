"""Service connections of the local pipeline runner, answered by the running twin.

In Azure DevOps, `AWSShellScript@1` with `awsCredentials: aws-staging` gets the staging account's
role credentials through OIDC. Locally the same name maps to a twin account, and the credentials are
what `mlops local env --account staging` prints (sts:AssumeRole into the account's deploy role).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from mlops.core.errors import PipelineRunError
from mlops.local.twin import environment, running

DEFAULT_CONNECTIONS: dict[str, str] = {
    "aws-automation": "automation",
    "aws-staging": "staging",
    "aws-prod": "prod",
}


class TwinServiceConnections:
    """`connection name -> environment` for the runner; the twin is looked up at first use, not at import."""

    def __init__(self, directory: Path, connections: Mapping[str, str] | None = None) -> None:
        self.directory = directory
        self.connections = dict(DEFAULT_CONNECTIONS if connections is None else connections)
        self._cache: dict[str, dict[str, str]] = {}

    def __call__(self, name: str) -> Mapping[str, str]:
        account = self.connections.get(name)
        if account is None:
            raise PipelineRunError(
                f"unknown service connection {name!r}; the local runner maps {sorted(self.connections)}",
                hint="fix the name in the YAML or map it: --service-connection NAME=automation|staging|prod",
            )
        if name not in self._cache:
            state = running(self.directory)
            if state is None:
                raise PipelineRunError(
                    f"service connection {name!r} needs the local twin, which is not running ({self.directory})",
                    hint="start it with `mlops --profile local local up`",
                )
            self._cache[name] = environment(state, account)
        return self._cache[name]
