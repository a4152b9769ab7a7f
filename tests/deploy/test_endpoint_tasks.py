"""Endpoint checks per task: output shapes, metrics against scikit-learn, the quality bound, and the suite
against real multiclass and regression models served through their own inference.py (a stand-in runtime)."""

from __future__ import annotations

import json
import random
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy
import pytest
from sklearn import metrics as sk

from model_deploy.endpoint_checks import (
    ContractViolation,
    HoldoutSplit,
    multiclass_metric,
    package_task,
    parse_csv_predictions,
    parse_json_predictions,
    parse_test_split,
    quality_bound,
    registered_metric,
    regression_metric,
    within_quality,
)
from model_deploy.suite import SuiteContext, run_suite
from tests.deploy.serving import ServingRuntime, train_model
from tests.steps.pipeline_run import use_case

ENDPOINT = "task-staging"


def _predictions(*items: object) -> str:
    return json.dumps({"predictions": list(items)})


def test_multiclass_json_shape() -> None:
    good = _predictions({"label": 2, "probabilities": [0.1, 0.2, 0.7]}, {"label": 0, "probabilities": [0.5, 0.3, 0.2]})
    assert parse_json_predictions(good, 2, "multiclass", 3) == [[0.1, 0.2, 0.7], [0.5, 0.3, 0.2]]
    bad = {
        "expected 3 class probabilities, found 2": {"label": 0, "probabilities": [0.5, 0.5]},
        "expected probabilities summing to 1, found a sum of 0.9": {"label": 2, "probabilities": [0.1, 0.1, 0.7]},
        "expected the most probable class 2, found 0": {"label": 0, "probabilities": [0.1, 0.2, 0.7]},
        "expected the most probable class 2, found 5": {"label": 5, "probabilities": [0.1, 0.2, 0.7]},
        r"probabilities\[1\]: expected a number in \[0, 1\], found 1.2": {"label": 1, "probabilities": [0, 1.2, -0.2]},
        "expected keys label and probabilities": {"label": 1, "probability": 0.9},
    }
    for message, item in bad.items():
        with pytest.raises(ContractViolation, match=message):
            parse_json_predictions(_predictions(item), 1, "multiclass", 3)


def test_regression_json_and_csv_shape() -> None:
    assert parse_json_predictions(_predictions({"value": 151.5}, {"value": -3}), 2, "regression") == [[151.5], [-3.0]]
    with pytest.raises(ContractViolation, match="expected a finite number, found 'x'"):
        parse_json_predictions(_predictions({"value": "x"}), 1, "regression")
    with pytest.raises(ContractViolation, match="expected keys value"):
        parse_json_predictions(_predictions({"probability": 0.3, "label": 0}), 1, "regression")
    assert parse_csv_predictions("151.5\n-3\n", 2, "regression") == [[151.5], [-3.0]]
    with pytest.raises(ContractViolation, match="expected one value, found 2 values"):
        parse_csv_predictions("1,2\n", 1, "regression")


def test_csv_shapes_of_classifiers() -> None:
    assert parse_csv_predictions("0.2,0.3,0.5\n", 1, "multiclass", 3) == [[0.2, 0.3, 0.5]]
    with pytest.raises(ContractViolation, match="expected 3 probabilities, found 1 values"):
        parse_csv_predictions("0.2\n", 1, "multiclass", 3)
    with pytest.raises(ContractViolation, match="summing to 1"):
        parse_csv_predictions("0.2,0.3,0.6\n", 1, "multiclass", 3)
    with pytest.raises(ContractViolation, match=r"expected a number in \[0, 1\], found 1.5"):
        parse_csv_predictions("1.5\n", 1, "binary")
    with pytest.raises(ContractViolation, match="expected 2 CSV lines, one probability per row, found 1"):
        parse_csv_predictions("0.5\n", 2, "binary")


def test_multiclass_and_regression_metrics_equal_scikit_learns() -> None:
    rng = random.Random(7)  # noqa: S311 - reproducible test data, not secrets
    labels = [float(rng.randrange(3)) for _ in range(60)]
    probabilities = []
    for _ in labels:
        raw = [rng.random() for _ in range(3)]
        probabilities.append([v / sum(raw) for v in raw])
    predicted = [p.index(max(p)) for p in probabilities]
    truth = [int(y) for y in labels]
    assert multiclass_metric("accuracy", labels, probabilities) == pytest.approx(sk.accuracy_score(truth, predicted))
    for name, reference in (("f1", sk.f1_score), ("precision", sk.precision_score), ("recall", sk.recall_score)):
        expected = reference(truth, predicted, average="weighted", zero_division=0)
        assert multiclass_metric(f"weighted_{name}", labels, probabilities) == pytest.approx(expected), name
    targets = [rng.uniform(25, 350) for _ in range(40)]
    values = [t + rng.gauss(0, 30) for t in targets]
    assert regression_metric("r2", targets, values) == pytest.approx(sk.r2_score(targets, values))
    assert regression_metric("mse", targets, values) == pytest.approx(sk.mean_squared_error(targets, values))
    assert regression_metric("rmse", targets, values) == pytest.approx(sk.mean_squared_error(targets, values) ** 0.5)
    assert regression_metric("mae", targets, values) == pytest.approx(sk.mean_absolute_error(targets, values))


def test_quality_bound_is_relative_for_errors_and_absolute_for_scores() -> None:
    assert quality_bound("rmse", 50.0, 0.02) == (pytest.approx(51.0), "at most")
    assert within_quality("rmse", 50.99, 50.0, 0.02) and not within_quality("rmse", 51.01, 50.0, 0.02)
    assert within_quality("mae", 10.0, 50.0, 0.02)  # better than registered is fine
    assert quality_bound("r2", 0.4, 0.02) == (pytest.approx(0.38), "at least")
    assert within_quality("weighted_f1", 0.951, 0.97, 0.02) and not within_quality("accuracy", 0.949, 0.97, 0.02)


def test_the_task_comes_from_the_package_and_the_metric_from_its_section() -> None:
    assert package_task({}) == "binary"  # registered before packages carried their task
    assert package_task({"task": "regression", "use_case": "diabetes"}) == "regression"
    with pytest.raises(ValueError, match="task is 'ranking'; expected one of binary, multiclass, regression"):
        package_task({"task": "ranking"})
    report = {"regression_metrics": {"rmse": {"value": 55.5, "standard_deviation": "NaN"}}, "task": "regression"}
    assert registered_metric(report, "rmse", "regression") == 55.5
    with pytest.raises(ValueError, match="metric 'auc' is not a regression metric"):
        registered_metric(report, "auc", "regression")
    with pytest.raises(ValueError, match="no multiclass_classification_metrics.accuracy.value"):
        registered_metric(report, "accuracy", "multiclass")


def test_parse_test_split_per_task() -> None:
    text = "a,b,label\n1,2,151.5\n3,,25\n"
    split = parse_test_split(text, task="regression")
    assert split.labels == [151.5, 25.0] and split.classes is None and split.rows[1] == [3.0, None]
    with pytest.raises(ValueError, match="expected a class label"):
        parse_test_split(text, task="multiclass")
    multiclass = parse_test_split("a,label\n1,0\n2,2\n3,1\n", task="multiclass")
    assert multiclass.classes == [0, 1, 2] and multiclass.class_count == 3
    with pytest.raises(ValueError, match=r"labels \[3\] outside the classes \[0, 1, 2\]"):
        parse_test_split("a,label\n1,3\n", task="multiclass", classes=[0, 1, 2])


SMALL = {
    "xgboost": {"num_round": "30", "max_depth": "3", "eta": "0.3", "early_stopping_rounds": "5"},
    "sklearn": {"n_estimators": "15", "max_depth": "6"},
}


@pytest.fixture(scope="module", params=[("multiclass", "xgboost", "wine"), ("regression", "sklearn", "diabetes")])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, HoldoutSplit, str]:
    task, framework, dataset = request.param
    case = use_case(task, framework, dataset)
    model_dir, test_csv = train_model(tmp_path_factory.mktemp(task), case, SMALL[framework])
    return model_dir, parse_test_split(test_csv.read_text(), task=task, classes=case.label_classes), case.quality.metric


def _context(
    served: tuple[Path, HoldoutSplit, str], registered: float, distort: Callable[[Any], Any] | None = None
) -> SuiteContext:
    model_dir, split, metric = served
    ticks = iter(range(10_000))
    return SuiteContext(
        runtime=ServingRuntime(model_dir, ENDPOINT, distort),
        endpoint_name=ENDPOINT,
        split=split,
        metric=metric,
        registered_value=registered,
        tolerance=0.02,
        quality_rows=200,
        latency_requests=5,
        clock=lambda: next(ticks) * 0.004,
    )


def _measure(served: tuple[Path, HoldoutSplit, str]) -> float:
    model_dir, split, _ = served
    model = ServingRuntime(model_dir, ENDPOINT).model
    raw = numpy.asarray([[numpy.nan if v is None else v for v in row] for row in split.rows], dtype=float)
    outputs = model.predict(raw)
    if split.task == "multiclass":
        return float(sk.accuracy_score(split.labels, numpy.argmax(outputs, axis=1)))
    return float(sk.mean_squared_error(split.labels, outputs) ** 0.5)


def test_the_suite_passes_per_task_and_fails_a_model_worse_than_registered(
    served: tuple[Path, HoldoutSplit, str], tmp_path: Path
) -> None:
    measured = _measure(served)
    result = run_suite(_context(served, measured), tmp_path / "junit.xml", suite_name="s")
    assert result.passed, (tmp_path / "junit.xml").read_text()
    assert result.measurements[served[2]] == pytest.approx(measured)  # the suite's metric equals scikit-learn's
    if served[1].task == "multiclass":
        # Every row's probabilities shifted one class on: the shape still holds, the quality does not.
        worse = run_suite(
            _context(served, measured, lambda p: numpy.roll(p, 1, axis=1)), tmp_path / "w.xml", suite_name="s"
        )
    else:
        # An rmse 3 % above the registered one is outside the 2 % tolerance (relative, on the label's scale).
        worse = run_suite(_context(served, measured / 1.03), tmp_path / "w.xml", suite_name="s")
    assert not worse.passed
    root = ET.parse(tmp_path / "w.xml").getroot()  # noqa: S314 - the XML pytest just wrote in this test's tmp dir
    failed = [case for case in root.iter("testcase") if case.find("failure") is not None]
    assert [case.get("name") for case in failed] == ["test_quality_within_tolerance_of_the_registered_metric"]
    message = failed[0].find("failure").get("message") or ""  # type: ignore[union-attr]
    assert ("expected at most" if served[1].task == "regression" else "expected at least") in message
