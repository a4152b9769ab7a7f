"""Compile time: template expressions, parameters and templates, as Azure Pipelines expands them before a run.

`expand(node, scope)` evaluates `${{ }}` in keys and values, `${{ if }}`/`${{ elseif }}`/`${{ else }}`
and `${{ each }}` in mappings and sequences, and splices a list-valued `- ${{ parameters.steps }}`.
`bind_parameters` checks given values against a file's `parameters:` declarations (type, `values`,
required). Every error names the file and line of the construct at fault.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

from mlops.core.errors import PipelineError
from mlops.pipelines.expressions import (
    COMPILE_TIME,
    CaseInsensitive,
    ExpressionError,
    Scope,
    equals,
    evaluate_text,
    to_bool,
    to_str,
)
from mlops.pipelines.loader import LDict, LList, Located, LStr, located, where

_WHOLE = re.compile(r"^\s*\$\{\{(.*)\}\}\s*$", re.DOTALL)
_IF = re.compile(r"^\s*\$\{\{\s*(if|elseif)\s+(.*)\}\}\s*$", re.DOTALL)
_ELSE = re.compile(r"^\s*\$\{\{\s*else\s*\}\}\s*$")
_EACH = re.compile(r"^\s*\$\{\{\s*each\s+([A-Za-z_][A-Za-z0-9_]*)\s+in\s+(.*)\}\}\s*$", re.DOTALL)
_DIRECTIVE = re.compile(r"^\s*\$\{\{\s*(\w+)")

PARAMETER_TYPES = {
    "string",
    "number",
    "boolean",
    "object",
    "step",
    "stepList",
    "job",
    "jobList",
    "deployment",
    "deploymentList",
    "stage",
    "stageList",
}


def fail(at: Any, message: str, *, hint: str | None = None, container: Located | None = None) -> PipelineError:
    return PipelineError(f"{where(at, container)}: {message}", hint=hint)


def _evaluate(text: str, scope: Scope, at: Any) -> Any:
    try:
        return evaluate_text(text, scope)
    except ExpressionError as exc:
        raise fail(at, f"in ${{{{{text.strip()}}}}}: {exc.message}", hint=exc.hint) from exc


def _substitute(text: LStr | str, scope: Scope, file: str, line: int) -> Any:
    whole = _WHOLE.match(text)
    if whole and "${{" not in whole.group(1):
        value = _evaluate(whole.group(1), scope, text)
        return located(value, file, line)
    if "${{" not in text:
        return located(text, file, line)
    result = COMPILE_TIME.sub(lambda m: to_str(_evaluate(m.group(1), scope, text)), text)
    return LStr(result, file, line)


def expand(node: Any, scope: Scope) -> Any:
    """A copy of `node` with every compile-time expression evaluated."""
    if isinstance(node, LDict):
        return _expand_mapping(node, scope)
    if isinstance(node, LList):
        return _expand_sequence(node, scope)
    if isinstance(node, str):
        file, line = (node.file, node.line) if isinstance(node, LStr) else ("<unknown>", 0)
        return _substitute(node, scope, file, line)
    return node


def _with_name(scope: Scope, name: str, value: Any) -> Scope:
    return Scope({**scope.names, name: value}, scope.status, scope.where)


def _branch(key: str, state: list[bool | None], scope: Scope, container: Located) -> bool | None:
    """For an if/elseif/else key: whether its body applies; None when `key` is no conditional."""
    if _ELSE.match(key):
        if state[0] is None:
            raise fail(key, "${{ else }} without a preceding ${{ if }}", container=container)
        taken = not state[0]
        state[0] = None
        return taken
    match = _IF.match(key)
    if not match:
        return None
    if match.group(1) == "elseif":
        if state[0] is None:
            raise fail(key, "${{ elseif }} without a preceding ${{ if }}", container=container)
        if state[0]:
            return False
    result = to_bool(_evaluate(match.group(2), scope, key))
    state[0] = result
    return result


def _each(key: str, scope: Scope) -> tuple[str, list[Any]] | None:
    match = _EACH.match(key)
    if not match:
        return None
    collection = _evaluate(match.group(2), scope, key)
    if isinstance(collection, Mapping):
        items = [{"key": k, "value": v} for k, v in collection.items()]
    elif isinstance(collection, list):
        items = list(collection)
    elif collection in (None, ""):
        items = []
    else:
        raise fail(key, f"${{{{ each }}}} needs a list or a mapping, found {to_str(collection)!r}")
    return match.group(1), items


def _unsupported_directive(key: str, container: Located) -> PipelineError:
    directive = _DIRECTIVE.match(key)
    name = directive.group(1) if directive else key
    return fail(
        key,
        f"unsupported template directive ${{{{ {name} }}}}",
        hint="the local runner supports ${{ if }}, ${{ elseif }}, ${{ else }} and ${{ each }}; rewrite the construct",
        container=container,
    )


def _expand_mapping(node: LDict, scope: Scope) -> LDict:
    result = LDict(node.file, node.line)
    state: list[bool | None] = [None]
    for key, value in node.items():
        line = node.value_line(key)
        taken = _branch(key, state, scope, node)
        if taken is not None:
            if taken:
                _merge(result, _expand_body(value, scope, key, expect=dict), key)
            continue
        state[0] = None
        each = _each(key, scope)
        if each is not None:
            name, items = each
            for item in items:
                _merge(result, _expand_body(value, _with_name(scope, name, item), key, expect=dict), key)
            continue
        if isinstance(key, str) and _WHOLE.match(key) and _DIRECTIVE.match(key) and not _is_value_key(key):
            raise _unsupported_directive(key, node)
        new_key = _substitute(key, scope, getattr(key, "file", node.file), getattr(key, "line", node.line))
        if not isinstance(new_key, str):
            raise fail(key, f"a key must evaluate to a string, found {to_str(new_key)!r}")
        result[new_key] = expand(value, scope)
        result.lines[new_key] = line
    return result


def _is_value_key(key: str) -> bool:
    """`${{ parameters.x }}: v` or `${{ item.key }}: v` are keys built by expressions, not directives."""
    directive = _DIRECTIVE.match(key)
    return bool(directive) and directive.group(1) not in {"if", "elseif", "else", "each", "insert"}  # type: ignore[union-attr]


def _merge(result: LDict, body: Any, key: Any) -> None:
    for inner_key, inner_value in body.items():
        result[inner_key] = inner_value
        result.lines[inner_key] = body.value_line(inner_key) if isinstance(body, LDict) else getattr(key, "line", 0)


def _expand_body(value: Any, scope: Scope, key: Any, *, expect: type) -> Any:
    expanded = expand(value, scope)
    if expanded is None:
        return {} if expect is dict else []
    if expect is dict and not isinstance(expanded, dict):
        raise fail(key, f"the body of {key.strip()} in a mapping must be a mapping, found {type(expanded).__name__}")
    return expanded


def _expand_sequence(node: LList, scope: Scope) -> LList:
    result = LList(node.file, node.line)
    state: list[bool | None] = [None]

    def add(value: Any, line: int) -> None:
        if isinstance(value, list):
            for index, item in enumerate(value):
                result.append(item)
                result.lines.append(value.item_line(index) if isinstance(value, LList) else line)
        else:
            result.append(value)
            result.lines.append(line)

    for index, item in enumerate(node):
        line = node.item_line(index)
        if isinstance(item, LDict) and len(item) == 1:
            key, value = next(iter(item.items()))
            taken = _branch(key, state, scope, item)
            if taken is not None:
                if taken:
                    add(_expand_body(value, scope, key, expect=list), line)
                continue
            each = _each(key, scope)
            if each is not None:
                name, values = each
                for element in values:
                    add(_expand_body(value, _with_name(scope, name, element), key, expect=list), line)
                state[0] = None
                continue
        state[0] = None
        if isinstance(item, str) and _WHOLE.match(item):
            add(expand(item, scope), line)  # `- ${{ parameters.steps }}` splices a list
            continue
        result.append(expand(item, scope))
        result.lines.append(line)
    return result


# ---------------------------------------------------------------------------------------- parameters


def declarations(document: Any, file: str) -> list[LDict]:
    """A file's `parameters:` as a list of declarations; the legacy mapping form becomes `object` parameters."""
    if not isinstance(document, LDict) or "parameters" not in document:
        return []
    declared = document["parameters"]
    if isinstance(declared, LDict):  # legacy: `parameters: {name: default}`
        converted = []
        for name, default in declared.items():
            entry = LDict(declared.file, declared.value_line(name))
            entry.update({"name": name, "type": "object", "default": default})
            converted.append(entry)
        return converted
    if not isinstance(declared, LList):
        raise fail(declared, "`parameters:` must be a list of declarations", container=document)
    result = []
    for index, entry in enumerate(declared):
        line = declared.item_line(index)
        if not isinstance(entry, LDict) or "name" not in entry:
            raise PipelineError(
                f"{file}:{line}: a parameter declaration needs `name:`", hint="- name: x\n  type: string"
            )
        unknown = set(entry) - {"name", "displayName", "type", "default", "values"}
        if unknown:
            key = sorted(unknown)[0]
            raise fail(
                key, f"unsupported key {key!r} in the declaration of parameter {entry['name']!r}", container=entry
            )
        kind = entry.get("type", "string")
        if kind not in PARAMETER_TYPES:
            raise fail(
                kind, f"unknown parameter type {kind!r}; expected one of {sorted(PARAMETER_TYPES)}", container=entry
            )
        result.append(entry)
    return result


def bind_parameters(
    document: Any, given: Mapping[str, Any], *, file: str, at: Located | None = None, from_text: bool = False
) -> dict[str, Any]:
    """The parameters of one file: given values checked and converted, defaults filled in.

    `from_text`: the values are command-line or REST strings (`-p name=value`), converted by type.
    """
    declared = declarations(document, file)
    names = {str(entry["name"]) for entry in declared}
    unknown = sorted(set(given) - names)
    if unknown:
        place = at.where() if at is not None else file
        raise PipelineError(
            f"{place}: unexpected parameter(s) {', '.join(unknown)} for {file}; it declares {sorted(names) or 'none'}",
            hint="fix the parameter name or declare it under `parameters:`",
        )
    bound: dict[str, Any] = {}
    for entry in declared:
        name = str(entry["name"])
        kind = str(entry.get("type", "string"))
        if name in given:
            value = given[name]
            if from_text and isinstance(value, str):
                value = _from_text(value, kind, entry)
        elif "default" in entry:
            value = entry["default"]
        elif at is None:
            raise PipelineError(
                f"{file}:{entry.line}: runtime parameter {name!r} is required and has no default",
                hint=f"pass it: -p {name}=VALUE",
            )
        else:
            raise PipelineError(
                f"{at.where()}: parameter {name!r} of template {file} is required (declared at line {entry.line})",
                hint=f"add `{name}:` under the template reference's `parameters:`",
            )
        bound[name] = _check_type(name, kind, value, entry)
    return bound


def _from_text(value: str, kind: str, entry: LDict) -> Any:
    if kind in ("string", "number", "boolean"):
        return value
    try:
        return yaml.safe_load(value)
    except yaml.YAMLError as exc:
        raise fail(entry, f"parameter {entry['name']!r} ({kind}) is not valid YAML: {value!r}") from exc


def _check_type(name: str, kind: str, value: Any, entry: LDict) -> Any:
    def bad(expected: str) -> PipelineError:
        return fail(
            entry,
            f"parameter {name!r} expects {expected}, found {to_str(value)!r}",
            hint="pass a value of the declared type",
        )

    if kind == "string":
        if isinstance(value, (dict, list)):
            raise bad("a string")
        value = located(to_str(value), getattr(value, "file", entry.file), getattr(value, "line", entry.line))
    elif kind == "number":
        if isinstance(value, bool):
            raise bad("a number")
        if not isinstance(value, (int, float)):
            try:
                value = float(str(value)) if "." in str(value) else int(str(value))
            except ValueError:
                raise bad("a number") from None
    elif kind == "boolean":
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            value = value.strip().lower() == "true"
        if not isinstance(value, bool):
            raise bad("a boolean (true or false)")
    elif kind in ("step", "job", "deployment", "stage"):
        if not isinstance(value, dict):
            raise bad(f"a {kind} (a mapping)")
    elif kind.endswith("List") and value is not None and not isinstance(value, list):
        raise bad(f"a {kind} (a list)")
    allowed = entry.get("values")
    if allowed is not None and not any(equals(option, value) for option in allowed):
        raise fail(
            entry,
            f"parameter {name!r} must be one of {[to_str(v) for v in allowed]}, found {to_str(value)!r}",
            hint="pass one of the allowed values",
        )
    return value


def compile_scope(parameters: Mapping[str, Any], variables: Mapping[str, Any], file: str) -> Scope:
    return Scope(
        {"parameters": dict(parameters), "variables": CaseInsensitive(variables)},
        where=f"a template expression in {file}",
    )
