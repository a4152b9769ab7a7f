"""YAML loading that remembers where every value came from, so pipeline errors can name file and line.

Mappings load as `LDict`, sequences as `LList`, strings (keys included) as `LStr`; each carries the
file and 1-based line it was read from. Other scalars (int, float, bool, None) cannot carry
attributes, so their position is kept by their container (`LDict.value_line`, `LList.item_line`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from mlops.core.errors import PipelineError


class Located:
    file: str = "<unknown>"
    line: int = 0

    def where(self) -> str:
        return f"{self.file}:{self.line}"


class LStr(str, Located):
    """A string with the place it came from (a substitution keeps the place of the template string)."""

    def __new__(cls, value: str, file: str, line: int) -> LStr:
        text = super().__new__(cls, value)
        text.file, text.line = file, line
        return text

    def __reduce__(self) -> tuple[type[LStr], tuple[str, str, int]]:  # copy and pickle keep the position
        return LStr, (str(self), self.file, self.line)


class LDict(dict[Any, Any], Located):
    def __init__(self, file: str, line: int) -> None:
        super().__init__()
        self.file, self.line = file, line
        self.lines: dict[Any, int] = {}

    def value_line(self, key: Any) -> int:
        return self.lines.get(key, self.line)


class LList(list[Any], Located):
    def __init__(self, file: str, line: int) -> None:
        super().__init__()
        self.file, self.line = file, line
        self.lines: list[int] = []

    def item_line(self, index: int) -> int:
        return self.lines[index] if index < len(self.lines) else self.line


def plain(value: Any) -> Any:
    """The same data as built-in types (for JSON, copies and callers that compare with ==)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value


def where(value: Any, fallback: Located | None = None) -> str:
    """`file:line` of a loaded value, else of its container."""
    if isinstance(value, Located):
        return value.where()
    return fallback.where() if fallback is not None else "<unknown>"


def located(value: Any, file: str, line: int) -> Any:
    """`value` with a position, where its type can carry one."""
    if isinstance(value, str) and not isinstance(value, LStr):
        return LStr(value, file, line)
    return value


class _Loader(yaml.SafeLoader):
    """SafeLoader building located containers; `file` is set per load."""

    file = "<unknown>"

    def construct_document(self, node: yaml.Node) -> Any:
        return self._build(node)

    def _build(self, node: yaml.Node) -> Any:
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            self.flatten_mapping(node)  # resolves YAML merge keys (<<)
            mapping = LDict(self.file, line)
            for key_node, value_node in node.value:
                key = self._build(key_node)
                if not isinstance(key, str):
                    raise PipelineError(
                        f"{self.file}:{key_node.start_mark.line + 1}: a mapping key must be a string, found {key!r}",
                        hint="quote the key",
                    )
                if key in mapping:
                    raise PipelineError(
                        f"{self.file}:{key_node.start_mark.line + 1}: duplicate key {key!r} "
                        f"(first at line {mapping.lines[key]})",
                        hint="remove one of them; Azure Pipelines rejects duplicate keys",
                    )
                mapping[key] = self._build(value_node)
                mapping.lines[key] = value_node.start_mark.line + 1
            return mapping
        if isinstance(node, yaml.SequenceNode):
            sequence = LList(self.file, line)
            for item_node in node.value:
                sequence.append(self._build(item_node))
                sequence.lines.append(item_node.start_mark.line + 1)
            return sequence
        value = self.construct_object(node, deep=True)
        return located(value, self.file, line)


def load_yaml(path: Path, *, display: str | None = None) -> Any:
    """Load one YAML document with positions; `display` is the file name used in messages."""
    name = display or str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise PipelineError(f"cannot read {name}: {exc.strerror}", hint="check the path") from exc
    return load_yaml_text(text, name)


def load_yaml_text(text: str, name: str) -> Any:
    loader = _Loader(text)
    loader.file = name
    try:
        if not loader.check_node():
            return None
        node = loader.get_node()
        if node is None:
            return None
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else 0
        raise PipelineError(f"{name}:{line}: not valid YAML: {exc.problem}", hint="fix the YAML syntax") from exc
    finally:
        loader.dispose()
