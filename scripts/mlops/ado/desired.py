"""What the Azure DevOps project should hold, rendered from `mlops.yaml` and `identities(config)`. Pure.

The check shapes are those of Microsoft's REST spec (approvalsAndChecks 7.1, CheckConfiguration):
an approval is check type `8c6f20a7-…` ("Approval"), branch control is the "Task Check" type running the
`evaluatebranchProtection` task check, and the exclusive lock is its own type.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlops.core.config import Config
from mlops.core.identities import PIPELINE_FILES, PIPELINE_VARIANTS, identities, role_arn

# How our objects are told from foreign ones that carry the same name: environments, service
# connections and the variable group carry it in their description; pipelines live in our folder.
MARKER = "Managed by mlops ado"

APPROVAL_TYPE = {"id": "8c6f20a7-a545-4486-9777-f762fafe0d4d", "name": "Approval"}
TASK_CHECK_TYPE = {"id": "fe1de3ee-a436-41b4-bb20-f6eb4cb879a7", "name": "Task Check"}
EXCLUSIVE_LOCK_TYPE = {"id": "2ef31ad6-baa0-403a-8b45-2cbc9b4e5563", "name": "ExclusiveLock"}
BRANCH_CONTROL_DEFINITION = {"id": "86b05a0c-73e6-4f7d-b3cf-e38f3b39a75b", "name": "evaluatebranchProtection"}
BRANCH_CONTROL_NAME = "Branch control"

# The Build security namespace and its "Queue builds" bit: what the bridge's identity needs on the deploy
# pipeline to start runs through the Runs API.
BUILD_NAMESPACE = "33344d9c-fc72-4d6f-aba5-fa317101a7e9"
QUEUE_BUILDS = 128

AWS_ENDPOINT_TYPE = "AWS"  # the AWS Toolkit for Azure DevOps' service connection type
AWS_ENDPOINT_URL = "https://aws.amazon.com/"
LOCK_TIMEOUT_MINUTES = 43200


@dataclass(frozen=True)
class PipelineSpec:
    key: str  # a key of PIPELINE_FILES
    name: str
    yaml_path: str
    folder: str


@dataclass(frozen=True)
class CheckSpec:
    kind: str  # approval | branch-control | exclusive-lock
    timeout_minutes: int
    settings: dict[str, Any] = field(default_factory=dict, hash=False, compare=True)

    @property
    def type(self) -> dict[str, str]:
        if self.kind == "approval":
            return APPROVAL_TYPE
        if self.kind == "branch-control":
            return TASK_CHECK_TYPE
        return EXCLUSIVE_LOCK_TYPE


@dataclass(frozen=True)
class EnvironmentSpec:
    name: str
    description: str
    pipelines: tuple[str, ...]
    checks: tuple[CheckSpec, ...]


@dataclass(frozen=True)
class ConnectionSpec:
    name: str
    description: str
    role_arn: str
    session_name: str
    pipelines: tuple[str, ...]


@dataclass(frozen=True)
class VariableGroupSpec:
    name: str
    description: str
    variables: tuple[tuple[str, str], ...]
    pipelines: tuple[str, ...]


@dataclass(frozen=True)
class Desired:
    project: str
    default_branch: str
    repository: str
    approvers: str
    bridge_identity: str
    pipelines: tuple[PipelineSpec, ...]
    environments: tuple[EnvironmentSpec, ...]
    connections: tuple[ConnectionSpec, ...]
    variable_group: VariableGroupSpec

    def pipeline(self, key: str) -> PipelineSpec:
        return next(p for p in self.pipelines if p.key == key)


def approval_settings(approver_id: str, approver_name: str, environment: str) -> dict[str, Any]:
    """An approval check's settings once the approver group's id is known (Approval in the REST spec)."""
    return {
        "approvers": [{"id": approver_id, "displayName": approver_name}],
        "executionOrder": "anyOrder",
        "minRequiredApprovers": 1,
        "instructions": f"Approve the deployment to {environment} ({MARKER}).",
        "blockedApprovers": [],
        "requesterCannotBeApprover": True,
    }


def branch_control_settings(branch: str) -> dict[str, Any]:
    return {
        "displayName": BRANCH_CONTROL_NAME,
        "definitionRef": {**BRANCH_CONTROL_DEFINITION, "version": "0.0.1"},
        "inputs": {"allowedBranches": branch, "ensureProtectionOfBranch": "false", "allowUnknownStatusBranch": "false"},
        "retryInterval": 5,
    }


def _with_variants(keys: tuple[str, ...]) -> tuple[str, ...]:
    """A resource's pipelines, plus the variants that stand in for one of them (the webhook deploy)."""
    return keys + tuple(variant for variant, of in PIPELINE_VARIANTS.items() if of in keys and variant not in keys)


def desired(config: Config) -> Desired:
    ado = config.azure_devops
    setup = ado.setup
    ids = identities(config)
    pipelines = tuple(
        PipelineSpec(key, f"{setup.pipeline_prefix}-{key}", path, setup.pipeline_folder)
        for key, path in PIPELINE_FILES.items()
    )
    environments = []
    for environment in ids.environments:
        checks = [
            CheckSpec("branch-control", setup.approval_timeout_minutes, branch_control_settings(setup.default_branch))
        ]
        if environment.approval:
            # The approver's id is resolved at plan time (an identity lookup); the plan fills the settings in.
            checks.append(CheckSpec("approval", setup.approval_timeout_minutes))
        if environment.exclusive_lock:
            checks.append(CheckSpec("exclusive-lock", LOCK_TIMEOUT_MINUTES))
        environments.append(
            EnvironmentSpec(
                environment.name,
                f"{MARKER}: deployments of {', '.join(environment.pipelines)}",
                _with_variants(environment.pipelines),
                tuple(checks),
            )
        )
    connections = tuple(
        ConnectionSpec(
            connection.name,
            f"{MARKER}: {connection.purpose} in the {connection.account} account (OIDC)",
            role_arn(config, connection),  # the role of its purpose (mlops-registry-read, mlops-infra, ...)
            f"ado-{connection.name}"[:64],
            _with_variants(connection.pipelines),
        )
        for connection in ids.connections
    )
    variables = (
        ("MLOPS_REGION", config.region),
        ("MLOPS_MODEL_PACKAGE_GROUP", config.build.model_package_group),
        *(
            (f"MLOPS_ACCOUNT_{name.upper()}", getattr(config.accounts, name).id)
            for name in ("automation", "staging", "prod")
        ),
    )
    group = VariableGroupSpec(
        setup.variable_group, f"{MARKER}: non-secret settings of the pipelines", variables, tuple(PIPELINE_FILES)
    )
    return Desired(
        ado.project,
        setup.default_branch,
        setup.repository or ado.project,
        setup.approvers,
        setup.bridge_identity,
        pipelines,
        tuple(environments),
        connections,
        group,
    )
