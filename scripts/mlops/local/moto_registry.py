"""Make moto's UpdateModelPackage behave like SageMaker's, in this process (mock_aws or a threaded server).

moto 5.2.5 sets every field UpdateModelPackage can carry (approval status, approval description,
customer metadata) to what the request holds, None when absent, and replaces the metadata map. SageMaker
leaves absent fields alone and merges CustomerMetadataProperties. Without this, the bridge's write-back
(metadata only) would "un-approve" the package in moto, and `mlops registry approve` would wipe the git commit
and build id from the package's metadata. tests/bridge/test_moto_quirks.py pins the moto behaviour, so this
patch is noticed when moto changes. Used by the bridge tests and bench; the local twin needs it too.

moto 5.2.5 also drops `ModelCard` and `ModelLifeCycle` from CreateModelPackage and UpdateModelPackage
(botocore's model has both on both operations, and DescribeModelPackage returns them): the same patch
keeps them on the package and returns them, so the model card and the lifecycle stage round-trip.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.core.responses import ActionResult
from moto.sagemaker.models import ModelPackage, SageMakerModelBackend
from moto.sagemaker.responses import SageMakerResponse

_ORIGINAL_UPDATE = SageMakerModelBackend.update_model_package
_ORIGINAL_CREATE_RESPONSE = SageMakerResponse.create_model_package
_ORIGINAL_UPDATE_RESPONSE = SageMakerResponse.update_model_package
_ORIGINAL_DESCRIBE = ModelPackage.gen_response_object
# Request members moto ignores, kept per package (attribute name on moto's object, request/response key).
_KEPT_MEMBERS = (("mlops_model_card", "ModelCard"), ("mlops_model_life_cycle", "ModelLifeCycle"))
_active = 0  # nesting depth: several twins (or a twin and a test) may hold the patch in one process


def _aws_update(
    self: Any,
    model_package_arn: str,
    model_approval_status: str | None,
    approval_description: str | None,
    customer_metadata_properties: dict[str, str] | None,
    *args: Any,
    **kwargs: Any,
) -> str:
    package = self.describe_model_package(model_package_arn)
    merged = {**(package.customer_metadata_properties or {}), **(customer_metadata_properties or {})}
    return _ORIGINAL_UPDATE(
        self,
        model_package_arn,
        model_approval_status if model_approval_status is not None else package.model_approval_status,
        approval_description if approval_description is not None else package.approval_description,
        merged,
        *args,
        **kwargs,
    )


def _keep_members(response: Any, result: ActionResult) -> ActionResult:
    """Store the request's ModelCard/ModelLifeCycle on the package the call created or updated.

    An update replaces each member it carries as a whole (SageMaker's UpdateModelPackage does the same)
    and leaves the absent ones alone."""
    arn = result.result["ModelPackageArn"]  # type: ignore[index]
    package = response.sagemaker_backend.describe_model_package(arn)
    for attribute, member in _KEPT_MEMBERS:
        value = response._get_param(member)
        if value is not None:
            setattr(package, attribute, value)
    return result


def _create_response(self: Any) -> ActionResult:
    return _keep_members(self, _ORIGINAL_CREATE_RESPONSE(self))


def _update_response(self: Any) -> ActionResult:
    return _keep_members(self, _ORIGINAL_UPDATE_RESPONSE(self))


def _describe(self: Any) -> dict[str, Any]:
    described: dict[str, Any] = _ORIGINAL_DESCRIBE(self)
    for attribute, member in _KEPT_MEMBERS:
        value = getattr(self, attribute, None)
        if value is not None:
            described[member] = value
    return described


_PATCHES: tuple[tuple[Any, str, Any, Any], ...] = (
    (SageMakerModelBackend, "update_model_package", _aws_update, _ORIGINAL_UPDATE),
    (SageMakerResponse, "create_model_package", _create_response, _ORIGINAL_CREATE_RESPONSE),
    (SageMakerResponse, "update_model_package", _update_response, _ORIGINAL_UPDATE_RESPONSE),
    (ModelPackage, "gen_response_object", _describe, _ORIGINAL_DESCRIBE),
)


@contextmanager
def aws_update_model_package_semantics() -> Iterator[None]:
    """Patch for the duration; nested or overlapping holders are counted, so the last one out restores
    moto's own methods whatever order they exit in."""
    global _active
    for owner, name, patched, _original in _PATCHES:
        setattr(owner, name, patched)
    _active += 1
    try:
        yield
    finally:
        _active -= 1
        if _active == 0:
            for owner, name, _patched, original in _PATCHES:
                setattr(owner, name, original)
