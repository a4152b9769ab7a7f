"""`mlops lineage ENDPOINT|PACKAGE`: where a served model came from, link by link.

    endpoint -> deployment record -> model package -> pipeline execution -> commit and build
    -> data snapshot -> MLflow run -> the Azure DevOps runs that built and deployed it

Every link is read from where it is recorded, never inferred: the stage's deployment records (SSM in the
stage's account) name the package an endpoint config serves; the package names its execution
(`MetadataProperties.GeneratedBy`), its commit, build and manifest (customer metadata, written by the
build), its MLflow run (written by `build run --wait`) and its deploy run (written by the bridge); the
manifest names the data snapshot, the code and the Azure DevOps build run. A link that is not recorded
(a package registered before this existed) is shown as `not recorded`, not guessed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import botocore.exceptions

from mlops.core.aws import error_message
from mlops.core.config import Config
from mlops.core.errors import MlopsError

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient

NOT_RECORDED = "not recorded"


class LineageError(MlopsError):
    """A link of the chain cannot be read."""


@dataclass(frozen=True)
class Link:
    name: str
    value: str
    detail: str = ""


def _read_json(s3: Any, uri: str) -> dict[str, Any]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    try:
        loaded: dict[str, Any] = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except botocore.exceptions.ClientError as exc:
        raise LineageError(
            f"could not read the build manifest {uri}: {error_message(exc)}",
            hint="reading it needs s3:GetObject (and kms:Decrypt) on the artifact bucket",
        ) from exc
    return loaded


def endpoint_links(config: Config, stage: str, sagemaker: Any, ssm: Any) -> tuple[list[Link], str]:
    """The endpoint's live config and the deployment record that put it there; returns the package ARN."""
    from model_deploy.deploy import deployment_parameter
    from model_deploy.record_store import read_history

    name = config.deploy.stage(stage).endpoint_name
    try:
        endpoint = sagemaker.describe_endpoint(EndpointName=name)
    except botocore.exceptions.ClientError as exc:
        raise LineageError(
            f"could not read endpoint {name} in the {stage} account: {error_message(exc)}",
            hint=f"is it deployed? `mlops deploy --stage {stage} --model-package-arn ARN`",
        ) from exc
    live = endpoint["EndpointConfigName"]
    history = read_history(ssm, deployment_parameter(config, stage))
    records = [r for r in history if r.endpoint_config == live]
    if not records:
        raise LineageError(
            f"endpoint {name} serves config {live}, which no deployment record of {stage} names",
            hint="it was changed outside `mlops deploy`; redeploy it to restore its lineage",
        )
    record = records[-1]
    links = [
        Link("endpoint", f"{name} ({stage}, {endpoint['EndpointStatus']})", f"config {live}"),
        Link("deployment", f"{record.kind} at {record.deployed_at}", f"model {record.model_name}"),
    ]
    return links, record.package_arn


def package_links(sm: SageMakerClient, s3: Any, config: Config, package: dict[str, Any]) -> list[Link]:
    from model_build.tracking import EXPERIMENT_ID_KEY, RUN_ID_KEY, run_url

    metadata: dict[str, str] = dict(package.get("CustomerMetadataProperties", {}))
    stage = package.get("ModelLifeCycle") or {}
    links = [
        Link(
            "model package",
            str(package["ModelPackageArn"]),
            f"{package.get('ModelApprovalStatus')}; lifecycle {stage.get('Stage', NOT_RECORDED)}"
            + (f" ({stage['StageStatus']})" if stage.get("StageStatus") else ""),
        )
    ]
    execution_arn = package.get("MetadataProperties", {}).get("GeneratedBy")
    if execution_arn:
        try:
            execution = sm.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
            detail = f"{execution['PipelineExecutionStatus']}, started {execution.get('CreationTime')}"
        except botocore.exceptions.ClientError as exc:
            detail = f"could not be described: {error_message(exc)}"
        links.append(Link("pipeline execution", execution_arn, detail))
    else:
        links.append(Link("pipeline execution", NOT_RECORDED))
    manifest_uri = metadata.get("manifest_uri")
    manifest = _read_json(s3, manifest_uri) if manifest_uri else {}
    links.append(
        Link(
            "commit and build",
            f"commit {metadata.get('git_commit', NOT_RECORDED)}, build {metadata.get('build_id', NOT_RECORDED)}",
            f"branch {manifest['branch']}" if "branch" in manifest else "",
        )
    )
    data = manifest.get("input", {})
    links.append(
        Link(
            "data snapshot", str(data.get("uri", NOT_RECORDED)), f"sha256 {data['sha256']}" if "sha256" in data else ""
        )
    )
    if RUN_ID_KEY in metadata:
        uri = config.tracking.mlflow_uri or _mlflow_uri_from_environment()
        where = run_url(uri, metadata.get(EXPERIMENT_ID_KEY, "?"), metadata[RUN_ID_KEY]) if uri else ""
        links.append(Link("MLflow run", metadata[RUN_ID_KEY], where))
    else:
        links.append(Link("MLflow run", NOT_RECORDED))
    build_run = manifest.get("azure_devops", {})
    links.append(
        Link("Azure DevOps build run", str(build_run.get("run_id", NOT_RECORDED)), str(build_run.get("run_url", "")))
    )
    links.append(
        Link(
            "Azure DevOps deploy run",
            metadata.get("ado.deployRunId", NOT_RECORDED),
            metadata.get("ado.deployRunUrl", ""),
        )
    )
    return links


def _mlflow_uri_from_environment() -> str:
    import os

    return os.environ.get("MLFLOW_TRACKING_URI", "")


def render_text(links: list[Link]) -> str:
    width = max(len(link.name) for link in links)
    lines = []
    for index, link in enumerate(links):
        arrow = "  " if index == 0 else "<-"
        lines.append(f"{arrow} {link.name:<{width}}  {link.value}" + (f"  ({link.detail})" if link.detail else ""))
    return "\n".join(lines) + "\n"


def render_markdown(links: list[Link]) -> str:
    rows = ["## Lineage", "", "| link | value | detail |", "|---|---|---|"]
    rows += [f"| {link.name} | `{link.value}` | {link.detail} |" for link in links]
    return "\n".join(rows) + "\n"
