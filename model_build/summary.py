"""The model-build run summary (Markdown for `##vso[task.uploadsummary]`), also when the build failed.

`collect` reads what the execution left behind (its status, its steps, the package it registered and
that package's metrics); `render` is pure. A build that failed before an execution started (no ARN),
one that failed at a step, and one stopped by the quality gate each get a summary that says which
step failed and why; the quality gate's reason carries the metric against its threshold.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import botocore.exceptions

from mlops.core.aws import error_message
from model_build.plan import first_failed_step

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker import SageMakerClient

QUALITY_GATE_STEPS = frozenset({"Fail", "CheckQuality"})


@dataclass(frozen=True)
class BuildFacts:
    execution_arn: str | None
    status: str | None = None
    failure_reason: str | None = None
    steps: Sequence[Mapping[str, Any]] = ()
    package_arn: str | None = None
    approval_status: str | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)
    problems: Sequence[str] = ()  # what could not be read, said in the summary rather than hidden


def flatten_metrics(node: Any, prefix: str = "") -> dict[str, float]:
    """SageMaker's model-quality JSON ({"binary_classification_metrics": {"auc": {"value": ..}}}) as name -> value."""
    found: dict[str, float] = {}
    if isinstance(node, dict):
        if isinstance(node.get("value"), (int, float)):
            found[prefix.rstrip(".")] = float(node["value"])
        for key, value in node.items():
            if key != "value":
                found.update(flatten_metrics(value, f"{prefix}{key}."))
    return found


def render(facts: BuildFacts) -> str:
    lines = ["## Model build", ""]
    if not facts.execution_arn:
        lines += [
            "**No SageMaker Pipeline execution was started**: the build failed before `mlops build run` "
            "started one (see the failed step of this job: upsert, credentials or the definition).",
        ]
        return "\n".join([*lines, *_problems(facts)]) + "\n"
    lines += [f"Execution `{facts.execution_arn}`: **{facts.status or 'unknown'}**", ""]
    culprit = first_failed_step(facts.steps)
    if culprit is not None:
        reason = culprit.failure_reason or facts.failure_reason or "no reason given"
        if culprit.name in QUALITY_GATE_STEPS:
            lines += [f"**Quality gate failed** (step `{culprit.name}`): {reason}", ""]
        else:
            lines += [f"**Step `{culprit.name}` {culprit.status}**: {reason}", ""]
    elif facts.status in ("Failed", "Stopped"):
        lines += [f"**Execution {facts.status}**: {facts.failure_reason or 'no step reported a failure'}", ""]
    if facts.steps:
        lines += ["| step | status |", "|---|---|"]
        ordered = sorted(facts.steps, key=lambda s: str(s.get("StartTime", "")))
        lines += [f"| {s.get('StepName', '?')} | {s.get('StepStatus', '?')} |" for s in ordered]
        lines.append("")
    if facts.package_arn:
        lines += [f"Registered `{facts.package_arn}` ({facts.approval_status})", ""]
        if facts.metrics:
            lines += ["| metric | value |", "|---|---|"]
            lines += [f"| {k} | {v:.4f} |" for k, v in sorted(facts.metrics.items())]
    else:
        lines.append("No model package was registered by this execution.")
    return "\n".join([*lines, *_problems(facts)]) + "\n"


def _problems(facts: BuildFacts) -> list[str]:
    return ["", *(f"> could not read: {p}" for p in facts.problems)] if facts.problems else []


def collect(sm: SageMakerClient, s3: S3Client, group: str, execution_arn: str | None) -> BuildFacts:
    if not execution_arn:
        return BuildFacts(execution_arn=None)
    problems: list[str] = []
    try:
        execution = sm.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
    except botocore.exceptions.ClientError as exc:
        return BuildFacts(execution_arn=execution_arn, problems=[f"the execution ({error_message(exc)})"])
    steps: list[Mapping[str, Any]] = []
    try:
        steps = list(
            sm.list_pipeline_execution_steps(PipelineExecutionArn=execution_arn).get("PipelineExecutionSteps", [])
        )
    except botocore.exceptions.ClientError as exc:
        problems.append(f"the execution's steps ({error_message(exc)})")
    package: Mapping[str, Any] | None = None
    for step in steps:
        arn = step.get("Metadata", {}).get("RegisterModel", {}).get("Arn")
        if arn:
            package = sm.describe_model_package(ModelPackageName=arn)
    if package is None and not steps:
        # Without the steps, find the package by its lineage (GeneratedBy is the execution ARN).
        summaries = sm.list_model_packages(
            ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending", MaxResults=20
        )["ModelPackageSummaryList"]
        for summary in summaries:
            described = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
            if described.get("MetadataProperties", {}).get("GeneratedBy") == execution_arn:
                package = described
                break
    metrics: dict[str, float] = {}
    if package is not None:
        uri = package.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {}).get("S3Uri")
        if uri:
            bucket, key = uri.removeprefix("s3://").split("/", 1)
            try:
                metrics = flatten_metrics(json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read()))
            except (botocore.exceptions.ClientError, ValueError) as exc:
                problems.append(f"the metrics at {uri} ({exc})")
    return BuildFacts(
        execution_arn=execution_arn,
        status=execution.get("PipelineExecutionStatus"),
        failure_reason=execution.get("FailureReason"),
        steps=steps,
        package_arn=package.get("ModelPackageArn") if package else None,
        approval_status=package.get("ModelApprovalStatus") if package else None,
        metrics=metrics,
        problems=problems,
    )
