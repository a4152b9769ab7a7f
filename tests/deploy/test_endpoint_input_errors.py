"""Endpoint input errors are the client's (4xx), never a server error (issue 19, item 4).

The real model's `inference.py` is served by the twin's hosting over moto, as `InvokeEndpoint` serves it;
a stream of bad requests must leave `Invocation5XXErrors` – what the prod rollback alarm watches (mlops.yaml:
`5xx-errors`) – at zero, and count them as `Invocation4XXErrors`.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mlops.local.endpoints import Hosting, InvocationError

from .serving import load_handlers, train_model

REGION = "us-east-1"
ACCOUNT = "123456789012"
ENDPOINT = "breast-cancer-prod"
ARTIFACT = "s3://models/breast-cancer/model.tar.gz"
DEPTH = 100_000


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return train_model(tmp_path_factory.mktemp("model"))[0]


def _bad_requests(feature_count: int) -> list[tuple[str, bytes, str]]:
    return [
        ("deeply nested JSON", ("[" * DEPTH + "]" * DEPTH).encode(), "application/json"),
        ("deeply nested instances", ('{"instances": ' + "[" * DEPTH + "]" * DEPTH + "}").encode(), "application/json"),
        ("a body over 6 MB", b"1," * 3_200_000, "text/csv"),
        ("not UTF-8", b"\xff\xfe" + b"1," * (feature_count - 1) + b"1", "text/csv"),
        ("invalid JSON", b'{"instances": [', "application/json"),
        ("wrong column count", b"1,2,3", "text/csv"),
        ("a nested value", json.dumps({"instances": [[[1]] * feature_count]}).encode(), "application/json"),
        ("an unsupported media type", b"x", "application/x-npy"),
    ]


@pytest.fixture
def hosting(model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Hosting, Any]]:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"):
        monkeypatch.delenv(name, raising=False)  # mock_aws does not intercept when these are set
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        s3 = session.client("s3")
        s3.create_bucket(Bucket="models")
        archive = io.BytesIO()
        with tarfile.open(fileobj=archive, mode="w:gz") as tar:
            for path in model_dir.rglob("*"):
                tar.add(path, arcname=str(path.relative_to(model_dir)), recursive=False)
        s3.put_object(Bucket="models", Key="breast-cancer/model.tar.gz", Body=archive.getvalue())
        sagemaker = session.client("sagemaker")
        sagemaker.create_model(
            ModelName="m1",
            ExecutionRoleArn=f"arn:aws:iam::{ACCOUNT}:role/r",
            PrimaryContainer={
                "Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.2-0",
                "ModelDataUrl": ARTIFACT,
                "Environment": {
                    "SAGEMAKER_PROGRAM": "inference.py",
                    "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
                },
            },
        )
        sagemaker.create_endpoint_config(
            EndpointConfigName="c1",
            ProductionVariants=[
                {
                    "VariantName": "AllTraffic",
                    "ModelName": "m1",
                    "InitialInstanceCount": 1,
                    "InstanceType": "ml.m5.large",
                }
            ],
        )
        sagemaker.create_endpoint(EndpointName=ENDPOINT, EndpointConfigName="c1")

        def read_object(url: str) -> bytes:
            bucket, _, key = url.removeprefix("s3://").partition("/")
            return bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())

        host = Hosting(read_object=read_object, automation_account=ACCOUNT, cache_dir=tmp_path, time_scale=1.0)
        yield host, session.client("cloudwatch")


def _sum(cloudwatch: Any, metric: str) -> float:
    now = datetime.now(UTC)
    points = cloudwatch.get_metric_statistics(
        Namespace="AWS/SageMaker",
        MetricName=metric,
        Dimensions=[{"Name": "EndpointName", "Value": ENDPOINT}, {"Name": "VariantName", "Value": "AllTraffic"}],
        StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(hours=1),
        Period=3600,
        Statistics=["Sum"],
    )["Datapoints"]
    return float(sum(p["Sum"] for p in points))


def test_a_stream_of_bad_requests_is_4xx_and_leaves_the_5xx_metric_at_zero(
    hosting: tuple[Hosting, Any], model_dir: Path
) -> None:
    host, cloudwatch = hosting
    feature_count = len(json.loads((model_dir / "preprocessor.json").read_text())["feature_names"])
    requests = _bad_requests(feature_count)
    for description, body, content_type in requests:
        with pytest.raises(InvocationError) as raised:
            host.invoke(ACCOUNT, REGION, ENDPOINT, body, content_type, "application/json")
        error = raised.value
        assert error.code == "ModelError", description
        assert error.extra["OriginalStatusCode"] == 400, (description, error.message)
        assert "expected" in error.extra["OriginalMessage"], (description, error.message)
    good = ",".join(["1"] * feature_count).encode()
    answer, _, variant = host.invoke(ACCOUNT, REGION, ENDPOINT, good, "text/csv", "application/json")
    assert json.loads(answer)["predictions"] and variant == "AllTraffic"

    assert _sum(cloudwatch, "Invocation5XXErrors") == 0
    assert _sum(cloudwatch, "Invocation4XXErrors") == len(requests)
    assert _sum(cloudwatch, "Invocations") == len(requests) + 1


def test_a_server_side_failure_still_counts_as_5xx(hosting: tuple[Hosting, Any], model_dir: Path) -> None:
    # The metric is not simply silenced: a handler that breaks on its own is a 5xx.
    host, cloudwatch = hosting
    feature_count = len(json.loads((model_dir / "preprocessor.json").read_text())["feature_names"])
    loaded = host.load(ARTIFACT, {"SAGEMAKER_PROGRAM": "inference.py"})

    def broken(*_: Any) -> Any:
        raise RuntimeError("the booster is corrupt")

    loaded.module.predict_fn = broken
    with pytest.raises(InvocationError) as raised:
        host.invoke(ACCOUNT, REGION, ENDPOINT, ",".join(["1"] * feature_count).encode(), "text/csv", "")
    assert raised.value.extra["OriginalStatusCode"] == 500
    assert _sum(cloudwatch, "Invocation5XXErrors") == 1 and _sum(cloudwatch, "Invocation4XXErrors") == 0


@pytest.mark.parametrize("depth", [1_000, 100_000])
def test_input_fn_refuses_deep_nesting_as_a_payload_error(model_dir: Path, depth: int) -> None:
    handlers = load_handlers(model_dir)
    model = handlers.model_fn(str(model_dir))
    with pytest.raises(handlers.PayloadError, match="expected"):
        handlers.input_fn("[" * depth + "]" * depth, "application/json", model)


def _package(data_url: str | None) -> dict[str, Any]:
    container: dict[str, Any] = {"Image": "xgboost", "Environment": {"SAGEMAKER_PROGRAM": "inference.py"}}
    if data_url:
        container["ModelDataUrl"] = data_url
    return {"InferenceSpecification": {"Containers": [container]}}


def test_an_approved_package_is_loaded_ahead_of_its_endpoint_and_the_endpoint_reuses_it(
    hosting: tuple[Hosting, Any],
) -> None:
    host, _ = hosting
    thread = host.preload(_package(ARTIFACT))
    assert thread is not None
    thread.join(timeout=60)
    loaded = host._models[ARTIFACT]
    assert host.load(ARTIFACT, {"SAGEMAKER_PROGRAM": "inference.py"}) is loaded  # the endpoint's load: no new load
    assert host.preload(_package(None)) is None  # nothing to load


def test_a_failed_preload_is_logged_and_the_endpoints_own_load_still_raises(
    hosting: tuple[Hosting, Any], caplog: pytest.LogCaptureFixture
) -> None:
    host, _ = hosting
    missing = "s3://models/breast-cancer/absent.tar.gz"
    thread = host.preload(_package(missing))
    assert thread is not None
    thread.join(timeout=60)
    assert missing not in host._models
    assert "preloading the model s3://models/breast-cancer/absent.tar.gz failed" in caplog.text
    with pytest.raises(Exception, match="NoSuchKey|does not exist"):
        host.load(missing, {})
