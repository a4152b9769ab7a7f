"""Write the model-build run summary (Markdown) for `##vso[task.uploadsummary]`.

Finds the model package the execution registered (its `MetadataProperties.GeneratedBy` is the
execution ARN) and renders its evaluation metrics. Runs on the agent with the automation account's
credentials (AWSShellScript@1); a failed execution still gets a summary that says so.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import boto3

from mlops.core.config import load_config


def _metrics(node: Any, prefix: str = "") -> dict[str, float]:
    """Flatten SageMaker's model-quality JSON ({"binary_classification_metrics": {"auc": {"value": ..}}})."""
    found: dict[str, float] = {}
    if isinstance(node, dict):
        if isinstance(node.get("value"), (int, float)):
            found[prefix.rstrip(".")] = float(node["value"])
        for key, value in node.items():
            if key != "value":
                found.update(_metrics(value, f"{prefix}{key}."))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--execution", required=True, help="pipeline execution ARN")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    config = load_config(None)
    session = boto3.Session(region_name=config.region)
    sm, s3 = session.client("sagemaker"), session.client("s3")
    execution = sm.describe_pipeline_execution(PipelineExecutionArn=args.execution)
    lines = ["## Model build", "", f"Execution `{args.execution}`: **{execution['PipelineExecutionStatus']}**", ""]
    packages = sm.list_model_packages(
        ModelPackageGroupName=config.build.model_package_group, SortBy="CreationTime", SortOrder="Descending"
    )["ModelPackageSummaryList"]
    for summary in packages:
        package = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        if package.get("MetadataProperties", {}).get("GeneratedBy") != args.execution:
            continue
        lines += [f"Registered `{package['ModelPackageArn']}` ({package['ModelApprovalStatus']})", ""]
        uri = package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {}).get("S3Uri")
        if uri:
            bucket, key = uri.removeprefix("s3://").split("/", 1)
            metrics = _metrics(json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
            lines += ["| metric | value |", "|---|---|", *(f"| {k} | {v:.4f} |" for k, v in sorted(metrics.items()))]
        break
    else:
        lines.append("No model package was registered by this execution (quality gate failed or still running).")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
