"""Fixtures for the deployment tests: the local config, moto with three accounts, a registered package.

moto holds the control plane (registry, hosting, SSM, scaling, alarms) per account; the stage account is
reached by sts:AssumeRole as in the cloud. What moto lacks (UpdateEndpoint) is tested with Stubber in
test_update_rollback.py; the endpoint suite runs against a stand-in runtime serving the real model.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mlops.core.aws import assume_role_session
from mlops.core.config import Config, load_config
from mlops.local.moto_registry import aws_update_model_package_semantics
from model_deploy.clients import AutomationClients, StageClients
from model_deploy.deploy import stage_role_arn

REPO_ROOT = Path(__file__).resolve().parents[2]
IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.2-0"
ENVIRONMENT = {"SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code"}


@pytest.fixture(scope="session")
def local_config() -> Config:
    # moto (mock_aws) has no monitoring schedules; the twin has (tests/local, tests/e2e): prod's monitor is
    # switched off for these moto-only tests.
    return load_config(
        REPO_ROOT / "mlops.yaml", profile="local", environ={"MLOPS__DEPLOY__PROD__MONITOR__ENABLED": "false"}
    )


@dataclass
class Accounts:
    automation: AutomationClients
    staging: StageClients
    prod: StageClients
    calls: dict[str, list[str]]  # account name -> API operations called, in order

    def stage(self, name: str) -> StageClients:
        return self.staging if name == "staging" else self.prod

    def writes(self, account: str) -> list[str]:
        prefixes = ("Create", "Update", "Put", "Delete", "Register", "Deregister", "Start")
        return [c for c in self.calls[account] if c.startswith(prefixes)]


def _record_calls(client: Any, log: list[str]) -> None:
    client.meta.events.register("before-call.*.*", lambda model, **_: log.append(model.name))


_LOADER_SESSION = boto3.Session(region_name="us-east-1")


def _sharing_models(_ambient: boto3.Session, session: boto3.Session) -> boto3.Session:
    """Let every test's sessions share one botocore loader: service models are parsed once per run, not
    per session (three accounts x five clients per test made set-up cost more than the tests)."""
    loader = _LOADER_SESSION._session.get_component("data_loader")
    session._session.register_component("data_loader", loader)
    return session


@pytest.fixture
def aws(local_config: Config, monkeypatch: pytest.MonkeyPatch) -> Iterator[Accounts]:
    # Not MOTO_ACCOUNT_ID: with it set, moto puts every call in that account, assumed roles included.
    monkeypatch.delenv("MOTO_ACCOUNT_ID", raising=False)
    # SageMaker's UpdateModelPackage semantics: a lifecycle update leaves the approval alone.
    with mock_aws(), aws_update_model_package_semantics():
        ambient = boto3.Session(region_name=local_config.region)
        automation_role = local_config.accounts.automation.role_arn()
        base = _sharing_models(
            ambient, assume_role_session(ambient, automation_role, "test-automation", local_config.region)
        )
        calls: dict[str, list[str]] = {"automation": [], "staging": [], "prod": []}
        automation = AutomationClients.from_session(base)
        stages = {}
        for stage in ("staging", "prod"):
            role = stage_role_arn(local_config, stage)
            stages[stage] = StageClients.from_session(
                assume_role_session(base, role, f"test-{stage}", local_config.region)
            )
        for name, clients in (("automation", automation), ("staging", stages["staging"]), ("prod", stages["prod"])):
            for client in vars(clients).values():
                _record_calls(client, calls[name])
        yield Accounts(automation, stages["staging"], stages["prod"], calls)


def register_package(
    aws: Accounts,
    config: Config,
    *,
    group: str | None = None,
    approval: str = "Approved",
    model_data_url: str = "s3://mlops-artifacts-000000000001-us-east-1/breast-cancer/main/b1/train/model.tar.gz",
    evaluation_uri: str = "s3://mlops-artifacts-000000000001-us-east-1/breast-cancer/main/b1/evaluate/evaluation/"
    "evaluation.json",
    commit: str = "0123456789abcdef0123456789abcdef01234567",
) -> str:
    sm = aws.automation.sagemaker
    group = group or config.build.model_package_group
    metadata = {"git_commit": commit, "build_id": "20261122T020304Z-0123456"}
    existing = {g["ModelPackageGroupName"] for g in sm.list_model_package_groups()["ModelPackageGroupSummaryList"]}
    if group not in existing:
        sm.create_model_package_group(ModelPackageGroupName=group)
    arn = sm.create_model_package(
        ModelPackageGroupName=group,
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": model_data_url, "Environment": ENVIRONMENT}],
            "SupportedContentTypes": ["text/csv", "application/json"],
            "SupportedResponseMIMETypes": ["application/json", "text/csv"],
        },
        ModelMetrics={"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": evaluation_uri}}},
        CustomerMetadataProperties=metadata,
        ModelApprovalStatus="PendingManualApproval",
    )["ModelPackageArn"]
    if approval != "PendingManualApproval":
        # moto 5.2.5 replaces the metadata on every update (SageMaker merges): send it again.
        sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus=approval, CustomerMetadataProperties=metadata)
    return str(arn)


def put_json(aws: Accounts, uri: str, document: Any) -> None:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    s3 = aws.automation.s3
    if bucket not in {b["Name"] for b in s3.list_buckets().get("Buckets", [])}:
        s3.create_bucket(Bucket=bucket)
    s3.put_object(
        Bucket=bucket,
        Key=key,
        Body=json.dumps(document).encode() if not isinstance(document, str) else document.encode(),
    )
