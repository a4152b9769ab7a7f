"""Service connections of the local pipeline runner, answered by the running twin as Azure DevOps would.

In Azure DevOps, `AWSShellScript@1` with `awsCredentials: aws-deploy-staging` gets the staging deploy role's
credentials through OIDC: Azure DevOps issues a token for the connection and the AWS Toolkit trades it with
sts:AssumeRoleWithWebIdentity. Locally the same happens against the twin: the twin's issuer (mlops/local/oidc.py)
signs the token (legacy or Entra format, as the connection is configured), the twin's STS verifies it, and the
role's trust policy from infra/templates decides. Each connection is configured with the role of its purpose
(mlops/core/identities.py, written by the twin's bootstrap); a connection the role does not trust gets no
credentials.
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

SESSION_SECONDS = 3600  # aws.rolecredential.maxduration of our pipelines is at least this


def connection_credentials(
    state: TwinState,
    directory: Path,
    name: str,
    *,
    entra: bool | None = None,
    duration_seconds: int = SESSION_SECONDS,
) -> dict[str, str]:
    """What the AWS Toolkit exports for one OIDC service connection: role credentials from a web identity.

    `entra`: which issuer's token to present (default: as the twin configured the connection)."""
    try:
        issuer = Issuer.load(directory)
        roles = connection_roles(directory)
    except TwinError as exc:  # the step that needs the connection fails, as in the runner's other errors
        raise PipelineRunError(f"service connection {name!r}: {exc.message}", hint=exc.hint) from exc
    configured = roles.get(name)
    if configured is None:
        raise PipelineRunError(
            f"unknown service connection {name!r}: the twin's Azure DevOps has {sorted(roles)}",
            hint="use the names of azure_devops.connections in mlops.yaml (docs/security.md lists them)",
        )
    role_arn = str(configured["role_arn"])
    use_entra = bool(configured.get("entra")) if entra is None else entra
    token = issuer.token(issuer.project, name, entra=use_entra)
    subject = (
        issuer.entra_subject(issuer.project, name)
        if use_entra
        else f"sc://{issuer.organization}/{issuer.project}/{name}"
    )
    sts = boto3.client("sts", endpoint_url=state.url, region_name=state.region)
    try:
        credentials = sts.assume_role_with_web_identity(
            RoleArn=role_arn,
            RoleSessionName=f"ado-{name}"[:64],
            WebIdentityToken=token,
            DurationSeconds=duration_seconds,
        )["Credentials"]
    except botocore.exceptions.ClientError as exc:
        raise PipelineRunError(
            f"service connection {name!r} could not assume {role_arn} with its OIDC token (sub {subject}): "
            f"{error_message(exc)}",
            hint="the role's trust policy (infra/templates) must name this connection; check its name in the YAML",
        ) from exc
    return {
        **environment(state, str(configured["account"])),
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
    }


class TwinServiceConnections:
    """`connection name -> environment` for the runner; the twin is looked up at first use, not at import."""

    def __init__(
        self,
        directory: Path,
        aliases: Mapping[str, str] | None = None,
        *,
        twin_ready: Callable[[str], None] = lambda _name: None,
    ) -> None:
        """`aliases`: extra names, each standing for one of the twin's connections (`mlops pipelines run
        --service-connection NAME=CONNECTION`). `twin_ready(connection)` blocks until the twin can serve that
        connection (or raises why it cannot): `mlops demo` starts the twin beside the build's first stage, which
        needs no AWS."""
        self.directory = directory
        self.aliases = dict(aliases or {})
        self.twin_ready = twin_ready
        self._cache: dict[str, dict[str, str]] = {}

    def __call__(self, name: str) -> Mapping[str, str]:
        if name not in self._cache:
            try:
                self.twin_ready(self.aliases.get(name, name))
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
            self._cache[name] = connection_credentials(state, self.directory, self.aliases.get(name, name))
        return self._cache[name]
