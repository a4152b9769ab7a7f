"""Train step: XGBoost or a scikit-learn random forest in script mode, under the SageMaker training contract.

SageMaker runs this file from the `code` input channel (the pipeline's ContainerEntrypoint), so it
reads the platform contract directly and also honours the `SM_*` variables a framework toolkit sets:

  use case         use_case.json beside this file (UseCase.step_spec(): task, framework, label, classes)
  hyperparameters  SM_HPS (JSON) or /opt/ml/input/config/hyperparameters.json (string values), the
                   framework's keys (XGBoostHyperparameters / SklearnHyperparameters of the use case)
  channels         SM_CHANNEL_<NAME> or /opt/ml/input/data/<name>/  (train, validation, preprocessor)
  model directory  SM_MODEL_DIR or /opt/ml/model/  (tarred into model.tar.gz by SageMaker)
  failure reason   /opt/ml/output/failure (SM_OUTPUT_DIR), shown as the job's FailureReason

Per task: XGBoost's binary:logistic / multi:softprob (num_class K) / reg:squarederror with early stopping
on the validation channel; or RandomForestClassifier / RandomForestRegressor (no early stopping; the
validation figures are recorded). The model directory holds everything serving needs: the model
(`xgboost-model.json` or `model.joblib`, which joblib loads in the scikit-learn image), the fitted
preprocessor, metadata, and `code/inference.py` with `code/use_case.json`, so the registered package
needs no repack step. Imports numpy at module level and the framework when training, so the file runs in
either framework's image.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np

if __package__:  # imported as model_build.steps.train (tests)
    from .inference import MODEL_FILES, USE_CASE_FILE, StepSpec, read_step_spec
else:  # run as a script in the container: inference.py is beside it in the code bundle
    from inference import (  # type: ignore[import-not-found,no-redef]
        MODEL_FILES,
        USE_CASE_FILE,
        StepSpec,
        read_step_spec,
    )

OPT_ML = Path("/opt/ml")

# name -> (type, default) per framework; the defaults are the use case schema's. Values arrive as strings.
HYPERPARAMETERS: dict[str, dict[str, tuple[type, object]]] = {
    "xgboost": {
        "max_depth": (int, 4),
        "eta": (float, 0.1),
        "num_round": (int, 300),
        "early_stopping_rounds": (int, 20),
        "subsample": (float, 0.9),
        "colsample_bytree": (float, 0.9),
        "min_child_weight": (float, 1.0),
        "seed": (int, 42),
    },
    "sklearn": {
        "n_estimators": (int, 200),
        "max_depth": (int, 8),
        "min_samples_leaf": (int, 1),
        "max_features": (float, 1.0),
        "seed": (int, 42),
    },
}
# XGBoost's evaluation metrics per task; early stopping watches the last one.
XGBOOST_OBJECTIVES = {
    "binary": ("binary:logistic", ["logloss", "auc"]),
    "multiclass": ("multi:softprob", ["merror", "mlogloss"]),
    "regression": ("reg:squarederror", ["rmse"]),
}


class TrainError(Exception):
    """The inputs or hyperparameters are not usable."""


def _env_path(variable: str, default: Path) -> Path:
    value = os.environ.get(variable)
    return Path(value) if value else default


def channel_dir(name: str) -> Path:
    return _env_path(f"SM_CHANNEL_{name.upper()}", OPT_ML / "input" / "data" / name)


def read_hyperparameters(framework: str = "xgboost") -> dict[str, object]:
    known = HYPERPARAMETERS[framework]
    if os.environ.get("SM_HPS"):
        raw = json.loads(os.environ["SM_HPS"])
    else:
        path = _env_path("SM_INPUT_CONFIG_DIR", OPT_ML / "input" / "config") / "hyperparameters.json"
        raw = json.loads(path.read_text()) if path.exists() else {}
    # The SDK adds its own bookkeeping keys (prefixed "sagemaker_"); ignore those only.
    raw = {k: v for k, v in raw.items() if not k.startswith("sagemaker_")}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise TrainError(f"unknown hyperparameter(s) {unknown} for {framework}; expected a subset of {sorted(known)}")
    parsed: dict[str, object] = {}
    for name, (kind, default) in known.items():
        value = raw.get(name, default)
        try:
            parsed[name] = kind(json.loads(value) if isinstance(value, str) else value)
        except (TypeError, ValueError, json.JSONDecodeError):
            raise TrainError(f"hyperparameter {name}: expected {kind.__name__}, found {value!r}") from None
    return parsed


def load_channel(name: str) -> tuple[np.ndarray, np.ndarray]:
    directory = channel_dir(name)
    files = sorted(directory.glob("*.csv"))
    if not files:
        raise TrainError(f"channel {name!r}: expected CSV files in {directory}, found none")
    data = np.vstack([np.loadtxt(f, delimiter=",", ndmin=2) for f in files])
    return data[:, 1:], data[:, 0]


def _check_labels(spec: StepSpec, labels: np.ndarray, channel: str) -> None:
    if spec.task == "regression":
        return
    found = sorted({float(v) for v in labels})
    if not set(found) <= {float(c) for c in spec.classes or []}:
        raise TrainError(
            f"channel {channel!r}: expected labels in {spec.classes} (use case {spec.name!r}), found {found[:10]}"
        )


def train(spec: StepSpec, hyperparameters: dict[str, object]) -> tuple[Any, dict[str, Any]]:
    x_train, y_train = load_channel("train")
    x_valid, y_valid = load_channel("validation")
    _check_labels(spec, y_train, "train")
    _check_labels(spec, y_valid, "validation")
    if spec.framework == "xgboost":
        model, metadata = _train_xgboost(spec, hyperparameters, (x_train, y_train), (x_valid, y_valid))
    else:
        model, metadata = _train_forest(spec, hyperparameters, (x_train, y_train), (x_valid, y_valid))
    metadata.update(
        {
            "train_rows": int(x_train.shape[0]),
            "validation_rows": int(x_valid.shape[0]),
            "hyperparameters": hyperparameters,
        }
    )
    return model, metadata


Split = tuple[np.ndarray, np.ndarray]


def _train_xgboost(
    spec: StepSpec, hyperparameters: dict[str, object], train_split: Split, valid_split: Split
) -> tuple[Any, dict[str, Any]]:
    import xgboost as xgb

    objective, eval_metrics = XGBOOST_OBJECTIVES[spec.task]
    params: dict[str, Any] = {
        "objective": objective,
        "eval_metric": eval_metrics,
        "max_depth": hyperparameters["max_depth"],
        "eta": hyperparameters["eta"],
        "subsample": hyperparameters["subsample"],
        "colsample_bytree": hyperparameters["colsample_bytree"],
        "min_child_weight": hyperparameters["min_child_weight"],
        "seed": hyperparameters["seed"],
        "nthread": 1,  # deterministic across machines; the data sets are small
        "tree_method": "hist",
    }
    if spec.task == "multiclass":
        params["num_class"] = len(spec.classes or [])
    dtrain = xgb.DMatrix(train_split[0], label=train_split[1])
    dvalid = xgb.DMatrix(valid_split[0], label=valid_split[1])
    history: dict[str, Any] = {}
    booster = xgb.train(
        params,
        dtrain,
        num_boost_round=int(hyperparameters["num_round"]),  # type: ignore[call-overload]
        evals=[(dtrain, "train"), (dvalid, "validation")],
        early_stopping_rounds=int(hyperparameters["early_stopping_rounds"]),  # type: ignore[call-overload]
        evals_result=history,
        verbose_eval=False,
    )
    best = int(booster.best_iteration)
    metadata: dict[str, Any] = {"best_iteration": best, "xgboost_version": xgb.__version__}
    for metric in eval_metrics:
        metadata[f"validation_{metric}"] = float(history["validation"][metric][best])
    return booster, metadata


def _train_forest(
    spec: StepSpec, hyperparameters: dict[str, object], train_split: Split, valid_split: Split
) -> tuple[Any, dict[str, Any]]:
    import sklearn
    from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
    from sklearn.metrics import accuracy_score, log_loss, mean_squared_error, roc_auc_score

    options: dict[str, Any] = {
        "n_estimators": int(hyperparameters["n_estimators"]),  # type: ignore[call-overload]
        "max_depth": int(hyperparameters["max_depth"]),  # type: ignore[call-overload]
        "min_samples_leaf": int(hyperparameters["min_samples_leaf"]),  # type: ignore[call-overload]
        "max_features": float(hyperparameters["max_features"]),  # type: ignore[arg-type]
        "random_state": int(hyperparameters["seed"]),  # type: ignore[call-overload]
        "n_jobs": 1,  # deterministic and within the instance's means; the data sets are small
    }
    (x_train, y_train), (x_valid, y_valid) = train_split, valid_split
    metadata: dict[str, Any] = {"sklearn_version": sklearn.__version__}
    if spec.task == "regression":
        forest: Any = RandomForestRegressor(**options).fit(x_train, y_train)
        metadata["validation_rmse"] = float(np.sqrt(mean_squared_error(y_valid, forest.predict(x_valid))))
        return forest, metadata
    # Integer labels, so the fitted classes_ are the use case's class values (the endpoint's labels).
    forest = RandomForestClassifier(**options).fit(x_train, y_train.astype(int))
    if [int(c) for c in forest.classes_] != spec.classes:
        raise TrainError(
            f"channel 'train': expected every class of {spec.classes} among the training rows, found "
            f"{[int(c) for c in forest.classes_]}; the split must hold each class (more rows, or fewer classes)"
        )
    probabilities = forest.predict_proba(x_valid)
    labels = y_valid.astype(int)
    if spec.task == "binary":
        metadata["validation_logloss"] = float(log_loss(labels, probabilities, labels=spec.classes))
        metadata["validation_auc"] = float(roc_auc_score(labels, probabilities[:, 1]))
    else:
        metadata["validation_mlogloss"] = float(log_loss(labels, probabilities, labels=spec.classes))
        metadata["validation_accuracy"] = float(accuracy_score(labels, np.argmax(probabilities, axis=1)))
    return forest, metadata


def save(model: Any, metadata: dict[str, Any], model_dir: Path, spec: StepSpec, spec_file: Path) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    path = model_dir / MODEL_FILES[spec.framework]
    if spec.framework == "xgboost":
        model.save_model(str(path))
    else:
        import joblib  # type: ignore[import-untyped]

        joblib.dump(model, path)
    preprocessor = channel_dir("preprocessor") / "preprocessor.json"
    if not preprocessor.exists():
        raise TrainError(f"channel 'preprocessor': expected {preprocessor}; the endpoint needs the fitted transform")
    shutil.copyfile(preprocessor, model_dir / "preprocessor.json")
    (model_dir / "metadata.json").write_text(json.dumps(metadata, indent=2, sort_keys=True))
    code = model_dir / "code"
    code.mkdir(exist_ok=True)
    shutil.copyfile(Path(__file__).with_name("inference.py"), code / "inference.py")
    shutil.copyfile(spec_file, code / USE_CASE_FILE)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--use-case-file",
        default=str(Path(__file__).with_name(USE_CASE_FILE)),
        help="the use case's step spec (default: use_case.json beside this script, as the code bundle has it)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    model_dir = _env_path("SM_MODEL_DIR", OPT_ML / "model")
    failure_file = _env_path("SM_OUTPUT_DIR", OPT_ML / "output") / "failure"
    try:
        spec_file = Path(args.use_case_file)
        spec = read_step_spec(spec_file)
        model, metadata = train(spec, read_hyperparameters(spec.framework))
        save(model, metadata, model_dir, spec, spec_file)
    except Exception as exc:  # report any failure to SageMaker, then fail the job
        reason = f"{type(exc).__name__}: {exc}"
        try:
            failure_file.parent.mkdir(parents=True, exist_ok=True)
            failure_file.write_text(reason[:1024])
        except OSError:
            print(f"could not write {failure_file}", file=sys.stderr)
        traceback.print_exc()
        return 1
    # SageMaker's metric definitions read these lines from the job log.
    for name in sorted(k for k in metadata if k.startswith("validation_") and k != "validation_rows"):
        print(f"{name.replace('_', '-')}: {metadata[name]:.6f}")
    if "best_iteration" in metadata:
        print(f"best-iteration: {metadata['best_iteration']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
