"""Pending-approval reminders: one SNS message per overdue package, once, never lost on a failure."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from mlops_bridge.errors import ReminderError
from mlops_bridge.reminders import handler

from .conftest import GROUP, OTHER_GROUP, TABLE, Aws, LambdaContext


def _topic_with_queue(aws: Aws) -> tuple[str, Any, str]:
    sns, sqs = aws.session.client("sns"), aws.session.client("sqs")
    topic = sns.create_topic(Name="mlops-approvals")["TopicArn"]
    url = sqs.create_queue(QueueName="approvers")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "false"})
    return topic, sqs, url


def _received(sqs: Any, url: str) -> list[dict[str, Any]]:
    messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def _run(aws: Aws, topic: str, at: datetime) -> dict[str, Any]:
    environ = {
        "REMINDER_TOPIC_ARN": topic,
        "IDEMPOTENCY_TABLE": TABLE,
        "MODEL_PACKAGE_GROUPS": GROUP,
        "REMINDER_MIN_AGE_HOURS": "24",
    }
    return handler({}, LambdaContext(), environ=environ, session=aws.session, clock=lambda: at)


def test_each_overdue_package_is_reminded_once(aws: Aws) -> None:
    topic, sqs, url = _topic_with_queue(aws)
    overdue = aws.register()
    aws.register(status="Approved")
    aws.register(group=OTHER_GROUP)
    tomorrow = datetime.now(UTC) + timedelta(hours=25)

    first = _run(aws, topic, tomorrow)
    second = _run(aws, topic, tomorrow + timedelta(hours=1))  # the next schedule tick

    assert first == {"sent": [overdue], "alreadySent": []}
    assert second == {"sent": [], "alreadySent": [overdue]}
    [message] = _received(sqs, url)
    assert message["Subject"] == f"Model awaiting approval: {GROUP} v1"
    assert overdue in message["Message"] and f"mlops registry approve {overdue}" in message["Message"]


def test_a_package_younger_than_the_minimum_age_is_not_reminded_yet(aws: Aws) -> None:
    topic, sqs, url = _topic_with_queue(aws)
    aws.register()
    assert _run(aws, topic, datetime.now(UTC) + timedelta(hours=23)) == {"sent": [], "alreadySent": []}
    assert _received(sqs, url) == []


def test_a_failed_publish_raises_and_the_next_tick_sends_it(aws: Aws) -> None:
    topic, sqs, url = _topic_with_queue(aws)
    overdue = aws.register()
    later = datetime.now(UTC) + timedelta(hours=30)

    with pytest.raises(ReminderError, match="1 reminder\\(s\\) could not be published") as raised:
        _run(aws, topic.replace("mlops-approvals", "deleted-topic"), later)
    assert overdue in str(raised.value) and raised.value.__cause__ is not None
    assert aws.idempotency_items() == []

    assert _run(aws, topic, later)["sent"] == [overdue]
    assert len(_received(sqs, url)) == 1
