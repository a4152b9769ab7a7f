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
# Roles the templates create besides each stage's deploy role (infra/templates; passed as their parameters).
REGISTRY_READ_ROLE = "mlops-registry-read"  # automation: Verify, and the stage deploy roles' registry reads
STAGING_PASS_ROLE = "mlops-staging-pass"  # noqa: S105 - a role name (automation: writes the staging pass)
INFRA_ROLE = "mlops-infra"  # each account: the infrastructure connection (change sets on our stack)
CFN_EXECUTION_ROLE = "mlops-cloudformation"  # each account: what CloudFormation acts as (RoleARN)
# The Azure DevOps pipelines of this repository: key -> YAML file (what `mlops ado` creates).
PIPELINE_FILES: dict[str, str] = {
    "build": "azure-pipelines/model-build.yml",
    "deploy": "azure-pipelines/model-deploy.yml",
    "infrastructure": "azure-pipelines/infrastructure.yml",
    # The deploy pipeline's webhook-triggered variant (ADO_TRIGGER=webhook): it acts with the deploy
    # pipeline's connections and environments (`mlops ado` authorises it wherever "deploy" is).
    "deploy-webhook": "azure-pipelines/model-deploy-webhook.yml",
    "rollback": "azure-pipelines/model-rollback.yml",
}
# Pipelines that act with another pipeline's permissions: variant -> the pipeline it stands in for.
PIPELINE_VARIANTS: dict[str, str] = {"deploy-webhook": "deploy"}


@dataclass(frozen=True)
class Connection:
    """An AWS service connection (the AWS Toolkit's endpoint type, OIDC) and the role it is configured with."""

    purpose: str  # build | registry-read | deploy-staging | deploy-prod | infra-<account>
    name: str
    account: str  # a key of `accounts:`
    pipelines: tuple[str, ...]  # keys of PIPELINE_FILES allowed to use it (pipeline permissions)
    environment: str | None  # when set: usable only in a deployment job on this environment
    role_name: str = ""  # the OIDC role in `account` the connection is configured with


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

    def for_pipeline(self, pipeline: str) -> tuple[Connection, ...]:
        """The connections a pipeline (a key of PIPELINE_FILES) is permitted to use."""
        return tuple(c for c in self.connections if pipeline in c.pipelines)


def stage_role_name(config: Config, stage: str) -> str:
    """The deploy role of a stage: deploy.<stage>.role_name, else its account's deploy_role_name."""
    settings = config.deploy.stage(stage)
    return settings.role_name or str(getattr(config.accounts, settings.account).deploy_role_name)


def role_arn(config: Config, connection: Connection) -> str:
    account_id = getattr(config.accounts, connection.account).id
    return f"arn:aws:iam::{account_id}:role/{connection.role_name}"


def identities(config: Config) -> Identities:
    names = config.azure_devops.connections
    envs = config.azure_devops.environments
    build_role = config.accounts.automation.deploy_role_name
    connections = [
        Connection("build", names.build, "automation", ("build",), None, build_role),
        Connection("registry-read", names.registry_read, "automation", ("deploy",), None, REGISTRY_READ_ROLE),
        Connection(
            "deploy-staging",
            names.deploy_staging,
            config.deploy.staging.account,
            ("deploy",),
            envs.staging,
            stage_role_name(config, "staging"),
        ),
        Connection(
            "deploy-prod",
            names.deploy_prod,
            config.deploy.prod.account,
            ("deploy", "rollback"),
            envs.prod,
            stage_role_name(config, "prod"),
        ),
    ]
    connections += [
        Connection(
            f"infra-{account}",
            f"{names.infra_prefix}-{account}",
            account,
            ("infrastructure",),
            f"{envs.infra_prefix}-{account}",
            INFRA_ROLE,
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
