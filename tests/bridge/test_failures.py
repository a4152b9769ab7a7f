"""Failures of Azure DevOps and of the auth secret: each raises, leaves no idempotency record that would
block Lambda's retry, and the retry then starts exactly one run."""

from __future__ import annotations

import json
import socket
import uuid
from collections import namedtuple
from typing import Any

import pytest
from botocore.exceptions import ClientError

from mlops.local.fake_ado import FakeAzureDevOps
from mlops_bridge.bridge import Bridge
from mlops_bridge.errors import (
    AlreadyInProgressError,
    AzureDevOpsAuthError,
    AzureDevOpsThrottledError,
    AzureDevOpsUnavailableError,
    ConfigurationError,
    WriteBackError,
)
from mlops_bridge.handler import build_bridge

from .conftest import Aws, LambdaContext, state_change_event

AccessToken = namedtuple("AccessToken", ["token", "expires_on"])


def test_401_raises_naming_the_secret_and_a_rotated_secret_is_used_on_the_retry(
    aws: Aws, fake_ado: FakeAzureDevOps, make_bridge
) -> None:
    arn = aws.register(status="Approved")
    event = state_change_event(aws, arn)
    bridge = make_bridge()
    fake_ado.pat = "rotated-pat"  # Azure DevOps no longer accepts the PAT in the secret

    with pytest.raises(AzureDevOpsAuthError) as raised:
        bridge.handle(event, LambdaContext())
    assert aws.secret_arn in str(raised.value) and "401" in str(raised.value)
    assert "pat-0123456789" not in str(raised.value)
    assert aws.idempotency_items() == [] and fake_ado.runs == []

    aws.session.client("secretsmanager").put_secret_value(
        SecretId=aws.secret_arn, SecretString=json.dumps({"type": "pat", "token": "rotated-pat"})
    )
    # Same warm bridge: the 401 dropped the cached secret, so the retry reads the rotated one.
    assert bridge.handle(event, LambdaContext())["outcome"] == "started"
    assert len(fake_ado.runs) == 1


def test_503_raises_and_once_azure_devops_recovers_the_retry_starts_exactly_one_run(
    aws: Aws, fake_ado: FakeAzureDevOps, make_bridge
) -> None:
    arn = aws.register(status="Approved")
    event = state_change_event(aws, arn)
    bridge = make_bridge()
    fake_ado.fail_next(503, only="runs", times=2)

    for _ in range(2):  # Lambda's own retries while Azure DevOps is down
        with pytest.raises(AzureDevOpsUnavailableError, match="answered 503"):
            bridge.handle(event, LambdaContext())
        assert aws.idempotency_items() == []
    assert [bridge.handle(event, LambdaContext())["outcome"] for _ in range(3)] == ["started", "duplicate", "duplicate"]
    assert len(fake_ado.runs) == 1
    # The SDK's transport does not silently repeat the POST: one request per attempt.
    assert len(fake_ado.requests_to("runs")) == 3


def test_the_sdk_transport_does_not_retry_on_its_own(aws: Aws, make_bridge) -> None:
    # Out of the box, msrest retries OPTIONS/GET on 5xx (honouring Retry-After, unbounded) with real sleeps.
    with FakeAzureDevOps(f"org-{uuid.uuid4().hex[:8]}") as fake:  # a fresh org URL: no cached locations
        fake.fail_next(503, only="options", retry_after=2)
        with pytest.raises(AzureDevOpsUnavailableError, match="503"):
            make_bridge(ADO_ORG_URL=fake.org_url).handle(
                state_change_event(aws, aws.register(status="Approved")), LambdaContext()
            )
        assert len(fake.requests_to("options")) == 1 and fake.requests_to("runs") == []


def test_429_honours_retry_after_through_the_injected_sleep(aws: Aws, fake_ado: FakeAzureDevOps, make_bridge) -> None:
    arn = aws.register(status="Approved")
    fake_ado.fail_next(429, retry_after=7, only="runs", times=2)

    result = make_bridge().handle(state_change_event(aws, arn), LambdaContext())

    assert result["outcome"] == "started"
    assert aws.sleeps == [7.0, 7.0]
    assert len(fake_ado.requests_to("runs")) == 3 and len(fake_ado.runs) == 1


def test_429_beyond_the_bounded_wait_raises_and_leaves_no_record(
    aws: Aws, fake_ado: FakeAzureDevOps, make_bridge
) -> None:
    arn = aws.register(status="Approved")
    fake_ado.fail_next(429, retry_after=6, only="runs", times=10)

    with pytest.raises(AzureDevOpsThrottledError, match="ADO_THROTTLE_MAX_WAIT_SECONDS=10"):
        make_bridge(ADO_THROTTLE_MAX_WAIT_SECONDS="10").handle(state_change_event(aws, arn), LambdaContext())
    assert aws.sleeps == [6.0]  # a second 6 s wait would pass the 10 s bound
    assert fake_ado.runs == [] and aws.idempotency_items() == []


def test_a_slow_answer_times_out_and_raises(aws: Aws, fake_ado: FakeAzureDevOps, make_bridge) -> None:
    arn = aws.register(status="Approved")
    fake_ado.slow_next(30, only="runs")

    with pytest.raises(AzureDevOpsUnavailableError, match="did not answer"):
        make_bridge(ADO_HTTP_TIMEOUT_SECONDS="0.2").handle(state_change_event(aws, arn), LambdaContext())
    assert aws.idempotency_items() == []


def test_no_connection_raises_unavailable(aws: Aws, make_bridge) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    bridge = make_bridge(ADO_ORG_URL=f"http://127.0.0.1:{closed_port}/fabrikam")
    with pytest.raises(AzureDevOpsUnavailableError, match="did not answer"):
        bridge.handle(state_change_event(aws, aws.register(status="Approved")), LambdaContext())
    assert aws.idempotency_items() == []


class FakeCredential:
    def __init__(self, token: str | Exception) -> None:
        self.token = token
        self.scopes: list[str] = []

    def get_token(self, scope: str) -> Any:
        self.scopes.append(scope)
        if isinstance(self.token, Exception):
            raise self.token
        return AccessToken(self.token, 4102444800)


def _service_principal_secret(aws: Aws) -> None:
    aws.session.client("secretsmanager").put_secret_value(
        SecretId=aws.secret_arn,
        SecretString=json.dumps(
            {"type": "service_principal", "tenant_id": "t-1", "client_id": "c-1", "client_secret": "s"}
        ),
    )


def test_a_service_principal_gets_an_entra_token_for_azure_devops(aws: Aws, bridge_env: dict[str, str]) -> None:
    _service_principal_secret(aws)
    credential = FakeCredential("entra-token")
    made: list[tuple[str, str, str]] = []

    def factory(tenant_id: str, client_id: str, client_secret: str) -> FakeCredential:
        made.append((tenant_id, client_id, client_secret))
        return credential

    with FakeAzureDevOps("fabrikam", bearer_tokens=("entra-token",)) as fake:
        env = {**bridge_env, "ADO_ORG_URL": fake.org_url}
        result = build_bridge(env, session=aws.session, credential_factory=factory).handle(
            state_change_event(aws, aws.register(status="Approved")), LambdaContext()
        )
        assert result["outcome"] == "started"
        assert fake.requests_to("runs")[0].header("authorization") == "Bearer entra-token"
    assert made == [("t-1", "c-1", "s")]
    # One token request per Azure DevOps call (lookup, create, tag); azure-identity's own cache answers them.
    assert set(credential.scopes) == {"499b84ac-1321-427f-aa17-267ca6975798/.default"}


def test_a_service_principal_without_a_token_raises_naming_client_and_secret(
    aws: Aws, bridge_env: dict[str, str]
) -> None:
    _service_principal_secret(aws)
    failing = FakeCredential(RuntimeError("AADSTS7000215: Invalid client secret provided"))
    bridge = build_bridge(bridge_env, session=aws.session, credential_factory=lambda *_: failing)
    with pytest.raises(AzureDevOpsAuthError, match="client c-1 in tenant t-1") as raised:
        bridge.handle(state_change_event(aws, aws.register(status="Approved")), LambdaContext())
    assert aws.secret_arn in str(raised.value) and isinstance(raised.value.__cause__, RuntimeError)
    assert aws.idempotency_items() == []


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        ("not json", "is not JSON"),
        (json.dumps({"type": "password", "token": "x"}), "has type 'password'"),
        (json.dumps({"type": "pat"}), "lacks token"),
        (json.dumps({"type": "webhook", "hmac_secret": "x"}), "expected 'pat' or 'service_principal'"),
    ],
)
def test_a_bad_secret_raises_naming_it(
    aws: Aws, fake_ado: FakeAzureDevOps, make_bridge, secret: str, message: str
) -> None:
    aws.session.client("secretsmanager").put_secret_value(SecretId=aws.secret_arn, SecretString=secret)
    with pytest.raises(ConfigurationError, match=message) as raised:
        make_bridge().handle(state_change_event(aws, aws.register(status="Approved")), LambdaContext())
    assert aws.secret_arn in str(raised.value)
    assert fake_ado.requests == [] and aws.idempotency_items() == []


def test_a_concurrent_delivery_of_the_same_approval_raises_already_in_progress(
    aws: Aws, fake_ado: FakeAzureDevOps, make_bridge
) -> None:
    arn = aws.register(status="Approved")
    event = state_change_event(aws, arn)
    bridge = make_bridge()
    seen: list[Exception] = []

    class ReentrantStarter:
        trigger = "test"

        def find(self, change: Any, **_: Any) -> dict[str, Any] | None:
            return None  # the first delivery's run is not in Azure DevOps yet

        def start(self, change: Any, **_: Any) -> dict[str, Any]:
            try:  # a second delivery arrives while the first is still starting the run
                inner.handle(dict(event, id="evt-concurrent"), LambdaContext())
            except AlreadyInProgressError as exc:
                seen.append(exc)
            return {"trigger": "test", "runId": 41, "runUrl": "https://example.invalid/41", "eventId": change.event_id}

    inner = Bridge(
        bridge.settings,
        sagemaker=bridge._sagemaker,
        starter=ReentrantStarter(),
        run_once=bridge._run_once,
    )
    assert inner.handle(event, LambdaContext())["outcome"] == "started"
    assert len(seen) == 1 and "being handled right now" in str(seen[0])


def test_a_failed_write_back_raises_and_its_retry_records_the_run_without_a_second_one(
    aws: Aws, fake_ado: FakeAzureDevOps, make_bridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    arn = aws.register(status="Approved")
    event = state_change_event(aws, arn)
    bridge = make_bridge()
    client = bridge._sagemaker
    real_update = client.update_model_package

    def denied(**_: Any) -> None:
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not allowed"}}, "UpdateModelPackage")

    monkeypatch.setattr(client, "update_model_package", denied)
    with pytest.raises(WriteBackError, match="the deploy run started, but recording it"):
        bridge.handle(event, LambdaContext())
    monkeypatch.setattr(client, "update_model_package", real_update)

    retried = bridge.handle(event, LambdaContext())
    assert retried["outcome"] == "duplicate" and retried["recordedOnPackage"] is True
    assert len(fake_ado.runs) == 1
    assert aws.metadata(arn)["ado.deployRunId"] == str(fake_ado.runs[0].id)
