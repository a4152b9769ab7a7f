"""Schema validation of Azure Pipelines YAML with check-jsonschema's vendored Azure Pipelines schema.

We reuse check-jsonschema's pieces rather than its command line, because its messages name a JSON
path, not a line: its vendored schema (`vendor.azure-pipelines`), its `azure-pipelines` data
transform for `${{ }}` expressions and its `nonunicode` regex variant (the schema's patterns do not
compile under the unicode flag). Two adjustments make the schema say what Azure accepts:

- Azure reads every YAML scalar as a string, so scalars are stringified before validation, and the
  few `integer`/`boolean` types of the schema accept the string forms Azure accepts.
- The AWS Toolkit tasks (and `PublishCodeCoverageResults@2`, newer than the vendored schema) are
  added, with the inputs the runner knows (`mlops.pipelines.steps.TASKS`).
"""

from __future__ import annotations

import copy
import difflib
import functools
import importlib.resources
import json
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import jsonschema  # type: ignore[import-untyped]
from check_jsonschema.regex_variants import RegexImplementation, RegexVariantName  # type: ignore[import-untyped]
from check_jsonschema.transforms.azure_pipelines import AZURE_TRANSFORM  # type: ignore[import-untyped]

from mlops.pipelines.loader import LDict, LList, Located, LStr
from mlops.pipelines.tasks import REQUIRED_INPUTS, TASKS

ADDED_TASKS = ("AWSShellScript@1", "AWSCLI@1", "PublishCodeCoverageResults@2")
_BOOLEAN_TEXT = "^(?i:true|false|y|yes|n|no|on|off)$"
_INTEGER_TEXT = r"^-?\d+$"


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    message: str
    severity: str = "error"  # error | warning (reported, does not fail validation)

    def __str__(self) -> str:
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{self.file}:{self.line}: {prefix}{self.message}"


def _patch_types(node: Any) -> None:
    """`type: boolean|integer` → also the strings Azure reads as such."""
    if isinstance(node, dict):
        for value in node.values():  # children first: the branches added below must stay as they are
            _patch_types(value)
        kind = node.get("type")
        if kind == "boolean":
            node.pop("type")
            node["anyOf"] = [*node.get("anyOf", []), {"type": "boolean"}, {"type": "string", "pattern": _BOOLEAN_TEXT}]
        elif kind in ("integer", "number"):
            node.pop("type")
            node["anyOf"] = [*node.get("anyOf", []), {"type": kind}, {"type": "string", "pattern": _INTEGER_TEXT}]
    elif isinstance(node, list):
        for item in node:
            _patch_types(item)


def _task_branch(name: str) -> dict[str, Any]:
    return {
        "properties": {
            "task": {"pattern": f"^{name}$"},
            "inputs": {
                "properties": {key: {"type": "string"} for key in sorted(TASKS[name])},
                "additionalProperties": False,
                "required": sorted(REQUIRED_INPUTS.get(name, set())),
            },
        },
        "required": ["task", "inputs"] if name in REQUIRED_INPUTS else ["task"],
    }


@functools.cache
def schema() -> dict[str, Any]:
    text = importlib.resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("azure-pipelines.json")
    loaded: dict[str, Any] = json.loads(text.read_text(encoding="utf-8"))
    patched = copy.deepcopy(loaded)
    task = patched["definitions"]["task"]
    for name in ADDED_TASKS:
        task["anyOf"].append(_task_branch(name))
        task["properties"]["task"]["anyOf"].append({"enum": [name]})
    _patch_types(patched)
    return patched


def _task_name(branch: dict[str, Any]) -> str:
    """The task a branch of the schema's task form is for (its `task` pattern is `^Name@N$`)."""
    return str(branch["properties"]["task"]["pattern"]).strip("^$")


@functools.cache
def known_tasks() -> dict[str, str]:
    """Task references the schema knows, by lower-cased name (Azure matches them case-insensitively)."""
    return {_task_name(branch).lower(): _task_name(branch) for branch in schema()["definitions"]["task"]["anyOf"]}


def _keywords() -> dict[str, Any]:
    regex = RegexImplementation(RegexVariantName.nonunicode)
    return {"pattern": regex.pattern_keyword, "patternProperties": regex.patternProperties_keyword}


@functools.cache
def _validator() -> jsonschema.protocols.Validator:
    """The schema's validator: its errors are what `validate_document` reports."""
    return jsonschema.validators.extend(jsonschema.Draft7Validator, _keywords())(schema())


@functools.cache
def _validity_check() -> jsonschema.protocols.Validator:
    """A validator that answers only valid-or-not, as `_validator` would, without trying every task.

    Every step is checked against the task form, whose anyOf has one branch per known task (about 260), each
    requiring `task` and matching it to one name. A step whose task names a branch is valid under the anyOf if
    that branch accepts it (else every branch is tried, as usual); a step without `task` matches no branch (if
    a branch did not require `task`, this is the full validator).
    `validate_document` asks this first and asks `_validator` for the errors of an invalid file only, so the
    messages are the full validator's.
    """
    task = schema()["definitions"]["task"]
    branches = task["anyOf"]
    if not all("task" in branch.get("required", ()) for branch in branches):
        return _validator()  # a schema of another shape: no shortcut, the full validator answers
    by_name: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for branch in branches:
        by_name[_task_name(branch)].append(branch)
    any_of = jsonschema.Draft7Validator.VALIDATORS["anyOf"]

    def task_any_of(validator: Any, subschemas: Any, instance: Any, node: Any) -> Iterator[Any]:
        # Each answer is exact (the step is a oneOf's branch, where a wrong "invalid" could make it valid).
        if node is task and validator.is_type(instance, "object"):
            if "task" not in instance:
                yield jsonschema.ValidationError("no branch of the task form accepts a step without `task`")
                return
            name = instance["task"]
            if isinstance(name, str) and any(
                next(validator.descend(instance, branch), None) is None for branch in by_name.get(name, ())
            ):
                return
        yield from any_of(validator, subschemas, instance, node)

    return jsonschema.validators.extend(jsonschema.Draft7Validator, {**_keywords(), "anyOf": task_any_of})(schema())


def stringified(node: Any, file: str, line: int) -> Any:
    """Azure's view of the YAML: every scalar a string, with positions kept."""
    if isinstance(node, LDict):
        result: dict[Any, Any] = {}
        for key, value in node.items():
            result[key] = stringified(value, node.file, node.value_line(key))
        return result
    if isinstance(node, LList):
        return [stringified(item, node.file, node.item_line(i)) for i, item in enumerate(node)]
    if isinstance(node, LStr):
        return node
    if isinstance(node, bool):
        return LStr("true" if node else "false", file, line)
    if node is None:
        return LStr("", file, line)
    return LStr(str(node), file, line)


def _line(node: Any) -> int:
    if isinstance(node, Located):
        return node.line
    if isinstance(node, dict):
        return min((_line(k) for k in node), default=0) or min((_line(v) for v in node.values()), default=0)
    if isinstance(node, list):
        return _line(node[0]) if node else 0
    return 0


def _refine(error: jsonschema.ValidationError) -> list[jsonschema.ValidationError]:
    """The most specific errors under an anyOf/oneOf: those of the branch that got deepest into the data."""
    if error.validator not in ("anyOf", "oneOf") or not error.context:
        return [error]
    branches: dict[Any, list[jsonschema.ValidationError]] = defaultdict(list)
    for sub in error.context:
        branches[sub.relative_schema_path[0]].append(sub)

    depth = len(error.absolute_path)

    def misfits(errors: list[jsonschema.ValidationError]) -> int:
        """Keys this branch does not know plus keys it requires, at the level of the anyOf."""
        count = 0
        for e in errors:
            if len(e.absolute_path) != depth:
                continue
            if e.validator == "additionalProperties" and isinstance(e.instance, dict):
                count += sum(k not in e.schema.get("properties", {}) for k in e.instance)
            elif e.validator in ("required", "type"):
                count += 1
        return count

    def score(errors: list[jsonschema.ValidationError]) -> tuple[int, int, int]:
        return -misfits(errors), max(len(e.absolute_path) for e in errors), -len(errors)

    candidates = list(branches.values())
    if all(all(e.validator == "type" for e in errors) for errors in candidates):
        return [error]  # the value has the wrong shape for every branch: the anyOf message is the honest one
    best = max(candidates, key=score)
    return [refined for sub in best for refined in _refine(sub)]


def _message(error: jsonschema.ValidationError) -> tuple[Any, str]:
    """The node to locate and an actionable message."""
    instance = error.instance
    path = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    if error.validator == "additionalProperties" and isinstance(instance, dict):
        allowed = set(error.schema.get("properties", {}))
        extras = [k for k in instance if k not in allowed]
        if extras:
            key = extras[0]
            close = difflib.get_close_matches(str(key), sorted(allowed), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; expected one of {sorted(allowed)}"
            return key, f"unknown key {str(key)!r} at {path}{hint}"
    if error.validator == "anyOf" and isinstance(instance, dict):
        return instance, f"{path} matches none of the forms the schema allows (keys: {sorted(map(str, instance))})"
    if error.validator == "required":
        return instance, f"{path}: {error.message}"
    shown = error.message if len(error.message) < 200 else error.message[:200] + "..."
    return instance, f"{path}: {shown}"


def _task_steps(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        if "task" in node and isinstance(node.get("task"), str):
            yield node
        for value in node.values():
            yield from _task_steps(value)
    elif isinstance(node, list):
        for item in node:
            yield from _task_steps(item)


def azure_view(document: Any, file: str) -> Any:
    """What the schema validates: the loaded YAML with Azure's strings, and `${{ }}` expressions transformed."""
    return AZURE_TRANSFORM.on_data(stringified(document, file, 1))


def validate_document(document: Any, file: str) -> list[Problem]:
    """Schema problems of one loaded file, each with a line."""
    if document is None:
        return [Problem(file, 1, "the file is empty")]
    data = azure_view(document, file)
    problems: list[Problem] = []
    unknown_task_nodes: set[int] = set()
    for step in _task_steps(data):
        name = str(step["task"])
        if "${{" in name:
            continue
        if name.lower() not in known_tasks():
            close = difflib.get_close_matches(name.lower(), known_tasks(), n=1)
            hint = f"; did you mean {known_tasks()[close[0]]!r}?" if close else ""
            problems.append(Problem(file, _line(step["task"]), f"unknown task {name!r}{hint}"))
            unknown_task_nodes.add(id(step))
    errors = [] if _validity_check().is_valid(data) else _validator().iter_errors(data)
    for error in errors:
        for refined in _refine(error):
            if _inside_unknown_task(data, refined, unknown_task_nodes):
                continue
            node, message = _message(refined)
            problems.append(Problem(file, _line(node) or _line(error.instance), message))
    return sorted(set(problems), key=lambda p: (p.line, p.message))


def _inside_unknown_task(data: Any, error: jsonschema.ValidationError, nodes: set[int]) -> bool:
    node = data
    if id(node) in nodes:
        return True
    for part in error.absolute_path:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return False
        if id(node) in nodes:
            return True
    return False
