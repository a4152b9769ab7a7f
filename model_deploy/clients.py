"""The AWS clients a deployment talks to, per account, and how to tell "not found" from a real error.

Built once from sessions by the CLI and passed in everywhere else, so tests hand in moto-backed or
Stubber-wrapped clients and nothing reaches for ambient credentials behind their back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import botocore.exceptions

from mlops.core.aws import error_code

if TYPE_CHECKING:
    import boto3
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker import SageMakerClient


@dataclass(frozen=True)
class StageClients:
    """Clients in the target (staging or prod) account, through the assumed deploy role."""

    sagemaker: SageMakerClient
    autoscaling: Any  # application-autoscaling (no boto3-stubs extra installed for it)
    cloudwatch: Any
    ssm: Any
    runtime: Any  # sagemaker-runtime

    @classmethod
    def from_session(cls, session: boto3.Session) -> StageClients:
        return cls(
            sagemaker=session.client("sagemaker"),
            autoscaling=session.client("application-autoscaling"),
            cloudwatch=session.client("cloudwatch"),
            ssm=session.client("ssm"),
            runtime=session.client("sagemaker-runtime"),
        )


@dataclass(frozen=True)
class AutomationClients:
    """Clients in the automation account (registry, build artifacts, staging-pass records)."""

    sagemaker: SageMakerClient
    s3: S3Client
    ssm: Any

    @classmethod
    def from_session(cls, session: boto3.Session) -> AutomationClients:
        return cls(sagemaker=session.client("sagemaker"), s3=session.client("s3"), ssm=session.client("ssm"))


_MISSING_CODES = frozenset({"ResourceNotFound", "ResourceNotFoundException", "NoSuchEntity", "ParameterNotFound"})


def is_missing(exc: botocore.exceptions.ClientError) -> bool:
    """SageMaker says "not found" as ValidationException 'Could not find ...' for hosting resources."""
    code = error_code(exc)
    message = str(exc.response.get("Error", {}).get("Message", "")).lower()
    if code in _MISSING_CODES:
        return True
    return code == "ValidationException" and any(
        phrase in message for phrase in ("could not find", "does not exist", "not found")
    )
