"""Benchmark of the twin's pipeline executor: a first run against an unchanged re-run (cached steps).

    .venv/bin/python bench/bench_twin.py [--runs N]

Starts the twin in-process (the same server `mlops local up` runs), upserts the real definition and
runs it N+1 times: the first run executes every step, the later ones hit the step cache for
Preprocess, Train and Evaluate (Register always runs). Prints wall times (median of the re-runs, and
the ratio to the first run) and, for the first run, where the time goes per step. Asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import boto3

REPO_ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5, help="cached re-runs after the first run")
    args = parser.parse_args()
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    from mlops.core.config import load_config
    from mlops.local.bootstrap import bootstrap
    from mlops.local.server import TwinServer
    from model_build.build import render, start, upsert, wait

    config = load_config(REPO_ROOT / "mlops.yaml", profile="local", environ={})
    with tempfile.TemporaryDirectory() as tmp:
        accounts = {
            "automation": config.accounts.automation.id,
            "staging": config.accounts.staging.id,
            "prod": config.accounts.prod.id,
        }
        twin = TwinServer(state_dir=Path(tmp), accounts=accounts, region=config.region).start()
        os.environ["AWS_ENDPOINT_URL"] = twin.url
        session = boto3.Session(
            aws_access_key_id="twin-automation",
            aws_secret_access_key="x",  # noqa: S106 - the twin accepts any secret
            region_name=config.region,
        )
        bootstrap(config, session)
        sm, s3 = session.client("sagemaker"), session.client("s3")
        rendered = render(config, "main")
        upsert(sm, s3, config, rendered, "main")
        walls = []
        first_steps = []
        for index in range(args.runs + 1):
            started = time.perf_counter()
            execution = start(
                sm, s3, config, rendered, branch="main", commit="0" * 40, build_id=f"20261122T0000{index:02d}Z-0000000"
            )
            wait(sm, execution.arn, timeout_seconds=600, poll_seconds=0.05, first_poll_seconds=0.05)
            walls.append(time.perf_counter() - started)
            if index == 0:
                first_steps = sm.list_pipeline_execution_steps(
                    PipelineExecutionArn=execution.arn, SortOrder="Ascending"
                )["PipelineExecutionSteps"]
        twin.stop()
    first, reruns = walls[0], walls[1:]
    print(f"first run (every step executes): {first:.2f} s")
    median = statistics.median(reruns)
    print(f"unchanged re-run, median of {len(reruns)}: {median:.3f} s (min {min(reruns):.3f}, max {max(reruns):.3f})")
    print(f"  first run / re-run: {first / median:.0f}x")
    print("where the first run's time goes:")
    accounted = 0.0
    for step in first_steps:
        seconds = (step["EndTime"] - step["StartTime"]).total_seconds()
        accounted += seconds
        print(f"  {step['StepName']:<14}{seconds:>7.2f} s")
    print(f"  {'(polling, API)':<14}{first - accounted:>7.2f} s")


if __name__ == "__main__":
    main()
