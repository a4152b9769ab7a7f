"""The twin's moto patches: one that changes cost only (same answers, computed once), one defect fixed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.base_backend import AccountSpecificBackend
from moto.sqs.models import SQSBackend

from mlops.local import moto_fixes
from mlops.local.moto_fixes import change_set_outputs, regions_listed_once

REPO_ROOT = Path(__file__).resolve().parents[2]


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


def test_templates_parsed_by_libyaml_are_the_objects_moto_builds_itself() -> None:
    """The patch is a cost, never a difference: every template parses to what moto's own loader returns."""
    import yaml
    from moto.cloudformation.models import ChangeSet, Stack
    from moto.cloudformation.utils import yaml_tag_constructor

    from mlops.local.moto_fixes import templates_parsed_by_libyaml

    templates = sorted((REPO_ROOT / "infra" / "templates").glob("*.yaml"))
    assert len(templates) == 4
    yaml.add_multi_constructor("", yaml_tag_constructor)  # what moto does before each parse
    for template in templates:
        text = template.read_text()
        moto_own = yaml.load(text, Loader=yaml.Loader)  # noqa: S506 - moto's loader, on our templates
        with templates_parsed_by_libyaml():
            assert Stack.parse_template(text) == moto_own, template.name
            change_set = ChangeSet.__new__(ChangeSet)
            change_set.template = text
            change_set._parse_template()
            assert change_set.template_dict == moto_own, template.name
        # Restored afterwards as it was, a staticmethod: moto calls it on the instance.
        assert isinstance(Stack.__dict__["parse_template"], staticmethod)
        assert Stack.parse_template.__module__ == "moto.cloudformation.models"
    with templates_parsed_by_libyaml():
        assert Stack.parse_template('{"Resources": {}}') == {"Resources": {}}  # JSON templates still parse
