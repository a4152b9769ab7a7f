"""The package's ModelLifeCycle follows its deployments: `Staging`, then `Prod`, once a stage serves it.

The build sets `Registered` (model_build.card); a deployment or a rollback that leaves a stage's endpoint
serving a package sets that stage on it, also when the plan was empty (the endpoint already served it), so
re-running a deploy repairs a stage that a failed write left behind. A failed write fails the command:
the endpoint is live, and the error says that re-running the same deploy records the stage.
"""

from __future__ import annotations

from collections.abc import Callable

import botocore.exceptions

from mlops.core.aws import error_message
from mlops.core.errors import AwsError
from model_deploy.clients import AutomationClients

STAGE_NAMES = {"staging": "Staging", "prod": "Prod"}
DEPLOYED = "Deployed"


def stage_lifecycle(stage: str, endpoint_name: str, account_id: str, when: str) -> dict[str, str]:
    if stage not in STAGE_NAMES:
        raise ValueError(f"expected a stage in {sorted(STAGE_NAMES)}, found {stage!r}")
    return {
        "Stage": STAGE_NAMES[stage],
        "StageStatus": DEPLOYED,
        "StageDescription": f"served by endpoint {endpoint_name} in account {account_id} since {when}"[:1024],
    }


def deployed_since(lifecycle: dict[str, str]) -> str | None:
    """The ISO time `stage_lifecycle` wrote into the description (sortable), or None for another writer's."""
    description = lifecycle.get("StageDescription", "")
    _, found, when = description.rpartition(" since ")
    return when if found and when.endswith("Z") else None


def record_stage(
    automation: AutomationClients,
    package_arn: str,
    lifecycle: dict[str, str],
    progress: Callable[[str], None] = lambda _m: None,
) -> None:
    try:
        automation.sagemaker.update_model_package(
            ModelPackageArn=package_arn,
            ModelLifeCycle={
                "Stage": lifecycle["Stage"],
                "StageStatus": lifecycle["StageStatus"],
                "StageDescription": lifecycle["StageDescription"],
            },
        )
    except botocore.exceptions.ClientError as exc:
        raise AwsError(
            f"the endpoint serves {package_arn}, but its lifecycle stage {lifecycle['Stage']} could not be "
            f"recorded on the package: {error_message(exc)}",
            hint="re-run the same `mlops deploy` (an empty plan records the stage); the role needs "
            "sagemaker:UpdateModelPackage on the group's packages",
        ) from exc
    progress(f"lifecycle stage of {package_arn}: {lifecycle['Stage']} ({lifecycle['StageStatus']})")
