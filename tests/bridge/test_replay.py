"""`mlops bridge replay`: drain the DLQ through the Lambda's own code; delete only what succeeded."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlops.cli import main
from mlops.local.fake_ado import FakeAzureDevOps

from .conftest import Aws, state_change_event


def _dlq(aws: Aws, bodies: list[str]) -> tuple[Any, str]:
    sqs = aws.session.client("sqs")
    url = sqs.create_queue(QueueName="mlops-bridge-dlq")["QueueUrl"]
    for body in bodies:
        # What Lambda's async DLQ holds: the original event as the body, the error as attributes.
        sqs.send_message(
            QueueUrl=url,
            MessageBody=body,
            MessageAttributes={"ErrorCode": {"DataType": "Number", "StringValue": "200"}},
        )
    return sqs, url


def _counts(sqs: Any, url: str) -> tuple[int, int]:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def _bodies(aws: Aws) -> tuple[list[str], str, str]:
    first, second, pending = aws.register(status="Approved"), aws.register(status="Approved"), aws.register()
    malformed = state_change_event(aws, first, event_id="evt-bad")
    del malformed["detail"]
    bodies = [
        json.dumps(state_change_event(aws, first, event_id="evt-a1")),
        json.dumps(state_change_event(aws, first, event_id="evt-a2")),  # same approval, another delivery
        json.dumps(state_change_event(aws, second, event_id="evt-b")),
        json.dumps(state_change_event(aws, pending, event_id="evt-pending")),
        json.dumps(malformed),
        "{not json",
    ]
    return bodies, first, second


def test_replay_starts_one_run_per_distinct_approval_and_leaves_failures_on_the_queue(
    aws: Aws, fake_ado: FakeAzureDevOps, lambda_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    bodies, first, second = _bodies(aws)
    sqs, url = _dlq(aws, bodies)

    code = main(["bridge", "replay", "--queue-url", url, "--wait-seconds", "0", "--visibility-timeout", "60"])

    out, err = capsys.readouterr()
    assert code == 1  # some messages failed: not a success
    assert sorted(run.template_parameters["modelPackageArn"] for run in fake_ado.runs) == sorted([first, second])
    assert "replayed 6 message(s)" in out and "1 duplicate, 1 ignored, 2 started, 2 failed" in out
    assert "2 of 6 message(s) failed and stay on" in err
    assert _counts(sqs, url) == (0, 2)  # the two bad ones stay (hidden for the visibility timeout)


def test_replay_keeps_a_message_whose_run_could_not_start(
    aws: Aws, fake_ado: FakeAzureDevOps, lambda_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    arn = aws.register(status="Approved")
    sqs, url = _dlq(aws, [json.dumps(state_change_event(aws, arn))])
    fake_ado.fail_next(503, only="runs")

    assert main(["bridge", "replay", "--queue-url", url, "--wait-seconds", "0", "--visibility-timeout", "60"]) == 1
    assert fake_ado.runs == [] and _counts(sqs, url) == (0, 1)
    assert "AzureDevOpsUnavailableError" in capsys.readouterr().out


def test_dry_run_starts_nothing_deletes_nothing_and_says_what_would_happen(
    aws: Aws, fake_ado: FakeAzureDevOps, lambda_env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    bodies, _first, _ = _bodies(aws)
    sqs, url = _dlq(aws, bodies)

    code = main(
        ["bridge", "replay", "--dry-run", "--queue-url", url, "--wait-seconds", "0", "--visibility-timeout", "60"]
    )

    out, err = capsys.readouterr()
    assert code == 1  # the unparseable and the malformed message are reported as failures, even in a dry run
    assert fake_ado.requests == [] and aws.idempotency_items() == []
    assert _counts(sqs, url) == (6, 0)  # every message is visible again at once, the broken one included
    assert out.count("would re-check") == 3 and "would ignore" in out and "would fail (malformed)" in out
    # Every message is shown with its verdict: six lines, the non-JSON one with what to do about it.
    verdicts = [line for line in out.splitlines() if line.startswith("  ")]
    assert len(verdicts) == 6
    [not_json] = [line for line in verdicts if "would fail (not JSON)" in line]
    assert "delete it" in not_json
    assert "2 would fail" in out and "would fail (dry run: nothing changed" in err.splitlines()[0]


def test_replay_without_the_bridge_environment_says_what_is_missing(
    aws: Aws, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("ADO_ORG_URL", "ADO_PROJECT", "ADO_PIPELINE_ID", "ADO_AUTH_SECRET_ARN", "IDEMPOTENCY_TABLE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("BRIDGE_DLQ_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/dlq")
    assert main(["bridge", "replay"]) == 1
    first_line = capsys.readouterr().err.splitlines()[0]
    assert "ADO_ORG_URL is not set" in first_line


def test_replay_outside_lambda_recognises_what_the_lambda_already_started(
    aws: Aws,
    fake_ado: FakeAzureDevOps,
    lambda_env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Powertools prefixes idempotency keys with AWS_LAMBDA_FUNCTION_NAME unless a key prefix is fixed:
    # without it, a replay from a laptop would compute other keys and start the run a second time.
    from mlops_bridge import handler as lambda_handler

    from .conftest import LambdaContext

    arn = aws.register(status="Approved")
    event = state_change_event(aws, arn, event_id="evt-delivered-twice")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "mlops-bridge-prod")
    assert lambda_handler.handler(event, LambdaContext())["outcome"] == "started"
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME")
    sqs, url = _dlq(aws, [json.dumps(event)])  # e.g. the same event also went to the DLQ

    assert main(["bridge", "replay", "--queue-url", url, "--wait-seconds", "0", "--visibility-timeout", "60"]) == 0
    assert "1 duplicate" in capsys.readouterr().out
    assert len(fake_ado.runs) == 1 and _counts(sqs, url) == (0, 0)
