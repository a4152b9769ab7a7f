"""The build summary explains failures: no execution, a failed step, the quality gate (metric vs threshold)."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import boto3
from botocore.response import StreamingBody
from botocore.stub import Stubber

from model_build.summary import BuildFacts, collect, render

from .conftest import REPO_ROOT

ARN = "arn:aws:sagemaker:us-east-1:000000000001:pipeline/bc/execution/abc123"
PACKAGE = "arn:aws:sagemaker:us-east-1:000000000001:model-package/bc/3"
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _step(name: str, status: str, minute: int, **extra: object) -> dict[str, object]:
    return {"StepName": name, "StepStatus": status, "StartTime": T0.replace(minute=minute), **extra}


def test_no_execution_says_the_build_failed_before_starting_one() -> None:
    text = render(BuildFacts(execution_arn=None))
    assert "No SageMaker Pipeline execution was started" in text


def test_quality_gate_failure_names_the_metric_and_threshold() -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    s3 = boto3.client("s3", region_name="us-east-1")
    reason = "Model auc 0.9312 is below the quality threshold 0.95 - not registered."
    steps = [
        _step("Fail", "Failed", 4, FailureReason=reason, Metadata={"Fail": {"ErrorMessage": reason}}),
        _step("CheckQuality", "Succeeded", 3),
        _step("Evaluate", "Succeeded", 2),
        _step("Train", "Succeeded", 1),
        _step("Preprocess", "Succeeded", 0),
    ]
    with Stubber(sm) as stub:
        stub.add_response(
            "describe_pipeline_execution",
            {"PipelineExecutionArn": ARN, "PipelineExecutionStatus": "Failed", "FailureReason": "Step failure"},
            {"PipelineExecutionArn": ARN},
        )
        stub.add_response(
            "list_pipeline_execution_steps", {"PipelineExecutionSteps": steps}, {"PipelineExecutionArn": ARN}
        )
        facts = collect(sm, s3, "bc", ARN)
    text = render(facts)
    assert f"Execution `{ARN}`: **Failed**" in text
    assert f"**Quality gate failed** (step `Fail`): {reason}" in text
    assert "| Preprocess | Succeeded |" in text.split("| Fail | Failed |")[0]  # steps in the order they ran
    assert "No model package was registered" in text


def test_a_failed_job_step_is_named_with_its_reason() -> None:
    facts = BuildFacts(
        execution_arn=ARN,
        status="Failed",
        steps=[
            _step("Train", "Failed", 1, FailureReason="AlgorithmError: exit code 1: bad hyperparameter"),
            _step("Preprocess", "Succeeded", 0),
        ],
    )
    assert "**Step `Train` Failed**: AlgorithmError: exit code 1: bad hyperparameter" in render(facts)


def test_success_shows_the_package_and_its_metrics() -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    s3 = boto3.client("s3", region_name="us-east-1")
    metrics = json.dumps({"binary_classification_metrics": {"auc": {"value": 0.991}}}).encode()
    with Stubber(sm) as stub, Stubber(s3) as s3_stub:
        stub.add_response(
            "describe_pipeline_execution",
            {"PipelineExecutionArn": ARN, "PipelineExecutionStatus": "Succeeded"},
            {"PipelineExecutionArn": ARN},
        )
        stub.add_response(
            "list_pipeline_execution_steps",
            {
                "PipelineExecutionSteps": [
                    _step("Register", "Succeeded", 5, Metadata={"RegisterModel": {"Arn": PACKAGE}})
                ]
            },
            {"PipelineExecutionArn": ARN},
        )
        stub.add_response(
            "describe_model_package",
            {
                "ModelPackageName": "bc",
                "ModelPackageArn": PACKAGE,
                "CreationTime": T0,
                "ModelPackageStatus": "Completed",
                "ModelPackageStatusDetails": {"ValidationStatuses": []},
                "ModelApprovalStatus": "PendingManualApproval",
                "ModelMetrics": {
                    "ModelQuality": {
                        "Statistics": {"ContentType": "application/json", "S3Uri": "s3://b/k/evaluation.json"}
                    }
                },
            },
            {"ModelPackageName": PACKAGE},
        )
        s3_stub.add_response(
            "get_object",
            {"Body": StreamingBody(io.BytesIO(metrics), len(metrics))},
            {"Bucket": "b", "Key": "k/evaluation.json"},
        )
        text = render(collect(sm, s3, "bc", ARN))
    assert f"Registered `{PACKAGE}` (PendingManualApproval)" in text
    assert "| binary_classification_metrics.auc | 0.9910 |" in text


def test_the_script_accepts_a_build_that_never_set_the_arn(tmp_path: object) -> None:
    given = "$(build.executionArn)"  # how Azure Pipelines passes an output variable the failed step never set
    out = f"{tmp_path}/summary.md"
    env = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", "MLOPS_PROFILE": "local"}
    result = subprocess.run(
        [sys.executable, "azure-pipelines/scripts/build_summary.py", "--execution", given, "--out", out],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "No SageMaker Pipeline execution was started" in Path(out).read_text(encoding="utf-8")
