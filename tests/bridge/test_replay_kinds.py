"""`mlops bridge replay` handles every kind of message the DLQ holds: approvals, retrain alarms, reminder ticks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlops.cli import main
from mlops.local.fake_ado import FakeAzureDevOps

from .conftest import Aws, state_change_event
from .test_replay import _counts, _dlq
from .test_retrain import ALARM, BUILD_PIPELINE, alarm_event

# What the reminder schedule (an EventBridge schedule rule) delivers, and dead-letters when the Lambda fails.
REMINDER_TICK = {
    "version": "0",
    "id": "tick-1",
    "detail-type": "Scheduled Event",
    "source": "aws.events",
    "account": "000000000001",
    "time": "2026-12-01T09:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:events:us-east-1:000000000001:rule/mlops-bridge-reminders"],
    "detail": {},
}
UNKNOWN = {"version": "0", "id": "x", "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2"}


@pytest.fixture
def every_kind(aws: Aws, lambda_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> tuple[Any, str, str]:
    topic = aws.session.client("sns").create_topic(Name="mlops-reminders")["TopicArn"]
    monkeypatch.setenv("REMINDER_TOPIC_ARN", topic)
    monkeypatch.setenv("ADO_BUILD_PIPELINE_ID", BUILD_PIPELINE)
    monkeypatch.setenv("RETRAIN_ALARM_NAMES", ALARM)
    approved = aws.register(status="Approved")
    sqs, url = _dlq(
        aws,
        [
            json.dumps(state_change_event(aws, approved)),
            json.dumps(alarm_event()),
            json.dumps(REMINDER_TICK),
            json.dumps(UNKNOWN),
        ],
    )
    return sqs, url, approved


def test_replay_routes_each_kind_to_its_handler(
    every_kind: tuple[Any, str, str], fake_ado: FakeAzureDevOps, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs, url, approved = every_kind
    code = main(["bridge", "replay", "--queue-url", url, "--wait-seconds", "0", "--visibility-timeout", "60"])
    out, _ = capsys.readouterr()
    assert code == 1  # the unknown message cannot succeed
    by_pipeline = {run.pipeline_id: run for run in fake_ado.runs}
    assert by_pipeline[2].template_parameters["modelPackageArn"] == approved  # the approval: a deploy run
    assert "retrainReason" in by_pipeline[int(BUILD_PIPELINE)].template_parameters  # the alarm: a build run
    assert "replayed 4 message(s)" in out and "1 reminders-run, 2 started, 1 failed" in out
    assert "unknown message: an event of source 'aws.ec2'" in out
    assert _counts(sqs, url) == (0, 1)  # only the unknown one is left


def test_dry_run_says_what_each_kind_would_do(
    every_kind: tuple[Any, str, str], fake_ado: FakeAzureDevOps, capsys: pytest.CaptureFixture[str]
) -> None:
    sqs, url, _ = every_kind
    code = main(
        ["bridge", "replay", "--dry-run", "--queue-url", url, "--wait-seconds", "0", "--visibility-timeout", "60"]
    )
    out, _ = capsys.readouterr()
    assert code == 1 and fake_ado.runs == []
    assert "would re-check" in out
    assert f"would start the build (retrain) for alarm {ALARM}" in out
    assert "would run the pending-approval reminders now" in out
    assert "would fail (unknown message" in out
    assert _counts(sqs, url) == (4, 0)
