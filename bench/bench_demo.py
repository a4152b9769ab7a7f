"""Benchmark of `make demo`: each stage, the floor, and the ratio to it, measured in one run.

    .venv/bin/python bench/bench_demo.py [--runs N]

Runs `mlops demo --auto-approve --report` N times as a user would (a fresh process, a fresh twin, and a
fresh definition render cache each time, so every run pays the cold render the first demo after an
install pays), and prints the median of each demo stage and of the total.

The floor is what the demo cannot avoid: one SageMaker SDK import (the definition must be rendered
once), plus the three steps' own compute (Preprocess, Train and Evaluate, each a process importing
pandas, scikit-learn and XGBoost, as in SageMaker's containers), plus one process start per pipeline
step that runs a process (a fresh `mlops` command). Each part is measured here, in the same run: the
SDK import and the `mlops` start in fresh processes (medians), the step durations from each demo's own
pipeline execution (ListPipelineExecutionSteps on the twin it leaves running), the step counts from
each demo's report: a step that ran bash counts as a Python start (`mlops`, `python`) when it lasted at
least half of a measured `mlops` start, else as a bash start. Prints figures only; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3

from mlops.core.config import load_config

REPO_ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
COMPUTE_STEPS = ("Preprocess", "Train", "Evaluate")


def _timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=REPO_ROOT, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def _execution_step_seconds(twin_dir: Path, env: dict[str, str], pipeline: str) -> dict[str, float]:
    """Durations of the demo execution's steps, read from the twin the demo left running."""
    twin_env = json.loads(
        subprocess.run(
            [str(BIN / "python"), "-c", _TWIN_ENV, str(twin_dir)], env=env, check=True, capture_output=True, text=True
        ).stdout
    )
    session = boto3.Session(
        aws_access_key_id=twin_env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=twin_env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=twin_env.get("AWS_SESSION_TOKEN"),
        region_name=twin_env["AWS_DEFAULT_REGION"],
    )
    sm = session.client("sagemaker", endpoint_url=twin_env["AWS_ENDPOINT_URL"])
    executions = sm.list_pipeline_executions(PipelineName=pipeline)["PipelineExecutionSummaries"]
    steps = sm.list_pipeline_execution_steps(PipelineExecutionArn=executions[0]["PipelineExecutionArn"])
    return {
        s["StepName"]: (s["EndTime"] - s["StartTime"]).total_seconds()
        for s in steps["PipelineExecutionSteps"]
        if s["StepName"] in COMPUTE_STEPS
    }


_TWIN_ENV = """
import json, sys
from pathlib import Path
from mlops.local.twin import environment, running
state = running(Path(sys.argv[1]))
print(json.dumps({**environment(state, "automation"), "AWS_DEFAULT_REGION": state.region}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--use-case", help="the use case to run (`make demo USE_CASE=...`); default: mlops.yaml's")
    args = parser.parse_args()
    chosen = ["--use-case", args.use_case] if args.use_case else []
    pipeline = f"{args.use_case or load_config(REPO_ROOT / 'mlops.yaml', environ={}).use_cases.default}-build"
    base_env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MLOPS_"))}
    base_env["PATH"] = f"{BIN}{os.pathsep}{base_env.get('PATH', '')}"
    totals: list[float] = []
    stages: dict[str, list[float]] = {}
    compute: list[float] = []
    step_seconds: list[list[float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        twin_dir = Path(tmp) / "twin"
        for run in range(args.runs):
            env = {**base_env, "MLOPS_TWIN_DIR": str(twin_dir), "MLOPS_CACHE_DIR": str(Path(tmp) / f"cache-{run}")}
            report_file = Path(tmp) / f"report-{run}.json"
            command = [str(BIN / "mlops"), *chosen, "demo", "--auto-approve", "--report", str(report_file)]
            totals.append(_timed(command, env))
            report: dict[str, Any] = json.loads(report_file.read_text())
            for stage in report["stages"]:
                stages.setdefault(stage["name"], []).append(stage["seconds"])
            step_seconds.append([step["seconds"] for step in report["pipeline_steps"] if step["process"]])
            compute.append(sum(_execution_step_seconds(twin_dir, env, pipeline).values()))
            subprocess.run([str(BIN / "mlops"), "local", "down"], env=env, check=True, capture_output=True)
            print(f"run {run + 1}: {totals[-1]:.1f} s", file=sys.stderr)
        env = {**base_env, "AWS_DEFAULT_REGION": "us-east-1"}
        sdk_import = statistics.median(
            _timed([str(BIN / "python"), "-c", "import model_build.pipeline"], env) for _ in range(3)
        )
        mlops_start = statistics.median(_timed([str(BIN / "mlops"), "--version"], env) for _ in range(5))
        bash_start = statistics.median(_timed(["bash", "-c", "true"], env) for _ in range(5))

    median_total = statistics.median(totals)
    python_steps = int(statistics.median(sum(1 for s in run if s >= mlops_start / 2) for run in step_seconds))
    bash_steps = int(statistics.median(len(run) for run in step_seconds)) - python_steps
    floor = sdk_import + statistics.median(compute) + python_steps * mlops_start + bash_steps * bash_start
    shown = " ".join(["mlops", *chosen, "demo"])
    print(f"make demo ({shown}), {args.runs} run(s), medians:")
    for name, seconds in stages.items():
        print(f"  {name:<48}{statistics.median(seconds):7.2f} s")
    print(f"  {'total (wall, whole process)':<48}{median_total:7.2f} s   runs: {', '.join(f'{t:.1f}' for t in totals)}")
    print("floor:")
    print(f"  {'SageMaker SDK import (fresh process)':<48}{sdk_import:7.2f} s")
    print(f"  {'Preprocess + Train + Evaluate (their own run)':<48}{statistics.median(compute):7.2f} s")
    python_label = f"{python_steps} Python steps x mlops start ({mlops_start:.2f} s)"
    print(f"  {python_label:<48}{python_steps * mlops_start:7.2f} s")
    print(f"  {f'{bash_steps} other steps x bash start ({bash_start:.3f} s)':<48}{bash_steps * bash_start:7.2f} s")
    print(f"  {'floor':<48}{floor:7.2f} s")
    print(f"ratio total / floor: {median_total / floor:.2f} (budget: 2.0; and 30 s in total)")


if __name__ == "__main__":
    main()
