"""`mlops pipelines validate` against mlops.yaml's identities: every service connection and environment named
exists, each pipeline uses only what is permitted to it, and a stage's connection only in its deployment job.

On the old code every file below validated: connection and environment names were not checked at all, so a
typo (auto-created environment without its approval) or the prod connection in the build pipeline passed.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

from mlops.core.config import Config, load_config
from mlops.core.identities import PIPELINE_FILES, Identities, identities
from mlops.infra.templates import load_template, template_path
from mlops.pipelines.model import load_pipeline
from mlops.pipelines.validate import identity_problems, pipeline_key, validate_files

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def config() -> Config:
    return load_config(REPO_ROOT / "mlops.yaml", environ={})


@pytest.fixture(scope="module")
def who(config: Config) -> Identities:
    return identities(config)


def pipeline(root: Path, name: str, text: str) -> Path:
    path = root / "azure-pipelines" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip())
    return path


def problems(root: Path, path: Path, who: Identities) -> list[str]:
    return [str(p) for p in validate_files([path], root=root, identities=who)]


def test_our_pipelines_use_exactly_the_configured_identities(who: Identities) -> None:
    local = identities(load_config(REPO_ROOT / "mlops.yaml", profile="local", environ={}))
    parameters = {"useCase": "g", "modelPackageArn": "arn", "modelPackageGroup": "g", "modelPackageVersion": "1"}
    used: set[str] = set()
    for key, file in PIPELINE_FILES.items():
        given = {"deploy": parameters, "rollback": {"useCase": "breast-cancer", "reason": "a test"}}.get(key, {})
        compiled = load_pipeline(REPO_ROOT / file, given, root=REPO_ROOT)
        assert pipeline_key(file) == key
        assert identity_problems(compiled, file, who) == [], file
        assert identity_problems(compiled, file, local) == [], file
        jobs = [job for stage in compiled.stages for job in stage.jobs]
        used |= {
            str(step.inputs["awsCredentials"]) for job in jobs for step in job.steps if "awsCredentials" in step.inputs
        }
        used |= {job.environment for job in jobs if job.environment}
    # every configured connection and environment is the one some job of our pipelines uses: none is left over
    assert used == {c.name for c in who.connections} | {e.name for e in who.environments}


def test_a_pipeline_other_than_model_deploy_naming_the_prod_connection_is_refused(
    tmp_path: Path, who: Identities
) -> None:
    path = pipeline(
        tmp_path,
        "model-build.yml",
        """
        steps:
          - task: AWSShellScript@1
            inputs:
              awsCredentials: aws-build
              scriptType: inline
              inlineScript: mlops build run
          - task: AWSShellScript@1
            inputs:
              awsCredentials: aws-deploy-prod
              scriptType: inline
              inlineScript: mlops registry list
        """,
    )
    listed = problems(tmp_path, path, who)
    (found,) = [p for p in listed if "not permitted" in p]
    assert found.startswith("azure-pipelines/model-build.yml:7:"), found  # the step
    assert "'aws-deploy-prod' (deploy-prod) is not permitted to the build pipeline" in found
    assert "it may use ['aws-build']" in found


def test_a_misnamed_connection_or_environment_names_the_expected_ones(tmp_path: Path, who: Identities) -> None:
    path = pipeline(
        tmp_path,
        "model-deploy.yml",
        """
        stages:
          - stage: Prod
            jobs:
              - deployment: Deploy
                environment: prod
                strategy:
                  runOnce:
                    deploy:
                      steps:
                        - task: AWSShellScript@1
                          inputs:
                            awsCredentials: aws-prod
                            scriptType: inline
                            inlineScript: mlops registry list
        """,
    )
    found = problems(tmp_path, path, who)
    assert len(found) == 2, found
    assert found[0].startswith("azure-pipelines/model-deploy.yml:4:")
    assert "environment 'prod' of job 'Deploy' is not one of mlops.yaml's environments" in found[0]
    assert "expected one of ['mlops-prod', 'mlops-staging']" in found[0]
    assert found[1].startswith("azure-pipelines/model-deploy.yml:10:")
    assert "service connection 'aws-prod' is not one of mlops.yaml's connections" in found[1]
    assert "['aws-deploy-prod', 'aws-deploy-staging', 'aws-registry-read']" in found[1]


def test_a_stage_connection_works_only_in_the_deployment_job_of_its_environment(
    tmp_path: Path, who: Identities
) -> None:
    path = pipeline(
        tmp_path,
        "model-deploy.yml",
        """
        stages:
          - stage: Smoke
            jobs:
              - job: Smoke
                steps:
                  - task: AWSShellScript@1
                    inputs:
                      awsCredentials: aws-deploy-prod
                      scriptType: inline
                      inlineScript: mlops test --stage prod
          - stage: Mixed
            jobs:
              - deployment: Deploy
                environment: mlops-staging
                strategy:
                  runOnce:
                    deploy:
                      steps:
                        - task: AWSShellScript@1
                          inputs:
                            awsCredentials: aws-deploy-prod
                            scriptType: inline
                            inlineScript: mlops test --stage prod
        """,
    )
    found = [p for p in problems(tmp_path, path, who) if "works only in a deployment job" in p]
    assert len(found) == 2, found
    assert "job 'Smoke' of stage 'Smoke' is not a deployment job" in found[0]
    assert "environment 'mlops-prod'; job 'Deploy' of stage 'Mixed' is on 'mlops-staging'" in found[1]


def test_the_infrastructure_environments_belong_to_the_infrastructure_pipeline(tmp_path: Path, who: Identities) -> None:
    path = pipeline(
        tmp_path,
        "model-deploy.yml",
        """
        stages:
          - stage: Infra
            jobs:
              - deployment: Stack
                environment: mlops-infra-prod
                strategy:
                  runOnce:
                    deploy:
                      steps:
                        - task: AWSShellScript@1
                          inputs:
                            awsCredentials: aws-infra-prod
                            scriptType: inline
                            inlineScript: mlops infra deploy --account prod --dry-run
        """,
    )
    found = problems(tmp_path, path, who)
    assert any("environment 'mlops-infra-prod' is not for the deploy pipeline" in p for p in found), found
    assert any("'aws-infra-prod' (infra-prod) is not permitted to the deploy pipeline" in p for p in found), found


def test_each_connections_role_allows_the_session_its_pipeline_asks_for(config: Config, who: Identities) -> None:
    """The AWS Toolkit asks for `aws.rolecredential.maxduration`; AWS refuses more than the role's
    MaxSessionDuration (default 3600 s), so the step would get no credentials at all."""
    templates = {
        "automation": load_template(template_path("automation")),
        "staging": load_template(template_path("staging")),
        "access": load_template(template_path("staging", access=True)),
    }

    def max_session(template: dict[str, Any], role_name: str) -> int:
        parameters = template["Parameters"]
        for resource in template["Resources"].values():
            properties = resource.get("Properties") or {}
            named = properties.get("RoleName")
            is_it = isinstance(named, dict) and parameters[named["Ref"]].get("Default") == role_name
            if resource["Type"] == "AWS::IAM::Role" and is_it:
                duration = properties.get("MaxSessionDuration", 3600)
                if isinstance(duration, dict):
                    duration = parameters[duration["Ref"]]["Default"]
                return int(duration)
        raise AssertionError(f"no role {role_name} in the template")

    for key, file in PIPELINE_FILES.items():
        parameters = {"useCase": "g", "modelPackageArn": "arn", "modelPackageGroup": "g", "modelPackageVersion": "1"}
        given = {"deploy": parameters, "rollback": {"useCase": "breast-cancer", "reason": "a test"}}.get(key, {})
        compiled = load_pipeline(REPO_ROOT / file, given, root=REPO_ROOT)
        asked = int({v.name: v.value for v in compiled.variables}.get("aws.rolecredential.maxduration", 900))
        for connection in who.for_pipeline(key):
            kind = "access" if connection.purpose.startswith("infra-") else connection.account
            template = templates["staging" if kind == "prod" else kind]
            assert max_session(template, connection.role_name) >= asked, (file, connection.name, asked)
