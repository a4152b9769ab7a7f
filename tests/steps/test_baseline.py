"""Model Monitor baselines (model_build/steps/baseline.py): formats, the drift check, bad input."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model_build import data
from model_build.build import CODE_BUNDLES, STEPS_DIR
from model_build.steps import baseline
from tests.steps.pipeline_run import shipped_use_case, write_spec


@pytest.fixture(scope="module")
def training() -> pd.DataFrame:
    frame = pd.read_csv(__import__("io").BytesIO(data.dataset_csv_bytes()))
    return frame.drop(columns=[data.LABEL_COLUMN])


@pytest.fixture(scope="module")
def baselined(training: pd.DataFrame) -> tuple[dict, dict]:  # type: ignore[type-arg]
    stats = baseline.data_quality_statistics(training)
    return stats, baseline.data_quality_constraints(stats)


def test_same_data_has_no_violation(training: pd.DataFrame, baselined: tuple[dict, dict]) -> None:  # type: ignore[type-arg]
    stats, constraints = baselined
    current, violations, distances = baseline.check_data_quality(training.sample(200, random_state=1), *baselined)
    assert violations == []
    assert (
        max(distances.values()) < constraints["monitoring_config"]["distribution_constraints"]["comparison_threshold"]
    )
    assert current["dataset"]["item_count"] == 200 and stats["dataset"]["item_count"] == len(training)


def test_shifted_feature_is_a_baseline_drift_violation(training: pd.DataFrame, baselined: tuple[dict, dict]) -> None:  # type: ignore[type-arg]
    shifted = training.sample(200, random_state=2).copy()
    shifted["mean radius"] = shifted["mean radius"] * 1.6
    _, violations, distances = baseline.check_data_quality(shifted, *baselined)
    assert [(v["feature_name"], v["constraint_check_type"]) for v in violations] == [
        ("mean radius", "baseline_drift_check")
    ]
    assert "exceeds threshold: 0.1" in violations[0]["description"]
    assert distances["mean radius"] > 0.5


def test_missing_extra_incomplete_and_mistyped_columns(training: pd.DataFrame, baselined: tuple[dict, dict]) -> None:  # type: ignore[type-arg]
    rows = training.sample(100, random_state=3).copy()
    rows = rows.drop(columns=["mean texture"])
    rows["surprise"] = 1.0
    rows.loc[rows.index[:30], "mean area"] = np.nan
    rows["worst symmetry"] = "n/a"
    _, violations, _ = baseline.check_data_quality(rows, *baselined)
    found = {(v["feature_name"], v["constraint_check_type"]) for v in violations}
    assert ("mean texture", "missing_column_check") in found
    assert ("surprise", "extra_column_check") in found
    assert ("mean area", "completeness_check") in found
    assert ("worst symmetry", "data_type_check") in found


def test_empty_data_is_refused(baselined: tuple[dict, dict]) -> None:  # type: ignore[type-arg]
    with pytest.raises(baseline.BaselineError, match="at least one row"):
        baseline.check_data_quality(pd.DataFrame({"mean radius": []}), *baselined)
    with pytest.raises(baseline.BaselineError, match="at least one feature column"):
        baseline.data_quality_statistics(pd.DataFrame())


def test_model_quality_baseline_formats() -> None:
    report = {
        "binary_classification_metrics": {"auc": {"value": 0.99, "standard_deviation": "NaN"}, "f1": {"value": 0.9}},
        "test_rows": 114,
    }
    stats = baseline.model_quality_statistics(report)
    assert stats == {
        "version": 0.0,
        "dataset": {"item_count": 114},
        "binary_classification_metrics": report["binary_classification_metrics"],
    }
    constraints = baseline.model_quality_constraints(report)["binary_classification_constraints"]
    assert constraints["auc"] == {"threshold": pytest.approx(0.94), "comparison_operator": "LessThanThreshold"}
    assert set(constraints) == {"auc", "f1"}
    with pytest.raises(baseline.BaselineError, match="binary_classification_metrics"):
        baseline.model_quality_statistics({"test_rows": 3})


def test_preprocess_runs_from_its_code_bundle_alone(tmp_path: Path) -> None:
    """As in the container: the bundle's files in one directory, run as a script (no package import)."""
    code = tmp_path / "code"
    code.mkdir()
    for name in CODE_BUNDLES["preprocess"]:
        shutil.copy(STEPS_DIR / name, code / name)
    # The build adds the use case's step spec to every bundle (UseCase.step_spec() as use_case.json).
    write_spec(code, shipped_use_case("breast-cancer"))
    data.write_dataset(tmp_path / "input")
    result = subprocess.run(
        [
            sys.executable,
            str(code / "preprocess.py"),
            "--input-dir",
            str(tmp_path / "input"),
            "--output-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    constraints = json.loads((tmp_path / "baseline" / "constraints.json").read_text())
    assert len(constraints["features"]) == len(data.FEATURE_NAMES)
