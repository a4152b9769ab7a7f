"""The bridge's second route: a drift alarm going into ALARM starts the build pipeline once per transition."""

from __future__ import annotations

from typing import Any

import pytest

from mlops.local.fake_ado import FakeAzureDevOps
from mlops_bridge.errors import AzureDevOpsError, MalformedEventError

from .conftest import Aws

BUILD_PIPELINE = "1"
ALARM = "breast-cancer-data-drift"
ALARM_ARN = f"arn:aws:cloudwatch:us-east-1:000000000003:alarm:{ALARM}"


def alarm_event(
    *,
    event_id: str = "alarm-evt-1",
    state: str = "ALARM",
    previous: str = "OK",
    at: str = "2026-12-01T10:00:00.000+0000",
) -> dict[str, Any]:
    """CloudWatch's `CloudWatch Alarm State Change` event, as AWS documents it."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": "000000000003",
        "time": at[:19] + "Z",
        "region": "us-east-1",
        "resources": [ALARM_ARN],
        "detail": {
            "alarmName": ALARM,
            "state": {"value": state, "reason": "Threshold Crossed: 1 datapoint [0.62] > 0.1", "timestamp": at},
            "previousState": {"value": previous, "reason": "", "timestamp": "2026-12-01T09:00:00.000+0000"},
            "configuration": {"metrics": []},
        },
    }


@pytest.fixture
def retrain_bridge(make_bridge):  # type: ignore[no-untyped-def]
    return make_bridge(ADO_BUILD_PIPELINE_ID=BUILD_PIPELINE, RETRAIN_ALARM_NAMES=f"{ALARM},other-alarm")


def test_a_transition_into_alarm_starts_one_build_however_often_delivered(
    retrain_bridge: Any, fake_ado: FakeAzureDevOps, aws: Aws
) -> None:
    first = retrain_bridge.handle(alarm_event(event_id="a1"))
    again = retrain_bridge.handle(alarm_event(event_id="a2"))  # EventBridge delivered it twice
    assert (first["outcome"], again["outcome"]) == ("started", "duplicate")
    [run] = fake_ado.runs
    assert run.pipeline_id == int(BUILD_PIPELINE) and first["runId"] == again["runId"] == run.id
    assert run.template_parameters["retrainReason"].startswith(f"alarm {ALARM} went into ALARM at 2026-12-01T10")
    assert run.template_parameters["retrainTrigger"] == run.tags[0]
    assert run.ref_name == "refs/heads/main"
    # A later transition (the alarm recovered, then fired again) is a new retrain.
    fake_ado.set_run_state(run.id, "completed", "succeeded")
    later = retrain_bridge.handle(alarm_event(event_id="a3", at="2026-12-02T10:00:00.000+0000"))
    assert later["outcome"] == "started" and len(fake_ado.runs) == 2


@pytest.mark.parametrize(("state", "previous"), [("OK", "ALARM"), ("ALARM", "ALARM"), ("INSUFFICIENT_DATA", "OK")])
def test_anything_but_a_transition_into_alarm_is_ignored(
    retrain_bridge: Any, fake_ado: FakeAzureDevOps, state: str, previous: str
) -> None:
    assert retrain_bridge.handle(alarm_event(state=state, previous=previous))["outcome"] == "ignored"
    assert fake_ado.runs == []


def test_an_alarm_that_is_not_a_retrain_alarm_is_ignored(make_bridge: Any, fake_ado: FakeAzureDevOps) -> None:
    bridge = make_bridge(ADO_BUILD_PIPELINE_ID=BUILD_PIPELINE, RETRAIN_ALARM_NAMES="something-else")
    assert "not a retrain alarm" in bridge.handle(alarm_event())["reason"]
    assert fake_ado.runs == []


def test_a_trigger_while_a_build_is_running_starts_no_second_build(
    retrain_bridge: Any, fake_ado: FakeAzureDevOps
) -> None:
    first = retrain_bridge.handle(alarm_event(at="2026-12-01T10:00:00.000+0000"))
    # Another drift alarm (a second transition) while the first retrain build still runs.
    second = retrain_bridge.handle(alarm_event(event_id="b1", at="2026-12-01T11:00:00.000+0000"))
    assert second["outcome"] == "skipped" and second["runId"] == first["runId"]
    assert len(fake_ado.runs) == 1


def test_a_lost_create_answer_is_found_not_doubled(retrain_bridge: Any, fake_ado: FakeAzureDevOps) -> None:
    fake_ado.drop_next(only="runs", after_create=True)  # the run is created, its answer never arrives
    result = retrain_bridge.handle(alarm_event())
    assert result["outcome"] == "started" and len(fake_ado.runs) == 1
    assert retrain_bridge.handle(alarm_event(event_id="again"))["outcome"] == "duplicate"
    assert len(fake_ado.runs) == 1


def test_a_malformed_alarm_event_is_an_error_for_the_dlq(retrain_bridge: Any) -> None:
    event = alarm_event()
    del event["detail"]["state"]
    with pytest.raises(MalformedEventError, match="has no detail.state"):
        retrain_bridge.handle(event)


def test_without_a_build_pipeline_the_trigger_fails_clearly(make_bridge: Any, fake_ado: FakeAzureDevOps) -> None:
    with pytest.raises(AzureDevOpsError, match="no build pipeline to start") as raised:
        make_bridge().handle(alarm_event())
    assert "ADO_BUILD_PIPELINE_ID" in str(raised.value)
    assert fake_ado.runs == []
