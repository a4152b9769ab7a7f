"""The change-set flow where the exact calls matter: botocore Stubber, an injected clock and sleep."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from mlops.core.config import Config
from mlops.core.errors import InfraError
from mlops.infra.deploy import check_account, deploy_stack
from mlops.infra.templates import StackSpec, stack_spec

from .conftest import ORG_ID

STACK = "mlops-staging"
CS_ID = "arn:aws:cloudformation:us-east-1:000000000002:changeSet/mlops-20260101-000000/1"


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def cfn() -> Iterator[tuple[Any, Stubber]]:
    client = boto3.client("cloudformation", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


@pytest.fixture
def spec(local_config: Config) -> StackSpec:
    return stack_spec(local_config, "staging", {"AzureDevOpsOrganizationId": ORG_ID})


def stack(status: str, change_set_id: str | None = None) -> dict[str, Any]:
    described: dict[str, Any] = {
        "StackName": STACK,
        "StackStatus": status,
        "CreationTime": datetime(2026, 1, 1, tzinfo=UTC),
        "Parameters": [{"ParameterKey": "AzureDevOpsOrganizationId", "ParameterValue": ORG_ID}],
    }
    if change_set_id:
        described["ChangeSetId"] = change_set_id
    return {"Stacks": [described]}


def change_set(status: str, reason: str = "", changes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"ChangeSetId": CS_ID, "Status": status, "StatusReason": reason, "Changes": changes or []}


def run(client: Any, spec: StackSpec, fake: FakeTime, **kwargs: Any) -> Any:
    return deploy_stack(
        client, spec, sleep=fake.sleep, clock=fake.clock, now=lambda: datetime(2026, 1, 1, tzinfo=UTC),
        progress=lambda _: None, poll_seconds=5, **kwargs,
    )  # fmt: skip


def test_an_empty_change_set_is_no_changes_not_an_error(cfn: tuple[Any, Stubber], spec: StackSpec) -> None:
    client, stub = cfn
    stub.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": STACK})
    stub.add_response("create_change_set", {"Id": CS_ID}, {
        "StackName": STACK, "ChangeSetName": "mlops-20260101-000000", "ChangeSetType": "UPDATE",
        "TemplateBody": ANY, "Parameters": ANY, "Capabilities": ["CAPABILITY_NAMED_IAM"], "Description": ANY,
        "Tags": ANY,
    })  # fmt: skip
    stub.add_response("describe_change_set", change_set("CREATE_PENDING"), None)
    stub.add_response(
        "describe_change_set",
        change_set("FAILED", "The submitted information didn't contain changes. Submit different information."),
        None,
    )
    stub.add_response("delete_change_set", {}, {"StackName": STACK, "ChangeSetName": "mlops-20260101-000000"})
    fake = FakeTime()
    result = run(client, spec, fake)
    assert result.outcome == "no changes" and not result.executed
    assert fake.sleeps == [5]


def test_a_failed_change_set_is_an_error_with_the_reason(cfn: tuple[Any, Stubber], spec: StackSpec) -> None:
    client, stub = cfn
    stub.add_response("describe_stacks", stack("UPDATE_COMPLETE"), None)
    stub.add_response("create_change_set", {"Id": CS_ID}, None)
    stub.add_response(
        "describe_change_set", change_set("FAILED", "Parameter 'Stage' must be one of AllowedValues"), None
    )
    stub.add_response("delete_change_set", {}, None)
    with pytest.raises(InfraError, match="failed: Parameter 'Stage' must be one of AllowedValues"):
        run(client, spec, FakeTime())


def test_execution_waits_for_our_change_set_and_reports_failed_resources(
    cfn: tuple[Any, Stubber], spec: StackSpec
) -> None:
    client, stub = cfn
    add = {
        "Type": "Resource",
        "ResourceChange": {
            "Action": "Modify",
            "LogicalResourceId": "DeployRole",
            "ResourceType": "AWS::IAM::Role",
            "Replacement": "False",
        },
    }
    stub.add_response("describe_stacks", stack("UPDATE_COMPLETE", "old-change-set"), None)
    stub.add_response("create_change_set", {"Id": CS_ID}, None)
    stub.add_response("describe_change_set", change_set("CREATE_COMPLETE", changes=[add]), None)
    stub.add_response("execute_change_set", {}, None)
    # the old operation's terminal status must not be mistaken for ours
    stub.add_response("describe_stacks", stack("UPDATE_COMPLETE", "old-change-set"), None)
    stub.add_response("describe_stacks", stack("UPDATE_IN_PROGRESS", CS_ID), None)
    stub.add_response("describe_stacks", stack("UPDATE_ROLLBACK_COMPLETE", CS_ID), None)
    stub.add_response("describe_stack_events", {"StackEvents": [
        {"StackId": "s", "EventId": "2", "StackName": STACK, "LogicalResourceId": STACK,
         "ResourceStatus": "UPDATE_ROLLBACK_COMPLETE", "Timestamp": datetime(2026, 1, 1, tzinfo=UTC)},
        {"StackId": "s", "EventId": "1", "StackName": STACK, "LogicalResourceId": "DeployRole",
         "ResourceType": "AWS::IAM::Role", "ResourceStatus": "UPDATE_FAILED",
         "ResourceStatusReason": "MalformedPolicyDocument", "Timestamp": datetime(2026, 1, 1, tzinfo=UTC)},
    ]}, None)  # fmt: skip
    fake = FakeTime()
    with pytest.raises(InfraError, match=r"ended UPDATE_ROLLBACK_COMPLETE.*DeployRole \(AWS::IAM::Role\): Malformed"):
        run(client, spec, fake)
    assert len(fake.sleeps) == 2


def test_waiting_is_bounded(cfn: tuple[Any, Stubber], spec: StackSpec) -> None:
    client, stub = cfn
    stub.add_response("describe_stacks", stack("UPDATE_COMPLETE"), None)
    stub.add_response("create_change_set", {"Id": CS_ID}, None)
    for _ in range(3):
        stub.add_response("describe_change_set", change_set("CREATE_IN_PROGRESS"), None)
    fake = FakeTime()
    with pytest.raises(InfraError, match="still CREATE_IN_PROGRESS at the time limit"):
        run(client, spec, fake, timeout_seconds=10)
    assert fake.now == 10


@pytest.mark.parametrize(
    ("status", "advice"), [("ROLLBACK_COMPLETE", "delete the stack"), ("UPDATE_IN_PROGRESS", "another operation")]
)
def test_a_stack_that_cannot_take_a_change_set_is_refused(
    cfn: tuple[Any, Stubber], spec: StackSpec, status: str, advice: str
) -> None:
    client, stub = cfn
    stub.add_response("describe_stacks", stack(status), None)
    with pytest.raises(InfraError, match=advice):
        run(client, spec, FakeTime())


def test_missing_required_parameters_are_named(cfn: tuple[Any, Stubber], local_config: Config) -> None:
    client, stub = cfn
    stub.add_client_error("describe_stacks", "ValidationError", "Stack with id mlops-prod does not exist")
    with pytest.raises(InfraError, match=r"needs AzureDevOpsOrganizationId.*") as raised:
        run(client, stack_spec(local_config, "prod"), FakeTime())
    assert "--parameter AzureDevOpsOrganizationId=" in str(raised.value)


def test_credentials_of_another_account_are_refused(spec: StackSpec) -> None:
    sts = boto3.client("sts", region_name="us-east-1")
    with Stubber(sts) as stub:
        stub.add_response(
            "get_caller_identity",
            {
                "Account": "000000000001",
                "Arn": "arn:aws:sts::000000000001:assumed-role/admin/x",
                "UserId": "AROAEXAMPLE",
            },
            {},
        )
        with pytest.raises(InfraError, match="credentials are for account 000000000001.*staging account 000000000002"):
            check_account(sts, spec)


def test_the_change_set_names_the_execution_role_when_given(cfn: tuple[Any, Stubber], spec: StackSpec) -> None:
    """After the first bootstrap CloudFormation acts as the account's execution role, not as the caller."""
    client, stub = cfn
    role = "arn:aws:iam::000000000002:role/mlops-cloudformation"
    stub.add_response("describe_stacks", stack("UPDATE_COMPLETE"), {"StackName": STACK})
    stub.add_response("create_change_set", {"Id": CS_ID}, {
        "StackName": STACK, "ChangeSetName": "mlops-20260101-000000", "ChangeSetType": "UPDATE",
        "TemplateBody": ANY, "Parameters": ANY, "Capabilities": ["CAPABILITY_NAMED_IAM"], "RoleARN": role,
        "Description": ANY, "Tags": ANY,
    })  # fmt: skip
    stub.add_response(
        "describe_change_set",
        change_set("FAILED", "The submitted information didn't contain changes. Submit different information."),
        None,
    )
    stub.add_response("delete_change_set", {}, None)
    assert run(client, spec, FakeTime(), role_arn=role).outcome == "no changes"


def test_the_access_stack_is_its_own_stack_with_the_infra_connection(local_config: Config) -> None:
    access = stack_spec(local_config, "prod", {"AzureDevOpsOrganizationId": ORG_ID}, access=True)
    assert (access.stack_name, access.template_path.name) == ("mlops-prod-access", "access.yaml")
    assert access.parameters["ManagedStackName"] == "mlops-prod"
    assert access.parameters["InfraServiceConnectionName"] == "aws-infra-prod"
    assert access.parameters["OidcIssuer"] == "both" and access.parameters["EntraTenantId"]
