"""`mlops pipelines validate|run`: check our Azure Pipelines YAML offline and run it locally."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from mlops.core.errors import PipelineRunError, PipelineValidationError
from mlops.pipelines.results import ApprovalRequest


@click.group("pipelines")
def pipelines() -> None:
    """Validate and locally run the Azure Pipelines YAML in azure-pipelines/."""


_REPOSITORY = click.option(
    "--repository",
    "repositories",
    multiple=True,
    metavar="ALIAS=PATH",
    help="A local checkout of a repository resource, for templates `path@ALIAS`.",
)


@pipelines.command("validate")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@_REPOSITORY
@click.pass_context
def validate(ctx: click.Context, files: tuple[Path, ...], repositories: tuple[str, ...]) -> None:
    """Schema (with AWS Toolkit tasks), no inline secrets, prod only from deployment jobs, `mlops` calls parse,
    and every service connection and environment is one of mlops.yaml's, used where it is permitted.

    FILES default to every .yml under azure-pipelines/. An environment that is not one of mlops.yaml's is an
    error naming the expected ones: Azure DevOps would auto-create it without checks.
    """
    from mlops.core.config import Config
    from mlops.core.identities import identities
    from mlops.pipelines.validate import default_files, validate_files

    config = getattr(ctx.obj, "config", None)
    if not isinstance(config, Config):
        raise click.UsageError("no configuration loaded; run through the `mlops` command")

    root = Path.cwd()
    chosen = list(files) or default_files(root)
    if not chosen:
        raise PipelineValidationError(
            f"no pipeline files found under {root / 'azure-pipelines'}", hint="run from the repository root"
        )
    checkouts = {alias: Path(path) for alias, path in _pairs(repositories, "--repository").items()}
    found = validate_files(chosen, root=root, identities=identities(config), repositories=checkouts)
    for warning in (p for p in found if p.severity == "warning"):
        click.echo(f"warning: {warning.file}:{warning.line}: {warning.message}", err=True)
    problems = [p for p in found if p.severity != "warning"]
    if problems:
        listing = "\n".join(f"  {problem}" for problem in problems)
        raise PipelineValidationError(
            f"{len(problems)} problem(s) in the Azure Pipelines YAML:\n{listing}",
            hint="fix each file:line above, then run `mlops pipelines validate` again",
        )
    shown = [
        str(f.resolve().relative_to(root.resolve())) if f.resolve().is_relative_to(root.resolve()) else str(f)
        for f in chosen
    ]
    click.echo(f"{len(chosen)} file(s) valid: " + ", ".join(shown))


def _pairs(values: tuple[str, ...], what: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for value in values:
        name, sep, text = value.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {value!r}", param_hint=what)
        result[name] = text
    return result


def _prompt_approver(request: ApprovalRequest) -> bool:
    return click.confirm(
        f"Approve stage {request.stage} of {request.pipeline} for environment {request.environment}?",
        default=False,
        err=True,
    )


@pipelines.command("run")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("-p", "--parameter", "parameters", multiple=True, metavar="NAME=VALUE", help="A runtime parameter.")
@click.option(
    "--variable",
    "variables",
    multiple=True,
    metavar="NAME=VALUE",
    help="A queue-time or predefined variable, e.g. Build.SourceBranch=refs/heads/main.",
)
@click.option("--auto-approve", is_flag=True, help="Approve every environment check without asking.")
@click.option(
    "--service-connection",
    "connections",
    multiple=True,
    metavar="NAME=CONNECTION",
    help="Let NAME stand for one of the twin's service connections (azure_devops.connections in mlops.yaml).",
)
@click.option(
    "--work-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Run folder (default: .mlops/pipelines/<file>-<run id>).",
)
@click.option(
    "--artifacts-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Where published artifacts go (default: <work dir>/artifacts).",
)
@click.option("--report", type=click.Path(dir_okay=False, path_type=Path), help="Write the run result as JSON.")
@click.option("--quiet", is_flag=True, help="Only stage/job/step lines, no script output.")
@_REPOSITORY
@click.pass_context
def run(
    ctx: click.Context,
    file: Path,
    parameters: tuple[str, ...],
    variables: tuple[str, ...],
    auto_approve: bool,
    connections: tuple[str, ...],
    work_dir: Path | None,
    artifacts_dir: Path | None,
    report: Path | None,
    quiet: bool,
    repositories: tuple[str, ...],
) -> None:
    """Run FILE locally: stages, jobs, templates, conditions, approvals; AWS through the twin."""
    from mlops.core.config import find_config_file
    from mlops.core.errors import ConfigError
    from mlops.local.pipeline_credentials import TwinServiceConnections
    from mlops.local.twin import twin_dir
    from mlops.pipelines.results import RunEvent
    from mlops.pipelines.runner import run_pipeline

    try:
        config_file = find_config_file(ctx.find_root().params.get("config_path"))
    except ConfigError:
        config_file = None
    service_connections = TwinServiceConnections(twin_dir(config_file), _pairs(connections, "--service-connection"))

    def progress(event: RunEvent) -> None:
        if event.kind == "output":
            if not quiet:
                click.echo(f"    {event.text}", err=True)
        elif event.kind == "issue":
            click.echo(f"    {event.text}", err=True)
        else:
            indent = "  " if event.kind.startswith("step") else " " if event.kind.startswith("job") else ""
            click.echo(f"{indent}{event.text}", err=True)

    approver = None if auto_approve or not sys.stdin.isatty() else _prompt_approver
    result = run_pipeline(
        file,
        _pairs(parameters, "-p"),
        auto_approve=auto_approve,
        approve=approver,
        repositories={alias: Path(path) for alias, path in _pairs(repositories, "--repository").items()},
        work_dir=work_dir,
        artifacts_dir=artifacts_dir,
        service_connections=service_connections,
        variables=_pairs(variables, "--variable"),
        progress=progress,
    )
    click.echo("")
    click.echo(f"{'stage':<20}{'status':<22}{'seconds':>8}")
    for stage in result.stages:
        click.echo(f"{stage.name:<20}{stage.status:<22}{stage.seconds:>8.1f}")
    for summary in result.summaries:
        click.echo(f"summary ({summary.stage}/{summary.job}): {summary.path}")
    for name, path in result.artifacts.items():
        click.echo(f"artifact {name}: {path}")
    if report:
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(result.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
        click.echo(f"report written to {report}")
    if not result.succeeded:
        failed = [s for s in result.stages if s.status in ("failed", "rejected")]
        first = failed[0] if failed else None
        detail = ""
        if first is not None:
            steps = [st for job in first.jobs for st in job.steps if st.status == "failed"]
            detail = f": stage {first.name} {first.status}" + (
                f" at step {steps[0].name or steps[0].display_name} ({steps[0].where}): {steps[0].reason}"
                if steps
                else f" ({first.reason})"
                if first.reason
                else ""
            )
        raise PipelineRunError(
            f"run {result.run_id} of {result.pipeline} {result.status}{detail}",
            hint=f"see the log above; the run folder is {result.work_dir}",
        )
