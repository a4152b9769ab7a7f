"""The model registry of the automation account: find a package of our group, set its approval status.

Approving is what fires the registry event that starts the deploy pipeline; the reviewer's reason is
kept on the package (`ApprovalDescription`).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import botocore.exceptions

from mlops.core.aws import error_message
from mlops.core.config import Config
from mlops.core.errors import MlopsError

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient


class RegistryError(MlopsError):
    """A model package cannot be found, or is not one of ours."""


def resolve_package(sm: SageMakerClient, config: Config, arn: str | None, version: int | None) -> dict[str, Any]:
    group = config.build.model_package_group
    if (arn is None) == (version is None):
        raise RegistryError("expected exactly one of --model-package-arn and --version", hint="pass one of them")
    # Versioned packages are addressed by ARN (DescribeModelPackage takes no "group/version" name).
    name = arn or f"arn:aws:sagemaker:{config.region}:{config.accounts.automation.id}:model-package/{group}/{version}"
    try:
        package: dict[str, Any] = dict(sm.describe_model_package(ModelPackageName=name))
    except botocore.exceptions.ClientError as exc:
        raise RegistryError(
            f"model package {name} not found: {error_message(exc)}",
            hint=f"list the group's packages with `mlops registry list` (group {group})",
        ) from exc
    if package.get("ModelPackageGroupName") != group:
        raise RegistryError(
            f"model package {name} belongs to group {package.get('ModelPackageGroupName')!r}, "
            f"not to the configured group {group!r}",
            hint="approve packages of this project's group only (build.model_package_group in mlops.yaml)",
        )
    return package


def set_status(sm: SageMakerClient, package: dict[str, Any], status: str, reason: str) -> bool:
    """Returns False when the package already had that status (nothing is written)."""
    if package.get("ModelApprovalStatus") == status:
        return False
    sm.update_model_package(
        ModelPackageArn=package["ModelPackageArn"],
        ModelApprovalStatus=status,  # type: ignore[arg-type]
        ApprovalDescription=reason[:1024],
    )
    return True


def parse_reference(text: str) -> tuple[str | None, int | None]:
    """A package as people type it: its version in the configured group (`3`) or its ARN."""
    text = text.strip()
    if text.isdigit() and int(text) >= 1:
        return None, int(text)
    if text.startswith("arn:") and ":model-package/" in text:
        return text, None
    raise RegistryError(
        f"expected a model package version (a number such as 3) or a model package ARN, found {text!r}",
        hint="list the group's packages with `mlops registry list`",
    )


def choose_reference(reference: str | None, arn: str | None, version: int | None) -> tuple[str | None, int | None]:
    """The positional VERSION|ARN, or the --model-package-arn/--version options: exactly one of them."""
    given = [name for name, value in (("VERSION|ARN", reference), ("--model-package-arn", arn), ("--version", version))
             if value is not None]  # fmt: skip
    if len(given) != 1:
        raise RegistryError(
            "expected exactly one package: a VERSION|ARN argument, --model-package-arn or --version"
            + (f"; found {', '.join(given)}" if given else ""),
            hint='e.g. `mlops registry show 3` or `mlops registry approve 3 --reason "reviewed"`',
        )
    return parse_reference(reference) if reference is not None else (arn, version)


def _sorted_summaries(sm: SageMakerClient, group: str, limit: int = 100) -> list[dict[str, Any]]:
    try:
        summaries = sm.list_model_packages(
            ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending", MaxResults=limit
        )["ModelPackageSummaryList"]
    except botocore.exceptions.ClientError as exc:
        raise RegistryError(f"could not list group {group}: {error_message(exc)}") from exc
    return [dict(s) for s in summaries]


def live_in_prod(sm: SageMakerClient, config: Config, exclude: str) -> dict[str, Any] | None:
    """The package the prod endpoint serves, as the registry records it: the lifecycle stage `Prod` set by
    the latest successful prod deployment (model_deploy.lifecycle). None if no package got there yet."""
    from model_deploy.lifecycle import STAGE_NAMES, deployed_since

    newest: tuple[str, dict[str, Any]] | None = None
    for summary in _sorted_summaries(sm, config.build.model_package_group):
        if summary["ModelPackageArn"] == exclude:
            continue
        package: dict[str, Any] = dict(sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"]))
        stage: dict[str, str] = package.get("ModelLifeCycle") or {}
        if stage.get("Stage") != STAGE_NAMES["prod"]:
            continue
        since = deployed_since(stage) or ""
        if newest is None or since > newest[0]:
            newest = (since, package)
    return newest[1] if newest else None


def read_json(s3: Any, uri: str | None) -> dict[str, Any] | None:
    if not uri:
        return None
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    try:
        loaded: dict[str, Any] = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except botocore.exceptions.ClientError as exc:
        raise RegistryError(
            f"could not read {uri}: {error_message(exc)}",
            hint="reading reports needs s3:GetObject and kms:Decrypt on the artifact bucket (ModelApproverPolicy)",
        ) from exc
    return loaded


def approval_view(sm: SageMakerClient, s3: Any, config: Config, package: dict[str, Any]) -> dict[str, Any]:
    """What a reviewer needs to decide, as data: metrics against prod, the card, top features, links."""
    from model_build.card import quality_metrics, read_card

    arn = package["ModelPackageArn"]
    metrics_block = package.get("ModelMetrics", {})
    evaluation_uri = metrics_block.get("ModelQuality", {}).get("Statistics", {}).get("S3Uri")
    explainability_uri = metrics_block.get("Explainability", {}).get("Report", {}).get("S3Uri")
    card = read_card(package.get("ModelCard"))
    metrics = card.metrics if card and card.metrics else quality_metrics(read_json(s3, evaluation_uri) or {})
    prod = live_in_prod(sm, config, exclude=arn)
    prod_metrics: dict[str, float] = {}
    if prod is not None:
        prod_card = read_card(prod.get("ModelCard"))
        prod_uri = prod.get("ModelMetrics", {}).get("ModelQuality", {}).get("Statistics", {}).get("S3Uri")
        prod_metrics = (
            prod_card.metrics if prod_card and prod_card.metrics else quality_metrics(read_json(s3, prod_uri) or {})
        )
    base = evaluation_uri.rsplit("/", 1)[0] if evaluation_uri else None
    metadata = package.get("CustomerMetadataProperties", {})
    details = card.details if card else {}
    return {
        "arn": arn,
        "group": package.get("ModelPackageGroupName"),
        "version": package.get("ModelPackageVersion"),
        "status": package.get("ModelApprovalStatus"),
        "approval_description": package.get("ApprovalDescription"),
        "created": str(package.get("CreationTime")),
        "git_commit": metadata.get("git_commit"),
        "build_id": metadata.get("build_id"),
        "lifecycle": package.get("ModelLifeCycle"),
        "metrics": metrics,
        "prod": {"arn": prod["ModelPackageArn"], "version": prod.get("ModelPackageVersion"), "metrics": prod_metrics}
        if prod
        else None,
        "card": None
        if card is None
        else {"status": card.status, "intended_use": card.intended_use, "top_features": card.top_features},
        "links": {
            "evaluation_report": evaluation_uri,
            "explanations": explainability_uri,
            "plots": [f"{base}/{name}" for name in ("roc.png", "confusion_matrix.png", "feature_importance.png")]
            if base
            else [],
            "mlflow_run": details.get("mlflow_run_url")
            or (f"run {metadata['mlflow_run_id']}" if "mlflow_run_id" in metadata else None),
        },
    }


def render_view(view: dict[str, Any]) -> str:
    lines = [
        f"model package {view['group']} version {view['version']}: {view['status']}",
        f"  {view['arn']}",
        f"  registered {view['created']}, commit {view['git_commit']}, build {view['build_id']}",
    ]
    stage = view.get("lifecycle")
    lines.append(f"  lifecycle: {stage['Stage']} ({stage['StageStatus']})" if stage else "  lifecycle: none recorded")
    if view.get("approval_description"):
        lines.append(f"  decision note: {view['approval_description']}")
    prod = view.get("prod")
    lines += ["", "metrics (test split)" + (f"     this     prod v{prod['version']}   change" if prod else "")]
    for name, value in view["metrics"].items():
        if prod and name in prod["metrics"]:
            other = prod["metrics"][name]
            lines.append(f"  {name:<18}{value:>9.4f}{other:>10.4f}{value - other:>+10.4f}")
        else:
            lines.append(f"  {name:<18}{value:>9.4f}")
    if not prod:
        lines.append("  (no package of this group is live in prod yet: nothing to compare with)")
    card = view.get("card")
    lines.append("")
    if card is None:
        lines.append(
            "model card: missing (the package was registered before model cards; it still deploys). "
            "Review the metrics and the evaluation report instead."
        )
    else:
        lines += [f"model card ({card['status']})", f"  intended use: {card['intended_use']}"]
        if card["top_features"]:
            lines.append("  top features (mean |SHAP value|, TreeSHAP on the test split):")
            lines += [
                f"    {rank}. {name}: {value:.4f}" for rank, (name, value) in enumerate(card["top_features"][:5], 1)
            ]
    links = view["links"]
    lines += ["", "links"]
    lines.append(f"  evaluation report  {links['evaluation_report'] or 'missing'}")
    lines.append(f"  explanations       {links['explanations'] or 'missing'}")
    for plot in links["plots"]:
        lines.append(f"  plot               {plot}")
    lines.append(f"  MLflow run         {links['mlflow_run'] or 'missing (not tracked)'}")
    if view["status"] == "PendingManualApproval":
        lines += [
            "",
            "decide (the reason is kept on the package):",
            f'  mlops registry approve {view["version"]} --reason "<why>"',
            f'  mlops registry reject {view["version"]} --reason "<why>"',
        ]
    return "\n".join(lines) + "\n"
