"""The intrinsic-function evaluator the twin uses to create what moto's CloudFormation skips. Pure."""

from __future__ import annotations

from typing import Any

import pytest

from mlops.core.errors import InfraError
from mlops.infra.render import Renderer, references

TEMPLATE: dict[str, Any] = {
    "Parameters": {
        "Stage": {"Type": "String"},
        "Existing": {"Type": "String", "Default": ""},
        "Names": {"Type": "CommaDelimitedList", "Default": "a, b"},
    },
    "Conditions": {
        "Create": {"Fn::Equals": [{"Ref": "Existing"}, ""]},
        "Prod": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]},
    },
    "Resources": {},
}
PSEUDO = {"AWS::AccountId": "000000000002", "AWS::Region": "us-east-1", "AWS::Partition": "aws"}


def renderer(**parameters: str) -> Renderer:
    return Renderer(
        TEMPLATE,
        {"Stage": "staging", **parameters},
        pseudo=PSEUDO,
        refs={"Provider": "arn:aws:iam::000000000002:oidc-provider/x"},
        attribute=lambda logical_id, name: f"{logical_id}.{name}!",
    )


def test_sub_if_ref_getatt_and_join() -> None:
    r = renderer()
    sub = {
        "Fn::Sub": [
            "${P}/${Stage}/${AWS::AccountId}/${Bucket.Arn}/${!Literal}",
            {"P": {"Fn::If": ["Create", {"Ref": "Provider"}, {"Ref": "Existing"}]}},
        ]
    }
    assert r.value(sub) == "arn:aws:iam::000000000002:oidc-provider/x/staging/000000000002/Bucket.Arn!/${Literal}"
    assert r.value({"Fn::GetAtt": ["Queue", "QueueName"]}) == "Queue.QueueName!"
    assert r.value({"Fn::GetAtt": "Queue.Arn"}) == "Queue.Arn!"
    assert r.value({"Fn::Join": ["-", {"Ref": "Names"}]}) == "a-b"
    assert r.value({"Fn::Select": [1, {"Fn::Split": [",", "x,y"]}]}) == "y"
    # AWS::NoValue drops the property or list item
    assert r.value({"A": {"Fn::If": ["Prod", 1, {"Ref": "AWS::NoValue"}]}, "B": [1, {"Ref": "AWS::NoValue"}]}) == {
        "B": [1]
    }
    assert renderer(Existing="arn:x").value({"Fn::If": ["Create", "made", "given"]}) == "given"


def test_what_cannot_be_resolved_is_an_error_not_a_pass_through() -> None:
    r = renderer()
    with pytest.raises(InfraError, match="cannot resolve Ref 'Missing'"):
        r.value({"Ref": "Missing"})
    with pytest.raises(InfraError, match="cannot evaluate Fn::FindInMap"):
        r.value({"Fn::FindInMap": ["M", "k", "v"]})
    with pytest.raises(InfraError, match="condition 'Nope'"):
        r.value({"Fn::If": ["Nope", 1, 2]})


def test_references_finds_ref_getatt_and_sub_variables() -> None:
    node = {
        "Policy": {"Fn::Sub": ["${Bucket.Arn}/${Key}", {"Key": {"Ref": "Secret"}}]},
        "Role": {"Fn::GetAtt": ["Role", "Arn"]},
        "List": [{"Ref": "Topic"}],
    }
    assert references(node) == {"Bucket", "Key", "Secret", "Role", "Topic"}
