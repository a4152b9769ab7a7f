"""Helpers for the pipeline runner tests: write fixture YAML into a temp repo and run it there."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlops.pipelines.results import RunEvent, RunResult
from mlops.pipelines.runner import run_pipeline


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    return root


def write(root: Path, name: str, text: str) -> Path:
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


@pytest.fixture
def run(repo: Path) -> Callable[..., RunResult]:
    def runner(name: str, parameters: dict[str, Any] | None = None, **options: Any) -> RunResult:
        events: list[RunEvent] = options.pop("events", [])
        env = {"PATH": os.environ["PATH"], "HOME": str(repo), "LANG": "C.UTF-8"}
        return run_pipeline(
            repo / name,
            parameters,
            sources_dir=repo,
            work_dir=repo.parent / "work",
            env=env,
            run_id=7,
            progress=events.append,
            **options,
        )

    return runner
