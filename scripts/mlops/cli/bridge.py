"""`mlops bridge replay|package`: re-drive the bridge's dead-letter queue, and build the Lambda's zip."""

from __future__ import annotations

import os
from pathlib import Path

import click

from mlops.bridge.package import BRIDGE_REQUIREMENTS, DEFAULT_ZIP, LAMBDA_PLATFORM, build_lambda_zip
from mlops.bridge.replay import plan_event, replay_dlq
from mlops.core.errors import BridgeError


@click.group("bridge")
def bridge() -> None:
    """The EventBridge -> Azure DevOps bridge Lambda: replay its DLQ, build its zip."""


@bridge.command("replay")
@click.option(
    "--queue-url",
    envvar="BRIDGE_DLQ_URL",
    required=True,
    metavar="URL",
    help="The bridge's dead-letter queue (default: BRIDGE_DLQ_URL).",
)
@click.option("--dry-run", is_flag=True, help="Show what each message would do; start and delete nothing.")
@click.option("--max-messages", type=click.IntRange(min=1), default=1000, show_default=True)
@click.option(
    "--wait-seconds",
    type=click.IntRange(0, 20),
    default=2,
    show_default=True,
    help="SQS long-poll wait; an empty receive ends the replay.",
)
@click.option(
    "--visibility-timeout",
    type=click.IntRange(60, 43200),
    default=300,
    show_default=True,
    help="Seconds a received message stays hidden (a failed one reappears after it).",
)
def replay(queue_url: str, dry_run: bool, max_messages: int, wait_seconds: int, visibility_timeout: int) -> None:
    """Re-drive the DLQ through the Lambda's own handler code (idempotent; delete only after success).

    Needs the Lambda's environment: ADO_ORG_URL, ADO_PROJECT, ADO_PIPELINE_ID, ADO_AUTH_SECRET_ARN,
    IDEMPOTENCY_TABLE, MODEL_PACKAGE_GROUPS; ADO_BUILD_PIPELINE_ID for retrain alarms and
    REMINDER_TOPIC_ARN for reminder ticks (see docs/bridge.md).
    """
    import boto3

    from mlops_bridge import reminders
    from mlops_bridge.errors import BridgeError as LambdaBridgeError
    from mlops_bridge.handler import build_bridge
    from mlops_bridge.settings import groups_from_env

    retrain_alarms = frozenset(a.strip() for a in os.environ.get("RETRAIN_ALARM_NAMES", "").split(",") if a.strip())
    try:
        if dry_run:
            handle, plan = None, plan_event(groups_from_env(os.environ), retrain_alarms)
        else:
            handle, plan = build_bridge(os.environ).handle, None
    except LambdaBridgeError as exc:
        raise BridgeError(
            f"the bridge cannot be configured from this environment: {exc.message}",
            hint=(exc.hint or "") + "; replay needs the bridge Lambda's environment variables (docs/bridge.md)",
        ) from exc
    summary = replay_dlq(
        boto3.client("sqs"), queue_url, handle, remind=reminders.handler, dry_run=dry_run, plan=plan,
        max_messages=max_messages,
        wait_seconds=wait_seconds, visibility_timeout=visibility_timeout,
        progress=lambda line: click.echo(line, err=True),
    )  # fmt: skip
    click.echo(summary.describe())
    if summary.failures and dry_run:
        raise BridgeError(
            f"{len(summary.failures)} of {summary.seen} message(s) would fail (dry run: nothing changed, all "
            f"visible again on {queue_url})",
            hint="the 'would fail' lines above say why; fix the cause (or delete messages that can never "
            "succeed), then run `mlops bridge replay`",
        )
    if summary.failures:
        raise BridgeError(
            f"{len(summary.failures)} of {summary.seen} message(s) failed and stay on {queue_url}",
            hint=f"fix the cause shown above, then run `mlops bridge replay` again after {visibility_timeout}s",
        )


@bridge.command("package")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_ZIP, show_default=True)
@click.option(
    "--compile/--no-compile",
    "compile_bytecode",
    default=True,
    show_default=True,
    help="Ship .pyc files (faster cold starts on Lambda's read-only file system).",
)
def package(out: Path, compile_bytecode: bool) -> None:
    """Build the Lambda zip: mlops_bridge + infra/bridge/requirements.txt for python3.11 x86_64."""
    click.echo(f"installing {BRIDGE_REQUIREMENTS} for {LAMBDA_PLATFORM} ...", err=True)
    result = build_lambda_zip(out, compile_bytecode=compile_bytecode)
    click.echo(
        f"wrote {result.path} ({result.size_bytes / 1e6:.1f} MB, {result.entries} files); "
        "Lambda handler: mlops_bridge.handler.handler"
    )
