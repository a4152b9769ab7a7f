"""Where a twin keeps its state: importable without the twin's server (moto), so a command that only needs
the folder (the MLflow address for `mlops` in a pipeline step) does not pay seconds of imports."""

from __future__ import annotations

import json
import os
from pathlib import Path

SERVER_FILE = "server.json"  # written by the twin server once it listens (mlops.local.server.main)


def twin_dir(config_file: Path | None) -> Path:
    override = os.environ.get("MLOPS_TWIN_DIR")
    if override:
        return Path(override)
    base = config_file.parent if config_file else Path.cwd()
    return base / ".mlops" / "twin"


def mlflow_url(directory: Path) -> str:
    """The twin's MLflow address as its server recorded it, or "" (no twin here, or one without MLflow)."""
    try:
        return str(json.loads((directory / SERVER_FILE).read_text()).get("mlflow_url") or "")
    except (OSError, ValueError):
        return ""
