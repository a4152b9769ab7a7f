"""The `mlops` command line. Exit code 0 only on success; errors on stderr, one actionable line first.

Every failure ends in `main`'s handler: our own errors (`MlopsError`), the AWS failures users meet (no or
expired credentials, an unreachable endpoint or a stopped twin, throttling, access denied; see
`mlops.core.aws.translate_aws_failure`) and anything unexpected are printed as `error: ...` plus a
`fix: ...` line; a traceback only with `--debug` (or MLOPS_DEBUG=1). Inside Azure Pipelines (`TF_BUILD`
set) an error is also raised as `##vso[task.logissue type=error]` so it shows on the run's summary page.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from mlops import __version__
from mlops.core.config import Config, load_config
from mlops.core.errors import MlopsError

F = TypeVar("F", bound=Callable[..., Any])


class Context:
    def __init__(self, config_path: str | None, profile: str | None, use_case: str | None = None) -> None:
        self.config_path = config_path
        self.profile = profile
        self.use_case = use_case
        self._config: Config | None = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path, profile=self.profile, use_case=self.use_case)
        return self._config


pass_context = click.make_pass_decorator(Context)
_RUN: dict[str, Any] = {}  # --debug and the profile of the command being run, for main's error handler


def progress(message: str) -> None:
    click.echo(message, err=True)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config", "config_path", metavar="PATH", help="mlops.yaml to use (default: MLOPS_CONFIG, else the nearest one)."
)
@click.option("--profile", metavar="NAME", help="Config profile, e.g. 'local' for the twin (default: MLOPS_PROFILE).")
@click.option(
    "--use-case",
    "use_case",
    metavar="NAME",
    help="The use case (a folder of model_build/use_cases) to act on (default: MLOPS_USE_CASE, else "
    "use_cases.default in mlops.yaml).",
)
@click.option("--debug", is_flag=True, help="Print the traceback of an error too (default: MLOPS_DEBUG).")
@click.version_option(__version__, prog_name="mlops")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, profile: str | None, use_case: str | None, debug: bool) -> None:
    """Azure DevOps x Amazon SageMaker MLOps: build, register, approve and deploy models."""
    # Read by main's handler, which runs after this context is gone (not os.environ: it would outlive the call).
    _RUN.update(debug=debug, profile=profile or os.environ.get("MLOPS_PROFILE") or "default")
    ctx.obj = Context(config_path, profile, use_case)
    if (profile or os.environ.get("MLOPS_PROFILE")) == "local" and ctx.invoked_subcommand != "local":
        _use_running_twin(config_path)


def _use_running_twin(config_path: str | None) -> None:
    """With the `local` profile, AWS calls go to the running twin unless AWS_ENDPOINT_URL says otherwise,
    and MLflow calls to the twin's tracking server unless MLFLOW_TRACKING_URI says otherwise."""
    from mlops.core.config import find_config_file
    from mlops.local.paths import mlflow_url, twin_dir

    try:
        directory = twin_dir(find_config_file(config_path))
    except MlopsError:
        return  # the command itself reports the missing config
    # Read from the folder without importing the twin's server (moto: seconds per command in a pipeline step).
    tracking = mlflow_url(directory)
    if tracking:
        os.environ.setdefault("MLFLOW_TRACKING_URI", tracking)
    if os.environ.get("AWS_ENDPOINT_URL"):
        return
    from mlops.local.twin_state import environment, running, stopped

    # A twin that died still gets the calls: they fail as "the twin stopped (state lost)" (see
    # mlops.core.aws.translate_aws_failure), while commands that need no AWS call still work.
    state = running(directory) or stopped(directory)
    if state is not None:
        os.environ.update(environment(state, "automation"))


# ---------------------------------------------------------------------------------------------- build


@cli.group()
def build() -> None:
    """Render, upsert, run and clean up the SageMaker model-build pipeline."""


def _branch_option(func: F) -> F:
    return click.option(
        "--branch",
        metavar="NAME",
        help="Branch being built (default: from Azure Pipelines variables or git). "
        "main/master own the pipeline; other branches get '<name>-<branch>'.",
    )(func)


def _branch(branch: str | None) -> str:
    if branch is None:
        from mlops.core.gitinfo import current_revision

        branch = current_revision().branch
    return _checked_branch(branch)


def _checked_branch(branch: str) -> str:
    """A branch must name a pipeline and an S3 prefix: '' or '*' or '../' cannot (and are no git branch)."""
    from mlops.core.errors import BuildError
    from model_build.layout import branch_slug, is_main_branch, normalize_branch

    if is_main_branch(branch):
        return normalize_branch(branch)
    try:
        branch_slug(branch)
    except ValueError as exc:
        raise BuildError(
            f"expected a git branch name with letters or digits, found {branch!r}",
            hint="pass the branch's name as git shows it, e.g. --branch feature/better-features",
        ) from exc
    return normalize_branch(branch)


@build.command("definition")
@_branch_option
@click.option(
    "--out", "out", type=click.Path(dir_okay=False, path_type=Path), help="Write the JSON here instead of stdout."
)
@pass_context
def build_definition(obj: Context, branch: str | None, out: Path | None) -> None:
    """Render the pipeline definition JSON (no AWS call; byte-identical for the same inputs)."""
    from model_build.build import render

    rendered = render(obj.config, _branch(branch))
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(rendered.definition + "\n", encoding="utf-8")
        progress(f"wrote {out} ({rendered.pipeline_name}, sha256 {rendered.definition_sha256[:12]})")
    else:
        click.echo(rendered.definition)


@build.command("upsert")
@_branch_option
@click.option("--dry-run", is_flag=True, help="Show what would change (with a diff) and write nothing.")
@pass_context
def build_upsert(obj: Context, branch: str | None, dry_run: bool) -> None:
    """Create or update the pipeline; an unchanged definition writes nothing."""
    from mlops.core.aws import session
    from model_build.build import render, upsert

    branch = _branch(branch)
    rendered = render(obj.config, branch)
    aws = session(obj.config)
    plan = upsert(aws.client("sagemaker"), aws.client("s3"), obj.config, rendered, branch, dry_run=dry_run)
    click.echo(("(dry run) " if dry_run else "") + plan.describe())
    if plan.diff and dry_run:
        click.echo(plan.diff, nl=False)


@build.command("run")
@_branch_option
@click.option("--wait/--no-wait", default=False, help="Poll until the execution ends (bounded by --timeout).")
@click.option(
    "--timeout",
    "timeout",
    type=click.IntRange(min=1),
    help="Seconds to wait at most (default: build.wait_timeout_seconds).",
)
@click.option("--build-id", metavar="ID", help="Build id (default: UTC time + short commit).")
@click.option(
    "--track/--no-track",
    default=True,
    show_default=True,
    help="With --wait: put the model card on the package and log the execution as an MLflow run.",
)
@pass_context
def build_run(
    obj: Context, branch: str | None, wait: bool, timeout: int | None, build_id: str | None, track: bool
) -> None:
    """Start an execution with the git commit and build id as parameters."""
    from mlops.core.aws import session
    from mlops.core.gitinfo import current_revision, make_build_id, validate_build_id
    from model_build.build import render, start
    from model_build.build import wait as wait_for
    from model_build.layout import is_main_branch

    revision = current_revision()
    branch = _checked_branch(branch or revision.branch)
    build_id = validate_build_id(build_id) if build_id else make_build_id(revision.commit)
    tracker = None
    if wait and track and not is_main_branch(branch):
        # A branch pipeline has no Register step (pull requests register nothing into the group), so there is
        # no package to put a card, a lifecycle or a run id on.
        progress(f"branch {branch}: its pipeline registers no package; nothing to track (the execution is the result)")
    elif wait and track:
        from model_build.tracking import prefetch_mlflow, tracker_for

        tracker = tracker_for(obj.config)  # no server configured: refused before anything starts
        prefetch_mlflow()  # the import overlaps the execution instead of following it
    rendered = render(obj.config, branch)
    aws = session(obj.config)
    sm = aws.client("sagemaker")
    execution = start(
        sm, aws.client("s3"), obj.config, rendered, branch=branch, commit=revision.commit, build_id=build_id
    )
    click.echo(
        json.dumps({"pipeline_execution_arn": execution.arn, "build_id": build_id, "manifest": execution.manifest_uri})
    )
    if wait:
        # Polling the twin costs milliseconds and its executions take seconds: poll it every 0.1-0.2 s,
        # so the wait ends within 0.2 s of the execution (SageMaker: back off to 30 s).
        local = obj.config.is_local
        wait_for(
            sm,
            execution.arn,
            timeout_seconds=timeout or obj.config.build.wait_timeout_seconds,
            poll_seconds=0.2 if local else 30.0,
            first_poll_seconds=0.1 if local else 1.0,
            progress=progress,
        )
    if tracker is not None:
        from model_build.tracking import track_execution

        track_execution(sm, aws.client("s3"), obj.config, execution.arn, tracker=tracker, progress=progress)


@build.command("track")
@click.option("--execution", "execution_arn", required=True, metavar="ARN", help="A succeeded pipeline execution.")
@pass_context
def build_track(obj: Context, execution_arn: str) -> None:
    """Record a finished execution: model card and lifecycle on its package, and its MLflow run (idempotent)."""
    from mlops.core.aws import session
    from model_build.tracking import track_execution, tracker_for

    tracker = tracker_for(obj.config)
    aws = session(obj.config)
    result = track_execution(
        aws.client("sagemaker"), aws.client("s3"), obj.config, execution_arn, tracker=tracker, progress=progress
    )
    click.echo(
        json.dumps(
            {"model_package_arn": result.package_arn, "mlflow_run_id": result.run.run_id, "run_url": result.run.run_url}
        )
    )


@build.command("cleanup")
@click.option("--branch", metavar="NAME", help="The merged branch whose pipeline and data to delete.")
@click.option(
    "--stale",
    is_flag=True,
    help="Clean up every branch pipeline whose branch the remote (origin) no longer has: merged or deleted.",
)
@click.option("--dry-run", is_flag=True, help="Show what would be deleted.")
@pass_context
def build_cleanup(obj: Context, branch: str | None, stale: bool, dry_run: bool) -> None:
    """Delete a merged branch's pipeline and its data (the plan is printed first)."""
    from mlops.core.aws import session
    from mlops.core.errors import BuildError
    from mlops.core.gitinfo import remote_branches
    from model_build.build import branch_pipelines, cleanup, stale_branches

    if (branch is None) == (not stale):
        raise BuildError(
            "expected exactly one of --branch NAME and --stale",
            hint="--branch feature/x for one merged branch; --stale for every branch origin no longer has",
        )
    aws = session(obj.config)
    sm = aws.client("sagemaker")
    if stale:
        live = remote_branches()
        branches = stale_branches(branch_pipelines(sm, obj.config), live)
        click.echo(f"{len(branches)} stale branch pipeline(s): {', '.join(branches) or 'none'}")
    else:
        branches = [_checked_branch(str(branch))]
    verb = "would delete" if dry_run else "deleted"
    for name in branches:
        # The plan (pipeline, prefix, object versions) is printed before anything is deleted.
        result = cleanup(sm, aws.client("s3"), obj.config, name, dry_run=dry_run, progress=click.echo)
        pipeline = "the pipeline" if result.pipeline_deleted else "no pipeline (none existed)"
        click.echo(f"{verb} {pipeline} and {result.objects_deleted} object version(s) for branch {name}")


# ----------------------------------------------------------------------------------------------- demo


@cli.command()
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), help="Write the JSON report here.")
@click.option(
    "--auto-approve/--prompt",
    default=None,
    help="Answer the prod approval automatically (default when stdin is not a terminal) or ask.",
)
@click.option(
    "--trigger",
    type=click.Choice(["runs_api", "webhook"]),
    default="runs_api",
    show_default=True,
    help="How the bridge starts the deploy: the Runs API, or the incoming webhook (model-deploy-webhook.yml).",
)
@click.option(
    "--drift",
    is_flag=True,
    help="Day 2 on the twin `mlops demo` left running: drifted traffic, monitoring, the drift alarm, the retrain.",
)
@click.option(
    "--retrain/--no-retrain",
    default=True,
    help="With --drift: run the build the alarm started (default), or stop once Azure DevOps has the run.",
)
@pass_context
def demo(
    obj: Context, report: Path | None, auto_approve: bool | None, trigger: str, drift: bool, retrain: bool
) -> None:
    """The whole flow on the local twin: build, approve, bridge, deploy to staging, test, prod.

    With --drift (after `mlops demo`): the loop closes. Drifted requests reach prod, the hourly
    monitoring execution reports the violations, the drift alarm fires, and the bridge starts the build.
    """
    from mlops.core.config import find_config_file
    from mlops.local.flow import Flow
    from mlops.local.twin import twin_dir

    config_file = find_config_file(obj.config_path)
    config = load_config(config_file, profile="local", use_case=obj.use_case)
    if drift:
        from mlops.local.drift import DriftDemo

        drift_demo = DriftDemo(
            config, repo_root=config_file.parent, twin_directory=twin_dir(config_file), progress=progress
        )
        drift_report = drift_demo.run(retrain=retrain)
        if report:
            report.parent.mkdir(parents=True, exist_ok=True)
            report.write_text(json.dumps(drift_report.to_json(), indent=2) + "\n")
        return
    interactive = sys.stdin.isatty() if auto_approve is None else not auto_approve

    def approve_prod(environment: str) -> bool:
        if not interactive:
            progress(f"    approval for environment {environment}: approved automatically (no terminal)")
            return True
        return click.confirm(f"    Approve the deployment to environment {environment!r}?", default=True, err=True)

    flow = Flow(
        config,
        repo_root=config_file.parent,
        twin_directory=twin_dir(config_file),
        approve_prod=approve_prod,
        progress=progress,
        trigger=trigger,
    )
    try:
        result = flow.run()
    finally:
        _print_flow(flow.report)
        _print_iam(flow)
        if report:
            report.parent.mkdir(parents=True, exist_ok=True)
            report.write_text(json.dumps(flow.report.to_json(), indent=2) + "\n")
            click.echo(f"report written to {report}")
    click.echo(
        f'the twin keeps running: eval "$(mlops local env --account prod)" to call {len(result.endpoints)} endpoint(s)'
    )
    click.echo("stop it with: mlops local down")


@cli.command("use-cases")
@click.option("--names", "names_only", is_flag=True, help="Only the names, one per line (for shell loops).")
@click.option("--json", "as_json", is_flag=True, help="Each use case and its derived names as JSON.")
@pass_context
def use_cases(obj: Context, names_only: bool, as_json: bool) -> None:
    """The use cases of this repository (model_build/use_cases) and the names derived from each."""
    from mlops.core.use_cases import UseCaseNames, load_use_case

    config = obj.config
    folder = Path(config.use_cases.path or "")
    found = [load_use_case(folder, name) for name in config.use_cases.available]
    if names_only:
        for use_case in found:
            click.echo(use_case.name)
        return
    rows = [
        {
            "name": u.name,
            "default": u.name == config.use_cases.default,
            "task": u.task,
            "framework": u.framework,
            "data": u.data.source,
            "quality_gate": f"{u.quality.metric} {'<=' if u.quality.metric in ('rmse', 'mae', 'mse') else '>='} "
            f"{u.quality.threshold}",
            **{key.replace(" ", "_"): value for key, value in UseCaseNames(u.name).all().items()},
        }
        for u in found
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        marker = " (default)" if row["default"] else ""
        click.echo(
            f"{row['name']}{marker}: {row['task']} {row['framework']}, data {row['data']}, gate {row['quality_gate']}; "
            f"pipeline {row['pipeline']}, group {row['model_package_group']}, endpoints {row['staging_endpoint']} "
            f"(staging) and {row['prod_endpoint']} (prod)"
        )


def _print_iam(flow: Any) -> None:
    """The demo's last line: how many AWS calls, whether IAM allowed them all, how much was granted unused."""
    from mlops.local.flow import DemoError
    from mlops.local.iam.remote import fetch_report
    from mlops.local.iam.report import summary_line
    from mlops.local.iam.sidecar import IamEngineError

    try:
        url = flow.state.url
    except DemoError:  # the twin never came up: nothing was called
        return
    try:
        click.echo(summary_line(fetch_report(url)))
    except IamEngineError as exc:  # printed, not raised: a failed flow's own error must stay the one reported
        click.echo(f"IAM report unavailable: {exc}", err=True)


def _print_flow(report: Any) -> None:
    click.echo("")
    click.echo(f"{'stage':<48}{'status':<11}{'seconds':>8}")
    for stage in report.stages:
        click.echo(f"{stage.name:<48}{stage.status:<11}{stage.seconds:>8.1f}")
    click.echo(f"{'total':<59}{report.total_seconds:>8.1f}")
    if report.model_package_arn:
        click.echo(f"model package: {report.model_package_arn}")
    if report.metrics:
        click.echo("test-split metrics: " + "  ".join(f"{k}={v:.4f}" for k, v in report.metrics.items()))
    for endpoint in report.endpoints:
        click.echo(
            f"endpoint: {endpoint['stage']:<8} account {endpoint['account']}  {endpoint['name']} ({endpoint['status']})"
        )
    if report.mlflow_url:
        click.echo(
            f"MLflow UI: {report.mlflow_url}"
            + (f"  (this build's run: {report.mlflow_run_url})" if report.mlflow_run_url else "")
        )


# ------------------------------------------------------------------------- command groups of other modules
from mlops.cli.ado import ado as _ado_group  # noqa: E402
from mlops.cli.bridge import bridge as _bridge_group  # noqa: E402
from mlops.cli.deploy import deploy as _deploy_group  # noqa: E402
from mlops.cli.deploy import endpoint_test_command as _test_command  # noqa: E402
from mlops.cli.infra import infra as _infra_group  # noqa: E402
from mlops.cli.lineage import lineage as _lineage_command  # noqa: E402
from mlops.cli.local import local as _local_group  # noqa: E402
from mlops.cli.new import new as _new_group  # noqa: E402
from mlops.cli.pipelines import pipelines as _pipelines_group  # noqa: E402
from mlops.cli.registry import registry as _registry_group  # noqa: E402

cli.add_command(_ado_group)
cli.add_command(_bridge_group)
cli.add_command(_deploy_group)
cli.add_command(_infra_group)
cli.add_command(_lineage_command)
cli.add_command(_local_group)
cli.add_command(_new_group)
cli.add_command(_pipelines_group)
cli.add_command(_registry_group)
cli.add_command(_test_command)


# ------------------------------------------------------------------------------------------ entrypoint


def _debug() -> bool:
    return bool(_RUN.get("debug")) or os.environ.get("MLOPS_DEBUG", "").strip().lower() in ("1", "true", "yes", "on")


def _report_error(error: BaseException, cause: BaseException | None = None) -> None:
    if _debug():
        traceback.print_exception(cause or error, file=sys.stderr)
    text = str(error)
    click.echo(f"error: {text}", err=True)
    if os.environ.get("TF_BUILD"):
        first = text.splitlines()[0].replace("\r", " ")
        click.echo(f"##vso[task.logissue type=error]{first}", err=True)


def _unexpected(exc: Exception) -> MlopsError:
    """Anything not mapped: still one line and a next step; the traceback is behind --debug."""
    from mlops.core.aws import translate_aws_failure

    known = translate_aws_failure(exc, twin=_RUN.get("profile") == "local")
    if known is not None:
        return known
    first = (str(exc).strip().splitlines() or [""])[0]
    return MlopsError(
        f"unexpected {type(exc).__name__}" + (f": {first}" if first else ""),
        hint="run the command again with --debug to see the traceback, and report it with that output",
    )


def main(argv: list[str] | None = None) -> int:
    _RUN.clear()
    try:
        # Outside standalone mode, click returns ctx.exit()'s code instead of raising it.
        result = cli.main(args=argv, prog_name="mlops", standalone_mode=False)
    except MlopsError as error:
        _report_error(error)
        return 1
    except KeyboardInterrupt:
        click.echo("aborted", err=True)
        return 130
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        return 130
    except click.ClickException as error:
        error.show()
        return error.exit_code
    except click.exceptions.Exit as exit_:
        return exit_.exit_code
    except Exception as exc:  # the last line of defence: one actionable line, never a bare traceback
        _report_error(_unexpected(exc), exc)
        return 1
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
