"""`mlops lineage ENDPOINT|PACKAGE`: from a served endpoint (or a package) back to its commit, data and runs."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any

import click

from mlops.lineage import Link, endpoint_links, package_links, render_markdown, render_text
from mlops.registry import parse_reference, resolve_package


@click.command("lineage")
@click.argument("target", metavar="ENDPOINT|PACKAGE")
@click.option("--format", "output", type=click.Choice(["text", "markdown", "json"]), default="text", show_default=True)
@click.pass_context
def lineage(ctx: click.Context, target: str, output: str) -> None:
    """Walk from an endpoint (its name in mlops.yaml) or a package (VERSION|ARN) to the package, the execution,
    the commit and build, the data snapshot, the MLflow run and the Azure DevOps runs."""
    from mlops.core.aws import assume_role_session, session

    config = ctx.obj.config
    base = session(config)
    stages = {config.deploy.stage(s).endpoint_name: s for s in ("staging", "prod")}
    links: list[Link] = []
    if target in stages:
        from model_deploy.deploy import stage_role_arn

        stage = stages[target]
        if config.is_local:  # the twin's administrator of that account (`mlops local env --account STAGE`)
            stage_session = _twin_session(ctx, config, config.deploy.stage(stage).account)
        else:
            stage_session = assume_role_session(
                base, stage_role_arn(config, stage), f"mlops-lineage-{stage}", config.region
            )
        links, served = endpoint_links(config, stage, stage_session.client("sagemaker"), stage_session.client("ssm"))
        reference: tuple[str | None, int | None] = (served, None)
    else:
        reference = parse_reference(target)
    arn, version = reference
    sm = base.client("sagemaker")
    package = resolve_package(sm, config, arn, version)
    links += package_links(sm, base.client("s3"), config, package)
    if output == "json":
        click.echo(json.dumps([asdict(link) for link in links]))
    else:
        click.echo(render_markdown(links) if output == "markdown" else render_text(links), nl=False)


def _twin_session(ctx: click.Context, config: Any, account: str) -> Any:
    import boto3

    from mlops.core.config import find_config_file
    from mlops.local.twin import environment, running, twin_dir

    state = running(twin_dir(find_config_file(ctx.find_root().params.get("config_path"))))
    if state is None:
        raise click.ClickException("no twin is running: start it with `mlops --profile local local up`")
    env = environment(state, account)
    return boto3.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=state.region,
    )
