"""What the endpoint tests compute and check, as plain functions. Pure: no AWS SDK, no pytest.

The serving contract is the one `model_build/steps/inference.py` implements: raw feature rows as
text/csv (no header) or application/json {"instances": [{feature: value}]}, answered per task:
  binary      {"predictions": [{"probability": p, "label": 0|1}]}            CSV: one probability per line
  multiclass  {"predictions": [{"label": k, "probabilities": [p0..pK-1]}]}   CSV: K probabilities per line
  regression  {"predictions": [{"value": y}]}                                CSV: one value per line
The task is the package's CustomerMetadataProperties `task` (packages registered before there were
several tasks are binary). Every parser returns one vector per row (binary [p], multiclass the K
probabilities, regression [y]), which is what the metrics read.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mlops.core.use_cases import LOWER_IS_BETTER, METRICS, MODEL_QUALITY_SECTION, TASKS

DECISION_THRESHOLD = 0.5
# Probabilities of one row add up to 1 within the float32 rounding of the model and the text round trip.
PROBABILITY_SUM_TOLERANCE = 1e-4
Row = list[float | None]
Output = list[float]


class ContractViolation(AssertionError):
    """The endpoint answered, but not in the documented shape; the message says what differed."""


@dataclass(frozen=True)
class HoldoutSplit:
    """The build's test rows, with the task they are labelled for (and a classifier's classes)."""

    feature_names: list[str]
    rows: list[Row]
    labels: list[float]
    task: str = "binary"
    classes: list[int] | None = None

    @property
    def class_count(self) -> int:
        return len(self.classes) if self.classes else 2


def package_task(customer_metadata: Mapping[str, str]) -> str:
    """The package's task (CustomerMetadataProperties `task`); packages registered before it existed are binary."""
    task = customer_metadata.get("task", "binary")
    if task not in TASKS:
        raise ValueError(
            f"the package's CustomerMetadataProperties task is {task!r}; expected one of {', '.join(TASKS)}"
        )
    return task


def parse_test_split(
    text: str, label_column: str = "label", *, task: str = "binary", classes: Sequence[int] | None = None
) -> HoldoutSplit:
    """The build's test/test.csv: a header of feature names plus the label column, raw values.

    A classifier's labels are class integers (its classes default to those found, binary [0, 1]);
    a regression's are numbers."""
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader)
    except StopIteration:
        raise ValueError("the test split is empty; expected a header and rows") from None
    if label_column not in header:
        raise ValueError(f"the test split has no {label_column!r} column; found columns {header[:5]}...")
    label_index = header.index(label_column)
    names = [name for i, name in enumerate(header) if i != label_index]
    rows: list[Row] = []
    labels: list[float] = []
    for number, cells in enumerate(reader, start=2):
        if not cells:
            continue
        if len(cells) != len(header):
            raise ValueError(f"test split line {number}: expected {len(header)} cells, found {len(cells)}")
        try:
            value = float(cells[label_index])
        except ValueError:
            raise ValueError(
                f"test split line {number}: expected a numeric {label_column!r}, found {cells[label_index]!r}"
            ) from None
        if task != "regression" and not value.is_integer():
            raise ValueError(f"test split line {number}: expected a class label (an integer), found {value}")
        labels.append(value if task == "regression" else int(value))
        rows.append([float(c) if c.strip() else None for i, c in enumerate(cells) if i != label_index])
    if not rows:
        raise ValueError("the test split has a header but no rows")
    if task == "regression":
        return HoldoutSplit(names, rows, labels, task, None)
    found = sorted({int(v) for v in labels})
    chosen = list(classes) if classes else (found if task == "multiclass" else [0, 1])
    stray = [c for c in found if c not in chosen]
    if stray:
        raise ValueError(f"the test split has labels {stray} outside the classes {chosen}")
    return HoldoutSplit(names, rows, labels, task, chosen)


def registered_metric(evaluation: Mapping[str, Any], metric: str, task: str = "binary") -> float:
    """`<task section>.<metric>.value` of the package's evaluation.json (e.g. binary_classification_metrics.auc)."""
    section = MODEL_QUALITY_SECTION[task]
    if metric not in METRICS[task]:
        raise ValueError(f"metric {metric!r} is not a {task} metric; expected one of {', '.join(METRICS[task])}")
    try:
        return float(evaluation[section][metric]["value"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            f"evaluation report has no {section}.{metric}.value; found keys {sorted(evaluation.get(section, {}))} "
            f"in {section} and top-level keys {sorted(evaluation)}"
        ) from exc


def csv_payload(rows: Sequence[Row]) -> str:
    return "".join(",".join("" if v is None else repr(float(v)) for v in row) + "\n" for row in rows)


def json_payload(feature_names: Sequence[str], rows: Sequence[Row]) -> str:
    return json.dumps({"instances": [dict(zip(feature_names, row, strict=True)) for row in rows]})


def _number(value: object, where: str, *, unit: bool) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ContractViolation(
            f"{where}: expected a {'number in [0, 1]' if unit else 'finite number'}, found {value!r}"
        )
    if unit and not 0.0 <= value <= 1.0:
        raise ContractViolation(f"{where}: expected a number in [0, 1], found {value!r}")
    return float(value)


def _check_distribution(probabilities: list[float], count: int, where: str) -> None:
    if len(probabilities) != count:
        raise ContractViolation(f"{where}: expected {count} class probabilities, found {len(probabilities)}")
    if abs(sum(probabilities) - 1.0) > PROBABILITY_SUM_TOLERANCE:
        total = sum(probabilities)
        raise ContractViolation(f"{where}: expected probabilities summing to 1, found a sum of {total:.6g}")


def parse_json_predictions(body: str, expected_rows: int, task: str = "binary", class_count: int = 2) -> list[Output]:
    """Check the JSON response's schema for the task; return one output vector per row."""
    try:
        document = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ContractViolation(f"expected a JSON response, found {body[:200]!r}") from exc
    predictions = document.get("predictions") if isinstance(document, dict) else None
    if not isinstance(predictions, list):
        raise ContractViolation(f'expected {{"predictions": [...]}}, found {body[:200]!r}')
    if len(predictions) != expected_rows:
        raise ContractViolation(f"expected {expected_rows} predictions, one per row sent, found {len(predictions)}")
    keys = {"binary": {"probability", "label"}, "multiclass": {"label", "probabilities"}, "regression": {"value"}}[task]
    outputs = []
    for index, prediction in enumerate(predictions):
        where = f"predictions[{index}]"
        if not isinstance(prediction, dict) or set(prediction) != keys:
            raise ContractViolation(f"{where}: expected keys {' and '.join(sorted(keys))}, found {prediction!r}")
        if task == "regression":
            outputs.append([_number(prediction["value"], f"{where}.value", unit=False)])
            continue
        label = prediction["label"]
        if task == "binary":
            probability = _number(prediction["probability"], f"{where}.probability", unit=True)
            if label not in (0, 1) or isinstance(label, bool):
                raise ContractViolation(f"{where}.label: expected 0 or 1, found {label!r}")
            if label != int(probability >= DECISION_THRESHOLD):
                raise ContractViolation(
                    f"{where}: label {label} disagrees with probability {probability} at threshold {DECISION_THRESHOLD}"
                )
            outputs.append([probability])
            continue
        raw = prediction["probabilities"]
        if not isinstance(raw, list):
            raise ContractViolation(f"{where}.probabilities: expected a list of {class_count} numbers, found {raw!r}")
        probabilities = [_number(p, f"{where}.probabilities[{i}]", unit=True) for i, p in enumerate(raw)]
        _check_distribution(probabilities, class_count, f"{where}.probabilities")
        if (
            not isinstance(label, int)
            or isinstance(label, bool)
            or not 0 <= label < class_count
            or probabilities[label] != max(probabilities)
        ):
            raise ContractViolation(
                f"{where}.label: expected the most probable class "
                f"{probabilities.index(max(probabilities))}, found {label!r}"
            )
        outputs.append(probabilities)
    return outputs


def parse_csv_predictions(body: str, expected_rows: int, task: str = "binary", class_count: int = 2) -> list[Output]:
    """Check the CSV response for the task (one line per row); return one output vector per row."""
    lines = [line for line in body.splitlines() if line.strip()]
    what = {"binary": "one probability", "multiclass": f"{class_count} probabilities", "regression": "one value"}[task]
    if len(lines) != expected_rows:
        raise ContractViolation(f"expected {expected_rows} CSV lines, {what} per row, found {len(lines)}")
    outputs = []
    for number, line in enumerate(lines, start=1):
        where = f"CSV line {number}"
        try:
            values = [float(cell) for cell in line.split(",")]
        except ValueError:
            raise ContractViolation(f"{where}: expected {what}, found {line!r}") from None
        width = class_count if task == "multiclass" else 1
        if len(values) != width:
            raise ContractViolation(f"{where}: expected {what}, found {len(values)} values in {line!r}")
        checked = [_number(v, where, unit=task != "regression") for v in values]
        if task == "multiclass":
            _check_distribution(checked, class_count, where)
        outputs.append(checked)
    return outputs


def auc(labels: Sequence[int], scores: Sequence[float]) -> float:
    """Area under the ROC curve as the Mann-Whitney statistic (ties count half), as scikit-learn computes it."""
    positives = [s for s, y in zip(scores, labels, strict=True) if y == 1]
    negatives = [s for s, y in zip(scores, labels, strict=True) if y == 0]
    if not positives or not negatives:
        raise ValueError("AUC needs both classes among the rows sent; send more test rows")
    ranked = sorted((s, i) for i, s in enumerate(scores))
    ranks = [0.0] * len(scores)
    start = 0
    while start < len(ranked):
        end = start
        while end + 1 < len(ranked) and ranked[end + 1][0] == ranked[start][0]:
            end += 1
        for k in range(start, end + 1):
            ranks[ranked[k][1]] = (start + end) / 2 + 1
        start = end + 1
    positive_rank_sum = sum(r for r, y in zip(ranks, labels, strict=True) if y == 1)
    n_pos, n_neg = len(positives), len(negatives)
    return (positive_rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def classification_metric(metric: str, labels: Sequence[float], scores: Sequence[float]) -> float:
    """A binary metric of P(class 1) scores: auc, or f1/precision/recall/accuracy at the decision threshold."""
    if metric == "auc":
        return auc([int(y) for y in labels], scores)
    predicted = [int(s >= DECISION_THRESHOLD) for s in scores]
    pairs = list(zip(labels, predicted, strict=True))
    tp = sum(1 for y, p in pairs if y == 1 and p == 1)
    fp = sum(1 for y, p in pairs if y == 0 and p == 1)
    fn = sum(1 for y, p in pairs if y == 1 and p == 0)
    if metric == "accuracy":
        return sum(1 for y, p in pairs if y == p) / len(pairs)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    if metric == "precision":
        return precision
    if metric == "recall":
        return recall
    if metric == "f1":
        return 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    raise ValueError(f"expected one of {', '.join(METRICS['binary'])}, found {metric!r}")


def multiclass_metric(metric: str, labels: Sequence[float], probabilities: Sequence[Sequence[float]]) -> float:
    """accuracy, or precision/recall/f1 per class averaged with the class's share of the rows as weight
    (scikit-learn's average="weighted", a class never predicted counting 0)."""
    truth = [int(y) for y in labels]
    predicted = [list(p).index(max(p)) for p in probabilities]  # the first most probable class, as argmax
    pairs = list(zip(truth, predicted, strict=True))
    if metric == "accuracy":
        return sum(1 for y, p in pairs if y == p) / len(pairs)
    kind = metric.removeprefix("weighted_")
    if metric not in METRICS["multiclass"]:
        raise ValueError(f"expected one of {', '.join(METRICS['multiclass'])}, found {metric!r}")
    total = 0.0
    for k in sorted(set(truth)):
        tp = sum(1 for y, p in pairs if y == k and p == k)
        predicted_k = sum(1 for _, p in pairs if p == k)
        support = sum(1 for y, _ in pairs if y == k)
        precision = tp / predicted_k if predicted_k else 0.0
        recall = tp / support
        value = {
            "precision": precision,
            "recall": recall,
            "f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        }[kind]
        total += value * support
    return total / len(pairs)


def regression_metric(metric: str, labels: Sequence[float], values: Sequence[float]) -> float:
    errors = [v - y for y, v in zip(labels, values, strict=True)]
    mse = sum(e * e for e in errors) / len(errors)
    if metric == "mse":
        return mse
    if metric == "rmse":
        return math.sqrt(mse)
    if metric == "mae":
        return sum(abs(e) for e in errors) / len(errors)
    if metric == "r2":
        mean = sum(labels) / len(labels)
        spread = sum((y - mean) ** 2 for y in labels)
        if spread == 0:
            raise ValueError("r2 needs labels that vary among the rows sent; send more test rows")
        return 1 - mse * len(errors) / spread
    raise ValueError(f"expected one of {', '.join(METRICS['regression'])}, found {metric!r}")


def task_metric(task: str, metric: str, labels: Sequence[float], outputs: Sequence[Output]) -> float:
    """The metric of the endpoint's outputs (one vector per row, see the parsers) against the labels."""
    if task == "binary":
        return classification_metric(metric, labels, [o[0] for o in outputs])
    if task == "multiclass":
        return multiclass_metric(metric, labels, outputs)
    return regression_metric(metric, labels, [o[0] for o in outputs])


def quality_bound(metric: str, registered: float, tolerance: float) -> tuple[float, str]:
    """(bound, comparison) the measured value must meet: a score at least `tolerance` below the registered
    value, an error (LOWER_IS_BETTER) at most `tolerance` relative above it (its scale is the label's)."""
    if metric in LOWER_IS_BETTER:
        return registered * (1 + tolerance), "at most"
    return registered - tolerance, "at least"


def within_quality(metric: str, measured: float, registered: float, tolerance: float) -> bool:
    bound, comparison = quality_bound(metric, registered, tolerance)
    return measured <= bound if comparison == "at most" else measured >= bound


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), q in [0, 100]."""
    if not values:
        raise ValueError("no values to take a percentile of")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def error_status(response: Mapping[str, Any]) -> int:
    """The HTTP status the *model* answered with. SageMaker wraps a container's 4xx/5xx in a ModelError
    (HTTP 424) and passes the container's own status as OriginalStatusCode."""
    if response.get("Error", {}).get("Code") == "ModelError" and "OriginalStatusCode" in response:
        return int(response["OriginalStatusCode"])
    return int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
