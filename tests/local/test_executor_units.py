"""The executor's pure parts: expressions, conditions, durations, the cache, and clear refusals."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from mlops.local.errors import UnsupportedDefinition
from mlops.local.executor import Execution, Executor, StepCache, cache_key, parse_duration
from mlops.local.expressions import Scope, evaluate_condition, json_path, referenced_steps, resolve


def _scope(properties: dict[str, dict[str, Any]] | None = None) -> Scope:
    scope = Scope(
        {"Threshold": 0.9, "BuildId": "b1"},
        {"PipelineExecutionId": "abc"},
        read_property_file=lambda step, name, path: {"Evaluate/Report/metrics.auc": 0.95}[f"{step}/{name}/{path}"],
    )
    scope.step_properties.update(properties or {})
    return scope


def test_resolve_parameters_joins_and_step_properties() -> None:
    scope = _scope({"Train": {"ModelArtifacts.S3ModelArtifacts": "s3://b/m.tar.gz"}})
    node = {
        "Uri": {
            "Std:Join": {
                "On": "/",
                "Values": ["s3://b", {"Get": "Parameters.BuildId"}, {"Get": "Execution.PipelineExecutionId"}],
            }
        },
        "Model": {"Get": "Steps.Train.ModelArtifacts.S3ModelArtifacts"},
        "List": [{"Get": "Parameters.Threshold"}],
    }
    assert resolve(node, scope, "step X") == {"Uri": "s3://b/b1/abc", "Model": "s3://b/m.tar.gz", "List": [0.9]}
    assert referenced_steps(node) == {"Train"}


@pytest.mark.parametrize(
    ("node", "message"),
    [
        ({"Get": "Parameters.Missing"}, "undefined parameter 'Missing'"),
        ({"Get": "Steps.Later.Anything"}, "which has not run"),
        ({"Get": "Execution.StartDateTime"}, "execution variable 'StartDateTime' is not supported"),
        ({"Std:Sum": [1, 2]}, "function 'Std:Sum' is not supported"),
        ({"Get": "Nonsense"}, "is not a parameter, execution variable or step property"),
    ],
)
def test_unsupported_expressions_name_where_they_are(node: dict[str, Any], message: str) -> None:
    with pytest.raises(UnsupportedDefinition, match=message) as caught:
        resolve({"Field": node}, _scope(), "step S")
    assert str(caught.value).startswith("step S.Field")


def test_conditions() -> None:
    scope = _scope()
    auc = {"Std:JsonGet": {"PropertyFile": {"Get": "Steps.Evaluate.PropertyFiles.Report"}, "Path": "metrics.auc"}}
    ge = {"Type": "GreaterThanOrEqualTo", "LeftValue": auc, "RightValue": {"Get": "Parameters.Threshold"}}
    assert evaluate_condition(ge, scope, "c")
    assert not evaluate_condition({"Type": "Not", "Condition": ge}, scope, "c")
    lt = {"Type": "LessThan", "LeftValue": auc, "RightValue": 0.5}
    assert evaluate_condition({"Type": "Or", "Conditions": [lt, ge]}, scope, "c")
    assert evaluate_condition(
        {"Type": "In", "QueryValue": "b1", "Values": ["a", {"Get": "Parameters.BuildId"}]}, scope, "c"
    )
    with pytest.raises(UnsupportedDefinition, match="condition type 'Between'"):
        evaluate_condition({"Type": "Between"}, scope, "c")


def test_json_path() -> None:
    document = {"a": {"b": [{"c": 1}, {"c": 2}]}}
    assert json_path(document, "a.b[1].c", "w") == 2
    with pytest.raises(UnsupportedDefinition, match="does not exist"):
        json_path(document, "a.x", "w")


def test_parse_duration() -> None:
    assert parse_duration("P30D") == timedelta(days=30)
    assert parse_duration("PT12H") == timedelta(hours=12)
    assert parse_duration("P1W") == timedelta(days=7)
    assert parse_duration("P1DT2H30M") == timedelta(days=1, hours=2, minutes=30)
    for bad in ("30D", "P", "PT", "P1H"):
        with pytest.raises(ValueError, match="not an ISO 8601 duration"):
            parse_duration(bad)


def test_cache_key_ignores_outputs_and_honours_expiry(tmp_path: Path) -> None:
    args = {"AppSpecification": {"ImageUri": "i"}, "ProcessingInputs": [{"S3Uri": "s3://b/code/1"}]}
    with_outputs = {**args, "ProcessingOutputConfig": {"Outputs": [{"S3Uri": "s3://b/run-2"}]}}
    assert cache_key("Processing", args) == cache_key("Processing", with_outputs)
    assert cache_key("Processing", args) != cache_key("Processing", {**args, "Environment": {"X": "1"}})
    now = [1000.0]
    cache = StepCache(tmp_path / "cache.json", clock=lambda: now[0])
    cache.store("k", {"properties": {"p": 1}, "metadata": {}, "execution_arn": "e1"})
    assert cache.lookup("k", "PT1H")["execution_arn"] == "e1"  # type: ignore[index]
    now[0] += 3601
    assert cache.lookup("k", "PT1H") is None
    assert cache.lookup("other", "P30D") is None


def _execution() -> Execution:
    return Execution(
        arn="arn:aws:sagemaker:us-east-1:000000000001:pipeline/p/execution/abc",
        pipeline_name="p",
        pipeline_arn="arn:aws:sagemaker:us-east-1:000000000001:pipeline/p",
        display_name="d",
        description="",
        parameters={},
    )


def _executor(tmp_path: Path) -> Executor:
    return Executor(s3=None, sagemaker=None, work_dir=tmp_path, cache=StepCache(tmp_path / "c.json"))  # type: ignore[arg-type]


def test_unsupported_step_type_fails_the_execution_naming_the_step(tmp_path: Path) -> None:
    definition = {"Version": "2020-12-01", "Steps": [{"Name": "Score", "Type": "Transform", "Arguments": {}}]}
    execution = _executor(tmp_path).run(definition, _execution())
    assert execution.status == "Failed"
    assert execution.failure_reason == "step Score: step type 'Transform' is not supported by the local executor"
    assert execution.steps[0].status == "Failed"


def test_unsupported_field_is_named(tmp_path: Path) -> None:
    step = {"Name": "Prep", "Type": "Processing", "Arguments": {"AppSpecification": {}, "ClusterMagic": 1}}
    execution = _executor(tmp_path).run({"Steps": [step]}, _execution())
    assert execution.status == "Failed"
    assert "step Prep: field(s) ['ClusterMagic'] are not supported locally" in str(execution.failure_reason)


def test_parameters_are_typed_and_checked(tmp_path: Path) -> None:
    definition = {"Parameters": [{"Name": "N", "Type": "Integer", "DefaultValue": 1}], "Steps": []}
    execution = _execution()
    execution.parameters = {"N": "many"}
    assert (
        _executor(tmp_path).run(definition, execution).failure_reason
        == "pipeline parameter N: expected Integer, found 'many'"
    )
    execution = _execution()
    execution.parameters = {"M": "1"}
    assert "unknown pipeline parameter(s) ['M']" in str(_executor(tmp_path).run(definition, execution).failure_reason)
    assert _executor(tmp_path).run(definition, _execution()).status == "Succeeded"


def test_fail_step_message_and_condition_branching(tmp_path: Path) -> None:
    definition = {
        "Parameters": [{"Name": "T", "Type": "Float", "DefaultValue": 0.5}],
        "Steps": [
            {
                "Name": "Check",
                "Type": "Condition",
                "Arguments": {
                    "Conditions": [{"Type": "GreaterThan", "LeftValue": 0.4, "RightValue": {"Get": "Parameters.T"}}],
                    "IfSteps": [],
                    "ElseSteps": [
                        {
                            "Name": "Stop",
                            "Type": "Fail",
                            "Arguments": {
                                "ErrorMessage": {"Std:Join": {"On": " ", "Values": ["below", {"Get": "Parameters.T"}]}}
                            },
                        }
                    ],
                },
            }
        ],
    }  # fmt: skip
    execution = _executor(tmp_path).run(definition, _execution())
    assert (execution.status, execution.failure_reason) == ("Failed", "below 0.5")
    assert [(s.name, s.status) for s in execution.steps] == [("Check", "Succeeded"), ("Stop", "Failed")]
    assert execution.steps[0].metadata == {"Condition": {"Outcome": "False"}}


def test_job_outputs_are_written_with_sse_kms_as_sagemaker_writes_them(tmp_path: Path) -> None:
    from mlops.local.executor import sagemaker_output_encryption

    assert sagemaker_output_encryption(None) == {"ServerSideEncryption": "aws:kms"}
    assert sagemaker_output_encryption("alias/artifacts") == {
        "ServerSideEncryption": "aws:kms",
        "SSEKMSKeyId": "alias/artifacts",
    }
    uploads: list[tuple[Any, ...]] = []

    class RecordingS3:
        def upload_file(self, *args: Any, **kwargs: Any) -> None:
            uploads.append((*args, kwargs.get("ExtraArgs")))

    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "train.csv").write_text("1,2\n")
    executor = Executor(
        s3=RecordingS3(), sagemaker=None, work_dir=tmp_path / "jobs", cache=StepCache(tmp_path / "c.json")
    )
    executor._upload_dir(tmp_path / "out", "s3://bucket/prefix", "step Preprocess", "alias/artifacts")
    assert uploads == [
        (
            str(tmp_path / "out" / "train.csv"),
            "bucket",
            "prefix/train.csv",
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "alias/artifacts"},
        )
    ]
