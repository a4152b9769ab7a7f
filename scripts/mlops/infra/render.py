"""Evaluate a template's intrinsic functions for one stack: what CloudFormation would resolve. Pure.

The twin uses it to create what moto's CloudFormation skips from the template's own properties (and to
re-apply properties of created resources that referred to a skipped one, which moto resolved to nothing).
Supported: Ref (parameters, pseudo parameters, resources), Fn::GetAtt (through `attributes`), Fn::Sub (both
forms), Fn::If, Fn::Join, Fn::Select, Fn::Split, Fn::Equals/Not/And/Or and Condition. Anything else is an
error naming the function, never a silent pass-through.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from mlops.core.errors import InfraError

NO_VALUE = object()  # AWS::NoValue: the property or list item is dropped
_SUB_VARIABLE = re.compile(r"\$\{([^}!][^}]*)\}")


class Renderer:
    def __init__(
        self,
        template: Mapping[str, Any],
        parameters: Mapping[str, str],
        *,
        pseudo: Mapping[str, str],
        refs: Mapping[str, str] | None = None,
        attribute: Callable[[str, str], str] | None = None,
    ) -> None:
        declared = template.get("Parameters") or {}
        self.values: dict[str, Any] = {k: (v or {}).get("Default", "") for k, v in declared.items()}
        self.values.update(parameters)
        for name, spec in declared.items():  # a CommaDelimitedList is a list wherever it is referenced
            if (spec or {}).get("Type") == "CommaDelimitedList" and isinstance(self.values[name], str):
                self.values[name] = [item.strip() for item in self.values[name].split(",")]
        self.conditions = template.get("Conditions") or {}
        self.pseudo = dict(pseudo)
        self.refs = dict(refs or {})
        self._attribute = attribute
        self._holds: dict[str, bool] = {}

    def condition(self, name: str) -> bool:
        if name not in self._holds:
            if name not in self.conditions:
                raise InfraError(f"the template uses condition {name!r}, which its Conditions section lacks")
            self._holds[name] = bool(self.value(self.conditions[name]))
        return self._holds[name]

    def ref(self, name: str) -> Any:
        if name in self.values:
            return self.values[name]
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.refs:
            return self.refs[name]
        raise InfraError(f"cannot resolve Ref {name!r}: no parameter, pseudo parameter or known resource of that name")

    def get_att(self, logical_id: str, name: str) -> str:
        if self._attribute is None:
            raise InfraError(f"cannot resolve Fn::GetAtt {logical_id}.{name}: no attributes are known here")
        return self._attribute(logical_id, name)

    def sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and name.split(".", 1)[0] not in self.values:
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return str(self.ref(name))

        return _SUB_VARIABLE.sub(replace, text).replace("${!", "${")

    def value(self, node: Any) -> Any:
        if isinstance(node, list):
            items = [self.value(item) for item in node]
            return [item for item in items if item is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, args),) = node.items()
            function = self._functions().get(key)
            if function is not None:
                return function(args)
            if key.startswith("Fn::"):
                raise InfraError(f"the twin cannot evaluate {key}: extend mlops/infra/render.py")
        rendered = {k: self.value(v) for k, v in node.items()}
        return {k: v for k, v in rendered.items() if v is not NO_VALUE}

    def _functions(self) -> dict[str, Callable[[Any], Any]]:
        return {
            "Ref": lambda name: self.ref(str(name)),
            "Condition": lambda name: self.condition(str(name)),
            "Fn::GetAtt": self._fn_get_att,
            "Fn::Sub": self._fn_sub,
            "Fn::If": lambda args: self.value(args[1] if self.condition(args[0]) else args[2]),
            "Fn::Join": lambda args: str(args[0]).join(str(v) for v in self.value(args[1])),
            "Fn::Select": lambda args: self.value(args[1])[int(self.value(args[0]))],
            "Fn::Split": lambda args: str(self.value(args[1])).split(str(args[0])),
            "Fn::Equals": lambda args: str(self.value(args[0])) == str(self.value(args[1])),
            "Fn::Not": lambda args: not self.value(args[0]),
            "Fn::And": lambda args: all(self.value(a) for a in args),
            "Fn::Or": lambda args: any(self.value(a) for a in args),
        }

    def _fn_get_att(self, args: Any) -> str:
        logical_id, name = args if isinstance(args, list) else str(args).split(".", 1)
        return self.get_att(str(logical_id), str(self.value(name)))

    def _fn_sub(self, args: Any) -> str:
        if isinstance(args, str):
            return self.sub(args, {})
        text, variables = args
        return self.sub(str(text), {k: self.value(v) for k, v in variables.items()})


def references(node: Any) -> set[str]:
    """Logical ids (and parameter names) a node refers to through Ref, Fn::GetAtt or ${...} in Fn::Sub."""
    found: set[str] = set()
    if isinstance(node, list):
        for item in node:
            found |= references(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref":
                found.add(str(value))
            elif key == "Fn::GetAtt":
                found.add(str(value[0] if isinstance(value, list) else str(value).split(".", 1)[0]))
            elif key == "Fn::Sub":
                text = value if isinstance(value, str) else value[0]
                found |= {name.split(".", 1)[0] for name in _SUB_VARIABLE.findall(str(text))}
                if not isinstance(value, str):
                    found |= references(value[1])
            else:
                found |= references(value)
    return found
