"""Inference handlers for the SageMaker XGBoost serving container (script mode).

`train.py` copies this file into the model directory under `code/`, and the model package is
registered with `SAGEMAKER_PROGRAM=inference.py` and `SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code`,
so the endpoint runs exactly this code with the fitted preprocessor that travels in the same tarball.

Requests: raw feature values, no preprocessing by the caller.
  text/csv          one row per line, the dataset's feature order, no header
  application/json  {"instances": [{"<feature name>": value, ...}, ...]} or {"instances": [[v1, v2, ...]]}
                    (a bare list is accepted too); null or a missing value in a list is imputed
Responses: the probability of the positive class (malignant).
  application/json  {"predictions": [{"probability": p, "label": 0|1}, ...]}
  text/csv          one probability per line
Imports only what the framework image has (numpy, xgboost).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import xgboost as xgb

MODEL_FILE = "xgboost-model.json"
PREPROCESSOR_FILE = "preprocessor.json"
METADATA_FILE = "metadata.json"
DECISION_THRESHOLD = 0.5
MAX_ROWS = 10_000
# InvokeEndpoint's Body is at most 6 MB (botocore sagemaker-runtime model); a container behind another
# front end could be sent more, and parsing it would cost memory before the row limit is reached.
MAX_BODY_BYTES = 6_291_456


class PayloadError(ValueError):
    """The request cannot be scored; the message says what was expected and what was found.

    The SageMaker inference toolkit answers a ValueError from the handlers with a 4xx-class error
    to the caller rather than a 500; the local twin maps it to 400 the same way.
    """


class UnsupportedMediaType(PayloadError):
    pass


_LOADED: list[Model] = []


class Model:
    def __init__(self, booster: xgb.Booster, preprocessor: dict[str, Any], metadata: dict[str, Any]) -> None:
        self.booster = booster
        self.feature_names: list[str] = list(preprocessor["feature_names"])
        self.medians = np.asarray(preprocessor["medians"], dtype=float)
        self.means = np.asarray(preprocessor["means"], dtype=float)
        self.scales = np.asarray(preprocessor["scales"], dtype=float)
        self.best_iteration = int(metadata.get("best_iteration", -1))

    def transform(self, raw: np.ndarray) -> np.ndarray:
        imputed = np.where(np.isnan(raw), self.medians, raw)
        return np.asarray((imputed - self.means) / self.scales)

    def predict_proba(self, raw: np.ndarray) -> np.ndarray:
        matrix = xgb.DMatrix(self.transform(raw))
        if self.best_iteration >= 0:
            return self.booster.predict(matrix, iteration_range=(0, self.best_iteration + 1))
        return self.booster.predict(matrix)


def model_fn(model_dir: str) -> Model:
    """Load the booster and its fitted preprocessor; remembered for input_fn of this process."""
    root = Path(model_dir)
    booster = xgb.Booster()
    booster.load_model(str(root / MODEL_FILE))
    preprocessor = json.loads((root / PREPROCESSOR_FILE).read_text())
    metadata_path = root / METADATA_FILE
    metadata = json.loads(metadata_path.read_text()) if metadata_path.exists() else {}
    model = Model(booster, preprocessor, metadata)
    _LOADED[:] = [model]
    return model


def _as_float(value: object, where: str) -> float:
    if value is None or (isinstance(value, str) and value.strip() == ""):
        return math.nan
    if isinstance(value, bool):
        raise PayloadError(f"{where}: expected a number, found a boolean {value!r}")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise PayloadError(f"{where}: expected a number, found {value!r}") from None
    if math.isinf(number):
        raise PayloadError(f"{where}: expected a finite number, found {value!r}")
    return number


def _rows_from_csv(text: str, names: list[str]) -> list[list[float]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        cells = line.split(",")
        if len(cells) != len(names):
            raise PayloadError(
                f"CSV line {number}: expected {len(names)} comma-separated feature values in the dataset's "
                f"order (no header, no label), found {len(cells)}"
            )
        rows.append([_as_float(c, f"CSV line {number}, column {i + 1} ({names[i]})") for i, c in enumerate(cells)])
    return rows


def _rows_from_json(text: str, names: list[str]) -> list[list[float]]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PayloadError(f"expected a JSON document, found invalid JSON ({exc.msg} at position {exc.pos})") from None
    except RecursionError:
        # The parser recurses per nesting level: a deeply nested document is the client's error, not ours.
        raise PayloadError(
            'expected {"instances": [...]} nested at most three levels deep, found JSON nested too deeply to parse'
        ) from None
    instances = document.get("instances") if isinstance(document, dict) else document
    if not isinstance(instances, list):
        raise PayloadError('expected {"instances": [...]} or a JSON list of records')
    rows = []
    known = set(names)
    for index, instance in enumerate(instances):
        where = f"instances[{index}]"
        if isinstance(instance, dict):
            unknown = sorted(set(instance) - known)
            if unknown:
                raise PayloadError(f"{where}: unknown feature(s) {unknown}; expected names from the training data")
            missing = [n for n in names if n not in instance]
            if missing:
                raise PayloadError(f"{where}: missing feature(s) {missing[:5]}; send null to have a value imputed")
            rows.append([_as_float(instance[n], f"{where}[{n!r}]") for n in names])
        elif isinstance(instance, list):
            if len(instance) != len(names):
                raise PayloadError(f"{where}: expected {len(names)} values in feature order, found {len(instance)}")
            rows.append([_as_float(v, f"{where}[{i}]") for i, v in enumerate(instance)])
        else:
            raise PayloadError(f"{where}: expected an object keyed by feature name or a list of values")
    return rows


def input_fn(request_body: bytes | str, request_content_type: str, model: Model | None = None) -> np.ndarray:
    """Parse a request into a float matrix of raw features (NaN where a value is to be imputed).

    The serving container calls `input_fn(body, content_type)`; the feature names come from the
    model loaded by `model_fn` of the same process, which `predict_fn` also checks.
    """
    names = model.feature_names if model is not None else _loaded_feature_names()
    size = len(request_body) if isinstance(request_body, bytes | bytearray) else len(request_body.encode("utf-8"))
    if size > MAX_BODY_BYTES:
        raise PayloadError(f"expected a request body of at most {MAX_BODY_BYTES} bytes, found {size}; split the batch")
    try:
        text = request_body.decode("utf-8") if isinstance(request_body, bytes | bytearray) else request_body
    except UnicodeDecodeError as exc:
        raise PayloadError(
            f"expected UTF-8 text, found byte 0x{exc.object[exc.start]:02x} at position {exc.start}"
        ) from None
    content_type = (request_content_type or "").split(";")[0].strip().lower()
    if content_type == "text/csv":
        rows = _rows_from_csv(text, names)
    elif content_type == "application/json":
        rows = _rows_from_json(text, names)
    else:
        raise UnsupportedMediaType(
            f"expected content type text/csv or application/json, found {request_content_type!r}"
        )
    if not rows:
        raise PayloadError("expected at least one row to score, found none")
    if len(rows) > MAX_ROWS:
        raise PayloadError(f"expected at most {MAX_ROWS} rows per request, found {len(rows)}; split the batch")
    return np.asarray(rows, dtype=float)


def predict_fn(input_data: np.ndarray, model: Model) -> np.ndarray:
    if input_data.ndim != 2 or input_data.shape[1] != len(model.feature_names):
        raise PayloadError(
            f"expected rows of {len(model.feature_names)} features, found shape {tuple(input_data.shape)}"
        )
    return model.predict_proba(input_data)


def output_fn(prediction: np.ndarray, accept: str) -> tuple[str, str]:
    accept = (accept or "application/json").split(";")[0].strip().lower()
    probabilities = [float(p) for p in prediction]
    if accept in ("application/json", "*/*"):
        body = {"predictions": [{"probability": p, "label": int(p >= DECISION_THRESHOLD)} for p in probabilities]}
        return json.dumps(body), "application/json"
    if accept == "text/csv":
        return "\n".join(f"{p:.10g}" for p in probabilities) + "\n", "text/csv"
    raise UnsupportedMediaType(f"expected accept type application/json or text/csv, found {accept!r}")


def _loaded_feature_names() -> list[str]:
    if not _LOADED:
        raise PayloadError("the model is not loaded; model_fn must run before input_fn")
    return _LOADED[-1].feature_names
