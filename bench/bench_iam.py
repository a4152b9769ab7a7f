"""Benchmark of IAM in the twin: `mlops demo` with IAM checks on against off, in one run.

    .venv/bin/python bench/bench_iam.py [--runs N] [--on MODE]

Runs `mlops demo --auto-approve --report FILE` N times per mode, alternating (on, off, on, off, ...)
so drift in the machine's load hits both alike, with `MLOPS_TWIN_IAM` set to `--on` (default
`enforce`; `report` evaluates exactly as much and refuses nothing) and to `off` (no checks, no
sidecar). Prints each run's total and per-stage seconds from the demo's own report, the medians, the
ratio on/off, and the IAM summary line of the last checked run. A demo that fails is reported with
its error line and counted out of the medians. Asserts nothing; the budget (issue 12, item 7) is
that strictness adds at most 20 % to `make demo`.

Demo times swing with the machine's load; so it also measures the cost per request directly: an
in-process twin per mode, a role session making the same mix of calls (S3 put/get/list, SageMaker
describe, SQS send) `--calls` times, median milliseconds per call (`--no-micro` skips it).
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


def micro(calls: int, on: str) -> None:
    """Milliseconds per request with IAM `on` against `off`, same calls, same process."""
    import boto3

    from mlops.local.server import TwinServer

    accounts = {"automation": "000000000001", "staging": "000000000002", "prod": "000000000003"}
    per_call: dict[str, float] = {}
    for mode in (on, "off"):
        with tempfile.TemporaryDirectory() as tmp:
            twin = TwinServer(state_dir=Path(tmp), accounts=accounts, region="us-east-1", iam_mode=mode).start()
            try:
                root = boto3.Session(
                    aws_access_key_id="twin-automation",
                    aws_secret_access_key="x",  # noqa: S106 - the twin accepts any secret
                    region_name="us-east-1",
                )
                iam = root.client("iam", endpoint_url=twin.url)
                trust = {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"AWS": "arn:aws:iam::000000000001:root"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                }
                role = f"bench-{mode}"
                iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps(trust))
                grants = {
                    "Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": ["s3:*", "sqs:*", "sagemaker:*"], "Resource": "*"}],
                }
                iam.put_role_policy(RoleName=role, PolicyName="bench", PolicyDocument=json.dumps(grants))
                credentials = root.client("sts", endpoint_url=twin.url).assume_role(
                    RoleArn=f"arn:aws:iam::000000000001:role/{role}", RoleSessionName="bench"
                )["Credentials"]
                session = boto3.Session(
                    aws_access_key_id=credentials["AccessKeyId"],
                    aws_secret_access_key=credentials["SecretAccessKey"],
                    aws_session_token=credentials["SessionToken"],
                    region_name="us-east-1",
                )
                s3, sm, sqs = (session.client(s, endpoint_url=twin.url) for s in ("s3", "sagemaker", "sqs"))
                bucket = f"bench-{mode}"
                s3.create_bucket(Bucket=bucket)
                sm.create_model_package_group(ModelPackageGroupName=bucket)
                queue = sqs.create_queue(QueueName=bucket)["QueueUrl"]
                timings = []
                for index in range(calls):
                    started = time.perf_counter()
                    s3.put_object(Bucket=bucket, Key=f"k/{index % 10}", Body=b"x")
                    s3.get_object(Bucket=bucket, Key=f"k/{index % 10}")["Body"].read()
                    s3.list_objects_v2(Bucket=bucket, Prefix="k/")
                    sm.describe_model_package_group(ModelPackageGroupName=bucket)
                    sqs.send_message(QueueUrl=queue, MessageBody="x")
                    timings.append((time.perf_counter() - started) / 5 * 1000)
                per_call[mode] = statistics.median(timings)
            finally:
                twin.stop()
        print(f"  per request, {mode:<8} median {per_call[mode]:6.2f} ms over {calls} x 5 calls")
    print(f"  per request, {on}/off: +{per_call[on] - per_call['off']:.2f} ms ({per_call[on] / per_call['off']:.2f}x)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3, help="demos per mode")
    parser.add_argument("--on", default="enforce", choices=["enforce", "report"], help="the checked mode")
    parser.add_argument("--calls", type=int, default=100, help="rounds of the per-request measurement")
    parser.add_argument("--no-micro", action="store_true", help="skip the per-request measurement")
    parser.add_argument("--no-demo", action="store_true", help="skip the demo runs")
    args = parser.parse_args()
    if not args.no_micro:
        micro(args.calls, args.on)
    if args.no_demo:
        return
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
