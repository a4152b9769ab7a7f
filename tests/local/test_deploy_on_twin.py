"""`mlops deploy` against the twin: create, an empty re-deploy, a blue/green canary update that keeps
answering requests, and an alarm during the update that rolls it back to the previous config."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import moto.sts.models
import pytest

from mlops.cli import main
from mlops.core.aws import SessionRefreshError, assume_role_session
from model_build.build import render, start, upsert, wait
from model_deploy.clients import AutomationClients, StageClients
from model_deploy.deploy import deploy

from .conftest import Twin

REPO_ROOT = Path(__file__).resolve().parents[2]
ENDPOINT = "breast-cancer-staging"
ALARM = f"{ENDPOINT}-5xx-errors"
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def packages(twin: Twin) -> list[str]:
    """Three approved versions of the real model (the first run trains, the others hit the cache)."""
    sm, s3 = twin.client("sagemaker"), twin.client("s3")
    rendered = render(twin.config, "main")
    upsert(sm, s3, twin.config, rendered, "main")
    for index in range(3):
        execution = start(
            sm, s3, twin.config, rendered, branch="main", commit="0" * 40, build_id=f"20261122T00000{index}Z-0000000"
        )
        wait(sm, execution.arn, timeout_seconds=180, poll_seconds=0.5)
    summaries = sm.list_model_packages(ModelPackageGroupName="breast-cancer", SortOrder="Ascending")
    arns = [p["ModelPackageArn"] for p in summaries["ModelPackageSummaryList"]]
    for arn in arns:
        sm.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Approved", ApprovalDescription="test")
    return arns


@pytest.fixture
def canary_staging(twin: Twin, monkeypatch: pytest.MonkeyPatch, restore_environ: None) -> Iterator[None]:
    monkeypatch.setenv("MLOPS_CONFIG", str(REPO_ROOT / "mlops.yaml"))
    monkeypatch.setenv("MLOPS_PROFILE", "local")
    # `mlops deploy` runs as the pipeline runs it: on the staging deploy connection's role session (in the
    # staging account), reading the registry through the automation account's reader role.
    for name, value in twin.connection_env("aws-deploy-staging").items():
        if name.startswith("AWS_") and not name.startswith("AWS_ENDPOINT_URL"):
            monkeypatch.setenv(name, value)
    # A canary with long waits (scaled by the twin's 0.001): time to observe and to trip an alarm.
    for key, value in {
        "TRAFFIC": "canary",
        "CANARY_PERCENT": "50",
        "CANARY_WAIT_SECONDS": "1500",
        "BAKE_SECONDS": "1500",
        "MAX_EXECUTION_SECONDS": "3600",
    }.items():
        monkeypatch.setenv(f"MLOPS__DEPLOY__STAGING__BLUE_GREEN__{key}", value)
    yield


def _live_config(twin: Twin) -> str:
    return str(twin.client("sagemaker", "staging").describe_endpoint(EndpointName=ENDPOINT)["EndpointConfigName"])


def test_create_empty_update_and_alarm_rollback(
    twin: Twin, packages: list[str], canary_staging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second, third = packages
    assert main(["deploy", "--stage", "staging", "--model-package-arn", first]) == 0
    v1_config = _live_config(twin)
    assert "-v1-" in v1_config
    capsys.readouterr()

    assert main(["deploy", "--stage", "staging", "--model-package-arn", first]) == 0
    assert "nothing to do: this package is live" in capsys.readouterr().out  # not deployed again
    assert _live_config(twin) == v1_config

    runtime = twin.client("sagemaker-runtime", "staging")
    row = "17.99,10.38,122.8,1001,0.1184,0.2776,0.3001,0.1471,0.2419,0.07871,1.095,0.9053,8.589,153.4,0.006399," + (
        "0.04904,0.05373,0.01587,0.03003,0.006193,25.38,17.33,184.6,2019,0.1622,0.6656,0.7119,0.2654,0.4601,0.1189"
    )
    statuses: list[int] = []
    stop = threading.Event()

    def traffic() -> None:
        while not stop.is_set():
            response = runtime.invoke_endpoint(EndpointName=ENDPOINT, ContentType="text/csv", Body=row)
            statuses.append(response["ResponseMetadata"]["HTTPStatusCode"])

    sender = threading.Thread(target=traffic)
    sender.start()
    try:
        assert main(["deploy", "--stage", "staging", "--model-package-arn", second]) == 0
    finally:
        stop.set()
        sender.join()
    v2_config = _live_config(twin)
    assert "-v2-" in v2_config and statuses and set(statuses) == {200}  # answered throughout the update

    # An alarm in ALARM while the third version's update runs: SageMaker's guardrail rolls it back.
    cloudwatch = twin.client("cloudwatch", "staging")
    sagemaker = twin.client("sagemaker", "staging")
    tripped = threading.Event()

    def trip_during_update() -> None:
        for _ in range(20000):
            if sagemaker.describe_endpoint(EndpointName=ENDPOINT)["EndpointStatus"] == "Updating":
                cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="ALARM", StateReason="test: errors")
                tripped.set()
                return

    watcher = threading.Thread(target=trip_during_update)
    watcher.start()
    code = main(["deploy", "--stage", "staging", "--model-package-arn", third])
    watcher.join()
    assert tripped.is_set()
    assert code == 1
    assert "roll" in capsys.readouterr().err.lower()
    assert _live_config(twin) == v2_config  # the previous good deployment survived


def test_a_deploy_whose_session_cannot_be_refreshed_stops_clearly_and_the_live_config_stays(
    twin: Twin, packages: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # One clock for the twin's STS, its IAM gate and the refreshable credentials (no waiting).
    now = [datetime.now(UTC)]
    monkeypatch.setattr(moto.sts.models, "utcnow", lambda: now[0].replace(tzinfo=None))
    monkeypatch.setattr(twin.server.iam, "clock", lambda: now[0])
    env = twin.connection_env("aws-deploy-staging")
    stage = boto3.Session(
        env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env["AWS_SESSION_TOKEN"], region_name=twin.config.region
    )
    reader = assume_role_session(
        stage,
        "arn:aws:iam::000000000001:role/mlops-registry-read",
        "mlops-staging-registry-read",
        twin.config.region,
        duration_seconds=900,
        time_fetcher=lambda: now[0],
    )
    sagemaker = twin.client("sagemaker", "staging")
    endpoints = {e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]}
    live = _live_config(twin) if ENDPOINT in endpoints else None
    now[0] += timedelta(hours=2)  # the chained session must refresh, and the step's session it comes from ended
    with pytest.raises(SessionRefreshError, match="mlops-registry-read expires and could not be refreshed"):
        deploy(
            twin.config,
            "staging",
            packages[-1],
            automation=AutomationClients.from_session(reader),
            stage_clients=StageClients.from_session(stage),
        )
    monkeypatch.undo()
    assert (_live_config(twin) if live is not None else None) == live  # nothing was changed
    assert {e["EndpointName"] for e in sagemaker.list_endpoints()["Endpoints"]} == endpoints
