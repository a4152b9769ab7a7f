"""Every `mlops` command the docs and the reminders show a person parses against the real click CLI.

Sources: fenced code blocks and inline code in README.md and docs/*.md, the pending-approval reminder the
bridge sends, and the decision commands `mlops registry show` prints. Placeholders (`<arn>`, `ARN`, `"$VAR"`)
stand for a value; a span that lists alternatives (`approve|reject`) or optional parts (`[--dry-run]`) is
a synopsis, not a command, and is left out.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlops.pipelines.commands import OPAQUE, Invocation, check, invocations

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
# `<arn>`, and upper-case words standing for a value (ARN, VERSION, N, MODE, FILE).
_PLACEHOLDER = re.compile(r"<[^<>\s][^<>]*>|(?<![\w-])[A-Z][A-Z_]*(?![\w-])")
_SYNOPSIS = re.compile(r"\w\|\w|\[|\.\.\.|…")


def _commands_in_markdown(text: str) -> list[tuple[str, bool]]:
    """(command, runnable): code-block lines are commands to run; an inline span that is only a command
    path (`mlops test`) names a command in prose and must name one that exists."""
    found: list[tuple[str, bool]] = []
    fenced = False
    lines = iter(text.splitlines())
    for line in lines:
        if line.strip().startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            while line.endswith("\\"):
                line = line[:-1] + " " + next(lines, "")
            code = line.split("  #", 1)[0].strip().removeprefix("$ ")
            code = re.sub(r'^eval "\$\((.*)\)"$', r"\1", code)
            if re.match(r"^(\S+/)?mlops\s", code):
                found.append((code, True))
        else:
            for span in re.findall(r"`([^`]*)`", line):
                if re.match(r"^mlops\s", span):
                    path_only = all(re.fullmatch(r"[a-z][a-z-]*", word) for word in span.split()[1:])
                    found.append((span, not path_only))
    return [(c, run) for c, run in found if not _SYNOPSIS.search(_PLACEHOLDER.sub("x", c))]


def _exists(command: str) -> str | None:
    from mlops.cli import cli

    group = cli
    for word in command.split()[1:]:
        if not hasattr(group, "commands"):
            return f"`{command}`: {word!r} follows a command that has no subcommands"
        if word not in group.commands:
            return f"`{command}`: no command {word!r}; expected one of {sorted(group.commands)}"
        group = group.commands[word]
    return None


def _parsed(command: str) -> list[Invocation]:
    text = _PLACEHOLDER.sub(OPAQUE, command)
    return invocations(text)


def _documented() -> list[tuple[str, str, bool]]:
    return [
        (path.name, command, runnable)
        for path in DOCS
        for command, runnable in _commands_in_markdown(path.read_text(encoding="utf-8"))
    ]


@pytest.mark.parametrize(("where", "command", "runnable"), _documented(), ids=lambda v: str(v)[:60])
def test_documented_command_parses(where: str, command: str, runnable: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    # docs/bridge.md: `mlops bridge replay` takes its queue from BRIDGE_DLQ_URL, as the Lambda's settings do.
    monkeypatch.setenv("BRIDGE_DLQ_URL", "https://sqs.eu-west-1.amazonaws.com/111111111111/mlops-bridge-dlq")
    if not runnable:
        assert _exists(command) is None, f"{where}: {_exists(command)}"
        return
    found = _parsed(command)
    assert found, f"{where}: no mlops command read from {command!r}"
    for invocation in found:
        assert check(invocation) is None, f"{where}: `{command}`: {check(invocation)}"


def test_the_docs_show_the_commands_this_issue_is_about() -> None:
    shown = " ".join(c for _, c, _ in _documented())
    for expected in ("mlops registry show", "mlops registry approve 1 --reason", "mlops lineage", "mlops build track"):
        assert expected in shown, expected


def test_the_reminder_commands_parse() -> None:
    from mlops_bridge.reminders import PendingPackage, reminder_message

    arn = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/breast-cancer/7"
    created = datetime(2026, 12, 1, tzinfo=UTC)
    _, body = reminder_message(PendingPackage(arn, "breast-cancer", 7, created), datetime(2026, 12, 3, tzinfo=UTC))
    commands = [line.strip() for line in body.splitlines() if line.strip().startswith("mlops ")]
    assert [c.split()[2] for c in commands] == ["show", "approve", "reject"]
    for command in commands:
        (invocation,) = _parsed(command)
        assert check(invocation) is None, f"reminder: `{command}`: {check(invocation)}"
        assert arn in invocation.args


def test_the_commands_registry_show_prints_parse() -> None:
    from mlops.registry import render_view

    view = {
        "arn": "arn:aws:sagemaker:eu-west-1:111111111111:model-package/breast-cancer/7",
        "group": "breast-cancer", "version": 7, "status": "PendingManualApproval", "approval_description": None,
        "created": "2026-12-01", "git_commit": "c", "build_id": "b", "lifecycle": None, "metrics": {"auc": 0.99},
        "prod": None, "card": None,
        "links": {"evaluation_report": None, "explanations": None, "plots": [], "mlflow_run": None},
    }  # fmt: skip
    commands = [line.strip() for line in render_view(view).splitlines() if line.strip().startswith("mlops ")]
    assert len(commands) == 2
    for command in commands:
        (invocation,) = _parsed(command)
        assert check(invocation) is None, command


def test_a_command_the_cli_refuses_is_caught() -> None:
    """The check can fail: the form the old reminder printed lacked the required --reason."""
    (invocation,) = _parsed("mlops registry approve arn:aws:sagemaker:eu-west-1:1:model-package/g/1")
    assert "Missing option '--reason'" in (check(invocation) or "")
