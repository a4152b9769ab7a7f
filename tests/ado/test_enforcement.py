"""The local runner enforces what `mlops ado apply` configured in the fake: pipeline permissions on connections,
approvals answered through the approvals API, branch control, and environments auto-created without checks."""

from __future__ import annotations

import base64
import copy
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from msrest.authentication import BasicAuthentication

from mlops.ado.desired import desired
from mlops.ado.plan import make_plan
from mlops.ado.project import AdoProject
from mlops.core.config import load_config
from mlops.local.ado_checks import FakeProjectChecks, fake_approver
from mlops.local.fake_ado import FakeAzureDevOps
from mlops.pipelines.runner import run_pipeline

from .conftest import BRIDGE, PAT


@pytest.fixture(scope="module")
def repo_root_module() -> Path:
    return Path(__file__).resolve().parents[2]


DEPLOY = "azure-pipelines/model-deploy.yml"


@pytest.fixture(scope="module")
def _applied_once(repo_root_module: Path) -> Iterator[tuple[FakeAzureDevOps, dict[str, Any]]]:
    """One organization set up by `mlops ado apply` for the module; each test starts from a copy of its state."""
    config = load_config(
        repo_root_module / "mlops.yaml",
        profile="local",
        environ={"MLOPS__AZURE_DEVOPS__SETUP__BRIDGE_IDENTITY": BRIDGE},
    )
    want = desired(config)
    with FakeAzureDevOps("local-org", pat=PAT, project="mlops", identities=(want.approvers, BRIDGE)) as server:
        ado = AdoProject(server.org_url, "mlops", BasicAuthentication("", PAT))
        current = ado.read(want)
        ado.apply(want, make_plan(want, current), current, lambda _line: None)
        assert server.project is not None
        yield server, copy.deepcopy(server.project.state)


@pytest.fixture
def applied(_applied_once: tuple[FakeAzureDevOps, dict[str, Any]]) -> FakeAzureDevOps:
    server, state = _applied_once
    assert server.project is not None
    server.project.state = copy.deepcopy(state)
    return server


def _pipeline(root: Path, body: str) -> Path:
    path = root / DEPLOY
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(body)
    return path


def _deployment(environment: str, connection: str | None = None) -> str:
    step = (
        f"""                - task: AWSShellScript@1
                  inputs:
                    awsCredentials: {connection}
                    regionName: us-east-1
                    scriptType: inline
                    inlineScript: echo deployed"""
        if connection
        else "                - script: echo deployed"
    )
    return f"""stages:
  - stage: Deploy
    jobs:
      - deployment: Deploy
        environment: {environment}
        strategy:
          runOnce:
            deploy:
              steps:
{step}
"""


def _run(fake: FakeAzureDevOps, root: Path, body: str, **kwargs: Any) -> Any:
    store = fake.project
    assert store is not None
    asked: list[str] = []

    def connections(name: str) -> dict[str, str]:
        asked.append(name)
        return {}

    kwargs.setdefault("variables", {"Build.SourceBranch": "refs/heads/main"})
    result = run_pipeline(
        _pipeline(root, body),
        sources_dir=root,
        work_dir=root / "work",
        service_connections=connections,
        project=FakeProjectChecks(store, DEPLOY),
        run_id=7,
        **kwargs,
    )
    return result, asked


def _answer(fake: FakeAzureDevOps, status: str) -> Any:
    """A person answering in Azure DevOps: Approvals - Update through the fake's REST API."""

    def decide(approval: dict[str, Any]) -> None:
        request = urllib.request.Request(
            f"{fake.org_url}/mlops/_apis/pipelines/approvals?api-version=7.1-preview.1",
            data=json.dumps([{"approvalId": approval["id"], "status": status, "comment": "by the test"}]).encode(),
            method="PATCH",
            headers={
                "Content-Type": "application/json",
                "Authorization": "Basic " + base64.b64encode(f":{PAT}".encode()).decode(),
            },
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    return decide


def test_a_connection_the_pipeline_is_not_authorised_for_fails_the_stage_before_any_credentials(
    applied: FakeAzureDevOps, tmp_path: Path
) -> None:
    result, asked = _run(applied, tmp_path, _deployment("mlops-staging", connection="aws-build"))

    stage = result.stage("Deploy")
    assert stage.status == "failed" and asked == []  # refused before the step asked for credentials
    assert stage.reason == (
        "Job Deploy: Step AWSShellScript@1 input awsCredentials references service connection aws-build which "
        "could not be found. The service connection does not exist, has been disabled or has not been authorized "
        "for use. For authorization details, refer to https://aka.ms/yamlauthz."
    )
    assert [j.status for j in stage.jobs] == ["skipped"]

    allowed, asked = _run(applied, tmp_path, _deployment("mlops-staging", connection="aws-deploy-staging"))
    assert allowed.status == "succeeded" and asked == ["aws-deploy-staging"]
    assert allowed.approvals[0].by == "no approval check"  # staging has none: nobody is asked


@pytest.mark.parametrize(("answer", "expected"), [("approved", "succeeded"), ("rejected", "rejected")])
def test_the_prod_approval_waits_for_the_approvals_api(
    applied: FakeAzureDevOps, tmp_path: Path, answer: str, expected: str
) -> None:
    store = applied.project
    assert store is not None
    approver = fake_approver(store, _answer(applied, answer))

    result, _ = _run(applied, tmp_path, _deployment("mlops-prod"), approve=approver)

    assert result.stage("Deploy").status == expected
    assert [a["status"] for a in store.state["approvals"]] == [answer]
    assert store.state["approvals"][0]["steps"][0]["assignedApprover"]["displayName"] == "[mlops]\\MLOps Approvers"
    ran = [s.status for j in result.stage("Deploy").jobs for s in j.steps]
    assert (set(ran) == {"succeeded"}) if answer == "approved" else ran == []


def test_branch_control_fails_a_run_from_another_branch_before_asking_anyone(
    applied: FakeAzureDevOps, tmp_path: Path
) -> None:
    store = applied.project
    assert store is not None
    result, _ = _run(
        applied,
        tmp_path,
        _deployment("mlops-prod"),
        variables={"Build.SourceBranch": "refs/heads/feature/x"},
        approve=fake_approver(store, _answer(applied, "approved")),
    )

    stage = result.stage("Deploy")
    assert stage.status == "failed" and "refs/heads/feature/x is not one of the allowed branches" in str(stage.reason)
    assert store.state["approvals"] == []


def test_an_unknown_environment_is_auto_created_without_checks_with_a_warning(
    applied: FakeAzureDevOps, tmp_path: Path
) -> None:
    store = applied.project
    assert store is not None
    result, _ = _run(applied, tmp_path, _deployment("mlops-prd"))  # a typo of mlops-prod

    created = store.environment("mlops-prd")
    assert result.status == "succeeded"  # as in Azure DevOps: no approval protects the typo
    assert created is not None and store.checks_on("environment", created["id"]) == []
    warnings = [i.message for i in result.issues if i.type == "warning"]
    assert (
        len(warnings) == 1 and "mlops-prd did not exist and was created on first use without any checks" in warnings[0]
    )


def test_variable_groups_come_from_the_library_for_authorised_pipelines_only(
    applied: FakeAzureDevOps, tmp_path: Path
) -> None:
    from mlops.core.errors import PipelineRunError

    body = "variables:\n  - group: mlops\nsteps:\n  - script: echo region=$(MLOPS_REGION)\n"
    events: list[Any] = []
    result, _ = _run(applied, tmp_path, body, progress=events.append)
    assert result.status == "succeeded"
    assert "region=us-east-1" in [e.text for e in events if e.kind == "output"]

    store = applied.project
    assert store is not None
    group = store.state["variablegroups"][0]
    store.state["permissions"][f"variablegroup/{group['id']}"]["pipelines"] = []  # authorisation revoked
    with pytest.raises(PipelineRunError, match=r"Variable group mlops could not be found.*not been authorized"):
        _run(applied, tmp_path, body)


def test_a_required_template_check_refuses_a_pipeline_that_does_not_extend_it(
    applied: FakeAzureDevOps, tmp_path: Path
) -> None:
    store = applied.project
    assert store is not None
    staging = store.environment("mlops-staging")
    assert staging is not None
    store.state["checks"].append(
        {
            "id": 9999,
            "type": {"id": "4020e66e-b0f3-47e1-bc88-48f3cc59b5f3"},
            "timeout": 1440,
            "resource": {"type": "environment", "id": str(staging["id"])},
            "settings": {
                "extendsChecks": [
                    {
                        "repositoryType": "git",
                        "repositoryName": "mlops/mlops",
                        "repositoryRef": "refs/heads/main",
                        "templatePath": "templates/secure.yml",
                    }
                ]
            },
        }
    )
    plain, _ = _run(applied, tmp_path, _deployment("mlops-staging"))
    assert plain.stage("Deploy").status == "failed"
    assert plain.stage("Deploy").reason == (
        "Required template check on environment mlops-staging failed: the pipeline extends no template, it must "
        "extend templates/secure.yml@mlops/mlops"
    )

    template = "parameters:\n  - name: stages\n    type: stageList\nstages: ${{ parameters.stages }}\n"
    (tmp_path / "templates").mkdir()
    (tmp_path / "templates" / "secure.yml").write_text(template)
    extending = """extends:
  template: /templates/secure.yml
  parameters:
    stages:
      - stage: Deploy
        jobs:
          - deployment: Deploy
            environment: mlops-staging
            strategy:
              runOnce:
                deploy:
                  steps:
                    - script: echo deployed
"""
    result, _ = _run(applied, tmp_path, extending)
    assert result.stage("Deploy").status == "succeeded", result.stage("Deploy").reason
