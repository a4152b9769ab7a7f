"""Inference handlers for the SageMaker framework serving containers (script mode), any task and framework.

`train.py` copies this file and the use case's `use_case.json` into the model directory under `code/`,
and the model package is registered with `SAGEMAKER_PROGRAM=inference.py` and
`SAGEMAKER_SUBMIT_DIRECTORY=/opt/ml/model/code`, so the endpoint runs exactly this code with the fitted
preprocessor that travels in the same tarball. `use_case.json` says the task (binary, multiclass,
regression), the framework (xgboost: `xgboost-model.json`; sklearn: `model.joblib`), the features and
the classes.

Requests: raw feature values, no preprocessing by the caller.
  text/csv          one row per line, the use case's feature order, no header
  application/json  {"instances": [{"<feature name>": value, ...}, ...]} or {"instances": [[v1, v2, ...]]}
                    (a bare list is accepted too); null or a missing value in a list is imputed
Responses, per task:
  binary      application/json  {"predictions": [{"probability": p, "label": 0|1}, ...]}  (p of class 1)
              text/csv          one probability per line
  multiclass  application/json  {"predictions": [{"label": k, "probabilities": [p0, ..., pK-1]}, ...]}
              text/csv          one line per row, the K probabilities comma-separated
  regression  application/json  {"predictions": [{"value": y}, ...]}
              text/csv          one value per line
Imports only numpy at module level; xgboost (XGBoost image) or joblib (scikit-learn image) when the model
is loaded, so the file serves in either framework's container.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

USE_CASE_FILE = "use_case.json"
MODEL_FILES = {"xgboost": "xgboost-model.json", "sklearn": "model.joblib"}
MODEL_FILE = MODEL_FILES["xgboost"]
PREPROCESSOR_FILE = "preprocessor.json"
METADATA_FILE = "metadata.json"
TASKS = ("binary", "multiclass", "regression")
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


class ModelLoadError(RuntimeError):
    """The model directory or its use_case.json is not what this code serves (a packaging fault, not a request's)."""


class StepSpec(NamedTuple):
    """`use_case.json`: what every step and the endpoint know of the use case (UseCase.step_spec()).

    A NamedTuple, not a dataclass: this file is also loaded from a path without a sys.modules entry
    (evaluate.py, the local twin), where a dataclass cannot resolve its annotations.
    """

    name: str
    task: str
    framework: str
    label: str
    features: list[str]
    classes: list[int] | None
    metric: str

    @classmethod
    def from_dict(cls, raw: object, where: str) -> StepSpec:
        keys = ("name", "task", "framework", "label", "features", "classes", "metric")
        if not isinstance(raw, dict):
            raise ModelLoadError(f"{where}: expected a JSON object with keys {list(keys)}, found {type(raw).__name__}")
        missing = [k for k in keys if k not in raw]
        if missing:
            raise ModelLoadError(f"{where}: missing key(s) {missing}; it is UseCase.step_spec() written by the build")
        task, framework, features, classes = raw["task"], raw["framework"], raw["features"], raw["classes"]
        if task not in TASKS:
            raise ModelLoadError(f"{where}: task: expected one of {list(TASKS)}, found {task!r}")
        if framework not in MODEL_FILES:
            raise ModelLoadError(f"{where}: framework: expected one of {sorted(MODEL_FILES)}, found {framework!r}")
        if not isinstance(features, list) or not features or not all(isinstance(f, str) for f in features):
            raise ModelLoadError(f"{where}: features: expected a non-empty list of names, found {features!r}")
        if task == "regression":
            if classes is not None:
                raise ModelLoadError(f"{where}: classes: a regression has none (null), found {classes!r}")
        else:
            smallest = 2 if task == "binary" else 3
            if (
                not isinstance(classes, list)
                or len(classes) < smallest
                or classes != list(range(len(classes)))
                or (task == "binary" and len(classes) != 2)
            ):
                raise ModelLoadError(
                    f"{where}: classes: expected [0, 1] for binary or [0, ..., K-1] (K >= 3) for multiclass, "
                    f"found {classes!r}"
                )
        return cls(
            name=str(raw["name"]),
            task=task,
            framework=framework,
            label=str(raw["label"]),
            features=list(features),
            classes=list(classes) if classes is not None else None,
            metric=str(raw["metric"]),
        )


def read_step_spec(path: Path) -> StepSpec:
    """Read and check a use_case.json; ModelLoadError says what is wrong with it."""
    if not path.is_file():
        raise ModelLoadError(
            f"expected the use case's {USE_CASE_FILE} at {path}, found none; the build writes "
            "UseCase.step_spec() into every step's code bundle and train.py copies it into the model's code/"
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelLoadError(f"{path}: expected UTF-8 JSON, found unreadable content ({exc})") from exc
    return StepSpec.from_dict(raw, str(path))


_LOADED: list[Model] = []


class Model:
    """A fitted estimator of either framework, its preprocessor and its use case; predicts per task."""

    def __init__(self, estimator: Any, spec: StepSpec, preprocessor: dict[str, Any], metadata: dict[str, Any]) -> None:
        self.estimator = estimator
        self.spec = spec
        self.task = spec.task
        self.framework = spec.framework
        self.feature_names: list[str] = list(preprocessor["feature_names"])
        if self.feature_names != spec.features:
            raise ModelLoadError(
                f"the preprocessor's features {self.feature_names[:5]}... differ from {USE_CASE_FILE}'s "
                f"{spec.features[:5]}...; the model and its use case come from different builds"
            )
        self.medians = np.asarray(preprocessor["medians"], dtype=float)
        self.means = np.asarray(preprocessor["means"], dtype=float)
        self.scales = np.asarray(preprocessor["scales"], dtype=float)
        self.best_iteration = int(metadata.get("best_iteration", -1))

    @property
    def booster(self) -> Any:
        """The XGBoost booster (TreeSHAP in evaluate.py); only an xgboost model has one."""
        if self.framework != "xgboost":
            raise ModelLoadError(f"a {self.framework} model has no XGBoost booster")
        return self.estimator

    @property
    def classes(self) -> list[int]:
        return list(self.spec.classes or [])

    def transform(self, raw: np.ndarray) -> np.ndarray:
        imputed = np.where(np.isnan(raw), self.medians, raw)
        return np.asarray((imputed - self.means) / self.scales)

    def predict(self, raw: np.ndarray) -> np.ndarray:
        """binary: P(class 1) per row; multiclass: (rows, K) probabilities; regression: the value per row."""
        features = self.transform(raw)
        if self.framework == "xgboost":
            import xgboost as xgb

            matrix = xgb.DMatrix(features)
            if self.best_iteration >= 0:
                out = self.estimator.predict(matrix, iteration_range=(0, self.best_iteration + 1))
            else:
                out = self.estimator.predict(matrix)
            return np.asarray(out, dtype=float)
        if self.task == "regression":
            return np.asarray(self.estimator.predict(features), dtype=float)
        probabilities = np.asarray(self.estimator.predict_proba(features), dtype=float)
        return probabilities[:, 1] if self.task == "binary" else probabilities

    def predict_proba(self, raw: np.ndarray) -> np.ndarray:
        if self.task == "regression":
            raise ModelLoadError("a regression model has no class probabilities; use predict")
        return self.predict(raw)


def _load_estimator(root: Path, spec: StepSpec) -> Any:
    path = root / MODEL_FILES[spec.framework]
    if not path.is_file():
        raise ModelLoadError(
            f"expected the {spec.framework} model at {path} (use case {spec.name!r}), found none; "
            "the model artifact and its use_case.json disagree"
        )
    if spec.framework == "xgboost":
        import xgboost as xgb

        booster = xgb.Booster()
        booster.load_model(str(path))
        return booster
    import joblib  # type: ignore[import-untyped]

    estimator = joblib.load(path)
    fitted = [int(c) for c in getattr(estimator, "classes_", [])]
    if spec.task != "regression" and fitted != spec.classes:
        raise ModelLoadError(f"the forest was fitted on classes {fitted}; {USE_CASE_FILE} declares {spec.classes}")
    return estimator


def model_fn(model_dir: str) -> Model:
    """Load the estimator, its fitted preprocessor and use case; remembered for input_fn of this process."""
    root = Path(model_dir)
    spec = read_step_spec(root / "code" / USE_CASE_FILE)
    estimator = _load_estimator(root, spec)
    preprocessor = json.loads((root / PREPROCESSOR_FILE).read_text())
    metadata_path = root / METADATA_FILE
    metadata = json.loads(metadata_path.read_text()) if metadata_path.exists() else {}
    model = Model(estimator, spec, preprocessor, metadata)
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
    return model.predict(input_data)


def output_fn(prediction: np.ndarray, accept: str, model: Model | None = None) -> tuple[str, str]:
    """Render predictions for the caller; the task is the loaded model's (the toolkit passes no model here)."""
    accept = (accept or "application/json").split(";")[0].strip().lower()
    if accept in ("*/*", ""):
        accept = "application/json"
    if accept not in ("application/json", "text/csv"):
        raise UnsupportedMediaType(f"expected accept type application/json or text/csv, found {accept!r}")
    task = (model or _loaded_model()).task
    values = np.asarray(prediction, dtype=float)
    if task == "multiclass":
        rows = [[float(p) for p in row] for row in np.atleast_2d(values)]
        if accept == "application/json":
            body = {"predictions": [{"label": int(np.argmax(row)), "probabilities": row} for row in rows]}
            return json.dumps(body), "application/json"
        return "".join(",".join(f"{p:.10g}" for p in row) + "\n" for row in rows), "text/csv"
    numbers = [float(v) for v in values.reshape(-1)]
    if accept == "application/json":
        if task == "regression":
            return json.dumps({"predictions": [{"value": v} for v in numbers]}), "application/json"
        body = {"predictions": [{"probability": p, "label": int(p >= DECISION_THRESHOLD)} for p in numbers]}
        return json.dumps(body), "application/json"
    return "\n".join(f"{v:.10g}" for v in numbers) + "\n", "text/csv"


def _loaded_model() -> Model:
    if not _LOADED:
        raise PayloadError("the model is not loaded; model_fn must run before input_fn and output_fn")
    return _LOADED[-1]


def _loaded_feature_names() -> list[str]:
    return _loaded_model().feature_names
