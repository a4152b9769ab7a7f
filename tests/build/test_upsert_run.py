"""Upsert, run, wait and cleanup against moto (state) and botocore Stubber (what moto lacks)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from mlops.core.config import Config
from mlops.core.errors import BuildError, PipelineExecutionFailed
from model_build.build import (
    RenderedBuild,
    branch_pipelines,
    cleanup,
    snapshot_s3_source,
    stale_branches,
    start,
    upsert,
    wait,
)
from model_build.data import DatasetError, bundled_csv_bytes
from model_build.layout import BucketLayout, pipeline_name

COMMIT = "0123456789abcdef0123456789abcdef01234567"
BUILD_ID = "20261122T020304Z-0123456"


@pytest.fixture
def aws(local_config: Config) -> Iterator[tuple[Any, Any, list[str]]]:
    with mock_aws():
        sm = boto3.client("sagemaker", region_name=local_config.region)
        s3 = boto3.client("s3", region_name=local_config.region)
        s3.create_bucket(Bucket=local_config.build.artifact_bucket)
        s3.put_bucket_versioning(
            Bucket=local_config.build.artifact_bucket, VersioningConfiguration={"Status": "Enabled"}
        )
        calls: list[str] = []
        for client in (sm, s3):
            client.meta.events.register("before-call.*.*", lambda model, **_: calls.append(model.name))
        yield sm, s3, calls


def writes(calls: list[str]) -> list[str]:
    return [c for c in calls if c.startswith(("Create", "Update", "Put", "Delete", "Start"))]


def test_create_then_unchanged_then_update(
    aws: tuple[Any, Any, list[str]], local_config: Config, rendered: RenderedBuild
) -> None:
    sm, s3, calls = aws
    plan = upsert(sm, s3, local_config, rendered, "main")
    assert plan.action == "create"
    described = sm.describe_pipeline(PipelineName=rendered.pipeline_name)
    assert json.loads(described["PipelineDefinition"]) == json.loads(rendered.definition)
    assert described["RoleArn"] == "arn:aws:iam::000000000001:role/mlops-sagemaker-pipeline"
    tags = sm.list_tags(ResourceArn=described["PipelineArn"])["Tags"]
    assert {"Key": "mlops:branch", "Value": "main"} in tags
    listed = s3.list_objects_v2(Bucket=local_config.build.artifact_bucket)["Contents"]
    assert {o["Key"] for o in listed} == {u.key for u in rendered.uploads}

    calls.clear()
    again = upsert(sm, s3, local_config, rendered, "main")
    assert again.action == "unchanged"
    assert writes(calls) == []  # no CreatePipeline, no UpdatePipeline, no upload

    document = json.loads(rendered.definition)
    document["Parameters"][5]["DefaultValue"] = 0.9
    changed = dataclasses.replace(rendered, definition=json.dumps(document))
    calls.clear()
    plan = upsert(sm, s3, local_config, changed, "main")
    assert plan.action == "update"
    assert '-      "DefaultValue": 0.95' in plan.diff and '+      "DefaultValue": 0.9' in plan.diff
    assert "UpdatePipeline" in writes(calls) and "CreatePipeline" not in calls
    assert json.loads(sm.describe_pipeline(PipelineName=rendered.pipeline_name)["PipelineDefinition"]) == document


def test_dry_run_writes_nothing(aws: tuple[Any, Any, list[str]], local_config: Config, rendered: RenderedBuild) -> None:
    sm, s3, calls = aws
    plan = upsert(sm, s3, local_config, rendered, "main", dry_run=True)
    assert plan.action == "create"
    assert writes(calls) == []
    assert sm.list_pipelines()["PipelineSummaries"] == []


def test_upsert_failure_names_the_pipeline(local_config: Config, rendered: RenderedBuild) -> None:
    sm = boto3.client("sagemaker", region_name="us-east-1")
    s3 = boto3.client("s3", region_name="us-east-1")
    with Stubber(sm) as sm_stub, Stubber(s3) as s3_stub:
        sm_stub.add_client_error("describe_pipeline", "ResourceNotFound", "no such pipeline")
        for _upload in rendered.uploads:
            s3_stub.add_response("head_object", {})
        sm_stub.add_client_error("create_pipeline", "ValidationException", "Role is not valid", http_status_code=400)
        with pytest.raises(
            BuildError,
            match=f"create of pipeline {rendered.pipeline_name} failed: ValidationException: Role is not valid",
        ):
            upsert(sm, s3, local_config, rendered, "main")


def test_start_writes_an_auditable_manifest(
    aws: tuple[Any, Any, list[str]], local_config: Config, rendered: RenderedBuild
) -> None:
    sm, s3, _ = aws
    with pytest.raises(BuildError, match="does not exist"):
        start(sm, s3, local_config, rendered, branch="main", commit=COMMIT, build_id=BUILD_ID)
    upsert(sm, s3, local_config, rendered, "main")
    execution = start(sm, s3, local_config, rendered, branch="main", commit=COMMIT, build_id=BUILD_ID)
    assert execution.arn.startswith("arn:aws:sagemaker:us-east-1:")
    key = f"breast-cancer/main/{BUILD_ID}/manifest.json"
    assert execution.manifest_uri == f"s3://{local_config.build.artifact_bucket}/{key}"
    manifest = json.loads(s3.get_object(Bucket=local_config.build.artifact_bucket, Key=key)["Body"].read())
    assert manifest["git_commit"] == COMMIT and manifest["build_id"] == BUILD_ID
    assert manifest["input"]["uri"] == rendered.input_data_uri and len(manifest["input"]["sha256"]) == 64
    assert manifest["pipeline_execution_arn"] == execution.arn
    assert manifest["definition_sha256"] == rendered.definition_sha256
    assert wait(sm, execution.arn, timeout_seconds=5, sleep=pytest.fail) == "Succeeded"


def _stub_describe(stub: Stubber, arn: str, status: str, **extra: Any) -> None:
    stub.add_response(
        "describe_pipeline_execution", {"PipelineExecutionArn": arn, "PipelineExecutionStatus": status, **extra}
    )


def test_wait_reports_the_failing_step_and_its_reason() -> None:
    arn = "arn:aws:sagemaker:us-east-1:000000000001:pipeline/p/execution/abc"
    sm = boto3.client("sagemaker", region_name="us-east-1")
    sleeps: list[float] = []
    with Stubber(sm) as stub:
        _stub_describe(stub, arn, "Executing")
        _stub_describe(stub, arn, "Failed")
        stub.add_response(
            "list_pipeline_execution_steps",
            {
                "PipelineExecutionSteps": [
                    {"StepName": "Preprocess", "StepStatus": "Succeeded", "StartTime": "2026-11-22T02:00:00Z"},
                    {
                        "StepName": "Fail",
                        "StepStatus": "Failed",
                        "StartTime": "2026-11-22T02:09:00Z",
                        "FailureReason": "Model auc 0.91 is below the quality threshold 0.95 - not registered.",
                    },
                ]
            },
        )
        _stub_describe(stub, arn, "Failed")
        with pytest.raises(PipelineExecutionFailed) as caught:
            wait(sm, arn, timeout_seconds=600, poll_seconds=30, sleep=sleeps.append, clock=lambda: 0.0)
    assert "step Fail Failed: Model auc 0.91 is below the quality threshold 0.95" in str(caught.value)
    assert sleeps == [1]  # the first poll comes quickly


def test_wait_is_bounded() -> None:
    arn = "arn:aws:sagemaker:us-east-1:000000000001:pipeline/p/execution/abc"
    sm = boto3.client("sagemaker", region_name="us-east-1")
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with Stubber(sm) as stub:
        for _ in range(4):
            _stub_describe(stub, arn, "Executing")
        with pytest.raises(BuildError, match="still Executing after 70s"):
            wait(sm, arn, timeout_seconds=70, poll_seconds=30, first_poll_seconds=30, sleep=sleep, clock=lambda: now[0])
    assert now[0] == 70  # 30 + 30 + the 10 s that were left, never past the bound


def _branch_build(config: Config, rendered: RenderedBuild, branch: str) -> RenderedBuild:
    return dataclasses.replace(rendered, pipeline_name=pipeline_name(config.build.pipeline_name, branch))


def test_cleanup_deletes_the_branch_pipeline_and_data_only(
    aws: tuple[Any, Any, list[str]], local_config: Config, rendered: RenderedBuild
) -> None:
    sm, s3, _ = aws
    bucket = local_config.build.artifact_bucket
    layout = BucketLayout(bucket, local_config.project.name)
    feature = layout.branch_prefix("feature/x")
    upsert(sm, s3, local_config, _branch_build(local_config, rendered, "feature/x"), "feature/x")
    upsert(sm, s3, local_config, rendered, "main")
    for key in (f"{feature}b1/out.csv", f"{feature}b1/out.csv", "breast-cancer/main/b1/out.csv"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    shown: list[str] = []
    preview = cleanup(sm, s3, local_config, "feature/x", dry_run=True, progress=shown.append)
    assert (preview.pipeline_deleted, preview.objects_deleted) == (True, 2)  # two versions of one key
    assert shown[0].startswith("cleanup of branch 'feature/x': pipeline breast-cancer-build-feature-x-")
    assert f"2 object version(s) under s3://{bucket}/{feature}" in shown[0]
    assert len(sm.list_pipelines()["PipelineSummaries"]) == 2
    result = cleanup(sm, s3, local_config, "refs/heads/feature/x")
    assert (result.pipeline_deleted, result.objects_deleted) == (True, 2)
    names = [p["PipelineName"] for p in sm.list_pipelines()["PipelineSummaries"]]
    assert names == [rendered.pipeline_name]
    remaining = s3.list_object_versions(Bucket=bucket, Prefix="breast-cancer/")
    assert not [v for v in remaining.get("Versions", []) if v["Key"].startswith(feature)]
    assert any(v["Key"] == "breast-cancer/main/b1/out.csv" for v in remaining["Versions"])


@pytest.mark.parametrize("spelling", ["main", "Main", "refs/heads/main", "MASTER", " main"])
def test_cleanup_refuses_the_main_line_in_any_spelling(
    aws: tuple[Any, Any, list[str]], local_config: Config, spelling: str
) -> None:
    sm, s3, calls = aws
    s3.put_object(Bucket=local_config.build.artifact_bucket, Key="breast-cancer/main/b1/out.csv", Body=b"x")
    with pytest.raises(BuildError, match="it is the main line"):
        cleanup(sm, s3, local_config, spelling)
    assert writes(calls) == ["PutObject"]


@pytest.mark.parametrize("branch", ["data", "code", "Code", "refs/heads/data"])
def test_cleanup_of_a_branch_named_like_a_shared_store_leaves_the_store(
    aws: tuple[Any, Any, list[str]], local_config: Config, branch: str
) -> None:
    sm, s3, _ = aws
    bucket = local_config.build.artifact_bucket
    for key in ("breast-cancer/data/abc/breast_cancer.csv", "breast-cancer/code/abc/train.py"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    result = cleanup(sm, s3, local_config, branch)
    assert result.objects_deleted == 0
    keys = {v["Key"] for v in s3.list_object_versions(Bucket=bucket)["Versions"]}
    assert keys == {"breast-cancer/data/abc/breast_cancer.csv", "breast-cancer/code/abc/train.py"}


def test_cleanup_refuses_a_pipeline_that_belongs_to_another_branch(
    aws: tuple[Any, Any, list[str]], local_config: Config, rendered: RenderedBuild
) -> None:
    sm, s3, calls = aws
    name = pipeline_name(local_config.build.pipeline_name, "feature/x")
    # A pipeline of that name, created by hand for another branch (tagged so): in doubt, nothing is deleted.
    upsert(sm, s3, local_config, dataclasses.replace(rendered, pipeline_name=name), "feature/y")
    calls.clear()
    with pytest.raises(BuildError, match="tagged mlops:branch='feature/y', not this branch"):
        cleanup(sm, s3, local_config, "feature/x")
    assert writes(calls) == []


def test_cleanup_refuses_a_prefix_another_live_pipeline_writes_to(
    aws: tuple[Any, Any, list[str]], local_config: Config, rendered: RenderedBuild
) -> None:
    sm, s3, calls = aws
    upsert(sm, s3, local_config, _branch_build(local_config, rendered, "feature/x"), "feature/x")
    # Another live pipeline (say, from a renamed base) whose branch tag maps to the same prefix.
    other = dataclasses.replace(rendered, pipeline_name=f"{local_config.build.pipeline_name}-renamed")
    upsert(sm, s3, local_config, other, "refs/heads/feature/x")
    calls.clear()
    with pytest.raises(BuildError, match="writes to the same prefix"):
        cleanup(sm, s3, local_config, "feature/x")
    assert writes(calls) == []


def test_wait_backs_off_to_the_poll_interval() -> None:
    arn = "arn:aws:sagemaker:us-east-1:000000000001:pipeline/p/execution/abc"
    sm = boto3.client("sagemaker", region_name="us-east-1")
    sleeps: list[float] = []
    with Stubber(sm) as stub:
        for _ in range(7):
            _stub_describe(stub, arn, "Executing")
        _stub_describe(stub, arn, "Succeeded")
        assert (
            wait(sm, arn, timeout_seconds=3600, poll_seconds=30, sleep=sleeps.append, clock=lambda: 0.0) == "Succeeded"
        )
    assert sleeps == [1, 2, 4, 8, 16, 30, 30]


def test_stale_branch_pipelines_are_those_whose_branch_is_gone(
    aws: tuple[Any, Any, list[str]], local_config: Config, rendered: RenderedBuild
) -> None:
    sm, s3, _ = aws
    upsert(sm, s3, local_config, rendered, "main")
    for branch in ("feature/merged", "feature/open"):
        upsert(sm, s3, local_config, _branch_build(local_config, rendered, branch), branch)
    pipelines = branch_pipelines(sm, local_config)
    assert set(pipelines) == {"feature/merged", "feature/open"}  # the main line is never a branch pipeline
    assert stale_branches(pipelines, {"main", "feature/open"}) == ["feature/merged"]
    assert stale_branches(pipelines, {"main"}) == ["feature/merged", "feature/open"]


def _with_source(config: Config, source: str) -> Config:
    data_spec = config.use_case.data.model_copy(update={"source": source})
    return config.model_copy(update={"use_case": config.use_case.model_copy(update={"data": data_spec})})


def test_an_s3_source_is_snapshotted_per_version_and_recorded(
    aws: tuple[Any, Any, list[str]], local_config: Config
) -> None:
    """Issue 15: data from where users keep it. Each version of the object is copied once, server side, to a
    content-addressed key; the record names the source, version and ETag; a wrong header fails before any job."""
    _, s3, calls = aws
    s3.create_bucket(Bucket="team-data")
    s3.put_bucket_versioning(Bucket="team-data", VersioningConfiguration={"Status": "Enabled"})
    payload = bundled_csv_bytes("breast_cancer")
    first_version = s3.put_object(Bucket="team-data", Key="cancer/cases.csv", Body=payload)["VersionId"]
    config = _with_source(local_config, "s3://team-data/cancer/cases.csv")
    layout = BucketLayout(config.build.artifact_bucket, config.project.name)

    uri, record = snapshot_s3_source(s3, config, layout)
    assert uri.startswith(f"s3://{config.build.artifact_bucket}/breast-cancer/data/s3-") and uri.endswith("/")
    assert record["source"] == "s3://team-data/cancer/cases.csv" and record["version_id"] == first_version
    assert record["etag"] and record["size"] == len(payload)
    key = uri.removeprefix(f"s3://{config.build.artifact_bucket}/") + "cases.csv"
    copied = s3.get_object(Bucket=config.build.artifact_bucket, Key=key)
    assert copied["Body"].read() == payload and copied["ServerSideEncryption"] == "aws:kms"

    calls.clear()
    assert snapshot_s3_source(s3, config, layout)[0] == uri  # the same version: the same snapshot, no copy
    assert "CopyObject" not in calls
    s3.put_object(Bucket="team-data", Key="cancer/cases.csv", Body=payload.replace(b"\n1", b"\n0", 1))
    changed, changed_record = snapshot_s3_source(s3, config, layout)
    assert changed != uri and changed_record["version_id"] != first_version  # a new version: a new input

    s3.put_object(Bucket="team-data", Key="cancer/other.csv", Body=b"radius,label\n1,0\n")
    with pytest.raises(DatasetError, match=r"s3://team-data/cancer/other.csv: missing column\(s\)"):
        snapshot_s3_source(s3, _with_source(local_config, "s3://team-data/cancer/other.csv"), layout)
    with pytest.raises(BuildError, match=r"could not read its data s3://team-data/cancer/absent.csv") as raised:
        snapshot_s3_source(s3, _with_source(local_config, "s3://team-data/cancer/absent.csv"), layout)
    assert "s3:GetObject" in str(raised.value.hint)
