"""Parse and classify the `SageMaker Model Package State Change` event. Pure: no AWS, no HTTP.

A malformed event raises `MalformedEventError` (it must reach the DLQ, not vanish); a well-formed event
that is not an approval of one of our groups is classified as ignored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import MalformedEventError

SOURCE = "aws.sagemaker"
DETAIL_TYPE = "SageMaker Model Package State Change"
APPROVAL_STATUSES = ("Approved", "Rejected", "PendingManualApproval")
APPROVED = "Approved"
# Bounded as SageMaker bounds them: group names are 1-63 characters of [a-zA-Z0-9-] (ModelPackageGroupName
# in botocore's model), versions are integers. Unbounded fields would let a forged event carry megabytes
# into the idempotency item (400 KB at most) and the pipeline's parameters.
_PACKAGE_ARN = re.compile(
    r"^arn:aws[a-z-]{0,10}:sagemaker:[a-z0-9-]{1,32}:\d{12}:model-package/"
    r"(?P<group>[a-zA-Z0-9](?:-*[a-zA-Z0-9]){0,62})/(?P<version>[1-9]\d{0,9})$",
    re.IGNORECASE,
)
# EventBridge event ids are UUIDs; this also keeps them within SageMaker's CustomerMetadataValue pattern.
_EVENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
MAX_EVENT_ID = 128
_RULE_HINT = "the EventBridge rule must match source 'aws.sagemaker' and this detail-type only (infra/ bridge rule)"


@dataclass(frozen=True)
class StateChange:
    event_id: str
    model_package_arn: str
    group: str
    version: int
    approval_status: str
    account: str | None = None
    region: str | None = None


@dataclass(frozen=True)
class Decision:
    start_run: bool
    reason: str


def parse_event(event: object) -> StateChange:
    if not isinstance(event, Mapping):
        raise MalformedEventError(
            f"expected an EventBridge event (a JSON object), got {type(event).__name__}", hint=_RULE_HINT
        )
    event_id = event.get("id")
    if not isinstance(event_id, str) or not event_id:
        raise MalformedEventError(f"expected a non-empty string 'id' on the event, got {event_id!r}", hint=_RULE_HINT)
    if not _EVENT_ID.match(event_id):
        shown = event_id if len(event_id) <= 80 else f"{event_id[:40]}... ({len(event_id)} characters)"
        raise MalformedEventError(
            f"expected the event 'id' to be an EventBridge id (at most {MAX_EVENT_ID} characters of letters, "
            f"digits and ._:-), got {shown!r}",
            hint="EventBridge gives every event a UUID; an id like this one is forged or hand-made: discard it",
        )
    if event.get("source") != SOURCE:
        raise MalformedEventError(
            f"event {event_id}: expected source {SOURCE!r}, got {event.get('source')!r}", hint=_RULE_HINT
        )
    if event.get("detail-type") != DETAIL_TYPE:
        raise MalformedEventError(
            f"event {event_id}: expected detail-type {DETAIL_TYPE!r}, got {event.get('detail-type')!r}", hint=_RULE_HINT
        )
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        raise MalformedEventError(f"event {event_id}: expected a 'detail' object, got {type(detail).__name__}")

    arn = _string(detail, "ModelPackageArn", event_id)
    arn_match = _PACKAGE_ARN.match(arn)
    if arn_match is None:
        shown = arn if len(arn) <= 200 else f"{arn[:100]}... ({len(arn)} characters)"
        raise MalformedEventError(
            f"event {event_id}: expected detail.ModelPackageArn like "
            f"'arn:aws:sagemaker:<region>:<account>:model-package/<group of 1-63 characters>/<version>', "
            f"got {shown!r}"
        )
    group = _string(detail, "ModelPackageGroupName", event_id)
    version = detail.get("ModelPackageVersion")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise MalformedEventError(
            f"event {event_id}: expected detail.ModelPackageVersion to be a positive integer, got {version!r}"
        )
    status = detail.get("ModelApprovalStatus")
    if status not in APPROVAL_STATUSES:
        raise MalformedEventError(
            f"event {event_id}: expected detail.ModelApprovalStatus in {', '.join(APPROVAL_STATUSES)}, got {status!r}"
        )
    # SageMaker lower-cases names inside ARNs, so the group is compared without case.
    if arn_match["group"].lower() != group.lower() or int(arn_match["version"]) != version:
        raise MalformedEventError(
            f"event {event_id}: ModelPackageArn {arn} does not match group {group!r} version {version}"
        )
    resources = event.get("resources", [])
    if not isinstance(resources, list) or (resources and arn not in resources):
        raise MalformedEventError(f"event {event_id}: expected 'resources' to list {arn}, got {resources!r}")
    return StateChange(
        event_id=event_id,
        model_package_arn=arn,
        group=group,
        version=version,
        approval_status=str(status),
        account=_optional_string(event, "account"),
        region=_optional_string(event, "region"),
    )


def decide(change: StateChange, allowed_groups: frozenset[str]) -> Decision:
    if change.group not in allowed_groups:
        return Decision(False, f"group {change.group!r} is not one of MODEL_PACKAGE_GROUPS {sorted(allowed_groups)}")
    if change.approval_status != APPROVED:
        return Decision(False, f"approval status is {change.approval_status}, not {APPROVED}")
    return Decision(True, "approved package of an allowed group")


def template_parameters(change: StateChange) -> dict[str, str]:
    """The deploy pipeline's template parameters (Azure DevOps takes strings only).

    One deploy pipeline serves every use case: `useCase` picks its config. A use case's model package group
    is named after it (mlops/core/use_cases.py), so the group is the use case.
    """
    return {
        "useCase": change.group,
        "modelPackageArn": change.model_package_arn,
        "modelPackageGroup": change.group,
        "modelPackageVersion": str(change.version),
        "eventId": change.event_id,
    }


def _string(detail: Mapping[str, Any], key: str, event_id: str) -> str:
    value = detail.get(key)
    if not isinstance(value, str) or not value:
        raise MalformedEventError(f"event {event_id}: expected a non-empty string detail.{key}, got {value!r}")
    return value


def _optional_string(event: Mapping[str, Any], key: str) -> str | None:
    value = event.get(key)
    return value if isinstance(value, str) and value else None
