"""The twin end to end: a real execution, the step cache, the quality gate, the registry event,
real predictions, blue/green updates with rollback, and account isolation."""

from __future__ import annotations

import io
import json
import tarfile
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import numpy as np
import pandas as pd
import pytest

from mlops.core.errors import PipelineExecutionFailed
from model_build.build import RenderedBuild, render, start, upsert, wait

from .conftest import Twin

pytestmark = pytest.mark.slow
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def rendered(twin: Twin) -> RenderedBuild:
    return render(twin.config, "main")


@pytest.fixture(scope="module")
def first_run(twin: Twin, rendered: RenderedBuild) -> dict[str, Any]:
    sm, s3 = twin.client("sagemaker"), twin.client("s3")
    assert upsert(sm, s3, twin.config, rendered, "main").action == "create"
    execution = start(sm, s3, twin.config, rendered, branch="main", commit=COMMIT, build_id="20261122T000000Z-0123456")
    wait(sm, execution.arn, timeout_seconds=180, poll_seconds=0.5)
    packages = sm.list_model_packages(ModelPackageGroupName="breast-cancer")["ModelPackageSummaryList"]
    return {"execution": execution, "package_arn": packages[0]["ModelPackageArn"]}


def _drain(twin: Twin) -> list[dict[str, Any]]:
    sqs = twin.client("sqs")
    messages = []
    while True:
        batch = sqs.receive_message(QueueUrl=twin.made.approval_queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not batch:
            return messages
        for message in batch:
            messages.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=twin.made.approval_queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_execution_trains_the_real_model_and_registers_it(twin: Twin, first_run: dict[str, Any]) -> None:
    sm, s3 = twin.client("sagemaker"), twin.client("s3")
    steps = sm.list_pipeline_execution_steps(PipelineExecutionArn=first_run["execution"].arn, SortOrder="Ascending")
    assert [(s["StepName"], s["StepStatus"]) for s in steps["PipelineExecutionSteps"]] == [
        ("Preprocess", "Succeeded"),
        ("Train", "Succeeded"),
        ("Evaluate", "Succeeded"),
        ("CheckQuality", "Succeeded"),
        ("Register", "Succeeded"),
    ]
    package = sm.describe_model_package(ModelPackageName=first_run["package_arn"])
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    metadata = package["CustomerMetadataProperties"]
    assert (metadata["git_commit"], metadata["build_id"]) == (COMMIT, "20261122T000000Z-0123456")
    assert metadata["test_data_uri"].endswith("/breast-cancer/main/20261122T000000Z-0123456/preprocess/test/test.csv")
    assert package["MetadataProperties"]["GeneratedBy"] == first_run["execution"].arn
    metrics_uri = package["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]
    bucket, _, key = metrics_uri.removeprefix("s3://").partition("/")
    assert key.startswith("breast-cancer/main/20261122T000000Z-0123456/evaluate/")
    report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert report["binary_classification_metrics"]["auc"]["value"] > 0.95
    model_uri = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    assert "/train/model/" in model_uri and model_uri.endswith("/output/model.tar.gz")
    # The twin loads a registered package's model ahead of its endpoint (approval and deployment follow).
    assert _loaded_soon(twin, model_uri)


def _loaded_soon(twin: Twin, model_data: str) -> bool:
    deadline = time.monotonic() + 60
    while model_data not in twin.server.hosting._models and time.monotonic() < deadline:
        time.sleep(0.05)
    return model_data in twin.server.hosting._models


def test_unchanged_rerun_reuses_cached_steps(twin: Twin, rendered: RenderedBuild, first_run: dict[str, Any]) -> None:
    sm, s3 = twin.client("sagemaker"), twin.client("s3")
    second = start(sm, s3, twin.config, rendered, branch="main", commit=COMMIT, build_id="20261122T000100Z-0123456")
    wait(sm, second.arn, timeout_seconds=60, poll_seconds=0.2)
    steps = {
        s["StepName"]: s
        for s in sm.list_pipeline_execution_steps(PipelineExecutionArn=second.arn)["PipelineExecutionSteps"]
    }
    for name in ("Preprocess", "Train", "Evaluate"):
        assert steps[name]["CacheHitResult"]["SourcePipelineExecutionArn"] == first_run["execution"].arn
    assert "CacheHitResult" not in steps["Register"]  # a new version is registered for the new build


def test_threshold_above_the_model_fails_with_the_metric_and_registers_nothing(
    twin: Twin, first_run: dict[str, Any]
) -> None:
    sm = twin.client("sagemaker")
    before = len(sm.list_model_packages(ModelPackageGroupName="breast-cancer")["ModelPackageSummaryList"])
    arn = sm.start_pipeline_execution(
        PipelineName="breast-cancer-build",
        PipelineParameters=[{"Name": "QualityThreshold", "Value": "0.99999"}, {"Name": "BuildId", "Value": "strict"}],
    )["PipelineExecutionArn"]
    with pytest.raises(
        PipelineExecutionFailed, match=r"step Fail Failed: Model auc 0\.9\d+ is below the quality threshold 0\.99999"
    ):
        wait(sm, arn, timeout_seconds=60, poll_seconds=0.2)
    assert sm.describe_pipeline_execution(PipelineExecutionArn=arn)["PipelineExecutionStatus"] == "Failed"
    after = len(sm.list_model_packages(ModelPackageGroupName="breast-cancer")["ModelPackageSummaryList"])
    assert after == before


def test_approval_emits_exactly_one_aws_shaped_event(twin: Twin, first_run: dict[str, Any]) -> None:
    sm = twin.client("sagemaker")
    _drain(twin)
    registered = sm.describe_model_package(ModelPackageName=first_run["package_arn"])
    assert _loaded_soon(twin, registered["InferenceSpecification"]["Containers"][0]["ModelDataUrl"])
    twin.server.hosting._models.clear()  # forget the load at registration: the approval must load it again
    sm.update_model_package(
        ModelPackageArn=first_run["package_arn"], ModelApprovalStatus="Approved", ApprovalDescription="ok"
    )
    events = _drain(twin)
    assert len(events) == 1
    event = events[0]
    assert set(event) == {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
    assert (event["source"], event["detail-type"], event["account"]) == (
        "aws.sagemaker",
        "SageMaker Model Package State Change",
        "000000000001",
    )
    assert event["resources"] == [first_run["package_arn"]]
    detail = event["detail"]
    assert detail["ModelApprovalStatus"] == "Approved" and detail["ModelPackageVersion"] == 1
    assert detail["ModelPackageGroupName"] == "breast-cancer"
    assert detail["MetadataProperties"]["GeneratedBy"] == first_run["execution"].arn
    assert detail["CreationTime"].endswith("Z") and "T" in detail["CreationTime"]
    # Approving kept what the build wrote (SageMaker leaves fields the update does not name alone).
    assert detail["CustomerMetadataProperties"]["git_commit"] == COMMIT
    assert detail["ApprovalDescription"] == "ok"
    # The approval loads the model too (a package may have been registered unloaded, or its load forgotten).
    model_data = detail["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    assert _loaded_soon(twin, model_data)
    # The same status again is no change: no event.
    sm.update_model_package(ModelPackageArn=first_run["package_arn"], ModelApprovalStatus="Approved")
    assert _drain(twin) == []


def test_rejections_and_other_groups_do_not_reach_the_rule(twin: Twin, first_run: dict[str, Any]) -> None:
    sm = twin.client("sagemaker")
    package = sm.describe_model_package(ModelPackageName=first_run["package_arn"])
    container = package["InferenceSpecification"]["Containers"][0]
    spec = {"Containers": [{"Image": container["Image"], "ModelDataUrl": container["ModelDataUrl"]}],
            "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["application/json"]}  # fmt: skip
    sm.create_model_package_group(ModelPackageGroupName="another-team")
    foreign = sm.create_model_package(ModelPackageGroupName="another-team", InferenceSpecification=spec)[
        "ModelPackageArn"
    ]
    ours = sm.create_model_package(ModelPackageGroupName="breast-cancer", InferenceSpecification=spec)[
        "ModelPackageArn"
    ]
    _drain(twin)
    sm.update_model_package(ModelPackageArn=ours, ModelApprovalStatus="Rejected")
    sm.update_model_package(ModelPackageArn=foreign, ModelApprovalStatus="Approved")
    assert _drain(twin) == []


@pytest.fixture(scope="module")
def test_rows(twin: Twin, first_run: dict[str, Any]) -> pd.DataFrame:
    s3 = twin.client("s3")
    prefix = "breast-cancer/main/20261122T000000Z-0123456/preprocess/test/"
    body = s3.get_object(Bucket=twin.config.build.artifact_bucket, Key=prefix + "test.csv")["Body"].read()
    return pd.read_csv(io.BytesIO(body))


def _local_probabilities(twin: Twin, package_arn: str, rows: pd.DataFrame, tmp: Path) -> np.ndarray:
    """What the packaged model predicts when its handlers are run here, outside the twin."""
    sm, s3 = twin.client("sagemaker"), twin.client("s3")
    url = sm.describe_model_package(ModelPackageName=package_arn)["InferenceSpecification"]["Containers"][0][
        "ModelDataUrl"
    ]
    bucket, _, key = url.removeprefix("s3://").partition("/")
    with tarfile.open(fileobj=io.BytesIO(s3.get_object(Bucket=bucket, Key=key)["Body"].read())) as archive:
        archive.extractall(tmp, filter="data")
    import importlib.util

    spec = importlib.util.spec_from_file_location("local_handlers", tmp / "code" / "inference.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.model_fn(str(tmp))
    return np.asarray(module.predict_fn(module.input_fn(rows.to_csv(header=False, index=False), "text/csv"), model))


def _deploy(twin: Twin, account: str, name: str, package_arn: str, config_name: str) -> None:
    sm = twin.client("sagemaker", account)
    sm.create_model(
        ModelName=config_name,
        PrimaryContainer={"ModelPackageName": package_arn},
        # The account's own hosting role (the template's), as `mlops deploy` passes it.
        ExecutionRoleArn=f"arn:aws:iam::{getattr(twin.config.accounts, account).id}:role/mlops-sagemaker-execution",
    )
    sm.create_endpoint_config(
        EndpointConfigName=config_name,
        ProductionVariants=[
            {
                "VariantName": "AllTraffic",
                "ModelName": config_name,
                "InitialInstanceCount": 2,
                "InstanceType": "ml.m5.large",
            }
        ],
    )
    if name not in [e["EndpointName"] for e in sm.list_endpoints()["Endpoints"]]:
        sm.create_endpoint(EndpointName=name, EndpointConfigName=config_name)


def test_invoke_endpoint_serves_the_real_model(
    twin: Twin, first_run: dict[str, Any], test_rows: pd.DataFrame, tmp_path: Path
) -> None:
    _deploy(twin, "staging", "bc-staging", first_run["package_arn"], "bc-v1")
    runtime = twin.client("sagemaker-runtime", "staging")
    features = test_rows.drop(columns=["label"]).head(20)
    response = runtime.invoke_endpoint(
        EndpointName="bc-staging",
        ContentType="text/csv",
        Accept="application/json",
        Body=features.to_csv(header=False, index=False),
    )
    served = [p["probability"] for p in json.loads(response["Body"].read())["predictions"]]
    expected = _local_probabilities(twin, first_run["package_arn"], features, tmp_path)
    np.testing.assert_allclose(served, expected, rtol=1e-6)
    labels = test_rows["label"].head(20).to_numpy()
    assert ((np.asarray(served) >= 0.5).astype(int) == labels).mean() >= 0.9
    records = {"instances": features.head(2).to_dict(orient="records")}
    as_json = runtime.invoke_endpoint(
        EndpointName="bc-staging", ContentType="application/json", Body=json.dumps(records)
    )
    assert len(json.loads(as_json["Body"].read())["predictions"]) == 2

    with pytest.raises(botocore.exceptions.ClientError) as bad:
        runtime.invoke_endpoint(EndpointName="bc-staging", ContentType="text/csv", Body="1,2,3")
    error = bad.value.response
    assert error["Error"]["Code"] == "ModelError" and error["ResponseMetadata"]["HTTPStatusCode"] == 424
    assert error["OriginalStatusCode"] == 400 and "expected 30 comma-separated" in error["OriginalMessage"]
    with pytest.raises(botocore.exceptions.ClientError) as missing:
        runtime.invoke_endpoint(EndpointName="nope", ContentType="text/csv", Body="1")
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert "Endpoint nope of account 000000000002 not found" in str(missing.value)


def _wait_in_service(sm: Any, name: str, during: Any = None) -> dict[str, Any]:
    for _ in range(2000):
        described: dict[str, Any] = sm.describe_endpoint(EndpointName=name)
        if described["EndpointStatus"] == "InService":
            return described
        if during:
            during()
    raise AssertionError(f"{name} never returned to InService")


def test_blue_green_update_and_alarm_rollback(twin: Twin, first_run: dict[str, Any], test_rows: pd.DataFrame) -> None:
    sm = twin.client("sagemaker", "staging")
    runtime = twin.client("sagemaker-runtime", "staging")
    cloudwatch = twin.client("cloudwatch", "staging")
    _deploy(twin, "staging", "bc-bluegreen", first_run["package_arn"], "bg-v1")
    _deploy(twin, "staging", "bc-bluegreen", first_run["package_arn"], "bg-v2")
    cloudwatch.put_metric_alarm(
        AlarmName="bc-5xx", MetricName="Invocation5XXErrors", Namespace="AWS/SageMaker", Statistic="Sum",
        Period=60, EvaluationPeriods=1, Threshold=1, ComparisonOperator="GreaterThanOrEqualToThreshold",
    )  # fmt: skip
    deployment = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {
                "Type": "CANARY",
                "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 50},
                "WaitIntervalInSeconds": 300,
            },
            "TerminationWaitInSeconds": 600,
        },
        "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "bc-5xx"}]},
    }  # fmt: skip
    row = test_rows.drop(columns=["label"]).head(1).to_csv(header=False, index=False)
    answered: list[int] = []

    def invoke() -> None:
        response = runtime.invoke_endpoint(EndpointName="bc-bluegreen", ContentType="text/csv", Body=row)
        answered.append(response["ResponseMetadata"]["HTTPStatusCode"])

    sm.update_endpoint(EndpointName="bc-bluegreen", EndpointConfigName="bg-v2", DeploymentConfig=deployment)
    assert sm.describe_endpoint(EndpointName="bc-bluegreen")["EndpointStatus"] == "Updating"
    done = _wait_in_service(sm, "bc-bluegreen", during=invoke)
    assert done["EndpointConfigName"] == "bg-v2" and "FailureReason" not in done
    assert answered and set(answered) == {200}  # requests during the update were all answered

    with pytest.raises(botocore.exceptions.ClientError, match="Could not find endpoint configuration"):
        sm.update_endpoint(EndpointName="bc-bluegreen", EndpointConfigName="missing")

    cloudwatch.set_alarm_state(AlarmName="bc-5xx", StateValue="ALARM", StateReason="test")
    sm.update_endpoint(EndpointName="bc-bluegreen", EndpointConfigName="bg-v1", DeploymentConfig=deployment)
    rolled_back = _wait_in_service(sm, "bc-bluegreen", during=invoke)
    assert rolled_back["EndpointConfigName"] == "bg-v2"  # the previous config is kept
    assert "alarm bc-5xx went into ALARM" in rolled_back["FailureReason"]
    assert set(answered) == {200}


def test_staging_sees_the_automation_registry_only_through_the_assumed_role(
    twin: Twin, first_run: dict[str, Any]
) -> None:
    staging = twin.client("sagemaker", "staging")
    assert staging.list_pipelines()["PipelineSummaries"] == []
    assert staging.list_model_packages(ModelPackageGroupName="breast-cancer")["ModelPackageSummaryList"] == []
    with pytest.raises(botocore.exceptions.ClientError):
        staging.describe_pipeline(PipelineName="breast-cancer-build")
    # The automation account's roles are not the staging administrator's to assume: the deploy role
    # there trusts only the Azure DevOps build connection's web identity (infra/templates).
    sts = twin.session("staging").client("sts", endpoint_url=twin.server.url)
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDenied") as refused:
        sts.assume_role(RoleArn="arn:aws:iam::000000000001:role/mlops-deploy", RoleSessionName="from-staging")
    assert "arn:aws:iam::000000000002:root is not authorized to perform: sts:AssumeRole" in str(refused.value)
    # The build connection's session in the automation account sees the pipeline.
    env = twin.connection_env("aws-build")
    automation_via_role = boto3.client(
        "sagemaker",
        endpoint_url=twin.server.url,
        region_name=twin.config.region,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env["AWS_SESSION_TOKEN"],
    )
    described = automation_via_role.describe_pipeline(PipelineName="breast-cancer-build")
    assert described["PipelineArn"].startswith("arn:aws:sagemaker:us-east-1:000000000001:pipeline/")


def test_concurrent_invocations_are_served(twin: Twin, first_run: dict[str, Any], test_rows: pd.DataFrame) -> None:
    _deploy(twin, "prod", "bc-prod", first_run["package_arn"], "prod-v1")
    runtime = twin.client("sagemaker-runtime", "prod")
    row = test_rows.drop(columns=["label"]).head(3).to_csv(header=False, index=False)
    results: list[int] = []

    def call() -> None:
        body = runtime.invoke_endpoint(EndpointName="bc-prod", ContentType="text/csv", Accept="text/csv", Body=row)[
            "Body"
        ].read()
        results.append(len(body.decode().strip().splitlines()))

    threads = [threading.Thread(target=call) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [3] * 8
