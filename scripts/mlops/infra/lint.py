"""`mlops infra lint`: cfn-lint (in process, through its Python API) and checkov (in its own tool environment).

checkov pins packaging<24, which conflicts with the project's test tools, so it cannot live in .venv. It is
installed from the hashed lock infra/requirements-checkov.lock into .tools/checkov with uv (PyPI must be
reachable the first time) and run as a subprocess. Its platform lookups are switched off
(BC_SKIP_MAPPING, --skip-download): the scan is offline and does not wait on network timeouts.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.core.errors import InfraError
from mlops.infra.templates import REPO_ROOT

CHECKOV_TOOL_DIR = REPO_ROOT / ".tools" / "checkov"
CHECKOV_LOCK = REPO_ROOT / "infra" / "requirements-checkov.lock"
FAILING_SEVERITIES = frozenset({"error", "warning"})


@dataclass(frozen=True)
class LintFinding:
    rule: str
    severity: str  # error | warning | informational
    path: str
    line: int
    column: int
    message: str

    def describe(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.rule} [{self.severity}] {self.message}"


def cfn_lint(paths: Sequence[Path], regions: Sequence[str]) -> list[LintFinding]:
    """Every cfn-lint match of every template, in file order."""
    from cfnlint.api import ManualArgs, lint_file  # type: ignore[import-untyped]  # ~0.5 s to import

    findings: list[LintFinding] = []
    for path in paths:
        matches = lint_file(path, ManualArgs(regions=list(regions)))
        for match in matches:
            findings.append(
                LintFinding(
                    rule=str(match.rule.id),
                    severity=str(match.rule.severity),
                    path=str(path),
                    line=int(match.linenumber),
                    column=int(match.columnnumber),
                    message=str(match.message),
                )
            )
    return findings


@dataclass(frozen=True)
class CheckovFailure:
    check_id: str
    name: str
    resource: str
    path: str


@dataclass(frozen=True)
class CheckovReport:
    passed: int
    failed: int
    skipped: int
    failures: list[CheckovFailure] = field(default_factory=list)
    skips: list[tuple[str, str, str]] = field(default_factory=list)  # (check id, resource, reason)


def checkov_binary(tool_dir: Path = CHECKOV_TOOL_DIR) -> Path:
    return tool_dir / "bin" / "checkov"


def _uv() -> str:
    found = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if found is None:
        raise InfraError(
            "uv was not found next to the Python interpreter or on PATH: expected it to install checkov",
            hint="run `make install` (it installs uv into .venv), or `mlops infra lint --no-checkov`",
        )
    return found


Runner = Callable[[list[str]], "subprocess.CompletedProcess[str]"]


def _run(command: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    return subprocess.run(command, capture_output=True, text=True, check=False, env=env)


def _tail(completed: subprocess.CompletedProcess[str], lines: int = 15) -> str:
    return "\n".join((completed.stderr or completed.stdout or "").strip().splitlines()[-lines:])


def ensure_checkov(
    tool_dir: Path = CHECKOV_TOOL_DIR,
    lock: Path = CHECKOV_LOCK,
    run: Runner = _run,
    progress: Callable[[str], None] = print,
) -> Path:
    """The checkov executable, installing the tool environment from the lock if it is not there yet."""
    binary = checkov_binary(tool_dir)
    if binary.is_file():
        return binary
    if not lock.is_file():
        raise InfraError(f"{lock} is missing: expected the hashed checkov lock", hint="restore it from git")
    uv = _uv()
    progress(f"installing checkov from {lock.name} into {tool_dir} (once) ...")
    steps = [
        [uv, "venv", "--quiet", "--python", sys.executable, str(tool_dir)],
        [uv, "pip", "install", "--quiet", "--python", str(tool_dir / "bin" / "python"), "-r", str(lock)],
    ]
    for command in steps:
        completed = run(command)
        if completed.returncode != 0:
            raise InfraError(
                f"installing checkov failed (exit {completed.returncode}): "
                f"{' '.join(command[1:3])}\n{_tail(completed)}",
                hint=f"check that PyPI is reachable, then delete {tool_dir} and run `mlops infra lint` again",
            )
    if not binary.is_file():
        raise InfraError(f"checkov was installed but {binary} does not exist", hint=f"delete {tool_dir} and retry")
    return binary


def run_checkov(binary: Path, templates_dir: Path, run: Runner = _run) -> CheckovReport:
    command = [
        str(binary), "--directory", str(templates_dir), "--framework", "cloudformation",
        "--output", "json", "--skip-download",
    ]  # fmt: skip
    completed = run(command)
    # checkov exits 1 when a check fails; anything else, or output that is not JSON, is a broken run.
    if completed.returncode not in (0, 1):
        raise InfraError(f"checkov failed to run (exit {completed.returncode}):\n{_tail(completed)}")
    try:
        document: Any = json.loads(completed.stdout)
    except ValueError as exc:
        raise InfraError(
            f"checkov printed no JSON report (exit {completed.returncode}):\n{_tail(completed)}",
            hint=f"run {binary} -d {templates_dir} by hand to see the problem",
        ) from exc
    return parse_checkov_report(document)


def parse_checkov_report(document: Any) -> CheckovReport:
    reports = document if isinstance(document, list) else [document]
    passed = failed = skipped = 0
    failures: list[CheckovFailure] = []
    skips: list[tuple[str, str, str]] = []
    for report in reports:
        summary = report.get("summary", {})
        passed += int(summary.get("passed", 0))
        failed += int(summary.get("failed", 0))
        skipped += int(summary.get("skipped", 0))
        results = report.get("results", {})
        for check in results.get("failed_checks", []):
            failures.append(
                CheckovFailure(
                    check_id=str(check.get("check_id")),
                    name=str(check.get("check_name")),
                    resource=str(check.get("resource")),
                    path=str(check.get("file_path")),
                )
            )
        for check in results.get("skipped_checks", []):
            reason = str((check.get("check_result") or {}).get("suppress_comment", ""))
            skips.append((str(check.get("check_id")), str(check.get("resource")), reason))
    return CheckovReport(passed=passed, failed=failed, skipped=skipped, failures=failures, skips=skips)
