"""Decide what an upsert must do, and explain an execution's outcome. Pure: no AWS SDK here."""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

UpsertAction = Literal["create", "update", "unchanged"]


def canonical(definition: str | dict[str, Any]) -> str:
    """A stable text form of a definition, for comparison and diffs."""
    document = json.loads(definition) if isinstance(definition, str) else definition
    return json.dumps(document, indent=2, sort_keys=True)


@dataclass(frozen=True)
class UpsertPlan:
    pipeline_name: str
    action: UpsertAction
    diff: str
    role_changed: bool = False

    def describe(self) -> str:
        if self.action == "create":
            return f"pipeline {self.pipeline_name}: create"
        if self.action == "unchanged":
            return f"pipeline {self.pipeline_name}: unchanged (nothing to write)"
        changed = sum(1 for line in self.diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---"))
        role = ", role changed" if self.role_changed else ""
        return f"pipeline {self.pipeline_name}: update ({changed} changed lines{role})"


def plan_upsert(
    pipeline_name: str,
    desired_definition: str,
    desired_role_arn: str,
    live_definition: str | None,
    live_role_arn: str | None,
) -> UpsertPlan:
    if live_definition is None:
        return UpsertPlan(pipeline_name, "create", diff="")
    desired, live = canonical(desired_definition), canonical(live_definition)
    role_changed = live_role_arn != desired_role_arn
    if desired == live and not role_changed:
        return UpsertPlan(pipeline_name, "unchanged", diff="")
    diff = "".join(
        difflib.unified_diff(
            live.splitlines(keepends=True),
            desired.splitlines(keepends=True),
            fromfile=f"{pipeline_name} (live)",
            tofile=f"{pipeline_name} (rendered)",
        )
    )
    if role_changed:
        diff += f"role: {live_role_arn} -> {desired_role_arn}\n"
    return UpsertPlan(pipeline_name, "update", diff=diff, role_changed=role_changed)


TERMINAL_STATUSES = frozenset({"Succeeded", "Failed", "Stopped"})


@dataclass(frozen=True)
class StepOutcome:
    name: str
    status: str
    failure_reason: str | None = None


def first_failed_step(steps: Sequence[Mapping[str, Any]]) -> StepOutcome | None:
    """From ListPipelineExecutionSteps (newest first), the step that made the execution fail."""
    failed = [s for s in steps if s.get("StepStatus") in ("Failed", "Stopped")]
    if not failed:
        return None
    # The earliest-started failure is the cause; later ones are usually consequences.
    culprit = min(failed, key=lambda s: str(s.get("StartTime", "")))
    return StepOutcome(
        name=str(culprit.get("StepName", "?")),
        status=str(culprit.get("StepStatus")),
        failure_reason=culprit.get("FailureReason"),
    )
