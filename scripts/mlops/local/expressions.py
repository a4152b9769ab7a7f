"""Pipeline-definition expressions, evaluated the way SageMaker Pipelines evaluates them. Pure.

Supports what the SDK emits: `{"Get": "Parameters.X" | "Execution.X" | "Steps.S.<property path>"}`,
`{"Std:Join": {"On": sep, "Values": [...]}}`, `{"Std:JsonGet": {"PropertyFile": {"Get": ...}, "Path": p}}`
and the condition types of ConditionStep. Anything else is an UnsupportedDefinition naming the step
and the field, never a silent pass-through.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from mlops.local.errors import UnsupportedDefinition

PropertyFileReader = Callable[[str, str, str], Any]  # (step name, property file name, json path) -> value

_STEP_REF = re.compile(r"^Steps\.([^.\[]+)\.(.+)$")


class Scope:
    """What expressions can see: parameters, execution variables, finished steps' properties."""

    def __init__(
        self,
        parameters: Mapping[str, Any],
        execution: Mapping[str, str],
        read_property_file: PropertyFileReader,
    ) -> None:
        self.parameters = dict(parameters)
        self.execution = dict(execution)
        self.step_properties: dict[str, dict[str, Any]] = {}
        self.read_property_file = read_property_file

    def get(self, ref: str, where: str) -> Any:
        if ref.startswith("Parameters."):
            name = ref.removeprefix("Parameters.")
            if name not in self.parameters:
                raise UnsupportedDefinition(where, f"refers to undefined parameter {name!r}")
            return self.parameters[name]
        if ref.startswith("Execution."):
            name = ref.removeprefix("Execution.")
            if name not in self.execution:
                raise UnsupportedDefinition(where, f"execution variable {name!r} is not supported")
            return self.execution[name]
        match = _STEP_REF.match(ref)
        if not match:
            raise UnsupportedDefinition(
                where, f"reference {ref!r} is not a parameter, execution variable or step property"
            )
        step, path = match.groups()
        properties = self.step_properties.get(step)
        if properties is None:
            raise UnsupportedDefinition(where, f"refers to step {step!r}, which has not run (or does not exist)")
        if path not in properties:
            known = ", ".join(sorted(properties)) or "none"
            raise UnsupportedDefinition(where, f"step {step!r} has no property {path!r} here (known: {known})")
        return properties[path]


def referenced_steps(node: Any) -> set[str]:
    """Names of the steps an argument tree refers to (its data dependencies)."""
    found: set[str] = set()
    if isinstance(node, dict):
        if set(node) == {"Get"} and isinstance(node["Get"], str):
            match = _STEP_REF.match(node["Get"])
            if match:
                found.add(match.group(1))
        for value in node.values():
            found |= referenced_steps(value)
    elif isinstance(node, list):
        for value in node:
            found |= referenced_steps(value)
    return found


def resolve(node: Any, scope: Scope, where: str) -> Any:
    if isinstance(node, list):
        return [resolve(v, scope, f"{where}[{i}]") for i, v in enumerate(node)]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Get"}:
        return scope.get(str(node["Get"]), where)
    if "Std:Join" in node:
        join = node["Std:Join"]
        values = [resolve(v, scope, f"{where}.Std:Join") for v in join.get("Values", [])]
        return str(join.get("On", "")).join(_as_text(v) for v in values)
    if "Std:JsonGet" in node:
        spec = node["Std:JsonGet"]
        file_ref = spec.get("PropertyFile", {}).get("Get", "") if isinstance(spec.get("PropertyFile"), dict) else ""
        match = re.match(r"^Steps\.([^.]+)\.PropertyFiles\.(.+)$", str(file_ref))
        if not match:
            raise UnsupportedDefinition(
                where, f"Std:JsonGet needs a step's property file, found {spec.get('PropertyFile')!r}"
            )
        return scope.read_property_file(match.group(1), match.group(2), str(spec.get("Path", "")))
    if any(str(k).startswith("Std:") for k in node):
        raise UnsupportedDefinition(where, f"function {next(iter(node))!r} is not supported by the local executor")
    return {k: resolve(v, scope, f"{where}.{k}") for k, v in node.items()}


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def json_path(document: Any, path: str, where: str) -> Any:
    """The subset of JsonPath that JsonGet uses: dotted keys and [index]."""
    value = document
    for token in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        try:
            value = value[int(token[1:-1])] if token.startswith("[") else value[token]
        except (KeyError, IndexError, TypeError):
            raise UnsupportedDefinition(where, f"JsonGet path {path!r} does not exist in the property file") from None
    return value


_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda a, b: a == b,
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanOrEqualTo": lambda a, b: a >= b,
    "LessThan": lambda a, b: a < b,
    "LessThanOrEqualTo": lambda a, b: a <= b,
}


def evaluate_condition(condition: Mapping[str, Any], scope: Scope, where: str) -> bool:
    kind = condition.get("Type")
    if kind in _COMPARISONS:
        left = resolve(condition.get("LeftValue"), scope, f"{where}.LeftValue")
        right = resolve(condition.get("RightValue"), scope, f"{where}.RightValue")
        try:
            return _COMPARISONS[str(kind)](_number_or_value(left), _number_or_value(right))
        except TypeError as exc:
            raise UnsupportedDefinition(where, f"cannot compare {left!r} with {right!r}: {exc}") from exc
    if kind == "Not":
        return not evaluate_condition(condition["Condition"], scope, f"{where}.Condition")
    if kind == "Or":
        return any(
            evaluate_condition(c, scope, f"{where}.Conditions[{i}]") for i, c in enumerate(condition["Conditions"])
        )
    if kind == "In":
        value = resolve(condition.get("QueryValue"), scope, f"{where}.QueryValue")
        return value in resolve(condition.get("Values", []), scope, f"{where}.Values")
    raise UnsupportedDefinition(where, f"condition type {kind!r} is not supported by the local executor")


def _number_or_value(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value
