"""Ending an `mlops` command without tearing its interpreter down object by object.

When a Python process exits, the interpreter first joins its non-daemon threads and runs the `atexit`
callbacks (logging's flush, MLflow's and boto3's clean-ups, `weakref.finalize` hooks), then clears every
module and frees every object one by one. After a command that imported MLflow or the SageMaker SDK that
last part alone takes 0.3 to 0.5 s on this project's 2-core reference machine (`import mlflow.tracking`:
1.68 s to exit normally, 1.29 s with `os._exit` after the imports), and an Azure Pipelines job waits for it
at every `mlops` step. Nothing in it is observable: the operating system reclaims the memory and closes the
descriptors at once.

So `install()` registers, before the command's imports, an `atexit` callback that ends the process with
`os._exit`. `atexit` runs callbacks in the reverse order of registration, so this one runs after every
callback registered later, i.e. after all of them (the technique Instagram described for its uWSGI
workers). It does nothing until `arm(code)` is called, which only the console entry points do
(`mlops.cli.run`): a test or a notebook that imports the CLI and calls `main()` keeps its normal exit.

It also stays disarmed when a coverage measurement runs in the process: coverage saves its data from an
`atexit` callback registered at interpreter start-up, before this one, which `os._exit` would skip.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys

_armed: list[int] = []  # the exit code, once armed
_installed: list[bool] = []


def _exit_now() -> None:
    if not _armed:
        return
    code = _armed[-1]
    try:
        sys.stdout.flush()
    except (OSError, ValueError) as exc:
        # What CPython does when flushing stdout fails at exit (a closed pipe, a full disk): exit status 120.
        code = code or 120
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.write(f"error: the command's output could not be written: {exc}\n")
    try:
        sys.stderr.flush()
    except (OSError, ValueError):
        code = code or 120
    os._exit(code)


def install() -> None:
    """Register the callback once; call it before the imports that register their own."""
    if not _installed:
        atexit.register(_exit_now)
        _installed.append(True)


def _coverage_measures() -> bool:
    coverage = sys.modules.get("coverage")
    return coverage is not None and coverage.Coverage.current() is not None


def arm(code: int) -> None:
    """End this process with `code` after the other `atexit` callbacks, skipping the interpreter's teardown."""
    if not _coverage_measures():
        _armed.append(code)
