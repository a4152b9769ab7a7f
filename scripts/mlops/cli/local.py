"""`mlops local up|down|status|env`: the twin's lifecycle from the command line."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import click

from mlops.core.config import find_config_file
from mlops.core.errors import ConfigError


def _directory(ctx: click.Context) -> Path:
    config_path = ctx.find_root().params.get("config_path")
    try:
        config_file = find_config_file(config_path)
    except ConfigError:  # no mlops.yaml: the twin directory falls back to the current one
        config_file = None
    from mlops.local.twin import twin_dir

    return twin_dir(config_file)


@click.group()
def local() -> None:
    """The local twin: the whole cloud flow on this machine (moto + step executor + endpoints)."""


@local.command()
@click.option(
    "--time-scale",
    type=click.FloatRange(min=0.0001, max=1.0),
    default=0.01,
    show_default=True,
    help="Multiplier for deployment waits (canary, bake): 0.01 turns 300 s into 3 s.",
)
@click.option(
    "--lenient-requests",
    is_flag=True,
    help="Do not validate AWS requests against botocore's model (for the strict-vs-lenient bench only; "
    "same as MLOPS_TWIN_STRICT_REQUESTS=0).",
)
@click.option(
    "--iam",
    "iam_mode",
    type=click.Choice(["enforce", "report", "off"]),
    default=None,
    help="IAM checks: enforce (refuse what AWS would refuse), report (allow, record what would be denied), "
    "off (benchmarks only). Default: MLOPS_TWIN_IAM, else enforce.",
)
@click.pass_context
def up(ctx: click.Context, time_scale: float, lenient_requests: bool, iam_mode: str | None) -> None:
    """Start the twin (idempotent) and bootstrap the three accounts of the `local` profile."""
    from mlops.core.config import load_config
    from mlops.local.iam.remote import engine_status
    from mlops.local.twin import requests_mode
    from mlops.local.twin import up as start

    root = ctx.find_root().params
    config = load_config(root.get("config_path"), profile="local", use_case=root.get("use_case"))
    state, started = start(
        config,
        _directory(ctx),
        time_scale=time_scale,
        progress=lambda m: click.echo(m, err=True),
        strict_requests=False if lenient_requests else None,
        iam_mode=iam_mode,
    )
    verb = "started" if started else "already running"
    mode = requests_mode(state.url)
    click.echo(f"twin {verb} at {state.url} (pid {state.pid}); accounts {json.dumps(state.accounts)}; requests {mode}")
    iam = engine_status(state.url)
    click.echo(f"IAM: {iam.get('mode')} (engine {iam.get('engine')}, data {iam.get('data')})")
    if state.mlflow_url:
        click.echo(f"MLflow tracking server and UI: {state.mlflow_url} (starting in the background)")
    if started:
        click.echo(
            "the twin starts empty; its AWS state lives in the server's memory and is lost when the server stops "
            "(`mlops local down`, a crash, a reboot)",
            err=True,
        )
    if lenient_requests and mode != "lenient":
        click.echo("the running twin validates requests; `mlops local down` first to start it lenient", err=True)
    click.echo('point a shell at it with: eval "$(mlops local env)"', err=True)


@local.command()
@click.pass_context
def down(ctx: click.Context) -> None:
    """Stop the twin and remove its state directory."""
    from mlops.local.twin import down as stop

    directory = _directory(ctx)
    click.echo("twin stopped" if stop(directory) else "twin was not running", err=False)
    click.echo(f"removed {directory}", err=True)


@local.command()
@click.pass_context
def status(ctx: click.Context) -> None:
    """Whether the twin runs, where, and for which accounts (exit 1 when it does not run)."""
    from mlops.local.twin import running, stopped

    directory = _directory(ctx)
    state = running(directory)
    if state is None:
        gone = stopped(directory)
        if gone is not None:
            click.echo(
                f"twin: stopped (state lost): the server on {gone.url} (pid {gone.pid}) is gone; "
                "`mlops local up` starts an empty one"
            )
        else:
            click.echo("twin: not running (start it with `mlops local up`)")
        ctx.exit(1)
    click.echo(
        json.dumps(
            {
                "status": "running",
                "url": state.url,
                "pid": state.pid,
                "accounts": state.accounts,
                "mlflow_url": state.mlflow_url,
            }
        )
    )


@local.command("iam-report")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), help="Also write the report as JSON here.")
@click.pass_context
def iam_report(ctx: click.Context, out: Path | None) -> None:
    """Every (principal, action, resource) the running twin saw, why each was allowed or denied, and
    per role the granted actions no call used."""
    from mlops.local.errors import TwinError
    from mlops.local.iam.remote import fetch_report
    from mlops.local.iam.report import render_text
    from mlops.local.twin import running

    state = running(_directory(ctx))
    if state is None:
        raise TwinError("the twin is not running", hint="start it with `mlops local up` (or run `mlops demo`)")
    report = fetch_report(state.url)
    click.echo(render_text(report), nl=False)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, indent=2) + "\n")
        click.echo(f"report written to {out}", err=True)


@local.command()
@click.option(
    "--account",
    type=click.Choice(["automation", "staging", "prod"]),
    default="automation",
    show_default=True,
    help="Whose credentials to export (staging/prod through sts:AssumeRole into mlops-deploy).",
)
@click.pass_context
def env(ctx: click.Context, account: str) -> None:
    """Print `export` lines that point the AWS CLI, boto3 or a notebook at the twin."""
    from mlops.local.errors import TwinError
    from mlops.local.twin import environment, running, stopped

    directory = _directory(ctx)
    state = running(directory)
    if state is None:
        if stopped(directory) is not None:
            raise TwinError(
                "the twin stopped (state lost): its server is gone", hint="`mlops local up` starts an empty twin"
            )
        raise TwinError("the twin is not running", hint="start it with `mlops local up`")
    for name, value in environment(state, account).items():
        click.echo(f"export {name}={shlex.quote(value)}")
    click.echo("unset AWS_PROFILE AWS_SESSION_TOKEN" if account == "automation" else "unset AWS_PROFILE")
