"""Run the step scripts as SageMaker runs them (paths, SM_* environment, use_case.json) for one use case."""

from __future__ import annotations

import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mlops.core.use_cases import UseCase, default_directory, load_use_case
from model_build import data
from model_build.steps import evaluate, preprocess, train


def shipped_use_case(name: str) -> UseCase:
    return load_use_case(default_directory(), name)


def use_case(task: str, framework: str, dataset: str, **overrides: Any) -> UseCase:
    """A valid use case of the task and framework on a bundled data set (its features read from the data)."""
    header = data.bundled_table(dataset).header
    classes = {"binary": [0, 1], "multiclass": [0, 1, 2], "regression": None}[task]
    metric = {"binary": "auc", "multiclass": "accuracy", "regression": "rmse"}[task]
    raw: dict[str, Any] = {
        "name": f"{dataset.replace('_', '-')}-{framework}",
        "description": "a test use case",
        "task": task,
        "framework": framework,
        "data": {"source": f"sklearn:{dataset}", "label": "label"},
        "features": header[:-1],
        "classes": classes,
        "quality": {"metric": metric, "threshold": 100.0 if metric == "rmse" else 0.5},
        **overrides,
    }
    return UseCase.model_validate(raw)


def write_spec(directory: Path, case: UseCase) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "use_case.json"
    path.write_text(json.dumps(case.step_spec(), indent=2))
    return path


@dataclass(frozen=True)
class StepRun:
    root: Path
    spec: Path
    model_dir: Path
    artifact_dir: Path
    evaluation_dir: Path

    @property
    def test_csv(self) -> Path:
        return self.root / "test" / "test.csv"

    def report(self) -> dict[str, Any]:
        return dict(json.loads((self.evaluation_dir / "evaluation.json").read_text()))


def run_preprocess(root: Path, case: UseCase, payload: bytes | None = None) -> Path:
    spec = write_spec(root / "code", case)
    (root / "input").mkdir(parents=True, exist_ok=True)
    dataset = case.data.source.removeprefix("sklearn:")
    (root / "input" / "data.csv").write_bytes(payload if payload is not None else data.bundled_csv_bytes(dataset))
    args = ["--input-dir", str(root / "input"), "--output-dir", str(root), "--use-case-file", str(spec)]
    assert preprocess.main(args) == 0
    return spec


def run_train(root: Path, spec: Path, hyperparameters: dict[str, str]) -> Path:
    patch = pytest.MonkeyPatch()
    for channel in ("train", "validation", "preprocessor"):
        patch.setenv(f"SM_CHANNEL_{channel.upper()}", str(root / channel))
    patch.setenv("SM_MODEL_DIR", str(root / "model"))
    patch.setenv("SM_OUTPUT_DIR", str(root / "output"))
    patch.setenv("SM_HPS", json.dumps({**hyperparameters, "sagemaker_program": "train.py"}))
    try:
        code = train.main(["--use-case-file", str(spec)])
        failure = root / "output" / "failure"
        assert code == 0, failure.read_text() if failure.exists() else "train failed"
    finally:
        patch.undo()
    return root / "model"


def package(model_dir: Path, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out / "model.tar.gz", "w:gz") as archive:
        archive.add(model_dir, arcname=".")
    return out


def run_evaluate(root: Path, spec: Path, artifact: Path, out: Path) -> int:
    return evaluate.main(
        [
            "--model-dir", str(artifact), "--test-dir", str(root / "test"),
            "--output-dir", str(out), "--use-case-file", str(spec),
        ]
    )  # fmt: skip


def run_all(root: Path, case: UseCase, hyperparameters: dict[str, str]) -> StepRun:
    spec = run_preprocess(root, case)
    model_dir = run_train(root, spec, hyperparameters)
    artifact = package(model_dir, root / "artifact")
    assert run_evaluate(root, spec, artifact, root / "evaluation") == 0
    return StepRun(root, spec, model_dir, artifact, root / "evaluation")
