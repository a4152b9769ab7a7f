"""What the endpoint tests compute and check, as plain functions. Pure: no AWS SDK, no pytest.

The serving contract is the one `model_build/steps/inference.py` implements: raw feature rows as
text/csv (no header) or application/json {"instances": [{feature: value}]}, answered with
{"predictions": [{"probability": p, "label": 0|1}]} or one probability per CSV line.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

DECISION_THRESHOLD = 0.5
Row = list[float | None]


class ContractViolation(AssertionError):
    """The endpoint answered, but not in the documented shape; the message says what differed."""


@dataclass(frozen=True)
class HoldoutSplit:
    feature_names: list[str]
    rows: list[Row]
    labels: list[int]


def parse_test_split(text: str, label_column: str = "label") -> HoldoutSplit:
    """The build's test/test.csv: a header of feature names plus the label column, raw values."""
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
    labels: list[int] = []
    for number, cells in enumerate(reader, start=2):
        if not cells:
            continue
        if len(cells) != len(header):
            raise ValueError(f"test split line {number}: expected {len(header)} cells, found {len(cells)}")
        labels.append(int(float(cells[label_index])))
        rows.append([float(c) if c.strip() else None for i, c in enumerate(cells) if i != label_index])
    if not rows:
        raise ValueError("the test split has a header but no rows")
    return HoldoutSplit(names, rows, labels)


def registered_metric(evaluation: Mapping[str, Any], metric: str) -> float:
    """`binary_classification_metrics.<metric>.value` of the package's evaluation.json."""
    try:
        return float(evaluation["binary_classification_metrics"][metric]["value"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(
            f"evaluation report has no binary_classification_metrics.{metric}.value; found keys "
            f"{sorted(evaluation.get('binary_classification_metrics', {}))}"
        ) from exc


def csv_payload(rows: Sequence[Row]) -> str:
    return "".join(",".join("" if v is None else repr(float(v)) for v in row) + "\n" for row in rows)


def json_payload(feature_names: Sequence[str], rows: Sequence[Row]) -> str:
    return json.dumps({"instances": [dict(zip(feature_names, row, strict=True)) for row in rows]})


def parse_json_predictions(body: str, expected_rows: int) -> list[float]:
    """Check the JSON response's schema; return the probabilities."""
    try:
        document = json.loads(body)
    except json.JSONDecodeError as exc:
        raise ContractViolation(f"expected a JSON response, found {body[:200]!r}") from exc
    predictions = document.get("predictions") if isinstance(document, dict) else None
    if not isinstance(predictions, list):
        raise ContractViolation(f'expected {{"predictions": [...]}}, found {body[:200]!r}')
    if len(predictions) != expected_rows:
        raise ContractViolation(f"expected {expected_rows} predictions, one per row sent, found {len(predictions)}")
    probabilities = []
    for index, prediction in enumerate(predictions):
        if not isinstance(prediction, dict) or set(prediction) != {"probability", "label"}:
            raise ContractViolation(f"predictions[{index}]: expected keys probability and label, found {prediction!r}")
        probability, label = prediction["probability"], prediction["label"]
        if not isinstance(probability, int | float) or isinstance(probability, bool) or not 0.0 <= probability <= 1.0:
            raise ContractViolation(
                f"predictions[{index}].probability: expected a number in [0, 1], found {probability!r}"
            )
        if label not in (0, 1) or isinstance(label, bool):
            raise ContractViolation(f"predictions[{index}].label: expected 0 or 1, found {label!r}")
        if label != int(probability >= DECISION_THRESHOLD):
            raise ContractViolation(
                f"predictions[{index}]: label {label} disagrees with probability {probability} at threshold "
                f"{DECISION_THRESHOLD}"
            )
        probabilities.append(float(probability))
    return probabilities


def parse_csv_predictions(body: str, expected_rows: int) -> list[float]:
    lines = [line for line in body.splitlines() if line.strip()]
    if len(lines) != expected_rows:
        raise ContractViolation(f"expected {expected_rows} CSV lines, one probability per row, found {len(lines)}")
    values = []
    for number, line in enumerate(lines, start=1):
        try:
            value = float(line)
        except ValueError:
            raise ContractViolation(f"CSV line {number}: expected a probability, found {line!r}") from None
        if not 0.0 <= value <= 1.0:
            raise ContractViolation(f"CSV line {number}: expected a probability in [0, 1], found {value}")
        values.append(value)
    return values


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


def classification_metric(metric: str, labels: Sequence[int], scores: Sequence[float]) -> float:
    if metric == "auc":
        return auc(labels, scores)
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
    raise ValueError(f"expected one of auc, f1, precision, recall, accuracy, found {metric!r}")


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
