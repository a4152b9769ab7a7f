"""cfn-lint clean (no errors, no warnings), and `mlops infra lint` fails on findings; checkov parsing and install."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mlops.cli import main
from mlops.core.errors import InfraError
from mlops.infra.lint import cfn_lint, ensure_checkov, parse_checkov_report, run_checkov

from .conftest import REPO_ROOT, TEMPLATE_FILES


def test_a_broken_template_is_reported_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text('Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n    Properties:\n      QueueName: !Sub "x"\n'
                   "      Colour: blue\n")  # fmt: skip
    findings = {(f.rule, f.severity, f.line) for f in cfn_lint([bad], ["us-east-1"])}
    assert ("W1020", "warning", 5) in findings
    assert ("E3002", "error", 6) in findings


def test_the_templates_are_cfn_lint_clean_in_the_regions_we_use(capsys: pytest.CaptureFixture[str]) -> None:
    # One cfn-lint run (seconds) for both: the command lints every template in the config's region (eu-west-1).
    assert main(["--config", str(REPO_ROOT / "mlops.yaml"), "infra", "lint", "--no-checkov"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "cfn-lint: 0 error(s), 0 warning(s), 0 informational in 4 template(s)"
    assert not any(line.startswith(("E", "W", "I")) for line in lines)  # no finding printed
    assert sorted(p.name for p in TEMPLATE_FILES) == ["access.yaml", "automation.yaml", "target.yaml", "use-case.yaml"]


def completed(code: int, stdout: str = "", stderr: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.CompletedProcess(["checkov"], code, stdout, stderr)


REPORT = """{"check_type": "cloudformation", "summary": {"passed": 10, "failed": 1, "skipped": 1},
 "results": {"failed_checks": [{"check_id": "CKV_AWS_1", "check_name": "Something", "resource": "AWS::S3::Bucket.B",
 "file_path": "/automation.yaml"}], "skipped_checks": [{"check_id": "CKV_AWS_18", "resource": "AWS::S3::Bucket.B",
 "check_result": {"result": "SKIPPED", "suppress_comment": "a reason"}}]}}"""


def test_checkov_report_counts_failures_and_keeps_skip_reasons(tmp_path: Path) -> None:
    report = run_checkov(tmp_path / "checkov", tmp_path, run=lambda command: completed(1, REPORT))
    assert (report.passed, report.failed, report.skipped) == (10, 1, 1)
    assert report.failures[0].check_id == "CKV_AWS_1"
    assert report.skips == [("CKV_AWS_18", "AWS::S3::Bucket.B", "a reason")]
    both = parse_checkov_report([{"summary": {"passed": 1, "failed": 0, "skipped": 0}}, {"summary": {"failed": 2}}])
    assert both.failed == 2


def test_a_broken_checkov_run_is_an_error_not_zero_failures(tmp_path: Path) -> None:
    with pytest.raises(InfraError, match="checkov printed no JSON report"):
        run_checkov(tmp_path / "checkov", tmp_path, run=lambda command: completed(1, "", "Traceback: boom"))
    with pytest.raises(InfraError, match="checkov failed to run .exit 2."):
        run_checkov(tmp_path / "checkov", tmp_path, run=lambda command: completed(2, "", "usage"))


def test_checkov_install_failure_says_what_to_do(tmp_path: Path) -> None:
    lock = tmp_path / "requirements-checkov.lock"
    lock.write_text("checkov==3.3.30\n")
    commands: list[list[str]] = []

    def failing(command: list[str]) -> subprocess.CompletedProcess[str]:
        commands.append(command)
        return completed(0) if "venv" in command else completed(2, "", "error: Failed to fetch: https://pypi.org")

    with pytest.raises(InfraError, match="installing checkov failed") as raised:
        ensure_checkov(tmp_path / "tool", lock, run=failing, progress=lambda _: None)
    assert "PyPI is reachable" in str(raised.value)
    assert commands[1][-2:] == ["-r", str(lock)]


def test_checkov_lock_is_hashed_and_pins_checkov() -> None:
    lock = (REPO_ROOT / "infra" / "requirements-checkov.lock").read_text()
    assert "checkov==3.3.30 \\\n" in lock and "--hash=sha256:" in lock
