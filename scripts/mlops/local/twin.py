"""Start, stop and describe the twin's background server; the environment that points at it.

The server runs as one background process (`python -m mlops.local.serve`) whose state lives under
one directory (default `.mlops/twin` beside mlops.yaml; `MLOPS_TWIN_DIR` overrides). `down` stops it
and removes the directory. What the twin keeps: its AWS state (moto) lives in that process's memory only,
so when the process dies the state is lost; `up` then starts an empty twin and says so. A server whose
directory was removed stops itself (`mlops.local.server.stop_when_state_dir_removed`). Scripts reach
the twin only through `AWS_ENDPOINT_URL` and credentials, exactly as they would reach AWS.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import boto3

from mlops.core.config import Config
from mlops.local import mlflow_server
from mlops.local.bootstrap import Bootstrapped, bootstrap
from mlops.local.errors import TwinError
from mlops.local.paths import twin_dir as twin_dir  # re-exported: callers import it from here
from mlops.local.strict.gate import strict_requests_from

# Re-exported: the state and the environment live in twin_state (importable without the server).
from mlops.local.twin_state import STATE_FILE as STATE_FILE
from mlops.local.twin_state import TWIN_ACCESS_KEY as TWIN_ACCESS_KEY
from mlops.local.twin_state import TWIN_SECRET as TWIN_SECRET
from mlops.local.twin_state import TwinState as TwinState
from mlops.local.twin_state import alive
from mlops.local.twin_state import environment as environment
from mlops.local.twin_state import healthy as healthy
from mlops.local.twin_state import read_state as read_state
from mlops.local.twin_state import requests_mode as requests_mode
from mlops.local.twin_state import running as running
from mlops.local.twin_state import stopped as stopped


def automation_session(url: str, region: str) -> boto3.Session:
    _point_at(url)
    return boto3.Session(aws_access_key_id=TWIN_ACCESS_KEY, aws_secret_access_key=TWIN_SECRET, region_name=region)


def _point_at(url: str) -> None:
    os.environ["AWS_ENDPOINT_URL"] = url
    os.environ["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = url


def up(
    config: Config,
    directory: Path,
    *,
    time_scale: float = 0.01,
    timeout: float = 30.0,
    progress: Callable[[str], None] = lambda _m: None,
    strict_requests: bool | None = None,
    iam_mode: str | None = None,
    mlflow: bool | None = None,
    mlflow_at_first_build: bool = False,
    automation_ready: Callable[[TwinState], None] | None = None,
) -> tuple[TwinState, bool]:
    """Start the twin (or find it running). Returns the state and whether it was started now.

    With `automation_ready`, the state file is written as soon as the automation account is provisioned (a
    build needs nothing more, and commands find the twin by that file), and `automation_ready` is called with
    it; the staging and prod accounts follow before this returns. Without it, the file is written at the end.

    `mlflow` starts the twin's MLflow tracking server beside it (in the background: readiness does not wait);
    None leaves it to MLOPS_TWIN_MLFLOW (default on). `mlflow_at_first_build` starts it only at the twin's first
    pipeline write (its address is known at once): the tests' twins, most of which never build.

    `strict_requests` None leaves request validation to MLOPS_TWIN_STRICT_REQUESTS (default on).
    """
    if not config.is_local:
        raise TwinError(
            f"the twin runs the 'local' profile, not {config.profile!r}",
            hint="run `mlops --profile local local up` (or set MLOPS_PROFILE=local)",
        )
    existing = running(directory)
    if existing is not None:
        if automation_ready is not None:
            automation_ready(existing)
        return existing, False
    crashed = stopped(directory)
    if crashed is not None:
        progress(
            f"the twin started at {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(crashed.started))} "
            f"(pid {crashed.pid}) has stopped and its state is lost (it lived in that process's memory): "
            "this twin starts empty; build and approve again (or run `mlops demo`)"
        )
    if mlflow is None:
        mlflow = mlflow_server.enabled_from(os.environ)  # a bad value fails here, not in the server's log
        mlflow_at_first_build = mlflow_at_first_build or mlflow_server.lazy_from(os.environ)
    if directory.exists():
        # A crashed (killed) twin could not stop its MLflow server, which runs in a session of its own.
        mlflow_server.stop_recorded(directory)
        shutil.rmtree(directory)  # a stale directory from a crashed twin
    directory.mkdir(parents=True)
    accounts = {
        "automation": config.accounts.automation.id,
        "staging": config.accounts.staging.id,
        "prod": config.accounts.prod.id,
    }
    command = [
        sys.executable, "-m", "mlops.local.serve",
        "--state-dir", str(directory), "--region", config.region,
        "--accounts", json.dumps(accounts), "--time-scale", str(time_scale),
    ]  # fmt: skip
    if strict_requests is None:
        strict_requests = strict_requests_from(os.environ)  # a bad value fails here, not in the server's log
    command += ["--requests", "strict" if strict_requests else "lenient"]
    if iam_mode:  # else the server reads MLOPS_TWIN_IAM (default enforce)
        command += ["--iam", iam_mode]
    if not mlflow:
        command.append("--no-mlflow")
    elif mlflow_at_first_build:
        command.append("--mlflow-at-first-build")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
    # The server answers each request on its own thread; XGBoost's OpenMP pool per prediction would
    # make every single-row InvokeEndpoint wait for all cores (tens of ms on a busy 2-core machine).
    env.setdefault("OMP_NUM_THREADS", "1")
    with (directory / "server.log").open("ab") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True, cwd=directory
        )
    ready = directory / "server.json"
    deadline = time.monotonic() + timeout
    while not ready.exists() or not healthy(json.loads(ready.read_text())["url"], timeout=0.5):
        if process.poll() is not None:
            tail = (directory / "server.log").read_text(errors="replace").strip().splitlines()[-3:]
            raise TwinError(f"the twin server exited with {process.returncode}: {' | '.join(tail)}")
        if time.monotonic() > deadline:
            process.terminate()
            raise TwinError(f"the twin server did not answer within {timeout:.0f}s", hint=f"see {directory}/server.log")
        time.sleep(0.1)
    described = json.loads(ready.read_text())
    url = described["url"]
    progress(
        f"twin server on {url} (pid {process.pid}, requests {requests_mode(url)}); "
        "provisioning the three accounts from infra/templates"
    )

    written: list[TwinState] = []  # once: when the automation account is ready for an `automation_ready` caller

    def write_state(made: Bootstrapped) -> TwinState:
        state = TwinState(
            url=url,
            pid=process.pid,
            region=config.region,
            accounts=accounts,
            approval_queue_url=made.approval_queue_url,
            bridge_dlq_url=made.bridge_dlq_url,
            started=time.time(),
            mlflow_url=described.get("mlflow_url") or "",
        )
        (directory / STATE_FILE).write_text(json.dumps(asdict(state), indent=2))
        written.append(state)
        return state

    def automation_done(made: Bootstrapped) -> None:
        if automation_ready is not None:
            automation_ready(write_state(made))

    try:
        made = bootstrap(
            config,
            automation_session(url, config.region),
            directory=directory,
            progress=progress,
            automation_ready=automation_done,
        )
    except BaseException:
        # `down` finds a server by its state file, which is written only when the automation account is ready
        # (and only for an `automation_ready` caller): stop the server here, or it runs on.
        (directory / STATE_FILE).unlink(missing_ok=True)
        os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        mlflow_server.stop_recorded(directory)
        raise
    return (written[0] if written else write_state(made)), True


def down(directory: Path, timeout: float = 10.0) -> bool:
    """Stop the twin and remove its directory. Returns whether a server was running."""
    state = read_state(directory)
    was_running = state is not None and alive(state.pid)
    if state is not None and was_running:
        os.killpg(state.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while alive(state.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if alive(state.pid):
            os.killpg(state.pid, signal.SIGKILL)
    # The twin stops its MLflow server as it exits; one it could not stop (killed) is stopped here.
    mlflow_server.stop_recorded(directory)
    if directory.exists():
        shutil.rmtree(directory)
    return was_running
