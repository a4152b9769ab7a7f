"""Benchmark of the EventBridge -> Azure DevOps bridge.

    .venv/bin/python bench/bench_bridge.py [--events N] [--imports N] [--no-package]

1. Handler throughput and latency: N new approvals (each re-checks the registry, takes the idempotency
   record, starts a run through the real azure-devops SDK against the fake Azure DevOps server on
   loopback, and writes the run back onto the package), then the same N events redelivered (duplicates).
   AWS is moto in-process (mock_aws), so these figures are the bridge's own overhead plus moto's, not
   AWS's network latency.
2. Cold import of `mlops_bridge.handler` in a fresh interpreter, median of N: from the repository's venv,
   and from the extracted Lambda zip (python -S, only the zip on the path, as in Lambda).
3. The Lambda zip: built with `mlops bridge package` into a temporary directory (needs PyPI); its size.
Prints figures; asserts nothing.
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
import zipfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
for _name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL")]:
    os.environ.pop(_name)  # moto's mock_aws does not intercept when an endpoint URL is set
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
)
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")  # one JSON line per event would dominate the timing
os.environ["AZURE_DEVOPS_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-bridge-ado-cache-")

IMPORT_SNIPPET = "import time; t = time.perf_counter(); import mlops_bridge.handler; print(time.perf_counter() - t)"


class _Context:
    function_name = "mlops-bridge-bench"
    aws_request_id = "bench"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def handler_latency(events: int) -> None:
    import boto3
    from moto import mock_aws

    from mlops.local.fake_ado import FakeAzureDevOps
    from mlops.local.moto_registry import aws_update_model_package_semantics
    from mlops_bridge.handler import build_bridge

    # moto 5.2.5's UpdateModelPackage would clear the approval on the write-back; patch it to AWS's semantics.
    with mock_aws(), aws_update_model_package_semantics(), FakeAzureDevOps("bench", pat="bench-pat") as fake:
        session = boto3.Session(region_name="us-east-1")
        session.client("dynamodb").create_table(
            TableName="idempotency",
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        secret = session.client("secretsmanager").create_secret(
            Name="ado", SecretString=json.dumps({"type": "pat", "token": "bench-pat"})
        )["ARN"]
        sagemaker = session.client("sagemaker")
        sagemaker.create_model_package_group(ModelPackageGroupName="bench")
        spec = {
            "Containers": [{"Image": "i", "ModelDataUrl": "s3://b/m.tar.gz"}],
            "SupportedContentTypes": ["text/csv"],
            "SupportedResponseMIMETypes": ["text/csv"],
        }
        arns = [
            sagemaker.create_model_package(
                ModelPackageGroupName="bench", ModelApprovalStatus="Approved", InferenceSpecification=spec
            )["ModelPackageArn"]
            for _ in range(events)
        ]
        env = {
            "ADO_ORG_URL": fake.org_url,
            "ADO_PROJECT": "mlops",
            "ADO_PIPELINE_ID": "2",
            "ADO_AUTH_SECRET_ARN": secret,
            "IDEMPOTENCY_TABLE": "idempotency",
            "MODEL_PACKAGE_GROUPS": "bench",
        }
        bridge = build_bridge(env, session=session)
        event_list = [
            {
                "id": f"evt-{i}",
                "source": "aws.sagemaker",
                "detail-type": "SageMaker Model Package State Change",
                "resources": [arn],
                "detail": {
                    "ModelPackageGroupName": "bench",
                    "ModelPackageVersion": i + 1,
                    "ModelPackageArn": arn,
                    "ModelApprovalStatus": "Approved",
                },
            }
            for i, arn in enumerate(arns)
        ]
        for label, expected in (("new approvals", "started"), ("redeliveries (duplicates)", "duplicate")):
            latencies = []
            unexpected = 0
            started = time.perf_counter()
            for event in event_list:
                t0 = time.perf_counter()
                outcome = bridge.handle(event, _Context())["outcome"]
                latencies.append(time.perf_counter() - t0)
                unexpected += outcome != expected
            total = time.perf_counter() - started
            if unexpected:
                print(f"  {unexpected} event(s) did not give {expected!r}: the figures below are not comparable")
            print(
                f"  {label:<27} {events} events in {total:.2f}s: {events / total:7.1f} events/s, "
                f"p50 {statistics.median(latencies) * 1000:6.2f} ms, p99 {_percentile(latencies, 0.99) * 1000:6.2f} ms"
            )
        print(f"  runs started on the fake: {len(fake.runs)} (expected {events}); HTTP requests: {len(fake.requests)}")


def cold_import(runs: int, python_path: Path | None, label: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    command = [sys.executable, "-c", IMPORT_SNIPPET]
    if python_path is not None:
        env["PYTHONPATH"] = str(python_path)
        command = [sys.executable, "-S", "-c", IMPORT_SNIPPET]  # no site-packages: only what the zip holds
    seconds = []
    for _ in range(runs):
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(f"  {label}: import failed: {done.stderr.strip().splitlines()[-1]}")
            return
        seconds.append(float(done.stdout.strip()))
    print(
        f"  {label:<40} median {statistics.median(seconds) * 1000:6.0f} ms "
        f"(min {min(seconds) * 1000:.0f}, max {max(seconds) * 1000:.0f}, n={runs})"
    )


def build_zip(out: Path) -> Path | None:
    mlops = Path(sys.executable).parent / "mlops"
    started = time.perf_counter()
    done = subprocess.run(
        [str(mlops), "bridge", "package", "--out", str(out)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["no output"])[0]
        print(f"  zip NOT built (PyPI unreachable or a wheel missing?): {reason}")
        return None
    size = out.stat().st_size
    files = len(zipfile.ZipFile(out).namelist())
    print(f"  zip built in {time.perf_counter() - started:.1f}s: {size / 1e6:.1f} MB compressed, {files} files")
    unpacked = sum(i.file_size for i in zipfile.ZipFile(out).infolist())
    print(f"  unpacked {unpacked / 1e6:.1f} MB (Lambda limits: 50 MB zipped upload, 250 MB unpacked)")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300, help="approval events (each also redelivered once)")
    parser.add_argument("--imports", type=int, default=7, help="fresh interpreters for the cold-import median")
    parser.add_argument("--no-package", action="store_true", help="skip building the Lambda zip")
    args = parser.parse_args()

    print(f"bridge handler against the fake Azure DevOps on loopback (moto in-process), {args.events} events:")
    handler_latency(args.events)

    with tempfile.TemporaryDirectory(prefix="bench-bridge-") as work_name:
        work = Path(work_name)
        print("Lambda zip (mlops bridge package):")
        built = None if args.no_package else build_zip(work / "mlops-bridge-lambda.zip")
        if args.no_package:
            print("  skipped (--no-package)")
        print("cold import of mlops_bridge.handler (fresh interpreter):")
        cold_import(args.imports, None, "from the repository venv")
        if built is not None:
            extracted = work / "unzipped"
            zipfile.ZipFile(built).extractall(extracted)
            cold_import(args.imports, extracted, "from the extracted zip (with its .pyc)")


if __name__ == "__main__":
    main()
