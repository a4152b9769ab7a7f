"""Use cases: one folder each, the only place a model's specifics live. Pure (no AWS SDK).

A use case is `model_build/use_cases/<name>/` holding `use_case.yaml` (data source, task type, framework,
features and classes, hyperparameters, quality gate, instances, drift features) and, optionally, a
`steps/` folder whose files replace or extend the generic step scripts of `model_build/steps/` by name.
Pipelines, deploy, bridge, infra and the twin are generic: every resource name is derived here from the
use case's name, so many use cases share one set of accounts without colliding.

Derived names (see `UseCaseNames`):
  S3 prefix, model package group, MLflow experiment, prod endpoint   <name>
  SageMaker pipeline                                                 <name>-build (branches: <name>-build-<slug>)
  staging endpoint                                                   <name>-staging
  endpoint configs, models, alarms, monitoring schedules             <endpoint>-..., <group>-...
  deployment records (SSM)                                           <record prefix>/<name>/...
  approver policy                                                    mlops-<name>-model-approver

The IAM policies in `infra/templates` scope each use case by these names and their `<name>-*` patterns, so
two use cases where one name is the other's name plus `-...` (`wine`, `wine-red`) would reach each other's
resources: they are refused at load, like identical names.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mlops.core.errors import ConfigError

USE_CASE_FILE = "use_case.yaml"
USE_CASE_ENV = "MLOPS_USE_CASE"
NAME_PATTERN = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
# Room for the longest derived suffix inside SageMaker's 63 characters (`-staging-v123-<8 hex>`).
NAME_MAX = 32

Task = Literal["binary", "multiclass", "regression"]
Framework = Literal["xgboost", "sklearn"]
TASKS: tuple[str, ...] = ("binary", "multiclass", "regression")
FRAMEWORKS: tuple[str, ...] = ("xgboost", "sklearn")

# SageMaker Model Monitor's model-quality report: the section per task and the metrics a gate may use.
MODEL_QUALITY_SECTION = {
    "binary": "binary_classification_metrics",
    "multiclass": "multiclass_classification_metrics",
    "regression": "regression_metrics",
}
METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("auc", "f1", "precision", "recall", "accuracy"),
    "multiclass": ("accuracy", "weighted_f1", "weighted_precision", "weighted_recall"),
    "regression": ("r2", "rmse", "mae", "mse"),
}
LOWER_IS_BETTER = frozenset({"rmse", "mae", "mse"})
# Scikit-learn's bundled data sets that a use case may name as `sklearn:<name>` (no download).
BUNDLED_DATASETS = ("breast_cancer", "wine", "diabetes", "iris")


def metric_is_lower_better(metric: str) -> bool:
    return metric in LOWER_IS_BETTER


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataSpec(_Strict):
    source: str = Field(
        ...,
        description="where the data is: 'sklearn:<breast_cancer|wine|diabetes|iris>' (bundled with scikit-learn), "
        "'file:<path>' (a CSV in the use case's folder), or 's3://<bucket>/<key>' (a CSV object)",
    )
    label: str = Field("label", min_length=1, description="the CSV column holding the label")

    @field_validator("source")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if value.startswith("sklearn:"):
            if value.removeprefix("sklearn:") not in BUNDLED_DATASETS:
                raise ValueError(f"bundled data sets are {', '.join('sklearn:' + d for d in BUNDLED_DATASETS)}")
        elif value.startswith("file:"):
            if not value.removeprefix("file:").endswith(".csv"):
                raise ValueError("a file source is a CSV file: 'file:data/train.csv'")
        elif value.startswith("s3://"):
            if not re.fullmatch(r"s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/\S+\.csv", value):
                raise ValueError("an S3 source is one CSV object: 's3://my-bucket/path/data.csv'")
        else:
            raise ValueError("a source starts with 'sklearn:', 'file:' or 's3://'")
        return value


class XGBoostHyperparameters(_Strict):
    max_depth: int = Field(4, ge=1, le=16)
    eta: float = Field(0.1, gt=0, le=1)
    num_round: int = Field(300, ge=1, le=5000)
    early_stopping_rounds: int = Field(20, ge=1)
    subsample: float = Field(0.9, gt=0, le=1)
    colsample_bytree: float = Field(0.9, gt=0, le=1)
    min_child_weight: float = Field(1.0, ge=0)
    seed: int = Field(42, ge=0)


class SklearnHyperparameters(_Strict):
    """A random forest (classifier or regressor by task), scikit-learn in script mode."""

    n_estimators: int = Field(200, ge=1, le=5000)
    max_depth: int = Field(8, ge=1, le=64)
    min_samples_leaf: int = Field(1, ge=1)
    max_features: float = Field(1.0, gt=0, le=1, description="the fraction of features per split")
    seed: int = Field(42, ge=0)


HYPERPARAMETER_MODELS: dict[str, type[_Strict]] = {"xgboost": XGBoostHyperparameters, "sklearn": SklearnHyperparameters}


def checked_hyperparameters(framework: str, values: Mapping[str, Any]) -> dict[str, Any]:
    """The framework's hyperparameters with defaults filled in; raises ValueError naming the bad key."""
    model = HYPERPARAMETER_MODELS[framework]
    try:
        return model.model_validate(dict(values)).model_dump()
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']} (found {e.get('input')!r})" for e in exc.errors()
        )
        known = ", ".join(model.model_fields)
        raise ValueError(f"invalid {framework} hyperparameters: {problems}; the {framework} keys are {known}") from exc


class QualityGate(_Strict):
    metric: str = Field(..., description="the gate's metric, one of the task's model-quality metrics")
    threshold: float = Field(..., strict=True, description="the metric's bound on the test split (a number)")


def check_quality(task: str, metric: str, threshold: float) -> None:
    """Raises ValueError when the metric does not belong to the task or the threshold cannot gate."""
    if metric not in METRICS[task]:
        raise ValueError(f"metric {metric!r} is not a {task} metric; choose one of {', '.join(METRICS[task])}")
    if metric in LOWER_IS_BETTER:
        if threshold <= 0:
            raise ValueError(f"{metric} is an error (lower is better): its threshold is a maximum above 0")
    elif metric == "r2":
        if not -1.0 < threshold <= 1.0:
            raise ValueError("r2's threshold is a minimum in (-1, 1]")
    elif not 0.0 < threshold <= 1.0:
        raise ValueError(f"{metric}'s threshold is a minimum above 0 and at most 1 (e.g. 0.9)")


class MonitorSpec(_Strict):
    drift_features: list[str] | None = Field(
        None,
        min_length=1,
        max_length=9,
        description="1 to 9 features whose drift raises the retrain alarm (a metric-math alarm holds 10 queries); "
        "default: the first nine features",
    )
    drift_threshold: float = Field(0.1, gt=0, le=1, description="the largest drift distance tolerated (0-1]")


class CardSpec(_Strict):
    """The model card's intended use (SageMaker's model card schema, `intended_uses`)."""

    intended_uses: str = Field("Not stated.", description="who uses the predictions for what, and what not")
    factors_affecting_model_efficiency: str = Field("Not stated.", description="data or conditions it may fail on")
    risk_rating: Literal["High", "Medium", "Low", "Unknown"] = "Unknown"
    explanations_for_risk_rating: str = Field("Not stated.", description="why that rating")


class UseCase(_Strict):
    name: str = Field(..., pattern=NAME_PATTERN, max_length=NAME_MAX)
    description: str = Field(..., min_length=1, description="one sentence: what the model predicts, from what")
    task: Task = Field(..., description="binary, multiclass or regression")
    framework: Framework = Field(..., description="xgboost or sklearn (script mode in SageMaker's framework image)")
    data: DataSpec
    features: list[str] = Field(..., min_length=1, description="the endpoint's input columns, in order")
    classes: list[int] | None = Field(
        None, description="the label values of a classifier (binary: [0, 1], the positive class 1); none for regression"
    )
    quality: QualityGate
    hyperparameters: dict[str, Any] = Field(default_factory=dict)
    instances: dict[str, Any] | None = Field(
        None, description="overrides of build.instances (processing, training, inference, transform) for this model"
    )
    monitor: MonitorSpec = MonitorSpec()
    card: CardSpec = CardSpec()

    @model_validator(mode="after")
    def _consistent(self) -> UseCase:
        if len(set(self.features)) != len(self.features):
            raise ValueError("features: each feature is listed once")
        if self.data.label in self.features:
            raise ValueError(f"features: the label column {self.data.label!r} cannot also be a feature")
        if self.task == "regression":
            if self.classes is not None:
                raise ValueError("classes: a regression has no classes; remove the key")
        elif self.task == "binary":
            if self.classes is not None and sorted(self.classes) != [0, 1]:
                raise ValueError(f"classes: a binary label is 0 or 1 (1 the positive class), found {self.classes}")
        elif self.classes is None or len(self.classes) < 3 or sorted(self.classes) != list(range(len(self.classes))):
            raise ValueError(f"classes: a multiclass label is 0..K-1 with K >= 3, e.g. [0, 1, 2]; found {self.classes}")
        check_quality(self.task, self.quality.metric, self.quality.threshold)
        checked_hyperparameters(self.framework, self.hyperparameters)
        unknown = [f for f in self.monitor.drift_features or [] if f not in self.features]
        if unknown:
            raise ValueError(f"monitor.drift_features: {unknown} are not among the features")
        return self

    @property
    def label_classes(self) -> list[int] | None:
        if self.task == "regression":
            return None
        return sorted(self.classes) if self.classes else [0, 1]

    @property
    def drift_features(self) -> list[str]:
        return list(self.monitor.drift_features or self.features[:9])

    def step_spec(self) -> dict[str, Any]:
        """What the step scripts read (`use_case.json` in every code bundle and in the model)."""
        return {
            "name": self.name,
            "task": self.task,
            "framework": self.framework,
            "label": self.data.label,
            "features": list(self.features),
            "classes": self.label_classes,
            "metric": self.quality.metric,
        }


@dataclass(frozen=True)
class UseCaseNames:
    name: str

    @property
    def prefix(self) -> str:
        return self.name

    @property
    def pipeline(self) -> str:
        return f"{self.name}-build"

    @property
    def model_package_group(self) -> str:
        return self.name

    @property
    def experiment(self) -> str:
        return self.name

    def endpoint(self, stage: str) -> str:
        return self.name if stage == "prod" else f"{self.name}-{stage}"

    @property
    def approver_policy(self) -> str:
        return f"mlops-{self.name}-model-approver"

    def all(self) -> dict[str, str]:
        return {
            "s3 prefix": self.prefix,
            "pipeline": self.pipeline,
            "model package group": self.model_package_group,
            "staging endpoint": self.endpoint("staging"),
            "prod endpoint": self.endpoint("prod"),
            "approver policy": self.approver_policy,
        }


def default_directory() -> Path:
    """`model_build/use_cases/` of the installed (editable) model_build package, found without importing it."""
    spec = importlib.util.find_spec("model_build")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the model_build package is not installed", hint="run `make install`")
    return Path(next(iter(spec.submodule_search_locations))) / "use_cases"


def discover(directory: Path) -> dict[str, Path]:
    """Every use case folder (one holding use_case.yaml), by folder name."""
    if not directory.is_dir():
        raise ConfigError(
            f"the use case folder {directory} does not exist",
            hint="set use_cases.path in mlops.yaml to the folder holding one folder per use case, "
            "or create one with `mlops new use-case NAME`",
        )
    return {p.parent.name: p.parent for p in sorted(directory.glob(f"*/{USE_CASE_FILE}"))}


def check_collisions(names: Iterable[str]) -> None:
    """Refuse names whose derived resources would be shared or whose IAM name patterns would overlap."""
    ordered = sorted(set(names))
    owners: dict[str, tuple[str, str]] = {}
    for name in ordered:
        for kind, value in UseCaseNames(name).all().items():
            other, other_kind = owners.get(value, (name, kind))
            if other != name:
                raise ConfigError(
                    f"use cases {other!r} ({other_kind}) and {name!r} ({kind}) derive the same name {value!r}",
                    hint=f"rename one of the folders under model_build/use_cases (and its 'name:'), e.g. {name}-model",
                )
            owners[value] = (name, kind)
    for name in ordered:
        for other in ordered:
            if other != name and other.startswith(f"{name}-"):
                raise ConfigError(
                    f"use cases {name!r} and {other!r} collide: {name!r}'s resource patterns ({name}-*) "
                    f"cover {other!r}'s endpoints, pipelines and records, so each could reach the other's",
                    hint=f"rename {other!r} so it does not start with '{name}-' (e.g. {other.replace('-', '', 1)})",
                )


def _explain(exc: ValidationError, *, name: str, file: Path) -> ConfigError:
    lines = []
    for error in exc.errors():
        key = ".".join(str(p) for p in error["loc"]) or "(top level)"
        if error["type"] == "missing":
            found = "nothing (the key is missing)"
        elif error["type"] == "extra_forbidden":
            found = f"an unknown key {error['loc'][-1]!r}"
        else:
            found = repr(error.get("input"))
        message = str(error.get("ctx", {}).get("error", error["msg"]))
        lines.append(f"{key}: found {found}; expected {message}")
    more = "".join(f"\n  also: {line}" for line in lines[1:])
    return ConfigError(
        f"use case {name!r} ({file}): {lines[0]}{more}",
        hint=f"fix the key in {file}; `mlops new use-case` writes a valid file to start from",
    )


def load_use_case(directory: Path, name: str) -> UseCase:
    """Read and validate one use case; ConfigError names the use case, key, value, expectation and fix."""
    found = discover(directory)
    if name not in found:
        known = ", ".join(found) or "none"
        raise ConfigError(
            f"use case {name!r} not found in {directory} (use cases: {known})",
            hint="choose one with --use-case / MLOPS_USE_CASE, or create it with `mlops new use-case NAME`",
        )
    file = found[name] / USE_CASE_FILE
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"use case {name!r}: {file} is not valid UTF-8 YAML: {exc}", hint="fix the syntax") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"use case {name!r}: {file} must be a mapping", hint="start from `mlops new use-case`")
    try:
        use_case = UseCase.model_validate(raw)
    except ValidationError as exc:
        raise _explain(exc, name=name, file=file) from exc
    if use_case.name != name:
        raise ConfigError(
            f"use case folder {name!r} declares name {use_case.name!r} in {file}",
            hint=f"the folder name is the use case's name: set name: {name}",
        )
    return use_case


def config_overlay(use_case: UseCase, stage_names: Iterable[str] = ("staging", "prod")) -> dict[str, Any]:
    """The values of mlops.yaml that the use case sets (merged over the file and its profile)."""
    names = UseCaseNames(use_case.name)
    build: dict[str, Any] = {
        "pipeline_name": names.pipeline,
        "model_package_group": names.model_package_group,
        "quality": use_case.quality.model_dump(),
        "hyperparameters": checked_hyperparameters(use_case.framework, use_case.hyperparameters),
    }
    if use_case.instances:
        build["instances"] = dict(use_case.instances)
    deploy: dict[str, Any] = {stage: {"endpoint_name": names.endpoint(stage)} for stage in stage_names}
    return {"project": {"name": names.prefix}, "build": build, "deploy": deploy}


# Keys of mlops.yaml that the use case derives: setting them there would silently point one use case's
# resources at another's, so they are refused with the derived value named.
DERIVED_KEYS = (
    ("project", "name"),
    ("build", "pipeline_name"),
    ("build", "model_package_group"),
    ("build", "quality"),
    ("build", "hyperparameters"),
    ("deploy", "staging", "endpoint_name"),
    ("deploy", "prod", "endpoint_name"),
    ("tracking", "experiment_name"),
)


def quality_metrics(evaluation: Mapping[str, Any], task: str) -> dict[str, float]:
    """The task's metrics from a model-quality report (evaluation.json), name -> value, in METRICS order."""
    block = evaluation.get(MODEL_QUALITY_SECTION[task])
    if not isinstance(block, Mapping):
        found = sorted(k for k in evaluation if k.endswith("_metrics"))
        raise ValueError(f"expected a {task} model-quality report ({MODEL_QUALITY_SECTION[task]}), found {found}")
    return {
        name: float(block[name]["value"])
        for name in METRICS[task]
        if isinstance(block.get(name), Mapping) and isinstance(block[name].get("value"), int | float)
    }
