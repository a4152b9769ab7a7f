"""What the Azure DevOps project enforces on a run, as the local runner asks it (implemented by the twin's fake).

Azure DevOps checks, before a stage's jobs run, that every service connection and environment the stage uses
is authorised for the pipeline (pipeline permissions), then runs the environment's checks: branch control,
approvals (the stage waits; no agent is held), exclusive lock. An environment that does not exist is created
on first use, without any check. `run_pipeline(project=...)` enforces all of this; without a project the
runner keeps its plain behaviour (every environment asks the approver).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from mlops.pipelines.model import Extends


@dataclass(frozen=True)
class EnvironmentDecision:
    refusal: str | None  # Azure DevOps's message when the stage may not enter the environment
    created: bool  # the environment did not exist and was auto-created (without checks)
    approval_required: bool  # an approval check: the runner asks its approver, which waits for the decision


class ProjectChecks(Protocol):
    def connection_refusal(self, job: str, step: str, connection: str) -> str | None:
        """None when the pipeline may use the connection, else Azure DevOps's message."""

    def enter_environment(
        self, job: str, environment: str, branch: str, extends: Extends | None
    ) -> EnvironmentDecision:
        """Authorisation, branch control, required template and whether an approval is needed, for one job."""

    def variable_group(self, name: str) -> Mapping[str, str] | str:
        """The group's variables (secrets included, as the agent gets them), or Azure DevOps's refusal."""
