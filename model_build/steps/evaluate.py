"""Evaluate step: score the test split through the packaged model's own serving code, for any task.

The model artifact (`model.tar.gz`) is unpacked and its `code/inference.py` handlers are driven
exactly as an endpoint drives them (CSV payload in, JSON predictions out), so the metrics describe
what will be served, preprocessing included. The task, label and features are the model's
`code/use_case.json`, which must equal this step's own `use_case.json` (the build's use case).

Writes to the `evaluation` output:
  evaluation.json       SageMaker model-quality metrics: binary_classification_metrics (with the confusion
                        matrix and ROC curve), multiclass_classification_metrics (with the confusion matrix)
                        or regression_metrics; plus "task", "classes" and "test_rows"
  analysis.json         feature attributions in SageMaker Clarify's explainability report format
  explanations_shap/out.csv   per-row attributions, one column per feature (Clarify's layout; XGBoost only)
  plots: binary roc.png + confusion_matrix.png, multiclass confusion_matrix.png, regression
         predicted_vs_actual.png; feature_importance.png; report.md
  model_quality/statistics.json, model_quality/constraints.json   Model Monitor model-quality baseline

XGBoost attributions are its own TreeSHAP (`pred_contribs`): exact Shapley values of the booster's margin
on the preprocessed features for every test row (binary: log-odds; regression: the prediction; multiclass:
each class's margin, |values| summed over the classes). Clarify's KernelSHAP would approximate the same
values at the cost of a second processing job. A scikit-learn forest reports its impurity-based
`feature_importances_` in the same report shape, and `method` says so.
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
    mean_absolute_error,
    mean_squared_error,
    precision_score,
    r2_score,
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
    parser.add_argument(
        "--use-case-file",
        default=str(Path(__file__).with_name("use_case.json")),
        help="the build's use case spec (default: use_case.json beside this script, as the code bundle has it)",
    )
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
    """What the endpoint answers for the rows: binary P(class 1), multiclass (rows, K) probabilities, or values."""
    model = handlers.model_fn(str(unpacked))
    if list(features.columns) != model.feature_names:
        raise EvaluateError("the test split's feature columns differ from the ones the model was trained on")
    payload = features.to_csv(header=False, index=False)
    parsed = handlers.input_fn(payload, "text/csv", model)
    body, _ = handlers.output_fn(handlers.predict_fn(parsed, model), "application/json", model)
    predictions = json.loads(body)["predictions"]
    if model.task == "multiclass":
        return np.asarray([p["probabilities"] for p in predictions], dtype=float), model
    key = "value" if model.task == "regression" else "probability"
    return np.asarray([p[key] for p in predictions], dtype=float), model


def attributions(model: Any, features: pd.DataFrame) -> tuple[np.ndarray, Any]:
    """TreeSHAP values per row and feature (margin space) and the expected value (the bias term).

    Computed on the rows exactly as serving sees them: the packaged preprocessor imputes and scales,
    and the booster is cut at its best iteration like `predict`. Each row's values plus the bias add
    up to that row's margin, which is what makes them Shapley values of the served model. A multiclass
    booster has one margin per class: the row's |values| are summed over the classes, and the expected
    value is the list of the classes' biases.
    """
    import xgboost as xgb

    matrix = xgb.DMatrix(model.transform(features.to_numpy(dtype=float)))
    ranged = {"iteration_range": (0, model.best_iteration + 1)} if model.best_iteration >= 0 else {}
    contributions = np.asarray(model.booster.predict(matrix, pred_contribs=True, **ranged))
    width = len(model.feature_names) + 1
    if model.task == "multiclass":
        expected = (len(features), len(model.classes), width)
        if contributions.shape != expected:
            raise EvaluateError(
                f"expected pred_contribs of shape {expected} (rows, classes, features + bias), "
                f"found {contributions.shape}"
            )
        return np.abs(contributions[:, :, :-1]).sum(axis=1), [float(b) for b in contributions[0, :, -1]]
    if contributions.shape != (len(features), width):
        raise EvaluateError(
            f"expected pred_contribs of shape {(len(features), width)} (rows, features + bias), "
            f"found {contributions.shape}"
        )
    return contributions[:, :-1], float(contributions[0, -1])


TREE_SHAP_METHOD = {
    "binary": "tree_shap (xgboost pred_contribs, margin space)",
    "multiclass": "tree_shap (xgboost pred_contribs, margin space, |values| summed over classes)",
    "regression": "tree_shap (xgboost pred_contribs, prediction space)",
}
FOREST_METHOD = (
    "feature_importances (scikit-learn random forest, mean impurity decrease; not Shapley values, "
    "global only, expected_value is the mean served prediction on the test split)"
)


def forest_importances(model: Any, outputs: np.ndarray) -> tuple[dict[str, float], Any]:
    """A forest's impurity-based importances per feature, and the mean served prediction as expected value."""
    importances = np.asarray(model.estimator.feature_importances_, dtype=float)
    if importances.shape != (len(model.feature_names),):
        raise EvaluateError(
            f"expected one importance per feature ({len(model.feature_names)}), found shape {importances.shape}"
        )
    mean = outputs.mean(axis=0)
    expected = [float(v) for v in mean] if np.ndim(mean) else float(mean)
    return dict(zip(model.feature_names, (float(v) for v in importances), strict=True)), expected


def explainability_report(
    global_values: dict[str, float], expected_value: Any, *, method: str, rows: int
) -> dict[str, Any]:
    """Clarify's `analysis.json` layout: global values per feature (for SHAP, the mean absolute value).

    Clarify nests results under the method that produced them; `kernel_shap` is the only key its
    report format (and Studio's rendering of it) knows, so the values are filed there and `method`
    says how they were computed.
    """
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
        "method": method,
        "rows": rows,
    }


def mean_absolute(names: list[str], values: np.ndarray) -> dict[str, float]:
    return {name: float(v) for name, v in zip(names, np.abs(values).mean(axis=0), strict=True)}


def top_features(report: dict[str, Any], count: int = 5) -> list[tuple[str, float]]:
    values = report["explanations"]["kernel_shap"]["label0"]["global_shap_values"]
    return sorted(values.items(), key=lambda kv: -kv[1])[:count]


def _value(v: float) -> dict[str, Any]:
    return {"value": float(v), "standard_deviation": "NaN"}


def metrics(
    y_true: np.ndarray, outputs: np.ndarray, task: str = "binary", classes: list[int] | None = None
) -> dict[str, Any]:
    """The model-quality report of the served outputs (see `score`) against the test labels."""
    section = baseline.MODEL_QUALITY_SECTION[task]
    report: dict[str, Any]
    if task == "binary":
        report = {section: _binary_metrics(y_true.astype(int), outputs)}
        report.update({"test_rows": len(y_true), "decision_threshold": DECISION_THRESHOLD})
    elif task == "multiclass":
        report = {section: _multiclass_metrics(y_true.astype(int), outputs, list(classes or []))}
        report["test_rows"] = len(y_true)
    else:
        mse = mean_squared_error(y_true, outputs)
        report = {
            section: {
                "r2": _value(r2_score(y_true, outputs)),
                "rmse": _value(np.sqrt(mse)),
                "mae": _value(mean_absolute_error(y_true, outputs)),
                "mse": _value(mse),
            },
            "test_rows": len(y_true),
        }
    report.update({"task": task, "classes": None if task == "regression" else list(classes or [0, 1])})
    return report


def _binary_metrics(y_true: np.ndarray, probabilities: np.ndarray) -> dict[str, Any]:
    predicted = (probabilities >= DECISION_THRESHOLD).astype(int)
    fpr, tpr, _ = roc_curve(y_true, probabilities)
    matrix = confusion_matrix(y_true, predicted, labels=[0, 1])
    return {
        "auc": _value(roc_auc_score(y_true, probabilities)),
        "f1": _value(f1_score(y_true, predicted, zero_division=0)),
        "precision": _value(precision_score(y_true, predicted, zero_division=0)),
        "recall": _value(recall_score(y_true, predicted, zero_division=0)),
        "accuracy": _value(accuracy_score(y_true, predicted)),
        "confusion_matrix": {
            str(actual): {str(pred): int(matrix[actual][pred]) for pred in (0, 1)} for actual in (0, 1)
        },
        "receiver_operating_characteristic_curve": {
            "false_positive_rates": [float(x) for x in fpr],
            "true_positive_rates": [float(x) for x in tpr],
        },
    }


def _multiclass_metrics(y_true: np.ndarray, probabilities: np.ndarray, classes: list[int]) -> dict[str, Any]:
    if probabilities.ndim != 2 or probabilities.shape[1] != len(classes):
        raise EvaluateError(
            f"expected {len(classes)} probabilities per row (classes {classes}), found shape {probabilities.shape}"
        )
    predicted = np.argmax(probabilities, axis=1)
    matrix = confusion_matrix(y_true, predicted, labels=classes)
    weighted = {"average": "weighted", "labels": classes, "zero_division": 0}
    return {
        "accuracy": _value(accuracy_score(y_true, predicted)),
        "weighted_f1": _value(f1_score(y_true, predicted, **weighted)),
        "weighted_precision": _value(precision_score(y_true, predicted, **weighted)),
        "weighted_recall": _value(recall_score(y_true, predicted, **weighted)),
        "confusion_matrix": {
            str(actual): {str(pred): int(matrix[i][j]) for j, pred in enumerate(classes)}
            for i, actual in enumerate(classes)
        },
    }


def _confusion_plot(plt: Any, cm: dict[str, dict[str, int]], out: Path) -> None:
    labels = list(cm)
    grid = np.array([[cm[actual][pred] for pred in labels] for actual in labels])
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    ax.imshow(grid, cmap="Blues")
    for (i, j), count in np.ndenumerate(grid):
        ax.text(j, i, str(count), ha="center", va="center")
    ticks = list(range(len(labels)))
    ax.set(xticks=ticks, yticks=ticks, xlabel="predicted", ylabel="actual", title="Confusion matrix")
    fig.tight_layout()
    fig.savefig(out / "confusion_matrix.png")
    plt.close(fig)


def plots(
    report: dict[str, Any],
    out: Path,
    explanations: dict[str, Any] | None = None,
    served: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[str]:
    """The task's plots; `served` is (actual, predicted) for a regression's predicted-vs-actual plot."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    task = baseline.report_task(report)
    m = report[baseline.MODEL_QUALITY_SECTION[task]]
    images = []
    if task == "binary":
        roc = m["receiver_operating_characteristic_curve"]
        fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
        ax.plot(roc["false_positive_rates"], roc["true_positive_rates"], label=f"AUC {m['auc']['value']:.3f}")
        ax.plot([0, 1], [0, 1], linestyle="--", color="grey")
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC (test split)")
        ax.legend(loc="lower right")
        fig.tight_layout()
        fig.savefig(out / "roc.png")
        plt.close(fig)
        images.append("roc.png")
    if task in ("binary", "multiclass"):
        _confusion_plot(plt, m["confusion_matrix"], out)
        images.append("confusion_matrix.png")
    if task == "regression" and served is not None:
        actual, predicted = served
        low, high = float(min(actual.min(), predicted.min())), float(max(actual.max(), predicted.max()))
        fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
        ax.scatter(actual, predicted, s=8, alpha=0.7)
        ax.plot([low, high], [low, high], linestyle="--", color="grey")
        ax.set(xlabel="actual", ylabel="predicted", title=f"Predicted vs actual (R² {m['r2']['value']:.3f})")
        fig.tight_layout()
        fig.savefig(out / "predicted_vs_actual.png")
        plt.close(fig)
        images.append("predicted_vs_actual.png")
    if explanations is None:
        return images
    ranked = top_features(explanations, count=10)[::-1]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    ax.barh([name for name, _ in ranked], [value for _, value in ranked], color="tab:blue")
    shap = explanations["method"].startswith("tree_shap")
    unit = {"binary": "log-odds", "multiclass": "margin, summed over classes", "regression": "prediction"}[task]
    ax.set(
        xlabel=f"mean |SHAP value| ({unit})" if shap else "mean impurity decrease",
        title="Top features (TreeSHAP, test split)" if shap else "Top features (forest importances)",
    )
    fig.tight_layout()
    fig.savefig(out / "feature_importance.png")
    plt.close(fig)
    return [*images, "feature_importance.png"]


def markdown(report: dict[str, Any], images: list[str], explanations: dict[str, Any]) -> str:
    task = baseline.report_task(report)
    m = report[baseline.MODEL_QUALITY_SECTION[task]]
    shap = explanations["method"].startswith("tree_shap")
    if task == "binary":
        scope = f"{report['test_rows']} rows, decision threshold {report['decision_threshold']}."
    elif task == "multiclass":
        scope = f"{report['test_rows']} rows, {len(report['classes'])} classes (the label is the most probable)."
    else:
        scope = f"{report['test_rows']} rows, regression."
    lines = [
        "# Model evaluation (test split)",
        "",
        scope,
        "",
        "| metric | value |",
        "|---|---|",
        *(f"| {name} | {m[name]['value']:.4f} |" for name in baseline.MODEL_QUALITY_METRICS[task]),
        "",
        "Top features (mean |SHAP value|, TreeSHAP on the test split):"
        if shap
        else "Top features (the forest's impurity-based importances):",
        "",
        *(f"{rank}. {name}: {value:.4f}" for rank, (name, value) in enumerate(top_features(explanations), start=1)),
        "",
    ]
    if images:
        lines += [f"![{name}]({name})" for name in images]
    else:
        lines.append("Plots not rendered: matplotlib is not installed in this image.")
    return "\n".join(lines) + "\n"


def read_bundle_spec(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise EvaluateError(
            f"expected the use case's use_case.json at {path}, found none; the build writes UseCase.step_spec() "
            "into every step's code bundle (pass --use-case-file when running the step by hand)"
        )
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EvaluateError(f"{path}: expected UseCase.step_spec() as JSON, found unreadable content ({exc})") from exc
    if not isinstance(spec, dict):
        raise EvaluateError(f"{path}: expected a JSON object, found {type(spec).__name__}")
    return spec


def run(args: argparse.Namespace) -> dict[str, Any]:
    expected_spec = read_bundle_spec(Path(args.use_case_file))
    test_files = sorted(Path(args.test_dir).glob("*.csv"))
    if len(test_files) != 1:
        raise EvaluateError(f"expected one test CSV in {args.test_dir}, found {[f.name for f in test_files]}")
    test = pd.read_csv(test_files[0])
    with tempfile.TemporaryDirectory() as tmp:
        unpacked = unpack_model(Path(args.model_dir), Path(tmp))
        handlers = load_handlers(unpacked)
        model_spec_file = unpacked / "code" / handlers.USE_CASE_FILE
        try:
            spec = handlers.read_step_spec(model_spec_file)
        except handlers.ModelLoadError as exc:
            raise EvaluateError(f"the model artifact's use case: {exc}") from exc
        # The whole documents, not the keys read here: a key the build adds later must agree too.
        trained_for = json.loads(model_spec_file.read_text(encoding="utf-8"))
        if trained_for != expected_spec:
            raise EvaluateError(
                f"the model was trained for {trained_for}, this evaluation is for {expected_spec}; "
                "the Train and Evaluate steps must come from the same build"
            )
        if spec.label not in test.columns:
            raise EvaluateError(f"expected a label column {spec.label!r} in the test split, found {list(test)[:5]}...")
        labels = test[spec.label].to_numpy(dtype=float)
        features = test.drop(columns=[spec.label])
        outputs, model = score(handlers, unpacked, features)
        names = list(features.columns)
        if spec.framework == "xgboost":
            values, expected_value = attributions(model, features)
            explanations = explainability_report(
                mean_absolute(names, values), expected_value, method=TREE_SHAP_METHOD[spec.task], rows=len(features)
            )
        else:
            values = None
            importances, expected_value = forest_importances(model, outputs)
            explanations = explainability_report(importances, expected_value, method=FOREST_METHOD, rows=len(features))
    report = metrics(labels, outputs, spec.task, spec.classes)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "evaluation.json").write_text(json.dumps(report, indent=2))
    (out / "analysis.json").write_text(json.dumps(explanations, indent=2))
    if values is not None:
        (out / "explanations_shap").mkdir(exist_ok=True)
        pd.DataFrame(values, columns=names).to_csv(out / "explanations_shap" / "out.csv", index=False)
    images = plots(report, out, explanations, served=(labels, outputs) if spec.task == "regression" else None)
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
    task = baseline.report_task(report)
    m = report[baseline.MODEL_QUALITY_SECTION[task]]
    print("evaluate: " + " ".join(f"{k}={m[k]['value']:.4f}" for k in baseline.MODEL_QUALITY_METRICS[task]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
