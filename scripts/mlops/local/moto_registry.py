"""Make moto's UpdateModelPackage behave like SageMaker's, in this process (mock_aws or a threaded server).

moto 5.2.5 sets every field UpdateModelPackage can carry (approval status, approval description,
customer metadata) to what the request holds, None when absent, and replaces the metadata map. SageMaker
leaves absent fields alone and merges CustomerMetadataProperties. Without this, the bridge's write-back
(metadata only) would "un-approve" the package in moto, and `mlops registry approve` would wipe the git commit
and build id from the package's metadata. tests/bridge/test_moto_quirks.py pins the moto behaviour, so this
patch is noticed when moto changes. Used by the bridge tests and bench; the local twin needs it too.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.sagemaker.models import SageMakerModelBackend

_ORIGINAL_UPDATE = SageMakerModelBackend.update_model_package
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


@contextmanager
def aws_update_model_package_semantics() -> Iterator[None]:
    """Patch for the duration; nested or overlapping holders are counted, so the last one out restores
    moto's own method whatever order they exit in."""
    global _active
    SageMakerModelBackend.update_model_package = _aws_update  # type: ignore[method-assign]
    _active += 1
    try:
        yield
    finally:
        _active -= 1
        if _active == 0:
            SageMakerModelBackend.update_model_package = _ORIGINAL_UPDATE  # type: ignore[method-assign]
