"""Our three pipelines compile in the local runner (parameters, templates, expressions resolved)
and pass `mlops pipelines validate`; the validator catches what it promises to catch."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlops.cli import main
from mlops.pipelines.model import load_pipeline
from mlops.pipelines.validate import default_files, validate_files
from tests.conftest import REPO_ROOT
from tests.pipelines.conftest import write

PIPELINES = REPO_ROOT / "azure-pipelines"
DEPLOY_PARAMETERS = {
    "useCase": "mlops-demo",
    "modelPackageArn": "arn:aws:sagemaker:eu-west-1:111111111111:model-package/mlops-demo/3",
    "modelPackageGroup": "mlops-demo",
    "modelPackageVersion": "3",
    "eventId": "e-1",
}


def _shape(path: Path, parameters: dict[str, str] | None = None) -> list[tuple[str, list[str], list[str]]]:
    pipeline = load_pipeline(path, parameters, root=REPO_ROOT)
    return [
        (s.name, s.depends_on, [f"{'deployment' if j.deployment else 'job'}:{j.name}:{j.environment}" for j in s.jobs])
        for s in pipeline.stages
    ]


def test_model_deploy_compiles_to_the_promised_stages() -> None:
    shape = _shape(PIPELINES / "model-deploy.yml", DEPLOY_PARAMETERS)
    assert shape == [
        ("Verify", [], ["job:Verify:None"]),
        ("DeployStaging", ["Verify"], ["deployment:Deploy:mlops-staging"]),
        ("TestStaging", ["DeployStaging"], ["deployment:EndpointTests:mlops-staging"]),
        ("DeployProd", ["TestStaging"], ["deployment:Deploy:mlops-prod"]),
        ("Summary", ["Verify", "DeployStaging", "TestStaging", "DeployProd"], ["job:Summary:None"]),
    ]
    pipeline = load_pipeline(PIPELINES / "model-deploy.yml", DEPLOY_PARAMETERS, root=REPO_ROOT)
    prod = pipeline.stages[3].jobs[0]
    apply = next(step for step in prod.steps if step.name == "apply")
    assert apply.inputs["awsCredentials"] == "aws-deploy-prod"  # the prod role itself, only in this gated job
    # the smoke tests run in the same gated job, after the deploy: no other job ever holds prod credentials
    smoke = next(step for step in prod.steps if step.name == "smoke")
    assert prod.steps.index(smoke) > prod.steps.index(apply) and smoke.inputs["awsCredentials"] == "aws-deploy-prod"
    assert "mlops test --stage prod" in smoke.inputs["inlineScript"]
    uses = {
        (stage.name, str(step.inputs["awsCredentials"]))
        for stage in pipeline.stages
        for job in stage.jobs
        for step in job.steps
        if "awsCredentials" in step.inputs
    }
    assert uses == {
        ("Verify", "aws-registry-read"),
        ("DeployStaging", "aws-deploy-staging"),
        ("TestStaging", "aws-deploy-staging"),
        ("DeployProd", "aws-deploy-prod"),
    }
    assert apply.env["MODEL_PACKAGE_ARN"] == DEPLOY_PARAMETERS["modelPackageArn"]  # never pasted into the script
    assert "--stage prod" in apply.inputs["inlineScript"]
    assert [step.kind for step in prod.steps][:1] == ["checkout"]
    assert {v.name: v.value for v in pipeline.variables}["aws.rolecredential.maxduration"] == "7200"


def test_model_deploy_requires_the_bridge_parameters() -> None:
    with pytest.raises(Exception, match="runtime parameter 'useCase' is required"):
        load_pipeline(PIPELINES / "model-deploy.yml", {}, root=REPO_ROOT)
    with pytest.raises(Exception, match="runtime parameter 'modelPackageArn' is required"):
        load_pipeline(PIPELINES / "model-deploy.yml", {"useCase": "breast-cancer"}, root=REPO_ROOT)


def test_model_build_compiles_with_and_without_checks() -> None:
    full = load_pipeline(PIPELINES / "model-build.yml", {}, root=REPO_ROOT)
    assert [s.name for s in full.stages] == ["Validate", "Build", "BranchBuild"]
    names = [step.display_name for step in full.stages[0].jobs[0].steps]
    assert any("make test" in name for name in names)
    tasks = {step.task for stage in full.stages for job in stage.jobs for step in job.steps}
    assert {"PublishTestResults@2", "PublishCodeCoverageResults@2", "AWSShellScript@1"} <= tasks
    quick = load_pipeline(PIPELINES / "model-build.yml", {"runChecks": "false"}, root=REPO_ROOT)
    assert not any("make test" in step.display_name for step in quick.stages[0].jobs[0].steps)


def test_model_build_day2_stages() -> None:
    """Pull requests build their branch pipeline; main cleans up gone branches; a retrain says why."""
    plain = load_pipeline(PIPELINES / "model-build.yml", {}, root=REPO_ROOT)
    branch = next(s for s in plain.stages if s.name == "BranchBuild")
    assert "'PullRequest'" in str(branch.condition)
    [upsert] = [step for job in branch.jobs for step in job.steps if step.task == "AWSShellScript@1"]
    assert (
        'mlops --use-case "$use_case" build upsert --branch "$(System.PullRequest.SourceBranch)"'
        in (upsert.inputs["inlineScript"])
    )
    build = next(s for s in plain.stages if s.name == "Build")
    cleanup = next(job for job in build.jobs if job.name == "CleanupBranches")
    assert "'IndividualCI', 'BatchedCI', 'Schedule'" in str(cleanup.condition)
    assert any("build cleanup --stale" in str(step.inputs.get("inlineScript", "")) for step in cleanup.steps)
    assert not any("Retrain requested" in step.display_name for job in build.jobs for step in job.steps)
    retrain = load_pipeline(PIPELINES / "model-build.yml", {"retrainReason": "alarm x went into ALARM"}, root=REPO_ROOT)
    build = next(s for s in retrain.stages if s.name == "Build")
    assert any("Retrain requested" in step.display_name for job in build.jobs for step in job.steps)
    raw = (PIPELINES / "model-build.yml").read_text()
    assert "schedules:" in raw and 'cron: "0 3 * * 1"' in raw


def test_model_rollback_is_gated_like_prod() -> None:
    from mlops.core.config import load_config
    from mlops.core.identities import PIPELINE_FILES, identities

    assert PIPELINE_FILES["rollback"] == "azure-pipelines/model-rollback.yml"
    pipeline = load_pipeline(
        PIPELINES / "model-rollback.yml", {"useCase": "breast-cancer", "reason": "bad canary"}, root=REPO_ROOT
    )
    [stage] = pipeline.stages
    [job] = stage.jobs
    who = identities(load_config(REPO_ROOT / "mlops.yaml", environ={}))
    prod = who.connection("deploy-prod")
    assert job.environment == prod.environment == "mlops-prod"
    scripts = [step for step in job.steps if step.task == "AWSShellScript@1"]
    assert {step.inputs["awsCredentials"] for step in scripts} == {prod.name}
    assert "rollback" in prod.pipelines and "rollback" in (who.environment("mlops-prod") or prod).pipelines
    assert "mlops deploy rollback --stage prod --dry-run" in scripts[0].inputs["inlineScript"]
    assert any(step.task == "PublishPipelineArtifact@1" for step in job.steps)


def test_infrastructure_expands_one_stage_per_account() -> None:
    shape = _shape(PIPELINES / "infrastructure.yml")
    assert [name for name, _, _ in shape] == ["Lint", "Deploy_automation", "Deploy_staging", "Deploy_prod"]
    assert shape[3] == ("Deploy_prod", ["Deploy_staging"], ["deployment:Stack:mlops-infra-prod"])
    dry = load_pipeline(PIPELINES / "infrastructure.yml", {"dryRun": "true", "accounts": "[staging]"}, root=REPO_ROOT)
    assert [s.name for s in dry.stages] == ["Lint", "Deploy_staging"]
    assert [st.display_name for st in dry.stages[1].jobs[0].steps][-1] == "Show the change set"


def test_validate_passes_on_our_files() -> None:
    files = default_files(REPO_ROOT)
    assert len(files) >= 6
    assert [str(p) for p in validate_files(files, root=REPO_ROOT)] == []


def test_validate_cli_exit_codes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(REPO_ROOT)
    assert main(["pipelines", "validate"]) == 0
    bad = write(tmp_path, "bad.yml", "steps:\n  - script: echo\n    displayNme: x\n")
    assert main(["pipelines", "validate", str(bad)]) == 1
    assert "bad.yml:3: unknown key 'displayNme'" in capsys.readouterr().err


def _copy_with(tmp_path: Path, name: str, old: str, new: str) -> Path:
    """A copy of our repo's pipelines with one planted change; returns the changed file."""
    target = tmp_path / "azure-pipelines"
    shutil.copytree(PIPELINES, target)
    path = target / name
    text = path.read_text()
    assert old in text, f"{old!r} not in {name}"
    path.write_text(text.replace(old, new, 1))
    return path


def _problems(tmp_path: Path, path: Path) -> list[str]:
    return [str(p) for p in validate_files([path], root=tmp_path)]


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_validate_catches_a_planted_typo(tmp_path: Path) -> None:
    path = _copy_with(tmp_path, "model-build.yml", "timeoutInMinutes: 30", "timeoutInMinute: 30")
    line = _line_of(path, "timeoutInMinute: 30")
    assert _problems(tmp_path, path)[0].startswith(
        f"azure-pipelines/model-build.yml:{line}: unknown key 'timeoutInMinute'"
    )


def test_validate_catches_an_unknown_task_input(tmp_path: Path) -> None:
    path = _copy_with(tmp_path, "templates/stages/deploy-stage.yml", "awsCredentials:", "awsCredential:")
    line = _line_of(path, "awsCredential:")
    problems = _problems(tmp_path, path)
    assert any(
        p.startswith(f"azure-pipelines/templates/stages/deploy-stage.yml:{line}: unknown key 'awsCredential'")
        for p in problems
    ), problems


def test_validate_catches_an_unknown_task(tmp_path: Path) -> None:
    path = _copy_with(tmp_path, "model-build.yml", "PublishTestResults@2", "PublishTestResult@2")
    assert any(
        "unknown task 'PublishTestResult@2'; did you mean 'PublishTestResults@2'?" in p
        for p in _problems(tmp_path, path)
    )


def test_validate_catches_a_missing_mlops_command(tmp_path: Path) -> None:
    path = _copy_with(tmp_path, "infrastructure.yml", "mlops infra lint", "mlops infra lnt")
    line = _line_of(path, "mlops infra lnt")
    problems = _problems(tmp_path, path)
    assert len(problems) == 1 and problems[0].startswith(
        f"azure-pipelines/infrastructure.yml:{line}: `mlops infra lnt`"
    )
    assert "No such command 'lnt'" in problems[0]


def test_validate_catches_wrong_arguments_of_a_command(tmp_path: Path) -> None:
    path = _copy_with(tmp_path, "model-build.yml", "--wait \\", "--wiat \\")
    problems = _problems(tmp_path, path)
    assert len(problems) == 1 and "No such option '--wiat'" in problems[0], problems
    assert f"model-build.yml:{_line_of(path, '--wiat')}:" in problems[0]


def test_validate_catches_a_bad_choice_but_lets_runtime_values_through(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "p.yml",
        """
        steps:
          - script: mlops deploy --stage qa --model-package-arn x --dry-run
          - script: mlops deploy --stage $(stage) --model-package-arn "$ARN" --dry-run
          - script: mlops test --stage ${{ parameters.s }} --junit out.xml && mlops registry list --max 5 | tee x
          - script: mlops build
    """,
    )
    problems = _problems(tmp_path, path)
    assert len(problems) == 2, problems
    assert problems[0].startswith("p.yml:2:") and "'qa' is not one of 'staging', 'prod'" in problems[0]
    assert problems[1].startswith("p.yml:5:") and "needs a subcommand" in problems[1]


@pytest.mark.parametrize(
    "secret",
    [
        "AWS_ACCESS_KEY_ID: AKIAIOSFODNN7EXAMPLE",
        "password: hunter2hunter2",
        "ADO_PAT: abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrst",
    ],
)
def test_validate_catches_an_inline_secret(tmp_path: Path, secret: str) -> None:
    path = write(tmp_path, "p.yml", f"steps:\n  - script: echo hi\n    env:\n      {secret}\n")
    problems = _problems(tmp_path, path)
    assert problems and problems[0].startswith("p.yml:4: inline secret"), problems


def test_secrets_from_variables_are_fine(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yml", "steps:\n  - script: echo hi\n    env:\n      ADO_TOKEN: $(adoToken)\n")
    assert _problems(tmp_path, path) == []


def test_validate_refuses_prod_outside_a_deployment_job(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "p.yml",
        """
        stages:
          - stage: Prod
            jobs:
              - job: Sneaky
                steps:
                  - script: mlops deploy --stage prod --model-package-arn x
                  - task: AWSShellScript@1
                    inputs:
                      awsCredentials: aws-deploy-prod
                      inlineScript: mlops registry list
          - stage: Gate
            jobs:
              - deployment: Deploy
                environment: mlops-prod
                strategy:
                  runOnce:
                    deploy:
                      steps:
                        - script: mlops deploy --stage prod --model-package-arn x
          - stage: Smoke
            dependsOn: Gate
            jobs:
              - job: Smoke
                steps:
                  - task: AWSShellScript@1
                    inputs:
                      awsCredentials: aws-deploy-prod
                      inlineScript: mlops test --stage prod
    """,
    )
    problems = _problems(tmp_path, path)
    assert [p.split(":")[1] for p in problems] == ["6", "7"], problems  # Smoke runs after the gate: allowed
    assert "`mlops deploy --stage prod --model-package-arn x` changes prod" in problems[0]
    assert "prod service connection 'aws-deploy-prod'" in problems[1]


_STEPS_THE_QUICK_CHECK_MUST_JUDGE_AS_THE_SCHEMA_DOES = [
    "- script: echo hi",
    "- script: echo hi\n  displayName: x\n  unknownKey: 1",
    "- task: AWSShellScript@1\n  inputs:\n    awsCredentials: c\n    scriptType: inline\n    inlineScript: echo",
    "- task: AWSShellScript@1\n  inputs:\n    awsCredentials: c\n    notAnInput: x",
    "- task: PublishTestResults@2\n  inputs:\n    testResultsFiles: '*.xml'",
    "- task: PublishTestResults@2\n  inputs:\n    testResultsFile: '*.xml'",
    "- task: NoSuchTask@9",
    "- task:\n    nested: mapping\n  inputs: {}",
    "- task: Bash@3\n  script: echo hi",
    "- bash: echo hi\n  task: Bash@3",
    "- checkout: self\n  task: Bash@3",
]


@pytest.mark.parametrize("steps", _STEPS_THE_QUICK_CHECK_MUST_JUDGE_AS_THE_SCHEMA_DOES)
def test_the_quick_validity_check_agrees_with_the_schema(steps: str) -> None:
    # validate_document asks a validator that tries only the named task's branch whether a file is valid, and
    # the full one for the errors of an invalid file: the two must agree on every file, valid or not.
    from mlops.pipelines.loader import load_yaml_text
    from mlops.pipelines.schema import _validator, _validity_check, azure_view

    text = "trigger: none\npool:\n  vmImage: ubuntu-latest\nsteps:\n" + "\n".join(
        "  " + line for line in steps.splitlines()
    )
    data = azure_view(load_yaml_text(text, "t.yml"), "t.yml")
    assert _validity_check().is_valid(data) == _validator().is_valid(data)


def test_the_quick_validity_check_agrees_with_the_schema_on_our_files() -> None:
    from mlops.pipelines.loader import load_yaml
    from mlops.pipelines.schema import _validator, _validity_check, azure_view

    files = default_files(REPO_ROOT)
    assert files
    for path in files:
        data = azure_view(load_yaml(path), path.name)
        assert _validity_check().is_valid(data) == _validator().is_valid(data) is True, path
