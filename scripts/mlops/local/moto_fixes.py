"""Two moto 5.2.5 defects that the templates' resources hit, fixed in this process (the twin's server).

- moto's CloudFormation creates an AWS::KMS::Key with its KeyPolicy as a mapping, where the KMS API stores
  text; every later DescribeKey, GetKeyPolicy or ListKeys of that key then fails with HTTP 500 (moto parses
  the policy with json.loads). KMS keeps a key policy as a JSON document: store it as one.
- moto's S3 evaluates a bucket policy's statements for object requests, but answers DENIED for any statement
  whose condition it cannot evaluate, a Deny whose condition does not hold included
  (IAMPolicyStatement._check_conditions): the templates' `DenyInsecureTransport` (aws:SecureTransport false)
  then refuses every object request, over TLS or not. AWS evaluates bucket policies with the identity policies
  of the caller; moto's half of it is switched off, and the policies stay stored for a real evaluation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.iam.access_control import PermissionResult
from moto.kms.models import Key
from moto.s3.models import FakeBucket


@contextmanager
def key_policy_as_text() -> Iterator[None]:
    original = Key.__dict__["create_from_cloudformation_json"]

    def create(cls: Any, resource_name: str, cloudformation_json: Any, *args: Any, **kwargs: Any) -> Any:
        properties = cloudformation_json.get("Properties", {})
        if isinstance(properties.get("KeyPolicy"), dict):
            properties = {**properties, "KeyPolicy": json.dumps(properties["KeyPolicy"])}
            cloudformation_json = {**cloudformation_json, "Properties": properties}
        return original.__func__(cls, resource_name, cloudformation_json, *args, **kwargs)

    Key.create_from_cloudformation_json = classmethod(create)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        Key.create_from_cloudformation_json = original  # type: ignore[method-assign]


@contextmanager
def no_partial_bucket_policy_evaluation() -> Iterator[None]:
    original = FakeBucket.get_permission

    def neutral(self: Any, action: str, resource: str) -> Any:
        return PermissionResult.NEUTRAL

    FakeBucket.get_permission = neutral  # type: ignore[method-assign]
    try:
        yield
    finally:
        FakeBucket.get_permission = original  # type: ignore[method-assign]
