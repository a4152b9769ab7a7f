"""`mlops demo --drift`: day 2 on the twin left running by `mlops demo`: drift, alarm, retrain.

    shifted traffic to the prod endpoint -> data capture files -> the hourly monitoring execution (the
    twin's clock advanced one hour) -> constraint_violations.json + drift metrics -> the drift alarm goes
    into ALARM -> CloudWatch's state-change event -> the prod rule forwards it to the automation bus ->
    the retrain rule -> the bridge's second route -> a build run in (fake) Azure DevOps with the reason
    -> model-build.yml on the local runner -> a new package, PendingManualApproval like any other.

Every arrow is the twin's real part: the endpoint's capture, the schedule the deploy created, the
monitoring role's permissions, the templates' rules, the bridge's handler in a process of its own.
If the alarm is already in ALARM (an earlier `--drift`), unshifted traffic and one more hour bring it
back to OK first, so each run shows one transition and one retrain.
"""

from __future__ import annotations

import csv
import io
import json
import os
import queue
import random
import sys
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

from mlops.core.config import Config
from mlops.local.bootstrap import APPROVAL_QUEUE
from mlops.local.fake_ado import FakeAzureDevOps
from mlops.local.flow import BUILD_PIPELINE, ORGANIZATION, DemoError, bridge_environment, run_bridge
from mlops.local.twin import TwinState, automation_session, environment, running

# The features shifted (scaled up by SHIFT): tumours measured 60 % larger than any the model was trained on.
SHIFT = 1.6
# Prod captures 20 % of requests: 100 requests of 20 rows give the hourly analysis about 400 rows, enough
# that an unshifted feature stays well under the 0.1 drift threshold (sampling noise ~1.36/sqrt(n)).
ROWS_PER_REQUEST = 20


@dataclass
class DriftReport:
    endpoint: str
    requests: int = 0
    execution: dict[str, Any] = field(default_factory=dict)
    alarm_state: str = ""
    bridge: dict[str, Any] = field(default_factory=dict)
    build_run: dict[str, Any] = field(default_factory=dict)
    new_package: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "endpoint": self.endpoint,
            "requests": self.requests,
            "monitoring_execution": self.execution,
            "alarm_state": self.alarm_state,
            "bridge": self.bridge,
            "build_run": self.build_run,
            "new_package": self.new_package,
        }


def dataset_rows(config: Config) -> tuple[list[str], list[list[str]]]:
    """The use case's data as requests: its features in the endpoint's order, without the label."""
    from model_build import data

    use_case = config.use_case
    _, payload = data.source_csv_bytes(use_case, config.use_case_dir)
    rows = list(csv.reader(io.StringIO(payload.decode())))
    index = [rows[0].index(name) for name in use_case.features]
    body = [[row[i] for i in index] for row in rows[1:]]
    # Data files are often ordered (by class): traffic is a fixed shuffle of it, as cases arrive.
    random.Random(7).shuffle(body)  # noqa: S311 - a reproducible order, not a secret
    return list(use_case.features), body


def shifted_features(config: Config) -> tuple[str, ...]:
    """What the drifted traffic scales: the watched features (the drift alarm's), up to six of them."""
    alarm = config.deploy.prod.monitor.drift_alarm
    return tuple((alarm.features if alarm else config.use_case.drift_features)[:6])


def shifted(header: list[str], rows: list[list[str]], factor: float, features: tuple[str, ...]) -> list[list[str]]:
    columns = [header.index(name) for name in features]
    out = []
    for row in rows:
        copy = list(row)
        for index in columns:
            copy[index] = f"{float(copy[index]) * factor:.6g}"
        out.append(copy)
    return out


class DriftDemo:
    def __init__(
        self,
        config: Config,
        *,
        repo_root: Path,
        twin_directory: Path,
        progress: Callable[[str], None],
        requests: int = 100,
    ) -> None:
        self.config = config
        self.repo_root = repo_root
        self.twin_directory = twin_directory
        self.progress = progress
        self.requests = requests
        prod = config.deploy.prod
        self.endpoint = prod.endpoint_name
        self.report = DriftReport(endpoint=self.endpoint)
        if not prod.monitor.enabled or prod.monitor.drift_alarm is None:
            raise DemoError(
                "deploy.prod.monitor has no drift alarm in this configuration: nothing can go into ALARM",
                hint="set deploy.prod.monitor.enabled: true and deploy.prod.monitor.drift_alarm in mlops.yaml",
            )
        self.alarm = f"{self.endpoint}-data-drift"

    # ------------------------------------------------------------------------------------------ run

    def run(self, *, retrain: bool = True) -> DriftReport:
        state = running(self.twin_directory)
        if state is None:
            raise DemoError(
                f"no twin is running in {self.twin_directory}: the drift demo needs prod deployed",
                hint="run `mlops demo` first (it leaves the twin running), then `mlops demo --drift`",
            )
        os.environ.update(environment(state, "automation"))
        prod = self._prod_session(state)
        header, rows = dataset_rows(self.config)
        features = shifted_features(self.config)
        if self._alarm_state(prod) == "ALARM":
            self.progress(f"==> {self.alarm} is in ALARM from an earlier run: normal traffic and one hour reset it")
            self._send(prod, rows)
            self._advance(state)
        self.progress(f"==> {self.requests} requests with drifted inputs ({', '.join(features)} x{SHIFT})")
        self.report.requests = self._send(prod, shifted(header, rows, SHIFT, features))
        self.progress("==> the twin's clock moves one hour: the hourly data-quality monitoring runs")
        self.report.execution = self._advance(state)
        self.report.alarm_state = self._alarm_state(prod)
        self.progress(f"    alarm {self.alarm}: {self.report.alarm_state}")
        if self.report.alarm_state != "ALARM":
            raise DemoError(
                f"the drift alarm {self.alarm} is {self.report.alarm_state}, expected ALARM after drifted traffic",
                hint="check the monitoring execution above (status, violations) and the alarm's threshold",
            )
        self._retrain(state, run_build=retrain)
        return self.report

    # ----------------------------------------------------------------------------------------- steps

    def _prod_session(self, state: TwinState) -> boto3.Session:
        env = environment(state, "prod")
        return boto3.Session(
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=env.get("AWS_SESSION_TOKEN"),
            region_name=state.region,
        )

    def _send(self, prod: boto3.Session, rows: list[list[str]]) -> int:
        runtime = prod.client("sagemaker-runtime")
        sent = 0
        for index in range(self.requests):
            chosen = [rows[(index * ROWS_PER_REQUEST + k) % len(rows)] for k in range(ROWS_PER_REQUEST)]
            body = "\n".join(",".join(r) for r in chosen)
            runtime.invoke_endpoint(EndpointName=self.endpoint, Body=body.encode(), ContentType="text/csv")
            sent += 1
        return sent

    def _advance(self, state: TwinState) -> dict[str, Any]:
        url = f"{state.url}/_twin/monitoring/run?hours=1"
        request = urllib.request.Request(url, method="POST")  # noqa: S310 - the twin on loopback
        with urllib.request.urlopen(request, timeout=120) as response:  # noqa: S310 - the twin on loopback
            answer = json.loads(response.read())
        ours = [e for e in answer["executions"] if e.get("EndpointName") == self.endpoint]
        if not ours:
            raise DemoError(
                f"no monitoring execution ran for {self.endpoint}: the deploy created no schedule",
                hint="deploy prod with deploy.prod.monitor.enabled: true (`mlops demo` does)",
            )
        execution = ours[-1]
        status = execution["MonitoringExecutionStatus"]
        self.progress(f"    monitoring execution: {status} on {execution.get('Rows', 0)} captured rows")
        if status == "Failed":
            raise DemoError(f"the monitoring execution failed: {execution.get('FailureReason')}")
        for violation in execution.get("Violations", [])[:6]:
            self.progress(
                f"      {violation['feature_name']}: {violation['constraint_check_type']}: {violation['description']}"
            )
        if execution.get("ReportUri"):
            self.progress(f"    report: {execution['ReportUri']}/constraint_violations.json")
        return dict(execution)

    def _alarm_state(self, prod: boto3.Session) -> str:
        alarms = prod.client("cloudwatch").describe_alarms(AlarmNames=[self.alarm]).get("MetricAlarms", [])
        if not alarms:
            raise DemoError(
                f"the drift alarm {self.alarm} does not exist in prod",
                hint="deploy prod with deploy.prod.monitor.drift_alarm set (`mlops demo` does)",
            )
        return str(alarms[0]["StateValue"])

    def _retrain(self, state: TwinState, *, run_build: bool) -> None:
        automation = automation_session(state.url, self.config.region)
        runs: queue.Queue[Any] = queue.Queue()
        env, fake = self._bridge_environment(automation, state, runs)
        try:
            sqs = automation.client("sqs")
            url = sqs.get_queue_url(QueueName=APPROVAL_QUEUE)["QueueUrl"]
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
            alarms = [m for m in messages if json.loads(m["Body"]).get("source") == "aws.cloudwatch"]
            if not alarms:
                raise DemoError(
                    "the alarm's state change did not reach the retrain rule in the automation account",
                    hint="check the prod rule mlops-prod-drift-alarms and the automation rule mlops-bridge-retrain",
                )
            for message in alarms:
                self.report.bridge = json.loads(run_bridge(message["Body"], env, "the alarm event"))
                self.progress(
                    f"    bridge: {self.report.bridge.get('outcome')} build run {self.report.bridge.get('runId')}"
                )
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            started = [r for r in fake.runs if r.pipeline_id == self.config.azure_devops.pipelines.build]
            if len(started) != 1:
                raise DemoError(f"expected exactly one build run for the alarm, found {len(started)}")
            run = started[0]
            self.report.build_run = {"id": run.id, "parameters": dict(run.template_parameters)}
            self.progress(f"    build run {run.id}: {run.template_parameters.get('retrainReason')}")
            if run_build:
                self._build(runs.get(timeout=5), automation)
                fake.set_run_state(run.id, "completed", "succeeded")
        finally:
            fake.stop()

    def _bridge_environment(
        self, automation: boto3.Session, state: TwinState, runs: queue.Queue[Any]
    ) -> tuple[dict[str, str], FakeAzureDevOps]:
        """The bridge Lambda's environment and role as the template deploys it (as the demo's bridge stage)."""
        token = "twin-pat-" + os.urandom(8).hex()
        fake = FakeAzureDevOps(ORGANIZATION, pat=token, on_trigger=runs.put).start()
        env = bridge_environment(
            automation, self.config, state.url, self.twin_directory, org_url=fake.org_url, token=token
        )
        return env, fake

    def _build(self, run: Any, automation: boto3.Session) -> None:
        from mlops.local.pipeline_credentials import TwinServiceConnections
        from mlops.pipelines.runner import run_pipeline

        self.progress("==> the retrain: model-build.yml with the alarm's reason")
        bin_dir = str(Path(sys.executable).parent)

        def stage_progress(event: Any) -> None:
            if event.kind in ("stage_finished", "issue"):
                self.progress(f"    {event.text}")

        result = run_pipeline(
            self.repo_root / BUILD_PIPELINE,
            {"runChecks": "false", "waitTimeoutSeconds": "600", **run.template_parameters},
            variables={
                "Build.SourceBranch": "refs/heads/main",
                "Build.SourceBranchName": "main",
                "Build.Reason": "Manual",
            },
            sources_dir=self.repo_root,
            service_connections=TwinServiceConnections(self.twin_directory),
            env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"},
            progress=stage_progress,
        )
        if result.status.lower() not in ("succeeded", "succeededwithissues"):
            raise DemoError(f"the retrain build (model-build.yml) ended {result.status}", hint="see the output above")
        sm = automation.client("sagemaker")
        newest = sm.list_model_packages(
            ModelPackageGroupName=self.config.build.model_package_group, SortBy="CreationTime", SortOrder="Descending"
        )["ModelPackageSummaryList"][0]
        self.report.new_package = {"arn": newest["ModelPackageArn"], "status": newest["ModelApprovalStatus"]}
        self.progress(f"    new package {newest['ModelPackageArn']}: {newest['ModelApprovalStatus']}")
