"""Model Monitor baselines in Model Monitor's own file formats, and the check of new data against them.

Runs inside SageMaker's framework containers (Preprocess: scikit-learn image, Evaluate: XGBoost
image), so it imports only numpy and pandas. It travels in the same content-addressed code bundle as
the step scripts that call it.

Data quality (Preprocess, on the raw training features), the documented schemas of SageMaker Model
Monitor's built-in analyzer:
  statistics.json    {"version": 0, "dataset": {"item_count"}, "features": [{"name", "inferred_type",
                      "numerical_statistics": {"common": {"num_present", "num_missing"}, "mean", "sum",
                      "std_dev", "min", "max", "distribution": {"kll": {"buckets", "sketch"}}}}]}
  constraints.json   {"version": 0, "features": [{"name", "inferred_type", "completeness",
                      "num_constraints": {"is_non_negative"}}], "monitoring_config": {...}}
Model quality (Evaluate, where the test split has labels), per task (binary, multiclass, regression):
  statistics.json    {"version": 0.0, "dataset": {"item_count"}, "<task section>": {...}}, the section one of
                      binary_classification_metrics, multiclass_classification_metrics, regression_metrics
  constraints.json   {"version": 0.0, "<binary_classification|multiclass_classification|regression>_constraints":
                      {metric: {"threshold", "comparison_operator"}}}: the operator is the violation condition,
                      LessThanThreshold for a score (auc, f1, r2, ...), GreaterThanThreshold for an error
                      (mae, mse, rmse)

`check_data_quality` is what a monitoring execution does with captured data: statistics of the new
rows in the same format, and `constraint_violations.json` entries (`feature_name`,
`constraint_check_type`, `description`) for missing or extra columns, wrong data types, completeness
below the baseline's and distribution drift beyond `comparison_threshold`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

KLL_BUCKETS = 10
# The parameters Model Monitor's analyzer records for its KLL sketches. With fewer items than k the
# sketch holds every item at level 0, which is what is written here.
KLL_PARAMETERS = {"c": 0.64, "k": 2048.0}
COMPARISON_THRESHOLD = 0.1
DATATYPE_CHECK_THRESHOLD = 0.1
# Model Monitor flags a score that falls this far below the baseline's value, or an error that grows this
# much relative to it (an error's scale is the label's, so an absolute margin would mean nothing).
MODEL_QUALITY_TOLERANCE = 0.05
# Model Monitor's model-quality sections and the metrics a quality gate may use, per task. The same as
# mlops.core.use_cases (MODEL_QUALITY_SECTION, METRICS, LOWER_IS_BETTER), which the step containers do not
# have; a test keeps the two equal.
MODEL_QUALITY_SECTION = {
    "binary": "binary_classification_metrics",
    "multiclass": "multiclass_classification_metrics",
    "regression": "regression_metrics",
}
MODEL_QUALITY_CONSTRAINTS_SECTION = {
    "binary": "binary_classification_constraints",
    "multiclass": "multiclass_classification_constraints",
    "regression": "regression_constraints",
}
MODEL_QUALITY_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("auc", "f1", "precision", "recall", "accuracy"),
    "multiclass": ("accuracy", "weighted_f1", "weighted_precision", "weighted_recall"),
    "regression": ("r2", "rmse", "mae", "mse"),
}
LOWER_IS_BETTER = frozenset({"rmse", "mae", "mse"})


class BaselineError(ValueError):
    """The data cannot be baselined or checked (no rows, no columns, nothing numeric)."""


def _inferred_type(column: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(column):
        return "String"
    if pd.api.types.is_integer_dtype(column):
        return "Integral"
    if pd.api.types.is_float_dtype(column):
        present = column.dropna()
        return "Integral" if present.size and bool(np.all(np.mod(present, 1) == 0)) else "Fractional"
    return "String"


def _kll(present: np.ndarray) -> dict[str, Any]:
    low, high = float(present.min()), float(present.max())
    edges = np.linspace(low, high, KLL_BUCKETS + 1) if high > low else np.array([low, high])
    counts, _ = np.histogram(present, bins=edges)
    buckets = [
        {"lower_bound": float(edges[i]), "upper_bound": float(edges[i + 1]), "count": float(counts[i])}
        for i in range(len(counts))
    ]
    return {
        "kll": {
            "buckets": buckets,
            "sketch": {"parameters": dict(KLL_PARAMETERS), "data": [[float(v) for v in np.sort(present)]]},
        }
    }


def data_quality_statistics(frame: pd.DataFrame) -> dict[str, Any]:
    """statistics.json of a table of features (Model Monitor's data-quality schema)."""
    if frame.shape[1] == 0:
        raise BaselineError("expected at least one feature column, found none")
    if len(frame) == 0:
        raise BaselineError(f"expected at least one row to compute statistics, found 0 (columns {list(frame)[:3]}...)")
    features = []
    for name in frame.columns:
        column = frame[name]
        kind = _inferred_type(column)
        missing = int(column.isna().sum())
        common = {"num_present": int(column.size - missing), "num_missing": missing}
        if kind == "String":
            present_text = column.dropna().astype(str)
            counts = present_text.value_counts()
            features.append(
                {
                    "name": str(name),
                    "inferred_type": "String",
                    "string_statistics": {
                        "common": common,
                        "distinct_count": float(counts.size),
                        "distribution": {
                            "categorical": {
                                "buckets": [{"value": str(v), "count": float(c)} for v, c in counts.items()]
                            }
                        },
                    },
                }
            )
            continue
        present = column.dropna().to_numpy(dtype=float)
        numerical: dict[str, Any] = {"common": common}
        if present.size:
            numerical.update(
                {
                    "mean": float(present.mean()),
                    "sum": float(present.sum()),
                    "std_dev": float(present.std(ddof=0)),
                    "min": float(present.min()),
                    "max": float(present.max()),
                    "distribution": _kll(present),
                }
            )
        features.append({"name": str(name), "inferred_type": kind, "numerical_statistics": numerical})
    return {"version": 0, "dataset": {"item_count": len(frame)}, "features": features}


def data_quality_constraints(statistics: dict[str, Any]) -> dict[str, Any]:
    """constraints.json suggested from a baseline's statistics, as Model Monitor's baselining job does."""
    rows = max(int(statistics["dataset"]["item_count"]), 1)
    features = []
    for feature in statistics["features"]:
        section = feature.get("numerical_statistics") or feature.get("string_statistics") or {}
        common = section.get("common", {})
        entry: dict[str, Any] = {
            "name": feature["name"],
            "inferred_type": feature["inferred_type"],
            "completeness": float(common.get("num_present", 0)) / rows,
        }
        if "numerical_statistics" in feature:
            entry["num_constraints"] = {"is_non_negative": bool(section.get("min", 0.0) >= 0)}
        else:
            buckets = section.get("distribution", {}).get("categorical", {}).get("buckets", [])
            entry["string_constraints"] = {"domains": [b["value"] for b in buckets]}
        features.append(entry)
    return {
        "version": 0,
        "features": features,
        "monitoring_config": {
            "evaluate_constraints": "Enabled",
            "emit_metrics": "Enabled",
            "datatype_check_threshold": DATATYPE_CHECK_THRESHOLD,
            "domain_content_threshold": 0.1,
            "distribution_constraints": {
                "perform_comparison": "Enabled",
                "comparison_threshold": COMPARISON_THRESHOLD,
                "comparison_method": "Robust",
                "categorical_comparison_threshold": 0.1,
                "categorical_drift_method": "LInfinity",
            },
        },
    }


def _sketch_values(feature: dict[str, Any]) -> np.ndarray:
    data = feature["numerical_statistics"]["distribution"]["kll"]["sketch"]["data"]
    return np.sort(np.concatenate([np.asarray(level, dtype=float) for level in data if level]))


def distribution_distance(baseline: np.ndarray, current: np.ndarray) -> float:
    """The L-infinity distance between the two empirical CDFs (0: same distribution, 1: disjoint)."""
    if baseline.size == 0 or current.size == 0:
        return 0.0
    points = np.union1d(baseline, current)
    cdf_baseline = np.searchsorted(np.sort(baseline), points, side="right") / baseline.size
    cdf_current = np.searchsorted(np.sort(current), points, side="right") / current.size
    return float(np.max(np.abs(cdf_baseline - cdf_current)))


def check_data_quality(
    current: pd.DataFrame, baseline_statistics: dict[str, Any], constraints: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, str]], dict[str, float]]:
    """(statistics of `current`, constraint violations, drift distance per feature) against a baseline."""
    statistics = data_quality_statistics(current)
    config = constraints.get("monitoring_config", {})
    distribution = config.get("distribution_constraints", {})
    threshold = float(distribution.get("comparison_threshold", COMPARISON_THRESHOLD))
    compare = distribution.get("perform_comparison", "Enabled") == "Enabled"
    expected = {f["name"]: f for f in constraints.get("features", [])}
    baseline_by_name = {f["name"]: f for f in baseline_statistics.get("features", [])}
    current_by_name = {f["name"]: f for f in statistics["features"]}
    violations: list[dict[str, str]] = []
    distances: dict[str, float] = {}
    for name, constraint in expected.items():
        found = current_by_name.get(name)
        if found is None:
            violations.append(
                {
                    "feature_name": name,
                    "constraint_check_type": "missing_column_check",
                    "description": f"Baseline feature {name!r} is missing from the analysed data",
                }
            )
            continue
        want, got = constraint.get("inferred_type"), found["inferred_type"]
        numeric = {"Integral", "Fractional"}
        if want in numeric and got not in numeric:
            violations.append(
                {
                    "feature_name": name,
                    "constraint_check_type": "data_type_check",
                    "description": f"Data type match requirement is not met. Expected {want}, found {got}",
                }
            )
            continue
        section = found.get("numerical_statistics") or found.get("string_statistics") or {}
        rows = max(int(statistics["dataset"]["item_count"]), 1)
        completeness = float(section.get("common", {}).get("num_present", 0)) / rows
        if completeness < float(constraint.get("completeness", 0.0)):
            violations.append(
                {
                    "feature_name": name,
                    "constraint_check_type": "completeness_check",
                    "description": f"Data completeness requirement is not met. Expected completeness "
                    f"{constraint['completeness']:.4f}, found {completeness:.4f}",
                }
            )
        if compare and name in baseline_by_name and "numerical_statistics" in found:
            baseline_feature = baseline_by_name[name]
            if "distribution" not in baseline_feature.get("numerical_statistics", {}):
                continue
            distance = distribution_distance(
                _sketch_values(baseline_feature), current[name].dropna().to_numpy(dtype=float)
            )
            distances[name] = distance
            if distance > threshold:
                violations.append(
                    {
                        "feature_name": name,
                        "constraint_check_type": "baseline_drift_check",
                        "description": f"Baseline drift distance: {distance:.4f} exceeds threshold: {threshold}",
                    }
                )
    for name in current_by_name:
        if name not in expected:
            violations.append(
                {
                    "feature_name": name,
                    "constraint_check_type": "extra_column_check",
                    "description": f"Feature {name!r} is not in the baseline constraints",
                }
            )
    return statistics, violations, distances


def report_task(report: dict[str, Any]) -> str:
    """The evaluation report's task; reports written before there were several tasks are binary."""
    task = report.get("task", "binary")
    if task not in MODEL_QUALITY_SECTION:
        raise BaselineError(f"expected the report's task to be one of {sorted(MODEL_QUALITY_SECTION)}, found {task!r}")
    return str(task)


def model_quality_statistics(report: dict[str, Any]) -> dict[str, Any]:
    """Model Monitor's model-quality statistics.json from the evaluation report (same metric layout)."""
    section = MODEL_QUALITY_SECTION[report_task(report)]
    metrics = report.get(section)
    if not isinstance(metrics, dict):
        raise BaselineError(f"expected {section} in the evaluation report, found keys {sorted(report)}")
    return {
        "version": 0.0,
        "dataset": {"item_count": int(report.get("test_rows", 0))},
        section: metrics,
    }


def model_quality_constraints(report: dict[str, Any], tolerance: float = MODEL_QUALITY_TOLERANCE) -> dict[str, Any]:
    """Model-quality constraints: a score may not fall more than `tolerance` below the baseline's value, an error
    may not grow more than `tolerance` (relative) above it. The operator names the violation, as Model Monitor's."""
    task = report_task(report)
    metrics = model_quality_statistics(report)[MODEL_QUALITY_SECTION[task]]
    constraints = {}
    for name in MODEL_QUALITY_METRICS[task]:
        if name not in metrics:
            continue
        value = float(metrics[name]["value"])
        if name in LOWER_IS_BETTER:
            constraints[name] = {"threshold": value * (1 + tolerance), "comparison_operator": "GreaterThanThreshold"}
        else:
            # Scores in [0, 1] do not go below 0; r2 does (a model worse than the mean).
            floor = value - tolerance if name == "r2" else max(0.0, value - tolerance)
            constraints[name] = {"threshold": floor, "comparison_operator": "LessThanThreshold"}
    return {"version": 0.0, MODEL_QUALITY_CONSTRAINTS_SECTION[task]: constraints}
