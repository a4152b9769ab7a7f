"""Find the `mlops ...` commands in a pipeline's shell scripts and check them against the real CLI.

Each command is parsed with click's own `make_context` on `mlops.cli.cli` (no command runs), so a
renamed command or option breaks validation, not a run in Azure DevOps. Values the YAML fills in
later (`$(var)`, `${{ ... }}`, `$VAR`, `$(command)`) are opaque: they satisfy any option type.
"""

from __future__ import annotations

import contextlib
import re
import shlex
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import click

OPAQUE = "\x00opaque\x00"
_EXPRESSIONS = re.compile(r"\$\{\{.*?\}\}|\$\[.*?\]|\$\([^()]*\)|\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*")
_HEREDOC = re.compile(r"<<-?\s*['\"]?([A-Za-z_][A-Za-z0-9_]*)['\"]?")
_SEPARATORS = {";", "&&", "||", "|", "&", ";;", "|&"}
_PREFIX_WORDS = {"if", "then", "else", "elif", "do", "while", "until", "!", "{", "(", "time", "exec", "command"}
_lock = threading.Lock()


@dataclass(frozen=True)
class Invocation:
    args: tuple[str, ...]  # after `mlops`
    line_offset: int  # 0-based line within the script
    text: str

    def shown(self) -> str:
        return "mlops " + " ".join(a.replace(OPAQUE, "<value>") if OPAQUE in a else a for a in self.args)


def _logical_lines(script: str) -> Iterator[tuple[int, str]]:
    """Lines with backslash continuations joined, heredoc bodies left out."""
    lines = script.splitlines()
    index = 0
    while index < len(lines):
        start, text = index, lines[index]
        while text.endswith("\\") and index + 1 < len(lines):
            index += 1
            text = text[:-1] + " " + lines[index]
        index += 1
        heredoc = _HEREDOC.search(text)
        if heredoc:
            terminator = heredoc.group(1)
            while index < len(lines) and lines[index].strip() != terminator:
                index += 1
            index += 1
        yield start, text


def invocations(script: str) -> list[Invocation]:
    found: list[Invocation] = []
    for offset, line in _logical_lines(script):
        if "mlops" not in line:
            continue
        text = _EXPRESSIONS.sub(OPAQUE, line)
        lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|<>()")
        lexer.whitespace_split = True
        try:
            tokens = list(lexer)
        except ValueError:
            continue  # unbalanced quotes across lines: not a command we can read
        for command in _simple_commands(tokens):
            args = _mlops_args(command)
            if args is not None:
                found.append(Invocation(tuple(args), offset, line.strip()))
    return found


def _simple_commands(tokens: list[str]) -> Iterator[list[str]]:
    current: list[str] = []
    for token in tokens:
        if token in _SEPARATORS:
            yield current
            current = []
        else:
            current.append(token)
    yield current


def _mlops_args(words: list[str]) -> list[str] | None:
    while words and (words[0] in _PREFIX_WORDS or re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0])):
        words = words[1:]
    if not words:
        return None
    if words[0].rsplit("/", 1)[-1] == "mlops":
        rest = words[1:]
    elif words[0].rsplit("/", 1)[-1].startswith("python") and words[1:3] == ["-m", "mlops"]:
        rest = words[3:]
    else:
        return None
    args: list[str] = []
    for word in rest:
        if set(word) <= set("<>&") or word in (")", "}"):  # a redirection or the end of a group
            if args and args[-1].isdigit():
                args.pop()  # the `2` of `2>&1`
            break
        args.append(word)
    return args


@contextlib.contextmanager
def _opaque_values() -> Iterator[None]:
    """Let opaque values pass any click type (they are filled in at run time)."""
    original = click.core.Parameter.type_cast_value

    def cast(self: click.core.Parameter, ctx: click.Context, value: Any) -> Any:
        values = value if isinstance(value, (list, tuple)) else [value]
        if any(isinstance(v, str) and OPAQUE in v for v in values):
            return value
        return original(self, ctx, value)

    with _lock:
        click.core.Parameter.type_cast_value = cast  # type: ignore[method-assign]
        try:
            yield
        finally:
            click.core.Parameter.type_cast_value = original  # type: ignore[method-assign]


def check(invocation: Invocation, root: click.Group | None = None) -> str | None:
    """None if `mlops <args>` parses against the real CLI, else click's message."""
    if root is None:
        from mlops.cli import cli as root_command

        root = root_command
    try:
        with _opaque_values():
            ctx = root.make_context("mlops", list(invocation.args), resilient_parsing=False)
            path = ["mlops"]
            while isinstance(ctx.command, click.Group):
                rest = [*ctx._protected_args, *ctx.args]
                if not rest:
                    if ctx.command.invoke_without_command:
                        break
                    return f"`{' '.join(path)}` needs a subcommand: one of {sorted(ctx.command.list_commands(ctx))}"
                name, command, rest = ctx.command.resolve_command(ctx, rest)
                if command is None or name is None:  # pragma: no cover - resolve_command raises instead
                    return f"no such command {rest[:1]}"
                path.append(name)
                ctx = command.make_context(name, rest, parent=ctx, resilient_parsing=False)
    except click.exceptions.Exit:
        return None  # --help / --version
    except click.exceptions.NoArgsIsHelpError as exc:
        group = exc.ctx.command_path if exc.ctx else "mlops"
        return f"`{group}` needs a subcommand"
    except click.UsageError as exc:
        return exc.format_message()
    return None
