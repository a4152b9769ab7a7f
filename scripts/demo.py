"""`mlops demo` until the local twin lands: the use case's three step scripts, run for real.

This runs preprocess -> train -> evaluate as subprocesses under the SageMaker container contract
(the `/opt/ml/...` paths mapped into a work directory, `SM_*` variables set as SageMaker's framework
containers set them), on the bundled data. It does not create a SageMaker pipeline, register a model
or deploy anything: those need the local twin (moto, the step executor, the fake Azure DevOps), and
the report says so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.config import Config
from mlops.errors import BuildError
from model_build import data

STEPS_DIR = Path(__file__).resolve().parent.parent / "model_build" / "steps"


@dataclass
class StageResult:
    name: str
    status: str
    seconds: float


@dataclass
class DemoResult:
    stages: list[StageResult] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    evaluation_dir: Path | None = None
    total_seconds: float = 0.0

    def report(self) -> dict[str, Any]:
        return {
            "mode": "local step scripts only (no twin yet): nothing is registered or deployed",
            "stages": [{"name": s.name, "status": s.status, "seconds": round(s.seconds, 3)} for s in self.stages],
            "model_package_arn": None,
            "metrics": self.metrics,
            "endpoints": [],
            "total_seconds": round(self.total_seconds, 3),
        }


def _run_step(name: str, argv: list[str], env: dict[str, str], log: Path) -> None:
    with log.open("wb") as sink:
        done = subprocess.run([sys.executable, *argv], env=env, stdout=sink, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise BuildError(
            f"step {name} exited with {done.returncode}: {' | '.join(tail)}",
            hint=f"see the full log in {log}",
        )


def run_demo(config: Config, work_dir: Path, progress: Callable[[str], None] = print) -> DemoResult:
    result = DemoResult()
    started = time.perf_counter()
    work_dir.mkdir(parents=True, exist_ok=True)
    opt_ml = work_dir / "opt" / "ml"
    processing = opt_ml / "processing"
    base_env = {k: v for k, v in os.environ.items() if not k.startswith("SM_")}
    hps = config.build.hyperparameters.model_dump()

    def stage(name: str, action: Callable[[], None]) -> None:
        progress(f"[{name}] running")
        t0 = time.perf_counter()
        try:
            action()
        except BaseException:
            result.stages.append(StageResult(name, "Failed", time.perf_counter() - t0))
            raise
        result.stages.append(StageResult(name, "Succeeded", time.perf_counter() - t0))
        progress(f"[{name}] succeeded in {time.perf_counter() - t0:.1f}s")

    def preprocess() -> None:
        data.write_dataset(processing / "input")
        _run_step(
            "Preprocess",
            [
                str(STEPS_DIR / "preprocess.py"),
                "--input-dir",
                str(processing / "input"),
                "--output-dir",
                str(processing),
            ],
            base_env,
            work_dir / "preprocess.log",
        )

    def train() -> None:
        env = dict(base_env)
        for channel in ("train", "validation", "preprocessor"):
            env[f"SM_CHANNEL_{channel.upper()}"] = str(processing / channel)
        env["SM_MODEL_DIR"] = str(opt_ml / "model")
        env["SM_OUTPUT_DIR"] = str(opt_ml / "output")
        env["SM_HPS"] = json.dumps({k: str(v) for k, v in hps.items()})
        _run_step("Train", [str(STEPS_DIR / "train.py")], env, work_dir / "train.log")
        artifact_dir = processing / "model"
        artifact_dir.mkdir(parents=True, exist_ok=True)
        with tarfile.open(artifact_dir / "model.tar.gz", "w:gz") as archive:
            for path in sorted((opt_ml / "model").rglob("*")):
                archive.add(path, arcname=str(path.relative_to(opt_ml / "model")), recursive=False)

    def evaluate() -> None:
        _run_step(
            "Evaluate",
            [
                str(STEPS_DIR / "evaluate.py"),
                "--model-dir",
                str(processing / "model"),
                "--test-dir",
                str(processing / "test"),
                "--output-dir",
                str(processing / "evaluation"),
            ],
            base_env,
            work_dir / "evaluate.log",
        )
        report = json.loads((processing / "evaluation" / "evaluation.json").read_text())
        metrics = report["binary_classification_metrics"]
        result.metrics = {k: metrics[k]["value"] for k in ("auc", "f1", "precision", "recall", "accuracy")}
        result.evaluation_dir = processing / "evaluation"

    stage("Preprocess", preprocess)
    stage("Train", train)
    stage("Evaluate", evaluate)
    result.total_seconds = time.perf_counter() - started
    return result
