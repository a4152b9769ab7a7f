"""Preprocess step: split the raw data, fit the transforms on train only, write every channel.

The use case's `use_case.json` (beside this file in the code bundle) names the label, the features in
order, the task and the classes: classifiers' splits are stratified by class, a regression's are not.
Runs inside SageMaker's scikit-learn processing container, so it imports only numpy, pandas and
scikit-learn, and nothing from this repository. Paths default to the processing container's
contract (`/opt/ml/processing/...`) and can be pointed elsewhere with arguments.

Outputs (each a ProcessingOutput of the pipeline):
  train/train.csv            label first, no header, transformed features   (XGBoost's CSV layout)
  validation/validation.csv  same layout, for early stopping
  test/test.csv              raw features with header and label column      (evaluation, staging tests)
  preprocessor/preprocessor.json  the fitted transform, bundled into the model for serving
  baseline/statistics.json   Model Monitor data-quality statistics of the raw training features
  baseline/constraints.json  Model Monitor data-quality constraints suggested from them (DriftCheckBaselines)
  baseline/provenance.json   the input's sha256, the split sizes and the label's class counts (classifiers:
                             and binary's positive rate) or mean and standard deviation (regression)
  baseline/baseline.csv      the raw training features with header          (Model Monitor baselining)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

if __package__:  # imported as model_build.steps.preprocess (tests)
    from . import baseline
else:  # run as a script in the container: baseline.py is beside it in the code bundle
    import baseline  # type: ignore[import-not-found,no-redef]

PREPROCESSOR_VERSION = 1
TASKS = ("binary", "multiclass", "regression")


class PreprocessError(Exception):
    """The input data is not what this step can use."""


@dataclass(frozen=True)
class StepSpec:
    """What this step reads of `use_case.json` (UseCase.step_spec(), validated when the build rendered it)."""

    name: str
    task: str
    label: str
    features: list[str]
    classes: list[int] | None


def read_step_spec(path: Path) -> StepSpec:
    if not path.is_file():
        raise PreprocessError(
            f"expected the use case's use_case.json at {path}, found none; the build writes UseCase.step_spec() "
            "into every step's code bundle (pass --use-case-file when running the step by hand)"
        )
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        spec = StepSpec(
            name=str(raw["name"]),
            task=str(raw["task"]),
            label=str(raw["label"]),
            features=[str(f) for f in raw["features"]],
            classes=None if raw["classes"] is None else [int(c) for c in raw["classes"]],
        )
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise PreprocessError(
            f"{path}: expected UseCase.step_spec() as JSON (name, task, label, features, classes), "
            f"found unreadable content ({type(exc).__name__}: {exc})"
        ) from exc
    if spec.task not in TASKS:
        raise PreprocessError(f"{path}: task: expected one of {list(TASKS)}, found {spec.task!r}")
    if (spec.classes is None) != (spec.task == "regression"):
        raise PreprocessError(f"{path}: classes: a classifier lists its classes, a regression has none (null)")
    return spec


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-dir", default="/opt/ml/processing/input")
    parser.add_argument("--output-dir", default="/opt/ml/processing")
    parser.add_argument(
        "--use-case-file",
        default=str(Path(__file__).with_name("use_case.json")),
        help="the use case's step spec (default: use_case.json beside this script, as the code bundle has it)",
    )
    parser.add_argument("--validation-fraction", type=float, default=0.2)
    parser.add_argument("--test-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args(argv)


def read_input(input_dir: Path) -> tuple[pd.DataFrame, str]:
    files = sorted(input_dir.glob("*.csv"))
    if len(files) != 1:
        found = ", ".join(f.name for f in files) or "no CSV file"
        raise PreprocessError(f"expected exactly one CSV file in {input_dir}, found {found}")
    payload = files[0].read_bytes()
    frame = pd.read_csv(files[0])
    return frame, hashlib.sha256(payload).hexdigest()


def validate(frame: pd.DataFrame, spec: StepSpec) -> list[str]:
    """The use case's features, in its order, once the columns and labels are what it declares."""
    label = spec.label
    if label not in frame.columns:
        raise PreprocessError(
            f"use case {spec.name!r}: expected a label column {label!r}, found columns {list(frame.columns)[:5]}...; "
            "set data.label in use_case.yaml to the name of the target column"
        )
    missing = [f for f in spec.features if f not in frame.columns]
    extra = [c for c in frame.columns if c != label and c not in spec.features]
    if missing or extra:
        raise PreprocessError(
            f"use case {spec.name!r}: the data's columns differ from its features: missing {missing}, extra {extra}; "
            "make the CSV's header match `features` in use_case.yaml"
        )
    if frame[label].isna().any():
        raise PreprocessError(f"{int(frame[label].isna().sum())} rows have no label; drop or label them")
    if not pd.api.types.is_numeric_dtype(frame[label]):
        raise PreprocessError(f"expected a numeric label {label!r}, found values like {frame[label].iloc[0]!r}")
    if spec.task != "regression":
        labels = set(frame[label].unique().tolist())
        classes = list(spec.classes or [])
        if labels != set(classes):
            kind = "binary label with values 0 and 1" if spec.task == "binary" else f"multiclass label in {classes}"
            raise PreprocessError(
                f"expected a {kind}, each present, found {sorted(labels)}; map the label to 0..K-1 and list the "
                "classes in use_case.yaml"
            )
    non_numeric = [c for c in spec.features if not pd.api.types.is_numeric_dtype(frame[c])]
    if non_numeric:
        raise PreprocessError(f"expected numeric features, found non-numeric columns {non_numeric}")
    if len(frame) < 50:
        raise PreprocessError(f"expected at least 50 rows to split three ways, found {len(frame)}")
    return list(spec.features)


def split(
    frame: pd.DataFrame, label: str, validation_fraction: float, test_fraction: float, seed: int, *, stratify: bool
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Train, validation and test rows; stratified by the label for a classifier (a regression's is continuous)."""
    if not 0 < validation_fraction < 1 or not 0 < test_fraction < 1 or validation_fraction + test_fraction >= 1:
        raise PreprocessError(
            f"expected validation and test fractions in (0, 1) summing below 1, "
            f"found {validation_fraction} and {test_fraction}"
        )
    rest, test = train_test_split(
        frame, test_size=test_fraction, random_state=seed, stratify=frame[label] if stratify else None
    )
    train, validation = train_test_split(
        rest,
        test_size=validation_fraction / (1 - test_fraction),
        random_state=seed,
        stratify=rest[label] if stratify else None,
    )
    return train, validation, test


def fit_preprocessor(train: pd.DataFrame, features: list[str], label: str) -> dict[str, Any]:
    """Median imputation then standardisation, fitted on the training rows only."""
    values = train[features].astype(float)
    medians = values.median()
    imputed = values.fillna(medians)
    means = imputed.mean()
    scales = imputed.std(ddof=0).replace(0.0, 1.0)
    return {
        "version": PREPROCESSOR_VERSION,
        "label_column": label,
        "feature_names": features,
        "medians": [float(medians[f]) for f in features],
        "means": [float(means[f]) for f in features],
        "scales": [float(scales[f]) for f in features],
    }


def transform(frame: pd.DataFrame, preprocessor: dict[str, Any]) -> np.ndarray:
    features = preprocessor["feature_names"]
    values = frame[features].to_numpy(dtype=float)
    medians = np.asarray(preprocessor["medians"])
    values = np.where(np.isnan(values), medians, values)
    return np.asarray((values - np.asarray(preprocessor["means"])) / np.asarray(preprocessor["scales"]))


def provenance(train: pd.DataFrame, spec: StepSpec, source_sha256: str, counts: dict[str, Any]) -> dict[str, Any]:
    """Where the baseline came from: kept beside Model Monitor's files, whose schema has no place for it."""
    values = train[spec.label]
    label: dict[str, Any] = {"name": spec.label}
    if spec.task == "binary":
        label["positive_rate"] = float(values.mean())
    if spec.task == "regression":
        label.update({"mean": float(values.mean()), "std": float(values.std(ddof=0))})
    else:
        label["class_counts"] = {str(k): int((values == k).sum()) for k in spec.classes or []}
    return {"dataset": {"sha256": source_sha256, "rows": counts}, "label": label}


def write_channel(path: Path, frame: pd.DataFrame | np.ndarray, *, header: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(frame, np.ndarray):
        np.savetxt(path, frame, delimiter=",", fmt="%.10g")
    else:
        frame.to_csv(path, index=False, header=header)


def run(args: argparse.Namespace) -> dict[str, Any]:
    spec = read_step_spec(Path(args.use_case_file))
    label = spec.label
    frame, sha = read_input(Path(args.input_dir))
    features = validate(frame, spec)
    train, validation, test = split(
        frame, label, args.validation_fraction, args.test_fraction, args.seed, stratify=spec.task != "regression"
    )
    preprocessor = fit_preprocessor(train, features, label)
    out = Path(args.output_dir)
    for name, part in (("train", train), ("validation", validation)):
        labelled = np.column_stack([part[label].to_numpy(dtype=float), transform(part, preprocessor)])
        write_channel(out / name / f"{name}.csv", labelled, header=False)
    write_channel(out / "test" / "test.csv", test[[*features, label]], header=True)
    write_channel(out / "baseline" / "baseline.csv", train[features], header=True)
    (out / "preprocessor").mkdir(parents=True, exist_ok=True)
    (out / "preprocessor" / "preprocessor.json").write_text(json.dumps(preprocessor, indent=2))
    counts = {"train": len(train), "validation": len(validation), "test": len(test)}
    try:
        stats = baseline.data_quality_statistics(train[features])
    except baseline.BaselineError as exc:
        raise PreprocessError(f"cannot baseline the training features: {exc}") from exc
    (out / "baseline" / "statistics.json").write_text(json.dumps(stats, indent=2))
    constraints = baseline.data_quality_constraints(stats)
    (out / "baseline" / "constraints.json").write_text(json.dumps(constraints, indent=2))
    prov = provenance(train, spec, sha, counts)
    (out / "baseline" / "provenance.json").write_text(json.dumps(prov, indent=2))
    return counts


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        counts = run(args)
    except PreprocessError as exc:
        print(f"preprocess failed: {exc}", file=sys.stderr)
        return 1
    print(f"preprocess: rows train={counts['train']} validation={counts['validation']} test={counts['test']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
