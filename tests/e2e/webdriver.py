"""A minimal W3C WebDriver client for headless Chromium through chromedriver (Debian's `chromium-driver`).

Only what the MLflow UI test needs: a session, navigation, element lookup with the driver's implicit wait
(the browser waits for the page, the test never sleeps) and scripts. It speaks the W3C protocol over
loopback HTTP with the standard library, so the test needs no extra Python dependency.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

CHROMIUM = "/usr/bin/chromium"
ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C web element identifier key
# Headless flags that work on a closed network (/work/.library/env/machines/python.md): without the
# background-networking ones Chromium keeps dialling Google's hosts.
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


class WebDriverError(Exception):
    pass


def browser_missing() -> str | None:
    """Why the browser cannot run here, or None."""
    if shutil.which("chromedriver") is None or not shutil.which(CHROMIUM):
        return "Chromium is not installed (Debian packages chromium and chromium-driver; `make install` adds them)"
    return None


class Session:
    def __init__(self, base: str, session_id: str) -> None:
        self.base = f"{base}/session/{session_id}"

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return _request(method, f"{self.base}{path}", body)

    def get(self, url: str) -> None:
        self._call("POST", "/url", {"url": url})

    def find(self, using: str, value: str) -> str:
        """Waits up to the implicit timeout for the element (the driver polls, in the browser)."""
        return str(self._call("POST", "/element", {"using": using, "value": value})[ELEMENT])

    def run(self, script: str, *args: Any) -> Any:
        return self._call("POST", "/execute/sync", {"script": script, "args": list(args)})

    def run_async(self, script: str, *args: Any) -> Any:
        return self._call("POST", "/execute/async", {"script": script, "args": list(args)})

    def element(self, element_id: str) -> dict[str, str]:
        return {ELEMENT: element_id}


def _request(method: str, url: str, body: dict[str, Any] | None = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())["value"]
    except urllib.error.HTTPError as exc:
        detail = json.loads(exc.read() or b"{}").get("value", {})
        raise WebDriverError(f"{method} {url}: {detail.get('error')}: {detail.get('message', '')[:500]}") from exc


@contextlib.contextmanager
def chromium(timeout_seconds: float = 60) -> Iterator[Session]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    profile = tempfile.mkdtemp(prefix="mlops-chromium-")
    driver = subprocess.Popen(["chromedriver", f"--port={port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:  # chromedriver listens within a few hundred ms; its /status says when
            with contextlib.suppress(OSError, WebDriverError):
                if _request("GET", f"{base}/status").get("ready"):
                    break
            if time.monotonic() > deadline or driver.poll() is not None:
                raise WebDriverError("chromedriver did not become ready within 30s")
            time.sleep(0.05)
        options = {"binary": CHROMIUM, "args": [*FLAGS, f"--user-data-dir={profile}", "--window-size=1400,1000"]}
        created = _request(
            "POST", f"{base}/session", {"capabilities": {"alwaysMatch": {"goog:chromeOptions": options}}}
        )
        session = Session(base, created["sessionId"])
        wait_ms = int(timeout_seconds * 1000)
        session._call("POST", "/timeouts", {"implicit": wait_ms, "script": wait_ms, "pageLoad": wait_ms})
        try:
            yield session
        finally:
            session._call("DELETE", "")
    finally:
        driver.terminate()
        try:
            driver.wait(timeout=10)
        except subprocess.TimeoutExpired:
            driver.kill()
            driver.wait()
        shutil.rmtree(profile, ignore_errors=True)
