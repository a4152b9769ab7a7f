"""A twin's recorded state, whether it runs, and the environment that points at it.

Importable without the twin's server (moto, seconds of imports): every `mlops` command under the `local`
profile reads this to send its AWS calls to a running twin (mlops.cli.root), and a pipeline step's command
must not pay for the server to do so. `mlops.local.twin` starts and stops the server and re-exports these.
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from mlops.local.errors import TwinError

STATE_FILE = "twin.json"
TWIN_SECRET = "twin"  # noqa: S105 - the twin accepts any secret; this one is public by design
TWIN_ACCESS_KEY = "twin-automation"  # unknown to moto's IAM: requests with it act as the automation account


# Keys the twin uses where an AWS service acts for the account (Lambda assuming a function's role,
# SageMaker assuming a job's role): `twin-service-lambda` calls as the principal lambda.amazonaws.com.
SERVICE_KEY_PREFIX = "twin-service-"


def root_access_key(account: str) -> str:
    """The twin's root credentials of one account (server.py maps them to the account's id)."""
    return f"twin-{account}"


def service_access_key(service: str, account: str | None = None) -> str:
    """The access key with which the twin acts as `<service>.amazonaws.com` (e.g. "lambda").

    With `account`, the service acts for that account (aws:SourceAccount), e.g. SageMaker running a
    monitoring job in the prod account; without it, for the account the request is mapped to.
    """
    return f"{SERVICE_KEY_PREFIX}{service}" + (f".{account}" if account else "")


def service_key_account(access_key: str) -> str | None:
    """The account a service access key acts for, if it names one."""
    if not access_key.startswith(SERVICE_KEY_PREFIX):
        return None
    _, _, account = access_key.removeprefix(SERVICE_KEY_PREFIX).partition(".")
    return account or None


@dataclass(frozen=True)
class TwinState:
    url: str
    pid: int
    region: str
    accounts: dict[str, str]
    approval_queue_url: str
    bridge_dlq_url: str
    started: float
    mlflow_url: str = ""  # the twin's MLflow tracking server ("" when started without one)


def read_state(directory: Path) -> TwinState | None:
    path = directory / STATE_FILE
    if not path.exists():
        return None
    return TwinState(**json.loads(path.read_text()))


def alive(pid: int) -> bool:
    """Whether the process runs. A server this process started (`mlops demo`, the tests) stays a zombie once it
    exits until it is reaped: reap it here, or `down` would wait out its whole timeout for a dead process."""
    with contextlib.suppress(ChildProcessError):
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_twin/health", timeout=timeout) as response:  # noqa: S310 - loopback
            return bool(response.status == 200)
    except OSError:
        return False


def requests_mode(url: str) -> str:
    """How the running twin treats AWS requests: `strict` (validated against botocore's model) or `lenient`."""
    with urllib.request.urlopen(f"{url}/_twin/health", timeout=2.0) as response:  # noqa: S310 - loopback
        return str(json.loads(response.read()).get("requests", "unknown"))


def running(directory: Path) -> TwinState | None:
    state = read_state(directory)
    if state is None or not alive(state.pid) or not healthy(state.url):
        return None
    return state


def stopped(directory: Path) -> TwinState | None:
    """The state of a twin that was started here and is gone now (killed, crashed, machine restarted)."""
    state = read_state(directory)
    if state is None or (alive(state.pid) and healthy(state.url)):
        return None
    return state


def environment(state: TwinState, account: str) -> dict[str, str]:
    """The variables that make the AWS CLI, boto3 or a notebook talk to the twin as `account`."""
    if account not in state.accounts:
        raise TwinError(f"unknown account {account!r}; expected one of {sorted(state.accounts)}")
    env = {
        "AWS_ENDPOINT_URL": state.url,
        "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": state.url,
        "AWS_DEFAULT_REGION": state.region,
        "AWS_REGION": state.region,
        "MLOPS_PROFILE": "local",
    }
    if state.mlflow_url:
        env["MLFLOW_TRACKING_URI"] = state.mlflow_url
    if account == "automation":
        return {**env, "AWS_ACCESS_KEY_ID": TWIN_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": TWIN_SECRET}
    # The account's administrator (the twin's root credentials of it): the templates' roles trust only the
    # Azure DevOps service connections (mlops/local/pipeline_credentials.py) and their own services.
    return {**env, "AWS_ACCESS_KEY_ID": root_access_key(account), "AWS_SECRET_ACCESS_KEY": TWIN_SECRET}
