"""Incoming-webhook mode: HMAC-SHA1 over the exact body bytes, checked by the fake's own verifier."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from mlops.local.fake_ado import FakeAzureDevOps
from mlops_bridge.errors import AzureDevOpsAuthError, ConfigurationError

from .conftest import GROUP, Aws, LambdaContext, state_change_event

HOOK = "sagemaker-approvals"
HEADER = "X-Hub-Signature"


@pytest.fixture
def webhook_bridge(aws: Aws, fake_ado: FakeAzureDevOps, make_bridge):  # type: ignore[no-untyped-def]
    aws.session.client("secretsmanager").put_secret_value(
        SecretId=aws.secret_arn, SecretString=json.dumps({"type": "webhook", "hmac_secret": "hook-secret"})
    )
    fake_ado.register_webhook(HOOK, secret="hook-secret", signature_header=HEADER)
    return make_bridge(ADO_TRIGGER="webhook", ADO_WEBHOOK_NAME=HOOK, ADO_WEBHOOK_SIGNATURE_HEADER=HEADER)


def test_a_signed_webhook_carries_the_four_parameters_once_per_approval(
    aws: Aws, fake_ado: FakeAzureDevOps, webhook_bridge
) -> None:
    arn = aws.register(status="Approved")
    outcomes = [
        webhook_bridge.handle(state_change_event(aws, arn, event_id=f"e{i}"), LambdaContext())["outcome"]
        for i in range(3)
    ]

    assert outcomes == ["started", "duplicate", "duplicate"]
    [delivery] = fake_ado.webhook_deliveries
    assert delivery.payload == {
        "useCase": GROUP,
        "modelPackageArn": arn,
        "modelPackageGroup": GROUP,
        "modelPackageVersion": "1",
        "eventId": "e0",
    }
    expected = hmac.new(b"hook-secret", delivery.body, hashlib.sha1).hexdigest()
    assert delivery.headers[HEADER.lower()] == expected
    [request] = fake_ado.requests_to("webhook")
    assert request.query == {"api-version": ["6.0-preview"]} and "authorization" not in request.headers
    assert fake_ado.runs == []  # the Runs API is not used in this mode
    metadata = aws.metadata(arn)
    assert metadata["ado.deployTrigger"] == "webhook" and "ado.deployRunId" not in metadata


def test_a_wrong_hmac_secret_raises_naming_the_secret(aws: Aws, fake_ado: FakeAzureDevOps, webhook_bridge) -> None:
    fake_ado.register_webhook(HOOK, secret="the-service-connection-has-another", signature_header=HEADER)
    with pytest.raises(AzureDevOpsAuthError, match="answered 401") as raised:
        webhook_bridge.handle(state_change_event(aws, aws.register(status="Approved")), LambdaContext())
    assert aws.secret_arn in str(raised.value) and "hook-secret" not in str(raised.value)
    assert fake_ado.webhook_deliveries == [] and aws.idempotency_items() == []


def test_webhook_429_and_503_follow_the_same_rules(aws: Aws, fake_ado: FakeAzureDevOps, webhook_bridge) -> None:
    arn = aws.register(status="Approved")
    fake_ado.fail_next(429, retry_after=3, only="webhook")
    fake_ado.fail_next(503, only="webhook")
    from mlops_bridge.errors import AzureDevOpsUnavailableError

    with pytest.raises(AzureDevOpsUnavailableError, match="answered 503"):
        webhook_bridge.handle(state_change_event(aws, arn), LambdaContext())
    assert aws.sleeps == [3.0] and aws.idempotency_items() == []
    assert webhook_bridge.handle(state_change_event(aws, arn), LambdaContext())["outcome"] == "started"
    assert len(fake_ado.webhook_deliveries) == 1


def test_webhook_mode_with_a_pat_secret_is_a_configuration_error(
    aws: Aws, fake_ado: FakeAzureDevOps, make_bridge
) -> None:
    bridge = make_bridge(ADO_TRIGGER="webhook", ADO_WEBHOOK_NAME=HOOK)
    with pytest.raises(ConfigurationError, match="expected 'webhook' with ADO_TRIGGER=webhook"):
        bridge.handle(state_change_event(aws, aws.register(status="Approved")), LambdaContext())
    assert fake_ado.requests == []


@pytest.mark.parametrize("status", [200, 203])
def test_an_html_page_instead_of_the_webhook_is_an_error_not_a_start(
    aws: Aws, fake_ado: FakeAzureDevOps, webhook_bridge, status: int
) -> None:
    from mlops_bridge.errors import AzureDevOpsBadAnswerError

    arn = aws.register(status="Approved")
    fake_ado.fail_next(status, only="webhook", body="<html><title>Sign In</title></html>", content_type="text/html")
    with pytest.raises(AzureDevOpsBadAnswerError, match="expected an empty or JSON answer"):
        webhook_bridge.handle(state_change_event(aws, arn), LambdaContext())
    assert aws.idempotency_items() == [] and fake_ado.webhook_deliveries == []
    assert webhook_bridge.handle(state_change_event(aws, arn), LambdaContext())["outcome"] == "started"
