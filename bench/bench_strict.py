"""Benchmark of the strict twin: `mlops demo` strict against lenient, in one run.

    .venv/bin/python bench/bench_strict.py [--runs N]

Runs the whole demo flow (twin up, model-build.yml, approval, bridge, model-deploy.yml) N times strict,
as `make demo` runs it (every AWS request validated against botocore's model, MLOPS_TWIN_STRICT_REQUESTS=1,
and authorised by the IAM engine, MLOPS_TWIN_IAM=enforce: the defaults), and N times lenient (=0 and
off; the accounts are still the templates'), interleaved strict/lenient/lenient/strict/... so that drift in the
machine's load falls on both. Each run starts its own twin in a temporary directory and stops it.
Prints the median wall time of each mode, their ratio against the budget (strictness may add at most
20 %), the median per stage, and how many requests the gate checked and the time it spent on them
(from the twin's /_twin/health). A failed run is reported with its error and no ratio is printed.
Asserts nothing.
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
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
MLOPS = Path(sys.executable).parent / "mlops"
BUDGET = 1.20


@dataclass
class Run:
    strict: bool
    seconds: float
    stages: dict[str, float] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    error: str = ""


def _environment(strict: bool, twin_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "MLOPS_"))}
    env.update(
        {
            "MLOPS_TWIN_STRICT_REQUESTS": "1" if strict else "0",
            "MLOPS_TWIN_IAM": "enforce" if strict else "off",
            "MLOPS_TWIN_DIR": str(twin_dir),
            "MLOPS_CONFIG": str(REPO_ROOT / "mlops.yaml"),
        }
    )
    return env


def _request_checks(twin_dir: Path) -> dict[str, Any]:
    state = json.loads((twin_dir / "twin.json").read_text())
    with urllib.request.urlopen(f"{state['url']}/_twin/health", timeout=5) as response:  # noqa: S310 - loopback
        health = json.loads(response.read())
    if health.get("requests") != "strict":
        return {"mode": health.get("requests")}
    return {"mode": "strict", **health["request_checks"]}


def run_demo(strict: bool, work: Path) -> Run:
    twin_dir = work / "twin"
    report = work / "report.json"
    env = _environment(strict, twin_dir)
    started = time.perf_counter()
    done = subprocess.run(
        [str(MLOPS), "demo", "--auto-approve", "--report", str(report)],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    run = Run(strict=strict, seconds=seconds)
    try:
        if report.exists():
            run.stages = {s["name"]: s["seconds"] for s in json.loads(report.read_text())["stages"]}
        if (twin_dir / "twin.json").exists():
            run.checks = _request_checks(twin_dir)
        if done.returncode != 0:
            run.error = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-2:][0]
    finally:
        subprocess.run([str(MLOPS), "local", "down"], env=env, capture_output=True, check=False)
    return run


def _summary(label: str, runs: list[Run]) -> float:
    walls = [r.seconds for r in runs]
    median = statistics.median(walls)
    checked = [r.checks.get("checked", 0) for r in runs]
    gate = [r.checks.get("seconds", 0.0) for r in runs]
    extra = (
        f"; gate checked {statistics.median(checked):.0f} requests in {statistics.median(gate):.2f} s (median)"
        if runs[0].strict
        else ""
    )
    print(f"{label:<8} median {median:6.2f} s (min {min(walls):.2f}, max {max(walls):.2f}, n={len(walls)}){extra}")
    return median


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="demo runs per mode")
    args = parser.parse_args()
    order = [i % 4 in (0, 3) for i in range(2 * args.runs)]  # strict, lenient, lenient, strict, ...
    runs: list[Run] = []
    for index, strict in enumerate(order, start=1):
        with tempfile.TemporaryDirectory(prefix="bench-strict-") as tmp:
            run = run_demo(strict, Path(tmp))
        runs.append(run)
        mode = "strict" if strict else "lenient"
        status = f"FAILED: {run.error}" if run.error else "ok"
        print(f"run {index}/{len(order)} {mode:<8}{run.seconds:7.2f} s  {status}", flush=True)
    failed = [r for r in runs if r.error]
    if failed:
        print(f"{len(failed)} run(s) failed; no ratio: a partial flow is not comparable", file=sys.stderr)
        refused = {k: v for r in failed for k, v in r.checks.get("refused_by_operation", {}).items()}
        if refused:
            print(f"requests the strict twin refused: {refused}", file=sys.stderr)
        return 1
    strict_runs = [r for r in runs if r.strict]
    lenient_runs = [r for r in runs if not r.strict]
    strict_median = _summary("strict", strict_runs)
    lenient_median = _summary("lenient", lenient_runs)
    ratio = strict_median / lenient_median
    verdict = "within" if ratio <= BUDGET else "OVER"
    print(f"strict / lenient: {ratio:.3f}x ({verdict} the {BUDGET:.2f}x budget)")
    print("median seconds per stage (strict, lenient):")
    for stage in strict_runs[0].stages:
        s = statistics.median(r.stages.get(stage, 0.0) for r in strict_runs)
        lenient = statistics.median(r.stages.get(stage, 0.0) for r in lenient_runs)
        print(f"  {stage:<46}{s:7.2f} {lenient:7.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
