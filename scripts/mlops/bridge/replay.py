"""Re-drive the bridge's dead-letter queue through the Lambdas' own code.

The queue holds three kinds of message (the body is always the original EventBridge event):
  - approvals (`SageMaker Model Package State Change`, from the approval rule or the bridge Lambda),
  - retrain alarms (`CloudWatch Alarm State Change`, from the retrain rule or the bridge Lambda),
  - reminder ticks (`Scheduled Event`, from the reminder schedule or the reminders Lambda).
Approvals and alarms go to the bridge's handler (`mlops_bridge.handler.build_bridge(...).handle`, which
routes them), reminder ticks to `mlops_bridge.reminders.handler`, each with the Lambda's environment
variables (see docs/bridge.md). Idempotency makes it safe: an approval or alarm transition that already
started a run starts nothing new, a package already reminded is not reminded again. A message of any
other kind is reported as one that can never succeed. A message is deleted only after it was handled
successfully; failed ones stay on the queue.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mlops.core.errors import BridgeError

APPROVAL = "approval"
RETRAIN_ALARM = "retrain-alarm"
REMINDER_TICK = "reminder-tick"
_KINDS = {
    ("aws.sagemaker", "SageMaker Model Package State Change"): APPROVAL,
    ("aws.cloudwatch", "CloudWatch Alarm State Change"): RETRAIN_ALARM,
    ("aws.events", "Scheduled Event"): REMINDER_TICK,
    ("aws.scheduler", "Scheduled Event"): REMINDER_TICK,
}
Handle = Callable[[Any, Any], dict[str, Any]]


def message_kind(event: Any) -> str | None:
    """Which handler a DLQ message belongs to, from its EventBridge `source` and `detail-type`; None if unknown."""
    if not isinstance(event, dict):
        return None
    return _KINDS.get((str(event.get("source")), str(event.get("detail-type"))))


def _unknown(event: Any) -> str:
    if not isinstance(event, dict):
        return f"the body is JSON but not an EventBridge event (a {type(event).__name__})"
    return (
        f"an event of source {event.get('source')!r} and detail-type {event.get('detail-type')!r}; expected an "
        "approval (aws.sagemaker), a retrain alarm (aws.cloudwatch) or a reminder tick (Scheduled Event)"
    )


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
    handle: Handle | None,
    *,
    remind: Handle | None = None,
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
    handlers: dict[str, Handle | None] = {APPROVAL: handle, RETRAIN_ALARM: handle, REMINDER_TICK: remind}
    try:
        _drain(
            sqs, queue_url, handlers, summary, planned, plan, max_messages, wait_seconds, visibility_timeout, progress
        )
    finally:
        # A dry run leaves the queue as it found it: planned messages become visible again at once
        # (not inside the loop, which would then receive them again).
        for receipt in planned:
            sqs.change_message_visibility(QueueUrl=queue_url, ReceiptHandle=receipt, VisibilityTimeout=0)
    return summary


def _drain(
    sqs: Any,
    queue_url: str,
    handlers: dict[str, Handle | None],
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
            kind = message_kind(event)
            if kind is None:
                error = f"unknown message: {_unknown(event)}; it can never succeed: delete it"
                summary.failures.append((message_id, error))
                if dry_run:
                    summary.plans.append(f"{message_id}: would fail ({error})")
                    planned.append(message["ReceiptHandle"])
                progress(f"failed {message_id}: {error}")
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
            handle = handlers.get(kind)
            if handle is None:
                raise BridgeError(f"replay without --dry-run needs the handler of {kind} messages; none was given")
            try:
                result = handle(event, ReplayContext(budget_seconds=max(60, visibility_timeout - 30)))
            except Exception as exc:
                summary.failures.append((message_id, f"{type(exc).__name__}: {exc}"))
                progress(f"failed {message_id}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
                continue
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            # The reminders handler answers with what it sent, not an outcome.
            outcome = str(result.get("outcome") or ("reminders-run" if kind == REMINDER_TICK else "handled"))
            summary.outcomes[outcome] = summary.outcomes.get(outcome, 0) + 1
            progress(
                f"{outcome} {message_id}: run {result.get('runId')}"
                if result.get("runId")
                else f"{outcome} {message_id}"
            )


def plan_event(groups: frozenset[str], retrain_alarms: frozenset[str] = frozenset()) -> Callable[[Any], str]:
    from mlops_bridge.errors import MalformedEventError
    from mlops_bridge.events import decide, parse_event
    from mlops_bridge.retrain import parse_alarm_event, should_retrain

    def plan(event: Any) -> str:
        kind = message_kind(event)
        if kind == REMINDER_TICK:
            return "would run the pending-approval reminders now (one per overdue package, never twice)"
        if kind == RETRAIN_ALARM:
            try:
                transition = parse_alarm_event(event)
            except MalformedEventError as exc:
                return f"would fail (malformed): {str(exc).splitlines()[0]}"
            start, why = should_retrain(transition, retrain_alarms)
            if not start:
                return f"would ignore alarm {transition.alarm_name}: {why}"
            return (
                f"would start the build (retrain) for alarm {transition.alarm_name} at {transition.timestamp} "
                "unless this transition already started one or a build is running"
            )
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
