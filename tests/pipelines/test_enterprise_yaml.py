"""The YAML enterprises write: extends, resources (repositories, pipelines, webhooks), templates from another
repository mapped to a local checkout, and the expression functions those templates use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlops.core.errors import PipelineError
from mlops.pipelines.model import load_pipeline
from mlops.pipelines.results import RunEvent

from .conftest import write

CENTRAL_TEMPLATE = """
parameters:
  - name: stages
    type: stageList
    default: []
  - name: team
    type: string
stages:
  - stage: Policy
    jobs:
      - job: Scan
        steps:
          - script: echo "scan for ${{ parameters.team }}"
          - template: steps/extra.yml
  - ${{ each stage in parameters.stages }}:
    - ${{ stage }}
"""

APP = """
resources:
  repositories:
    - repository: central
      type: git
      name: platform/central
      ref: refs/tags/v1
  pipelines:
    - pipeline: build
      source: breast-cancer-build
  webhooks:
    - webhook: approval
      connection: mlops-approvals
      filters:
        - path: kind
          value: approved
parameters:
  - name: who
    type: string
    default: a,b
variables:
  - name: greeting
    value: hello
extends:
  template: pipelines/secure.yml@central
  parameters:
    team: ml
    stages:
      - stage: Deploy
        jobs:
          - job: D
            steps:
              - script: >-
                  echo "arn=${{ parameters.approval.arn }} who=${{ join('+', split(parameters.who, ',')) }}
                  src=$(resources.pipeline.build.pipelineName) ref=$(resources.repositories.central.ref) $(greeting)
                  ${{ iif(xor(eq(parameters.approval.kind, 'approved'), false), 'go', 'stop') }} [${{ trim('  t ') }}]"
"""


@pytest.fixture
def central(tmp_path: Path) -> Path:
    checkout = tmp_path / "central"
    write(checkout, "pipelines/secure.yml", CENTRAL_TEMPLATE)
    write(checkout, "pipelines/steps/extra.yml", "steps:\n  - script: echo extra-from-central\n")
    return checkout


def test_a_pipeline_extending_a_template_of_another_repository_runs_with_its_resources(
    repo: Path, central: Path, run: Any
) -> None:
    write(repo, "azure-pipelines/app.yml", APP)
    events: list[RunEvent] = []

    result = run(
        "azure-pipelines/app.yml",
        repositories={"central": central},
        webhook_payloads={"approval": {"arn": "arn:x", "kind": "approved"}},
        events=events,
    )

    assert result.status == "succeeded", [s.reason for s in result.stages]
    assert [s.name for s in result.stages] == ["Policy", "Deploy"]  # the template's stage, then the inserted one
    output = [e.text for e in events if e.kind == "output"]
    assert output[:2] == ["scan for ml", "extra-from-central"]  # a relative template inside the other repository
    assert output[2] == "arn=arn:x who=a+b src=breast-cancer-build ref=refs/tags/v1 hello go [t]"
    pipeline = load_pipeline(repo / "azure-pipelines/app.yml", root=repo, repositories={"central": central})
    assert pipeline.extends is not None
    assert (pipeline.extends.repository, pipeline.extends.path) == ("platform/central", "pipelines/secure.yml")
    webhook = pipeline.resources.webhooks["approval"]
    assert webhook.matches({"kind": "approved"}) and not webhook.matches({"kind": "rejected"})


@pytest.mark.parametrize(
    ("text", "repositories", "expected"),
    [
        (
            APP,
            {},
            r"(?s)app\.yml:\d+: repository 'central' \(platform/central\) has no local checkout.*--repository central",
        ),
        (
            APP.replace("secure.yml@central", "secure.yml@other"),
            None,
            r"app\.yml:\d+: template repository 'other' is not declared under resources.repositories",
        ),
        (
            APP + "stages: []\n",
            None,
            r"app\.yml:\d+: a pipeline that uses `extends:` cannot also have `stages:`",
        ),
        (
            "resources:\n  packages: []\nsteps: []\n",
            None,
            r"app\.yml:2: `resources.packages` is not supported by the local runner",
        ),
        (
            "resources:\n  webhooks:\n    - webhook: w\n      connection: c\n      secret: x\nsteps: []\n",
            None,
            r"app\.yml:5: unsupported key 'secret' in resources.webhooks entry 'w'",
        ),
    ],
)
def test_what_cannot_be_resolved_is_a_file_line_error(
    repo: Path, central: Path, text: str, repositories: dict[str, Path] | None, expected: str
) -> None:
    write(repo, "azure-pipelines/app.yml", text)
    with pytest.raises(PipelineError, match=expected):
        load_pipeline(
            repo / "azure-pipelines/app.yml",
            root=repo,
            repositories={"central": central} if repositories is None else repositories,
        )


def test_validate_warns_about_an_environment_the_project_does_not_have(repo: Path) -> None:
    from mlops.pipelines.validate import validate_files

    text = """
stages:
  - stage: Deploy
    jobs:
      - deployment: Deploy
        environment: mlops-prd
        strategy:
          runOnce:
            deploy:
              steps:
                - script: echo deployed
"""
    path = write(repo, "azure-pipelines/typo.yml", text)

    found = validate_files([path], root=repo, environments=["mlops-staging", "mlops-prod"])

    assert [(p.severity, p.line) for p in found] == [("warning", 4)]
    assert "environment 'mlops-prd' of job 'Deploy' is not one of the project's environments" in found[0].message
    assert "create it on first use without any checks" in found[0].message
    assert validate_files([path], root=repo, environments=["mlops-prd"]) == []
