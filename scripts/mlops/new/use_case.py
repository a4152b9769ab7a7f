"""`mlops new use-case`: write a new use case folder that loads, validates and trains as generated.

Plan, then apply. `plan_use_case` checks everything (the name, its collisions with the use cases already
there, the data: a bundled scikit-learn set, a local CSV read and checked cell by cell, or an S3 URI taken
on trust since the generator makes no AWS call) and renders the files in memory; the rendered
`use_case.yaml` is parsed back and validated by `mlops.core.use_cases.UseCase`, so a template that drifts
from the contract fails here, not in the first build. `write_use_case` writes the planned files into a
temporary folder beside the target and renames it into place, so a refusal or a crash leaves nothing
half-written. With `force`, an existing folder keeps every file the generator does not write (a user's
`steps/`, other data files); only the generated files are replaced.
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
import shutil
import tempfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args

import jinja2
import yaml
from pydantic import BaseModel, ValidationError

from mlops.core.errors import MlopsError
from mlops.core.use_cases import (
    BUNDLED_DATASETS,
    FRAMEWORKS,
    HYPERPARAMETER_MODELS,
    LOWER_IS_BETTER,
    METRICS,
    NAME_MAX,
    NAME_PATTERN,
    TASKS,
    USE_CASE_FILE,
    DataSpec,
    UseCase,
    UseCaseNames,
    check_collisions,
    checked_hyperparameters,
    discover,
)
from model_build.data import BREAST_CANCER_FEATURES, DIABETES_FEATURES, IRIS_FEATURES, WINE_FEATURES

TEMPLATES = Path(__file__).parent / "templates"
README_FILE = "README.md"
DATA_FOLDER = "data"
# The preprocess step splits train/validation/test (stratified for classifiers) and refuses fewer rows.
MIN_ROWS = 50
# A stratified three-way split needs a few rows of every class in each part.
MIN_ROWS_PER_CLASS = 5
DEFAULT_LABEL = "label"


class NewUseCaseError(MlopsError):
    """`mlops new use-case` refused its input; nothing was written."""


@dataclass(frozen=True)
class BundledDataset:
    task: str
    features: tuple[str, ...]
    classes: tuple[int, ...] | None
    rows: int
    about: str


# The data sets scikit-learn ships (`sklearn:<name>`): what a generated use_case.yaml needs to know of them
# (task, classes, size); their columns are model_build/data.py's, which writes them.
BUNDLED: dict[str, BundledDataset] = {
    "breast_cancer": BundledDataset(
        "binary", tuple(BREAST_CANCER_FEATURES), (0, 1), 569, "Wisconsin diagnostic breast cancer (1 = malignant)"
    ),
    "wine": BundledDataset(
        "multiclass",
        tuple(WINE_FEATURES),
        (0, 1, 2),
        178,
        "UCI wine recognition: three cultivars from 13 chemical measurements",
    ),
    "diabetes": BundledDataset(
        "regression",
        tuple(DIABETES_FEATURES),
        None,
        442,
        "diabetes progression one year after baseline, from 10 baseline measurements "
        "(age, sex, BMI, blood pressure, six blood serum values)",
    ),
    "iris": BundledDataset(
        "multiclass",
        tuple(IRIS_FEATURES),
        (0, 1, 2),
        150,
        "Fisher's iris: three species from four flower measurements",
    ),
}
DEFAULT_DATA = {"binary": "sklearn:breast_cancer", "multiclass": "sklearn:wine", "regression": "sklearn:diabetes"}
# The quality gate a new use case starts with: reachable on the bundled sample, strict enough to mean something.
DEFAULT_QUALITY: dict[str, tuple[str, float]] = {
    "binary": ("auc", 0.9),
    "multiclass": ("accuracy", 0.8),
    "regression": ("r2", 0.3),
}
# Small models: a generated use case trains in seconds in the twin; the rest comes from the framework's defaults.
SMALL_HYPERPARAMETERS: dict[str, dict[str, Any]] = {
    "xgboost": {"max_depth": 4, "eta": 0.2, "num_round": 100, "early_stopping_rounds": 10},
    "sklearn": {"n_estimators": 100, "max_depth": 8, "max_features": 0.5},
}
HYPERPARAMETER_NOTES: dict[str, dict[str, str]] = {
    "xgboost": {
        "max_depth": "deepest tree (1-16); deeper fits more and overfits sooner",
        "eta": "learning rate (0-1]; lower needs more rounds",
        "num_round": "boosting rounds at most (1-5000)",
        "early_stopping_rounds": "stop when the validation metric has not improved for this many rounds",
        "subsample": "fraction of rows each tree sees (0-1]",
        "colsample_bytree": "fraction of features each tree sees (0-1]",
        "min_child_weight": "smallest hessian sum in a leaf; larger is more conservative",
        "seed": "random seed: the same data and seed train the same model",
    },
    "sklearn": {
        "n_estimators": "trees in the random forest (1-5000)",
        "max_depth": "deepest tree (1-64)",
        "min_samples_leaf": "fewest training rows in a leaf; larger smooths the model",
        "max_features": "fraction of the features tried at each split (0-1]",
        "seed": "random seed: the same data and seed train the same model",
    },
}


@dataclass(frozen=True)
class UseCaseRequest:
    """What the user asked for (the CLI's options, unparsed beyond splitting lists)."""

    name: str
    task: str
    framework: str
    data: str | None = None
    label: str | None = None
    features: tuple[str, ...] | None = None
    num_classes: int | None = None
    description: str | None = None


@dataclass(frozen=True)
class DataPlan:
    source: str  # as use_case.yaml states it
    label: str
    features: list[str]
    classes: list[int] | None
    about: str  # one line for the README and the comments
    copy: tuple[str, bytes] | None = None  # (path inside the folder, the CSV's bytes) for a file: source


@dataclass(frozen=True)
class PlannedUseCase:
    use_case: UseCase
    files: dict[str, bytes]  # path inside the use case folder (posix) -> content
    directory: Path  # the folder holding one folder per use case
    force: bool

    @property
    def target(self) -> Path:
        return self.directory / self.use_case.name


@dataclass(frozen=True)
class WriteReport:
    target: Path
    written: list[Path]
    replaced: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)  # files already there that the generator does not own


# ------------------------------------------------------------------------------------------------- plan


def plan_use_case(
    request: UseCaseRequest, directory: Path, *, force: bool = False, cwd: Path | None = None
) -> PlannedUseCase:
    """Check the request against the folder and the data, and render every file; writes nothing."""
    _check_choice("--task", request.task, TASKS)
    _check_choice("--framework", request.framework, FRAMEWORKS)
    _check_name(request.name)
    existing = _existing_use_cases(directory)
    target = directory / request.name
    if target.exists() and not force:
        what = "use case" if request.name in existing else "folder"
        raise NewUseCaseError(
            f"the {what} {target} already exists",
            hint="choose another name, or pass --force to rewrite the generated files "
            "(use_case.yaml, README.md and the copied data file; nothing else in the folder is touched)",
        )
    if target.exists() and not target.is_dir():
        raise NewUseCaseError(
            f"{target} exists and is not a folder",
            hint="move the file away or choose another name; --force keeps files",
        )
    try:
        check_collisions([*existing, request.name])
    except MlopsError as exc:
        raise NewUseCaseError(
            f"use case {request.name!r} would collide with the use cases in {directory}: {exc.message}",
            hint=f"choose a name that neither equals, starts with nor is the start of another one's name "
            f"followed by '-' (there: {', '.join(sorted(existing)) or 'none'})",
        ) from exc
    data = _plan_data(request, cwd or Path.cwd())
    metric, threshold = DEFAULT_QUALITY[request.task]
    hyperparameters = checked_hyperparameters(request.framework, SMALL_HYPERPARAMETERS[request.framework])
    description = (request.description or _default_description(request, data)).strip()
    if not description:
        raise NewUseCaseError("--description is empty", hint="give one sentence: what the model predicts, from what")
    values: dict[str, Any] = {
        "name": request.name,
        "description": " ".join(description.split()),
        "task": request.task,
        "framework": request.framework,
        "data": {"source": data.source, "label": data.label},
        "features": data.features,
        "classes": data.classes,
        "quality": {"metric": metric, "threshold": threshold},
        "hyperparameters": hyperparameters,
        "monitor": {"drift_features": data.features[:9], "drift_threshold": 0.1},
    }
    card = card_fields()
    if card:
        values["card"] = {key: value for key, value, _ in card}
    try:
        intended = UseCase.model_validate(values)
    except ValidationError as exc:
        raise NewUseCaseError(
            f"the use case {request.name!r} would not be valid: {_first_problem(exc)}",
            hint="check --label and --features against the data",
        ) from exc
    files = _render(intended, data)
    return PlannedUseCase(use_case=intended, files=files, directory=directory, force=force)


def _check_choice(option: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise NewUseCaseError(f"{option} {value!r} is not supported", hint=f"choose one of {', '.join(allowed)}")


def _check_name(name: str) -> None:
    if not re.fullmatch(NAME_PATTERN, name) or len(name) > NAME_MAX:
        found = f"{len(name)} characters" if len(name) > NAME_MAX else repr(name)
        raise NewUseCaseError(
            f"use case name {name!r} is invalid: expected lower-case letters and digits in words joined by "
            f"single '-', starting with a letter, at most {NAME_MAX} characters; found {found}",
            hint="every resource name derives from it (pipeline, endpoints, S3 prefix): e.g. churn or house-prices",
        )


def _existing_use_cases(directory: Path) -> list[str]:
    if not directory.exists():
        return []
    if not directory.is_dir():
        raise NewUseCaseError(
            f"{directory} is not a folder", hint="pass --dir with the folder that holds one folder per use case"
        )
    return list(discover(directory))


def _first_problem(exc: ValidationError) -> str:
    error = exc.errors()[0]
    key = ".".join(str(p) for p in error["loc"]) or "(top level)"
    return f"{key}: {error.get('ctx', {}).get('error', error['msg'])}"


def _default_description(request: UseCaseRequest, data: DataPlan) -> str:
    verb = {
        "binary": f"Estimate the probability that {data.label} is 1",
        "multiclass": f"Tell which class of {data.label} a row belongs to",
        "regression": f"Predict {data.label}",
    }[request.task]
    return f"{verb} from {len(data.features)} features ({data.about})."


# ------------------------------------------------------------------------------------------------- data


def _plan_data(request: UseCaseRequest, cwd: Path) -> DataPlan:
    source = request.data or DEFAULT_DATA[request.task]
    if source.startswith("sklearn:"):
        return _bundled(request, source)
    if source.startswith("file:"):
        return _local_file(request, source, cwd)
    if source.startswith("s3://"):
        return _s3(request, source)
    raise NewUseCaseError(
        f"--data {source!r} is not a data source",
        hint="pass sklearn:<" + "|".join(BUNDLED_DATASETS) + ">, file:<path to a CSV> or s3://<bucket>/<key>.csv",
    )


def _bundled(request: UseCaseRequest, source: str) -> DataPlan:
    key = source.removeprefix("sklearn:")
    if key not in BUNDLED:
        raise NewUseCaseError(
            f"--data {source!r} is not a bundled data set",
            hint="bundled data sets: " + ", ".join(f"sklearn:{k}" for k in BUNDLED),
        )
    dataset = BUNDLED[key]
    if dataset.task != request.task:
        suits = [f"sklearn:{k}" for k, d in BUNDLED.items() if d.task == request.task]
        raise NewUseCaseError(
            f"--data {source} is a {dataset.task} data set, but --task is {request.task}",
            hint=f"a {request.task} use case can use {' or '.join(suits)}, or your own file:/s3:// CSV",
        )
    if request.label not in (None, DEFAULT_LABEL):
        raise NewUseCaseError(
            f"--label {request.label!r} does not apply to {source}: its label column is {DEFAULT_LABEL!r}",
            hint="drop --label for a bundled data set",
        )
    _refuse_num_classes(request, f"{source} has its classes")
    features = _chosen_features(request.features, dataset.features, DEFAULT_LABEL, source)
    classes = list(dataset.classes) if dataset.classes is not None else None
    return DataPlan(source, DEFAULT_LABEL, features, classes, f"scikit-learn's {dataset.about}, {dataset.rows} rows")


def _s3(request: UseCaseRequest, source: str) -> DataPlan:
    try:
        DataSpec(source=source)
    except ValidationError as exc:
        raise NewUseCaseError(
            f"--data {source!r} is invalid: {_first_problem(exc)}", hint="e.g. s3://bucket/data.csv"
        ) from exc
    label = request.label or DEFAULT_LABEL
    if request.features is None:
        raise NewUseCaseError(
            f"--features is required with --data {source}: the generator makes no AWS call to read its header",
            hint="pass the feature columns in order, e.g. --features age,income,tenure (all columns but the label)",
        )
    features = _chosen_features(request.features, None, label, source)
    classes: list[int] | None = None
    if request.task == "binary":
        _refuse_num_classes(request, "a binary label is 0 or 1")
        classes = [0, 1]
    elif request.task == "multiclass":
        if request.num_classes is None or request.num_classes < 3:
            found = "none" if request.num_classes is None else str(request.num_classes)
            raise NewUseCaseError(
                f"--num-classes is required (3 or more) for a multiclass use case on {source}; found {found}",
                hint="pass the number of label values K: the label column holds 0..K-1",
            )
        classes = list(range(request.num_classes))
    else:
        _refuse_num_classes(request, "a regression has no classes")
    return DataPlan(source, label, features, classes, f"the CSV object {source}")


def _local_file(request: UseCaseRequest, source: str, cwd: Path) -> DataPlan:
    given = Path(source.removeprefix("file:")).expanduser()
    path = given if given.is_absolute() else cwd / given
    if path.suffix != ".csv":
        raise NewUseCaseError(f"--data {source!r} is not a .csv file", hint="export the data as CSV with a header row")
    try:
        payload = path.read_bytes()
    except OSError as exc:
        raise NewUseCaseError(
            f"--data {source}: {path} cannot be read: {exc.strerror}",
            hint="check the path (relative to the current folder)",
        ) from exc
    label = request.label or DEFAULT_LABEL
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise NewUseCaseError(
            f"{path} is not UTF-8 text (byte {exc.start})", hint="save the CSV as UTF-8 and run again"
        ) from exc
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise NewUseCaseError(f"{path} is empty: expected a header row, then data rows", hint="export it with a header")
    header = [cell.strip() for cell in rows[0]]
    duplicated = sorted(n for n, c in Counter(header).items() if c > 1)
    if duplicated or "" in header:
        problem = (
            f"duplicated columns {duplicated}" if duplicated else f"an unnamed column (column {header.index('') + 1})"
        )
        raise NewUseCaseError(f"{path}: the header has {problem}", hint="give every column one unique name")
    if label not in header:
        raise NewUseCaseError(
            f"{path} has no label column {label!r}; its columns are {', '.join(header)}",
            hint="pass --label with the name of the column to predict",
        )
    features = _chosen_features(request.features, tuple(c for c in header if c != label), label, source)
    classes = _check_rows(path, header, rows[1:], label, features, request.task)
    if classes is not None and request.num_classes is not None and request.num_classes != len(classes):
        raise NewUseCaseError(
            f"--num-classes {request.num_classes} disagrees with {path}: its label {label!r} has {len(classes)} values",
            hint="drop --num-classes: a CSV's classes are read from its label column",
        )
    if classes is None:
        _refuse_num_classes(request, "a regression has no classes")
    copied = f"{DATA_FOLDER}/{path.name}"
    about = f"{path.name}, {len(rows) - 1} rows"
    return DataPlan(f"file:{copied}", label, features, classes, about, copy=(copied, payload))


def _check_rows(
    path: Path, header: list[str], body: list[list[str]], label: str, features: list[str], task: str
) -> list[int] | None:
    """Every feature cell a number or empty (imputed), every label fit for the task; the classes of a classifier."""
    if len(body) < MIN_ROWS:
        raise NewUseCaseError(
            f"{path} has {len(body)} data rows; the build splits them into train, validation and test "
            f"and needs at least {MIN_ROWS}",
            hint="use more rows",
        )
    columns = {name: i for i, name in enumerate(header)}
    labels: Counter[float] = Counter()
    for number, row in enumerate(body, start=1):
        line = number + 1  # the header is line 1
        if len(row) != len(header):
            raise NewUseCaseError(
                f"{path} line {line} (row {number}): expected {len(header)} values like the header, found {len(row)}",
                hint="fix the row: quote values that contain commas",
            )
        for name in features:
            cell = row[columns[name]].strip()
            if cell and not _is_finite_number(cell):
                raise NewUseCaseError(
                    f"{path} line {line} (row {number}), column {name!r}: expected a number, found {cell!r}",
                    hint="features are numeric: encode categories as numbers, or leave the column out with --features",
                )
        cell = row[columns[label]].strip()
        if not _is_finite_number(cell):
            raise NewUseCaseError(
                f"{path} line {line} (row {number}), label column {label!r}: expected a number, found {cell!r}",
                hint="every row needs a numeric label: drop unlabelled rows"
                + ("" if task == "regression" else ", and encode classes as 0..K-1"),
            )
        value = float(cell)
        if task == "binary" and value not in (0.0, 1.0):
            raise NewUseCaseError(
                f"{path} line {line} (row {number}), label column {label!r}: a binary label is 0 or 1, found {cell!r}",
                hint="encode the positive class (the one to find) as 1 and the other as 0",
            )
        if task == "multiclass" and (not value.is_integer() or value < 0):
            raise NewUseCaseError(
                f"{path} line {line} (row {number}), label column {label!r}: "
                f"a multiclass label is 0..K-1, found {cell!r}",
                hint="encode the K classes as the integers 0..K-1",
            )
        labels[value] += 1
    if task == "regression":
        return None
    classes = sorted(int(v) for v in labels)
    expected = [0, 1] if task == "binary" else list(range(max(classes[-1] + 1, 3)))
    if classes != expected:
        raise NewUseCaseError(
            f"{path}: the {task} label {label!r} has the values {classes}; expected {expected}",
            hint="binary: 0 and 1, both present"
            if task == "binary"
            else "multiclass: every class 0..K-1 present, K >= 3 (a two-class label is --task binary)",
        )
    rare = {int(v): n for v, n in sorted(labels.items()) if n < MIN_ROWS_PER_CLASS}
    if rare:
        raise NewUseCaseError(
            f"{path}: class counts {rare} of label {label!r} are below {MIN_ROWS_PER_CLASS}; the stratified "
            "train/validation/test split needs rows of every class in each part",
            hint="add rows of those classes, or merge rare classes",
        )
    return classes


def _is_finite_number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _chosen_features(
    requested: Sequence[str] | None, available: Sequence[str] | None, label: str, source: str
) -> list[str]:
    """`--features` (checked against the data's columns when known), else every column but the label."""
    if requested is not None and not requested:
        raise NewUseCaseError(
            "--features is empty", hint="pass the input columns, e.g. --features a,b,c, or leave it out"
        )
    if requested is None:
        if available is None:
            raise NewUseCaseError(f"no features for {source}", hint="pass --features a,b,c")
        if not available:
            raise NewUseCaseError(f"{source} has no column besides the label {label!r}", hint="add feature columns")
        return list(available)
    features = [f.strip() for f in requested]
    if any(not f for f in features):
        raise NewUseCaseError(f"--features {','.join(requested)!r} has an empty name", hint="pass --features a,b,c")
    duplicated = sorted(n for n, c in Counter(features).items() if c > 1)
    if duplicated:
        raise NewUseCaseError(f"--features lists {duplicated} more than once", hint="list each feature once")
    if label in features:
        raise NewUseCaseError(
            f"--features includes the label column {label!r}",
            hint="leave the label out of --features (or pass --label)",
        )
    if available is not None:
        unknown = [f for f in features if f not in available]
        if unknown:
            raise NewUseCaseError(
                f"--features {unknown} are not columns of {source}; its features are {', '.join(available)}",
                hint="choose among those columns (the order you give is the endpoint's input order)",
            )
    return features


def _refuse_num_classes(request: UseCaseRequest, why: str) -> None:
    if request.num_classes is not None:
        raise NewUseCaseError(
            f"--num-classes does not apply here: {why}",
            hint="pass --num-classes only for a multiclass use case on an s3:// source",
        )


# ----------------------------------------------------------------------------------------------- render


def _yaml_value(value: Any) -> str:
    """One YAML flow value (a scalar or a list), quoted only where YAML needs it."""
    text = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=1 << 30, sort_keys=False)
    return text.strip().removesuffix("...").strip()


def card_fields() -> list[tuple[str, Any, str]]:
    """The model card section of use_case.yaml, when the schema has one: each key, its default and what it
    holds, read from the schema so the generated file follows it."""
    field = UseCase.model_fields.get("card")
    if field is None:
        return []
    default = field.get_default(call_default_factory=True)
    if not isinstance(default, BaseModel):
        raise TypeError(f"UseCase.card's default is {type(default).__name__}, expected a pydantic model")
    rows = []
    for key, info in type(default).model_fields.items():
        note = info.description or key.replace("_", " ")
        choices = get_args(info.annotation)
        if choices and all(isinstance(c, str) for c in choices):
            note += f": one of {', '.join(choices)}"
        rows.append((key, getattr(default, key), note))
    return rows


def _environment() -> jinja2.Environment:
    # Markdown and YAML, not HTML: values reach the YAML through `yaml_value`, which quotes them for YAML.
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,  # noqa: S701
    )
    environment.filters["yaml_value"] = _yaml_value
    return environment


def _render(use_case: UseCase, data: DataPlan) -> dict[str, bytes]:
    environment = _environment()
    framework = use_case.framework
    context: dict[str, Any] = {
        "uc": use_case,
        "names": UseCaseNames(use_case.name).all(),
        "pipeline": UseCaseNames(use_case.name).pipeline,
        "about": data.about,
        "copied": data.copy[0] if data.copy else None,
        "metrics": METRICS[use_case.task],
        "lower_is_better": use_case.quality.metric in LOWER_IS_BETTER,
        "hyperparameters": [
            (key, value, HYPERPARAMETER_NOTES[framework][key]) for key, value in use_case.hyperparameters.items()
        ],
        "hyperparameter_keys": list(HYPERPARAMETER_MODELS[framework].model_fields),
        "task_output": _TASK_OUTPUT[use_case.task],
        "card": card_fields(),
    }
    files = {
        USE_CASE_FILE: environment.get_template("use_case.yaml.j2").render(context).encode("utf-8"),
        README_FILE: environment.get_template("README.md.j2").render(context).encode("utf-8"),
    }
    _check_rendered(use_case, files[USE_CASE_FILE])
    if data.copy:
        files[data.copy[0]] = data.copy[1]
    return files


_TASK_OUTPUT = {
    "binary": 'JSON `{"predictions": [{"probability": p, "label": 0|1}]}`; CSV: one probability per line',
    "multiclass": 'JSON `{"predictions": [{"label": k, "probabilities": [p0, ..., pK-1]}]}`; '
    "CSV: one line per row, the K probabilities comma-separated",
    "regression": 'JSON `{"predictions": [{"value": y}]}`; CSV: one value per line',
}


def _check_rendered(intended: UseCase, text: bytes) -> None:
    """The file must say exactly what was planned: a template that drifts from the contract fails here."""
    try:
        parsed = UseCase.model_validate(yaml.safe_load(text))
    except (yaml.YAMLError, ValidationError) as exc:
        raise NewUseCaseError(
            f"the rendered {USE_CASE_FILE} of {intended.name!r} is invalid: {exc}",
            hint="a generator template is broken: report it (scripts/mlops/new/templates)",
        ) from exc
    if parsed != intended:
        raise NewUseCaseError(
            f"the rendered {USE_CASE_FILE} of {intended.name!r} does not state what was planned: "
            f"planned {intended.model_dump()}, rendered {parsed.model_dump()}",
            hint="a generator template is broken: report it (scripts/mlops/new/templates)",
        )


# ------------------------------------------------------------------------------------------------ apply


def write_use_case(plan: PlannedUseCase) -> WriteReport:
    """Write the planned files: a new folder appears whole (renamed into place); with force, only the
    generated files of an existing folder are replaced, one atomic rename each, and nothing is deleted."""
    target = plan.target
    if target.exists() and not plan.force:
        raise NewUseCaseError(f"{target} appeared while planning", hint="run again, or pass --force")
    plan.directory.mkdir(parents=True, exist_ok=True)
    # Staged one level deeper than a use case folder, so `discover` (`*/use_case.yaml`) never sees it.
    staging = Path(tempfile.mkdtemp(prefix=f".new-{plan.use_case.name}-", dir=plan.directory))
    try:
        staged = staging / plan.use_case.name
        for relative, content in plan.files.items():
            path = staged / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        written = [target / relative for relative in plan.files]
        if not target.exists():
            os.rename(staged, target)
            return WriteReport(target=target, written=written)
        replaced = [path for path in written if path.exists()]
        for relative in plan.files:
            (target / relative).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staged / relative, target / relative)
        kept = sorted(p for p in target.rglob("*") if p.is_file() and p not in written)
        return WriteReport(target=target, written=written, replaced=replaced, kept=kept)
    finally:
        shutil.rmtree(staging)
