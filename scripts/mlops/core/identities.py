"""Who may act where: the Azure DevOps service connections and environments, derived from `mlops.yaml`.

The one source of the names that the pipeline YAML, the CloudFormation templates, the docs, `mlops ado`
and the twin's fake Azure DevOps must agree on. One connection per purpose, each an OIDC role in the
account it acts in; prod credentials belong only to the prod deployment job on the prod environment.
Pure module: no AWS or Azure SDK.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlops.core.config import Config

ACCOUNTS = ("automation", "staging", "prod")
# The Azure DevOps pipelines of this repository: key -> YAML file (what `mlops ado` creates).
PIPELINE_FILES: dict[str, str] = {
    "build": "azure-pipelines/model-build.yml",
    "deploy": "azure-pipelines/model-deploy.yml",
    "infrastructure": "azure-pipelines/infrastructure.yml",
    "rollback": "azure-pipelines/model-rollback.yml",
}


@dataclass(frozen=True)
class Connection:
    """An AWS service connection (the AWS Toolkit's endpoint type, OIDC) and the role it is configured with."""

    purpose: str  # build | registry-read | deploy-staging | deploy-prod | infra-<account>
    name: str
    account: str  # a key of `accounts:`
    pipelines: tuple[str, ...]  # keys of PIPELINE_FILES allowed to use it (pipeline permissions)
    environment: str | None  # when set: usable only in a deployment job on this environment


@dataclass(frozen=True)
class Environment:
    name: str
    pipelines: tuple[str, ...]  # keys of PIPELINE_FILES allowed to deploy to it
    approval: bool  # an approval check (approver group and timeout from `mlops ado`)
    exclusive_lock: bool


@dataclass(frozen=True)
class Identities:
    connections: tuple[Connection, ...]
    environments: tuple[Environment, ...]

    def connection(self, purpose: str) -> Connection:
        for connection in self.connections:
            if connection.purpose == purpose:
                return connection
        raise KeyError(f"no service connection for purpose {purpose!r}; known: {[c.purpose for c in self.connections]}")

    def by_name(self, name: str) -> Connection | None:
        return next((c for c in self.connections if c.name == name), None)

    def environment(self, name: str) -> Environment | None:
        return next((e for e in self.environments if e.name == name), None)


def identities(config: Config) -> Identities:
    names = config.azure_devops.connections
    envs = config.azure_devops.environments
    connections = [
        Connection("build", names.build, "automation", ("build",), None),
        Connection("registry-read", names.registry_read, "automation", ("deploy",), None),
        Connection("deploy-staging", names.deploy_staging, "staging", ("deploy",), envs.staging),
        Connection("deploy-prod", names.deploy_prod, "prod", ("deploy", "rollback"), envs.prod),
    ]
    connections += [
        Connection(
            f"infra-{account}",
            f"{names.infra_prefix}-{account}",
            account,
            ("infrastructure",),
            f"{envs.infra_prefix}-{account}",
        )
        for account in ACCOUNTS
    ]
    environments = [
        Environment(envs.staging, ("deploy",), approval=False, exclusive_lock=False),
        Environment(envs.prod, ("deploy", "rollback"), approval=True, exclusive_lock=True),
    ]
    environments += [
        Environment(
            f"{envs.infra_prefix}-{account}", ("infrastructure",), approval=account == "prod", exclusive_lock=True
        )
        for account in ACCOUNTS
    ]
    return Identities(tuple(connections), tuple(environments))
