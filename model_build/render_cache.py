"""Render the SageMaker definition once per content hash.

Rendering needs the SageMaker SDK, whose import alone costs about 5 s; the build pipeline renders the
same definition three times (`build definition`, `upsert`, `run`) in three processes. The definition is
a pure function of its inputs (a test proves two processes render byte-identical JSON), so it is
cached under the sha256 of everything that can change it:
  - the whole validated config and the render arguments (pipeline name, code and data URIs, prefix);
  - the source of `model_build/pipeline.py`, the only module that builds the definition;
  - the installed versions of the SDK distributions and of botocore (whose models the SDK serialises
    against), and the Python minor version.
The cache lives in `MLOPS_CACHE_DIR`, else `$XDG_CACHE_HOME/mlops`, else `~/.cache/mlops`;
`MLOPS_RENDER_CACHE=0` turns it off. Entries are written atomically; an unreadable entry is ignored
and rendered again, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

PIPELINE_SOURCE = Path(__file__).resolve().parent / "pipeline.py"
# The SageMaker SDK v3 meta-package and the parts the definition comes from, plus what they serialise with.
RENDER_DISTRIBUTIONS = (
    "sagemaker",
    "sagemaker-core",
    "sagemaker-train",
    "sagemaker-serve",
    "sagemaker-mlops",
    "boto3",
    "botocore",
    "pydantic",
)


def cache_dir(environ: Mapping[str, str] = os.environ) -> Path | None:
    """Where entries live, or None when the cache is turned off."""
    if environ.get("MLOPS_RENDER_CACHE", "1").strip().lower() in ("0", "false", "no", "off"):
        return None
    if environ.get("MLOPS_CACHE_DIR"):
        return Path(environ["MLOPS_CACHE_DIR"]) / "definitions"
    base = Path(environ["XDG_CACHE_HOME"]) if environ.get("XDG_CACHE_HOME") else Path.home() / ".cache"
    return base / "mlops" / "definitions"


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def render_key(config_dump: Mapping[str, Any], arguments: Mapping[str, Any]) -> str:
    inputs = {
        "config": config_dump,
        "arguments": arguments,
        "renderer_sha256": hashlib.sha256(PIPELINE_SOURCE.read_bytes()).hexdigest(),
        "distributions": {name: _version(name) for name in RENDER_DISTRIBUTIONS},
        "python": list(sys.version_info[:2]),
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True, default=str).encode()).hexdigest()


def cached_render(key: str, render: Callable[[], str], directory: Path | None) -> tuple[str, bool]:
    """Return (definition, hit). A miss renders and stores the result."""
    if directory is None:
        return render(), False
    entry = directory / f"{key}.json"
    try:
        stored = json.loads(entry.read_text(encoding="utf-8"))
        definition = stored["definition"]
        if isinstance(definition, str) and hashlib.sha256(definition.encode()).hexdigest() == stored["sha256"]:
            return definition, True
    except (OSError, ValueError, KeyError, TypeError):
        pass  # missing, partial or foreign: render again and overwrite it
    definition = render()
    _store(entry, {"definition": definition, "sha256": hashlib.sha256(definition.encode()).hexdigest()})
    return definition, False


def _store(entry: Path, payload: dict[str, str]) -> None:
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        handle, partial = tempfile.mkstemp(dir=entry.parent, prefix=entry.name, suffix=".partial")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(payload, out)
        os.replace(partial, entry)  # atomic: concurrent renders of one key write the same bytes
    except OSError as exc:
        # A read-only or full cache location costs speed, not correctness: say so once and go on.
        print(f"warning: could not store the rendered definition in {entry.parent}: {exc}", file=sys.stderr)
