"""The twin's MLflow tracking server: a process group of its own that `mlops local down` stops, also when the
twin server that started it was killed first; the environment the twin exports points MLflow at it.

(That `mlops local up` starts it beside the twin and the demo's build logs to it is checked end to end in
tests/e2e/test_flow.py; here no twin is booted, so this costs a fraction of a second of CPU.)
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

import pytest

from mlops.local.errors import TwinError
from mlops.local.mlflow_server import NICENESS, PID_FILE, MlflowServer, enabled_from, lazy_from
from mlops.local.paths import mlflow_url
from mlops.local.twin import TwinState, down, environment


def _group_running(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group, from /proc: a zombie nobody reaps is not running."""
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(stat.parent.name))
    return members


def test_down_stops_an_mlflow_server_whose_twin_is_gone(tmp_path: Path) -> None:
    directory = tmp_path / "twin"
    server = MlflowServer(directory)
    server.start()  # as the twin server does; then the twin "dies" without stopping it (kill -9)
    pid = int((directory / "mlflow" / PID_FILE).read_text())
    assert server.process is not None and pid == server.process.pid
    assert _group_running(pid), "the MLflow server runs in a process group of its own"
    # At the lowest priority: it takes only the CPU a build leaves idle (and uvicorn, forked later, inherits it).
    assert os.getpriority(os.PRIO_PROCESS, pid) == NICENESS == 19
    started = time.monotonic()
    assert down(directory) is False  # no twin state: the twin server was not running
    assert _group_running(pid) == []  # ... but its orphaned MLflow server was stopped
    assert time.monotonic() - started < 5
    assert not directory.exists()
    assert server.process.wait(timeout=5) is not None  # reaped: this test started it


def test_the_twin_exports_its_mlflow_address(tmp_path: Path) -> None:
    state = TwinState(
        url="http://127.0.0.1:1", pid=1, region="us-east-1", accounts={"automation": "000000000001"},
        approval_queue_url="q", bridge_dlq_url="d", started=0.0, mlflow_url="http://127.0.0.1:2",
    )  # fmt: skip
    assert environment(state, "automation")["MLFLOW_TRACKING_URI"] == "http://127.0.0.1:2"
    without = TwinState(**{**state.__dict__, "mlflow_url": ""})
    assert "MLFLOW_TRACKING_URI" not in environment(without, "automation")
    (tmp_path / "server.json").write_text('{"url": "http://127.0.0.1:1", "mlflow_url": "http://127.0.0.1:2"}')
    assert mlflow_url(tmp_path) == "http://127.0.0.1:2"
    assert mlflow_url(tmp_path / "absent") == ""


def test_the_switch_refuses_what_is_not_one() -> None:
    assert enabled_from({}) is True
    assert enabled_from({"MLOPS_TWIN_MLFLOW": "off"}) is False
    assert enabled_from({"MLOPS_TWIN_MLFLOW": "lazy"}) is True and lazy_from({"MLOPS_TWIN_MLFLOW": "lazy"})
    assert not lazy_from({}) and not lazy_from({"MLOPS_TWIN_MLFLOW": "1"})
    with pytest.raises(TwinError, match="is not a switch; expected 1 or 0"):
        enabled_from({"MLOPS_TWIN_MLFLOW": "maybe"})


def test_actions_for_the_first_build_run_once_at_the_first_pipeline_write(tmp_path: Path) -> None:
    from mlops.local.server import TwinServer

    twin = TwinServer(state_dir=tmp_path, accounts={"automation": "000000000001"}, region="us-east-1")
    ran: list[str] = []
    twin.at_first_build(lambda: ran.append("mlflow"))
    assert ran == []  # registered, not run: the twin's start does not pay for it
    twin.first_build()
    twin.first_build()  # later pipeline writes run nothing again
    assert ran == ["mlflow"]
