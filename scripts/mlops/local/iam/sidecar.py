"""The Node sidecar that runs the policy engine: started and stopped with the twin, on 127.0.0.1.

It fails loudly: no Node, no installed packages, a sidecar that died or does not answer are
`IamEngineError`s, and the twin answers the request with an error instead of allowing it.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from mlops.local.errors import TwinError

SIDECAR_DIR = Path(__file__).resolve().parent / "sidecar"


class IamEngineError(TwinError):
    """The IAM engine (the Node sidecar) is missing, not running or gave no answer: nothing is allowed."""


class Sidecar:
    def __init__(self, process: subprocess.Popen[bytes], port: int, versions: dict[str, Any]) -> None:
        self.process = process
        self.port = port
        self.versions = versions
        self._local = threading.local()

    @classmethod
    def start(cls, *, node: str | None = None, timeout: float = 20.0) -> Sidecar:
        executable = node or os.environ.get("MLOPS_TWIN_NODE") or shutil.which("node")
        if not executable:
            raise IamEngineError(
                "the twin's IAM engine needs Node.js (>= 18), and `node` is not on PATH",
                hint="install Node.js and npm (e.g. `apt-get install nodejs npm`), run `make install`, "
                "or start the twin with MLOPS_TWIN_IAM=off (no IAM checks: for benchmarks only)",
            )
        if not (SIDECAR_DIR / "node_modules" / "@cloud-copilot" / "iam-simulate").is_dir():
            raise IamEngineError(
                f"the IAM engine's packages are not installed in {SIDECAR_DIR}/node_modules",
                hint="run `make install` (it runs `npm ci` there from the pinned package-lock.json)",
            )
        process = subprocess.Popen(
            [executable, str(SIDECAR_DIR / "server.mjs")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=SIDECAR_DIR,
        )
        if process.stdout is None:  # Popen with stdout=PIPE always has one; this narrows the type
            raise IamEngineError("the IAM engine sidecar was started without a stdout pipe")
        deadline = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if process.poll() is not None or remaining <= 0:
                process.kill()
                raise IamEngineError(
                    f"the IAM engine sidecar did not start within {timeout:.0f}s (exit code {process.poll()})",
                    hint=f"run `node {SIDECAR_DIR / 'server.mjs'}` to see its error; `make install` reinstalls it",
                )
            ready, _, _ = select.select([process.stdout], [], [], min(remaining, 0.5))
            if ready:
                line += os.read(process.stdout.fileno(), 4096)
        announced = json.loads(line)
        return cls(process, int(announced["port"]), announced)

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
            self._local.connection = connection
        return connection

    def call(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(payload)
        for attempt in (1, 2):  # a kept-alive connection the sidecar closed is reopened once
            connection = self._connection()
            try:
                connection.request("POST", path, body=body, headers={"content-type": "application/json"})
                response = connection.getresponse()
                text = response.read()
            except (OSError, http.client.HTTPException) as exc:
                connection.close()
                self._local.connection = None
                if attempt == 2 or self.process.poll() is not None:
                    raise IamEngineError(
                        f"the IAM engine sidecar on 127.0.0.1:{self.port} is not answering ({exc}); "
                        "the request is refused, not allowed",
                        hint="restart the twin: `mlops local down && mlops local up`",
                    ) from exc
                continue
            if response.status != 200:
                raise IamEngineError(f"the IAM engine failed on {path}: HTTP {response.status}: {text[:500]!r}")
            return dict(json.loads(text))
        raise AssertionError("unreachable")

    def stop(self) -> None:
        if self.process.poll() is None:
            if self.process.stdin is not None:
                self.process.stdin.close()  # the sidecar exits when its stdin closes
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        if self.process.stdout is not None:
            self.process.stdout.close()
