"""Service connections of the local pipeline runner, answered by the running twin as Azure DevOps would.

In Azure DevOps, `AWSShellScript@1` with `awsCredentials: aws-staging` gets the staging deploy role's
credentials through OIDC: Azure DevOps issues a token for the connection (`sub` sc://<org>/<project>/<name>)
and the AWS Toolkit trades it with sts:AssumeRoleWithWebIdentity. Locally the same happens against the twin:
the twin's issuer (mlops/local/oidc.py) signs the token, the twin's STS verifies it, and the role's trust
policy from infra/templates decides. A connection the role does not trust gets no credentials.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import boto3
import botocore.exceptions

from mlops.core.aws import error_message
from mlops.core.errors import MlopsError, PipelineRunError
from mlops.local.errors import TwinError
from mlops.local.oidc import Issuer, connection_roles
from mlops.local.twin import TwinState, environment, running

DEFAULT_CONNECTIONS: dict[str, str] = {
    "aws-automation": "automation",
    "aws-staging": "staging",
    "aws-prod": "prod",
}
SESSION_SECONDS = 3600


def connection_credentials(state: TwinState, directory: Path, name: str, account: str) -> dict[str, str]:
    """What the AWS Toolkit exports for one OIDC service connection: role credentials from a web identity."""
    try:
        issuer = Issuer.load(directory)
        role_arn = connection_roles(directory)[account]
    except TwinError as exc:  # the step that needs the connection fails, as in the runner's other errors
        raise PipelineRunError(f"service connection {name!r}: {exc.message}", hint=exc.hint) from exc
    token = issuer.token(issuer.project, name)
    sts = boto3.client("sts", endpoint_url=state.url, region_name=state.region)
    try:
        credentials = sts.assume_role_with_web_identity(
            RoleArn=role_arn,
            RoleSessionName=f"ado-{name}"[:64],
            WebIdentityToken=token,
            DurationSeconds=SESSION_SECONDS,
        )["Credentials"]
    except botocore.exceptions.ClientError as exc:
        raise PipelineRunError(
            f"service connection {name!r} could not assume {role_arn} with its OIDC token "
            f"(sub sc://{issuer.organization}/{issuer.project}/{name}): {error_message(exc)}",
            hint="the role's trust policy (infra/templates) must name this connection; check its name in the YAML",
        ) from exc
    return {
        **environment(state, account),
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
    }


class TwinServiceConnections:
    """`connection name -> environment` for the runner; the twin is looked up at first use, not at import."""

    def __init__(
        self,
        directory: Path,
        connections: Mapping[str, str] | None = None,
        *,
        twin_ready: Callable[[], None] = lambda: None,
    ) -> None:
        """`twin_ready` blocks until the twin is up (or raises why it is not): `mlops demo` starts the
        twin beside the build's first stage, which needs no AWS."""
        self.directory = directory
        self.connections = dict(DEFAULT_CONNECTIONS if connections is None else connections)
        self.twin_ready = twin_ready
        self._cache: dict[str, dict[str, str]] = {}

    def __call__(self, name: str) -> Mapping[str, str]:
        account = self.connections.get(name)
        if account is None:
            raise PipelineRunError(
                f"unknown service connection {name!r}; the local runner maps {sorted(self.connections)}",
                hint="fix the name in the YAML or map it: --service-connection NAME=automation|staging|prod",
            )
        if name not in self._cache:
            try:
                self.twin_ready()
            except MlopsError as exc:  # the runner fails the step on its own errors, and goes on
                raise PipelineRunError(
                    f"service connection {name!r} needs the local twin, which did not come up: {exc.message}",
                    hint=exc.hint or "see the twin's server.log",
                ) from exc
            state = running(self.directory)
            if state is None:
                raise PipelineRunError(
                    f"service connection {name!r} needs the local twin, which is not running ({self.directory})",
                    hint="start it with `mlops --profile local local up`",
                )
            self._cache[name] = connection_credentials(state, self.directory, name, account)
        return self._cache[name]
