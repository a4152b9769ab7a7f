"""The `SageMaker Model Package State Change` event, shaped as AWS documents it. Pure.

SageMaker emits it on the automation account's default bus whenever a package's approval status
changes; the detail mirrors DescribeModelPackage (times as ISO strings, the version as an integer).
There is no previous-status field, as in AWS.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

SOURCE = "aws.sagemaker"
DETAIL_TYPE = "SageMaker Model Package State Change"
_DETAIL_FIELDS = (
    "ModelPackageGroupName", "ModelPackageVersion", "ModelPackageArn", "ModelPackageName", "ModelPackageDescription",
    "CreationTime", "InferenceSpecification", "ModelPackageStatus", "ModelPackageStatusDetails",
    "CertifyForMarketplace", "ModelApprovalStatus", "ApprovalDescription", "MetadataProperties", "ModelMetrics",
    "CustomerMetadataProperties", "LastModifiedTime", "CreatedBy", "LastModifiedBy",
)  # fmt: skip


def _iso(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    if isinstance(value, str) and value and value[0].isdigit() and "T" not in value:
        try:
            return _iso(datetime.fromisoformat(value))
        except ValueError:
            return value
    return value


def state_change_entry(package: dict[str, Any]) -> dict[str, Any]:
    """A PutEvents entry for the package as DescribeModelPackage returns it after the change."""
    detail = {k: _iso(package[k]) for k in _DETAIL_FIELDS if package.get(k) is not None}
    if "ModelPackageVersion" in detail:
        detail["ModelPackageVersion"] = int(detail["ModelPackageVersion"])
    detail.setdefault("CertifyForMarketplace", False)
    return {
        "Source": SOURCE,
        "DetailType": DETAIL_TYPE,
        "Resources": [package["ModelPackageArn"]],
        "Detail": json.dumps(detail, default=str),
        "EventBusName": "default",
    }
