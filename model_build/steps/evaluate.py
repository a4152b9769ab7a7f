"""Evaluate step: score the test split through the packaged model's own serving code.

The model artifact (`model.tar.gz`) is unpacked and its `code/inference.py` handlers are driven
exactly as an endpoint drives them (CSV payload in, probabilities out), so the metrics describe
what will be served, preprocessing included.

Writes to the `evaluation` output:
  evaluation.json       SageMaker model-quality metrics (binary_classification_metrics)
  analysis.json         feature attributions in SageMaker Clarify's explainability report format
  explanations_shap/out.csv   per-row attributions, one column per feature (Clarify's layout)
  roc.png, confusion_matrix.png, feature_importance.png, report.md
  model_quality/statistics.json, model_quality/constraints.json   Model Monitor model-quality baseline

The attributions are XGBoost's own TreeSHAP (`pred_contribs`): exact Shapley values of the booster's
margin (log-odds) on the preprocessed features, computed for every test row. Clarify's KernelSHAP would
approximate the same values at the cost of a second processing job.
Runs in the XGBoost framework image (numpy, pandas, scikit-learn, xgboost). matplotlib is used for
the plots when the image has it; without it the report says so and the metrics are unaffected.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tarfile
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

if __package__:  # imported as model_build.steps.evaluate (tests)
    from . import baseline
else:  # run as a script in the container: baseline.py is beside it in the code bundle
    import baseline  # type: ignore[import-not-found,no-redef]

DECISION_THRESHOLD = 0.5


class EvaluateError(Exception):
    pass


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", default="/opt/ml/processing/model")
    parser.add_argument("--test-dir", default="/opt/ml/processing/test")
    parser.add_argument("--output-dir", default="/opt/ml/processing/evaluation")
    parser.add_argument("--label-column", default="label")
    return parser.parse_args(argv)


def unpack_model(model_dir: Path, into: Path) -> Path:
    tarballs = sorted(model_dir.glob("*.tar.gz"))
    if len(tarballs) != 1:
        raise EvaluateError(f"expected one model .tar.gz in {model_dir}, found {[t.name for t in tarballs]}")
    with tarfile.open(tarballs[0]) as archive:
        archive.extractall(into, filter="data")
    return into


def load_handlers(unpacked: Path) -> ModuleType:
    script = unpacked / "code" / "inference.py"
    if not script.exists():
        raise EvaluateError(
            f"expected the serving code at code/inference.py in the model artifact, not found in {unpacked}"
        )
    spec = importlib.util.spec_from_file_location("packaged_inference", script)
    if spec is None or spec.loader is None:
        raise EvaluateError(f"cannot load {script} as a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def score(handlers: ModuleType, unpacked: Path, features: pd.DataFrame) -> tuple[np.ndarray, Any]:
    model = handlers.model_fn(str(unpacked))
    if list(features.columns) != model.feature_names:
        raise EvaluateError("the test split's feature columns differ from the ones the model was trained on")
    payload = features.to_csv(header=False, index=False)
    parsed = handlers.input_fn(payload, "text/csv", model)
    body, _ = handlers.output_fn(handlers.predict_fn(parsed, model), "application/json")
    return np.asarray([p["probability"] for p in json.loads(body)["predictions"]]), model


def attributions(model: Any, features: pd.DataFrame) -> tuple[np.ndarray, float]:
    """TreeSHAP values per row and feature (margin space) and the expected value (the bias term).

    Computed on the rows exactly as serving sees them: the packaged preprocessor imputes and scales,
    and the booster is cut at its best iteration like `predict_proba`. Each row's values plus the
    bias add up to that row's margin, which is what makes them Shapley values of the served model.
    """
    import xgboost as xgb

    matrix = xgb.DMatrix(model.transform(features.to_numpy(dtype=float)))
    ranged = {"iteration_range": (0, model.best_iteration + 1)} if model.best_iteration >= 0 else {}
    contributions = np.asarray(model.booster.predict(matrix, pred_contribs=True, **ranged))
    if contributions.shape != (len(features), len(model.feature_names) + 1):
        raise EvaluateError(
            f"expected pred_contribs of shape {(len(features), len(model.feature_names) + 1)} "
            f"(rows, features + bias), found {contributions.shape}"
        )
    return contributions[:, :-1], float(contributions[0, -1])


def explainability_report(names: list[str], values: np.ndarray, expected_value: float) -> dict[str, Any]:
    """Clarify's `analysis.json` layout: global values are the mean absolute SHAP value per feature.

    Clarify nests results under the method that produced them; `kernel_shap` is the only SHAP key its
    report format (and Studio's rendering of it) knows, so the exact TreeSHAP values are filed there and
    `method` says how they were computed.
    """
    global_values = {name: float(v) for name, v in zip(names, np.abs(values).mean(axis=0), strict=True)}
    return {
        "version": "1.0",
        "explanations": {
            "kernel_shap": {
                "label0": {
                    "global_shap_values": dict(sorted(global_values.items(), key=lambda kv: -kv[1])),
                    "expected_value": expected_value,
                }
            }
        },
        "method": "tree_shap (xgboost pred_contribs, margin space)",
        "rows": int(values.shape[0]),
    }


def top_features(report: dict[str, Any], count: int = 5) -> list[tuple[str, float]]:
    values = report["explanations"]["kernel_shap"]["label0"]["global_shap_values"]
    return sorted(values.items(), key=lambda kv: -kv[1])[:count]


def metrics(y_true: np.ndarray, probabilities: np.ndarray) -> dict[str, Any]:
    predicted = (probabilities >= DECISION_THRESHOLD).astype(int)
    fpr, tpr, _ = roc_curve(y_true, probabilities)
    matrix = confusion_matrix(y_true, predicted, labels=[0, 1])

    def value(v: float) -> dict[str, Any]:
        return {"value": float(v), "standard_deviation": "NaN"}

    return {
        "binary_classification_metrics": {
            "auc": value(roc_auc_score(y_true, probabilities)),
            "f1": value(f1_score(y_true, predicted, zero_division=0)),
            "precision": value(precision_score(y_true, predicted, zero_division=0)),
            "recall": value(recall_score(y_true, predicted, zero_division=0)),
            "accuracy": value(accuracy_score(y_true, predicted)),
            "confusion_matrix": {
                str(actual): {str(pred): int(matrix[actual][pred]) for pred in (0, 1)} for actual in (0, 1)
            },
            "receiver_operating_characteristic_curve": {
                "false_positive_rates": [float(x) for x in fpr],
                "true_positive_rates": [float(x) for x in tpr],
            },
        },
        "test_rows": len(y_true),
        "decision_threshold": DECISION_THRESHOLD,
    }


def plots(report: dict[str, Any], out: Path, explanations: dict[str, Any] | None = None) -> list[str]:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    m = report["binary_classification_metrics"]
    roc = m["receiver_operating_characteristic_curve"]
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    ax.plot(roc["false_positive_rates"], roc["true_positive_rates"], label=f"AUC {m['auc']['value']:.3f}")
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test split)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(out / "roc.png")
    plt.close(fig)
    cm = m["confusion_matrix"]
    grid = np.array([[cm["0"]["0"], cm["0"]["1"]], [cm["1"]["0"], cm["1"]["1"]]])
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    ax.imshow(grid, cmap="Blues")
    for (i, j), count in np.ndenumerate(grid):
        ax.text(j, i, str(count), ha="center", va="center")
    ax.set(xticks=[0, 1], yticks=[0, 1], xlabel="predicted", ylabel="actual", title="Confusion matrix")
    fig.tight_layout()
    fig.savefig(out / "confusion_matrix.png")
    plt.close(fig)
    if explanations is None:
        return ["roc.png", "confusion_matrix.png"]
    ranked = top_features(explanations, count=10)[::-1]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.barh([name for name, _ in ranked], [value for _, value in ranked], color="tab:blue")
    ax.set(xlabel="mean |SHAP value| (log-odds)", title="Top features (TreeSHAP, test split)")
    fig.tight_layout()
    fig.savefig(out / "feature_importance.png")
    plt.close(fig)
    return ["roc.png", "confusion_matrix.png", "feature_importance.png"]


def markdown(report: dict[str, Any], images: list[str], explanations: dict[str, Any]) -> str:
    m = report["binary_classification_metrics"]
    lines = [
        "# Model evaluation (test split)",
        "",
        f"{report['test_rows']} rows, decision threshold {report['decision_threshold']}.",
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {name} | {m[name]['value']:.4f} |" for name in ("auc", "f1", "precision", "recall", "accuracy")),
        "",
        "Top features (mean |SHAP value|, TreeSHAP on the test split):",
        "",
        *(f"{rank}. {name}: {value:.4f}" for rank, (name, value) in enumerate(top_features(explanations), start=1)),
        "",
    ]
    if images:
        lines += [f"![{name}]({name})" for name in images]
    else:
        lines.append("Plots not rendered: matplotlib is not installed in this image.")
    return "\n".join(lines) + "\n"


def run(args: argparse.Namespace) -> dict[str, Any]:
    test_files = sorted(Path(args.test_dir).glob("*.csv"))
    if len(test_files) != 1:
        raise EvaluateError(f"expected one test CSV in {args.test_dir}, found {[f.name for f in test_files]}")
    test = pd.read_csv(test_files[0])
    if args.label_column not in test.columns:
        raise EvaluateError(f"expected a label column {args.label_column!r} in the test split")
    y_true = test[args.label_column].to_numpy(dtype=int)
    features = test.drop(columns=[args.label_column])
    with tempfile.TemporaryDirectory() as tmp:
        unpacked = unpack_model(Path(args.model_dir), Path(tmp))
        probabilities, model = score(load_handlers(unpacked), unpacked, features)
        values, expected_value = attributions(model, features)
    report = metrics(y_true, probabilities)
    explanations = explainability_report(list(features.columns), values, expected_value)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_text(json.dumps(report, indent=2))
    (out / "analysis.json").write_text(json.dumps(explanations, indent=2))
    (out / "explanations_shap").mkdir(exist_ok=True)
    pd.DataFrame(values, columns=list(features.columns)).to_csv(out / "explanations_shap" / "out.csv", index=False)
    images = plots(report, out, explanations)
    (out / "report.md").write_text(markdown(report, images, explanations))
    write_model_quality_baseline(out / "model_quality", report)
    return report


def write_model_quality_baseline(out: Path, report: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "statistics.json").write_text(json.dumps(baseline.model_quality_statistics(report), indent=2))
    (out / "constraints.json").write_text(json.dumps(baseline.model_quality_constraints(report), indent=2))


def main(argv: list[str] | None = None) -> int:
    try:
        report = run(parse_args(argv))
    except EvaluateError as exc:
        print(f"evaluate failed: {exc}", file=sys.stderr)
        return 1
    m = report["binary_classification_metrics"]
    print("evaluate: " + " ".join(f"{k}={m[k]['value']:.4f}" for k in ("auc", "f1", "precision", "recall", "accuracy")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
