"""The twin's MLflow tracking server: started by `mlops local up` without delaying it, reached through the
environment the twin exports, and stopped by `mlops local down` - also after the twin itself was killed."""

from __future__ import annotations

import contextlib
import json
import os
import signal
from pathlib import Path

import pytest

from mlops.cli import main
from mlops.local.errors import TwinError
from mlops.local.mlflow_server import PID_FILE, enabled_from
from mlops.local.twin import read_state
from model_build.tracking import wait_reachable

pytestmark = pytest.mark.slow


def _group_running(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group, from /proc: a zombie nobody reaps is not running."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(stat.parent.name))
    return members


def test_up_starts_mlflow_in_the_background_and_down_stops_it_also_after_a_crash(
    twin_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLOPS_TWIN_MLFLOW", "1")
    assert main(["--profile", "local", "local", "up"]) == 0
    out = capsys.readouterr().out
    state = read_state(twin_dir)
    assert state is not None and state.mlflow_url.startswith("http://127.0.0.1:")
    assert f"MLflow tracking server and UI: {state.mlflow_url}" in out
    assert main(["local", "status"]) == 0
    assert json.loads(capsys.readouterr().out)["mlflow_url"] == state.mlflow_url
    assert main(["local", "env"]) == 0
    assert f"export MLFLOW_TRACKING_URI={state.mlflow_url}" in capsys.readouterr().out.splitlines()
    wait_reachable(state.mlflow_url, 120)  # a real server answers /health
    first = int((twin_dir / "mlflow" / PID_FILE).read_text())
    assert _group_running(first), "the MLflow server runs in a process group of its own"

    os.killpg(state.pid, signal.SIGKILL)  # the twin dies; its MLflow server (own session) does not
    with contextlib.suppress(ChildProcessError):
        os.waitpid(state.pid, 0)
    assert _group_running(first)
    assert main(["local", "down"]) == 0  # (`local up` after a crash stops it the same way, before starting anew)
    assert _group_running(first) == []
    assert not twin_dir.exists()


def test_the_switch_refuses_what_is_not_one() -> None:
    assert enabled_from({}) is True
    assert enabled_from({"MLOPS_TWIN_MLFLOW": "off"}) is False
    with pytest.raises(TwinError, match="is not a switch; expected 1 or 0"):
        enabled_from({"MLOPS_TWIN_MLFLOW": "maybe"})
