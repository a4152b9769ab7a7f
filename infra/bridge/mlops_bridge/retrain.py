"""The bridge's second route: a drift alarm going into ALARM starts the build pipeline (retraining), once.

EventBridge delivers `CloudWatch Alarm State Change` events of the retrain alarms (the rule in
infra/templates/automation.yaml; the stage accounts forward theirs to the automation account's bus).
One transition is one start, however often it is delivered:

- the transition is identified by the alarm ARN and the new state's timestamp (CloudWatch's event has
  no id of its own that survives redelivery; the timestamp is the transition's);
- idempotency as for approvals: the DynamoDB record (key prefix `mlops-bridge.retrain-run`), and Azure
  DevOps as the source of truth: the run carries the tag `mlops-retrain:<digest>` and the template
  parameter `retrainTrigger` with that tag, so a run whose create answer was lost is found, not doubled;
- a build of the use case that is already queued or running absorbs the trigger: no second build
  starts (outcome `skipped`, the running build's id returned), as the issue's bad-input section asks.

Template parameters sent to the build pipeline: `useCase` (the use case whose prod endpoint drifted: its drift
alarm is `<use case>-data-drift`, and its use case is one of MODEL_PACKAGE_GROUPS, since a use case's group is
named after it), `retrainReason` (readable: alarm, time, CloudWatch's reason) and `retrainTrigger` (the tag).
A running build absorbs the trigger only when it builds that use case (or all of them).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .ado_runs import LOOKBACK_RUNS, Answer, RunsApiStarter, _parameter
from .errors import AlreadyInProgressError, AzureDevOpsError, AzureDevOpsUnavailableError, MalformedEventError
from .idempotency import RunOnce
from .log import logger
from .settings import BridgeSettings
from .throttling import with_throttle_retries

SOURCE = "aws.cloudwatch"
DETAIL_TYPE = "CloudWatch Alarm State Change"
RETRAIN_TAG_PREFIX = "mlops-retrain"
# Build statuses (Build API) of a build that has not finished.
UNFINISHED = frozenset({"inProgress", "notStarted", "postponed"})
_REASON_MAX = 900
DRIFT_ALARM_SUFFIX = "-data-drift"  # model_deploy/desired.py names each prod endpoint's drift alarm so
ALL_USE_CASES = "all"  # model-build.yml's useCase default: every use case


def use_case_of_alarm(alarm_name: str, use_cases: frozenset[str]) -> str:
    """The use case whose drift alarm this is; MalformedEventError when it is none of ours."""
    name = alarm_name.removesuffix(DRIFT_ALARM_SUFFIX)
    if alarm_name.endswith(DRIFT_ALARM_SUFFIX) and name in use_cases:
        return name
    raise MalformedEventError(
        f"alarm {alarm_name!r} is not the drift alarm of a use case: expected '<use case>{DRIFT_ALARM_SUFFIX}' "
        f"with the use case one of MODEL_PACKAGE_GROUPS {sorted(use_cases)}",
        hint="add the use case's group to MODEL_PACKAGE_GROUPS (mlops infra deploy does), or remove the alarm "
        "from RETRAIN_ALARM_NAMES",
    )


@dataclass(frozen=True)
class AlarmTransition:
    event_id: str
    alarm_name: str
    alarm_arn: str
    state: str
    previous_state: str | None
    timestamp: str
    reason: str


def is_alarm_event(event: object) -> bool:
    return isinstance(event, Mapping) and event.get("source") == SOURCE and event.get("detail-type") == DETAIL_TYPE


def parse_alarm_event(event: object) -> AlarmTransition:
    if not isinstance(event, Mapping) or not is_alarm_event(event):
        raise MalformedEventError(
            f"expected a {DETAIL_TYPE!r} event from {SOURCE}", hint="only the retrain rule should target this route"
        )
    event_id = str(event.get("id") or "")
    detail = event.get("detail")
    resources = event.get("resources")
    if not isinstance(detail, Mapping) or not isinstance(detail.get("state"), Mapping):
        raise MalformedEventError(
            f"alarm event {event_id or '(no id)'} has no detail.state: expected CloudWatch's alarm state change",
            hint="this event can never succeed: delete it from the DLQ",
        )
    state = detail["state"]
    previous = detail.get("previousState") if isinstance(detail.get("previousState"), Mapping) else {}
    name, value, timestamp = detail.get("alarmName"), state.get("value"), state.get("timestamp")
    arn = resources[0] if isinstance(resources, list) and resources and isinstance(resources[0], str) else None
    missing = [k for k, v in (("alarmName", name), ("state.value", value), ("state.timestamp", timestamp)) if not v]
    if missing or arn is None:
        found = ", ".join(missing + ([] if arn else ["resources[0] (the alarm ARN)"]))
        raise MalformedEventError(
            f"alarm event {event_id or '(no id)'} lacks {found}",
            hint="this event can never succeed: delete it from the DLQ",
        )
    return AlarmTransition(
        event_id=event_id,
        alarm_name=str(name),
        alarm_arn=arn,
        state=str(value),
        previous_state=str(previous.get("value")) if previous and previous.get("value") else None,
        timestamp=str(timestamp),
        reason=str(state.get("reason") or ""),
    )


def retrain_tag(transition: AlarmTransition) -> str:
    digest = hashlib.sha256(f"{transition.alarm_arn}|{transition.timestamp}".encode()).hexdigest()[:20]
    return f"{RETRAIN_TAG_PREFIX}:{digest}"


def retrain_reason(transition: AlarmTransition) -> str:
    text = f"alarm {transition.alarm_name} went into ALARM at {transition.timestamp}: {transition.reason}"
    return text[:_REASON_MAX]


def should_retrain(transition: AlarmTransition, alarm_names: frozenset[str]) -> tuple[bool, str]:
    if transition.state != "ALARM":
        return False, f"the alarm went to {transition.state}, not ALARM"
    if transition.previous_state == "ALARM":
        return False, "the alarm was already in ALARM (no transition)"
    if alarm_names and transition.alarm_name not in alarm_names:
        return False, f"alarm {transition.alarm_name} is not a retrain alarm (RETRAIN_ALARM_NAMES)"
    return True, "drift alarm transition into ALARM"


class BuildRunStarter(RunsApiStarter):
    """Starts the build pipeline (`ADO_BUILD_PIPELINE_ID`) for one alarm transition, reusing the Runs API plumbing."""

    def __init__(self, settings: BridgeSettings, *args: Any, **kwargs: Any) -> None:
        if settings.build_pipeline_id is None:
            raise AzureDevOpsError(
                "a retrain trigger arrived but ADO_BUILD_PIPELINE_ID is not set",
                hint="set ADO_BUILD_PIPELINE_ID to the build pipeline's id (or remove the retrain rule)",
            )
        super().__init__(dataclasses.replace(settings, pipeline_id=settings.build_pipeline_id), *args, **kwargs)

    def start_retrain(self, transition: AlarmTransition) -> dict[str, Any]:
        use_case_of_alarm(transition.alarm_name, self._settings.model_package_groups)
        existing = self.find_retrain(transition)
        if existing is not None:
            return existing
        running = self.unfinished_build(transition)
        if running is not None:
            return running
        try:
            run = self._bounded(f"starting build pipeline {self._pipeline_id}", lambda: self._post_retrain(transition))
        except AzureDevOpsUnavailableError:
            found = self.find_retrain(transition)
            if found is None:
                raise
            return {**found, "created": True}
        self._add_tag(transition, run.id)
        return self._retrain_result(transition, run.id, created=True)

    def find_retrain(self, transition: AlarmTransition) -> dict[str, Any] | None:
        """The run Azure DevOps already has for this transition (tagged, or carrying the trigger parameter)."""
        tag = retrain_tag(transition)
        builds = self._bounded(
            f"looking up runs tagged {tag}", lambda: self._builds(tag_filters=[tag], query_order="queueTimeAscending")
        )
        if not builds:
            since = _parse_time(transition.timestamp)
            recent = self._bounded(
                f"looking up runs of pipeline {self._pipeline_id} for {tag}",
                lambda: self._builds(min_time=since, query_order="queueTimeDescending", top=LOOKBACK_RUNS),
            )
            builds = [b for b in recent if _parameter(b, "retrainTrigger") == tag]
            if not builds:
                return None
            self._add_tag(transition, min(b.id for b in builds))
        return self._retrain_result(transition, min(b.id for b in builds), created=False)

    def unfinished_build(self, transition: AlarmTransition) -> dict[str, Any] | None:
        """A build of the pipeline that is queued or running: it absorbs this trigger."""
        recent = self._bounded(
            f"looking up unfinished runs of pipeline {self._pipeline_id}",
            lambda: self._builds(query_order="queueTimeDescending", top=50),
        )
        use_case = use_case_of_alarm(transition.alarm_name, self._settings.model_package_groups)
        unfinished = [
            b
            for b in recent
            if str(getattr(b, "status", "")) in UNFINISHED
            and (_parameter(b, "useCase") or ALL_USE_CASES) in (use_case, ALL_USE_CASES)
        ]
        if not unfinished:
            return None
        build = min(unfinished, key=lambda b: b.id)
        return {**self._retrain_result(transition, build.id, created=False), "skipped": True}

    def _retrain_result(self, transition: AlarmTransition, run_id: int, *, created: bool) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "runId": run_id,
            "runUrl": f"{self._settings.org_url}/{self._project}/_build/results?buildId={run_id}",
            "pipelineId": self._pipeline_id,
            "tag": retrain_tag(transition),
            "eventId": transition.event_id,
            "created": created,
        }

    def _bounded(self, describe: str, call: Any) -> Any:
        return with_throttle_retries(
            call,
            describe=describe,
            max_wait_seconds=self._settings.throttle_max_wait_seconds,
            sleep=self._sleep,
            now=self._now,
        )

    def _post_retrain(self, transition: AlarmTransition) -> Any:
        return self._run(
            f"starting build pipeline {self._pipeline_id}",
            {
                "useCase": use_case_of_alarm(transition.alarm_name, self._settings.model_package_groups),
                "retrainReason": retrain_reason(transition),
                "retrainTrigger": retrain_tag(transition),
            },
        )

    def _add_tag(self, transition: AlarmTransition, run_id: int) -> None:
        tag = retrain_tag(transition)
        answers: list[Answer] = []
        tags = self._bounded(
            f"tagging run {run_id} with {tag}",
            lambda: self._request(
                f"tagging run {run_id}",
                answers,
                lambda: self._build_client(answers).add_build_tags([tag], self._project, run_id),
            ),
        )
        if not isinstance(tags, list) or tag not in tags:
            raise AzureDevOpsError(
                f"build run {run_id} was started, but tagging it {tag!r} did not take (tags now: {tags!r})",
                hint="Lambda retries the event; the retry finds the run by its retrainTrigger parameter",
            )


def _parse_time(text: str) -> datetime | None:
    # CloudWatch writes "2026-12-01T10:00:00.000+0000"; Python wants "+00:00".
    cleaned = text[:-5] + text[-5:-2] + ":" + text[-2:] if len(text) > 5 and text[-5] in "+-" else text
    try:
        return datetime.fromisoformat(cleaned.replace("Z", "+00:00"))
    except ValueError:
        return None


class RetrainRoute:
    def __init__(self, settings: BridgeSettings, *, starter: BuildRunStarter | None, run_once: RunOnce | None) -> None:
        self._settings = settings
        self._starter = starter
        self._run_once = run_once

    def handle(self, event: Any, context: Any = None) -> dict[str, Any]:
        transition = parse_alarm_event(event)
        logger.append_keys(alarm_name=transition.alarm_name, alarm_transition=transition.timestamp)
        start, why = should_retrain(transition, self._settings.retrain_alarm_names)
        if not start:
            logger.info(f"ignored: {why}")
            return {"outcome": "ignored", "reason": why, "eventId": transition.event_id}
        if self._starter is None or self._run_once is None:
            raise AzureDevOpsError(
                f"alarm {transition.alarm_name} asks for a retrain, but the bridge has no build pipeline to start",
                hint="set ADO_BUILD_PIPELINE_ID (and ADO_TRIGGER=runs_api) on the bridge; then replay the DLQ",
            )
        starter = self._starter
        key = {"alarmArn": transition.alarm_arn, "transition": transition.timestamp}
        try:
            run, ran = self._run_once.run(key, lambda: starter.start_retrain(transition), context)
        except AlreadyInProgressError:
            existing = starter.find_retrain(transition)
            if existing is None:
                raise
            run, ran = existing, False
        started = ran and run.get("created") is True
        outcome = "skipped" if run.get("skipped") else "started" if started else "duplicate"
        logger.info(f"{outcome}: build run {run.get('runId')} for {transition.alarm_name}")
        return {
            "outcome": outcome,
            "route": "retrain",
            "eventId": transition.event_id,
            "alarmArn": transition.alarm_arn,
            "runId": run.get("runId"),
            "runUrl": run.get("runUrl"),
            "reason": retrain_reason(transition),
        }
