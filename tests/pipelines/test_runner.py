"""The local Azure Pipelines runner on small fixture pipelines: each test pins one behaviour."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlops.core.errors import PipelineError, PipelineRunError
from mlops.pipelines.results import ApprovalRequest, RunEvent, RunResult
from mlops.pipelines.runner import static_service_connections
from tests.pipelines.conftest import write

Run = Callable[..., RunResult]


def _log(repo: Path) -> list[str]:
    return (repo / "log.txt").read_text().split()


def test_stages_and_jobs_run_in_dependency_order(repo: Path, run: Run) -> None:
    write(
        repo,
        "p.yml",
        """
        stages:
          - stage: A
            jobs:
              - job: Second
                dependsOn: First
                steps:
                  - script: echo A.Second >> log.txt
              - job: First
                steps:
                  - script: echo A.First >> log.txt
          - stage: C
            dependsOn: B
            jobs:
              - job: Only
                steps:
                  - script: echo C >> log.txt
          - stage: B
            dependsOn: A
            jobs:
              - job: Only
                steps:
                  - bash: echo B >> log.txt
    """,
    )
    result = run("p.yml")
    assert result.status == "succeeded"
    assert _log(repo) == ["A.First", "A.Second", "B", "C"]
    assert [s.name for s in result.stages] == ["A", "B", "C"]
    assert all(s.seconds >= 0 for s in result.stages)


def test_conditions_on_variables_and_parameters(repo: Path, run: Run) -> None:
    write(
        repo,
        "p.yml",
        """
        parameters:
          - name: target
            type: string
            default: staging
            values: [staging, prod]
          - name: loud
            type: boolean
            default: false
        variables:
          flag: "yes"
        stages:
          - stage: WhenFlag
            jobs:
              - job: J
                steps:
                  - script: echo flag >> log.txt
                    condition: and(succeeded(), eq(variables['flag'], 'YES'))
                  - script: echo notflag >> log.txt
                    condition: ne(variables.flag, 'yes')
                  - script: echo prod >> log.txt
                    condition: eq('${{ parameters.target }}', 'prod')
                  - script: echo quiet >> log.txt
                    condition: not(${{ parameters.loud }})
                  - script: echo either >> log.txt
                    condition: or(eq(variables.flag, 'no'), in('${{ parameters.target }}', 'staging', 'prod'))
          - stage: Skipped
            condition: eq(variables.flag, 'no')
            jobs:
              - job: J
                steps:
                  - script: echo never >> log.txt
          - stage: AfterSkipped
            jobs:
              - job: J
                steps:
                  - script: echo after >> log.txt
    """,
    )
    result = run("p.yml", {"target": "prod", "loud": "false"})
    assert _log(repo) == ["flag", "prod", "quiet", "either"]
    assert result.stage("Skipped").status == "skipped"
    assert result.stage("AfterSkipped").status == "skipped"  # succeeded() is false after a skipped dependency
    assert result.status == "succeeded"


def test_setvariable_across_steps_jobs_and_stages(repo: Path, run: Run) -> None:
    write(
        repo,
        "p.yml",
        """
        stages:
          - stage: Produce
            jobs:
              - job: Maker
                steps:
                  - script: |
                      echo "##vso[task.setvariable variable=plain]one"
                      echo "##vso[task.setvariable variable=shared;isOutput=true]two"
                      echo "same step sees [$PLAIN]" >> log.txt
                    name: setter
                  - script: echo "$(plain) $(setter.shared) $PLAIN" >> log.txt
              - job: Reader
                dependsOn: Maker
                variables:
                  fromMaker: $[ dependencies.Maker.outputs['setter.shared'] ]
                steps:
                  - script: echo "job:$(fromMaker)" >> log.txt
          - stage: Consume
            variables:
              fromStage: $[ dependencies.Produce.outputs['Maker.setter.shared'] ]
            jobs:
              - job: J
                variables:
                  viaStageDependencies: $[ stageDependencies.Produce.Maker.outputs['setter.shared'] ]
                steps:
                  - script: echo "stage:$(fromStage):$(viaStageDependencies)" >> log.txt
    """,
    )
    result = run("p.yml")
    assert result.status == "succeeded", result
    assert (repo / "log.txt").read_text().splitlines() == [
        "same step sees []",  # a variable set by a step is visible from the next step on
        "one two one",
        "job:two",
        "stage:two:two",
    ]
    assert result.job("Produce", "Maker").outputs == {"setter.shared": "two"}


def test_step_job_and_stage_templates_with_parameters(repo: Path, run: Run) -> None:
    write(
        repo,
        "templates/steps.yml",
        """
        parameters:
          - name: words
            type: object
            default: []
          - name: shout
            type: boolean
            default: false
        steps:
          - ${{ each word in parameters.words }}:
              - script: echo ${{ word }} >> log.txt
                displayName: say ${{ word }}
          - ${{ if parameters.shout }}:
              - script: echo LOUD >> log.txt
          - ${{ else }}:
              - script: echo quiet >> log.txt
    """,
    )
    write(
        repo,
        "templates/stage.yml",
        """
        parameters:
          - name: name
            type: string
          - name: extraSteps
            type: stepList
            default: []
        stages:
          - stage: ${{ parameters.name }}
            jobs:
              - job: J
                steps:
                  - template: steps.yml
                    parameters:
                      words: [a, b]
                      shout: true
                  - ${{ parameters.extraSteps }}
    """,
    )
    write(
        repo,
        "p.yml",
        """
        stages:
          - template: templates/stage.yml
            parameters:
              name: First
              extraSteps:
                - script: echo extra >> log.txt
          - stage: Second
            jobs:
              - job: J
                steps:
                  - template: templates/steps.yml
    """,
    )
    result = run("p.yml")
    assert result.status == "succeeded"
    assert _log(repo) == ["a", "b", "LOUD", "extra", "quiet"]
    assert [s.display_name for s in result.job("First", "J").steps][:2] == ["say a", "say b"]


def test_failing_step_skips_dependents_but_always_runs(repo: Path, run: Run) -> None:
    write(
        repo,
        "p.yml",
        """
        stages:
          - stage: Build
            jobs:
              - job: J
                steps:
                  - script: echo before >> log.txt
                  - script: exit 3
                    name: boom
                  - script: echo skipped >> log.txt
                  - script: echo cleanup >> log.txt
                    condition: always()
                  - script: echo onfailure >> log.txt
                    condition: failed()
          - stage: Deploy
            jobs:
              - job: J
                steps:
                  - script: echo deploy >> log.txt
          - stage: Report
            dependsOn: [Build, Deploy]
            condition: always()
            jobs:
              - job: J
                steps:
                  - script: echo report >> log.txt
          - stage: Rollback
            dependsOn: Build
            condition: failed()
            jobs:
              - job: J
                steps:
                  - script: echo rollback >> log.txt
    """,
    )
    result = run("p.yml")
    assert _log(repo) == ["before", "cleanup", "onfailure", "report", "rollback"]
    steps = result.job("Build", "J").steps
    assert [s.status for s in steps] == ["succeeded", "failed", "skipped", "succeeded", "succeeded"]
    assert steps[1].exit_code == 3 and "p.yml:" in steps[1].where
    assert result.stage("Build").status == "failed"
    assert result.stage("Deploy").status == "skipped"
    assert result.status == "failed"


def test_continue_on_error_keeps_the_job_going(repo: Path, run: Run) -> None:
    write(
        repo,
        "p.yml",
        """
        steps:
          - script: exit 1
            continueOnError: true
          - script: echo next >> log.txt
    """,
    )
    result = run("p.yml")
    assert _log(repo) == ["next"]
    assert result.status == "succeededWithIssues"


DEPLOY = """
    stages:
      - stage: Staging
        jobs:
          - deployment: Deploy
            environment: env-staging
            strategy:
              runOnce:
                deploy:
                  steps:
                    - script: echo staging >> log.txt
      - stage: Prod
        jobs:
          - deployment: Deploy
            environment:
              name: env-prod
            strategy:
              runOnce:
                deploy:
                  steps:
                    - checkout: self
                    - script: echo prod >> log.txt
      - stage: Smoke
        jobs:
          - job: J
            steps:
              - script: echo smoke >> log.txt
"""


def test_approvals_by_callback_approve_and_reject(repo: Path, run: Run) -> None:
    write(repo, "p.yml", DEPLOY)
    seen: list[ApprovalRequest] = []

    def approver(request: ApprovalRequest) -> bool:
        seen.append(request)
        return request.environment != "env-prod"

    result = run("p.yml", approve=approver)
    assert [(r.stage, r.environment) for r in seen] == [("Staging", "env-staging"), ("Prod", "env-prod")]
    assert _log(repo) == ["staging"]
    assert result.stage("Prod").status == "rejected"
    assert result.stage("Smoke").status == "skipped"
    assert result.status == "failed"
    assert [(a.environment, a.approved, a.by) for a in result.approvals] == [
        ("env-staging", True, "callback"),
        ("env-prod", False, "callback"),
    ]


def test_auto_approve_and_no_approver(repo: Path, run: Run) -> None:
    write(repo, "p.yml", DEPLOY)
    result = run("p.yml", auto_approve=True)
    assert result.status == "succeeded"
    assert _log(repo) == ["staging", "prod", "smoke"]
    (repo / "log.txt").unlink()
    refused = run("p.yml")  # neither a callback nor --auto-approve: fail closed
    assert refused.stage("Staging").status == "rejected"
    assert "no approver" in (refused.stage("Staging").reason or "")
    assert not (repo / "log.txt").exists()


def test_artifacts_published_and_downloaded(repo: Path, run: Run) -> None:
    write(
        repo,
        "p.yml",
        """
        stages:
          - stage: Make
            jobs:
              - job: J
                steps:
                  - script: |
                      mkdir -p "$(Build.ArtifactStagingDirectory)/out"
                      echo hello > "$(Build.ArtifactStagingDirectory)/out/file.txt"
                  - task: PublishPipelineArtifact@1
                    inputs:
                      targetPath: $(Build.ArtifactStagingDirectory)/out
                      artifact: bundle
                  - publish: p.yml
                    artifact: source
          - stage: Use
            jobs:
              - job: J
                steps:
                  - download: current
                    artifact: bundle
                  - task: DownloadPipelineArtifact@2
                    inputs:
                      artifact: bundle
                      targetPath: $(Agent.TempDirectory)/again
                  - script: |
                      cat "$(Pipeline.Workspace)/bundle/file.txt" >> log.txt
                      cat "$(Agent.TempDirectory)/again/file.txt" >> log.txt
              - deployment: D
                environment: e
                strategy:
                  runOnce:
                    deploy:
                      steps:
                        - script: test -f "$(Pipeline.Workspace)/source/p.yml" && echo implicit >> log.txt
    """,
    )
    result = run("p.yml", auto_approve=True)
    assert result.status == "succeeded", result
    assert _log(repo) == ["hello", "hello", "implicit"]
    assert sorted(result.artifacts) == ["bundle", "source"]
    assert (result.artifacts["bundle"] / "file.txt").read_text() == "hello\n"


def test_logging_commands_summary_issues_and_complete(repo: Path, run: Run) -> None:
    write(
        repo,
        "p.yml",
        """
        steps:
          - script: |
              echo "##[group]details"
              echo "## Metrics" > summary.md
              echo "##vso[task.uploadsummary]$(Build.SourcesDirectory)/summary.md"
              echo "##vso[task.logissue type=warning;sourcepath=a.py;linenumber=3]careful"
              echo "##[endgroup]"
          - script: |
              echo "##vso[task.logissue type=error]it broke"
              echo "##vso[task.complete result=Failed;]done"
            name: marker
          - script: echo "##vso[task.unknowncommand]x"
            condition: always()
    """,
    )
    events: list[RunEvent] = []
    result = run("p.yml", events=events)
    assert [s.markdown for s in result.summaries] == ["## Metrics\n"]
    assert [(i.type, i.message, i.source) for i in result.issues] == [
        ("warning", "careful", "a.py:3"),
        ("error", "it broke", None),
        ("warning", "logging command ##vso[task.unknowncommand] is not supported locally; ignored", None),
    ]
    assert result.job("__default", "Job").steps[1].status == "failed"  # exit 0, but task.complete said Failed
    assert any(e.kind == "output" and e.text == "##[group]details" for e in events)


def test_test_results_and_coverage_are_recorded_not_failed(repo: Path, run: Run) -> None:
    write(repo, "results.xml", '<testsuite tests="3" failures="1" errors="0"></testsuite>')
    write(repo, "coverage.xml", '<coverage line-rate="0.875"></coverage>')
    write(
        repo,
        "p.yml",
        """
        steps:
          - task: PublishTestResults@2
            inputs:
              testResultsFormat: JUnit
              testResultsFiles: results.xml
          - task: PublishCodeCoverageResults@2
            inputs:
              summaryFileLocation: coverage.xml
    """,
    )
    result = run("p.yml")
    assert result.status == "succeeded"
    assert [(t.total, t.failed) for t in result.test_results] == [(3, 1)]
    assert [c.line_rate for c in result.coverage] == [0.875]


def test_aws_shell_script_gets_the_service_connection(repo: Path, run: Run) -> None:
    write(
        repo,
        "p.yml",
        """
        steps:
          - task: AWSShellScript@1
            inputs:
              awsCredentials: aws-staging
              regionName: eu-west-1
              scriptType: inline
              inlineScript: echo "$AWS_ACCESS_KEY_ID $AWS_REGION $AWS_ENDPOINT_URL" >> log.txt
    """,
    )
    connections = static_service_connections(
        {"aws-staging": {"AWS_ACCESS_KEY_ID": "staging-key", "AWS_ENDPOINT_URL": "http://127.0.0.1:1"}}
    )
    result = run("p.yml", service_connections=connections)
    assert result.status == "succeeded"
    assert _log(repo) == ["staging-key", "eu-west-1", "http://127.0.0.1:1"]
    failed = run("p.yml", service_connections=static_service_connections({"aws-prod": {}}))
    step = failed.job("__default", "Job").steps[0]
    assert step.status == "failed"
    assert "p.yml:2: unknown service connection 'aws-staging'" in (step.reason or "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "steps:\n  - script: echo\n    displayname: x\n",
            r"p\.yml:3: unsupported key 'displayname' in a `script` step",
        ),
        ("steps:\n  - pwsh: Write-Host\n", r"p\.yml:2: unsupported step"),
        (
            "variables:\n  - group: secrets\nsteps:\n  - script: echo\n",
            r"p\.yml:2: variable group 'secrets' is read from the Azure DevOps project's library, and this run has no",
        ),
        (
            "jobs:\n  - job: J\n    strategy:\n      matrix: {}\n    steps: []\n",
            r"p\.yml:3: unsupported key 'strategy'",
        ),
        ("steps:\n  - ${{ insert }}: {}\n", r"p\.yml:2: unsupported template directive \$\{\{ insert \}\}"),
        ("resources:\n  containers: []\nsteps: []\n", r"p\.yml:2: `resources.containers` is not supported"),
        ("extends:\n  template: x.yml\n", r"p\.yml:2: extended template 'x.yml' not found"),
        ("steps:\n  - script: echo ${{ parameters.nope }}\n", r"p\.yml:2: in \$\{\{parameters\.nope\}\}|p\.yml:2"),
    ],
)
def test_unsupported_constructs_name_file_and_line(repo: Path, run: Run, text: str, expected: str) -> None:
    write(repo, "p.yml", text)
    try:
        result: Any = run("p.yml")
    except PipelineError as error:
        assert __import__("re").search(expected, str(error)), str(error)
        return
    if "parameters.nope" in text:  # Azure renders a missing parameter property as empty
        assert result.status == "succeeded"
        return
    pytest.fail(f"expected an error matching {expected!r}")


def test_unknown_task_and_task_input_fail_with_file_and_line(repo: Path, run: Run) -> None:
    write(repo, "p.yml", "steps:\n  - script: echo ok\n  - task: Kubernetes@1\n")
    with pytest.raises(PipelineError, match=r"p\.yml:3: task 'Kubernetes@1' is not supported"):
        run("p.yml")
    write(repo, "q.yml", "steps:\n  - task: PublishTestResults@2\n    inputs:\n      testResultFiles: x\n")
    with pytest.raises(PipelineError, match=r"q\.yml:4: task PublishTestResults@2 has no input 'testResultFiles'"):
        run("q.yml")


def test_parameters_are_checked(repo: Path, run: Run) -> None:
    write(
        repo,
        "p.yml",
        """
        parameters:
          - name: stage
            type: string
            values: [staging, prod]
          - name: count
            type: number
            default: 2
        steps:
          - script: echo ${{ parameters.stage }} ${{ parameters.count }} >> log.txt
    """,
    )
    with pytest.raises(
        PipelineError, match=r"(?s)p\.yml:2: runtime parameter 'stage' is required.*fix: pass it: -p stage=VALUE"
    ):
        run("p.yml")
    with pytest.raises(PipelineError, match=r"p\.yml:2: parameter 'stage' must be one of \['staging', 'prod'\]"):
        run("p.yml", {"stage": "dev"})
    with pytest.raises(PipelineError, match=r"parameter 'count' expects a number, found 'many'"):
        run("p.yml", {"stage": "prod", "count": "many"})
    with pytest.raises(PipelineError, match=r"unexpected parameter\(s\) stag "):
        run("p.yml", {"stag": "prod"})
    assert run("p.yml", {"stage": "prod", "count": "3"}).status == "succeeded"
    assert _log(repo) == ["prod", "3"]


def test_runtime_expression_errors_name_the_condition(repo: Path, run: Run) -> None:
    write(repo, "p.yml", "steps:\n  - script: echo\n    condition: eqq(1, 1)\n")
    with pytest.raises(PipelineRunError, match=r"p\.yml:3: .*unsupported function eqq\(\)"):
        run("p.yml")


def test_cli_run_writes_a_report_and_fails_on_a_failed_run(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    from mlops.cli import main

    write(repo, "mlops.yaml", "")  # keeps the twin lookup inside the temp repo
    write(
        repo,
        "p.yml",
        """
        parameters:
          - name: who
            type: string
        stages:
          - stage: Hello
            jobs:
              - job: Say
                steps:
                  - script: echo "hello ${{ parameters.who }}"
          - stage: Prod
            jobs:
              - deployment: D
                environment: mlops-prod
                strategy:
                  runOnce:
                    deploy:
                      steps:
                        - script: exit 2
    """,
    )
    monkeypatch.chdir(repo)
    code = main(
        [
            "pipelines",
            "run",
            "p.yml",
            "-p",
            "who=you",
            "--auto-approve",
            "--report",
            "r.json",
            "--work-dir",
            str(repo.parent / "w"),
        ]
    )
    captured = capsys.readouterr()
    assert code == 1
    assert "hello you" in captured.err
    assert "stage Prod failed at step script: exit 2 (p.yml:" in captured.err
    report = json.loads((repo / "r.json").read_text())
    assert [(s["name"], s["status"]) for s in report["stages"]] == [("Hello", "succeeded"), ("Prod", "failed")]
    assert report["parameters"] == {"who": "you"}
    assert report["approvals"][0]["by"] == "auto-approve"


def test_two_runs_with_one_run_id_in_one_checkout_get_their_own_work_directories(repo: Path) -> None:
    from mlops.pipelines.runner import run_pipeline

    write(repo, "p.yml", 'steps:\n  - script: echo one > "$(Build.ArtifactStagingDirectory)/mine.txt"\n')
    env = {"PATH": os.environ["PATH"], "HOME": str(repo), "LANG": "C.UTF-8"}
    first = run_pipeline(repo / "p.yml", None, sources_dir=repo, env=env, run_id=42)
    second = run_pipeline(repo / "p.yml", None, sources_dir=repo, env=env, run_id=42)
    assert first.status == second.status == "succeeded"
    runs = sorted(p.name for p in (repo / ".mlops" / "pipelines").iterdir())
    assert runs == ["p-42", "p-42.1"]  # the second run did not reuse (or trip over) the first one's folder
