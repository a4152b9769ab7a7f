"""The approval flow: parse, filter, re-check the registry, start the run once, record it on the package.

Clients and the run starter are injected, so tests and `mlops bridge replay` use the same code as Lambda.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from .errors import AlreadyInProgressError
from .events import decide, parse_event
from .idempotency import RunOnce
from .log import logger
from .registry import read_package, record_run, run_metadata
from .retrain import RetrainRoute, is_alarm_event
from .settings import BridgeSettings

_CORRELATION_KEYS = ("event_id", "model_package_arn", "approval_status", "alarm_name", "alarm_transition")


class RunStarter(Protocol):
    trigger: str

    def start(self, change: Any, *, not_before: datetime | None = None) -> dict[str, Any]:
        """The approval's run: found in Azure DevOps (`created` False) or started now (`created` True)."""
        ...

    def find(self, change: Any, *, not_before: datetime | None = None) -> dict[str, Any] | None:
        """The approval's run if Azure DevOps already has one, else None (None also when it cannot tell)."""
        ...


class Bridge:
    def __init__(
        self,
        settings: BridgeSettings,
        *,
        sagemaker: Any,
        starter: RunStarter,
        run_once: RunOnce,
        retrain: RetrainRoute | None = None,
    ) -> None:
        self.settings = settings
        self._sagemaker = sagemaker
        self._starter = starter
        self._run_once = run_once
        self._retrain = retrain or RetrainRoute(settings, starter=None, run_once=None)

    def handle(self, event: Any, context: Any = None) -> dict[str, Any]:
        logger.remove_keys(_CORRELATION_KEYS)
        event_id = event.get("id") if isinstance(event, dict) else None
        logger.set_correlation_id(event_id if isinstance(event_id, str) else None)
        if is_alarm_event(event):  # the second route: a drift alarm starts the build (retraining)
            return self._retrain.handle(event, context)
        change = parse_event(event)  # raises on a malformed event: it must reach the DLQ
        logger.append_keys(
            event_id=change.event_id, model_package_arn=change.model_package_arn, approval_status=change.approval_status
        )
        decision = decide(change, self.settings.model_package_groups)
        if not decision.start_run:
            logger.info(f"ignored: {decision.reason}")
            return {"outcome": "ignored", "reason": decision.reason, "eventId": change.event_id}

        registry = read_package(self._sagemaker, change, self.settings.model_package_groups)
        if not registry.approved:
            reason = f"the event says Approved but the registry says {registry.approval_status} (stale event)"
            logger.info(f"ignored: {reason}")
            return {"outcome": "ignored", "reason": reason, "eventId": change.event_id}

        key = {"modelPackageArn": change.model_package_arn, "approvalStatus": change.approval_status}
        try:
            run, ran = self._run_once.run(
                key, lambda: self._starter.start(change, not_before=registry.created), context
            )
        except AlreadyInProgressError:
            # Either another delivery is starting the run right now, or an earlier one started it and then
            # could not record that (its store write failed, or it crashed). Azure DevOps knows which.
            existing = self._starter.find(change, not_before=registry.created)
            if existing is None:
                raise
            run, ran = existing, False
        started_now = ran and run.get("created", True) is True
        recorded = record_run(self._sagemaker, change.model_package_arn, run_metadata(run), registry.customer_metadata)
        outcome = "started" if started_now else "duplicate"
        logger.info(
            f"{outcome}: deploy run {run.get('runId')} ({run.get('trigger')})"
            + ("" if started_now else f", started earlier by event {run.get('eventId')}"),
            extra={"run_id": run.get("runId"), "run_url": run.get("runUrl"), "recorded_on_package": recorded},
        )
        return {
            "outcome": outcome,
            "eventId": change.event_id,
            "modelPackageArn": change.model_package_arn,
            "runId": run.get("runId"),
            "runUrl": run.get("runUrl"),
            "startedByEventId": run.get("eventId"),
            "recordedOnPackage": recorded,
        }
