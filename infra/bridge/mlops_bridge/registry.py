"""The model registry: re-check the package before starting a run, and record the run on it afterwards.

The event is a claim, not a fact: it may be stale (rejected since), replayed from the DLQ days later, or
forged by anything allowed to put events on the bus. DescribeModelPackage is the source of truth.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from .errors import BridgeError, RegistryMismatchError, WriteBackError
from .events import APPROVED, StateChange

RUN_ID_KEY = "ado.deployRunId"
RUN_URL_KEY = "ado.deployRunUrl"
PIPELINE_ID_KEY = "ado.deployPipelineId"
TRIGGER_KEY = "ado.deployTrigger"
EVENT_ID_KEY = "ado.deployEventId"
# SageMaker's CustomerMetadataValue (botocore sagemaker service-2.json): 1-256 characters of
# [\p{L}\p{Z}\p{N}_.:/=+\-@]. moto accepts anything, SageMaker refuses the rest (a web URL's `?`, say).
METADATA_VALUE_MAX = 256
_METADATA_PUNCTUATION = frozenset("_.:/=+-@")
_METADATA_CATEGORIES = ("L", "Z", "N")  # Unicode letters, separators, numbers: Java's \p{L}, \p{Z}, \p{N}


@dataclass(frozen=True)
class RegistryState:
    approval_status: str
    customer_metadata: dict[str, str] = field(default_factory=dict)
    created: datetime | None = None

    @property
    def approved(self) -> bool:
        return self.approval_status == APPROVED


def read_package(sagemaker: Any, change: StateChange, allowed_groups: frozenset[str]) -> RegistryState:
    """Describe the package and check it is the one the event names, in an allowed group."""
    arn = change.model_package_arn
    try:
        described = sagemaker.describe_model_package(ModelPackageName=arn)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        message = str(error.get("Message", "")).lower()
        if error.get("Code") in ("ValidationException", "ResourceNotFound") and (
            "exist" in message or "not found" in message
        ):
            raise RegistryMismatchError(
                f"event {change.event_id} names model package {arn}, but the registry has no such package",
                hint="the package was deleted or the event is forged; check the registry and discard the DLQ message",
            ) from exc
        raise BridgeError(
            f"could not describe model package {arn}: {error.get('Code')}: {error.get('Message')}",
            hint="check the bridge role's sagemaker:DescribeModelPackage permission; Lambda retries the event",
        ) from exc
    group = described.get("ModelPackageGroupName")
    version = described.get("ModelPackageVersion")
    if group not in allowed_groups:
        raise RegistryMismatchError(
            f"model package {arn} belongs to group {group!r} in the registry: expected one of {sorted(allowed_groups)}",
            hint="only packages of MODEL_PACKAGE_GROUPS start a deploy; check the event's origin",
        )
    if group != change.group or version != change.version:
        raise RegistryMismatchError(
            f"event {change.event_id} says {change.group!r} version {change.version} for {arn}, "
            f"but the registry says {group!r} version {version}",
            hint="the event does not describe this package; check the event's origin",
        )
    metadata = described.get("CustomerMetadataProperties") or {}
    created = described.get("CreationTime")
    return RegistryState(
        approval_status=str(described.get("ModelApprovalStatus")),
        customer_metadata=dict(metadata),
        created=created if isinstance(created, datetime) else None,
    )


def is_metadata_value(value: str) -> bool:
    """True when SageMaker accepts `value` as a CustomerMetadataValue (pattern and length of its API model)."""
    return 1 <= len(value) <= METADATA_VALUE_MAX and all(
        char in _METADATA_PUNCTUATION or unicodedata.category(char).startswith(_METADATA_CATEGORIES) for char in value
    )


def run_metadata(run: dict[str, Any]) -> dict[str, str]:
    """What is written on the package: only values SageMaker accepts.

    The run's web URL (`.../_build/results?buildId=N`) holds a `?`, which CustomerMetadataValue refuses;
    the run's REST URL (`{org}/{project}/_apis/build/builds/N`) names the same run and has none. A value
    that still does not fit (an unusual project name) is left out: the run id and pipeline id always fit."""
    candidates = {
        TRIGGER_KEY: str(run["trigger"]),
        EVENT_ID_KEY: str(run["eventId"]),
        RUN_ID_KEY: None if run.get("runId") is None else str(run["runId"]),
        PIPELINE_ID_KEY: None if run.get("pipelineId") is None else str(run["pipelineId"]),
        RUN_URL_KEY: run.get("runApiUrl"),
    }
    return {key: value for key, value in candidates.items() if value and is_metadata_value(value)}


def record_run(sagemaker: Any, arn: str, metadata: dict[str, str], existing: dict[str, str]) -> bool:
    """Write the run onto the package; False when it is already there.

    Skipping an unchanged write matters: an UpdateModelPackage emits another state-change event, whose
    (deduplicated) handling would otherwise write again and loop. The whole map is sent, existing keys
    included: SageMaker merges the keys, but moto 5.2.5 replaces the map (and would drop the git commit).
    The approval status is deliberately not sent: re-sending "Approved" could undo a rejection made since.
    """
    if all(existing.get(key) == value for key, value in metadata.items()):
        return False
    try:
        # Tags would be the obvious place, but tagging a versioned package ARN is unsupported in places
        # (moto answers 500); CustomerMetadataProperties is shown on the package in Studio.
        sagemaker.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={**existing, **metadata})
    except ClientError as exc:
        error = exc.response.get("Error", {})
        raise WriteBackError(
            f"the deploy run started, but recording it on {arn} failed: {error.get('Code')}: {error.get('Message')}",
            hint="check sagemaker:UpdateModelPackage on the bridge role; a retry records it without a second run",
        ) from exc
    return True
