"""Every task x framework through preprocess -> train -> evaluate -> inference, on its bundled data set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mlops.core import use_cases
from model_build.steps import baseline
from tests.deploy.serving import load_handlers
from tests.steps.pipeline_run import StepRun, run_all, run_evaluate, use_case, write_spec

SMALL = {
    "xgboost": {"num_round": "30", "max_depth": "3", "eta": "0.3", "early_stopping_rounds": "5"},
    "sklearn": {"n_estimators": "15", "max_depth": "6"},
}
COMBINATIONS = [
    ("binary", "xgboost", "breast_cancer"),
    ("binary", "sklearn", "breast_cancer"),
    ("multiclass", "xgboost", "wine"),
    ("multiclass", "sklearn", "iris"),
    ("regression", "xgboost", "diabetes"),
    ("regression", "sklearn", "diabetes"),
]
# A floor each model clears by a margin on its test split: the figures are the served model's, so a
# wrong label mapping, class order or objective shows up here.
FLOORS = {"binary": ("auc", 0.95), "multiclass": ("accuracy", 0.85), "regression": ("r2", 0.25)}
MODEL_FILES = {"xgboost": "xgboost-model.json", "sklearn": "model.joblib"}
# Model Monitor's constraints.json section per problem type.
CONSTRAINTS_SECTION = {
    "binary": "binary_classification_constraints",
    "multiclass": "multiclass_classification_constraints",
    "regression": "regression_constraints",
}


@pytest.fixture(scope="module", params=COMBINATIONS, ids=[f"{t}-{f}-{d}" for t, f, d in COMBINATIONS])
def run(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[StepRun, str, str]:
    task, framework, dataset = request.param
    case = use_case(task, framework, dataset)
    return run_all(tmp_path_factory.mktemp(f"{task}-{framework}"), case, SMALL[framework]), task, framework


def test_the_step_constants_are_the_use_case_contracts() -> None:
    # The step containers cannot import mlops; their copies must not drift from the contract.
    assert baseline.MODEL_QUALITY_SECTION == use_cases.MODEL_QUALITY_SECTION
    assert baseline.MODEL_QUALITY_METRICS == use_cases.METRICS
    assert baseline.LOWER_IS_BETTER == use_cases.LOWER_IS_BETTER


def test_evaluation_is_model_monitors_model_quality_format_per_task(run: tuple[StepRun, str, str]) -> None:
    step_run, task, _ = run
    report = step_run.report()
    section = report[use_cases.MODEL_QUALITY_SECTION[task]]
    for metric in use_cases.METRICS[task]:
        assert section[metric]["standard_deviation"] == "NaN", metric
        assert np.isfinite(section[metric]["value"]), metric
    test = pd.read_csv(step_run.test_csv)
    assert report["task"] == task and report["test_rows"] == len(test)
    assert report["classes"] == {"binary": [0, 1], "multiclass": [0, 1, 2], "regression": None}[task]
    metric, floor = FLOORS[task]
    assert section[metric]["value"] > floor
    if task == "multiclass":
        matrix = section["confusion_matrix"]
        assert sorted(matrix) == ["0", "1", "2"] and sum(sum(row.values()) for row in matrix.values()) == len(test)
        assert (step_run.evaluation_dir / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    if task == "regression":
        assert section["rmse"]["value"] == pytest.approx(section["mse"]["value"] ** 0.5)
        assert (step_run.evaluation_dir / "predicted_vs_actual.png").read_bytes()[:4] == b"\x89PNG"
    # Classifiers' splits are stratified: every class is in the test split in about its overall share.
    if task != "regression":
        assert sorted(test["label"].unique()) == report["classes"]


def test_model_quality_baseline_operators_name_the_violation(run: tuple[StepRun, str, str]) -> None:
    step_run, task, _ = run
    report = step_run.report()
    constraints = json.loads((step_run.evaluation_dir / "model_quality" / "constraints.json").read_text())
    section = constraints[CONSTRAINTS_SECTION[task]]
    values = report[use_cases.MODEL_QUALITY_SECTION[task]]
    assert set(section) == set(use_cases.METRICS[task])
    for metric, bound in section.items():
        if metric in use_cases.LOWER_IS_BETTER:
            # An error violates when it grows above the bound, 5 % over the baseline's value.
            assert bound["comparison_operator"] == "GreaterThanThreshold"
            assert bound["threshold"] == pytest.approx(values[metric]["value"] * 1.05)
        else:
            assert bound["comparison_operator"] == "LessThanThreshold"
            assert bound["threshold"] < values[metric]["value"]


def test_the_model_is_self_contained_and_serves_its_task(run: tuple[StepRun, str, str]) -> None:
    step_run, task, framework = run
    model_dir = step_run.model_dir
    assert (model_dir / MODEL_FILES[framework]).is_file()
    assert json.loads((model_dir / "code" / "use_case.json").read_text()) == json.loads(step_run.spec.read_text())
    handlers = load_handlers(model_dir)
    model = handlers.model_fn(str(model_dir))
    test = pd.read_csv(step_run.test_csv).head(7)
    features = test.drop(columns=["label"])
    records = json.dumps({"instances": features.to_dict(orient="records")})
    served = handlers.predict_fn(handlers.input_fn(records, "application/json"), model)
    body, content_type = handlers.output_fn(served, "application/json")
    predictions = json.loads(body)["predictions"]
    assert content_type == "application/json" and len(predictions) == 7
    csv_body, csv_type = handlers.output_fn(
        handlers.predict_fn(handlers.input_fn(features.to_csv(header=False, index=False), "text/csv"), model),
        "text/csv",
    )
    lines = [[float(v) for v in line.split(",")] for line in csv_body.strip().splitlines()]
    assert csv_type == "text/csv" and len(lines) == 7
    if task == "binary":
        assert all(set(p) == {"probability", "label"} and 0 <= p["probability"] <= 1 for p in predictions)
        assert [p["label"] for p in predictions] == [int(p["probability"] >= 0.5) for p in predictions]
        np.testing.assert_allclose([line[0] for line in lines], [p["probability"] for p in predictions], rtol=1e-9)
    elif task == "multiclass":
        for p, line in zip(predictions, lines, strict=True):
            assert set(p) == {"label", "probabilities"} and len(p["probabilities"]) == 3
            assert sum(p["probabilities"]) == pytest.approx(1.0)
            assert p["label"] == int(np.argmax(p["probabilities"]))
            np.testing.assert_allclose(line, p["probabilities"], rtol=1e-9)
    else:
        assert all(set(p) == {"value"} for p in predictions)
        np.testing.assert_allclose([line[0] for line in lines], [p["value"] for p in predictions], rtol=1e-9)
        assert all(25 <= p["value"] <= 346 for p in predictions)  # within the training target's range
    with pytest.raises(handlers.PayloadError, match=f"expected {len(model.feature_names)} comma-separated"):
        handlers.input_fn("1,2", "text/csv")


def test_attributions_per_framework(run: tuple[StepRun, str, str]) -> None:
    step_run, task, framework = run
    analysis = json.loads((step_run.evaluation_dir / "analysis.json").read_text())
    label = analysis["explanations"]["kernel_shap"]["label0"]
    features = list(pd.read_csv(step_run.test_csv).drop(columns=["label"]).columns)
    assert sorted(label["global_shap_values"]) == sorted(features)
    assert all(v >= 0 for v in label["global_shap_values"].values())
    if framework == "xgboost":
        assert analysis["method"].startswith("tree_shap")
        per_row = pd.read_csv(step_run.evaluation_dir / "explanations_shap" / "out.csv")
        np.testing.assert_allclose(
            per_row.abs().mean().to_numpy(), [label["global_shap_values"][c] for c in per_row.columns], rtol=1e-6
        )
        if task == "multiclass":
            assert len(label["expected_value"]) == 3  # one bias per class margin
    else:
        assert analysis["method"].startswith("feature_importances")
        assert sum(label["global_shap_values"].values()) == pytest.approx(1.0)  # impurity importances sum to 1
        assert not (step_run.evaluation_dir / "explanations_shap").exists()
    assert f"1. {next(iter(label['global_shap_values']))}:" in (step_run.evaluation_dir / "report.md").read_text()


def test_evaluate_refuses_a_model_of_another_use_case(
    run: tuple[StepRun, str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    step_run, task, framework = run
    other = use_case(
        "multiclass" if task != "multiclass" else "binary",
        framework,
        "wine" if task != "multiclass" else "breast_cancer",
    )
    assert run_evaluate(step_run.root, write_spec(tmp_path, other), step_run.artifact_dir, tmp_path / "out") == 1
    assert "the Train and Evaluate steps must come from the same build" in capsys.readouterr().err
