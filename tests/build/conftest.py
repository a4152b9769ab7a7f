from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlops.core.config import Config, load_config
from model_build.build import RenderedBuild, render

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def local_config() -> Config:
    return load_config(REPO_ROOT / "mlops.yaml", profile="local", environ={})


@pytest.fixture(scope="session")
def rendered(local_config: Config) -> RenderedBuild:
    """One real render per session (the SDK import costs seconds); tests must not mutate it."""
    return render(local_config, "main")


@pytest.fixture(scope="session")
def definition(rendered: RenderedBuild) -> dict[str, Any]:
    return json.loads(rendered.definition)


def steps_by_name(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}

    def visit(steps: list[dict[str, Any]]) -> None:
        for step in steps:
            found[step["Name"]] = step
            arguments = step.get("Arguments", {})
            if step["Type"] == "Condition":
                visit(arguments.get("IfSteps", []))
                visit(arguments.get("ElseSteps", []))

    visit(definition["Steps"])
    return found
