"""The local Azure Pipelines runner: executes our pipeline YAML on this machine, stage by stage.

`run_pipeline(path, parameters, ...)` compiles the file (`mlops.pipelines.model`), then runs stages
and jobs in dependency order (declared order among the ready ones; one job at a time), evaluates
conditions against dependency results, asks for environment approvals before a stage with
deployment jobs, and returns a `RunResult`. The CLI (`mlops pipelines run`) and the twin's fake
Azure DevOps both call it; AWS credentials come from an injected `ServiceConnections`, so this
module knows nothing about the twin.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from mlops.core.errors import PipelineError, PipelineRunError
from mlops.pipelines.checks import ProjectChecks
from mlops.pipelines.expressions import (
    RUNTIME,
    CaseInsensitive,
    ExpressionError,
    Scope,
    evaluate_text,
    substitute_macros,
    to_bool,
    to_str,
)
from mlops.pipelines.loader import LDict, plain
from mlops.pipelines.model import Job, Pipeline, Stage, Step, Variable, load_pipeline
from mlops.pipelines.results import (
    FAILED,
    OK,
    REJECTED,
    SKIPPED,
    SUCCEEDED,
    WITH_ISSUES,
    Approval,
    ApprovalRequest,
    Approver,
    Issue,
    JobResult,
    RunEvent,
    RunResult,
    StageResult,
    StepResult,
)
from mlops.pipelines.steps import JobRuntime, ServiceConnections, StepOutcome, StepRunner

DEFAULT_CONDITION = "succeeded()"


def static_service_connections(connections: Mapping[str, Mapping[str, str]]) -> ServiceConnections:
    """Service connections from a fixed table (tests, or credentials already in hand)."""

    def lookup(name: str) -> Mapping[str, str]:
        if name not in connections:
            raise PipelineRunError(
                f"unknown service connection {name!r}; expected one of {sorted(connections)}",
                hint="map it with --service-connection NAME=ACCOUNT or fix the name in the YAML",
            )
        return connections[name]

    return lookup


def no_service_connections(name: str) -> Mapping[str, str]:
    raise PipelineRunError(
        f"step needs AWS service connection {name!r} but the run has no service connections",
        hint="start the twin (`mlops local up`) or pass service_connections to run_pipeline",
    )


def predefined_variables(
    pipeline_file: str, run_id: int, sources_dir: Path, work_dir: Path, branch: str, commit: str
) -> dict[str, str]:
    """Azure's predefined variables, with local paths; callers override any of them."""
    return {
        "Build.BuildId": str(run_id),
        "Build.BuildNumber": f"{datetime.now(UTC):%Y%m%d}.{run_id}",
        "Build.DefinitionName": Path(pipeline_file).stem,
        "Build.Reason": "Manual",
        "Build.SourceBranch": branch if branch.startswith("refs/") else f"refs/heads/{branch}",
        "Build.SourceBranchName": branch.rsplit("/", 1)[-1],
        "Build.SourceVersion": commit,
        "Build.Repository.LocalPath": str(sources_dir),
        "Build.SourcesDirectory": str(sources_dir),
        "Build.ArtifactStagingDirectory": str(work_dir / "a"),
        "Build.StagingDirectory": str(work_dir / "a"),
        "Build.BinariesDirectory": str(work_dir / "b"),
        "System.DefaultWorkingDirectory": str(sources_dir),
        "System.ArtifactsDirectory": str(work_dir / "a"),
        "System.TeamProject": "local",
        "System.CollectionUri": "http://127.0.0.1/local/",
        "Pipeline.Workspace": str(work_dir),
        "Agent.BuildDirectory": str(work_dir),
        "Agent.TempDirectory": str(work_dir / "_temp"),
        "Agent.OS": "Linux",
        "Agent.Name": "local-runner",
        "Common.TestResultsDirectory": str(work_dir / "TestResults"),
    }


def _git(sources_dir: Path, *args: str) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=sources_dir, capture_output=True, text=True, check=False, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


@dataclass
class _Options:
    approve: Approver | None
    auto_approve: bool
    service_connections: ServiceConnections
    env: dict[str, str]
    sources_dir: Path
    work_dir: Path
    artifacts_dir: Path
    emit: Callable[[RunEvent], None]
    clock: Callable[[], float]
    project: ProjectChecks | None = None


def run_pipeline(
    path: Path | str,
    parameters: Mapping[str, Any] | None = None,
    *,
    auto_approve: bool = False,
    approve: Approver | None = None,
    artifacts_dir: Path | None = None,
    work_dir: Path | None = None,
    sources_dir: Path | None = None,
    service_connections: ServiceConnections | None = None,
    env: Mapping[str, str] | None = None,
    variables: Mapping[str, str] | None = None,
    progress: Callable[[RunEvent], None] | None = None,
    run_id: int | None = None,
    parameters_as_text: bool = True,
    clock: Callable[[], float] = time.monotonic,
    project: ProjectChecks | None = None,
    repositories: Mapping[str, Path] | None = None,
    webhook_payloads: Mapping[str, Any] | None = None,
) -> RunResult:
    """Run one pipeline file locally and return what happened; raises `PipelineError` if it cannot compile.

    parameters: runtime parameters; strings (as `-p`/the Runs API send them) are converted by the
        declared type when `parameters_as_text`.
    approve: decides environment approvals; else `auto_approve`; else every approval is rejected.
    variables: predefined variables to override (e.g. `Build.SourceBranch`, `Build.Reason`), or
        queue-time variables, as the Runs API's `variables` would.
    env: the process environment steps start from (default: this process's).
    project: what the Azure DevOps project enforces (pipeline permissions on connections and environments,
        branch control, which environments have an approval, auto-created environments); see
        mlops.pipelines.checks. A refused stage fails before any job runs or obtains credentials.
        Variable groups (`- group: NAME`) are read from it at run time.
    repositories: local checkouts of repository resources (templates `path@alias`, `extends`).
    webhook_payloads: alias -> payload of the webhook resource that triggered the run.
    """
    started = clock()
    path = Path(path)
    sources_dir = (sources_dir or Path.cwd()).resolve()
    run_id = run_id if run_id is not None else int(datetime.now(UTC).strftime("%y%m%d%H%M%S"))
    work_dir = (work_dir or _claim_work_dir(sources_dir / ".mlops" / "pipelines", f"{path.stem}-{run_id}")).resolve()
    artifacts_dir = (artifacts_dir or work_dir / "artifacts").resolve()
    branch = _git(sources_dir, "rev-parse", "--abbrev-ref", "HEAD") or "main"
    predefined: dict[str, Any] = predefined_variables(
        str(path), run_id, sources_dir, work_dir, branch, _git(sources_dir, "rev-parse", "HEAD")
    )
    predefined.update(variables or {})
    pipeline = load_pipeline(
        path,
        parameters,
        root=sources_dir,
        predefined=predefined,
        parameters_as_text=parameters_as_text,
        repositories=repositories,
        webhook_payloads=webhook_payloads,
    )
    for name, value in pipeline.resources.predefined(predefined).items():  # resources.pipeline.<alias>.* ...
        predefined.setdefault(name, value)
    for folder in (work_dir, artifacts_dir, work_dir / "_temp", work_dir / "TestResults", work_dir / "b"):
        folder.mkdir(parents=True, exist_ok=True)
    options = _Options(
        approve,
        auto_approve,
        service_connections or no_service_connections,
        dict(os.environ if env is None else env),
        sources_dir,
        work_dir,
        artifacts_dir,
        progress or (lambda _event: None),
        clock,
        project,
    )
    return _Run(pipeline, predefined, options, run_id).execute(started)


def _claim_work_dir(parent: Path, name: str) -> Path:
    """A work directory no other run uses: two runs of one file in the same checkout in the same second (or
    with the same run id from two fake Azure DevOps) must not share artifacts."""
    parent.mkdir(parents=True, exist_ok=True)
    for attempt in range(1000):
        candidate = parent / (name if attempt == 0 else f"{name}.{attempt}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise PipelineRunError(
        f"no free work directory for {name} under {parent} (1000 taken)",
        hint=f"remove old runs: rm -rf {parent}",
    )


class _Run:
    def __init__(self, pipeline: Pipeline, predefined: dict[str, Any], options: _Options, run_id: int) -> None:
        self.pipeline = pipeline
        self.options = options
        self.run_id = run_id
        self.result = RunResult(pipeline.file, run_id, SUCCEEDED, 0.0, plain(pipeline.parameters), [])
        self.result.work_dir = options.work_dir
        self.pipeline_variables = CaseInsensitive(predefined)
        self.stage_results: dict[str, StageResult] = {}
        self.stage_outputs: dict[str, dict[str, dict[str, str]]] = {}  # stage -> job -> outputs

    def emit(self, kind: str, text: str, **where: Any) -> None:
        self.options.emit(RunEvent(kind, text, **where))

    def execute(self, started: float) -> RunResult:
        self.emit("run_started", f"run {self.run_id} of {self.pipeline.file}")
        self._assign(self.pipeline_variables, self.pipeline.variables, self._scope(self.pipeline_variables, {}))
        self.result.variables = {k: to_str(v) for k, v in self.pipeline_variables.items()}
        for stage in _ordered(self.pipeline.stages):
            self.result.stages.append(self._stage(stage))
        statuses = [stage.status for stage in self.result.stages]
        if any(status in (FAILED, REJECTED) for status in statuses):
            self.result.status = FAILED
        elif WITH_ISSUES in statuses:
            self.result.status = WITH_ISSUES
        self.result.seconds = self.options.clock() - started
        self.emit(
            "run_finished",
            f"run {self.run_id}: {self.result.status} in {self.result.seconds:.1f}s",
            status=self.result.status,
        )
        return self.result

    # ------------------------------------------------------------------------ variables & conditions
    def _scope(self, variables: CaseInsensitive, dependencies: Mapping[str, Any], **extra: Any) -> Scope:
        return Scope({"variables": variables, "dependencies": CaseInsensitive(dependencies), **extra})

    def _assign(self, target: CaseInsensitive, definitions: list[Variable], scope: Scope) -> None:
        for variable in definitions:
            if variable.group is not None:
                target.update(self._variable_group(variable))
                continue
            value = variable.value
            if isinstance(value, str) and RUNTIME.match(value):
                value = self._evaluate(RUNTIME.match(value).group(1), scope, variable.where)  # type: ignore[union-attr]
            else:
                value = substitute_macros(to_str(value), target)
            target[variable.name] = to_str(value)

    def _variable_group(self, variable: Variable) -> Mapping[str, str]:
        project = self.options.project
        if project is None:
            raise PipelineRunError(
                f"{variable.where}: variable group {variable.group!r} is read from the Azure DevOps project's library, "
                "and this run has no project",
                hint="run it through the twin's fake Azure DevOps (`mlops ado apply` creates the group), or replace "
                "the group by `variables:` for a local run",
            )
        answer = project.variable_group(str(variable.group))
        if isinstance(answer, str):
            raise PipelineRunError(f"{variable.where}: {answer}", hint="authorise the group: `mlops ado apply`")
        return answer

    def _evaluate(self, text: str, scope: Scope, where: str) -> Any:
        try:
            return evaluate_text(text, scope)
        except ExpressionError as exc:
            raise PipelineRunError(f"{where}: in {text.strip()!r}: {exc.message}", hint=exc.hint) from exc

    def _condition(self, condition: str | None, scope: Scope, where: str) -> bool:
        text = condition if condition not in (None, "") else DEFAULT_CONDITION
        location = getattr(condition, "file", None)
        at = f"{location}:{condition.line}" if location else where  # type: ignore[union-attr]
        return to_bool(self._evaluate(text, scope, at))

    @staticmethod
    def _status_function(dependency_statuses: Callable[[tuple[Any, ...]], list[str]]) -> Any:
        def status(name: str, args: tuple[Any, ...]) -> bool:
            statuses = dependency_statuses(args)
            if name == "always":
                return True
            if name == "canceled":
                return False
            if name == "succeeded":
                return all(s in OK for s in statuses)
            if name == "failed":
                return any(s in (FAILED, REJECTED) for s in statuses)
            return all(s in (*OK, FAILED, REJECTED) for s in statuses)  # succeededOrFailed

        return status

    # ------------------------------------------------------------------------ stages
    def _stage(self, stage: Stage) -> StageResult:
        started = self.options.clock()
        result = StageResult(stage.name, stage.display_name, SKIPPED, 0.0)
        self.stage_results[stage.name] = result
        self.stage_outputs[stage.name] = {}

        def dependency_statuses(args: tuple[Any, ...]) -> list[str]:
            names = [to_str(a) for a in args] or stage.depends_on
            return [self.stage_results[n].status if n in self.stage_results else SKIPPED for n in names]

        dependencies = {
            name: {"result": _azure_result(self.stage_results[name].status), "outputs": self._stage_outputs(name)}
            for name in stage.depends_on
            if name in self.stage_results
        }
        scope = self._scope(self.pipeline_variables, dependencies)
        scope.status = self._status_function(dependency_statuses)
        scope.where = f"the condition of stage {stage.name}"
        if not self._condition(stage.condition, scope, stage.where):
            result.reason = "condition not met"
            self.emit(
                "stage_skipped", f"stage {stage.name}: skipped (condition not met)", stage=stage.name, status=SKIPPED
            )
            return result
        self.emit("stage_started", f"stage {stage.display_name}", stage=stage.name)
        variables = CaseInsensitive(self.pipeline_variables)
        variables["System.StageName"] = stage.name
        variables["System.StageDisplayName"] = stage.display_name
        self._assign(variables, stage.variables, self._scope(variables, dependencies))
        if not self._authorized(stage, result) or not self._approve(stage, result):
            result.seconds = self.options.clock() - started
            return result
        for job in _ordered(stage.jobs):
            result.jobs.append(self._job(stage, job, variables, result))
        statuses = [job.status for job in result.jobs]
        if FAILED in statuses:
            result.status = FAILED
        elif WITH_ISSUES in statuses:
            result.status = WITH_ISSUES
        elif all(s == SKIPPED for s in statuses):
            result.status = SKIPPED
        else:
            result.status = SUCCEEDED
        result.seconds = self.options.clock() - started
        self.emit(
            "stage_finished",
            f"stage {stage.name}: {result.status} ({result.seconds:.1f}s)",
            stage=stage.name,
            status=result.status,
        )
        return result

    def _stage_outputs(self, stage: str) -> dict[str, str]:
        """`dependencies.<stage>.outputs['<job>.<step>.<var>']` (deployment jobs: '<job>.<job>.<step>.<var>')."""
        return {
            f"{job}.{key}": value
            for job, outputs in self.stage_outputs[stage].items()
            for key, value in outputs.items()
        }

    def _refuse(self, stage: Stage, result: StageResult, reason: str) -> bool:
        result.status = FAILED
        result.reason = reason
        self.result.issues.append(Issue("error", reason, stage.name, "", ""))
        self.emit("issue", f"stage {stage.name}: {reason}", stage=stage.name, status=FAILED)
        for job in stage.jobs:
            result.jobs.append(JobResult(job.name, job.display_name, SKIPPED, 0.0, job.environment, reason=reason))
        return False

    def _authorized(self, stage: Stage, result: StageResult) -> bool:
        """Pipeline permissions on every service connection the stage names, before any job runs."""
        project = self.options.project
        if project is None:
            return True
        for job in stage.jobs:
            for step in job.steps:
                connection = step.inputs.get("awsCredentials")
                if connection in (None, ""):
                    continue
                refusal = project.connection_refusal(job.name, to_str(step.task or step.kind), to_str(connection))
                if refusal is not None:
                    return self._refuse(stage, result, refusal)
        return True

    def _approve(self, stage: Stage, result: StageResult) -> bool:
        environments = sorted({job.environment for job in stage.jobs if job.environment})
        branch = to_str(self.pipeline_variables.get("Build.SourceBranch", ""))
        for environment in environments:
            if self.options.project is not None:
                job_name = next(j.name for j in stage.jobs if j.environment == environment)
                decision = self.options.project.enter_environment(job_name, environment, branch, self.pipeline.extends)
                if decision.created:
                    warning = (
                        f"environment {environment} did not exist and was created on first use without any "
                        "checks (no approval, no branch control): create it with `mlops ado apply`"
                    )
                    self.result.issues.append(Issue("warning", warning, stage.name, job_name, ""))
                    self.emit("issue", f"stage {stage.name}: warning: {warning}", stage=stage.name)
                if decision.refusal is not None:
                    return self._refuse(stage, result, decision.refusal)
                if not decision.approval_required:
                    self.result.approvals.append(Approval(stage.name, environment, True, "no approval check"))
                    continue
            request = ApprovalRequest(
                self.pipeline.file, self.run_id, stage.name, environment, plain(self.pipeline.parameters)
            )
            if self.options.approve is not None:
                approved, by = bool(self.options.approve(request)), "callback"
            elif self.options.auto_approve:
                approved, by = True, "auto-approve"
            else:
                approved, by = False, "none"
            self.result.approvals.append(Approval(stage.name, environment, approved, by))
            verdict = "approved" if approved else "rejected"
            self.emit(
                "approval",
                f"stage {stage.name}: environment {environment} {verdict} ({by})",
                stage=stage.name,
                status=verdict,
            )
            if not approved:
                result.status = REJECTED
                result.reason = f"approval of environment {environment} was rejected" + (
                    " (no approver: pass --auto-approve or answer the prompt)" if by == "none" else ""
                )
                for job in stage.jobs:
                    result.jobs.append(
                        JobResult(
                            job.name, job.display_name, SKIPPED, 0.0, job.environment, reason="stage approval rejected"
                        )
                    )
                return False
        return True

    # ------------------------------------------------------------------------ jobs
    def _job(self, stage: Stage, job: Job, stage_variables: CaseInsensitive, stage_result: StageResult) -> JobResult:
        started = self.options.clock()
        result = JobResult(job.name, job.display_name, SKIPPED, 0.0, job.environment)
        done = {j.name: j for j in stage_result.jobs}

        def dependency_statuses(args: tuple[Any, ...]) -> list[str]:
            names = [to_str(a) for a in args] or job.depends_on
            return [_effective(done[n]) if n in done else SKIPPED for n in names]

        dependencies = {
            name: {"result": _azure_result(_effective(done[name])), "outputs": CaseInsensitive(done[name].outputs)}
            for name in job.depends_on
            if name in done
        }
        stage_dependencies = {
            name: {
                finished.name: {"result": _azure_result(finished.status), "outputs": CaseInsensitive(finished.outputs)}
                for finished in other.jobs
            }
            for name, other in self.stage_results.items()
            if name != stage.name
        }
        scope = self._scope(stage_variables, dependencies, stageDependencies=CaseInsensitive(stage_dependencies))
        scope.status = self._status_function(dependency_statuses)
        scope.where = f"the condition of job {job.name}"
        if not self._condition(job.condition, scope, job.where):
            result.reason = "condition not met"
            self.emit(
                "job_skipped",
                f"job {job.name}: skipped (condition not met)",
                stage=stage.name,
                job=job.name,
                status=SKIPPED,
            )
            return result
        self.emit(
            "job_started",
            f"job {job.display_name}" + (f" (environment {job.environment})" if job.environment else ""),
            stage=stage.name,
            job=job.name,
        )
        variables = CaseInsensitive(stage_variables)
        variables.update(
            {
                "System.JobName": job.name,
                "System.JobDisplayName": job.display_name,
                "Agent.JobName": job.display_name,
                "Agent.JobStatus": "Succeeded",
            }
        )
        if job.environment:
            variables["Environment.Name"] = job.environment
        self._assign(
            variables,
            job.variables,
            self._scope(variables, dependencies, stageDependencies=CaseInsensitive(stage_dependencies)),
        )
        staging = Path(to_str(variables["Build.ArtifactStagingDirectory"]))
        shutil.rmtree(staging, ignore_errors=True)  # a fresh agent per job, as in Azure
        staging.mkdir(parents=True, exist_ok=True)
        runtime = JobRuntime(
            stage.name,
            job.name,
            job.deployment,
            variables,
            self.options.env,
            self.options.sources_dir,
            self.options.work_dir,
            self.options.artifacts_dir,
            self.result.artifacts,
            self.options.service_connections,
            self.options.emit,
            self.result.issues,
            self.result.summaries,
            self.result.test_results,
            self.result.coverage,
        )
        steps = list(job.steps)
        if job.deployment and not any(s.kind == "download" for s in steps):
            steps.insert(0, _implicit_download(job))  # runOnce deploy hooks download every artifact first
        failed = False
        for step in steps:
            outcome, seconds, reason = self._step(step, runtime, failed, job, started)
            label = step.name or step.display_name
            result.steps.append(
                StepResult(step.name, step.display_name, outcome.status, seconds, step.where, outcome.exit_code, reason)
            )
            if outcome.status == FAILED:
                failed = True
                variables["Agent.JobStatus"] = "Failed"
                self.emit(
                    "step_failed",
                    f"step {label} failed: {reason}",
                    stage=stage.name,
                    job=job.name,
                    step=label,
                    status=FAILED,
                )
        statuses = [s.status for s in result.steps]
        result.status = FAILED if failed else WITH_ISSUES if WITH_ISSUES in statuses else SUCCEEDED
        if failed and job.continue_on_error:
            result.status = WITH_ISSUES
            result.reason = "failed, but continueOnError is true"
        result.outputs = dict(runtime.outputs)
        self.stage_outputs[stage.name][job.name] = result.outputs
        result.seconds = self.options.clock() - started
        self.emit(
            "job_finished",
            f"job {job.name}: {result.status} ({result.seconds:.1f}s)",
            stage=stage.name,
            job=job.name,
            status=result.status,
        )
        return result

    def _step(
        self, step: Step, runtime: JobRuntime, failed: bool, job: Job, job_started: float
    ) -> tuple[StepOutcome, float, str | None]:
        label = step.name or step.display_name
        if not step.enabled:
            return StepOutcome(SKIPPED), 0.0, "disabled"
        scope = Scope({"variables": runtime.variables}, where=f"the condition of step {label}")
        scope.status = self._status_function(lambda _args: [FAILED] if failed else [SUCCEEDED])
        if not self._condition(step.condition, scope, step.where):
            self.emit(
                "step_skipped",
                f"step {label}: skipped (condition not met)",
                stage=runtime.stage,
                job=runtime.job,
                step=label,
                status=SKIPPED,
            )
            return StepOutcome(SKIPPED), 0.0, "condition not met"
        if job.timeout_minutes and self.options.clock() - job_started > job.timeout_minutes * 60:
            return StepOutcome(FAILED), 0.0, f"the job exceeded timeoutInMinutes {job.timeout_minutes:g}"
        self.emit("step_started", f"step {label}", stage=runtime.stage, job=runtime.job, step=label)
        started = self.options.clock()
        try:
            outcome = StepRunner(runtime, step).run()
        except PipelineRunError as exc:  # e.g. an unknown service connection: the step fails, the run goes on
            outcome = StepOutcome(FAILED, None, str(exc))
            runtime.issues.append(Issue("error", str(exc), runtime.stage, runtime.job, label))
        seconds = self.options.clock() - started
        if outcome.status == FAILED and step.continue_on_error:
            outcome = StepOutcome(WITH_ISSUES, outcome.exit_code, f"{outcome.reason} (continueOnError)")
        self.emit(
            "step_finished",
            f"step {label}: {outcome.status} ({seconds:.1f}s)",
            stage=runtime.stage,
            job=runtime.job,
            step=label,
            status=outcome.status,
        )
        return outcome, seconds, outcome.reason


def _implicit_download(job: Job) -> Step:
    file, line = job.where.rsplit(":", 1)
    body = LDict(file, int(line))
    body["download"] = "current"
    return Step("download", body, "Download pipeline artifacts", None, "succeeded()", False, True, {}, None)


def _effective(job: JobResult) -> str:
    return job.status


def _azure_result(status: str) -> str:
    """The values `dependencies.X.result` has in Azure."""
    return {
        SUCCEEDED: "Succeeded",
        WITH_ISSUES: "SucceededWithIssues",
        FAILED: "Failed",
        SKIPPED: "Skipped",
        REJECTED: "Failed",
    }.get(status, status)


def _ordered(items: list[Any]) -> list[Any]:
    """Dependency order; among the ready ones, the declared order (the model rejects cycles)."""
    remaining = list(items)
    done: set[str] = set()
    ordered: list[Any] = []
    while remaining:
        ready = next(item for item in remaining if all(d in done for d in item.depends_on))
        ordered.append(ready)
        done.add(ready.name)
        remaining.remove(ready)
    return ordered


__all__ = [
    "ApprovalRequest",
    "PipelineError",
    "RunEvent",
    "RunResult",
    "ServiceConnections",
    "no_service_connections",
    "run_pipeline",
    "static_service_connections",
]
