"""The definition render cache: keyed on everything that changes a definition, and never trusted blindly."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from mlops.core.config import Config
from model_build import build, render_cache

CONFIG: dict[str, Any] = {"region": "us-east-1", "build": {"instance_type": "ml.m5.large"}}
ARGUMENTS: dict[str, Any] = {"pipeline_name": "p", "code_uris": {"train": "s3://b/code/1/"}}


class Renderer:
    def __init__(self, text: str = '{"Version": "2020-12-01"}') -> None:
        self.text = text
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        return self.text


def test_a_hit_returns_the_stored_definition_without_rendering(tmp_path: Path) -> None:
    key = render_cache.render_key(CONFIG, ARGUMENTS)
    first, second = Renderer(), Renderer("never used")
    assert render_cache.cached_render(key, first, tmp_path) == (first.text, False)
    assert render_cache.cached_render(key, second, tmp_path) == (first.text, True)
    assert (first.calls, second.calls) == (1, 0)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda c, a: c["build"].update(instance_type="ml.m5.xlarge"), id="config"),
        pytest.param(lambda c, a: a.update(pipeline_name="p-feature"), id="pipeline-name"),
        pytest.param(lambda c, a: a["code_uris"].update(train="s3://b/code/2/"), id="code"),
    ],
)
def test_any_changed_input_is_another_key(change: Any) -> None:
    config, arguments = json.loads(json.dumps(CONFIG)), json.loads(json.dumps(ARGUMENTS))
    change(config, arguments)
    assert render_cache.render_key(config, arguments) != render_cache.render_key(CONFIG, ARGUMENTS)


def test_the_renderer_source_and_the_sdk_versions_are_part_of_the_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = render_cache.render_key(CONFIG, ARGUMENTS)
    edited = tmp_path / "pipeline.py"
    edited.write_text(render_cache.PIPELINE_SOURCE.read_text() + "\n# an edit\n")
    monkeypatch.setattr(render_cache, "PIPELINE_SOURCE", edited)
    assert render_cache.render_key(CONFIG, ARGUMENTS) != before
    monkeypatch.undo()
    real_version = render_cache._version
    monkeypatch.setattr(
        render_cache, "_version", lambda name: "99.0" if name == "sagemaker-mlops" else real_version(name)
    )
    assert render_cache.render_key(CONFIG, ARGUMENTS) != before


@pytest.mark.parametrize(
    "content",
    ["{not json", json.dumps({"definition": "tampered", "sha256": "0" * 64}), json.dumps(["a list"])],
    ids=["partial", "hash-mismatch", "foreign"],
)
def test_an_unreadable_or_tampered_entry_is_rendered_again(tmp_path: Path, content: str) -> None:
    key = render_cache.render_key(CONFIG, ARGUMENTS)
    (tmp_path / f"{key}.json").write_text(content)
    renderer = Renderer()
    assert render_cache.cached_render(key, renderer, tmp_path) == (renderer.text, False)
    assert render_cache.cached_render(key, Renderer("x"), tmp_path) == (renderer.text, True)


def test_the_cache_location_and_the_switch() -> None:
    assert render_cache.cache_dir({"MLOPS_CACHE_DIR": "/c"}) == Path("/c/definitions")
    assert render_cache.cache_dir({"XDG_CACHE_HOME": "/x"}) == Path("/x/mlops/definitions")
    assert render_cache.cache_dir({"MLOPS_RENDER_CACHE": "0", "MLOPS_CACHE_DIR": "/c"}) is None
    assert render_cache.cache_dir({"HOME": "/h"}) == Path.home() / ".cache" / "mlops" / "definitions"


@pytest.mark.slow
def test_a_cached_render_equals_a_fresh_one(local_config: Config) -> None:
    fresh = build.render(local_config, "main", cache=False)
    first = build.render(local_config, "main")
    cached = build.render(local_config, "main")
    assert fresh.definition == first.definition == cached.definition
    assert cached.uploads == fresh.uploads
