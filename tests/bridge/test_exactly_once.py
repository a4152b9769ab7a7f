"""Exactly once against our own partial failures (issue 19, items 1 and 2).

Each test injects a fault *after* Azure DevOps created the run (or in our own store), then delivers the
event again as Lambda's retry, a duplicate delivery or a DLQ replay would, and counts the runs in the fake
Azure DevOps: there must be exactly one, and the event must never be reported "started" without a run.
"""

from __future__ import annotations

import json
from typing import Any

import botocore.session
import pytest
import regex
from botocore.exceptions import ClientError

from mlops.local.fake_ado import FakeAzureDevOps
from mlops_bridge.ado_runs import approval_tag
from mlops_bridge.errors import (
    AlreadyInProgressError,
    AzureDevOpsBadAnswerError,
    AzureDevOpsUnavailableError,
    BridgeError,
    MalformedEventError,
)
from mlops_bridge.events import parse_event
from mlops_bridge.registry import is_metadata_value, run_metadata

from .conftest import Aws, LambdaContext, state_change_event


def _fail_store_updates(bridge: Any, times: int = 1) -> list[str]:
    """Make the next `times` UpdateItem calls of the bridge's idempotency store fail (Powertools writes the
    result with UpdateItem after the action ran, so this is the store failing after the run was created)."""
    failed: list[str] = []

    def fail(**_: Any) -> None:
        if len(failed) < times:
            failed.append("UpdateItem")
            raise ClientError(
                {"Error": {"Code": "InternalServerError", "Message": "injected: the store is unavailable"}},
                "UpdateItem",
            )

    bridge._run_once.dynamodb.meta.events.register("before-call.dynamodb.UpdateItem", fail)
    return failed


def test_store_failure_after_start_does_not_start_a_second_run(
    aws: Aws, fake_ado: FakeAzureDevOps, make_bridge
) -> None:
    arn = aws.register(status="Approved")
    event = state_change_event(aws, arn)
    bridge = make_bridge()
    failed = _fail_store_updates(bridge)

    with pytest.raises(BridgeError, match="idempotency table"):
        bridge.handle(event, LambdaContext())
    assert failed and len(fake_ado.runs) == 1  # the run exists; our record of it does not

    # The record is left "in progress": the next deliveries ask Azure DevOps instead of starting again.
    outcomes = [bridge.handle(dict(event, id=f"evt-{n}"), LambdaContext()) for n in range(2, 5)]
    assert [o["outcome"] for o in outcomes] == ["duplicate"] * 3
    assert {o["runId"] for o in outcomes} == {fake_ado.runs[0].id}
    assert outcomes[0]["startedByEventId"] == "evt-1" and outcomes[0]["recordedOnPackage"] is True
    assert len(fake_ado.runs) == 1 and len(fake_ado.requests_to("runs")) == 1
    assert aws.metadata(arn)["ado.deployRunId"] == str(fake_ado.runs[0].id)


def test_store_failure_after_start_then_a_replay_without_lambda_context_finds_the_run(
    aws: Aws, fake_ado: FakeAzureDevOps, make_bridge
) -> None:
    # `mlops bridge replay` passes no context: the in-progress record then never expires by itself.
    arn = aws.register(status="Approved")
    event = state_change_event(aws, arn)
    bridge = make_bridge()
    _fail_store_updates(bridge)
    with pytest.raises(BridgeError):
        bridge.handle(event, None)
    assert bridge.handle(event, None)["outcome"] == "duplicate"
    assert len(fake_ado.runs) == 1


def test_an_in_progress_delivery_without_a_run_in_azure_devops_still_raises(
    aws: Aws, fake_ado: FakeAzureDevOps, make_bridge
) -> None:
    # A real concurrent delivery: the record is in progress and Azure DevOps has no run yet.
    arn = aws.register(status="Approved")
    event = state_change_event(aws, arn)
    bridge = make_bridge()
    seen: list[Exception] = []
    real_start = bridge._starter.start

    def start_with_a_concurrent_delivery(change: Any, **kwargs: Any) -> dict[str, Any]:
        try:
            bridge.handle(dict(event, id="evt-concurrent"), LambdaContext())
        except AlreadyInProgressError as exc:
            seen.append(exc)
        return real_start(change, **kwargs)

    bridge._starter.start = start_with_a_concurrent_delivery  # type: ignore[method-assign]
    assert bridge.handle(event, LambdaContext())["outcome"] == "started"
    assert len(seen) == 1 and len(fake_ado.runs) == 1


@pytest.mark.parametrize(
    "inject",
    [
        pytest.param(lambda fake: fake.fail_next(503, only="runs", after_create=True), id="5xx-after-create"),
        pytest.param(lambda fake: fake.drop_next(only="runs", after_create=True), id="response-lost-after-create"),
        pytest.param(
            lambda fake: fake.fail_next(
                200, only="runs", after_create=True, body='{"state": "inProgress"}', content_type="application/json"
            ),
            id="2xx-without-id-after-create",
        ),
    ],
)
def test_a_run_created_behind_a_failed_answer_is_found_at_once_and_not_started_again(
    aws: Aws, fake_ado: FakeAzureDevOps, make_bridge, inject: Any
) -> None:
    arn = aws.register(status="Approved")
    event = state_change_event(aws, arn)
    bridge = make_bridge()
    inject(fake_ado)

    result = bridge.handle(event, LambdaContext())

    [run] = fake_ado.runs
    assert result["outcome"] == "started" and result["runId"] == run.id
    assert run.tags == [approval_tag(parse_event(event))]
    assert [bridge.handle(dict(event, id=f"evt-{n}"), LambdaContext())["outcome"] for n in (2, 3)] == [
        "duplicate",
        "duplicate",
    ]
    assert len(fake_ado.runs) == 1 and len(fake_ado.requests_to("runs")) == 1


def test_a_read_timeout_after_create_does_not_start_a_second_run(
    aws: Aws, fake_ado: FakeAzureDevOps, make_bridge
) -> None:
    # The documented hole: the POST times out after Azure DevOps created the run; the retry used to POST again.
    arn = aws.register(status="Approved")
    event = state_change_event(aws, arn)
    bridge = make_bridge(ADO_HTTP_TIMEOUT_SECONDS="0.2")
    fake_ado.slow_next(30, only="runs", after_create=True)

    assert bridge.handle(event, LambdaContext())["outcome"] == "started"
    assert bridge.handle(dict(event, id="evt-2"), LambdaContext())["outcome"] == "duplicate"
    assert len(fake_ado.runs) == 1 and len(fake_ado.requests_to("runs")) == 1


def test_5xx_after_create_with_the_lookup_failing_too_raises_and_the_retry_finds_the_untagged_run(
    aws: Aws, fake_ado: FakeAzureDevOps, make_bridge
) -> None:
    arn = aws.register(status="Approved")
    event = state_change_event(aws, arn)
    bridge = make_bridge()
    fake_ado.fail_next(503, only="runs", after_create=True)
    fake_ado.slow_next(0, only="builds", times=2)  # the two lookups before the POST answer normally...
    fake_ado.fail_next(503, only="builds")  # ...the lookup right after the failed POST fails too

    with pytest.raises(AzureDevOpsUnavailableError, match="answered 503"):
        bridge.handle(event, LambdaContext())
    assert aws.idempotency_items() == []  # nothing recorded: the event stays retryable
    assert fake_ado.runs[0].tags == [] and len(fake_ado.runs) == 1

    retried = bridge.handle(event, LambdaContext())
    assert retried["outcome"] == "duplicate" and retried["runId"] == fake_ado.runs[0].id
    assert fake_ado.runs[0].tags == [approval_tag(parse_event(event))]
    assert len(fake_ado.runs) == 1


def test_a_run_started_outside_the_store_is_found_by_its_tag(aws: Aws, fake_ado: FakeAzureDevOps, make_bridge) -> None:
    # The idempotency table was emptied (expiry, a new table): Azure DevOps still knows the approval's run.
    arn = aws.register(status="Approved")
    event = state_change_event(aws, arn)
    assert make_bridge().handle(event, LambdaContext())["outcome"] == "started"
    dynamodb = aws.session.client("dynamodb")
    for item in aws.idempotency_items():
        dynamodb.delete_item(TableName="mlops-bridge-idempotency", Key={"id": item["id"]})

    again = make_bridge().handle(dict(event, id="evt-later"), LambdaContext())
    assert again["outcome"] == "duplicate" and len(fake_ado.runs) == 1
    [lookup, *_] = fake_ado.requests_to("builds")
    assert lookup.query["tagFilters"] == [approval_tag(parse_event(event))]
    assert lookup.query["definitions"] == ["2"]


@pytest.mark.parametrize(
    ("status", "body", "content_type", "expected"),
    [
        (200, '{"state": "inProgress"}', "application/json; charset=utf-8", "id is None"),
        (200, "this is not json", "application/json", "not that JSON"),
        (204, "", "application/json", "no body"),
        (203, "<html><head><title>Sign In</title></head></html>", "text/html; charset=utf-8", "sign-in page"),
        (200, "<html><body>Azure DevOps Services | Sign In</body></html>", "text/html", "text/html"),
    ],
)
def test_a_2xx_without_a_run_is_never_reported_started(
    aws: Aws,
    fake_ado: FakeAzureDevOps,
    make_bridge,
    status: int,
    body: str,
    content_type: str,
    expected: str,
) -> None:
    arn = aws.register(status="Approved")
    event = state_change_event(aws, arn)
    bridge = make_bridge()
    fake_ado.fail_next(status, only="runs", body=body, content_type=content_type)  # no run is created

    with pytest.raises(AzureDevOpsBadAnswerError, match="expected JSON with the run's numeric id") as raised:
        bridge.handle(event, LambdaContext())
    assert expected in str(raised.value) and f"answered {status}" in str(raised.value)
    # Retryable, so Lambda's retries and then the DLQ keep it; nothing is written on the package.
    assert aws.idempotency_items() == [] and "ado.deployRunId" not in aws.metadata(arn)

    assert bridge.handle(event, LambdaContext())["outcome"] == "started"
    assert len(fake_ado.runs) == 1 and "None" not in aws.metadata(arn)["ado.deployRunUrl"]


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda e: e.update(id="e" * 500_000), id="event-id-of-500KB"),
        pytest.param(lambda e: e.update(id="evt?1"), id="event-id-outside-the-metadata-pattern"),
        pytest.param(
            lambda e: e["detail"].update(ModelPackageArn=e["detail"]["ModelPackageArn"] + "0" * 5000),
            id="arn-of-5000-characters",
        ),
    ],
)
def test_oversized_or_odd_ids_are_refused_before_anything_starts(
    aws: Aws, fake_ado: FakeAzureDevOps, make_bridge, mutate: Any
) -> None:
    event = state_change_event(aws, aws.register(status="Approved"))
    mutate(event)
    with pytest.raises(MalformedEventError, match="expected"):
        make_bridge().handle(event, LambdaContext())
    assert fake_ado.requests == [] and aws.idempotency_items() == []


def test_an_oversized_result_in_the_store_does_not_start_a_second_run(
    aws: Aws, fake_ado: FakeAzureDevOps, make_bridge
) -> None:
    # Whatever makes the result item too large for DynamoDB (400 KB) fails after the run was created.
    arn = aws.register(status="Approved")
    event = state_change_event(aws, arn)
    bridge = make_bridge()
    real_result = bridge._starter._result

    def bloated(*args: Any, **kwargs: Any) -> dict[str, Any]:
        return {**real_result(*args, **kwargs), "padding": "x" * 500_000}

    bridge._starter._result = bloated  # type: ignore[method-assign]
    with pytest.raises(BridgeError, match="idempotency table"):
        bridge.handle(event, LambdaContext())
    bridge._starter._result = real_result  # type: ignore[method-assign]
    assert bridge.handle(dict(event, id="evt-2"), LambdaContext())["outcome"] == "duplicate"
    assert len(fake_ado.runs) == 1


def _botocore_pattern(shape_name: str) -> tuple[Any, int, int]:
    shape = botocore.session.get_session().get_service_model("sagemaker").shape_for(shape_name)
    # botocore keeps AWS's Java-style pattern; the `regex` module understands its \p{..} classes.
    return regex.compile(shape.metadata["pattern"]), shape.metadata.get("min", 0), shape.metadata["max"]


def test_every_value_the_bridge_writes_fits_sagemakers_customer_metadata_model(
    aws: Aws, fake_ado: FakeAzureDevOps, make_bridge
) -> None:
    value_pattern, value_min, value_max = _botocore_pattern("CustomerMetadataValue")
    key_pattern, key_min, key_max = _botocore_pattern("CustomerMetadataKey")
    arn = aws.register(status="Approved")
    make_bridge().handle(state_change_event(aws, arn), LambdaContext())
    written = {k: v for k, v in aws.metadata(arn).items() if k.startswith("ado.")}
    assert set(written) >= {"ado.deployRunId", "ado.deployRunUrl", "ado.deployTrigger", "ado.deployEventId"}
    for key, value in written.items():
        assert key_pattern.fullmatch(key) and key_min <= len(key) <= key_max, key
        assert value_pattern.fullmatch(value) and value_min <= len(value) <= value_max, (key, value)


@pytest.mark.parametrize(
    "value",
    [
        "https://dev.azure.com/contoso/mlops/_build/results?buildId=7",  # the old web URL: `?` is refused
        "https://dev.azure.com/contoso/My Project/_apis/build/builds/7",
        "Ünïcödé 名前 ٣",
        "a" * 256,
        "a" * 257,
        "",
        "50% off",
        "tab\there",
    ],
)
def test_the_bridges_metadata_check_agrees_with_botocores_pattern(value: str) -> None:
    pattern, low, high = _botocore_pattern("CustomerMetadataValue")
    assert is_metadata_value(value) == bool(pattern.fullmatch(value) and low <= len(value) <= high)


def test_run_metadata_leaves_out_a_url_sagemaker_would_refuse() -> None:
    written = run_metadata(
        {
            "trigger": "runs_api",
            "eventId": "e-1",
            "runId": 7,
            "pipelineId": 2,
            "runApiUrl": "https://dev.azure.com/contoso/R&D?/_apis/build/builds/7",
        }
    )
    assert written == {
        "ado.deployTrigger": "runs_api",
        "ado.deployEventId": "e-1",
        "ado.deployRunId": "7",
        "ado.deployPipelineId": "2",
    }
    assert json.dumps(written)  # plain strings only
