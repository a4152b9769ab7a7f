"""The step scripts on the real data set, called as SageMaker calls them (paths + SM_* environment)."""

from __future__ import annotations

import json
import tarfile
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model_build import data
from model_build.steps import evaluate, inference, preprocess, train
from tests.steps.pipeline_run import shipped_use_case, write_spec


@pytest.fixture(scope="module")
def spec_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_spec(tmp_path_factory.mktemp("code"), shipped_use_case("breast-cancer"))


@pytest.fixture(scope="module")
def processed(tmp_path_factory: pytest.TempPathFactory, spec_file: Path) -> Path:
    root = tmp_path_factory.mktemp("processing")
    data.write_dataset(root / "input")
    args = ["--input-dir", str(root / "input"), "--output-dir", str(root), "--use-case-file", str(spec_file)]
    assert preprocess.main(args) == 0
    return root


@pytest.fixture(scope="module")
def model_dir(processed: Path, tmp_path_factory: pytest.TempPathFactory, spec_file: Path) -> Path:
    out = tmp_path_factory.mktemp("model")
    patch = pytest.MonkeyPatch()
    for channel in ("train", "validation", "preprocessor"):
        patch.setenv(f"SM_CHANNEL_{channel.upper()}", str(processed / channel))
    patch.setenv("SM_MODEL_DIR", str(out / "model"))
    patch.setenv("SM_OUTPUT_DIR", str(out / "output"))
    patch.setenv("SM_HPS", json.dumps({"max_depth": "3", "eta": "0.2", "num_round": "200", "sagemaker_program": "x"}))
    try:
        assert train.main(["--use-case-file", str(spec_file)]) == 0
    finally:
        patch.undo()
    return out / "model"


@pytest.fixture(scope="module")
def artifact(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("artifact")
    with tarfile.open(out / "model.tar.gz", "w:gz") as archive:
        archive.add(model_dir, arcname=".")
    return out


def test_dataset_matches_scikit_learn_and_flips_the_label() -> None:
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer()
    frame = pd.read_csv(__import__("io").BytesIO(data.dataset_csv_bytes()))
    assert list(frame.columns[:-1]) == list(bunch.feature_names)
    np.testing.assert_allclose(frame[data.FEATURE_NAMES].to_numpy(), bunch.data)
    # scikit-learn: 0 = malignant. Here: 1 = malignant.
    np.testing.assert_array_equal(frame[data.LABEL_COLUMN].to_numpy(), 1 - bunch.target)
    assert frame[data.LABEL_COLUMN].sum() == 212


def test_split_is_stratified_disjoint_and_reproducible(processed: Path, tmp_path: Path, spec_file: Path) -> None:
    train_rows = np.loadtxt(processed / "train" / "train.csv", delimiter=",")
    valid_rows = np.loadtxt(processed / "validation" / "validation.csv", delimiter=",")
    test = pd.read_csv(processed / "test" / "test.csv")
    assert len(train_rows) + len(valid_rows) + len(test) == 569
    assert len(test) == 114 and len(valid_rows) == 114
    for labels in (train_rows[:, 0], valid_rows[:, 0], test["label"].to_numpy()):
        assert abs(labels.mean() - 212 / 569) < 0.02
    # Same seed, same split, byte for byte.
    data.write_dataset(tmp_path / "input")
    preprocess.main(
        ["--input-dir", str(tmp_path / "input"), "--output-dir", str(tmp_path), "--use-case-file", str(spec_file)]
    )
    assert (tmp_path / "test" / "test.csv").read_bytes() == (processed / "test" / "test.csv").read_bytes()
    # Test rows are not in training: raw baseline (train features) and test share no row.
    baseline = pd.read_csv(processed / "baseline" / "baseline.csv")
    merged = baseline.merge(test.drop(columns=["label"]), how="inner")
    assert merged.empty


def test_transform_is_fitted_on_train_only(processed: Path) -> None:
    train_rows = np.loadtxt(processed / "train" / "train.csv", delimiter=",")
    valid_rows = np.loadtxt(processed / "validation" / "validation.csv", delimiter=",")
    np.testing.assert_allclose(train_rows[:, 1:].mean(axis=0), 0, atol=1e-6)
    np.testing.assert_allclose(train_rows[:, 1:].std(axis=0), 1, atol=1e-6)
    # Validation is transformed with train's statistics, so it is not exactly standardised.
    assert np.abs(valid_rows[:, 1:].mean(axis=0)).max() > 0.01
    pre = json.loads((processed / "preprocessor" / "preprocessor.json").read_text())
    baseline = pd.read_csv(processed / "baseline" / "baseline.csv")
    np.testing.assert_allclose(pre["means"], baseline.mean().to_numpy())


def test_baseline_in_model_monitor_formats(processed: Path) -> None:
    stats = json.loads((processed / "baseline" / "statistics.json").read_text())
    assert stats["version"] == 0 and stats["dataset"] == {"item_count": 341}
    assert [f["name"] for f in stats["features"]] == data.FEATURE_NAMES
    radius = next(f for f in stats["features"] if f["name"] == "mean radius")
    assert radius["inferred_type"] == "Fractional"
    numbers = radius["numerical_statistics"]
    assert numbers["common"] == {"num_present": 341, "num_missing": 0}
    assert numbers["min"] < numbers["mean"] < numbers["max"]
    kll = numbers["distribution"]["kll"]
    assert sum(b["count"] for b in kll["buckets"]) == 341
    assert len(kll["sketch"]["data"][0]) == 341
    constraints = json.loads((processed / "baseline" / "constraints.json").read_text())
    assert constraints["monitoring_config"]["emit_metrics"] == "Enabled"
    radius_constraint = next(f for f in constraints["features"] if f["name"] == "mean radius")
    assert radius_constraint == {
        "name": "mean radius",
        "inferred_type": "Fractional",
        "completeness": 1.0,
        "num_constraints": {"is_non_negative": True},
    }
    provenance = json.loads((processed / "baseline" / "provenance.json").read_text())
    assert provenance["dataset"]["rows"] == {"train": 341, "validation": 114, "test": 114}
    assert len(provenance["dataset"]["sha256"]) == 64


def test_preprocess_rejects_bad_input(tmp_path: Path, spec_file: Path) -> None:
    (tmp_path / "input").mkdir()
    args = ["--input-dir", str(tmp_path / "input"), "--output-dir", str(tmp_path), "--use-case-file", str(spec_file)]
    with pytest.raises(preprocess.PreprocessError, match="expected exactly one CSV file"):
        preprocess.run(preprocess.parse_args(args))
    pd.DataFrame({"a": range(60), "y": [0, 1] * 30}).to_csv(tmp_path / "input" / "x.csv", index=False)
    assert preprocess.main(args) == 1
    with pytest.raises(preprocess.PreprocessError, match="expected a label column 'label'"):
        preprocess.run(preprocess.parse_args(args))
    spec = preprocess.read_step_spec(spec_file)
    frame = pd.DataFrame({name: [1.0] * 60 for name in spec.features})
    with pytest.raises(preprocess.PreprocessError, match="binary label"):
        preprocess.validate(frame.assign(label=[0, 1, 2] * 20), spec)
    with pytest.raises(preprocess.PreprocessError, match=r"missing \['mean radius'\], extra \['x'\]"):
        preprocess.validate(frame.drop(columns=["mean radius"]).assign(x=1.0, label=[0, 1] * 30), spec)
    with pytest.raises(preprocess.PreprocessError, match="expected the use case's use_case.json"):
        preprocess.run(preprocess.parse_args([*args[:4], "--use-case-file", str(tmp_path / "none.json")]))


def test_training_writes_a_self_contained_model(model_dir: Path) -> None:
    assert {p.name for p in model_dir.iterdir()} == {"xgboost-model.json", "preprocessor.json", "metadata.json", "code"}
    assert (model_dir / "code" / "inference.py").read_text() == Path(inference.__file__).read_text()
    spec = json.loads((model_dir / "code" / "use_case.json").read_text())
    assert spec == shipped_use_case("breast-cancer").step_spec()
    metadata = json.loads((model_dir / "metadata.json").read_text())
    assert metadata["hyperparameters"]["max_depth"] == 3
    assert 0 <= metadata["best_iteration"] < 200  # early stopping on validation
    assert metadata["validation_auc"] > 0.95


def test_training_failure_is_reported_to_sagemaker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec_file: Path
) -> None:
    monkeypatch.setenv("SM_CHANNEL_TRAIN", str(tmp_path / "empty"))
    monkeypatch.setenv("SM_OUTPUT_DIR", str(tmp_path / "output"))
    monkeypatch.setenv("SM_MODEL_DIR", str(tmp_path / "model"))
    monkeypatch.setenv("SM_HPS", json.dumps({"max_depht": "3"}))
    args = ["--use-case-file", str(spec_file)]
    assert train.main(args) == 1
    assert "unknown hyperparameter(s) ['max_depht']" in (tmp_path / "output" / "failure").read_text()
    monkeypatch.setenv("SM_HPS", json.dumps({"max_depth": "deep"}))
    assert train.main(args) == 1
    assert "max_depth: expected int, found 'deep'" in (tmp_path / "output" / "failure").read_text()
    monkeypatch.setenv("SM_HPS", "{}")
    assert train.main(args) == 1
    assert "channel 'train': expected CSV files" in (tmp_path / "output" / "failure").read_text()
    # A forest's keys are not XGBoost's: the framework of use_case.json decides which are known.
    monkeypatch.setenv("SM_HPS", json.dumps({"n_estimators": "10"}))
    assert train.main(args) == 1
    assert "unknown hyperparameter(s) ['n_estimators'] for xgboost" in (tmp_path / "output" / "failure").read_text()
    assert train.main(["--use-case-file", str(tmp_path / "none.json")]) == 1
    assert "expected the use case's use_case.json" in (tmp_path / "output" / "failure").read_text()


def test_hyperparameters_from_the_platform_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SM_HPS", raising=False)
    monkeypatch.setenv("SM_INPUT_CONFIG_DIR", str(tmp_path))
    (tmp_path / "hyperparameters.json").write_text(json.dumps({"eta": "0.05", "num_round": "10"}))
    parsed = train.read_hyperparameters()
    assert parsed["eta"] == 0.05 and parsed["num_round"] == 10 and parsed["max_depth"] == 4


@pytest.fixture(scope="module")
def served(model_dir: Path) -> inference.Model:
    return inference.model_fn(str(model_dir))


def test_serving_csv_and_json_agree_on_raw_rows(served: inference.Model, processed: Path) -> None:
    test = pd.read_csv(processed / "test" / "test.csv").head(5)
    features = test.drop(columns=["label"])
    csv_body = features.to_csv(header=False, index=False)
    from_csv = inference.predict_fn(inference.input_fn(csv_body, "text/csv"), served)
    records = {"instances": features.to_dict(orient="records")}
    from_json = inference.predict_fn(inference.input_fn(json.dumps(records), "application/json; charset=utf-8"), served)
    np.testing.assert_allclose(from_csv, from_json)
    assert ((from_csv >= 0) & (from_csv <= 1)).all()
    body, content_type = inference.output_fn(from_json, "application/json")
    predictions = json.loads(body)["predictions"]
    assert content_type == "application/json" and len(predictions) == 5
    assert [p["label"] for p in predictions] == [int(p["probability"] >= 0.5) for p in predictions]
    text, csv_type = inference.output_fn(from_csv, "text/csv")
    assert csv_type == "text/csv" and len(text.strip().splitlines()) == 5


def test_serving_imputes_missing_values(served: inference.Model, processed: Path) -> None:
    row = pd.read_csv(processed / "test" / "test.csv").drop(columns=["label"]).iloc[0].to_dict()
    row["mean radius"] = None
    parsed = inference.input_fn(json.dumps({"instances": [row]}), "application/json")
    assert np.isnan(parsed[0][0])
    assert 0 <= inference.predict_fn(parsed, served)[0] <= 1


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        ("1,2,3", "text/csv", "expected 30 comma-separated feature values"),
        (",".join(["x"] * 30), "text/csv", "expected a number, found 'x'"),
        ("{not json", "application/json", "invalid JSON"),
        ('{"instances": [{"mean radius": 1}]}', "application/json", "missing feature"),
        ('{"instances": [{"radius": 1}]}', "application/json", "unknown feature"),
        ('{"instances": "x"}', "application/json", 'expected {"instances"'),
        ('{"instances": []}', "application/json", "at least one row"),
        ("1", "application/x-npy", "expected content type text/csv or application/json"),
    ],
)
def test_bad_payloads_are_clear_client_errors(
    served: inference.Model, body: str, content_type: str, message: str
) -> None:
    with pytest.raises(inference.PayloadError, match=message):
        inference.input_fn(body, content_type)


def test_unsupported_accept_type(served: inference.Model) -> None:
    with pytest.raises(inference.UnsupportedMediaType, match="accept type"):
        inference.output_fn(np.array([0.5]), "application/x-protobuf")


def _evaluate_args(artifact: Path, test_dir: Path, out: Path, spec_file: Path) -> list[str]:
    return [
        "--model-dir", str(artifact), "--test-dir", str(test_dir),
        "--output-dir", str(out), "--use-case-file", str(spec_file),
    ]  # fmt: skip


def test_evaluation_report_in_model_metrics_format(
    artifact: Path, processed: Path, tmp_path: Path, spec_file: Path
) -> None:
    out = tmp_path / "evaluation"
    assert evaluate.main(_evaluate_args(artifact, processed / "test", out, spec_file)) == 0
    report = json.loads((out / "evaluation.json").read_text())
    metrics = report["binary_classification_metrics"]
    for name in ("auc", "f1", "precision", "recall", "accuracy"):
        assert 0.9 < metrics[name]["value"] <= 1.0, name
        assert metrics[name]["standard_deviation"] == "NaN"
    matrix = metrics["confusion_matrix"]
    assert sum(matrix[a][p] for a in "01" for p in "01") == report["test_rows"] == 114
    assert (out / "roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "confusion_matrix.png").stat().st_size > 1000
    assert "| auc |" in (out / "report.md").read_text()
    assert report["task"] == "binary" and report["classes"] == [0, 1]


def test_evaluation_refuses_a_missing_artifact(processed: Path, tmp_path: Path, spec_file: Path) -> None:
    args = _evaluate_args(tmp_path, processed / "test", tmp_path / "o", spec_file)
    assert evaluate.main(args) == 1
    with pytest.raises(evaluate.EvaluateError, match="expected one model .tar.gz"):
        evaluate.run(evaluate.parse_args(args))


def test_explanations_are_treeshap_in_clarify_format(
    artifact: Path, processed: Path, tmp_path: Path, spec_file: Path
) -> None:
    """Clarify's analysis.json layout, and Shapley values that add up to what the endpoint serves."""
    out = tmp_path / "evaluation"
    test_dir = processed / "test"
    assert evaluate.main(_evaluate_args(artifact, test_dir, out, spec_file)) == 0
    analysis = json.loads((out / "analysis.json").read_text())
    assert analysis["version"] == "1.0"
    label = analysis["explanations"]["kernel_shap"]["label0"]
    global_values = label["global_shap_values"]
    test = pd.read_csv(test_dir / "test.csv")
    features = test.drop(columns=["label"])
    assert sorted(global_values) == sorted(features.columns)
    assert list(global_values.values()) == sorted(global_values.values(), reverse=True)
    per_row = pd.read_csv(out / "explanations_shap" / "out.csv")
    assert list(per_row.columns) == list(features.columns) and len(per_row) == len(test)
    np.testing.assert_allclose(per_row.abs().mean().to_numpy(), [global_values[c] for c in per_row.columns], rtol=1e-6)
    # Additivity: bias + the row's attributions is the booster's margin, so sigmoid of it is the served probability.
    with tempfile.TemporaryDirectory() as unpacked:
        with tarfile.open(next(artifact.glob("*.tar.gz"))) as archive:
            archive.extractall(unpacked, filter="data")
        served = inference.model_fn(unpacked)
        probabilities = served.predict_proba(features.to_numpy(dtype=float))
    margins = per_row.sum(axis=1).to_numpy() + label["expected_value"]
    np.testing.assert_allclose(1 / (1 + np.exp(-margins)), probabilities, rtol=1e-4, atol=1e-5)
    assert (out / "feature_importance.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    top = next(iter(global_values))
    assert f"1. {top}:" in (out / "report.md").read_text()


def test_a_model_whose_use_case_disagrees_is_refused_at_load(model_dir: Path, tmp_path: Path) -> None:
    """Strict loading: the endpoint fails to start rather than serve a model its use_case.json does not describe."""
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(model_dir, copy)
    spec_path = copy / "code" / "use_case.json"
    spec = json.loads(spec_path.read_text())
    cases = {
        "expected the sklearn model at .*model.joblib": {**spec, "framework": "sklearn"},
        "task: expected one of": {**spec, "task": "ranking"},
        r"classes: expected \[0, 1\] for binary": {**spec, "classes": [1, 2]},
        "differ from use_case.json's": {**spec, "features": list(reversed(spec["features"]))},
        r"missing key\(s\) \['metric'\]": {k: v for k, v in spec.items() if k != "metric"},
    }
    for message, document in cases.items():
        spec_path.write_text(json.dumps(document))
        with pytest.raises(inference.ModelLoadError, match=message):
            inference.model_fn(str(copy))
    spec_path.unlink()
    with pytest.raises(inference.ModelLoadError, match="expected the use case's use_case.json"):
        inference.model_fn(str(copy))
