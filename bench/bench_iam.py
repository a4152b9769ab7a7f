"""Benchmark of IAM in the twin: `mlops demo` with IAM checks on against off, in one run.

    .venv/bin/python bench/bench_iam.py [--runs N] [--on MODE]

Runs `mlops demo --auto-approve --report FILE` N times per mode, alternating (on, off, on, off, ...)
so drift in the machine's load hits both alike, with `MLOPS_TWIN_IAM` set to `--on` (default
`enforce`; `report` evaluates exactly as much and refuses nothing) and to `off` (no checks, no
sidecar). Prints each run's total and per-stage seconds from the demo's own report, the medians, the
ratio on/off, and the IAM summary line of the last checked run. A demo that fails is reported with
its error line and counted out of the medians. Asserts nothing; the budget (issue 12, item 7) is
that strictness adds at most 20 % to `make demo`.
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

REPO_ROOT = Path(__file__).resolve().parent.parent
MLOPS = Path(sys.executable).parent / "mlops"


def run_demo(mode: str, report: Path) -> tuple[float | None, dict[str, float], str]:
    env = {**os.environ, "MLOPS_TWIN_IAM": mode}
    env.pop("AWS_ENDPOINT_URL", None)
    started = time.perf_counter()
    done = subprocess.run(
        [str(MLOPS), "demo", "--auto-approve", "--report", str(report)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - started
    lines = done.stdout.strip().splitlines()
    iam_line = next((line for line in reversed(lines) if " AWS calls" in line), "")
    if done.returncode != 0:
        error = next((line for line in done.stderr.splitlines() if line.startswith("error:")), done.stderr[-300:])
        print(f"  {mode:<8} FAILED after {wall:.1f}s: {error}")
        print(f"           {iam_line}")
        return None, {}, iam_line
    data = json.loads(report.read_text())
    stages = {stage["name"]: float(stage["seconds"]) for stage in data["stages"]}
    total = float(data["total_seconds"])
    print(f"  {mode:<8} total {total:6.1f}s (wall {wall:5.1f}s)  " + "  ".join(f"{v:5.1f}" for v in stages.values()))
    return total, stages, iam_line


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="demos per mode")
    parser.add_argument("--on", default="enforce", choices=["enforce", "report"], help="the checked mode")
    args = parser.parse_args()
    totals: dict[str, list[float]] = {args.on: [], "off": []}
    last_line = ""
    with tempfile.TemporaryDirectory() as tmp:
        for index in range(args.runs):
            for mode in (args.on, "off"):
                total, _, line = run_demo(mode, Path(tmp) / f"{mode}-{index}.json")
                if total is not None:
                    totals[mode].append(total)
                if mode != "off" and line:
                    last_line = line
    subprocess.run([str(MLOPS), "local", "down"], cwd=REPO_ROOT, capture_output=True, check=False)
    print()
    for mode, values in totals.items():
        if values:
            print(f"{mode:<8} median {statistics.median(values):6.1f}s over {len(values)} run(s): {values}")
        else:
            print(f"{mode:<8} no successful run")
    if totals[args.on] and totals["off"]:
        ratio = statistics.median(totals[args.on]) / statistics.median(totals["off"])
        print(f"ratio {args.on}/off: {ratio:.3f} ({(ratio - 1) * 100:+.1f} %; budget +20 % with request validation)")
    print(f"IAM ({args.on}): {last_line}")


if __name__ == "__main__":
    main()
