"""Four moto 5.2.5 defects and one missing API that the templates' resources hit, fixed in this process,
and one cost.

- moto's CloudFormation creates an AWS::KMS::Key with its KeyPolicy as a mapping, where the KMS API stores
  text; every later DescribeKey, GetKeyPolicy or ListKeys of that key then fails with HTTP 500 (moto parses
  the policy with json.loads). KMS keeps a key policy as a JSON document: store it as one.
- moto's S3 evaluates a bucket policy's statements for object requests, but answers DENIED for any statement
  whose condition it cannot evaluate, a Deny whose condition does not hold included
  (IAMPolicyStatement._check_conditions): the templates' `DenyInsecureTransport` (aws:SecureTransport false)
  then refuses every object request, over TLS or not. AWS evaluates bucket policies with the identity policies
  of the caller; moto's half of it is switched off, and the policies stay stored for a real evaluation.
- moto has no Put/Get/DeleteModelPackageGroupPolicy, so the registry's cross-account policy (the template's
  ModelPackageGroupPolicy) had nowhere to live. The twin keeps it on moto's group object, attribute
  `resource_policy` (JSON text), where an authorisation engine can read it.
- moto's EventBridge forwards an event to another account's bus (a rule target `...:event-bus/<name>`) as a new
  event of that account, without its `resources`; AWS delivers the event whole. The stages' drift alarms reach
  the retrain route that way (the rule matches on the stage's `account`, the bridge reads the alarm ARN from
  `resources`): forwarded events keep them. And moto matches every event to a schedule-only rule (the
  reminder schedule), whose Lambda target it then cannot invoke; in AWS such a rule matches no event.
- moto's CloudFormation gives a stack created through a change set (CREATE) no outputs: the stack object is
  made from an empty template when the change set is created, and executing it replaces the template text but
  neither re-parses it nor rebuilds the outputs. `mlops infra deploy` reads the shared stack's outputs (the
  artifact key) for the use cases' stacks: after executing a change set, the outputs are those of its template.
- moto lists a service's regions from botocore's endpoint data each time it creates a service backend for an
  account (its lru_cache is keyed by the backend object, so it never hits): a twin of three accounts did it
  dozens of times at start, 0.4 s of CPU. The regions depend only on the service name and botocore's data,
  so they are cached by service name. Nothing else changes.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import yaml
from moto.cloudformation.models import ChangeSet, CloudFormationBackend, Stack
from moto.cloudformation.utils import yaml_tag_constructor
from moto.core.base_backend import AccountSpecificBackend
from moto.core.responses import ActionResult, EmptyResult
from moto.events.models import Rule, events_backends
from moto.iam.access_control import PermissionResult
from moto.kms.models import Key
from moto.s3.models import FakeBucket
from moto.sagemaker.exceptions import ValidationError
from moto.sagemaker.models import ModelPackageGroup
from moto.sagemaker.responses import SageMakerResponse
from moto.utilities.arns import parse_arn
from yaml.parser import ParserError
from yaml.scanner import ScannerError


@contextmanager
def key_policy_as_text() -> Iterator[None]:
    original = Key.__dict__["create_from_cloudformation_json"]

    def create(cls: Any, resource_name: str, cloudformation_json: Any, *args: Any, **kwargs: Any) -> Any:
        properties = cloudformation_json.get("Properties", {})
        if isinstance(properties.get("KeyPolicy"), dict):
            properties = {**properties, "KeyPolicy": json.dumps(properties["KeyPolicy"])}
            cloudformation_json = {**cloudformation_json, "Properties": properties}
        return original.__func__(cls, resource_name, cloudformation_json, *args, **kwargs)

    Key.create_from_cloudformation_json = classmethod(create)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        Key.create_from_cloudformation_json = original  # type: ignore[method-assign]


@contextmanager
def change_set_outputs() -> Iterator[None]:
    original = CloudFormationBackend.execute_change_set

    def execute(self: Any, change_set_name: str, stack_name: str | None = None) -> None:
        original(self, change_set_name, stack_name)
        # by ARN, or by name within the stack (change set names are unique per stack only)
        change_set = self.change_sets.get(change_set_name) or next(
            (
                c
                for c in self.change_sets.values()
                if c.change_set_name == change_set_name and stack_name in (c.stack_name, c.stack_id)
            ),
            None,
        )
        if change_set is not None:
            stack = self.stacks[change_set.stack_id]
            stack._parse_template()  # the change set's template, which execution made the stack's
            stack.output_map = stack._create_output_map()

    CloudFormationBackend.execute_change_set = execute  # type: ignore[method-assign]
    try:
        yield
    finally:
        CloudFormationBackend.execute_change_set = original  # type: ignore[method-assign]


class _CfnCLoader(yaml.CLoader):
    """moto's template loader (yaml.Loader with its intrinsic-function tags) on libyaml's parser."""


_CfnCLoader.add_multi_constructor("", yaml_tag_constructor)


def _parse_template(template: str) -> dict[str, Any]:
    try:
        return dict(yaml.load(template, Loader=_CfnCLoader))  # noqa: S506 - moto's own loader class, on libyaml
    except (ParserError, ScannerError):
        return dict(json.loads(template))


@contextmanager
def templates_parsed_by_libyaml() -> Iterator[None]:
    """Not a defect, a cost: moto parses each template with the pure-Python yaml.Loader several times per stack
    (the change set, the stack, again when a change set executes), about 0.08 s per parse of automation.yaml;
    libyaml builds the same objects (the same Constructor and Resolver classes, the same tag constructor) in an
    eighth of that (tests/local/test_moto_fixes.py compares the two on every template)."""
    # The staticmethod object itself: `Stack.parse_template` would give the bare function, which restored as a
    # class attribute becomes a method (and moto's `self.parse_template(template)` then fails).
    original_stack, original_change_set = Stack.__dict__["parse_template"], ChangeSet._parse_template

    def change_set_parse(self: Any) -> None:
        self.template_dict = _parse_template(self.template)

    Stack.parse_template = staticmethod(_parse_template)  # type: ignore[method-assign]
    ChangeSet._parse_template = change_set_parse  # type: ignore[method-assign]
    try:
        yield
    finally:
        Stack.parse_template = original_stack  # type: ignore[method-assign]
        ChangeSet._parse_template = original_change_set  # type: ignore[method-assign]


@contextmanager
def no_partial_bucket_policy_evaluation() -> Iterator[None]:
    original = FakeBucket.get_permission

    def neutral(self: Any, action: str, resource: str) -> Any:
        return PermissionResult.NEUTRAL

    FakeBucket.get_permission = neutral  # type: ignore[method-assign]
    try:
        yield
    finally:
        FakeBucket.get_permission = original  # type: ignore[method-assign]


def _group(response: Any) -> ModelPackageGroup:
    name = str(response._get_param("ModelPackageGroupName")).split("/")[-1]  # a name or the group's ARN
    group: ModelPackageGroup = response.sagemaker_backend.describe_model_package_group(model_package_group_name=name)
    return group


def _put_policy(self: Any) -> ActionResult:
    group = _group(self)
    group.resource_policy = str(self._get_param("ResourcePolicy"))  # type: ignore[attr-defined]
    return ActionResult({"ModelPackageGroupArn": group.arn})


def _get_policy(self: Any) -> ActionResult:
    group = _group(self)
    policy = getattr(group, "resource_policy", None)
    if policy is None:
        raise ValidationError(f"Cannot find Model Package Group policy for {group.arn}")
    return ActionResult({"ResourcePolicy": policy})


def _delete_policy(self: Any) -> EmptyResult:
    group = _group(self)
    if getattr(group, "resource_policy", None) is None:
        raise ValidationError(f"Cannot find Model Package Group policy for {group.arn}")
    group.resource_policy = None  # type: ignore[attr-defined]
    return EmptyResult()


@contextmanager
def model_package_group_policies() -> Iterator[None]:
    added: dict[str, Any] = {
        "put_model_package_group_policy": _put_policy,
        "get_model_package_group_policy": _get_policy,
        "delete_model_package_group_policy": _delete_policy,
    }
    before: dict[str, Any] = {name: SageMakerResponse.__dict__.get(name) for name in added}
    for name, method in added.items():
        setattr(SageMakerResponse, name, method)
    try:
        yield
    finally:
        for name, method in before.items():
            if method is None:
                delattr(SageMakerResponse, name)
            else:
                setattr(SageMakerResponse, name, method)


@functools.cache
def _regions_of(service_name: str) -> tuple[str, ...]:
    session = AccountSpecificBackend.get_session()
    return tuple(
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions(service_name, partition_name=partition)
    )


def _generate_regions(self: Any, service_name: str) -> list[str]:
    return list(_regions_of(service_name))


@contextmanager
def regions_listed_once() -> Iterator[None]:
    original = AccountSpecificBackend.__dict__["_generate_regions"]
    setattr(AccountSpecificBackend, "_generate_regions", _generate_regions)  # noqa: B010 - a method swap
    try:
        yield
    finally:
        setattr(AccountSpecificBackend, "_generate_regions", original)  # noqa: B010


@contextmanager
def forwarded_events_keep_resources() -> Iterator[None]:
    original = Rule.send_to_targets

    def to_bus(target: dict[str, Any]) -> bool:
        arn = parse_arn(target["Arn"])
        return bool(arn.service == "events" and arn.resource_type == "event-bus")

    def send(self: Any, original_event: Any, transform_input: bool = True) -> None:
        if self.scheduled_expression and not self.event_pattern.dump():
            return  # a schedule-only rule matches no event in AWS (moto matches every event to it)
        buses = [t for t in self.targets if to_bus(t)]
        if not buses:
            original(self, original_event, transform_input)
            return
        if not self.event_pattern.matches_event(original_event):
            return
        others = [t for t in self.targets if not to_bus(t)]
        if others:
            kept = self.targets
            self.targets = others
            try:
                original(self, original_event, transform_input)
            finally:
                self.targets = kept
        for target in buses:
            # AWS delivers the event to the other bus whole: its id, account, time, resources and detail.
            arn = parse_arn(target["Arn"])
            bus = events_backends[arn.account][arn.region].describe_event_bus(arn.resource_id)
            for rule in list(bus.rules.values()):
                rule.send_to_targets(copy.deepcopy(original_event))

    Rule.send_to_targets = send  # type: ignore[method-assign]
    try:
        yield
    finally:
        Rule.send_to_targets = original  # type: ignore[method-assign]
