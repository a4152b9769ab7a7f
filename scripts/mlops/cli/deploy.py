"""The `mlops deploy`, `mlops deploy rollback` and `mlops test` commands (registered by mlops.cli).

`deploy` is a group that runs a deployment when called without a subcommand, so both
`mlops deploy --stage prod --model-package-arn ARN` and `mlops deploy rollback --stage prod` parse.
Everything heavy is imported inside the commands: the CLI must start fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from mlops.core.config import Config
    from model_deploy.clients import AutomationClients, StageClients
    from model_deploy.deploy import DeployOutcome

STAGES = click.Choice(["staging", "prod"])


def _config(ctx: click.Context) -> Config:
    from mlops.core.config import Config

    config = getattr(ctx.obj, "config", None)
    if not isinstance(config, Config):
        raise click.UsageError("no configuration loaded; run through the `mlops` command")
    return config


def _progress(message: str) -> None:
    click.echo(message, err=True)


def _clients(config: Config, stage: str) -> tuple[AutomationClients, StageClients]:
    """The stage's clients on the step's own credentials (the stage's deploy connection, whose role lives in the
    stage account); the automation registry, evaluation report and staging pass through the automation account's
    reader role, which trusts only the stage deploy roles; staging records its pass through the writer role,
    which trusts only the staging deploy role. Chained sessions refresh themselves (mlops.core.aws)."""
    from mlops.core.aws import assume_role_session, caller_account, session
    from mlops.core.identities import STAGING_PASS_ROLE, identities, role_arn
    from model_deploy.clients import AutomationClients, StageClients
    from model_deploy.deploy import stage_role_arn, stage_target

    base = session(config)
    stage_session = base
    if caller_account(base) != stage_target(config, stage).account_id:
        # Not the stage's deploy connection (an operator's identity, say): the stage's role must trust it.
        stage_session = assume_role_session(base, stage_role_arn(config, stage), f"mlops-deploy-{stage}", config.region)
    reader_arn = role_arn(config, identities(config).connection("registry-read"))
    reader = assume_role_session(stage_session, reader_arn, f"mlops-{stage}-registry-read", config.region)
    records = reader
    if stage == "staging":
        writer_arn = config.accounts.automation.role_arn(STAGING_PASS_ROLE)
        records = assume_role_session(stage_session, writer_arn, "mlops-staging-pass", config.region)
    automation = AutomationClients(
        sagemaker=reader.client("sagemaker"), s3=reader.client("s3"), ssm=records.client("ssm")
    )
    return automation, StageClients.from_session(stage_session)


def _registry_clients(config: Config) -> AutomationClients:
    """For a check of the registry only (the deploy pipeline's Verify, on the registry-read connection)."""
    from mlops.core.aws import assume_role_session, caller_account, session
    from mlops.core.identities import identities, role_arn
    from model_deploy.clients import AutomationClients

    base = session(config)
    if caller_account(base) != config.accounts.automation.id:
        base = assume_role_session(
            base, role_arn(config, identities(config).connection("registry-read")), "mlops-verify", config.region
        )
    return AutomationClients.from_session(base)


def _report(outcome: DeployOutcome, *, dry_run: bool, plan_out: Path | None) -> None:
    plan = outcome.plan
    click.echo(("(dry run) " if dry_run else "") + plan.describe())
    if plan_out is not None:
        _progress(f"plan written to {plan_out}")
    if outcome.applied is not None:
        version = outcome.applied.record_version
        click.echo(
            f"applied {len(outcome.applied.applied)} action(s) in {outcome.applied.seconds:.0f}s"
            + (f"; deployment record version {version}" if version else "")
        )


@click.group("deploy", invoke_without_command=True)
@click.option("--stage", type=STAGES, help="Where to deploy: staging or prod.")
@click.option("--model-package-arn", "package_arn", metavar="ARN", help="The approved model package version.")
@click.option("--dry-run", is_flag=True, help="Verify and plan only: print the plan, change nothing.")
@click.option(
    "--verify-only",
    is_flag=True,
    help="Only re-verify the package in the registry (approved, our group and account; prod: a staging pass); "
    "needs registry read access only, nothing in the stage account.",
)
@click.option(
    "--plan-out", type=click.Path(dir_okay=False, path_type=Path), help="Write the plan as JSON (an artifact)."
)
@click.option(
    "--lineage-out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the package's lineage as Markdown (the run summary): execution, commit, data, MLflow and runs.",
)
@click.pass_context
def deploy(
    ctx: click.Context,
    stage: str | None,
    package_arn: str | None,
    dry_run: bool,
    verify_only: bool,
    plan_out: Path | None,
    lineage_out: Path | None,
) -> None:
    """Verify an approved model package, plan its deployment to a stage, and apply the plan."""
    if ctx.invoked_subcommand is not None:
        if stage or package_arn or dry_run or verify_only or plan_out or lineage_out:
            raise click.UsageError(
                f"options before `{ctx.invoked_subcommand}` belong to `mlops deploy`; "
                f"put them after it: mlops deploy {ctx.invoked_subcommand} --stage ..."
            )
        return
    if not stage or not package_arn:
        raise click.UsageError("expected --stage and --model-package-arn (or a subcommand such as `rollback`)")
    from model_deploy.deploy import Runtime
    from model_deploy.deploy import deploy as run_deploy

    config = _config(ctx)
    if verify_only:
        from model_deploy.deploy import verify_package

        registry = _registry_clients(config)
        package = verify_package(config, registry, stage, package_arn)
        document = {"package_arn": package.arn, "group": package.group, "version": package.version, "stage": stage}
        click.echo(json.dumps({**document, "verified": True, "git_commit": package.git_commit}, sort_keys=True))
        if lineage_out is not None:
            _write_lineage(registry, config, package_arn, lineage_out)
        return
    automation, stage_clients = _clients(config, stage)
    outcome = run_deploy(
        config,
        stage,
        package_arn,
        automation=automation,
        stage_clients=stage_clients,
        dry_run=dry_run,
        plan_out=plan_out,
        runtime=Runtime(progress=_progress),
    )
    _report(outcome, dry_run=dry_run, plan_out=plan_out)
    if lineage_out is not None:
        _write_lineage(automation, config, package_arn, lineage_out)


def _write_lineage(automation: AutomationClients, config: Config, package_arn: str, path: Path) -> None:
    from mlops.lineage import package_links, render_markdown

    package = dict(automation.sagemaker.describe_model_package(ModelPackageName=package_arn))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_markdown(package_links(automation.sagemaker, automation.s3, config, package)))
    _progress(f"lineage written to {path}")


@deploy.command("rollback")
@click.option("--stage", type=STAGES, required=True, help="The stage whose endpoint goes back one deployment.")
@click.option("--dry-run", is_flag=True, help="Plan only: print the rollback, change nothing.")
@click.option("--plan-out", type=click.Path(dir_okay=False, path_type=Path), help="Write the plan as JSON.")
@click.pass_context
def deploy_rollback(ctx: click.Context, stage: str, dry_run: bool, plan_out: Path | None) -> None:
    """Go back to the previous deployment record of a stage (blue/green, with the rollback alarms).

    The target is verified again like a deploy (approved, our group and account; prod: a staging pass)."""
    from model_deploy.deploy import Runtime, rollback

    config = _config(ctx)
    automation, stage_clients = _clients(config, stage)
    outcome = rollback(
        config,
        stage,
        automation=automation,
        stage_clients=stage_clients,
        dry_run=dry_run,
        plan_out=plan_out,
        runtime=Runtime(progress=_progress),
    )
    _report(outcome, dry_run=dry_run, plan_out=plan_out)


@click.command("test")
@click.option("--stage", type=STAGES, required=True, help="The stage whose endpoint to test.")
@click.option(
    "--junit",
    type=click.Path(dir_okay=False, path_type=Path),
    default=Path("test-results/endpoint-tests.xml"),
    show_default=True,
    help="JUnit XML for Azure DevOps (PublishTestResults).",
)
@click.option("--model-package-arn", "package_arn", metavar="ARN", help="Fail unless the endpoint serves this package.")
@click.option("--test-data", metavar="URI", help="The build's test split (default: beside the package's evaluation).")
@click.pass_context
def endpoint_test_command(
    ctx: click.Context, stage: str, junit: Path, package_arn: str | None, test_data: str | None
) -> None:
    """Run the endpoint test suite (contract, quality, latency); in staging, record the pass prod requires."""
    from mlops.core import gc_policy
    from model_deploy.deploy import Runtime
    from model_deploy.endpoint_tests import run_endpoint_tests

    config = _config(ctx)
    automation, stage_clients = _clients(config, stage)
    # The suite runs in pytest, which forces full collections: not over the SDKs this process imported.
    gc_policy.freeze_survivors(collect=False)
    outcome = run_endpoint_tests(
        config,
        stage,
        automation=automation,
        stage_clients=stage_clients,
        junit_path=junit,
        expected_package_arn=package_arn,
        test_data=test_data,
        runtime=Runtime(progress=_progress),
    )
    click.echo(json.dumps({"package_arn": outcome.package_arn, **outcome.result.measurements}, sort_keys=True))
    if outcome.staging_pass_written:
        click.echo(f"staging pass recorded at {outcome.staging_pass_written}")
