"""Check a request's parameters against its botocore input shape, the way AWS validates them.

Pure logic: an operation's input shape and the decoded parameters in, a list of violations out.
botocore's client checks types, required members and minimum lengths; AWS's servers also check
`pattern`, maximum lengths, numeric ranges, list and map bounds and enums, at every depth. This
module checks all of them, so the twin refuses what AWS refuses (moto accepts any value).

Messages follow AWS's request validation ("1 validation error detected: Value 'x' at
'customerMetadataProperties.ado_run_url' failed to satisfy constraint: Member must satisfy regular
expression pattern: ..."): member names with a lower-case first letter, list items as
`<list>.<n>.member` (1-based), map values as `<map>.<key>`; a sensitive member's value is not shown.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.model import ListShape, MapShape, Shape, StringShape, StructureShape

from mlops.local.errors import TwinError
from mlops.local.strict.patterns import compile_aws_pattern

# A pattern that needs longer than this on one value is a pathological backtracking case, not a verdict.
PATTERN_TIMEOUT_SECONDS = 2.0
_SHOWN_VALUE_CHARS = 512  # AWS echoes the whole value; a 1 MB pipeline definition would drown the message


@dataclass(frozen=True)
class Violation:
    """One failed constraint: where, which value, what the model requires, and of which kind."""

    path: str
    value: Any
    constraint: str
    kind: str  # required | type | pattern | length | range | enum | union
    sensitive: bool = False

    def describe(self) -> str:
        shown = "" if self.sensitive else f" {_render(self.value)}"
        return f"Value{shown} at '{self.path}' failed to satisfy constraint: {self.constraint}"


def message(violations: list[Violation]) -> str:
    """AWS's summary line for a refused request."""
    count = len(violations)
    plural = "error" if count == 1 else "errors"
    return f"{count} validation {plural} detected: " + "; ".join(v.describe() for v in violations)


def validate(shape: Shape | None, params: Mapping[str, Any]) -> list[Violation]:
    """Every constraint of `shape` that `params` (an operation's decoded input) breaks, in model order."""
    if shape is None:
        return []
    found: list[Violation] = []
    _check(shape, params, "", found)
    return found


# ------------------------------------------------------------------------------------------- walk


def _member_path(parent: str, member: str) -> str:
    name = member[:1].lower() + member[1:]
    return f"{parent}.{name}" if parent else name


def _check(shape: Shape, value: Any, path: str, found: list[Violation]) -> None:
    if value is None:
        return  # absence is the parent structure's business (required members)
    check = _CHECKS.get(shape.type_name)
    if check is not None:
        check(shape, value, path, found)


def _check_integer(shape: Shape, value: Any, path: str, found: list[Violation]) -> None:
    if not isinstance(value, int) or isinstance(value, bool):
        found.append(_wrong_type(shape, value, path, "an integer"))
    else:
        _check_range(shape, value, path, found)


def _check_number(shape: Shape, value: Any, path: str, found: list[Violation]) -> None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        found.append(_wrong_type(shape, value, path, "a number"))
    else:
        _check_range(shape, value, path, found)


def _check_boolean(shape: Shape, value: Any, path: str, found: list[Violation]) -> None:
    if not isinstance(value, bool):
        found.append(_wrong_type(shape, value, path, "a boolean"))


def _check_timestamp(shape: Shape, value: Any, path: str, found: list[Violation]) -> None:
    if not isinstance(value, (datetime.datetime, int, float, str)) or isinstance(value, bool):
        found.append(_wrong_type(shape, value, path, "a timestamp"))


def _check_structure(shape: StructureShape, value: Any, path: str, found: list[Violation]) -> None:
    if shape.metadata.get("document"):
        return  # a document is free-form JSON by definition
    if not isinstance(value, Mapping):
        found.append(_wrong_type(shape, value, path, "a structure"))
        return
    members = shape.members
    for name in shape.required_members:
        if value.get(name) is None:
            found.append(
                _violation(members[name], None, _member_path(path, name), "Member must not be null", "required")
            )
    present = [name for name in members if value.get(name) is not None]
    if shape.metadata.get("union") and len(present) > 1:
        constraint = f"Member must have exactly one of its members set; found {len(present)}: {', '.join(present)}"
        found.append(_violation(shape, value, path or shape.name, constraint, "union"))
    for name in present:
        _check(members[name], value[name], _member_path(path, name), found)


def _check_list(shape: ListShape, value: Any, path: str, found: list[Violation]) -> None:
    if not isinstance(value, list):
        found.append(_wrong_type(shape, value, path, "a list"))
        return
    _check_length(shape, value, len(value), path, found)
    for position, item in enumerate(value, start=1):
        item_path = f"{path}.{position}.member"
        if item is None:
            found.append(_violation(shape.member, None, item_path, "Member must not be null", "required"))
        else:
            _check(shape.member, item, item_path, found)


def _check_map(shape: MapShape, value: Any, path: str, found: list[Violation]) -> None:
    if not isinstance(value, Mapping):
        found.append(_wrong_type(shape, value, path, "a map"))
        return
    _check_length(shape, value, len(value), path, found)
    for key, item in value.items():
        key_problems: list[Violation] = []
        _check(shape.key, key, path, key_problems)
        found.extend(
            Violation(v.path, v.value, f"Map keys must satisfy constraint: {v.constraint}", v.kind, v.sensitive)
            for v in key_problems
        )
        item_path = f"{path}.{key}"
        if item is None:
            found.append(_violation(shape.value, None, item_path, "Member must not be null", "required"))
        else:
            _check(shape.value, item, item_path, found)


def _check_string(shape: StringShape, value: Any, path: str, found: list[Violation]) -> None:
    if not isinstance(value, str):
        # A JSON-valued string (a `jsonvalue` header or member) arrives decoded.
        if shape.serialization.get("jsonvalue") or shape.metadata.get("jsonvalue"):
            return
        found.append(_wrong_type(shape, value, path, "a string"))
        return
    if shape.enum and value not in shape.enum:
        constraint = f"Member must satisfy enum value set: [{', '.join(shape.enum)}]"
        found.append(_violation(shape, value, path, constraint, "enum"))
    _check_length(shape, value, len(value), path, found)
    pattern = shape.metadata.get("pattern")
    if pattern is not None and not _fullmatch(pattern, value, path):
        constraint = f"Member must satisfy regular expression pattern: {pattern}"
        found.append(_violation(shape, value, path, constraint, "pattern"))


def _check_blob(shape: Shape, value: Any, path: str, found: list[Violation]) -> None:
    if isinstance(value, str):
        size = len(value.encode())
    elif isinstance(value, (bytes, bytearray)):
        size = len(value)
    elif hasattr(value, "read"):
        return  # a streaming payload: its length is the transport's business
    else:
        found.append(_wrong_type(shape, value, path, "a blob"))
        return
    _check_length(shape, value, size, path, found)


def _check_length(shape: Shape, value: Any, size: int, path: str, found: list[Violation]) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and size < low:
        found.append(
            _violation(shape, value, path, f"Member must have length greater than or equal to {low}", "length")
        )
    if high is not None and size > high:
        found.append(_violation(shape, value, path, f"Member must have length less than or equal to {high}", "length"))


def _check_range(shape: Shape, value: float, path: str, found: list[Violation]) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    if low is not None and value < low:
        found.append(_violation(shape, value, path, f"Member must have value greater than or equal to {low}", "range"))
    if high is not None and value > high:
        found.append(_violation(shape, value, path, f"Member must have value less than or equal to {high}", "range"))


def _fullmatch(pattern: str, value: str, path: str) -> bool:
    try:
        return compile_aws_pattern(pattern).fullmatch(value, timeout=PATTERN_TIMEOUT_SECONDS) is not None
    except TimeoutError as exc:
        raise PatternTimeout(path, pattern, len(value)) from exc


class PatternTimeout(TwinError):
    """Matching one value took longer than PATTERN_TIMEOUT_SECONDS: the twin cannot decide, so it says so."""

    def __init__(self, path: str, pattern: str, size: int) -> None:
        super().__init__(
            f"matching the {size}-character value at '{path}' against {pattern!r} took over "
            f"{PATTERN_TIMEOUT_SECONDS:.0f} s; the twin cannot tell whether AWS would accept it",
            hint="send a smaller value, or start the twin with MLOPS_TWIN_STRICT_REQUESTS=0 to skip validation",
        )


_CHECKS: dict[str, Callable[[Any, Any, str, list[Violation]], None]] = {
    "structure": _check_structure,
    "list": _check_list,
    "map": _check_map,
    "string": _check_string,
    "blob": _check_blob,
    "integer": _check_integer,
    "long": _check_integer,
    "short": _check_integer,
    "byte": _check_integer,
    "float": _check_number,
    "double": _check_number,
    "boolean": _check_boolean,
    "timestamp": _check_timestamp,
}


def _violation(shape: Shape, value: Any, path: str, constraint: str, kind: str) -> Violation:
    return Violation(path, value, constraint, kind, bool(shape.metadata.get("sensitive")))


def _wrong_type(shape: Shape, value: Any, path: str, expected: str) -> Violation:
    return _violation(shape, value, path, f"Member must be {expected}, not {type(value).__name__}", "type")


def _render(value: Any) -> str:
    if value is None:
        return "null"
    text = _java_text(value)
    if len(text) > _SHOWN_VALUE_CHARS:
        text = f"{text[:_SHOWN_VALUE_CHARS]}...({len(text)} characters)"
    return f"'{text}'"


def _java_text(value: Any) -> str:
    """Roughly how AWS's (Java) validator prints a value: lists as [a, b], maps as {k=v}."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (bytes, bytearray)):
        return f"<{len(value)} bytes>"
    if isinstance(value, list):
        return "[" + ", ".join(_java_text(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}={_java_text(v)}" for k, v in value.items()) + "}"
    return str(value)
