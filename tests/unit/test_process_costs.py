"""What each `mlops` process pays at start (issue 18): checked in fresh processes, as a pipeline step starts them."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

from mlops.core import gc_policy

REPO_ROOT = Path(__file__).resolve().parents[2]


def _fresh(code: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, env=env, check=True
    )
    return done.stdout.strip().splitlines()[-1]


def test_a_command_under_the_local_profile_finds_its_twin_without_importing_the_server(tmp_path: Path) -> None:
    # A twin that was started here and is gone: the command still reads its state (and points AWS at it).
    twin = tmp_path / "twin"
    twin.mkdir()
    state = {
        "url": "http://127.0.0.1:9",
        "pid": 2**22 + 7,  # above Linux's default pid_max: no such process
        "region": "us-east-1",
        "accounts": {"automation": "000000000001", "staging": "000000000002", "prod": "000000000003"},
        "approval_queue_url": "",
        "bridge_dlq_url": "",
        "started": 0.0,
    }
    (twin / "twin.json").write_text(json.dumps(state))
    code = (
        "import os, sys, json; from mlops.cli.root import _use_running_twin; _use_running_twin(None); "
        "print(json.dumps([os.environ.get('AWS_ENDPOINT_URL'), sorted(m for m in sys.modules if m.startswith("
        "('moto', 'mlops.local.server', 'mlops.local.bootstrap')))]))"
    )
    env = {"PATH": "/usr/bin:/bin", "MLOPS_TWIN_DIR": str(twin), "MLOPS_CONFIG": str(REPO_ROOT / "mlops.yaml")}
    endpoint, heavy = json.loads(_fresh(code, env))
    assert endpoint == "http://127.0.0.1:9"
    assert heavy == []


def test_mlops_processes_collect_garbage_at_the_policys_thresholds() -> None:
    assert _fresh("import gc, mlops.cli; print(list(gc.get_threshold()))") == json.dumps(list(gc_policy.THRESHOLDS))
    assert _fresh("import gc; print(list(gc.get_threshold()))") != json.dumps(list(gc_policy.THRESHOLDS))


def test_frozen_survivors_are_exempt_from_collections() -> None:
    kept = [[object()] for _ in range(1000)]
    before = gc.get_freeze_count()
    gc_policy.freeze_survivors()
    assert gc.get_freeze_count() >= before + len(kept)


# A process that armed the quick exit: the other atexit callbacks ran, stdout was flushed, the code is the
# command's, and the interpreter's teardown (which would run this module-level object's __del__) did not.
_EXITING = """
import atexit, sys
from mlops.core import quick_exit
quick_exit.install()
atexit.register(lambda: print("library callback", file=sys.stderr))
class Teardown:
    def __del__(self):
        print("teardown", file=sys.stderr)
kept = Teardown()
sys.stdout.write("unflushed output")
{arm}
sys.exit(3)
"""


def _exit_of(arm: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", _EXITING.format(arm=arm)], capture_output=True, text=True, timeout=60, cwd=REPO_ROOT
    )


def test_an_armed_command_runs_the_atexit_callbacks_flushes_and_skips_the_teardown() -> None:
    done = _exit_of("quick_exit.arm(3)")
    assert (done.returncode, done.stdout) == (3, "unflushed output")
    assert done.stderr.splitlines() == ["library callback"]


def test_an_unarmed_process_exits_as_python_does() -> None:
    done = _exit_of("")
    assert (done.returncode, done.stdout) == (3, "unflushed output")
    assert done.stderr.splitlines() == ["library callback", "teardown"]


def test_a_process_measured_by_coverage_is_not_armed() -> None:
    # coverage saves its data from an atexit callback registered before this one: it must still run.
    fake = (
        "import types; "
        "sys.modules['coverage'] = types.SimpleNamespace(Coverage=types.SimpleNamespace(current=lambda: object()))"
    )
    done = _exit_of(f"{fake}\nquick_exit.arm(3)")
    assert done.stderr.splitlines() == ["library callback", "teardown"]


def test_a_stdout_that_cannot_be_flushed_exits_120_as_python_does() -> None:
    full = "import io, os; sys.stdout = io.TextIOWrapper(io.FileIO(os.open('/dev/full', os.O_WRONLY), 'w'))"
    done = _exit_of(f"{full}\nsys.stdout.write('lost')\nquick_exit.arm(0)\nsys.exit(0)")
    assert done.returncode == 120
    assert done.stderr.splitlines()[0] == "library callback"
    assert "the command's output could not be written" in done.stderr


def test_the_console_script_exits_quickly_with_the_commands_code() -> None:
    # `mlops` and `python -m mlops.cli` arm it; an unknown command is click's usage error, 2.
    done = subprocess.run(
        [sys.executable, "-m", "mlops.cli", "no-such-command"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 2 and "No such command" in done.stderr
    version = subprocess.run(
        [sys.executable, "-m", "mlops.cli", "--version"], capture_output=True, text=True, timeout=60
    )
    assert version.returncode == 0 and version.stdout.startswith("mlops, version")
