"""Re-drive the bridge's dead-letter queue through the Lambda's own code.

`replay_dlq` calls the Lambda's handler (`mlops_bridge.handler.build_bridge(...).handle`) with the Lambda's
environment variables (ADO_*, IDEMPOTENCY_TABLE, MODEL_PACKAGE_GROUPS; see docs/bridge.md). Idempotency
makes it safe: an approval that already started a run starts nothing new. A message is deleted only
after it was handled successfully; failed ones stay on the queue.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlops.core.errors import BridgeError


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
            # Every message with its verdict, also those that would fail (they are in `plans` too).
            head = (
                f"dry run: {self.seen} message(s) on {self.queue_url}, {len(self.failures)} would fail; "
                "nothing started, nothing deleted, every message visible again"
            )
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
                error = f"the body is not JSON ({exc}); expected an EventBridge event"
                summary.failures.append((message_id, error))
                if dry_run:  # shown and released like every other message of a dry run
                    body = message["Body"] if len(message["Body"]) <= 60 else message["Body"][:60] + "..."
                    summary.plans.append(
                        f"{message_id}: would fail (not JSON): {error}; body {body!r}; it can never succeed: "
                        f"delete it (aws sqs delete-message --queue-url {queue_url} --receipt-handle ...)"
                    )
                    planned.append(message["ReceiptHandle"])
                continue
            if dry_run and plan is not None:
                verdict = plan(event)
                summary.plans.append(f"{message_id}: {verdict}")
                if verdict.startswith("would fail"):
                    summary.failures.append((message_id, verdict))
                else:
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
