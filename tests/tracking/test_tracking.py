"""Recording an execution: the model card and lifecycle on the package, the MLflow run, and what happens
when the tracking server cannot be reached (the build fails, loudly, and nothing is lost)."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mlops.core.config import Config, load_config
from mlops.core.errors import ConfigError
from mlops.local.moto_registry import aws_update_model_package_semantics
from mlops.registry import RegistryError, approval_view, choose_reference, parse_reference, render_view
from model_build.card import read_card
from model_build.tracking import (
    BuildRecord,
    RunLink,
    TrackingError,
    track_execution,
    tracking_uri,
    wait_reachable,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
BUCKET = "mlops-artifacts-000000000001-us-east-1"
EXECUTION = "arn:aws:sagemaker:us-east-1:000000000001:pipeline/breast-cancer-build/execution/abc"
PREFIX = f"s3://{BUCKET}/breast-cancer/main/b1/evaluate/evaluation"
EVALUATION = {
    "binary_classification_metrics": {n: {"value": v} for n, v in (("auc", 0.99), ("f1", 0.97), ("recall", 0.95))},
    "test_rows": 114,
    "decision_threshold": 0.5,
}
ANALYSIS = {
    "version": "1.0",
    "explanations": {"kernel_shap": {"label0": {"global_shap_values": {"worst radius": 0.9, "mean area": 0.4}}}},
}


@pytest.fixture
def config() -> Config:
    return load_config(REPO_ROOT / "mlops.yaml", profile="local", environ={})


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "MOTO_ACCOUNT_ID"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws(), aws_update_model_package_semantics():
        yield boto3.client("sagemaker", region_name="us-east-1"), boto3.client("s3", region_name="us-east-1")


def _register(sm: Any, s3: Any, *, explainability: bool = True) -> str:
    s3.create_bucket(Bucket=BUCKET)
    put = {
        "evaluate/evaluation/evaluation.json": json.dumps(EVALUATION),
        "evaluate/evaluation/analysis.json": json.dumps(ANALYSIS),
        "evaluate/evaluation/roc.png": "png",
        "train/model/model.tar.gz": "tar",
        "manifest.json": json.dumps(
            {"build_id": "b1", "git_commit": "c0ffee", "branch": "main", "pipeline_execution_arn": EXECUTION,
             "input": {"uri": f"s3://{BUCKET}/breast-cancer/data/d1/", "sha256": "d1"}}
        ),
    }  # fmt: skip
    for key, body in put.items():
        s3.put_object(Bucket=BUCKET, Key=f"breast-cancer/main/b1/{key}", Body=body.encode())
    sm.create_model_package_group(ModelPackageGroupName="breast-cancer")
    metrics: dict[str, Any] = {
        "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": f"{PREFIX}/evaluation.json"}}
    }
    if explainability:
        metrics["Explainability"] = {"Report": {"ContentType": "application/json", "S3Uri": f"{PREFIX}/analysis.json"}}
    return str(
        sm.create_model_package(
            ModelPackageGroupName="breast-cancer",
            ModelApprovalStatus="PendingManualApproval",
            InferenceSpecification={
                "Containers": [
                    {"Image": "i", "ModelDataUrl": f"s3://{BUCKET}/breast-cancer/main/b1/train/model/model.tar.gz"}
                ],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            ModelMetrics=metrics,
            MetadataProperties={"GeneratedBy": EXECUTION},
            CustomerMetadataProperties={
                "git_commit": "c0ffee",
                "build_id": "b1",
                "manifest_uri": f"s3://{BUCKET}/breast-cancer/main/b1/manifest.json",
            },
        )["ModelPackageArn"]
    )


class RecordingTracker:
    def __init__(self, failure: Exception | None = None) -> None:
        self.failure = failure
        self.logged: list[tuple[BuildRecord, Mapping[str, str], Mapping[str, float]]] = []

    def log(self, record: BuildRecord, *, params: Mapping[str, str], metrics: Mapping[str, float]) -> RunLink:
        if self.failure is not None:
            raise self.failure
        self.logged.append((record, dict(params), dict(metrics)))
        assert {"evaluation.json", "analysis.json", "roc.png", "model.tar.gz"} <= set(record.files)
        return RunLink("http://127.0.0.1:5000", "7", "r1", "http://127.0.0.1:5000/#/experiments/7/runs/r1", True)


def test_the_package_gets_its_card_lifecycle_and_run(aws: tuple[Any, Any], config: Config) -> None:
    sm, s3 = aws
    arn = _register(sm, s3)
    tracker = RecordingTracker()
    result = track_execution(sm, s3, config, EXECUTION, tracker=tracker)
    assert result.package_arn == arn and result.lifecycle_stage == "Registered"
    _, params, metrics = tracker.logged[0]
    assert metrics == {"auc": 0.99, "f1": 0.97, "recall": 0.95}
    assert params["max_depth"] == "4" and params["data_snapshot_sha256"] == "d1"
    package = sm.describe_model_package(ModelPackageName=arn)
    assert package["ModelApprovalStatus"] == "PendingManualApproval"  # annotating never decides
    assert package["ModelLifeCycle"]["Stage"] == "Registered"
    assert package["CustomerMetadataProperties"]["mlflow_run_id"] == "r1"
    assert package["CustomerMetadataProperties"]["git_commit"] == "c0ffee"  # merged, not replaced
    card = read_card(package["ModelCard"])
    assert card is not None and card.status == "Draft"
    assert card.metrics["auc"] == 0.99
    assert card.top_features == [("worst radius", 0.9), ("mean area", 0.4)]
    assert "pathologist" in card.intended_use
    assert card.details["data_snapshot_sha256"] == "d1" and card.details["mlflow_run_id"] == "r1"
    content = json.loads(package["ModelCard"]["ModelCardContent"])
    assert set(content) == {
        "model_overview", "intended_uses", "training_details", "evaluation_details", "additional_information",
    }  # fmt: skip


def test_an_unreachable_tracking_server_fails_the_build_and_loses_nothing(aws: tuple[Any, Any], config: Config) -> None:
    sm, s3 = aws
    arn = _register(sm, s3)
    down = TrackingError("the MLflow tracking server http://127.0.0.1:9 did not answer within 60s")
    with pytest.raises(TrackingError, match="did not answer"):
        track_execution(sm, s3, config, EXECUTION, tracker=RecordingTracker(down))
    package = sm.describe_model_package(ModelPackageName=arn)
    # The card (with the metrics) is on the package and the reports stay in S3; no run id is claimed.
    assert read_card(package["ModelCard"]) is not None
    assert "mlflow_run_id" not in package["CustomerMetadataProperties"]
    # Re-running the command once the server is back records the run.
    track_execution(sm, s3, config, EXECUTION, tracker=RecordingTracker())
    assert sm.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"]["mlflow_run_id"] == "r1"


def test_no_registered_package_is_a_clear_error(aws: tuple[Any, Any], config: Config) -> None:
    sm, s3 = aws
    _register(sm, s3)
    with pytest.raises(TrackingError, match="was registered by execution .*/other") as raised:
        track_execution(sm, s3, config, EXECUTION.replace("abc", "other"), tracker=RecordingTracker())
    assert "quality gate" in (raised.value.hint or "")


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_wait_reachable_retries_with_backoff_then_fails_with_the_recovery_command() -> None:
    clock = FakeClock()
    calls: list[str] = []

    def refused(url: str) -> None:
        calls.append(url)
        raise ConnectionRefusedError(111, "Connection refused")

    with pytest.raises(TrackingError, match=r"did not answer within 5s \(\[Errno 111\]") as raised:
        wait_reachable("http://127.0.0.1:9", 5, sleep=clock.sleep, clock=clock, probe=refused)
    assert "mlops build track --execution ARN" in (raised.value.hint or "")
    assert clock.sleeps[:4] == [0.1, 0.2, 0.4, 0.8] and max(clock.sleeps) <= 2.0 and clock.now == pytest.approx(5)
    # A server that comes up within the bound is waited for, not failed.
    clock, attempts = FakeClock(), iter([OSError("down"), OSError("down"), None])

    def comes_up(url: str) -> None:
        failure = next(attempts)
        if failure:
            raise failure

    wait_reachable("http://127.0.0.1:9", 5, sleep=clock.sleep, clock=clock, probe=comes_up)
    assert clock.sleeps == [0.1, 0.2]


def test_tracking_uri_is_configured_or_refused(config: Config) -> None:
    assert tracking_uri(config, {"MLFLOW_TRACKING_URI": "http://127.0.0.1:1"}) == "http://127.0.0.1:1"
    with pytest.raises(TrackingError, match="no MLflow tracking server is configured") as raised:
        tracking_uri(config, {})
    assert "tracking.mlflow_uri" in (raised.value.hint or "")
    cloud = load_config(REPO_ROOT / "mlops.yaml", environ={})
    assert tracking_uri(cloud, {}).startswith("arn:aws:sagemaker:eu-west-1:111111111111:mlflow-tracking-server/")
    with pytest.raises(ConfigError, match="neither a SageMaker MLflow tracking server/App ARN nor an http"):
        load_config(REPO_ROOT / "mlops.yaml", environ={"MLOPS__TRACKING__MLFLOW_URI": "mlflow.example.com"})


def test_package_references() -> None:
    assert parse_reference("3") == (None, 3)
    arn = "arn:aws:sagemaker:us-east-1:000000000001:model-package/breast-cancer/3"
    assert parse_reference(arn) == (arn, None)
    with pytest.raises(RegistryError, match="expected a model package version .* found 'v3'"):
        parse_reference("v3")
    assert choose_reference(None, None, 4) == (None, 4)
    with pytest.raises(RegistryError, match="found VERSION\\|ARN, --version"):
        choose_reference("3", None, 3)
    with pytest.raises(RegistryError, match="expected exactly one package"):
        choose_reference(None, None, None)


def test_show_compares_with_prod_and_says_when_the_card_is_missing(aws: tuple[Any, Any], config: Config) -> None:
    sm, s3 = aws
    old = _register(sm, s3, explainability=False)  # registered before cards: no card, no explanations
    sm.update_model_package(
        ModelPackageArn=old,
        ModelLifeCycle={"Stage": "Prod", "StageStatus": "Deployed", "StageDescription": "x since 2026-11-30T00:00:00Z"},
    )
    new = sm.create_model_package(
        ModelPackageGroupName="breast-cancer",
        ModelApprovalStatus="PendingManualApproval",
        InferenceSpecification=sm.describe_model_package(ModelPackageName=old)["InferenceSpecification"],
        ModelMetrics={
            "ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": f"{PREFIX}/evaluation.json"}}
        },
        MetadataProperties={"GeneratedBy": EXECUTION + "2"},
        CustomerMetadataProperties={"git_commit": "beef", "build_id": "b2"},
    )["ModelPackageArn"]
    view = approval_view(sm, s3, config, dict(sm.describe_model_package(ModelPackageName=new)))
    assert view["prod"]["arn"] == old and view["prod"]["metrics"]["auc"] == 0.99
    text = render_view(view)
    assert "prod v1" in text and "+0.0000" in text
    assert "model card: missing (the package was registered before model cards; it still deploys)" in text
    assert 'mlops registry approve 2 --reason "<why>"' in text
    assert "MLflow run         missing (not tracked)" in text


def test_the_mlflow_tracker_fails_on_a_server_that_is_not_there(aws: tuple[Any, Any], config: Config) -> None:
    import socket

    from model_build.tracking import MlflowTracker

    sm, s3 = aws
    _register(sm, s3)
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    clock = FakeClock()
    tracker = MlflowTracker(
        f"http://127.0.0.1:{port}", "breast-cancer", connect_timeout_seconds=3, sleep=clock.sleep, clock=clock
    )
    with pytest.raises(TrackingError, match=f"127.0.0.1:{port} did not answer within 3s"):
        track_execution(sm, s3, config, EXECUTION, tracker=tracker)
