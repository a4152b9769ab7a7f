"""Write the model-build run summary (Markdown) for `##vso[task.uploadsummary]`.

Runs on the agent with the automation account's credentials (AWSShellScript@1), after the build
step whether it succeeded or not: `--execution` may be empty when the build failed before starting
an execution. The content comes from `model_build.summary` (which step failed and why; the metrics
of the registered package).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import boto3

from mlops.core.config import load_config
from model_build.summary import collect, render


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--execution", default="", help="pipeline execution ARN; empty if none was started")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    config = load_config(None)
    session = boto3.Session(region_name=config.region)
    # An output variable the failed step never set reaches the script unexpanded, as "$(build.executionArn)".
    execution = args.execution if args.execution.startswith("arn:") else None
    facts = collect(session.client("sagemaker"), session.client("s3"), config.build.model_package_group, execution)
    text = render(facts)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
