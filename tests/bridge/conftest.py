"""Fixtures of the bridge tests: moto for AWS, the fake Azure DevOps server on loopback, the real SDK.

The SDK caches API locations on disk: a per-session directory keeps tests from reading or writing the
user's home, and is set before any test module imports azure.devops.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache, cached_property
from typing import Any

_ADO_CACHE = tempfile.mkdtemp(prefix="mlops-bridge-tests-ado-cache-")
os.environ["AZURE_DEVOPS_CACHE_DIR"] = _ADO_CACHE

import boto3  # noqa: E402
import pytest  # noqa: E402
from moto import mock_aws  # noqa: E402

from mlops.local.fake_ado import FakeAzureDevOps  # noqa: E402
from mlops.local.moto_registry import aws_update_model_package_semantics  # noqa: E402
from mlops_bridge import handler as handler_module  # noqa: E402
from mlops_bridge.bridge import Bridge  # noqa: E402
from mlops_bridge.handler import build_bridge  # noqa: E402

REGION = "us-east-1"
GROUP = "breast-cancer"
OTHER_GROUP = "not-ours"
TABLE = "mlops-bridge-idempotency"
PAT = "pat-0123456789"


@pytest.fixture(scope="session", autouse=True)
def _remove_ado_cache() -> Iterator[None]:
    yield
    shutil.rmtree(_ADO_CACHE, ignore_errors=True)


@cache
def _shared_session() -> boto3.Session:
    # One session for all tests: its loader caches the parsed service models, which makes creating a
    # client ~10x cheaper than with a fresh session. moto's state is per test (mock_aws), not per session.
    return boto3.Session(region_name=REGION)


class LambdaContext:
    function_name = "mlops-bridge"
    aws_request_id = "test-request"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class Aws:
    session: boto3.Session
    secret_arn: str
    sleeps: list[float] = field(default_factory=list)

    @cached_property
    def sagemaker(self) -> Any:
        return self.session.client("sagemaker")

    def register(self, group: str = GROUP, status: str = "PendingManualApproval") -> str:
        sagemaker = self.sagemaker
        groups = sagemaker.list_model_package_groups()["ModelPackageGroupSummaryList"]
        if group not in {g["ModelPackageGroupName"] for g in groups}:
            sagemaker.create_model_package_group(ModelPackageGroupName=group)
        return sagemaker.create_model_package(
            ModelPackageGroupName=group,
            ModelApprovalStatus=status,
            InferenceSpecification={
                "Containers": [
                    {
                        "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/xgb:3.2-0",
                        "ModelDataUrl": "s3://b/model.tar.gz",
                    }
                ],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            CustomerMetadataProperties={"git.commit": "0123abcd", "build.id": "20260101.1"},
            MetadataProperties={"GeneratedBy": "arn:aws:sagemaker:us-east-1:123456789012:pipeline/b/execution/x1"},
        )["ModelPackageArn"]

    def set_status(self, arn: str, status: str) -> None:
        self.sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus=status)

    def metadata(self, arn: str) -> dict[str, str]:
        return self.sagemaker.describe_model_package(ModelPackageName=arn).get("CustomerMetadataProperties", {})

    def idempotency_items(self) -> list[dict[str, Any]]:
        return self.session.client("dynamodb").scan(TableName=TABLE)["Items"]


def state_change_event(aws: Aws, arn: str, *, event_id: str = "evt-1", status: str | None = None) -> dict[str, Any]:
    """The event as SageMaker emits it: `detail` mirrors DescribeModelPackage (times as ISO strings)."""
    described = aws.sagemaker.describe_model_package(ModelPackageName=arn)
    detail = {k: v for k, v in described.items() if k != "ResponseMetadata"}
    detail.setdefault("LastModifiedTime", detail["CreationTime"])  # moto sets it only after an update
    for key in ("CreationTime", "LastModifiedTime"):
        detail[key] = detail[key].strftime("%Y-%m-%dT%H:%M:%SZ")
    detail.pop("CreatedBy", None)
    detail.pop("LastModifiedBy", None)
    if status is not None:
        detail["ModelApprovalStatus"] = status
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "SageMaker Model Package State Change",
        "source": "aws.sagemaker",
        "account": "123456789012",
        "time": detail["LastModifiedTime"],
        "region": REGION,
        "resources": [arn],
        "detail": detail,
    }


@pytest.fixture
def aws() -> Iterator[Aws]:
    with mock_aws(), aws_update_model_package_semantics():
        session = _shared_session()
        session.client("dynamodb").create_table(
            TableName=TABLE,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        secret_arn = session.client("secretsmanager").create_secret(
            Name="mlops/bridge/ado-auth", SecretString=json.dumps({"type": "pat", "token": PAT})
        )["ARN"]
        yield Aws(session=session, secret_arn=secret_arn)


@pytest.fixture
def fake_ado() -> Iterator[FakeAzureDevOps]:
    with FakeAzureDevOps("fabrikam", pat=PAT) as fake:
        yield fake


@pytest.fixture
def bridge_env(aws: Aws, fake_ado: FakeAzureDevOps) -> dict[str, str]:
    return {
        "ADO_ORG_URL": fake_ado.org_url,
        "ADO_PROJECT": "mlops",
        "ADO_PIPELINE_ID": "2",
        "ADO_AUTH_SECRET_ARN": aws.secret_arn,
        "IDEMPOTENCY_TABLE": TABLE,
        "MODEL_PACKAGE_GROUPS": f"{GROUP},other-allowed",
        "ADO_HTTP_TIMEOUT_SECONDS": "5",
    }


@pytest.fixture
def make_bridge(aws: Aws, bridge_env: dict[str, str]):  # type: ignore[no-untyped-def]
    def make(**overrides: str) -> Bridge:
        return build_bridge({**bridge_env, **overrides}, session=aws.session, sleep=aws.sleeps.append)

    return make


@pytest.fixture
def lambda_env(monkeypatch: pytest.MonkeyPatch, bridge_env: dict[str, str]) -> Iterator[dict[str, str]]:
    """The bridge's environment as process variables, for code that reads os.environ (handler, CLI)."""
    for name, value in bridge_env.items():
        monkeypatch.setenv(name, value)
    handler_module.reset()
    yield bridge_env
    handler_module.reset()


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def bridge_logs() -> Iterator[list[logging.LogRecord]]:
    """Records the bridge's own log lines (the Powertools logger of service 'mlops-bridge')."""
    from mlops_bridge.log import logger

    records = _Records()
    logger.addHandler(records)
    yield records.records
    logger.removeHandler(records)
