"""The whole flow end to end through the YAML files on the twin: what `make demo` runs.

build (model-build.yml) -> approve -> registry event -> bridge -> fake Azure DevOps -> model-deploy.yml
(verify, staging deploy and tests, prod approval, prod deploy, smoke tests).

Built once, deployed three ways: the module's twin runs `mlops demo` once (version 1 reaches prod).
Each failure scenario then builds a new version through the same SageMaker pipeline (its steps hit
the step cache, so only Register runs again), approves it, and runs model-deploy.yml for it: a
rejected prod approval and a failing staging suite must leave prod serving version 1, untouched.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

from mlops.cli import main
from mlops.core.config import Config, load_config
from mlops.local.pipeline_credentials import TwinServiceConnections
from mlops.local.twin import down, environment, running
from mlops.pipelines.results import ApprovalRequest
from mlops.pipelines.runner import run_pipeline
from model_build import data
from model_build.card import read_card

REPO_ROOT = Path(__file__).resolve().parents[2]
GROUP = "breast-cancer"
# A use case made by `mlops new use-case` (another task and framework), beside the shipped ones in the same twin.
GENERATED = "progress"
pytestmark = pytest.mark.slow


@dataclass
class Demo:
    directory: Path
    config: Config
    exit_code: int
    report: dict[str, Any]
    stderr: str

    def client(self, service: str, account: str) -> Any:
        state = running(self.directory)
        assert state is not None, "the demo leaves the twin running"
        env = environment(state, account)
        return boto3.client(
            service,
            endpoint_url=state.url,
            region_name=state.region,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=env.get("AWS_SESSION_TOKEN"),
        )

    def endpoints(self, account: str) -> list[str]:
        return [e["EndpointName"] for e in self.client("sagemaker", account).list_endpoints()["Endpoints"]]

    def live_config(self, account: str, endpoint: str) -> str:
        return str(self.client("sagemaker", account).describe_endpoint(EndpointName=endpoint)["EndpointConfigName"])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """`mlops demo` once, in a twin of this module's own; the environment is restored afterwards."""
    before = dict(os.environ)
    directory = tmp_path_factory.mktemp("e2e") / "twin"
    report_file = directory.parent / "report.json"
    # The shipped use cases plus one generated as a data scientist would, so the twin provisions all three
    # (one set of accounts) and the demo's default use case shares them with the others.
    use_cases = directory.parent / "use_cases"
    shutil.copytree(REPO_ROOT / "model_build/use_cases", use_cases)
    os.environ.update(
        {
            "MLOPS_TWIN_DIR": str(directory),
            "MLOPS_CONFIG": str(REPO_ROOT / "mlops.yaml"),
            "MLOPS__USE_CASES__PATH": str(use_cases),
        }
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)
    stderr = io.StringIO()
    try:
        generate = ["new", "use-case", GENERATED, "--task", "regression", "--framework", "sklearn"]
        assert main([*generate, "--dir", str(use_cases)]) == 0
        with contextlib.redirect_stderr(stderr):
            code = main(["demo", "--auto-approve", "--report", str(report_file)])
        report = json.loads(report_file.read_text()) if report_file.exists() else {}
        yield Demo(directory, load_config(REPO_ROOT / "mlops.yaml", profile="local"), code, report, stderr.getvalue())
    finally:
        down(directory)
        os.environ.clear()
        os.environ.update(before)


def test_demo_runs_the_whole_flow_through_the_pipeline_files(demo: Demo) -> None:
    assert demo.exit_code == 0, demo.stderr[-3000:]
    report = demo.report
    assert [(s["name"], s["status"]) for s in report["stages"]] == [
        ("Azure DevOps project (mlops ado apply)", "Succeeded"),
        ("Twin up", "Succeeded"),
        ("Build pipeline (model-build.yml)", "Succeeded"),
        ("Approve the model package", "Succeeded"),
        ("Registry event -> bridge -> Azure DevOps run", "Succeeded"),
        ("Deploy pipeline (model-deploy.yml)", "Succeeded"),
    ]
    assert report["model_package_arn"] == f"arn:aws:sagemaker:us-east-1:000000000001:model-package/{GROUP}/1"
    assert report["metrics"]["auc"] > 0.95
    assert sorted((e["stage"], e["account"], e["status"]) for e in report["endpoints"]) == [
        ("prod", "000000000003", "InService"),
        ("staging", "000000000002", "InService"),
    ]
    # The twin comes up beside the build's first stage; every other stage follows the one before it.
    seconds = {s["name"]: s["seconds"] for s in report["stages"]}
    assert report["total_seconds"] >= sum(v for k, v in seconds.items() if k != "Twin up") - 0.01
    assert report["total_seconds"] >= seconds["Twin up"] + seconds["Deploy pipeline (model-deploy.yml)"]
    assert "approval for environment mlops-prod: approved automatically" in demo.stderr

    # Prod serves the approved model: real probabilities for a raw row of the data set.
    first = data.dataset_csv_bytes().decode().splitlines()[1].rsplit(",", 1)
    row, label = first[0], int(first[1])
    answer = json.loads(
        demo.client("sagemaker-runtime", "prod")
        .invoke_endpoint(EndpointName="breast-cancer", ContentType="text/csv", Body=row)["Body"]
        .read()
    )
    assert label == 1 and answer["predictions"][0]["label"] == 1  # the data set's first row is malignant


def _mlflow(url: str, path: str) -> Any:
    with urllib.request.urlopen(f"{url}/api/2.0/mlflow/{path}", timeout=30) as response:
        return json.loads(response.read())


def test_the_build_is_an_mlflow_run_and_the_package_carries_its_card_lifecycle_and_run(demo: Demo) -> None:
    assert demo.exit_code == 0, demo.stderr[-3000:]
    report = demo.report
    url, run_url = report["mlflow_url"], report["mlflow_run_url"]
    assert url.startswith("http://127.0.0.1:") and run_url.startswith(f"{url}/#/experiments/")
    package = demo.client("sagemaker", "automation").describe_model_package(
        ModelPackageName=report["model_package_arn"]
    )
    assert package["ModelApprovalStatus"] == "Approved"
    assert (package["ModelLifeCycle"]["Stage"], package["ModelLifeCycle"]["StageStatus"]) == ("Prod", "Deployed")
    card = read_card(package["ModelCard"])
    assert card is not None and card.metrics == pytest.approx(report["metrics"])
    assert len(card.top_features) == 10 and card.details["pipeline_execution_arn"].endswith(
        package["MetadataProperties"]["GeneratedBy"].rsplit("/", 1)[-1]
    )
    assert package["ModelMetrics"]["Explainability"]["Report"]["S3Uri"].endswith("/analysis.json")
    run_id = package["CustomerMetadataProperties"]["mlflow_run_id"]
    assert run_url.endswith(f"/runs/{run_id}")
    run = _mlflow(url, f"runs/get?run_id={run_id}")["run"]
    assert run["info"]["status"] == "FINISHED"
    logged = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert logged == pytest.approx(report["metrics"])
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["mlops.model_package_arn"] == report["model_package_arn"]
    assert tags["mlops.pipeline_execution_arn"] == package["MetadataProperties"]["GeneratedBy"]
    listed = {f["path"] for f in _mlflow(url, f"artifacts/list?run_id={run_id}&path=evaluation")["files"]}
    assert {"evaluation/roc.png", "evaluation/confusion_matrix.png", "evaluation/analysis.json"} <= listed
    assert [f["path"] for f in _mlflow(url, f"artifacts/list?run_id={run_id}&path=model")["files"]] == [
        "model/model.tar.gz"
    ]


def test_lineage_walks_from_the_prod_endpoint_to_the_runs(demo: Demo, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["--profile", "local", "lineage", "breast-cancer", "--format", "json"]) == 0
    links = {link["name"]: link for link in json.loads(capsys.readouterr().out)}
    assert links["endpoint"]["value"].startswith("breast-cancer (prod, InService)")
    assert links["model package"]["value"] == demo.report["model_package_arn"]
    assert links["pipeline execution"]["value"].startswith("arn:aws:sagemaker:us-east-1:000000000001:pipeline/")
    assert (
        links["data snapshot"]["detail"].startswith("sha256 ") and "not recorded" not in links["data snapshot"]["value"]
    )
    assert links["MLflow run"]["detail"] == demo.report["mlflow_run_url"]
    assert links["Azure DevOps build run"]["value"].isdigit()  # the local runner's Build.BuildId
    assert links["Azure DevOps deploy run"]["detail"].startswith("http://127.0.0.1:")  # written by the bridge
    assert main(["--profile", "local", "registry", "show", "1"]) == 0
    shown = capsys.readouterr().out
    assert "model card (Draft)" in shown and "top features" in shown and demo.report["mlflow_run_url"] in shown


def test_a_headless_browser_shows_the_runs_metrics_and_roc_plot(demo: Demo) -> None:
    from tests.e2e.webdriver import browser_missing, chromium

    missing = browser_missing()
    if missing:
        pytest.skip(missing)
    run_url = demo.report["mlflow_run_url"]
    auc = demo.report["metrics"]["auc"]
    with chromium() as browser:
        browser.get(run_url)
        browser.find("xpath", "//*[normalize-space(text())='auc']")  # the metrics table has rendered
        text = browser.run("return document.body.innerText;")
        assert all(name in text for name in ("auc", "f1", "precision", "recall", "accuracy"))
        assert repr(auc)[:6] in text
        browser.get(f"{run_url}/artifacts/evaluation/roc.png")
        image = browser.find("css selector", 'img[alt="evaluation/roc.png"]')
        width = browser.run_async(
            "const [img, done] = arguments;"
            "if (img.complete) { done(img.naturalWidth); } else { img.onload = () => done(img.naturalWidth); }",
            browser.element(image),
        )
    assert width == 400  # evaluate.py draws the ROC plot 4 in x 100 dpi


def _release_new_version(demo: Demo) -> str:
    """Build and approve the next version in the demo's twin, as a merge and a reviewer would."""
    assert main(["build", "run", "--branch", "main", "--wait", "--timeout", "300"]) == 0
    packages = demo.client("sagemaker", "automation").list_model_packages(
        ModelPackageGroupName=GROUP, SortBy="CreationTime", SortOrder="Descending"
    )["ModelPackageSummaryList"]
    newest = packages[0]
    assert newest["ModelApprovalStatus"] == "PendingManualApproval"
    arn = str(newest["ModelPackageArn"])
    assert main(["registry", "approve", "--model-package-arn", arn, "--reason", "e2e"]) == 0
    return arn


def _run_deploy(demo: Demo, arn: str, use_case: str, event_id: str, connections: Any, **approval: Any) -> Any:
    """model-deploy.yml for `arn`, with the template parameters the bridge sends for that use case."""
    version = arn.rsplit("/", 1)[-1]
    return run_pipeline(
        REPO_ROOT / "azure-pipelines/model-deploy.yml",
        {
            "useCase": use_case,
            "modelPackageArn": arn,
            "modelPackageGroup": use_case,
            "modelPackageVersion": version,
            "eventId": event_id,
        },
        sources_dir=REPO_ROOT,
        service_connections=connections,
        work_dir=demo.directory.parent / f"deploy-{use_case}-{version}",
        **approval,
    )


def _deploy(demo: Demo, arn: str, approve_prod: Any, requested: list[str] | None = None) -> dict[str, str]:
    """model-deploy.yml for `arn`, with the template parameters the bridge sends: {stage: status}.

    `requested`: filled with the service connections whose credentials the run obtained, in order."""

    def approve(request: ApprovalRequest) -> bool:
        return True if request.environment != "mlops-prod" else bool(approve_prod(request.environment))

    connections = TwinServiceConnections(demo.directory)

    def recorded(name: str) -> Any:
        if requested is not None:
            requested.append(name)
        return connections(name)

    result = _run_deploy(demo, arn, GROUP, "e2e", recorded, approve=approve)
    assert result.status.lower() != "succeeded"
    return {stage.name: stage.status for stage in result.stages}


def test_a_rejected_prod_approval_leaves_prod_untouched(demo: Demo) -> None:
    assert demo.exit_code == 0, "needs the demo's twin"
    prod_config = demo.live_config("prod", "breast-cancer")
    staging_config = demo.live_config("staging", "breast-cancer-staging")
    arn = _release_new_version(demo)
    asked: list[str] = []

    def reject(environment_name: str) -> bool:
        asked.append(environment_name)
        return False

    requested: list[str] = []
    stages = _deploy(demo, arn, reject, requested)
    assert asked == ["mlops-prod"]
    # prod credentials were never obtained: the only prod connection lives in the rejected, gated job
    assert "aws-deploy-prod" not in requested
    assert {"aws-registry-read", "aws-deploy-staging"} <= set(requested)
    assert [stages[s] for s in ("DeployStaging", "TestStaging", "DeployProd")] == ["succeeded", "succeeded", "rejected"]
    assert demo.live_config("staging", "breast-cancer-staging") != staging_config  # staging took the new version
    assert demo.endpoints("prod") == ["breast-cancer"]
    assert demo.live_config("prod", "breast-cancer") == prod_config


def test_failing_staging_tests_stop_the_run_before_prod(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    assert demo.exit_code == 0, "needs the demo's twin"
    prod_config = demo.live_config("prod", "breast-cancer")
    arn = _release_new_version(demo)
    # An impossible latency bound makes the staging suite fail for real.
    monkeypatch.setenv("MLOPS__DEPLOY__STAGING__TESTS__LATENCY_P95_MAX_MS", "0.001")

    def never(environment_name: str) -> bool:
        raise AssertionError(f"the prod approval must not be reached, was asked for {environment_name}")

    stages = _deploy(demo, arn, never)
    assert (stages["DeployStaging"], stages["TestStaging"]) == ("succeeded", "failed")
    assert stages["DeployProd"] not in ("succeeded", "rejected")
    assert demo.endpoints("prod") == ["breast-cancer"]
    assert demo.live_config("prod", "breast-cancer") == prod_config


def _advance_twin_clock(demo: Demo, hours: int = 1) -> list[dict[str, Any]]:
    import urllib.request

    state = running(demo.directory)
    assert state is not None
    request = urllib.request.Request(f"{state.url}/_twin/monitoring/run?hours={hours}", method="POST")
    with urllib.request.urlopen(request, timeout=60) as response:
        executions: list[dict[str, Any]] = json.loads(response.read())["executions"]
    return executions


def test_drift_closes_the_loop(demo: Demo, tmp_path: Path) -> None:
    """`mlops demo --drift`: drifted prod traffic -> capture -> monitoring -> alarm -> bridge -> retrain build."""
    assert demo.exit_code == 0, "needs the demo's twin"
    report_file = tmp_path / "drift.json"
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr):
        # --no-retrain: the retrain build is model-build.yml once more (seconds of CPU the test budget has not);
        # the run the bridge started, with its reason, is what this test checks.
        code = main(["demo", "--drift", "--no-retrain", "--report", str(report_file)])
    assert code == 0, stderr.getvalue()[-3000:]
    report = json.loads(report_file.read_text())
    execution = report["monitoring_execution"]
    assert execution["MonitoringExecutionStatus"] == "CompletedWithViolations"
    assert execution["MonitoringScheduleName"] == "breast-cancer-data-quality"
    drifted = {
        v["feature_name"] for v in execution["Violations"] if v["constraint_check_type"] == "baseline_drift_check"
    }
    # The drifted traffic scales the first six watched features (mlops/local/drift.py); the others keep theirs.
    assert {"mean radius", "mean texture", "mean area", "worst radius"} <= drifted
    assert "worst area" not in drifted and "worst concave points" not in drifted  # not shifted, not flagged
    assert report["alarm_state"] == "ALARM"
    assert report["bridge"]["outcome"] == "started" and report["bridge"]["route"] == "retrain"
    assert report["build_run"]["parameters"]["useCase"] == GROUP  # the drifted use case, not every use case
    reason = report["build_run"]["parameters"]["retrainReason"]
    assert reason.startswith("alarm breast-cancer-data-drift went into ALARM at ")
    assert report["new_package"] == {}  # --no-retrain

    # What SageMaker and Model Monitor leave in the prod account, in their documented formats.
    s3 = demo.client("s3", "prod")
    bucket = "mlops-deploy-000000000003-us-east-1"
    captures = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="data-capture/")["Contents"]]
    assert all(k.endswith(".jsonl") and "/breast-cancer/AllTraffic/" in k for k in captures)
    record = json.loads(s3.get_object(Bucket=bucket, Key=captures[-1])["Body"].read().decode().splitlines()[0])
    assert record["captureData"]["endpointInput"]["encoding"] == "CSV" and record["eventVersion"] == "0"
    assert record["captureData"]["endpointOutput"]["observedContentType"] == "application/json"
    report_key = execution["ReportUri"].removeprefix(f"s3://{bucket}/") + "/constraint_violations.json"
    violations = json.loads(s3.get_object(Bucket=bucket, Key=report_key)["Body"].read())["violations"]
    assert violations == execution["Violations"]
    metrics = demo.client("cloudwatch", "prod").list_metrics(Namespace="/aws/sagemaker/Endpoints/data-metric")
    names = {m["MetricName"] for m in metrics["Metrics"]}
    assert {"feature_baseline_drift_mean radius", "feature_non_null_mean radius"} <= names


def test_a_monitoring_execution_without_or_with_broken_captures_fails(demo: Demo) -> None:
    assert demo.exit_code == 0, "needs the demo's twin"
    _advance_twin_clock(demo)  # the hour of whatever traffic came before (the demo's, the drift test's)
    # An hour without traffic: nothing to analyse is reported, never passed.
    [quiet] = [e for e in _advance_twin_clock(demo) if e["EndpointName"] == "breast-cancer"]
    assert quiet["MonitoringExecutionStatus"] == "Failed"
    assert "no captured data" in quiet["FailureReason"]
    # A capture file that is not SageMaker's format: the execution names it and fails.
    now = _twin_now(demo)
    key = f"data-capture/breast-cancer/breast-cancer/AllTraffic/{now:%Y/%m/%d/%H}/broken.jsonl"
    demo.client("s3", "prod").put_object(
        Bucket="mlops-deploy-000000000003-us-east-1",
        Key=key,
        Body=b'{"captureData": "not a record"}\n',
        ServerSideEncryption="aws:kms",  # the stage bucket refuses anything else
        SSEKMSKeyId="alias/mlops-prod",
    )
    [broken] = [e for e in _advance_twin_clock(demo) if e["EndpointName"] == "breast-cancer"]
    assert broken["MonitoringExecutionStatus"] == "Failed"
    assert "broken.jsonl line 1: not a SageMaker data capture record" in broken["FailureReason"]


def _twin_now(demo: Demo) -> Any:
    """The hour the twin's clock is in: the last execution ran at its start (the clock moves in whole hours)."""
    executions = demo.client("sagemaker", "prod").list_monitoring_executions(
        MonitoringScheduleName="breast-cancer-data-quality", SortOrder="Descending"
    )["MonitoringExecutionSummaries"]
    return executions[0]["ScheduledTime"]


def test_the_rollback_pipeline_returns_prod_to_the_previous_version_behind_the_prod_gate(demo: Demo) -> None:
    """model-rollback.yml (issue 16): a new version reaches prod through model-deploy.yml, then the rollback
    pipeline, gated like prod and on the prod connection only, puts the previous deployment back."""
    assert demo.exit_code == 0, "needs the demo's twin"
    before = demo.live_config("prod", "breast-cancer")
    arn = _release_new_version(demo)
    connections = TwinServiceConnections(demo.directory)
    deployed = _run_deploy(demo, arn, GROUP, "manual", connections, auto_approve=True)
    assert deployed.status == "succeeded", [(s.name, s.status) for s in deployed.stages]
    assert demo.live_config("prod", "breast-cancer") != before  # the new version serves prod

    asked: list[str] = []
    requested: list[str] = []

    def approve(request: ApprovalRequest) -> bool:
        asked.append(request.environment)
        return True

    def recorded(name: str) -> Any:
        requested.append(name)
        return connections(name)

    rolled = run_pipeline(
        REPO_ROOT / "azure-pipelines/model-rollback.yml",
        {"useCase": GROUP, "reason": "e2e: the new version misbehaves"},
        approve=approve,
        sources_dir=REPO_ROOT,
        service_connections=recorded,
        work_dir=demo.directory.parent / "rollback",
        artifacts_dir=demo.directory.parent / "rollback-artifacts",
    )
    assert rolled.status == "succeeded", [(s.name, s.status) for s in rolled.stages]
    assert asked == ["mlops-prod"] and set(requested) == {"aws-deploy-prod"}  # gated, and prod's identity only
    assert demo.live_config("prod", "breast-cancer") == before  # the previous deployment serves again
    plan = json.loads(next((demo.directory.parent / "rollback-artifacts" / "plan-rollback").glob("*.json")).read_text())
    assert json.dumps(plan).count(arn) >= 1  # the published plan names what is rolled back
    previous = demo.client("sagemaker", "automation").describe_model_package(
        ModelPackageName=demo.report["model_package_arn"]
    )
    assert previous["ModelLifeCycle"]["Stage"] == "Prod"  # the lifecycle follows the rollback


def test_a_pull_request_builds_its_own_branch_pipeline_registers_nothing_and_cleanup_removes_it(demo: Demo) -> None:
    """Issue 16: a PR build upserts and runs `<name>-<branch>` (no Register step), on the build connection only;
    the cleanup of the merged branch deletes that pipeline and never touches main's."""
    assert demo.exit_code == 0, "needs the demo's twin"
    sm = demo.client("sagemaker", "automation")
    packages_before = len(sm.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"])
    requested: list[str] = []
    connections = TwinServiceConnections(demo.directory)

    def recorded(name: str) -> Any:
        requested.append(name)
        return connections(name)

    result = run_pipeline(
        REPO_ROOT / "azure-pipelines/model-build.yml",
        {"runChecks": "false", "waitTimeoutSeconds": "300", "useCase": GROUP},
        variables={
            "Build.Reason": "PullRequest",
            "Build.SourceBranch": "refs/pull/7/merge",
            "System.PullRequest.SourceBranch": "refs/heads/feature/e2e",
        },
        sources_dir=REPO_ROOT,
        service_connections=recorded,
        work_dir=demo.directory.parent / "pr-build",
    )
    assert result.status == "succeeded", [(s.name, s.status) for s in result.stages]
    assert {s.name: s.status for s in result.stages}["Build"] == "skipped"  # main's build does not run for a PR
    assert set(requested) == {"aws-build"}
    branch_pipelines = [
        p["PipelineName"]
        for p in sm.list_pipelines()["PipelineSummaries"]
        if p["PipelineName"] != "breast-cancer-build"
    ]
    assert len(branch_pipelines) == 1 and branch_pipelines[0].startswith("breast-cancer-build-feature-e2e-")
    steps = json.loads(sm.describe_pipeline(PipelineName=branch_pipelines[0])["PipelineDefinition"])["Steps"]
    assert not any(step["Type"] == "RegisterModel" for step in _flatten(steps))  # no registration from a PR
    assert len(sm.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"]) == packages_before

    # The cleanup runs as model-build.yml's CleanupBranches job does: on the build connection's role.
    import subprocess
    import sys

    env = {**os.environ, **connections("aws-build")}
    cleaned = subprocess.run(
        [str(Path(sys.executable).with_name("mlops")), "build", "cleanup", "--branch", "refs/heads/feature/e2e"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert cleaned.returncode == 0, cleaned.stderr
    assert "deleted the pipeline" in cleaned.stdout
    remaining = {p["PipelineName"] for p in sm.list_pipelines()["PipelineSummaries"]}
    assert remaining == {"breast-cancer-build"}  # the branch pipeline is gone, main's stays


def _flatten(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Steps, including those inside a Condition step's branches."""
    found: list[dict[str, Any]] = []
    for step in steps:
        found.append(step)
        arguments = step.get("Arguments", {})
        found += _flatten(arguments.get("IfSteps", []) + arguments.get("ElseSteps", []))
    return found


def test_a_generated_use_case_runs_the_whole_flow_beside_the_default_one(demo: Demo) -> None:
    """Issue 15: a use case generated by `mlops new use-case` (regression, scikit-learn) builds through
    model-build.yml and deploys through the one model-deploy.yml, parameterised by use case, in the accounts the
    default use case uses, under the templates' IAM, with names of its own; the default use case is untouched."""
    assert demo.exit_code == 0, "needs the demo's twin"
    live_before = {
        "staging": demo.live_config("staging", f"{GROUP}-staging"),
        "prod": demo.live_config("prod", GROUP),
    }
    connections = TwinServiceConnections(demo.directory)
    build = run_pipeline(
        REPO_ROOT / "azure-pipelines/model-build.yml",
        {"runChecks": "false", "waitTimeoutSeconds": "300", "useCase": GENERATED},
        variables={"Build.SourceBranch": "refs/heads/main", "Build.SourceBranchName": "main", "Build.Reason": "Manual"},
        sources_dir=REPO_ROOT,
        service_connections=connections,
        work_dir=demo.directory.parent / "generated-build",
    )
    assert build.status == "succeeded", [(s.name, s.status) for s in build.stages]
    sm = demo.client("sagemaker", "automation")
    assert {p["PipelineName"] for p in sm.list_pipelines()["PipelineSummaries"]} >= {
        f"{GROUP}-build",
        f"{GENERATED}-build",
    }
    [summary] = sm.list_model_packages(ModelPackageGroupName=GENERATED)["ModelPackageSummaryList"]
    arn = str(summary["ModelPackageArn"])
    package = sm.describe_model_package(ModelPackageName=arn)
    metadata = package["CustomerMetadataProperties"]
    assert (metadata["use_case"], metadata["task"], metadata["framework"]) == (GENERATED, "regression", "sklearn")
    assert main(["--use-case", GENERATED, "registry", "approve", "--model-package-arn", arn, "--reason", "e2e"]) == 0

    deployed = _run_deploy(demo, arn, GENERATED, "e2e-generated", connections, auto_approve=True)
    assert deployed.status == "succeeded", [(s.name, s.status) for s in deployed.stages]
    assert f"{GENERATED}-staging" in demo.endpoints("staging") and GENERATED in demo.endpoints("prod")
    # The default use case's endpoints serve what they served: nothing was shared but the accounts.
    assert demo.live_config("staging", f"{GROUP}-staging") == live_before["staging"]
    assert demo.live_config("prod", GROUP) == live_before["prod"]
    # The regression endpoint answers a number per row, as its contract says.
    row = ",".join(["50", "1", "25.0", "90", "200", "120", "45", "4", "4.6", "90"])
    answer = json.loads(
        demo.client("sagemaker-runtime", "prod")
        .invoke_endpoint(EndpointName=GENERATED, ContentType="text/csv", Body=row)["Body"]
        .read()
    )
    assert isinstance(answer["predictions"][0]["value"], float) and answer["predictions"][0]["value"] > 0
