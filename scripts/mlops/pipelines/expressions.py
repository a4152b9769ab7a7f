"""The Azure Pipelines expression language, the part our YAML and the local runner need.

One parser serves compile-time `${{ }}` expressions (parameters, pipeline variables), runtime
conditions (`succeeded()`, `eq(variables['x'], 'y')`) and `$[ ]` variable values (`dependencies.*`).
Semantics follow Microsoft's documentation: comparisons are case-insensitive for strings and convert
the right operand to the left one's type; a string is true unless empty; booleans render as
`True`/`False`. Anything outside the subset is an `ExpressionError`, never a guess.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from mlops.core.errors import PipelineError


class ExpressionError(PipelineError):
    """An expression could not be parsed or evaluated."""


_TOKEN = re.compile(
    r"\s*(?:(?P<string>'(?:[^']|'')*')|(?P<number>-?\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][A-Za-z0-9_\-]*)"
    r"|(?P<punct>[()\[\],.]))"
)


@dataclass(frozen=True)
class Literal:
    value: Any


@dataclass(frozen=True)
class Name:
    name: str


@dataclass(frozen=True)
class Index:
    target: Any
    key: Any  # a node


@dataclass(frozen=True)
class Call:
    function: str
    args: tuple[Any, ...]


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise ExpressionError(f"unexpected character {text[position:].strip()[:1]!r} in expression {text!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.position = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self, expected: str | None = None) -> tuple[str, str]:
        token = self.peek()
        if token is None or (expected is not None and token[1] != expected):
            found = token[1] if token else "the end"
            raise ExpressionError(f"expected {expected or 'a value'} but found {found} in expression {self.text!r}")
        self.position += 1
        return token

    def parse(self) -> Any:
        node = self.expression()
        if self.peek() is not None:
            raise ExpressionError(f"unexpected {self.peek()[1]!r} in expression {self.text!r}")  # type: ignore[index]
        return node

    def expression(self) -> Any:
        kind, value = self.take()
        if kind == "string":
            node: Any = Literal(value[1:-1].replace("''", "'"))
        elif kind == "number":
            node = Literal(float(value) if "." in value else int(value))
        elif kind == "name":
            lowered = value.lower()
            if self.peek() == ("punct", "("):
                self.take("(")
                args: list[Any] = []
                if self.peek() != ("punct", ")"):
                    args.append(self.expression())
                    while self.peek() == ("punct", ","):
                        self.take(",")
                        args.append(self.expression())
                self.take(")")
                return Call(lowered, tuple(args))
            if lowered in ("true", "false"):
                node = Literal(lowered == "true")
            elif lowered == "null":
                node = Literal(None)
            else:
                node = Name(value)
        else:
            raise ExpressionError(f"unexpected {value!r} in expression {self.text!r}")
        while self.peek() in (("punct", "."), ("punct", "[")):
            if self.take()[1] == ".":
                node = Index(node, Literal(self.take()[1]))
            else:
                node = Index(node, self.expression())
                self.take("]")
        return node


def parse(text: str) -> Any:
    return _Parser(text).parse()


# ------------------------------------------------------------------------------------------- values


def to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value is None:
        return False
    if isinstance(value, (int, float)):
        return value != 0
    if isinstance(value, str):
        return value != ""
    return True  # arrays and objects


def to_str(value: Any) -> str:
    if isinstance(value, bool):
        return "True" if value else "False"
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _to_number(value: Any) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        return float(value)
    if value is None or value == "":
        return 0.0
    try:
        return float(str(value).strip())
    except ValueError:
        return float("nan")


def _coerce(left: Any, right: Any) -> tuple[Any, Any]:
    """Azure converts the right operand to the left operand's type; strings compare case-insensitively."""
    if isinstance(left, bool):
        return left, to_bool(right)
    if isinstance(left, (int, float)):
        return float(left), _to_number(right)
    if isinstance(left, str):
        return left.casefold(), to_str(right).casefold()
    return left, right


def equals(left: Any, right: Any) -> bool:
    a, b = _coerce(left, right)
    return bool(a == b)


def _compare(left: Any, right: Any) -> int:
    a, b = _coerce(left, right)
    return int(a > b) - int(a < b)


class CaseInsensitive(dict[str, Any]):
    """Variables and dependency names are case-insensitive in Azure Pipelines."""

    def __init__(self, values: Mapping[str, Any] | None = None) -> None:
        super().__init__()
        self._keys: dict[str, str] = {}
        for key, value in (values or {}).items():
            self[key] = value

    def __setitem__(self, key: str, value: Any) -> None:
        existing = self._keys.get(key.casefold())
        if existing is not None and existing != key:
            super().__delitem__(existing)
        self._keys[key.casefold()] = key
        super().__setitem__(key, value)

    def lookup(self, key: str) -> tuple[bool, Any]:
        actual = self._keys.get(key.casefold())
        return (False, None) if actual is None else (True, self[actual])


# ------------------------------------------------------------------------------------------ evaluation

StatusFunction = Callable[[str, tuple[Any, ...]], bool]


@dataclass
class Scope:
    """What an expression can see. `status` answers succeeded()/failed()/... where they are allowed."""

    names: Mapping[str, Any]
    status: StatusFunction | None = None
    where: str = "expression"


_STATUS = {"succeeded", "failed", "always", "canceled", "succeededorfailed"}


def evaluate(node: Any, scope: Scope) -> Any:
    if isinstance(node, Literal):
        return node.value
    if isinstance(node, Name):
        found, value = _get(scope.names, node.name)
        if not found:
            raise ExpressionError(
                f"unknown name {node.name!r} in {scope.where}; expected one of {sorted(scope.names)}",
            )
        return value
    if isinstance(node, Index):
        target = evaluate(node.target, scope)
        key = evaluate(node.key, scope)
        if isinstance(target, Mapping):
            return _get(target, to_str(key))[1]  # a missing key is null, as in Azure
        if isinstance(target, list) and isinstance(key, (int, float)) and not isinstance(key, bool):
            index = int(key)
            return target[index] if 0 <= index < len(target) else None
        return None
    if isinstance(node, Call):
        return _call(node, scope)
    raise ExpressionError(f"cannot evaluate {node!r}")  # pragma: no cover - the parser builds only the above


def _get(mapping: Mapping[str, Any], key: str) -> tuple[bool, Any]:
    if isinstance(mapping, CaseInsensitive):
        return mapping.lookup(key)
    if key in mapping:
        return True, mapping[key]
    for candidate, value in mapping.items():
        if isinstance(candidate, str) and candidate.casefold() == key.casefold():
            return True, value
    return False, None


def _call(node: Call, scope: Scope) -> Any:
    name, raw = node.function, node.args
    if name in _STATUS:
        if scope.status is None:
            raise ExpressionError(f"{name}() is a runtime status function; it cannot be used in {scope.where}")
        return scope.status(name, tuple(evaluate(arg, scope) for arg in raw))
    if name == "and":
        _arity(name, raw, 2, None)
        return all(to_bool(evaluate(arg, scope)) for arg in raw)  # short-circuits, as Azure does
    if name == "or":
        _arity(name, raw, 2, None)
        return any(to_bool(evaluate(arg, scope)) for arg in raw)
    args = [evaluate(arg, scope) for arg in raw]
    function = _FUNCTIONS.get(name)
    if function is None:
        raise ExpressionError(
            f"unsupported function {node.function}() in {scope.where}",
            hint=f"the local runner supports {', '.join(sorted([*_FUNCTIONS, 'and', 'or', *_STATUS]))}",
        )
    low, high, implementation = function
    _arity(name, raw, low, high)
    return implementation(*args)


def _arity(name: str, args: tuple[Any, ...], low: int, high: int | None) -> None:
    if len(args) < low or (high is not None and len(args) > high):
        expected = f"{low}" if high == low else f"{low} or more" if high is None else f"{low} to {high}"
        raise ExpressionError(f"{name}() takes {expected} argument(s), found {len(args)}")


def _format(template: Any, *args: Any) -> str:
    def replace(match: re.Match[str]) -> str:
        index = int(match.group(1))
        return to_str(args[index]) if index < len(args) else ""

    return re.sub(r"\{(\d+)\}", replace, to_str(template))


def _contains(haystack: Any, needle: Any) -> bool:
    if isinstance(haystack, list):
        return any(equals(item, needle) for item in haystack)
    return to_str(needle).casefold() in to_str(haystack).casefold()


_FUNCTIONS: dict[str, tuple[int, int | None, Callable[..., Any]]] = {
    "not": (1, 1, lambda value: not to_bool(value)),
    "eq": (2, 2, equals),
    "ne": (2, 2, lambda a, b: not equals(a, b)),
    "gt": (2, 2, lambda a, b: _compare(a, b) > 0),
    "ge": (2, 2, lambda a, b: _compare(a, b) >= 0),
    "lt": (2, 2, lambda a, b: _compare(a, b) < 0),
    "le": (2, 2, lambda a, b: _compare(a, b) <= 0),
    "in": (1, None, lambda value, *options: any(equals(value, option) for option in options)),
    "notin": (1, None, lambda value, *options: not any(equals(value, option) for option in options)),
    "contains": (2, 2, _contains),
    "containsvalue": (2, 2, lambda c, v: any(equals(i, v) for i in (c.values() if isinstance(c, dict) else c))),
    "startswith": (2, 2, lambda a, b: to_str(a).casefold().startswith(to_str(b).casefold())),
    "endswith": (2, 2, lambda a, b: to_str(a).casefold().endswith(to_str(b).casefold())),
    "format": (1, None, _format),
    "coalesce": (1, None, lambda *values: next((v for v in values if v not in (None, "")), "")),
    "lower": (1, 1, lambda value: to_str(value).lower()),
    "upper": (1, 1, lambda value: to_str(value).upper()),
    "replace": (3, 3, lambda value, old, new: to_str(value).replace(to_str(old), to_str(new))),
    "join": (2, 2, lambda sep, items: to_str(sep).join(to_str(i) for i in items) if isinstance(items, list) else ""),
    "length": (1, 1, lambda value: len(value) if isinstance(value, (str, list, dict)) else 0),
    "converttojson": (1, 1, lambda value: json.dumps(value, indent=2)),
    # What enterprise templates use beside those: split/trim on parameters, xor and iif in conditions.
    "split": (2, 2, lambda value, separator: to_str(value).split(to_str(separator)) if to_str(value) else []),
    "trim": (1, 1, lambda value: to_str(value).strip()),
    "xor": (2, 2, lambda a, b: to_bool(a) != to_bool(b)),
    "iif": (3, 3, lambda condition, yes, no: yes if to_bool(condition) else no),
}


def evaluate_text(text: str, scope: Scope) -> Any:
    return evaluate(parse(text), scope)


# --------------------------------------------------------------------------------------- template text

COMPILE_TIME = re.compile(r"\$\{\{(.*?)\}\}", re.DOTALL)
MACRO = re.compile(r"\$\(([A-Za-z0-9_.\-]+)\)")
RUNTIME = re.compile(r"^\s*\$\[(.*)\]\s*$", re.DOTALL)


def substitute_macros(text: str, variables: CaseInsensitive) -> str:
    """`$(name)` → the variable's value; unknown names stay as written (Azure's behaviour)."""

    def replace(match: re.Match[str]) -> str:
        found, value = variables.lookup(match.group(1))
        return to_str(value) if found else match.group(0)

    return MACRO.sub(replace, text)
