"""The approval flow end to end: moto registry + DynamoDB + Secrets Manager, the real azure-devops SDK
talking HTTP to the fake Azure DevOps server on loopback."""

from __future__ import annotations

import base64
import logging

import pytest

from mlops.local.fake_ado import FakeAzureDevOps
from mlops_bridge import handler as handler_module
from mlops_bridge.errors import ConfigurationError, MalformedEventError, RegistryMismatchError

from .conftest import GROUP, OTHER_GROUP, PAT, Aws, LambdaContext, state_change_event

TEMPLATE_PARAMETERS = {"useCase", "modelPackageArn", "modelPackageGroup", "modelPackageVersion", "eventId"}


def bridge_lines(records: list[logging.LogRecord]) -> list[str]:
    return [r.getMessage() for r in records if r.levelno >= logging.INFO]


def test_an_approval_starts_exactly_one_run_with_the_four_template_parameters(
    aws: Aws, fake_ado: FakeAzureDevOps, make_bridge
) -> None:
    arn = aws.register(status="Approved")
    result = make_bridge().handle(state_change_event(aws, arn, event_id="evt-approve"), LambdaContext())

    assert result["outcome"] == "started"
    [run] = fake_ado.runs
    assert run.template_parameters == {
        "useCase": GROUP,
        "modelPackageArn": arn,
        "modelPackageGroup": GROUP,
        "modelPackageVersion": "1",
        "eventId": "evt-approve",
    }
    assert run.ref_name == "refs/heads/main" and run.pipeline_id == 2 and run.project == "mlops"
    [post] = fake_ado.requests_to("runs")
    assert post.header("authorization") == "Basic " + base64.b64encode(f":{PAT}".encode()).decode()
    assert post.header("accept") == "application/json;api-version=7.1-preview.1"
    assert set(post.json()["templateParameters"]) == TEMPLATE_PARAMETERS
    # The run is recorded on the package, next to what the build put there.
    assert aws.metadata(arn) == {
        "git.commit": "0123abcd",
        "build.id": "20260101.1",
        "ado.deployTrigger": "runs_api",
        "ado.deployEventId": "evt-approve",
        "ado.deployRunId": str(run.id),
        "ado.deployRunUrl": f"{fake_ado.org_url}/mlops/_apis/build/builds/{run.id}",
        "ado.deployPipelineId": "2",
    }
    assert result["runId"] == run.id and result["runUrl"].endswith(f"buildId={run.id}")


def test_redelivery_and_a_second_event_for_the_same_approval_start_nothing_new(
    aws: Aws, fake_ado: FakeAzureDevOps, make_bridge
) -> None:
    arn = aws.register(status="Approved")
    event = state_change_event(aws, arn, event_id="evt-first")
    bridge = make_bridge()
    outcomes = [bridge.handle(event, LambdaContext())["outcome"] for _ in range(5)]
    # A fresh bridge (another Lambda container) and another event id for the same ARN and status.
    second = make_bridge().handle(state_change_event(aws, arn, event_id="evt-second"), LambdaContext())

    assert outcomes == ["started"] + ["duplicate"] * 4
    assert second["outcome"] == "duplicate" and second["startedByEventId"] == "evt-first"
    assert len(fake_ado.runs) == 1
    assert len(fake_ado.requests_to("runs")) == 1
    assert len(aws.idempotency_items()) == 1


def test_a_duplicate_does_not_write_to_the_package_again(aws: Aws, fake_ado: FakeAzureDevOps, make_bridge) -> None:
    # Each UpdateModelPackage emits another state-change event: an unconditional write-back would loop.
    arn = aws.register(status="Approved")
    bridge = make_bridge()
    first = bridge.handle(state_change_event(aws, arn, event_id="evt-1"), LambdaContext())
    updates: list[dict] = []
    aws_client = bridge._sagemaker
    aws_client.meta.events.register(
        "provide-client-params.sagemaker.UpdateModelPackage", lambda params, **_: updates.append(params)
    )
    again = bridge.handle(state_change_event(aws, arn, event_id="evt-2"), LambdaContext())

    assert first["recordedOnPackage"] is True
    assert again["recordedOnPackage"] is False and updates == []


@pytest.mark.parametrize(
    ("group", "status", "reason"),
    [
        (GROUP, "PendingManualApproval", "approval status is PendingManualApproval, not Approved"),
        (GROUP, "Rejected", "approval status is Rejected, not Approved"),
        (OTHER_GROUP, "Approved", f"group '{OTHER_GROUP}' is not one of MODEL_PACKAGE_GROUPS"),
    ],
)
def test_pending_rejected_and_other_groups_start_nothing_and_log_one_line(
    aws: Aws, fake_ado: FakeAzureDevOps, make_bridge, bridge_logs, group: str, status: str, reason: str
) -> None:
    arn = aws.register(group=group, status=status)
    result = make_bridge().handle(state_change_event(aws, arn), LambdaContext())

    assert result["outcome"] == "ignored"
    assert fake_ado.requests == []
    assert aws.idempotency_items() == []
    [line] = bridge_lines(bridge_logs)
    assert line.startswith("ignored: " + reason)


def test_log_lines_carry_the_event_id_as_correlation_id(aws: Aws, fake_ado: FakeAzureDevOps, make_bridge) -> None:
    from mlops_bridge.log import logger

    bridge = make_bridge()
    first, second = aws.register(status="Rejected"), aws.register(status="PendingManualApproval")
    bridge.handle(state_change_event(aws, first, event_id="evt-a"), LambdaContext())
    bridge.handle(state_change_event(aws, second, event_id="evt-b"), LambdaContext())
    # The keys of one invocation do not leak into the next (a warm container handles many events).
    assert logger.get_correlation_id() == "evt-b"
    assert logger.get_current_keys()["model_package_arn"] == second


def test_a_stale_approval_is_ignored_when_the_registry_says_otherwise(
    aws: Aws, fake_ado: FakeAzureDevOps, make_bridge, bridge_logs
) -> None:
    arn = aws.register(status="Approved")
    event = state_change_event(aws, arn)  # says Approved ...
    aws.set_status(arn, "Rejected")  # ... but a reviewer rejected it since
    result = make_bridge().handle(event, LambdaContext())

    assert result["outcome"] == "ignored"
    assert fake_ado.requests == [] and aws.idempotency_items() == []
    [line] = bridge_lines(bridge_logs)
    assert "registry says Rejected" in line


def test_an_event_for_a_package_the_registry_does_not_have_raises(
    aws: Aws, fake_ado: FakeAzureDevOps, make_bridge
) -> None:
    arn = aws.register(status="Approved")
    event = state_change_event(aws, arn)
    forged = arn.replace("/1", "/7")
    event["resources"] = [forged]
    event["detail"].update(ModelPackageArn=forged, ModelPackageVersion=7)

    with pytest.raises(RegistryMismatchError, match="the registry has no such package"):
        make_bridge().handle(event, LambdaContext())
    assert fake_ado.requests == []


def test_an_event_that_lies_about_the_group_raises(aws: Aws, fake_ado: FakeAzureDevOps, make_bridge) -> None:
    # Claims an allowed group, but the registry files the package under a group that is not ours.
    arn = aws.register(group=OTHER_GROUP, status="Approved")
    event = state_change_event(aws, arn)
    event["detail"]["ModelPackageGroupName"] = "other-allowed"
    event["detail"]["ModelPackageArn"] = arn.replace(OTHER_GROUP, "other-allowed")
    event["resources"] = [event["detail"]["ModelPackageArn"]]

    with pytest.raises(RegistryMismatchError):
        make_bridge().handle(event, LambdaContext())
    assert fake_ado.requests == []


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda e: e.pop("detail"), "expected a 'detail' object"),
        (lambda e: e.update(source="aws.s3"), "expected source 'aws.sagemaker', got 'aws.s3'"),
        (lambda e: e.update({"detail-type": "Other"}), "expected detail-type"),
        (lambda e: e["detail"].pop("ModelPackageArn"), "detail.ModelPackageArn"),
        (lambda e: e["detail"].update(ModelPackageVersion="1"), "ModelPackageVersion to be a positive integer"),
        (lambda e: e["detail"].update(ModelApprovalStatus="approved"), "ModelApprovalStatus in"),
        (lambda e: e.pop("id"), "non-empty string 'id'"),
    ],
)
def test_a_malformed_event_raises(aws: Aws, fake_ado: FakeAzureDevOps, make_bridge, mutate, message: str) -> None:
    arn = aws.register(status="Approved")
    event = state_change_event(aws, arn)
    mutate(event)
    with pytest.raises(MalformedEventError, match=message.replace("(", r"\(").replace(")", r"\)")):
        make_bridge().handle(event, LambdaContext())
    assert fake_ado.requests == [] and aws.idempotency_items() == []


def test_a_non_object_event_raises(aws: Aws, fake_ado: FakeAzureDevOps, make_bridge) -> None:
    with pytest.raises(MalformedEventError, match="got list"):
        make_bridge().handle([], LambdaContext())


def test_the_lambda_entry_point_reads_its_configuration_from_the_environment(
    aws: Aws, fake_ado: FakeAzureDevOps, lambda_env: dict[str, str]
) -> None:
    arn = aws.register(status="Approved")
    result = handler_module.handler(state_change_event(aws, arn), LambdaContext())
    assert result["outcome"] == "started" and len(fake_ado.runs) == 1


def test_the_entry_point_refuses_to_run_with_idempotency_disabled(
    aws: Aws, fake_ado: FakeAzureDevOps, lambda_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("POWERTOOLS_IDEMPOTENCY_DISABLED", "true")
    arn = aws.register(status="Approved")
    with pytest.raises(ConfigurationError, match="POWERTOOLS_IDEMPOTENCY_DISABLED"):
        handler_module.handler(state_change_event(aws, arn), LambdaContext())
    assert fake_ado.requests == []
