"""The twin says what it keeps (issue 19, item 8): its state lives in the server's memory, a dead server is
reported as "the twin stopped (state lost)", `local up` after a crash says it starts empty, and a server
whose state folder was removed stops by itself."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from pathlib import Path
from typing import Any

import pytest

from mlops.cli import main
from mlops.local.server import watch_state_dir
from mlops.local.twin import TwinState, read_state
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow


def _kill(pid: int) -> None:
    os.killpg(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)  # reap it: `mlops local up` started it from this process


def test_a_crashed_twin_is_reported_as_stopped_up_says_it_starts_empty_and_a_removed_folder_stops_it(
    twin_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--profile", "local", "local", "up"]) == 0
    capsys.readouterr()
    state = read_state(twin_dir)
    assert state is not None
    _kill(state.pid)  # the server dies (OOM, kill -9, a closed laptop lid...)

    assert main(["--profile", "local", "registry", "list"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: the twin stopped (state lost)") and "Traceback" not in err
    assert "fix: `mlops local up` starts an empty twin" in err
    assert main(["local", "status"]) == 1
    assert "twin: stopped (state lost)" in capsys.readouterr().out
    assert main(["local", "env"]) == 1
    assert "the twin stopped (state lost)" in capsys.readouterr().err

    assert main(["--profile", "local", "local", "up"]) == 0
    out, err = capsys.readouterr()
    assert f"(pid {state.pid}) has stopped and its state is lost" in err and "this twin starts empty" in err
    assert "twin started at http://127.0.0.1:" in out

    # The new twin, whose state folder is then removed, stops by itself (one twin start serves both cases).
    state = read_state(twin_dir)
    assert state is not None
    shutil.rmtree(twin_dir)  # e.g. the clone holding .mlops/twin was deleted: `local down` cannot find it now
    # The server is this process's child: waitpid blocks until it exits (its watch checks every 2 s).
    _, status = os.waitpid(state.pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_the_watch_stops_only_when_the_folder_is_gone(tmp_path: Path) -> None:
    directory = tmp_path / "state"
    directory.mkdir()
    stops: list[str] = []
    ticks: list[float] = []

    def ticking(limit: int):  # type: ignore[no-untyped-def]
        def wait(seconds: float) -> bool:  # Event.wait: True once the twin stops by other means
            ticks.append(seconds)
            return len(ticks) > limit

        return wait

    assert watch_state_dir(directory, lambda: stops.append("stop"), interval=2.0, wait=ticking(5)) is False
    assert stops == [] and ticks == [2.0] * 6  # five checks found the folder; then the twin stopped anyway

    directory.rmdir()
    ticks.clear()
    assert watch_state_dir(directory, lambda: stops.append("stop"), interval=2.0, wait=ticking(5)) is True
    assert stops == ["stop"] and ticks == [2.0]


def test_a_twin_whose_provisioning_fails_does_not_stay_behind(
    twin_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Before the state file exists, `mlops local down` cannot find the server: `up` must stop it itself.
    from mlops.local import twin

    started: list[int] = []
    real_popen = twin.subprocess.Popen

    def remember(*args: object, **kwargs: object) -> object:
        process = real_popen(*args, **kwargs)  # type: ignore[call-overload]
        started.append(process.pid)
        return process

    def failing_bootstrap(*_args: object, **_kwargs: object) -> object:
        raise RuntimeError("provisioning failed on purpose")

    monkeypatch.setattr(twin.subprocess, "Popen", remember)
    monkeypatch.setattr(twin, "bootstrap", failing_bootstrap)
    assert main(["--profile", "local", "local", "up"]) == 1
    assert "provisioning failed on purpose" in capsys.readouterr().err
    assert len(started) == 1
    with pytest.raises(ProcessLookupError):
        os.kill(started[0], 0)  # stopped and reaped: no server is left running


def test_a_twin_failing_after_its_automation_account_removes_the_state_it_wrote_early(
    twin_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `mlops demo` asks for the state once the automation account is ready (its build starts then); when staging
    # or prod fail afterwards, the server is stopped and that state file goes too, so nothing finds a dead twin.
    from mlops.core.config import load_config
    from mlops.local import twin
    from mlops.local.bootstrap import Bootstrapped

    seen: list[tuple[str, bool]] = []

    def bootstrap_failing_in_staging(*_args: object, automation_ready: Any, **_kwargs: object) -> object:
        automation_ready(Bootstrapped(approval_queue_url="q", bridge_dlq_url="d", kms_key_arn="k"))
        raise RuntimeError("staging failed on purpose")

    def on_ready(state: TwinState) -> None:
        seen.append((state.approval_queue_url, (twin_dir / "twin.json").exists()))

    monkeypatch.setattr(twin, "bootstrap", bootstrap_failing_in_staging)
    config = load_config(REPO_ROOT / "mlops.yaml", profile="local", environ={})
    with pytest.raises(RuntimeError, match="staging failed on purpose"):
        twin.up(config, twin_dir, automation_ready=on_ready)
    assert seen == [("q", True)]  # the state was written before the callback ran
    assert not (twin_dir / "twin.json").exists()
    assert twin.running(twin_dir) is None


def test_a_server_this_process_started_and_that_exited_is_not_alive() -> None:
    """`down` polls `alive`: a child that exited is a zombie until reaped, and must count as stopped (the e2e
    teardown used to wait out down()'s whole 10 s timeout for it)."""
    import subprocess
    import sys
    import time

    from mlops.local.twin import alive

    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while Path(f"/proc/{child.pid}/stat").read_text().split()[2] != "Z":  # exited, not yet reaped
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert not alive(child.pid)
    assert alive(os.getpid())
