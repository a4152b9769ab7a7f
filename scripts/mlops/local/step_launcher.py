"""Start the processes of processing and training steps, warm.

A step runs `python <script> <args>` under the container contract (its argv, environment and working
directory, its output in the job's log). Each step process would spend most of its life importing
pandas, scikit-learn, XGBoost and matplotlib (about 2 s of a 2.5 s Evaluate on two cores). So, as
a framework container with a warm interpreter would, the twin keeps one launcher process that has
imported them once (Python's `forkserver`, which preloads modules and forks a fresh process per
request from a single-threaded parent), and forks each step from it:
  - the step is its own process (own pid, memory, exit code, killed on timeout or stop);
  - its script runs as `__main__` in a module of its own, with `sys.argv`, `sys.path[0]`, the
    environment and the working directory that `python <script>` would have;
  - what it prints goes to the job's log; an exception prints its traceback there and exits 1;
    `sys.exit(n)` exits n.
Commands that are not `python <script>.py` start as plain subprocesses. `MLOPS_TWIN_WARM_STEPS=0`
turns the launcher off (every step a fresh interpreter), for comparison in bench/bench_twin.py.
The launcher starts at the twin's first pipeline write (CreatePipeline, UpdatePipeline or
StartPipelineExecution); `mlops local up` starts it at once, since a build usually follows, unless
`MLOPS_TWIN_WARM_STEPS=lazy` (the test suite's setting: most of its twins never run a step).
"""

from __future__ import annotations

import builtins
import multiprocessing
import multiprocessing.forkserver
import os
import subprocess
import sys
import types
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

# What the framework images' step scripts import; a module missing here is simply imported by the step.
PRELOAD = ("mlops.local.step_preload",)
PYTHON_NAMES = ("python", "python3")

_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(list(PRELOAD))


class StepProcess(Protocol):
    def wait(self, timeout: float | None = None) -> int: ...
    def poll(self) -> int | None: ...
    def terminate(self) -> None: ...
    def kill(self) -> None: ...


def python_script(command: list[str], python: str) -> tuple[str, list[str]] | None:
    """(script, arguments) when `command` is this Python running a script file, else None."""
    if len(command) < 2 or command[0] != python or not command[1].endswith(".py"):
        return None
    return command[1], command[2:]


def warm_enabled(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get("MLOPS_TWIN_WARM_STEPS", "1").strip().lower() not in ("0", "false", "no", "off")


def warm_eagerly(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether `mlops local up` starts the launcher before any build asks for it."""
    return warm_enabled(environ) and environ.get("MLOPS_TWIN_WARM_STEPS", "1").strip().lower() != "lazy"


def warm_up() -> None:
    """Start the launcher now (it imports the libraries in the background) instead of at the first step."""
    if warm_enabled():
        multiprocessing.forkserver.ensure_running()


def start(command: list[str], *, python: str, env: dict[str, str], cwd: Path, log: Path) -> StepProcess:
    """Start the step; its output goes to `log`."""
    script = python_script(command, python) if warm_enabled() else None
    if script is None:
        with log.open("wb") as sink:
            return subprocess.Popen(command, env=env, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT)
    process = _context.Process(target=_run_script, args=(script[0], script[1], env, str(cwd), str(log)))
    process.start()
    return _Forked(process, command)


class _Forked:
    def __init__(self, process: multiprocessing.process.BaseProcess, command: list[str]) -> None:
        self._process = process
        self._command = command

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        code = self._process.exitcode
        if code is None:
            raise subprocess.TimeoutExpired(self._command, timeout or 0.0)
        return code

    def poll(self) -> int | None:
        return self._process.exitcode

    def terminate(self) -> None:
        self._process.terminate()

    def kill(self) -> None:
        self._process.kill()


def _run_script(script: str, arguments: list[str], env: dict[str, str], cwd: str, log: str) -> None:
    """In the forked step process: become `python <script> <arguments>` and run it."""
    sink = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(sink, 1)
    os.dup2(sink, 2)
    os.close(sink)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = [script, *arguments]
    sys.path.insert(0, str(Path(script).resolve().parent))
    main = types.ModuleType("__main__")
    main.__file__ = script
    main.__dict__["__builtins__"] = builtins
    sys.modules["__main__"] = main  # pickling a class the script defines finds it, as under `python script.py`
    code = compile(Path(script).read_bytes(), script, "exec")
    exec(code, main.__dict__)  # noqa: S102 - the step's own script, as `python <script>` would run it
