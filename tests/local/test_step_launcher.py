"""Warm step processes: each step is its own process that behaves as `python <script> <args>` would."""

from __future__ import annotations

import os
import sys
import textwrap
from pathlib import Path

import pytest

from mlops.local import step_launcher

SCRIPT = """
import json, os, pickle, sys
from pathlib import Path

class Made:  # pickled below: __main__ must be this script's module, as under `python script.py`
    pass

print("argv", json.dumps(sys.argv[1:]))
print("name", __name__, Path(__file__).name)
print("cwd", os.getcwd())
print("env", os.environ.get("SM_TEST"), os.environ.get("LEAKED"))
print("path0", sys.path[0])
print("pid", os.getpid())
pickle.dumps(Made())
print("to stderr", file=sys.stderr)
if sys.argv[1:] == ["raise"]:
    raise RuntimeError("boom in the step")
if sys.argv[1:] == ["sleep"]:
    import time
    time.sleep(60)
sys.exit(int(sys.argv[1]) if sys.argv[1:] and sys.argv[1].isdigit() else 0)
"""


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "code" / "step.py"
    path.parent.mkdir()
    path.write_text(textwrap.dedent(SCRIPT))
    return path


def _run(script: Path, tmp_path: Path, *args: str, timeout: float = 60) -> tuple[int, str]:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    log = tmp_path / "job.log"
    process = step_launcher.start(
        [sys.executable, str(script), *args], python=sys.executable, env={"SM_TEST": "yes"}, cwd=work, log=log
    )
    code = process.wait(timeout=timeout)
    return code, log.read_text()


def test_the_script_runs_as_its_own_main_with_its_argv_env_cwd_and_log(script: Path, tmp_path: Path) -> None:
    os.environ["LEAKED"] = "from the parent"
    try:
        code, log = _run(script, tmp_path, "a", "--b")
    finally:
        del os.environ["LEAKED"]
    assert code == 0, log
    assert 'argv ["a", "--b"]' in log
    assert "name __main__ step.py" in log
    assert f"cwd {tmp_path / 'work'}" in log
    assert "env yes None" in log  # only the step's environment, nothing of the caller's
    assert f"path0 {script.parent}" in log
    assert f"pid {os.getpid()}" not in log  # a process of its own
    assert "to stderr" in log


def test_exit_codes_and_tracebacks_are_those_of_python(script: Path, tmp_path: Path) -> None:
    assert _run(script, tmp_path, "3")[0] == 3
    code, log = _run(script, tmp_path, "raise")
    assert code == 1
    assert "RuntimeError: boom in the step" in log and "Traceback" in log


def test_a_step_that_outlives_its_timeout_is_killed(script: Path, tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    process = step_launcher.start(
        [sys.executable, str(script), "sleep"], python=sys.executable, env={}, cwd=tmp_path, log=log
    )
    with pytest.raises(step_launcher.subprocess.TimeoutExpired):
        process.wait(timeout=0.5)
    process.kill()
    assert process.wait(timeout=30) < 0  # killed by a signal, as Popen reports it
    assert process.poll() is not None


def test_other_commands_and_the_switch_use_a_plain_subprocess(
    script: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert step_launcher.python_script(["/bin/sh", "-c", "true"], sys.executable) is None
    assert step_launcher.python_script([sys.executable, "-m", "x"], sys.executable) is None
    monkeypatch.setenv("MLOPS_TWIN_WARM_STEPS", "0")
    process = step_launcher.start(
        [sys.executable, str(script), "4"], python=sys.executable, env={}, cwd=tmp_path, log=tmp_path / "l"
    )
    assert isinstance(process, step_launcher.subprocess.Popen)
    assert process.wait(timeout=60) == 4


@pytest.mark.parametrize(
    "value,enabled,eager",
    [(None, True, True), ("1", True, True), ("lazy", True, False), (" LAZY ", True, False), ("0", False, False)],
)
def test_warm_modes(value: str | None, enabled: bool, eager: bool) -> None:
    environ = {} if value is None else {"MLOPS_TWIN_WARM_STEPS": value}
    assert step_launcher.warm_enabled(environ) is enabled
    assert step_launcher.warm_eagerly(environ) is eager
