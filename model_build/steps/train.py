"""Train step: XGBoost in script mode under the SageMaker training container contract.

SageMaker runs this file from the `code` input channel (the pipeline's ContainerEntrypoint), so it
reads the platform contract directly and also honours the `SM_*` variables a framework toolkit sets:

  hyperparameters  SM_HPS (JSON) or /opt/ml/input/config/hyperparameters.json (string values)
  channels         SM_CHANNEL_<NAME> or /opt/ml/input/data/<name>/  (train, validation, preprocessor)
  model directory  SM_MODEL_DIR or /opt/ml/model/  (tarred into model.tar.gz by SageMaker)
  failure reason   /opt/ml/output/failure (SM_OUTPUT_DIR), shown as the job's FailureReason

The model directory holds everything serving needs: the booster, the fitted preprocessor, metadata
and `code/inference.py`, so the registered package needs no repack step.
Imports only what the framework image has (numpy, xgboost).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import traceback
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

OPT_ML = Path("/opt/ml")

# name -> (type, default). Values arrive as strings from SageMaker.
HYPERPARAMETERS: dict[str, tuple[type, object]] = {
    "max_depth": (int, 4),
    "eta": (float, 0.1),
    "num_round": (int, 300),
    "early_stopping_rounds": (int, 20),
    "subsample": (float, 0.9),
    "colsample_bytree": (float, 0.9),
    "min_child_weight": (float, 1.0),
    "seed": (int, 42),
}


class TrainError(Exception):
    """The inputs or hyperparameters are not usable."""


def _env_path(variable: str, default: Path) -> Path:
    value = os.environ.get(variable)
    return Path(value) if value else default


def channel_dir(name: str) -> Path:
    return _env_path(f"SM_CHANNEL_{name.upper()}", OPT_ML / "input" / "data" / name)


def read_hyperparameters() -> dict[str, object]:
    if os.environ.get("SM_HPS"):
        raw = json.loads(os.environ["SM_HPS"])
    else:
        path = _env_path("SM_INPUT_CONFIG_DIR", OPT_ML / "input" / "config") / "hyperparameters.json"
        raw = json.loads(path.read_text()) if path.exists() else {}
    # The SDK adds its own bookkeeping keys (prefixed "sagemaker_"); ignore those only.
    raw = {k: v for k, v in raw.items() if not k.startswith("sagemaker_")}
    unknown = sorted(set(raw) - set(HYPERPARAMETERS))
    if unknown:
        raise TrainError(f"unknown hyperparameter(s) {unknown}; expected a subset of {sorted(HYPERPARAMETERS)}")
    parsed: dict[str, object] = {}
    for name, (kind, default) in HYPERPARAMETERS.items():
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


def train(hyperparameters: dict[str, object]) -> tuple[xgb.Booster, dict[str, Any]]:
    x_train, y_train = load_channel("train")
    x_valid, y_valid = load_channel("validation")
    params = {
        "objective": "binary:logistic",
        "eval_metric": ["logloss", "auc"],
        "max_depth": hyperparameters["max_depth"],
        "eta": hyperparameters["eta"],
        "subsample": hyperparameters["subsample"],
        "colsample_bytree": hyperparameters["colsample_bytree"],
        "min_child_weight": hyperparameters["min_child_weight"],
        "seed": hyperparameters["seed"],
        "nthread": 1,  # deterministic across machines; the data set is small
        "tree_method": "hist",
    }
    dtrain = xgb.DMatrix(x_train, label=y_train)
    dvalid = xgb.DMatrix(x_valid, label=y_valid)
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
    metadata = {
        "best_iteration": best,
        "validation_auc": float(history["validation"]["auc"][best]),
        "validation_logloss": float(history["validation"]["logloss"][best]),
        "train_rows": int(x_train.shape[0]),
        "validation_rows": int(x_valid.shape[0]),
        "hyperparameters": hyperparameters,
        "xgboost_version": xgb.__version__,
    }
    return booster, metadata


def save(booster: xgb.Booster, metadata: dict[str, Any], model_dir: Path) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(model_dir / "xgboost-model.json"))
    preprocessor = channel_dir("preprocessor") / "preprocessor.json"
    if not preprocessor.exists():
        raise TrainError(f"channel 'preprocessor': expected {preprocessor}; the endpoint needs the fitted transform")
    shutil.copyfile(preprocessor, model_dir / "preprocessor.json")
    (model_dir / "metadata.json").write_text(json.dumps(metadata, indent=2, sort_keys=True))
    code = model_dir / "code"
    code.mkdir(exist_ok=True)
    shutil.copyfile(Path(__file__).with_name("inference.py"), code / "inference.py")


def main() -> int:
    model_dir = _env_path("SM_MODEL_DIR", OPT_ML / "model")
    failure_file = _env_path("SM_OUTPUT_DIR", OPT_ML / "output") / "failure"
    try:
        booster, metadata = train(read_hyperparameters())
        save(booster, metadata, model_dir)
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
    print(f"validation-auc: {metadata['validation_auc']:.6f}")
    print(f"validation-logloss: {metadata['validation_logloss']:.6f}")
    print(f"best-iteration: {metadata['best_iteration']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
