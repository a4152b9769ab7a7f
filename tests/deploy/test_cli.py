"""`mlops deploy`, `mlops deploy rollback` and `mlops test` through the real CLI entry point."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

import mlops.core.aws
from mlops.cli import main
from mlops.local.moto_registry import aws_update_model_package_semantics
from tests.deploy.conftest import IMAGE

REPO_ROOT = Path(__file__).resolve().parents[2]
CONFIG = str(REPO_ROOT / "mlops.yaml")  # the default profile: accounts 111.../222.../333..., eu-west-1


@pytest.fixture
def automation(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.Session]:
    """moto, with the CLI's ambient session standing in the automation account (as the pipeline's would)."""
    monkeypatch.delenv("MOTO_ACCOUNT_ID", raising=False)
    # SageMaker's UpdateModelPackage semantics: a lifecycle update leaves the approval alone.
    with mock_aws(), aws_update_model_package_semantics():
        ambient = boto3.Session(region_name="eu-west-1")
        session = mlops.core.aws.assume_role_session(ambient, "arn:aws:iam::111111111111:role/ci", "ci", "eu-west-1")
        monkeypatch.setattr(mlops.core.aws, "session", lambda _config: session)
        yield session


def _register(session: boto3.Session, approval: str) -> str:
    sm = session.client("sagemaker")
    sm.create_model_package_group(ModelPackageGroupName="breast-cancer")
    arn = sm.create_model_package(
        ModelPackageGroupName="breast-cancer",
        InferenceSpecification={
            "Containers": [{"Image": IMAGE, "ModelDataUrl": "s3://b/model.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["application/json"],
        },
        ModelApprovalStatus=approval,
    )["ModelPackageArn"]
    return str(arn)


def test_both_command_forms_parse(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["deploy", "--help"]) == 0
    assert "--model-package-arn" in capsys.readouterr().out
    assert main(["deploy", "rollback", "--help"]) == 0
    assert "--stage" in capsys.readouterr().out
    assert main(["test", "--help"]) == 0
    assert "--junit" in capsys.readouterr().out
    assert main(["--config", CONFIG, "deploy"]) == 2
    assert "expected --stage and --model-package-arn" in capsys.readouterr().err
    assert main(["--config", CONFIG, "deploy", "--stage", "prod", "rollback"]) == 2
    assert "put them after it: mlops deploy rollback" in capsys.readouterr().err
    assert main(["deploy", "--stage", "qa", "--model-package-arn", "x"]) == 2


def test_dry_run_prints_and_writes_the_plan(
    automation: boto3.Session, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arn = _register(automation, "Approved")
    plan_file = tmp_path / "plan.json"
    code = main(
        [
            "--config",
            CONFIG,
            "deploy",
            "--stage",
            "staging",
            "--model-package-arn",
            arn,
            "--dry-run",
            "--plan-out",
            str(plan_file),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert captured.out.startswith("(dry run) deploy plan for staging endpoint breast-cancer-staging")
    assert "create_endpoint " in captured.out
    document = json.loads(plan_file.read_text())
    assert document["dry_run"] is True and document["package_arn"] == arn
    staging = mlops.core.aws.assume_role_session(
        automation, "arn:aws:iam::222222222222:role/mlops-deploy", "check", "eu-west-1"
    )
    assert staging.client("sagemaker").list_models()["Models"] == []


def test_refusal_exits_non_zero_with_one_actionable_line(
    automation: boto3.Session, capsys: pytest.CaptureFixture[str]
) -> None:
    arn = _register(automation, "PendingManualApproval")
    assert main(["--config", CONFIG, "deploy", "--stage", "staging", "--model-package-arn", arn]) == 1
    first, fix = capsys.readouterr().err.splitlines()[:2]
    assert first == f"error: model package {arn} is PendingManualApproval; expected Approved"
    assert "mlops registry approve" in fix


def test_rollback_without_history_explains(automation: boto3.Session, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--config", CONFIG, "deploy", "rollback", "--stage", "prod"]) == 1
    assert (
        "cannot roll back breast-cancer: expected at least two deployments in its history, found no deployment record"
        in capsys.readouterr().err
    )
