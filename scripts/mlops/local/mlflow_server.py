"""The twin's MLflow tracking server: a real `mlflow server` on 127.0.0.1, sqlite backend, local artifacts.

The twin server process starts it beside itself (`TwinServer` owns it: `stop()` stops it, also when the
state folder disappears) and does not wait for it: `mlflow server` needs about 6 s of CPU to come up (two
processes import MLflow one after the other: its command line, then uvicorn's app), and nothing needs it
before a build's execution has finished, when `mlops build run --wait` waits for `/health`
(model_build.tracking.wait_reachable). It runs at the lowest CPU priority (nice 19): on a 2-core machine it
takes only the CPU the build leaves idle, so it starts with the twin and is up when the first execution ends
(`mlops demo`: starting it at the first pipeline write instead left `build run` waiting 1.6 s for it).

What it keeps lives under the twin's folder (`mlflow/mlflow.db`, `mlflow/artifacts/`), so `mlops local
down` removes it with the rest. The server's job runner (huey consumers that fork workers of their own)
is turned off: the twin uses none of its jobs, and its processes would outlive a plain SIGTERM.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from mlops.local.errors import TwinError

NICENESS = 19
ENABLE_ENV = "MLOPS_TWIN_MLFLOW"
PID_FILE = "server.pid"


def enabled_from(environ: Mapping[str, str]) -> bool:
    value = environ.get(ENABLE_ENV, "1").strip().lower()
    if value in ("1", "true", "yes", "on", "", "lazy"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise TwinError(
        f"{ENABLE_ENV}={value!r} is not a switch; expected 1 or 0 (true/false, on/off), or lazy",
        hint=f"unset {ENABLE_ENV} to start the twin's MLflow server, or set it to 0 to start the twin without it",
    )


def lazy_from(environ: Mapping[str, str]) -> bool:
    """`MLOPS_TWIN_MLFLOW=lazy`: start the server at the twin's first pipeline write, not at `local up` (the
    test suite's setting: most of its twins never build, and the server costs seconds of CPU to start)."""
    return environ.get(ENABLE_ENV, "").strip().lower() == "lazy"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class MlflowServer:
    def __init__(self, state_dir: Path, port: int | None = None) -> None:
        self.root = state_dir / "mlflow"
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        executable = Path(sys.executable).with_name("mlflow")
        if not executable.exists():
            raise FileNotFoundError(f"expected the mlflow command beside {sys.executable}; run `make install`")
        return [
            str(executable), "server",
            "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
            "--artifacts-destination", str(self.root / "artifacts"),
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
        ]  # fmt: skip

    def start(self) -> None:
        """Start in the background (its own process group, so stop() reaches uvicorn's worker too)."""
        self.root.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLFLOW_TRACKING"))}
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
        # A server on the user's machine, started for them: it sends nothing to MLflow's usage telemetry.
        env["MLFLOW_DISABLE_TELEMETRY"] = "true"
        with (self.root / "server.log").open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.root,
                start_new_session=True,
            )
        # Children forked later (uvicorn) inherit the priority.
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, self.process.pid, NICENESS)
        # `mlops local down` stops its group from here too if the twin server itself was killed first.
        (self.root / PID_FILE).write_text(str(self.process.pid))

    def stop(self, timeout: float = 1.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`: uvicorn's graceful shutdown takes ~3 s and there is nothing
        to drain (sqlite commits per request, and `down` removes the folder anyway)."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL below ends what is left
            process.wait(timeout=timeout)
        # uvicorn's worker is in the same group and may outlive its parent: end the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout)
        _wait_gone(process.pid, timeout)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_gone(pgid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while _group_alive(pgid):
        with contextlib.suppress(ChildProcessError, ProcessLookupError):
            os.waitpid(pgid, os.WNOHANG)  # reaps it when we are its parent (the twin server's own stop)
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def stop_recorded(state_dir: Path, timeout: float = 1.0) -> bool:
    """Stop the server group recorded under a twin folder (for `down`, and `up` after a crash); True if one
    was running. SIGTERM, a bounded wait for the whole group to be gone, then SIGKILL."""
    pid_file = state_dir / "mlflow" / PID_FILE
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text())
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    if not _wait_gone(pid, timeout):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        _wait_gone(pid, timeout)
    return True
