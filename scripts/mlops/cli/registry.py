"""`mlops registry list|show|approve|reject`: the model registry of the automation account.

The same commands act on SageMaker or on the twin (whichever `AWS_ENDPOINT_URL` and the credentials
point at). Approve and reject keep the reviewer's reason on the package (`ApprovalDescription`);
approving is what fires the registry event that starts the deploy pipeline. `show` is the approval view:
metrics against the package live in prod, the model card, top features, links to the plots and the MLflow run.
A package is named by its version in the configured group or by its ARN, as an argument (`approve 3`) or
with the older --version / --model-package-arn options.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import botocore.exceptions
import click

from mlops.core.aws import error_message
from mlops.registry import (
    RegistryError,
    approval_view,
    choose_reference,
    render_view,
    resolve_package,
    set_status,
)

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient

    from mlops.core.config import Config


def _session(ctx: click.Context) -> tuple[Config, SageMakerClient]:
    from mlops.core.aws import session

    config: Config = ctx.obj.config
    return config, session(config).client("sagemaker")


@click.group()
def registry() -> None:
    """List, approve and reject model packages of the configured group."""


@registry.command("list")
@click.option(
    "--status", type=click.Choice(["PendingManualApproval", "Approved", "Rejected"]), help="Only this status."
)
@click.option("--max", "limit", type=click.IntRange(1, 100), default=20, show_default=True)
@click.pass_context
def list_packages(ctx: click.Context, status: str | None, limit: int) -> None:
    """Packages of the group, newest first, with their status and provenance."""
    config, sm = _session(ctx)
    arguments: dict[str, Any] = {
        "ModelPackageGroupName": config.build.model_package_group,
        "SortBy": "CreationTime",
        "SortOrder": "Descending",
        "MaxResults": limit,
    }
    if status:
        arguments["ModelApprovalStatus"] = status
    try:
        summaries = sm.list_model_packages(**arguments)["ModelPackageSummaryList"]
    except botocore.exceptions.ClientError as exc:
        raise RegistryError(f"could not list group {config.build.model_package_group}: {error_message(exc)}") from exc
    for summary in summaries:
        described = sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"])
        metadata = described.get("CustomerMetadataProperties", {})
        click.echo(
            json.dumps(
                {
                    "version": summary.get("ModelPackageVersion"),
                    "status": summary.get("ModelApprovalStatus"),
                    "arn": summary["ModelPackageArn"],
                    "created": str(summary.get("CreationTime")),
                    "git_commit": metadata.get("git_commit"),
                    "build_id": metadata.get("build_id"),
                    "approval_description": described.get("ApprovalDescription"),
                }
            )
        )
    if not summaries:
        click.echo(f"no packages in group {config.build.model_package_group}", err=True)


def _decide(
    ctx: click.Context, reference: str | None, arn: str | None, version: int | None, reason: str, status: str
) -> None:
    config, sm = _session(ctx)
    arn, version = choose_reference(reference, arn, version)
    package = resolve_package(sm, config, arn, version)
    changed = set_status(sm, package, status, reason)
    verb = status.lower() if changed else f"already {status.lower()}; nothing written"
    click.echo(f"{package['ModelPackageArn']}: {verb}")


_reference_argument = click.argument("reference", metavar="VERSION|ARN", required=False)
_arn_option = click.option("--model-package-arn", "arn", metavar="ARN", help="The package (instead of VERSION|ARN).")
_version_option = click.option("--version", type=click.IntRange(min=1), help="Or its version in the configured group.")
_reason_option = click.option("--reason", required=True, help="Why; kept on the package as ApprovalDescription.")


@registry.command()
@_reference_argument
@click.option("--json", "as_json", is_flag=True, help="The same view as one JSON document.")
@click.pass_context
def show(ctx: click.Context, reference: str | None, as_json: bool) -> None:
    """What a reviewer needs: metrics against prod, the model card, top features, plots and the MLflow run."""
    from mlops.core.aws import session

    config, sm = _session(ctx)
    arn, version = choose_reference(reference, None, None)
    package = resolve_package(sm, config, arn, version)
    view = approval_view(sm, session(config).client("s3"), config, package)
    click.echo(json.dumps(view, default=str) if as_json else render_view(view), nl=as_json)


@registry.command()
@_reference_argument
@_arn_option
@_version_option
@_reason_option
@click.pass_context
def approve(ctx: click.Context, reference: str | None, arn: str | None, version: int | None, reason: str) -> None:
    """Approve a package (VERSION or ARN): this starts its deployment through the registry event."""
    _decide(ctx, reference, arn, version, reason, "Approved")


@registry.command()
@_reference_argument
@_arn_option
@_version_option
@_reason_option
@click.pass_context
def reject(ctx: click.Context, reference: str | None, arn: str | None, version: int | None, reason: str) -> None:
    """Reject a package (VERSION or ARN)."""
    _decide(ctx, reference, arn, version, reason, "Rejected")
