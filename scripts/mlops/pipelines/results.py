"""What a local pipeline run produced: per stage, job and step a status and seconds, plus what the run published.

Statuses follow the Azure DevOps timeline: succeeded, succeededWithIssues, failed, skipped, and
`rejected` for a stage whose environment approval was refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SUCCEEDED = "succeeded"
WITH_ISSUES = "succeededWithIssues"
FAILED = "failed"
SKIPPED = "skipped"
REJECTED = "rejected"
OK = (SUCCEEDED, WITH_ISSUES)


@dataclass
class Issue:
    type: str  # error | warning
    message: str
    stage: str
    job: str
    step: str
    source: str | None = None  # sourcepath:linenumber from the logging command, when given


@dataclass
class StepResult:
    name: str | None
    display_name: str
    status: str
    seconds: float
    where: str
    exit_code: int | None = None
    reason: str | None = None  # why it was skipped or failed


@dataclass
class JobResult:
    name: str
    display_name: str
    status: str
    seconds: float
    environment: str | None = None
    steps: list[StepResult] = field(default_factory=list)
    outputs: dict[str, str] = field(default_factory=dict)  # `step.var` (deployment jobs: `job.step.var`)
    reason: str | None = None


@dataclass
class StageResult:
    name: str
    display_name: str
    status: str
    seconds: float
    jobs: list[JobResult] = field(default_factory=list)
    reason: str | None = None


@dataclass
class Summary:
    stage: str
    job: str
    step: str
    path: str
    markdown: str


@dataclass
class TestRecord:
    stage: str
    job: str
    format: str
    files: list[str]
    total: int
    failed: int
    title: str | None = None


@dataclass
class CoverageRecord:
    stage: str
    job: str
    file: str
    line_rate: float | None


@dataclass
class Approval:
    stage: str
    environment: str
    approved: bool
    by: str  # prompt | auto-approve | callback | none


@dataclass
class ApprovalRequest:
    """What an approver sees: the check on `environment` before `stage` runs."""

    pipeline: str
    run_id: int
    stage: str
    environment: str
    parameters: dict[str, Any]


Approver = Callable[[ApprovalRequest], bool]


@dataclass
class RunEvent:
    """A progress event; `text` is a ready-to-print line."""

    kind: str  # run|stage|job|step started/finished, output, approval, issue
    text: str
    stage: str | None = None
    job: str | None = None
    step: str | None = None
    status: str | None = None


@dataclass
class RunResult:
    pipeline: str
    run_id: int
    status: str
    seconds: float
    parameters: dict[str, Any]
    stages: list[StageResult]
    artifacts: dict[str, Path] = field(default_factory=dict)
    summaries: list[Summary] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    test_results: list[TestRecord] = field(default_factory=list)
    coverage: list[CoverageRecord] = field(default_factory=list)
    approvals: list[Approval] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)  # the pipeline-level variables the run started with
    work_dir: Path | None = None

    @property
    def succeeded(self) -> bool:
        return self.status in OK

    def stage(self, name: str) -> StageResult:
        for stage in self.stages:
            if stage.name == name:
                return stage
        raise KeyError(f"no stage {name!r}; stages: {[s.name for s in self.stages]}")

    def job(self, stage: str, name: str) -> JobResult:
        for job in self.stage(stage).jobs:
            if job.name == name:
                return job
        raise KeyError(f"no job {name!r} in stage {stage!r}")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["artifacts"] = {name: str(path) for name, path in self.artifacts.items()}
        data["work_dir"] = str(self.work_dir) if self.work_dir else None
        return data
