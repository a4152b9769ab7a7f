"""The model registry of the automation account: find a package of our group, set its approval status.

Approving is what fires the registry event that starts the deploy pipeline; the reviewer's reason is
kept on the package (`ApprovalDescription`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import botocore.exceptions

from mlops.core.aws import error_message
from mlops.core.errors import MlopsError

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient

    from mlops.core.config import Config


class RegistryError(MlopsError):
    """A model package cannot be found, or is not one of ours."""


def resolve_package(sm: SageMakerClient, config: Config, arn: str | None, version: int | None) -> dict[str, Any]:
    group = config.build.model_package_group
    if (arn is None) == (version is None):
        raise RegistryError("expected exactly one of --model-package-arn and --version", hint="pass one of them")
    # Versioned packages are addressed by ARN (DescribeModelPackage takes no "group/version" name).
    name = arn or f"arn:aws:sagemaker:{config.region}:{config.accounts.automation.id}:model-package/{group}/{version}"
    try:
        package: dict[str, Any] = dict(sm.describe_model_package(ModelPackageName=name))
    except botocore.exceptions.ClientError as exc:
        raise RegistryError(
            f"model package {name} not found: {error_message(exc)}",
            hint=f"list the group's packages with `mlops registry list` (group {group})",
        ) from exc
    if package.get("ModelPackageGroupName") != group:
        raise RegistryError(
            f"model package {name} belongs to group {package.get('ModelPackageGroupName')!r}, "
            f"not to the configured group {group!r}",
            hint="approve packages of this project's group only (build.model_package_group in mlops.yaml)",
        )
    return package


def set_status(sm: SageMakerClient, package: dict[str, Any], status: str, reason: str) -> bool:
    """Returns False when the package already had that status (nothing is written)."""
    if package.get("ModelApprovalStatus") == status:
        return False
    sm.update_model_package(
        ModelPackageArn=package["ModelPackageArn"],
        ModelApprovalStatus=status,  # type: ignore[arg-type]
        ApprovalDescription=reason[:1024],
    )
    return True
