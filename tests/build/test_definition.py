"""The rendered pipeline definition: structure, determinism, and validity against the AWS API shapes."""

from __future__ import annotations

import copy
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from mlops.core.config import Config
from model_build import build
from model_build.build import RenderedBuild, render

from .conftest import REPO_ROOT, steps_by_name

pytestmark = pytest.mark.slow


def test_steps_and_parameters(definition: dict[str, Any]) -> None:
    steps = steps_by_name(definition)
    assert [s["Name"] for s in definition["Steps"]] == ["Preprocess", "Train", "Evaluate", "CheckQuality"]
    assert {n: s["Type"] for n, s in steps.items()} == {
        "Preprocess": "Processing",
        "Train": "Training",
        "Evaluate": "Processing",
        "CheckQuality": "Condition",
        "Register": "RegisterModel",
        "Fail": "Fail",
    }
    parameters = {p["Name"]: p for p in definition["Parameters"]}
    assert set(parameters) == {
        "InputDataUrl", "ProcessingInstanceType", "ProcessingInstanceCount", "TrainingInstanceType",
        "TrainingInstanceCount", "QualityThreshold", "GitCommit", "BuildId",
    }  # fmt: skip
    assert parameters["QualityThreshold"] == {"Name": "QualityThreshold", "Type": "Float", "DefaultValue": 0.95}
    assert parameters["TrainingInstanceCount"]["Type"] == "Integer"
    for name in ("Preprocess", "Train", "Evaluate"):
        assert steps[name]["CacheConfig"] == {"Enabled": True, "ExpireAfter": "P30D"}


def test_training_runs_our_script_from_content_addressed_code(
    definition: dict[str, Any], rendered: RenderedBuild
) -> None:
    train = steps_by_name(definition)["Train"]["Arguments"]
    assert train["AlgorithmSpecification"]["ContainerEntrypoint"] == ["python3", "/opt/ml/input/data/code/train.py"]
    assert train["AlgorithmSpecification"]["TrainingImage"].endswith("/sagemaker-xgboost:3.2-0")
    channels = {c["ChannelName"]: c for c in train["InputDataConfig"]}
    assert set(channels) == {"train", "validation", "preprocessor", "code"}
    assert channels["code"]["DataSource"]["S3DataSource"]["S3Uri"] == rendered.code_uris["train"]
    assert train["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600}
    assert train["HyperParameters"]["max_depth"] == "4"
    uploaded = {u.key for u in rendered.uploads}
    bucket_prefix = f"s3://{rendered.code_uris['train'].split('/')[2]}/"
    for bundle, files in build.CODE_BUNDLES.items():
        for file_name in files:
            assert rendered.code_uris[bundle].removeprefix(bucket_prefix) + file_name in uploaded


def test_execution_parameters_stay_out_of_cache_keys(definition: dict[str, Any]) -> None:
    """SageMaker's cache key covers image, code, inputs, environment and hyperparameters; the build
    id and commit must not appear there, or no step would ever hit the cache."""
    steps = steps_by_name(definition)
    keyed = {
        "Preprocess": ("AppSpecification", "Environment", "ProcessingInputs"),
        "Evaluate": ("AppSpecification", "Environment", "ProcessingInputs"),
        "Train": ("AlgorithmSpecification", "Environment", "HyperParameters", "InputDataConfig"),
    }
    for name, fields in keyed.items():
        for field in fields:
            text = json.dumps(steps[name]["Arguments"].get(field, {}))
            assert "Parameters.BuildId" not in text and "Parameters.GitCommit" not in text, (name, field)
    outputs = json.dumps(steps["Preprocess"]["Arguments"]["ProcessingOutputConfig"])
    assert "Parameters.BuildId" in outputs  # outputs are partitioned per build


def test_register_and_fail(definition: dict[str, Any]) -> None:
    steps = steps_by_name(definition)
    register = steps["Register"]["Arguments"]
    assert register["ModelApprovalStatus"] == "PendingManualApproval"
    assert register["ModelPackageGroupName"] == "breast-cancer"
    assert register["CustomerMetadataProperties"] == {
        # What the deploy's endpoint tests derive their contract from (model_deploy/endpoint_checks.py).
        "use_case": "breast-cancer",
        "task": "binary",
        "framework": "xgboost",
        "git_commit": {"Get": "Parameters.GitCommit"},
        "build_id": {"Get": "Parameters.BuildId"},
        "test_data_uri": {
            "Std:Join": {
                "On": "/",
                "Values": [
                    {"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['test'].S3Output.S3Uri"},
                    "test.csv",
                ],
            }
        },
        "manifest_uri": {
            "Std:Join": {
                "On": "/",
                "Values": [
                    "s3://mlops-artifacts-000000000001-us-east-1/breast-cancer/main",
                    {"Get": "Parameters.BuildId"},
                    "manifest.json",
                ],
            }
        },
    }
    container = register["InferenceSpecification"]["Containers"][0]
    assert container["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert container["ModelDataUrl"] == {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"}
    statistics = register["ModelMetrics"]["ModelQuality"]["Statistics"]["S3Uri"]["Std:Join"]["Values"]
    assert statistics[-1] == "evaluation.json"
    explainability = register["ModelMetrics"]["Explainability"]["Report"]
    assert explainability["S3Uri"]["Std:Join"]["Values"][-1] == "analysis.json"
    assert explainability["ContentType"] == "application/json"
    # Model Monitor's baselines ride on the package (DriftCheckBaselines), where the deploy finds them.
    drift = register["DriftCheckBaselines"]
    assert {k: drift["ModelDataQuality"][k]["S3Uri"]["Std:Join"]["Values"] for k in ("Statistics", "Constraints")} == {
        "Statistics": [
            {"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['baseline'].S3Output.S3Uri"},
            "statistics.json",
        ],
        "Constraints": [
            {"Get": "Steps.Preprocess.ProcessingOutputConfig.Outputs['baseline'].S3Output.S3Uri"},
            "constraints.json",
        ],
    }
    assert drift["ModelQuality"]["Constraints"]["S3Uri"]["Std:Join"]["Values"][-1] == "model_quality/constraints.json"
    # The scripts import baseline.py from beside them: each processing step downloads its whole bundle.
    for name in ("Preprocess", "Evaluate"):
        code = next(i for i in steps[name]["Arguments"]["ProcessingInputs"] if i["InputName"] == "code")
        assert code["S3Input"]["S3Uri"].endswith("/") and "/code/" in code["S3Input"]["S3Uri"], name
    condition = steps["CheckQuality"]["Arguments"]["Conditions"][0]
    assert condition["Type"] == "GreaterThanOrEqualTo"
    assert condition["LeftValue"]["Std:JsonGet"]["Path"] == "binary_classification_metrics.auc.value"
    assert condition["RightValue"] == {"Get": "Parameters.QualityThreshold"}
    message = json.dumps(steps["Fail"]["Arguments"]["ErrorMessage"])
    assert "Std:JsonGet" in message and "Parameters.QualityThreshold" in message
    # No hidden repack step: the model already carries its inference code.
    assert "RepackModel" not in json.dumps(definition)


def _resolve(node: Any, parameters: dict[str, Any]) -> Any:
    """Replace pipeline expressions with values of the type the service would substitute."""
    if isinstance(node, list):
        return [_resolve(v, parameters) for v in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Get"}:
        ref = node["Get"]
        if ref.startswith("Parameters."):
            return parameters[ref.removeprefix("Parameters.")]
        return "s3://resolved-bucket/resolved/output"
    if "Std:Join" in node:
        join = node["Std:Join"]
        return join["On"].join(str(_resolve(v, parameters)) for v in join["Values"])
    if "Std:JsonGet" in node:
        return 0.97
    return {k: _resolve(v, parameters) for k, v in node.items()}


@pytest.mark.parametrize(
    ("step", "operation", "name_field"),
    [
        ("Preprocess", "CreateProcessingJob", "ProcessingJobName"),
        ("Evaluate", "CreateProcessingJob", "ProcessingJobName"),
        ("Train", "CreateTrainingJob", "TrainingJobName"),
        ("Register", "CreateModelPackage", None),
    ],
)
def test_arguments_are_valid_api_requests(
    definition: dict[str, Any], step: str, operation: str, name_field: str | None
) -> None:
    parameters = {p["Name"]: p["DefaultValue"] for p in definition["Parameters"]}
    arguments = _resolve(copy.deepcopy(steps_by_name(definition)[step]["Arguments"]), parameters)
    if name_field:
        arguments[name_field] = f"job-{step.lower()}"
    shape = botocore.session.get_session().get_service_model("sagemaker").operation_model(operation).input_shape
    report = ParamValidator().validate(arguments, shape)
    assert not report.has_errors(), report.generate_report()


def test_definition_is_byte_identical_across_processes(tmp_path: Path, local_config: Config) -> None:
    # A fresh process renders for real (no render cache) while this one renders too: what the cache relies on.
    env = {**os.environ, "MLOPS_PROFILE": "local", "MLOPS_RENDER_CACHE": "0"}
    out = tmp_path / "definition.json"
    command = [sys.executable, "-m", "mlops.cli", "build", "definition", "--branch", "main", "--out", str(out)]
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    here = render(local_config, "main", cache=False).definition.encode()
    _, err = process.communicate(timeout=300)
    assert process.returncode == 0, err.decode()
    assert out.read_bytes() == here + b"\n"  # the command ends the file with a newline
    assert json.loads(here)["Version"] == "2020-12-01"


def test_changed_step_code_changes_only_that_steps_code_uri(
    local_config: Config, rendered: RenderedBuild, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    steps_dir = tmp_path / "steps"
    shutil.copytree(build.STEPS_DIR, steps_dir)
    (steps_dir / "train.py").write_text((steps_dir / "train.py").read_text() + "\n# changed\n")
    monkeypatch.setattr(build, "STEPS_DIR", steps_dir)
    changed = render(local_config, "main")
    assert changed.code_uris["train"] != rendered.code_uris["train"]
    assert changed.code_uris["preprocess"] == rendered.code_uris["preprocess"]
    assert changed.code_uris["evaluate"] == rendered.code_uris["evaluate"]
    before = steps_by_name(json.loads(rendered.definition))
    after = steps_by_name(json.loads(changed.definition))
    assert before["Preprocess"] == after["Preprocess"] and before["Evaluate"] == after["Evaluate"]
    assert before["Train"] != after["Train"]


def test_branch_builds_get_their_own_pipeline_and_prefix(local_config: Config) -> None:
    from model_build.layout import branch_slug

    branch = render(local_config, "feature/new-features")
    slug = branch_slug("feature/new-features")
    assert slug.startswith("feature-new-features-") and len(slug) == len("feature-new-features-") + 8
    assert branch.pipeline_name == f"breast-cancer-build-{slug}"
    assert f"breast-cancer/{slug}" in branch.definition
    # A branch pipeline runs on the cheaper instances and registers nothing into the production group.
    definition = json.loads(branch.definition)
    defaults = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    assert defaults["ProcessingInstanceType"] == local_config.build.branch_instances.processing
    assert defaults["TrainingInstanceType"] == local_config.build.branch_instances.training
    assert defaults["ProcessingInstanceCount"] == defaults["TrainingInstanceCount"] == 1
    [check] = [s for s in definition["Steps"] if s["Name"] == "CheckQuality"]
    assert check["Arguments"]["IfSteps"] == [] and [s["Name"] for s in check["Arguments"]["ElseSteps"]] == ["Fail"]
    assert "RegisterModel" not in branch.definition
