"""`mlops bridge`: re-drive the bridge's dead-letter queue, and build the bridge Lambda's zip.

`replay` calls the Lambda's own code (`mlops_bridge.handler.build_bridge(...).handle`) with the Lambda's
environment variables (ADO_*, IDEMPOTENCY_TABLE, MODEL_PACKAGE_GROUPS; see docs/bridge.md). Idempotency
makes it safe: an approval that already started a run starts nothing new. A message is deleted only
after it was handled successfully; failed ones stay on the queue and the command exits non-zero.

`package` installs infra/bridge/requirements.txt for Lambda's python3.11 x86_64 into a staging dir,
adds the `mlops_bridge` package and writes a reproducible zip (sorted entries, fixed timestamps).
"""

from __future__ import annotations

import compileall
import json
import os
import py_compile
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from mlops.errors import BridgeError

REPO_ROOT = Path(__file__).resolve().parent.parent
BRIDGE_SOURCE = REPO_ROOT / "infra" / "bridge"
DEFAULT_ZIP = REPO_ROOT / "dist" / "mlops-bridge-lambda.zip"
LAMBDA_PLATFORM = "x86_64-manylinux2014"  # Lambda python3.11 runs on Amazon Linux 2 (glibc 2.26)
LAMBDA_PYTHON = "3.11"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)

Installer = Callable[[Path, Path], None]  # (requirements file, target dir) -> None


# ------------------------------------------------------------------------------------------------ replay


@dataclass
class ReplaySummary:
    queue_url: str
    dry_run: bool
    outcomes: dict[str, int] = field(default_factory=dict)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (message id, error)
    plans: list[str] = field(default_factory=list)  # dry run: what each message would do

    @property
    def seen(self) -> int:
        return sum(self.outcomes.values()) + len(self.failures)

    def describe(self) -> str:
        if self.dry_run:
            head = f"dry run: {self.seen} message(s) on {self.queue_url}; nothing started, nothing deleted"
            return "\n".join([head, *(f"  {plan}" for plan in self.plans)])
        counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(self.outcomes.items())) or "nothing handled"
        lines = [f"replayed {self.seen} message(s) from {self.queue_url}: {counts}, {len(self.failures)} failed"]
        lines += [f"  failed, left on the queue: {mid}: {error.splitlines()[0]}" for mid, error in self.failures]
        return "\n".join(lines)


class ReplayContext:
    """What Powertools needs of a Lambda context: the remaining time bounds the in-progress record."""

    function_name = "mlops-bridge-replay"
    aws_request_id = "replay"

    def __init__(self, budget_seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._deadline = clock() + budget_seconds

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - self._clock()) * 1000))


def replay_dlq(
    sqs: Any,
    queue_url: str,
    handle: Callable[[Any, Any], dict[str, Any]] | None,
    *,
    dry_run: bool = False,
    plan: Callable[[Any], str] | None = None,
    max_messages: int = 1000,
    wait_seconds: int = 2,
    visibility_timeout: int = 300,
    progress: Callable[[str], None] = lambda _: None,
) -> ReplaySummary:
    """Drain the queue once: each received message is handled (or planned) and deleted only on success.

    A failed message stays invisible for `visibility_timeout`, so one pass sees it once and ends.
    """
    summary = ReplaySummary(queue_url=queue_url, dry_run=dry_run)
    planned: list[str] = []
    try:
        _drain(sqs, queue_url, handle, summary, planned, plan, max_messages, wait_seconds, visibility_timeout, progress)
    finally:
        # A dry run leaves the queue as it found it: planned messages become visible again at once
        # (not inside the loop, which would then receive them again).
        for receipt in planned:
            sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt, VisibilityTimeout=0)
    return summary


def _drain(
    sqs: Any,
    queue_url: str,
    handle: Callable[[Any, Any], dict[str, Any]] | None,
    summary: ReplaySummary,
    planned: list[str],
    plan: Callable[[Any], str] | None,
    max_messages: int,
    wait_seconds: int,
    visibility_timeout: int,
    progress: Callable[[str], None],
) -> None:
    dry_run = summary.dry_run
    while summary.seen < max_messages:
        batch = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, max_messages - summary.seen),
            WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=visibility_timeout,
            MessageAttributeNames=["All"],
        ).get("Messages", [])
        if not batch:
            break
        for message in batch:
            message_id = message["MessageId"]
            try:
                event = json.loads(message["Body"])
            except ValueError as exc:
                summary.failures.append((message_id, f"the body is not JSON ({exc}); expected an EventBridge event"))
                continue
            if dry_run and plan is not None:
                summary.plans.append(f"{message_id}: {plan(event)}")
                summary.outcomes["planned"] = summary.outcomes.get("planned", 0) + 1
                planned.append(message["ReceiptHandle"])
                continue
            if handle is None:
                raise BridgeError("replay without --dry-run needs the bridge handler; none was given")
            try:
                result = handle(event, ReplayContext(budget_seconds=max(60, visibility_timeout - 30)))
            except Exception as exc:
                summary.failures.append((message_id, f"{type(exc).__name__}: {exc}"))
                progress(f"failed {message_id}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
                continue
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            outcome = str(result.get("outcome", "handled"))
            summary.outcomes[outcome] = summary.outcomes.get(outcome, 0) + 1
            progress(
                f"{outcome} {message_id}: run {result.get('runId')}"
                if result.get("runId")
                else f"{outcome} {message_id}"
            )


def plan_event(groups: frozenset[str]) -> Callable[[Any], str]:
    from mlops_bridge.errors import MalformedEventError
    from mlops_bridge.events import decide, parse_event

    def plan(event: Any) -> str:
        try:
            change = parse_event(event)
        except MalformedEventError as exc:
            return f"would fail (malformed): {str(exc).splitlines()[0]}"
        decision = decide(change, groups)
        if not decision.start_run:
            return f"would ignore {change.model_package_arn}: {decision.reason}"
        return (
            f"would re-check {change.model_package_arn} in the registry and start a deploy run "
            "unless this approval already started one"
        )

    return plan


# ----------------------------------------------------------------------------------------------- package


@dataclass(frozen=True)
class PackageResult:
    path: Path
    size_bytes: int
    entries: int


def uv_installer(requirements: Path, target: Path) -> None:
    """Install wheels for Lambda's platform with uv (needs the package index: run it where PyPI is reachable)."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        raise BridgeError(
            "uv was not found next to the Python interpreter or on PATH: expected it to build the Lambda zip",
            hint="run `make install` (it installs uv into .venv) or `pip install uv`",
        )
    command = [
        uv, "pip", "install", "--quiet", "--target", str(target),
        "--python-platform", LAMBDA_PLATFORM, "--python-version", LAMBDA_PYTHON,
        "--only-binary", ":all:", "-r", str(requirements),
    ]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        tail = "\n".join((completed.stderr or completed.stdout).strip().splitlines()[-15:])
        raise BridgeError(
            f"installing {requirements} for {LAMBDA_PLATFORM} / Python {LAMBDA_PYTHON} failed "
            f"(exit {completed.returncode}):\n{tail}",
            hint="check that the package index is reachable and every pin has a manylinux2014 x86_64 wheel",
        )


def build_lambda_zip(
    out: Path,
    *,
    source_dir: Path = BRIDGE_SOURCE,
    requirements: Path | None = None,
    installer: Installer = uv_installer,
    compile_bytecode: bool = True,
) -> PackageResult:
    """Stage dependencies + `mlops_bridge/`, then zip them reproducibly.

    The installer is injected: tests pass one that writes a few files, so no test needs the network.
    Bytecode is compiled as unchecked-hash .pyc: Lambda's /var/task is read-only, so without them every
    cold start compiles every imported module again.
    """
    requirements = requirements or source_dir / "requirements.txt"
    if not (source_dir / "handler.py").is_file():
        raise BridgeError(f"no handler.py in {source_dir}: expected the bridge source (infra/bridge/)")
    if not requirements.is_file():
        raise BridgeError(f"no {requirements}: expected the bridge's pinned runtime requirements")
    with tempfile.TemporaryDirectory(prefix="mlops-bridge-zip-") as staging_name:
        staging = Path(staging_name)
        installer(requirements, staging)
        shutil.rmtree(staging / "bin", ignore_errors=True)  # console scripts: of no use in Lambda
        package_dir = staging / "mlops_bridge"
        if package_dir.exists():
            raise BridgeError(f"the installed requirements already contain mlops_bridge/ ({requirements})")
        package_dir.mkdir()
        for source in sorted(source_dir.glob("*.py")):
            shutil.copy2(source, package_dir / source.name)
        for cache in list(staging.rglob("__pycache__")):
            shutil.rmtree(cache)
        if compile_bytecode:
            compiled = compileall.compile_dir(
                staging, quiet=2, workers=0, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
            )
            if not compiled:
                raise BridgeError(f"compiling the staged sources in {staging} to bytecode failed")
        out.parent.mkdir(parents=True, exist_ok=True)
        entries = _write_zip(staging, out)
    return PackageResult(path=out, size_bytes=out.stat().st_size, entries=entries)


def _write_zip(root: Path, out: Path) -> int:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    partial = out.with_suffix(out.suffix + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), date_time=_ZIP_EPOCH)
            info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    partial.replace(out)  # never leave a half-written zip under the real name
    return len(files)


# ------------------------------------------------------------------------------------------------- click


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
    IDEMPOTENCY_TABLE, MODEL_PACKAGE_GROUPS (see docs/bridge.md).
    """
    import boto3

    from mlops_bridge.errors import BridgeError as LambdaBridgeError
    from mlops_bridge.handler import build_bridge
    from mlops_bridge.settings import groups_from_env

    try:
        if dry_run:
            handle, plan = None, plan_event(groups_from_env(os.environ))
        else:
            handle, plan = build_bridge(os.environ).handle, None
    except LambdaBridgeError as exc:
        raise BridgeError(
            f"the bridge cannot be configured from this environment: {exc.message}",
            hint=(exc.hint or "") + "; replay needs the bridge Lambda's environment variables (docs/bridge.md)",
        ) from exc
    summary = replay_dlq(
        boto3.client("sqs"), queue_url, handle, dry_run=dry_run, plan=plan, max_messages=max_messages,
        wait_seconds=wait_seconds, visibility_timeout=visibility_timeout,
        progress=lambda line: click.echo(line, err=True),
    )  # fmt: skip
    click.echo(summary.describe())
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
    click.echo(f"installing {BRIDGE_SOURCE / 'requirements.txt'} for {LAMBDA_PLATFORM} ...", err=True)
    result = build_lambda_zip(out, compile_bytecode=compile_bytecode)
    click.echo(
        f"wrote {result.path} ({result.size_bytes / 1e6:.1f} MB, {result.entries} files); "
        "Lambda handler: mlops_bridge.handler.handler"
    )
