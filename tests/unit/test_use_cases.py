"""Use cases as a seam: one folder each, every name derived, bad input refused at load with the key and the fix."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops.core.config import config_from_mapping
from mlops.core.errors import ConfigError
from mlops.core.use_cases import UseCaseNames, check_collisions, load_use_case


@pytest.fixture
def raw(repo_root: Path) -> dict[str, Any]:
    return yaml.safe_load((repo_root / "mlops.yaml").read_text())


@pytest.fixture
def folder(tmp_path: Path, repo_root: Path) -> Path:
    """A copy of the shipped use cases, to break one at a time."""
    target = tmp_path / "use_cases"
    shutil.copytree(repo_root / "model_build/use_cases", target)
    return target


def _edit(folder: Path, name: str, change: Any) -> None:
    file = folder / name / "use_case.yaml"
    document = yaml.safe_load(file.read_text())
    change(document)
    file.write_text(yaml.safe_dump(document))


def _load(raw: dict[str, Any], folder: Path, **kwargs: Any) -> Any:
    raw["use_cases"]["path"] = str(folder)
    return config_from_mapping(raw, **kwargs)


def test_each_use_case_derives_every_name_and_carries_its_model_settings(raw: dict[str, Any]) -> None:
    default = config_from_mapping(raw, profile="local")
    wine = config_from_mapping(raw, profile="local", environ={"MLOPS_USE_CASE": "wine"})
    assert default.use_cases.available == ["breast-cancer", "wine"]
    assert (default.project.name, default.build.pipeline_name, default.build.model_package_group) == (
        "breast-cancer",
        "breast-cancer-build",
        "breast-cancer",
    )
    assert (wine.project.name, wine.build.pipeline_name, wine.build.model_package_group) == (
        "wine",
        "wine-build",
        "wine",
    )
    assert (wine.deploy.staging.endpoint_name, wine.deploy.prod.endpoint_name) == ("wine-staging", "wine")
    assert wine.use_case.task == "multiclass" and wine.build.quality.metric == "accuracy"
    assert wine.build.hyperparameters["num_round"] == 100 and default.build.hyperparameters["num_round"] == 300
    assert wine.deploy.prod.monitor.drift_alarm is not None
    assert wine.deploy.prod.monitor.drift_alarm.features[0] == "alcohol"
    # What the two share: the platform (accounts, bucket, roles); what they do not: every name above.
    assert wine.build.artifact_bucket == default.build.artifact_bucket
    assert set(UseCaseNames("wine").all().values()).isdisjoint(UseCaseNames("breast-cancer").all().values())


def test_the_flag_beats_the_environment_which_beats_the_default(raw: dict[str, Any]) -> None:
    chosen = config_from_mapping(raw, environ={"MLOPS_USE_CASE": "wine"}, use_case="breast-cancer")
    assert chosen.use_case.name == "breast-cancer"


def test_an_unknown_use_case_names_the_ones_there_are(raw: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=r"use case 'iris' not found in .* \(use cases: breast-cancer, wine\)"):
        config_from_mapping(raw, use_case="iris")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("task"), r"use case 'wine' \(.*use_case.yaml\): task: found nothing \(the key is missing\)"),
        (
            lambda d: d.update(task="ranking"),
            r"task: found 'ranking'; expected .*'binary', 'multiclass' or 'regression'",
        ),
        (
            lambda d: d["quality"].update(metric="auc"),
            r"metric 'auc' is not a multiclass metric; choose one of accuracy",
        ),
        (lambda d: d.update(classes=[0, 1]), r"classes: a multiclass label is 0..K-1 with K >= 3"),
        (lambda d: d["hyperparameters"].update(max_depth=0), r"invalid xgboost hyperparameters: max_depth"),
        (lambda d: d["hyperparameters"].update(n_estimators=10), r"n_estimators: Extra inputs are not permitted"),
        (lambda d: d["data"].update(source="https://example.com/x.csv"), r"a source starts with 'sklearn:', 'file:'"),
        (lambda d: d["monitor"].update(drift_features=["acidity"]), r"\['acidity'\] are not among the features"),
        (lambda d: d.update(name="vino"), r"use case folder 'wine' declares name 'vino'"),
    ],
)
def test_a_bad_use_case_fails_at_load_with_the_use_case_key_value_and_fix(
    raw: dict[str, Any], folder: Path, change: Any, message: str
) -> None:
    _edit(folder, "wine", change)
    with pytest.raises(ConfigError, match=message) as raised:
        _load(raw, folder, use_case="wine")
    assert "wine" in str(raised.value) and raised.value.hint


def test_a_regression_gates_errors_from_above_and_has_no_classes(folder: Path) -> None:
    def to_regression(d: dict[str, Any]) -> None:
        d.update(task="regression", quality={"metric": "rmse", "threshold": 60.0})
        d.pop("classes")

    _edit(folder, "wine", to_regression)
    assert load_use_case(folder, "wine").label_classes is None
    _edit(folder, "wine", lambda d: d.update(classes=[0, 1, 2]))
    with pytest.raises(ConfigError, match="a regression has no classes"):
        load_use_case(folder, "wine")


def test_names_the_policies_cannot_tell_apart_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"'wine' and 'wine-red' collide: 'wine''s resource patterns \(wine-\*\)"):
        check_collisions(["breast-cancer", "wine", "wine-red"])
    # `x-staging` would also take x's staging endpoint name: the same rule catches it.
    with pytest.raises(
        ConfigError, match=r"'x' \(staging endpoint\) and 'x-staging' \(s3 prefix\) derive the same name"
    ):
        check_collisions(["x", "x-staging"])
    check_collisions(["wine", "winery", "breast-cancer"])  # a shared prefix without the hyphen is fine


def test_a_colliding_folder_is_refused_whichever_use_case_is_chosen(raw: dict[str, Any], folder: Path) -> None:
    shutil.copytree(folder / "wine", folder / "wine-red")
    _edit(folder, "wine-red", lambda d: d.update(name="wine-red"))
    with pytest.raises(ConfigError, match="'wine' and 'wine-red' collide"):
        _load(raw, folder, use_case="breast-cancer")


@pytest.mark.parametrize(
    "path",
    [("build", "pipeline_name"), ("build", "model_package_group"), ("deploy", "prod", "endpoint_name"), ("project",)],
)
def test_a_derived_name_set_in_mlops_yaml_is_refused(raw: dict[str, Any], path: tuple[str, ...]) -> None:
    node = raw
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = {"name": "other"} if path == ("project",) else "other"
    with pytest.raises(ConfigError, match="comes from the use case") as raised:
        config_from_mapping(raw)
    assert "derived from the use case's name" in str(raised.value.hint)
