"""What a model package is, and whether it may be deployed to a stage. Pure: no AWS SDK.

`verify` never trusts the caller: the ARN handed to `mlops deploy` (by the bridge, a person or a
pipeline parameter) only says which package to look at. Everything that decides whether it may be
deployed is read again from the automation account's registry (`PackageInfo.from_description`)
and, for prod, from the staging-pass record that `mlops test --stage staging` wrote.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops.core.errors import PackageRefused

_ARN = re.compile(
    r"^arn:(?P<partition>aws[a-z-]*):sagemaker:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):"
    r"model-package/(?P<group>[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62})/(?P<version>[1-9]\d*)$"
)


@dataclass(frozen=True)
class PackageArn:
    arn: str
    partition: str
    region: str
    account: str
    group: str
    version: int

    @classmethod
    def parse(cls, arn: str) -> PackageArn:
        match = _ARN.match(arn.strip())
        if match is None:
            raise PackageRefused(
                f"expected a versioned model package ARN "
                f"'arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>', found {arn!r}",
                hint="pass the ModelPackageArn of the approved version (`mlops registry list` shows it)",
            )
        return cls(
            arn=arn.strip(),
            partition=match["partition"],
            region=match["region"],
            account=match["account"],
            group=match["group"],
            version=int(match["version"]),
        )


@dataclass(frozen=True)
class PackageInfo:
    """The fields of DescribeModelPackage a deployment relies on."""

    arn: str
    group: str
    version: int
    approval_status: str
    package_status: str
    image: str
    model_data_url: str
    environment: Mapping[str, str]
    git_commit: str
    build_id: str
    metrics_uri: str | None
    generated_by: str | None
    customer_metadata: Mapping[str, str] = field(default_factory=dict)
    data_quality_baseline: tuple[str, str] | None = None  # (statistics URI, constraints URI), Model Monitor format
    container_count: int = 1

    @classmethod
    def from_description(cls, described: Mapping[str, Any]) -> PackageInfo:
        containers = described.get("InferenceSpecification", {}).get("Containers", [])
        first: Mapping[str, Any] = containers[0] if containers else {}
        metadata = dict(described.get("CustomerMetadataProperties") or {})
        statistics = described.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {})
        drift = described.get("DriftCheckBaselines", {}).get("ModelDataQuality", {})
        baseline = None
        if drift.get("Statistics", {}).get("S3Uri") and drift.get("Constraints", {}).get("S3Uri"):
            baseline = (drift["Statistics"]["S3Uri"], drift["Constraints"]["S3Uri"])
        return cls(
            arn=str(described["ModelPackageArn"]),
            group=str(described.get("ModelPackageGroupName", "")),
            version=int(described.get("ModelPackageVersion", 0)),
            approval_status=str(described.get("ModelApprovalStatus", "")),
            package_status=str(described.get("ModelPackageStatus", "")),
            image=str(first.get("Image", "")),
            model_data_url=str(first.get("ModelDataUrl", "")),
            environment=dict(first.get("Environment") or {}),
            git_commit=metadata.get("git_commit", "unknown"),
            build_id=metadata.get("build_id", "unversioned"),
            metrics_uri=statistics.get("S3Uri"),
            generated_by=described.get("MetadataProperties", {}).get("GeneratedBy"),
            customer_metadata=metadata,
            data_quality_baseline=baseline,
            container_count=len(containers),
        )


@dataclass(frozen=True)
class StagingPass:
    """The record `mlops test --stage staging` writes when the suite passes; prod requires it."""

    package_arn: str
    passed_at: str
    endpoint_name: str
    measurements: Mapping[str, float | str] = field(default_factory=dict)


def check_arn_location(arn: PackageArn, *, automation_account: str, region: str) -> None:
    """Before any call: the package must live in our automation account and region."""
    if arn.account != automation_account:
        raise PackageRefused(
            f"model package {arn.arn} is in account {arn.account}; expected the automation account "
            f"{automation_account} (accounts.automation.id)",
            hint="deploy only packages registered by this project's build; check the ARN and the --profile",
        )
    if arn.region != region:
        raise PackageRefused(
            f"model package {arn.arn} is in region {arn.region}; expected {region} (region in mlops.yaml)",
            hint="use the ARN from this project's registry, or fix region",
        )


def verify(
    arn: PackageArn,
    package: PackageInfo | None,
    *,
    stage: str,
    expected_group: str,
    staging_pass: StagingPass | None,
) -> PackageInfo:
    """Refuse anything but an approved, complete package of our group (and, for prod, one that passed staging)."""
    if package is None:
        raise PackageRefused(
            f"model package {arn.arn} does not exist in the registry",
            hint="check the ARN; `mlops registry list` shows the packages of the group",
        )
    if package.group != expected_group:
        raise PackageRefused(
            f"model package {arn.arn} belongs to group {package.group!r}; expected {expected_group!r} "
            "(build.model_package_group)",
            hint="this pipeline deploys only its own group's packages",
        )
    if package.approval_status != "Approved":
        raise PackageRefused(
            f"model package {arn.arn} is {package.approval_status or 'without approval status'}; expected Approved",
            hint="approve it in SageMaker Studio or with `mlops registry approve`, then deploy again",
        )
    if package.package_status not in ("Completed", ""):
        raise PackageRefused(f"model package {arn.arn} is {package.package_status}; expected Completed")
    if package.container_count != 1 or not package.image or not package.model_data_url:
        raise PackageRefused(
            f"model package {arn.arn} has {package.container_count} container(s); expected exactly one with an "
            "Image and a ModelDataUrl",
            hint="register packages through `mlops build run` (model_build/pipeline.py)",
        )
    if stage == "prod":
        if staging_pass is None:
            raise PackageRefused(
                f"model package {arn.arn} has no staging-pass record; prod requires that the same package passed "
                "`mlops test --stage staging`",
                hint=f"deploy it to staging and run the staging tests first: mlops deploy --stage staging "
                f"--model-package-arn {arn.arn} && mlops test --stage staging",
            )
        if staging_pass.package_arn != arn.arn:
            raise PackageRefused(
                f"the staging-pass record is for {staging_pass.package_arn}; expected {arn.arn}",
                hint="run the staging tests against this package before deploying it to prod",
            )
    return package
