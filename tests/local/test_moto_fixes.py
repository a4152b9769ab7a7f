"""The twin's moto patches: one that changes cost only (same answers, computed once), one defect fixed."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.base_backend import AccountSpecificBackend
from moto.sqs.models import SQSBackend

from mlops.local import moto_fixes
from mlops.local.moto_fixes import change_set_outputs, regions_listed_once


def test_regions_are_listed_once_per_service_with_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    expected = AccountSpecificBackend("sqs", "000000000009", SQSBackend, True, None).regions
    moto_fixes._regions_of.cache_clear()
    session = AccountSpecificBackend.get_session()
    calls: list[Any] = []
    listed = session.get_available_regions

    def counted(*args: Any, **kwargs: Any) -> list[str]:
        calls.append(args)
        return listed(*args, **kwargs)

    monkeypatch.setattr(session, "get_available_regions", counted)
    with regions_listed_once():
        first = AccountSpecificBackend("sqs", "000000000008", SQSBackend, True, ["eu-test-1"]).regions
        per_partition = len(calls)
        second = AccountSpecificBackend("sqs", "000000000007", SQSBackend, True, None).regions
    assert first == [*expected, "eu-test-1"]
    assert second == expected
    assert per_partition > 0 and len(calls) == per_partition  # the second account listed nothing again
    # Outside the patch moto lists them again for every backend, as before.
    AccountSpecificBackend("sqs", "000000000006", SQSBackend, True, None)
    assert len(calls) == 2 * per_partition


def test_a_stack_created_through_a_change_set_has_its_templates_outputs() -> None:
    """moto 5.2.5 gives such a stack no outputs; `mlops infra deploy` reads the shared stack's (ArtifactKeyArn)."""
    body = '{"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}, "Outputs": {"QueueUrl": {"Value": {"Ref": "Q"}}}}'

    def outputs_after_change_set(stack: str) -> Any:
        cfn = boto3.client("cloudformation", region_name="us-east-1")
        cfn.create_change_set(StackName=stack, ChangeSetName="c", ChangeSetType="CREATE", TemplateBody=body)
        cfn.execute_change_set(StackName=stack, ChangeSetName="c")
        return cfn.describe_stacks(StackName=stack)["Stacks"][0].get("Outputs")

    with mock_aws():
        assert outputs_after_change_set("without-the-fix") is None  # moto's defect, still there
        with change_set_outputs():
            (output,) = outputs_after_change_set("with-the-fix")
        assert output["OutputKey"] == "QueueUrl" and "/with-the-fix-Q-" in output["OutputValue"]
