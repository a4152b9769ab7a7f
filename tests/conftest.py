"""Shared test set-up: no network, no real AWS, no ambient configuration.

The socket guard refuses every connection that does not go to loopback, so no test can reach the
internet or a real AWS endpoint, whatever the code under test tries. Servers that tests start
themselves listen on 127.0.0.1 and stay reachable.
"""

from __future__ import annotations

import atexit
import ipaddress
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent

# Set before any test module imports boto3 or the SageMaker SDK.
for _name in list(os.environ):
    if _name.startswith(("AWS_ENDPOINT_URL", "MLOPS_", "AWS_PROFILE", "BUILD_", "SYSTEM_", "TF_BUILD")):
        os.environ.pop(_name)
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "SAGEMAKER_VALIDATE_ROLE": "false",
        "MPLBACKEND": "Agg",
        # The definition render cache of this test process (and of the `mlops` processes it starts):
        # never the developer's, never shared between pytest-xdist workers.
        "MLOPS_CACHE_DIR": tempfile.mkdtemp(prefix="mlops-test-cache-"),
        # Most twins the tests start never run a step: start the step launcher at the first pipeline write,
        # not at `mlops local up` (mlops/local/step_launcher.py).
        "MLOPS_TWIN_WARM_STEPS": "lazy",
        # Likewise the MLflow server (seconds of CPU to start): at the first pipeline write (mlflow_server.py).
        "MLOPS_TWIN_MLFLOW": "lazy",
    }
)
atexit.register(shutil.rmtree, os.environ["MLOPS_CACHE_DIR"], True)

# As every `mlops` process does (mlops/core/aws.py): the test process's many sessions share one parse of
# botocore's data files, whatever module creates the first one.
from mlops.core import botocore_data, gc_policy  # noqa: E402  (after the environment above)

botocore_data.share()
gc_policy.tune()  # as `mlops` itself runs (mlops/core/gc_policy.py)


class NetworkBlocked(RuntimeError):
    pass


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _is_loopback(address: object) -> bool:
    if isinstance(address, (str, bytes)):
        return True  # AF_UNIX paths are local
    if not (isinstance(address, tuple) and address):
        return False
    host = str(address[0])
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: object) -> None:
    if not _is_loopback(address):
        raise NetworkBlocked(f"test tried to connect to {address!r}; tests may only reach 127.0.0.1")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if not _is_loopback(address):
        raise NetworkBlocked(f"test tried to connect to {address!r}; tests may only reach 127.0.0.1")
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host: object, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
    text = host.decode() if isinstance(host, bytes) else str(host)
    if host is not None and not _is_loopback((text,)):
        raise NetworkBlocked(f"test tried to resolve {text!r}; tests may only reach 127.0.0.1")
    return _real_getaddrinfo(host, *args, **kwargs)  # type: ignore[arg-type]


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
socket.getaddrinfo = _guarded_getaddrinfo


@pytest.fixture(scope="module", autouse=True)
def _survivors_frozen() -> None:
    """Before each module: what earlier modules left alive (imports, the SDK, caches) is exempt from the
    collector's full walks (gc.freeze), which otherwise took about a quarter of a twin module's time."""
    gc_policy.freeze_survivors()


@pytest.fixture
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in list(os.environ):
        if name.startswith("MLOPS") and name not in ("MLOPS_CACHE_DIR", "MLOPS_TWIN_WARM_STEPS", "MLOPS_TWIN_MLFLOW"):
            monkeypatch.delenv(name)
    yield


@pytest.fixture
def restore_environ() -> Iterator[None]:
    """For code that points its own process at the twin (as `mlops` commands do): undo it afterwards.

    Restores os.environ directly: a monkeypatch.delenv here would re-create the leaked variable when
    monkeypatch undoes its changes."""
    before = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(before)


@pytest.fixture
def twin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, restore_environ: None) -> Iterator[Path]:
    """A directory for a background twin that `mlops` (via MLOPS_TWIN_DIR) will use; stopped afterwards."""
    from mlops.local.twin import down

    directory = tmp_path / "twin"
    monkeypatch.setenv("MLOPS_TWIN_DIR", str(directory))
    monkeypatch.setenv("MLOPS_CONFIG", str(REPO_ROOT / "mlops.yaml"))
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    # The twin's MLflow server costs ~5 s of CPU to start: only the tests that check it turn it on.
    monkeypatch.setenv("MLOPS_TWIN_MLFLOW", "0")
    try:
        yield directory
    finally:
        down(directory)


# The modules that run the twin end to end take most of the suite's time: start them first, so that
# pytest-xdist's workers (which take whole files, in collection order with the Makefile's --no-loadscope-reorder;
# by default they would take the files with most tests first) finish together.
_LONGEST_FIRST = ("tests/e2e/", "tests/local/")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def weight(item: pytest.Item) -> int:
        path = Path(str(item.path)).relative_to(REPO_ROOT).as_posix()
        return next((i for i, prefix in enumerate(_LONGEST_FIRST) if path.startswith(prefix)), len(_LONGEST_FIRST))

    items.sort(key=weight)  # stable: the order within a module, and between the rest, is kept
