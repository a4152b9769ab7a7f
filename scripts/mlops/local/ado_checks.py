"""The fake Azure DevOps project as the local runner's `ProjectChecks` and approver.

`FakeProjectChecks` answers the runner from the project's state (what `mlops ado apply` configured);
`fake_approver` is an `Approver` whose decisions go through the fake's approvals API: it opens a pending
approval on the environment's approval check, hands it to `decide` (a person at a prompt, a test, or the
demo's auto-approval, each answering through `PATCH {project}/_apis/pipelines/approvals`), and the stage waits
until it is approved, rejected, or timed out after the check's timeout.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from mlops.core.errors import PipelineRunError
from mlops.local.fake_ado_project import ProjectStore
from mlops.pipelines.checks import EnvironmentDecision
from mlops.pipelines.model import Extends
from mlops.pipelines.results import ApprovalRequest, Approver


class FakeProjectChecks:
    def __init__(self, store: ProjectStore, pipeline_file: str | Path) -> None:
        self.store = store
        pipeline = store.pipeline_for_file(str(pipeline_file))
        if pipeline is None:
            raise PipelineRunError(
                f"pipeline file {pipeline_file} is not a pipeline of project {store.project}",
                hint="create the project's pipelines with `mlops ado apply`",
            )
        self.pipeline_id = int(pipeline["id"])

    def connection_refusal(self, job: str, step: str, connection: str) -> str | None:
        return self.store.connection_refusal(self.pipeline_id, job, step, connection)

    def enter_environment(
        self, job: str, environment: str, branch: str, extends: Extends | None
    ) -> EnvironmentDecision:
        template = None
        if extends is not None:
            # "self" is the repository the pipeline's YAML lives in (the project's, for ours).
            pipeline = next(p for p in self.store.state["pipelines"] if p["id"] == self.pipeline_id)
            repository_id = pipeline["configuration"]["repository"]["id"]
            own = next((r for r in self.store.state["repositories"] if r["id"] == repository_id), None)
            repository = (
                f"{self.store.project}/{own['name']}" if extends.repository == "self" and own else extends.repository
            )
            template = (repository, extends.path)
        gate = self.store.environment_gate(self.pipeline_id, job, environment, branch, template)
        return EnvironmentDecision(gate.refusal, gate.created, gate.approval is not None)

    def variable_group(self, name: str) -> Mapping[str, str] | str:
        return self.store.variable_group_values(self.pipeline_id, name)


def fake_approver(
    store: ProjectStore,
    decide: Callable[[dict[str, Any]], None],
    *,
    seconds_per_minute: float = 60.0,
) -> Approver:
    """An approver that waits on the fake's approvals API; `decide` runs in its own thread."""

    def approve(request: ApprovalRequest) -> bool:
        environment = store.environment(request.environment)
        check = None
        if environment is not None:
            check = next(
                (c for c in store.checks_on("environment", environment["id"]) if c["type"]["name"] == "Approval"),
                None,
            )
        if check is None:  # the runner asks only for environments with an approval check
            raise PipelineRunError(f"environment {request.environment} has no approval check to wait on")
        approval = store.open_approval(request.run_id, request.stage, request.environment, check)
        failures: list[BaseException] = []

        def run_decide() -> None:
            try:
                decide(dict(approval))
            except BaseException as exc:  # surfaced below: the stage fails with the approver's error
                failures.append(exc)

        worker = threading.Thread(target=run_decide, name=f"approval-{approval['id']}", daemon=True)
        worker.start()
        status = store.wait_approval(approval["id"], float(check["timeout"]) * seconds_per_minute)
        worker.join(timeout=1.0)
        if failures and status == "timedOut":
            raise PipelineRunError(
                f"the approver of {request.environment} failed: {failures[0]}",
                hint="answer the approval through the approvals API",
            ) from failures[0]
        return status == "approved"

    return approve


def webhook_pipelines(store: ProjectStore, sources_dir: Path, name: str, payload: Any) -> list[tuple[str, str]]:
    """(pipeline file, webhook alias) of each project pipeline that a delivery to incoming webhook `name` starts.

    As in Azure DevOps: a pipeline whose YAML (on its default branch) declares `resources.webhooks` with that
    connection, and whose `filters` all match the payload.
    """
    from mlops.pipelines.loader import LDict, load_yaml
    from mlops.pipelines.resources import parse_resources

    started = []
    for pipeline in store.state["pipelines"]:
        relative = str(pipeline["configuration"]["path"]).lstrip("/")
        path = sources_dir / relative
        if not path.is_file():
            continue
        document = load_yaml(path, display=relative)
        if not isinstance(document, LDict):
            continue
        for alias, webhook in parse_resources(document).webhooks.items():
            if webhook.connection.lower() == name.lower() and webhook.matches(payload):
                started.append((relative, alias))
    return started
