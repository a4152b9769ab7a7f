"""Read the running twin's IAM report over its loopback endpoint (`/_twin/iam`)."""

from __future__ import annotations

import json
import urllib.request
from typing import Any

from mlops.local.iam.sidecar import IamEngineError


def fetch_report(url: str, timeout: float = 60.0) -> dict[str, Any]:
    try:
        with urllib.request.urlopen(f"{url}/_twin/iam", timeout=timeout) as response:  # noqa: S310 - loopback
            return dict(json.loads(response.read()))
    except (OSError, ValueError) as exc:
        raise IamEngineError(
            f"could not read the IAM report from the twin at {url}: {exc}",
            hint="is the twin running? `mlops local status`; its log is server.log in the twin directory",
        ) from exc


def engine_status(url: str, timeout: float = 5.0) -> dict[str, Any]:
    """The IAM mode, engine and data versions the running twin reports on its health endpoint."""
    try:
        with urllib.request.urlopen(f"{url}/_twin/health", timeout=timeout) as response:  # noqa: S310 - loopback
            return dict(json.loads(response.read()).get("iam") or {})
    except (OSError, ValueError) as exc:
        raise IamEngineError(f"could not read the twin's health at {url}: {exc}") from exc
