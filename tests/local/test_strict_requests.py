"""The strict twin refuses what AWS's request validation refuses, in AWS's error shape, and creates nothing.

Three layers: the Java-pattern translation and the validator on botocore's real shapes (pure); the
gate between botocore and a fake transport, so botocore's own parsers read each protocol's refusal
(JSON, query, query-compatible JSON, REST-JSON, REST-XML); and the running twin, where a refused
request must leave no trace.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.session
import pytest
from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.config import Config as BotoConfig
from botocore.exceptions import ClientError
from botocore.model import ShapeResolver
from werkzeug.test import EnvironBuilder

from mlops.cli import main
from mlops.local.errors import TwinError
from mlops.local.server import TwinServer
from mlops.local.strict.gate import RequestGate, strict_requests_from
from mlops.local.strict.patterns import PatternError, compile_aws_pattern, matches, translate
from mlops.local.strict.requests import Violation, message, validate
from tests.local.conftest import Twin

CUSTOMER_METADATA_VALUE = r"([\p{L}\p{Z}\p{N}_.:\/=+\-@]*)${1,256}"
RUN_URL = "https://dev.azure.com/org/project/_build/results?buildId=42"
_SESSION = botocore.session.get_session()


def _input(service: str, operation: str) -> Any:
    return _SESSION.get_service_model(service).operation_model(operation).input_shape


# ------------------------------------------------------------------------------ Java patterns


@pytest.mark.parametrize(
    ("pattern", "value", "expected"),
    [
        (CUSTOMER_METADATA_VALUE, RUN_URL, False),  # `?` is outside the class: the defect
        (CUSTOMER_METADATA_VALUE, "https://dev.azure.com/org/project/_build/results/42", True),
        (CUSTOMER_METADATA_VALUE, "Grüße 42 ünïcödé", True),  # \p{L} and \p{N} are Unicode in Java too
        (r"[\w+=,.@-]+", "rôle", False),  # \w is ASCII in Java, Unicode in Python
        (r"[\w+=,.@-]+", "role_1", True),
        (r"\d+", "١٢", False),  # Arabic-Indic digits: \d is ASCII in Java
        (r"\p{Alnum}+", "é", False),  # POSIX classes are ASCII in Java
        (r"\p{Print}*", "tab\there", False),
        (r"[\s-_]+", "A", False),  # Java: \s, '-', '_'; a naive translation reads the range \r-_
        (r"[\s-_]+", " -_", True),
        (r".*", "line\u2028break", False),  # '.' stops at every Java line terminator
        (r"[\u0020-\uD7FF\uE000-\uFFFD\uD800\uDC00-\uDBFF\uDFFF]*", "emoji \U0001f600", True),  # surrogate pair
        (r"[\p{Print}&&[^|:/]]+", "a:b", False),  # intersection
        (r"[\p{Print}&&[^|:/]]+", "ab", True),
        (r"[\S]{1,3}", "a b", False),  # a negated shorthand inside a class
        (r"[a\x{60}]+", "a`", True),
        (r"[a-z]+", "abc1", False),  # whole-value match, as AWS's validator does, not a search
    ],
)
def test_java_patterns_match_as_aws_matches_them(pattern: str, value: str, expected: bool) -> None:
    assert matches(pattern, value) is expected


def test_patterns_compile_once() -> None:
    assert compile_aws_pattern(r"[a-z]{1,3}") is compile_aws_pattern(r"[a-z]{1,3}")


def test_a_pattern_that_cannot_be_translated_is_an_error_not_a_pass() -> None:
    with pytest.raises(PatternError, match=r"(?s)cannot compile the AWS pattern .*extend mlops.local.strict.patterns"):
        compile_aws_pattern(r"[0-9]{11}{0,1011}")


@pytest.mark.slow
def test_every_pattern_in_botocore_translates_but_one() -> None:
    loader = _SESSION.get_component("data_loader")
    patterns: dict[str, set[str]] = {}
    for service in _SESSION.get_available_services():
        for shape in loader.load_service_model(service, "service-2")["shapes"].values():
            if "pattern" in shape:
                patterns.setdefault(shape["pattern"], set()).add(service)
    failing = {}
    for pattern, services in patterns.items():
        try:
            compile_aws_pattern(pattern)
        except PatternError:
            failing[pattern] = services
    assert len(patterns) > 4000
    # Java itself stacks these two quantifiers; neither Python engine does. Only rbin uses it.
    assert failing == {r"^arn:\S+:rbin:[a-z\-0-9]{0,63}:[0-9]{12}:rule/[0-9a-zA-Z]{11}{0,1011}$": {"rbin"}}


def test_translation_keeps_what_python_reads_alike() -> None:
    assert translate(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$") == (r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$", False)


# ---------------------------------------------------------------------------------- validator


def _package_update(**members: Any) -> list[Violation]:
    arn = "arn:aws:sagemaker:us-east-1:000000000001:model-package/breast-cancer/1"
    return validate(_input("sagemaker", "UpdateModelPackage"), {"ModelPackageArn": arn, **members})


def test_pattern_names_the_map_member_and_the_constraint() -> None:
    violations = _package_update(CustomerMetadataProperties={"ado_run_url": RUN_URL})
    assert message(violations) == (
        f"1 validation error detected: Value '{RUN_URL}' at 'customerMetadataProperties.ado_run_url' failed to "
        f"satisfy constraint: Member must satisfy regular expression pattern: {CUSTOMER_METADATA_VALUE}"
    )
    assert [v.kind for v in violations] == ["pattern"]


def test_a_valid_request_has_no_violations() -> None:
    assert (
        _package_update(
            ModelApprovalStatus="Approved",
            ApprovalDescription="reviewed by the platform team",
            CustomerMetadataProperties={"git_commit": "0123abc", "build_id": "20261201T101010Z-0123abc"},
        )
        == []
    )


def test_string_lengths() -> None:
    shape = _input("sagemaker", "CreateModelPackageGroup")
    too_long = validate(shape, {"ModelPackageGroupName": "a" * 64})
    assert [(v.path, v.constraint) for v in too_long] == [
        ("modelPackageGroupName", "Member must have length less than or equal to 63"),
        ("modelPackageGroupName", r"Member must satisfy regular expression pattern: [a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"),
    ]
    empty = validate(shape, {"ModelPackageGroupName": ""})
    assert ("length", "Member must have length greater than or equal to 1") in {(v.kind, v.constraint) for v in empty}


def test_numeric_ranges_and_types() -> None:
    shape = _input("sagemaker", "ListModelPackages")
    assert [v.constraint for v in validate(shape, {"MaxResults": 0})] == [
        "Member must have value greater than or equal to 1"
    ]
    assert [v.constraint for v in validate(shape, {"MaxResults": 101})] == [
        "Member must have value less than or equal to 100"
    ]
    assert [(v.kind, v.path) for v in validate(shape, {"MaxResults": "10"})] == [("type", "maxResults")]


def test_list_and_map_bounds() -> None:
    tags = [{"Key": f"k{i}", "Value": "v"} for i in range(51)]
    shape = _input("sagemaker", "CreateModelPackageGroup")
    assert [(v.path, v.constraint) for v in validate(shape, {"ModelPackageGroupName": "g", "Tags": tags})] == [
        ("tags", "Member must have length less than or equal to 50")
    ]
    metadata = {f"key{i}": "v" for i in range(51)}
    assert [(v.path, v.kind) for v in _package_update(CustomerMetadataProperties=metadata)] == [
        ("customerMetadataProperties", "length")
    ]


def test_map_keys_are_checked() -> None:
    violations = _package_update(CustomerMetadataProperties={"run?url": "x"})
    assert [v.describe() for v in violations] == [
        "Value 'run?url' at 'customerMetadataProperties' failed to satisfy constraint: Map keys must satisfy "
        r"constraint: Member must satisfy regular expression pattern: ([\p{L}\p{Z}\p{N}_.:\/=+\-@]*)${1,128}"
    ]


def test_enums() -> None:
    violations = _package_update(ModelApprovalStatus="Approve")
    assert [v.describe() for v in violations] == [
        "Value 'Approve' at 'modelApprovalStatus' failed to satisfy constraint: Member must satisfy enum value set: "
        "[Approved, Rejected, PendingManualApproval]"
    ]


def test_nested_required_members_in_structures_and_list_items() -> None:
    shape = _input("sagemaker", "CreateModelPackage")
    violations = validate(
        shape,
        {
            "ModelPackageGroupName": "g",
            "InferenceSpecification": {"SupportedContentTypes": ["text/csv"]},
            "Tags": [{"Key": "team"}],
        },
    )
    assert [(v.path, v.constraint) for v in violations] == [
        ("inferenceSpecification.containers", "Member must not be null"),
        ("tags.1.member.value", "Member must not be null"),
    ]
    assert violations[0].describe().startswith("Value null at 'inferenceSpecification.containers'")


def test_several_violations_are_counted_and_joined() -> None:
    violations = _package_update(ModelApprovalStatus="Approve", CustomerMetadataProperties={"u": RUN_URL})
    text = message(violations)
    assert text.startswith("2 validation errors detected: Value 'Approve' at 'modelApprovalStatus'")
    assert f"; Value '{RUN_URL}' at 'customerMetadataProperties.u'" in text


def test_sensitive_values_are_not_echoed() -> None:
    violations = validate(_input("secretsmanager", "CreateSecret"), {"Name": "s", "SecretString": "p" * 65537})
    assert [v.describe() for v in violations] == [
        "Value at 'secretString' failed to satisfy constraint: Member must have length less than or equal to 65536"
    ]


def test_union_members_exclude_each_other() -> None:
    union = next(
        _SESSION.get_service_model("sagemaker").shape_for(name)
        for name in _SESSION.get_service_model("sagemaker").shape_names
        if _SESSION.get_service_model("sagemaker").shape_for(name).metadata.get("union")
    )
    first, second = list(union.members)[:2]
    found = validate(union, {first: _sample(union.members[first]), second: _sample(union.members[second])})
    assert found[0].kind == "union"
    assert f"Member must have exactly one of its members set; found 2: {first}, {second}" in found[0].describe()


def _sample(shape: Any) -> Any:
    return {"structure": {}, "list": [], "map": {}, "boolean": True, "integer": 1, "long": 1}.get(shape.type_name, "x")


def test_every_shape_type_is_checked() -> None:
    # A small model of its own, so that each type's checks run once (the walker is the same for every service).
    resolver = ShapeResolver(
        {
            "Input": {
                "type": "structure",
                "members": {
                    name: {"shape": name}
                    for name in ("Ratio", "Flag", "When", "Nested", "Items", "Labels", "Payload", "Doc", "Json")
                },
            },
            "Ratio": {"type": "double", "min": 0, "max": 1},
            "Flag": {"type": "boolean"},
            "When": {"type": "timestamp"},
            "Nested": {"type": "structure", "members": {}},
            "Items": {"type": "list", "member": {"shape": "Flag"}},
            "Labels": {"type": "map", "key": {"shape": "Key"}, "value": {"shape": "Flag"}},
            "Key": {"type": "string"},
            "Payload": {"type": "blob", "max": 3},
            "Doc": {"type": "structure", "members": {}, "document": True},
            "Json": {"type": "string", "jsonvalue": True},
        }
    )
    shape = resolver.get_shape_by_name("Input")
    valid = {"Ratio": 0.5, "Flag": True, "When": 1.5, "Items": [False], "Labels": {"a": True}, "Payload": b"abc"}
    assert validate(shape, {**valid, "Doc": {"any": ["thing"]}, "Json": {"decoded": 1}, "Nested": {}}) == []
    wrong = {"Ratio": "x", "Flag": "yes", "When": [], "Nested": [], "Items": {}, "Labels": [], "Payload": 5}
    assert [(v.path, v.kind) for v in validate(shape, wrong)] == [(p[:1].lower() + p[1:], "type") for p in wrong]
    found = validate(shape, {"Ratio": 1.5, "Items": [None], "Labels": {"a": None}, "Payload": "abcd"})
    assert [v.describe() for v in found] == [
        "Value '1.5' at 'ratio' failed to satisfy constraint: Member must have value less than or equal to 1",
        "Value null at 'items.1.member' failed to satisfy constraint: Member must not be null",
        "Value null at 'labels.a' failed to satisfy constraint: Member must not be null",
        "Value 'abcd' at 'payload' failed to satisfy constraint: Member must have length less than or equal to 3",
    ]
    assert validate(shape, {"Payload": b"abcd"})[0].describe().startswith("Value '<4 bytes>' at 'payload'")
    assert validate(shape, {"Flag": 1})[0].describe() == (
        "Value '1' at 'flag' failed to satisfy constraint: Member must be a boolean, not int"
    )
    assert validate(None, {"anything": 1}) == []


def test_long_values_are_shortened_in_the_message() -> None:
    shape = _input("sagemaker", "CreatePipeline")
    found = validate(shape, {"PipelineName": "p", "ClientRequestToken": "t", "PipelineDefinition": "x" * 1_048_577})
    [too_long] = [v.describe() for v in found if v.path == "pipelineDefinition"]
    assert too_long.startswith("Value 'xxxx")
    assert "...(1048577 characters)' at 'pipelineDefinition'" in too_long


# ------------------------------------------------------------ the gate between botocore and the wire


class Accepted(Exception):
    """The gate let the request through (it would have reached moto)."""


def _environ(request: AWSPreparedRequest) -> dict[str, Any]:
    url = urlsplit(request.url)
    body = request.body
    data = body.read() if hasattr(body, "read") else (body.encode() if isinstance(body, str) else body or b"")
    headers = {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}
    builder = EnvironBuilder(
        path=url.path, query_string=url.query, method=request.method, headers=headers, data=data, base_url=url.netloc
    )
    try:
        return builder.get_environ()
    finally:
        builder.close()


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body


def _client(service: str, gate: RequestGate, seen: list[dict[str, Any]] | None = None) -> Any:
    client = boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url="http://127.0.0.1:9",
        region_name="us-east-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="secret",
        config=BotoConfig(parameter_validation=False, retries={"max_attempts": 0}),
    )

    def send(request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        refusal = gate.check(_environ(request))
        if refusal is None:
            raise Accepted(request.url)
        if seen is not None:
            seen.append({"status": refusal.status, "headers": dict(refusal.headers), "body": refusal.body})
        headers = {"Content-Type": refusal.content_type, **dict(refusal.headers)}
        return AWSResponse(request.url, refusal.status, headers, _Raw(refusal.body))

    client.meta.events.register("before-send", send)
    return client


@pytest.fixture
def gate() -> RequestGate:
    return RequestGate(enabled=True)


def test_json_protocol_refusal_is_a_validation_exception(gate: RequestGate) -> None:
    seen: list[dict[str, Any]] = []
    sm = _client("sagemaker", gate, seen)
    with pytest.raises(ClientError) as refused:
        sm.update_model_package(
            ModelPackageArn="arn:aws:sagemaker:us-east-1:000000000001:model-package/g/1",
            CustomerMetadataProperties={"ado_run_url": RUN_URL},
        )
    error = refused.value.response["Error"]
    assert error["Code"] == "ValidationException"
    assert "at 'customerMetadataProperties.ado_run_url'" in error["Message"]
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert json.loads(seen[0]["body"])["__type"] == "ValidationException"
    with pytest.raises(Accepted):
        sm.update_model_package(
            ModelPackageArn="arn:aws:sagemaker:us-east-1:000000000001:model-package/g/1",
            CustomerMetadataProperties={"ado_run_url": "https://dev.azure.com/org/project/_build/results/42"},
        )
    assert gate.stats.to_dict()["refused_by_operation"] == {"sagemaker:UpdateModelPackage": 1}
    assert gate.stats.to_dict()["checked"] == 2


def test_query_protocol_refusal_is_an_xml_validation_error(gate: RequestGate) -> None:
    seen: list[dict[str, Any]] = []
    with pytest.raises(ClientError) as refused:
        _client("iam", gate, seen).create_role(RoleName="mlops deploy", AssumeRolePolicyDocument="{}")
    error = refused.value.response["Error"]
    assert (error["Code"], error["Type"]) == ("ValidationError", "Sender")
    assert "Value 'mlops deploy' at 'roleName' failed to satisfy constraint" in error["Message"]
    assert seen[0]["body"].startswith(b'<ErrorResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">')
    with pytest.raises(ClientError, match="ValidationError") as sts_refused:
        _client("sts", gate).assume_role(RoleArn="arn:aws:iam::000000000002:role/mlops-deploy", RoleSessionName="a b")
    assert "at 'roleSessionName'" in str(sts_refused.value)
    with pytest.raises(Accepted):
        _client("sts", gate).assume_role(RoleArn="arn:aws:iam::000000000002:role/mlops-deploy", RoleSessionName="ab")


def test_other_query_services_answer_with_their_declared_codes(gate: RequestGate) -> None:
    with pytest.raises(ClientError) as cloudformation:
        _client("cloudformation", gate).describe_stacks(StackName="mlops-automation", NextToken="")
    assert cloudformation.value.response["Error"]["Code"] == "ValidationError"
    assert (
        "Value '' at 'nextToken' failed to satisfy constraint: Member must have length greater than or equal to 1"
        in (cloudformation.value.response["Error"]["Message"])
    )
    with pytest.raises(ClientError) as sns:
        _client("sns", gate).tag_resource(
            ResourceArn="arn:aws:sns:us-east-1:000000000001:mlops-alarms", Tags=[{"Key": "k" * 129, "Value": "v"}]
        )
    # SNS's model declares ValidationException (query code ValidationException).
    assert sns.value.response["Error"]["Code"] == "ValidationException"
    assert "at 'tags.1.member.key'" in sns.value.response["Error"]["Message"]


def test_unsigned_web_identity_federation_is_recognised(gate: RequestGate) -> None:
    sts = _client("sts", gate)
    with pytest.raises(Accepted):  # botocore sends it unsigned, as AWS serves it
        sts.assume_role_with_web_identity(
            RoleArn="arn:aws:iam::000000000002:role/mlops-deploy", RoleSessionName="ado", WebIdentityToken="t" * 8
        )
    with pytest.raises(ClientError, match="ValidationError"):
        sts.assume_role_with_web_identity(
            RoleArn="arn:aws:iam::000000000002:role/mlops-deploy", RoleSessionName="ado", WebIdentityToken="abc"
        )


def test_query_compatible_json_carries_the_query_code(gate: RequestGate) -> None:
    seen: list[dict[str, Any]] = []
    with pytest.raises(ClientError) as refused:
        _client("cloudwatch", gate, seen).describe_alarms(AlarmNames=["a" * 256])
    # CloudWatch's model declares ValidationException with the query code ValidationError.
    assert refused.value.response["Error"]["Code"] == "ValidationError"
    assert seen[0]["headers"]["x-amzn-query-error"] == "ValidationError;Sender"
    assert "at 'alarmNames.1.member'" in refused.value.response["Error"]["Message"]


def test_rest_json_refusal_names_the_uri_member(gate: RequestGate) -> None:
    with pytest.raises(ClientError) as refused:
        _client("lambda", gate).get_function(FunctionName="mlops bridge")
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "Value 'mlops bridge' at 'functionName'" in refused.value.response["Error"]["Message"]
    # SageMaker Runtime declares its own ValidationError.
    with pytest.raises(ClientError) as runtime:
        _client("sagemaker-runtime", gate).invoke_endpoint(EndpointName="bad_name", Body=b"1,2")
    assert runtime.value.response["Error"]["Code"] == "ValidationError"
    with pytest.raises(Accepted):
        _client("sagemaker-runtime", gate).invoke_endpoint(EndpointName="breast-cancer", Body=b"1,2")


def test_rest_xml_refusal_is_s3_shaped(gate: RequestGate) -> None:
    s3 = _client("s3", gate)
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket="mlops-artifacts", Key="a.txt", Body=b"x", StorageClass="FAST")
    error = refused.value.response["Error"]
    assert error["Code"] == "InvalidArgument"
    assert "Value 'FAST' at 'storageClass' failed to satisfy constraint: Member must satisfy enum" in error["Message"]
    with pytest.raises(Accepted):
        s3.put_object(Bucket="mlops-artifacts", Key="a.txt", Body=b"x", Metadata={"build": "1"})


def test_a_body_that_does_not_fit_the_model_is_a_serialization_exception(gate: RequestGate) -> None:
    with pytest.raises(ClientError) as refused:
        _client("sagemaker", gate).list_model_packages(ModelPackageGroupName="g", MaxResults="ten")
    assert refused.value.response["Error"]["Code"] == "SerializationException"
    assert "the ListModelPackages request does not parse as its model's input" in str(refused.value)


def test_unknown_operations_and_unsigned_requests_are_refused(gate: RequestGate) -> None:
    unsigned = EnvironBuilder(path="/", method="POST", data=b'{"x": 1}', headers={"X-Amz-Target": "SageMaker.Nope"})
    assert (refusal := gate.check(unsigned.get_environ())) is not None
    assert (refusal.status, refusal.code) == (403, "MissingAuthenticationTokenException")
    signed = EnvironBuilder(
        path="/",
        method="POST",
        data=b"{}",
        content_type="application/x-amz-json-1.1",
        headers={
            "X-Amz-Target": "SageMaker.CreateTimeMachine",
            "Authorization": "AWS4-HMAC-SHA256 Credential=AK/20261201/us-east-1/sagemaker/aws4_request, Signature=x",
        },
    )
    assert (unknown := gate.check(signed.get_environ())) is not None
    assert (unknown.status, unknown.code) == (400, "UnknownOperationException")
    assert "no operation of sagemaker" in unknown.message


def test_twin_management_paths_and_a_lenient_gate_pass_everything() -> None:
    strict = RequestGate(enabled=True)
    assert strict.check(EnvironBuilder(path="/moto-api/reset", method="POST").get_environ()) is None
    assert strict.check(EnvironBuilder(path="/_twin/health").get_environ()) is None
    lenient = RequestGate(enabled=False)
    with pytest.raises(Accepted):
        _client("iam", lenient).create_role(RoleName="mlops deploy", AssumeRolePolicyDocument="{}")
    assert lenient.mode == "lenient" and strict.mode == "strict"


def test_the_switch_reads_on_off_and_refuses_anything_else() -> None:
    assert strict_requests_from({}) is True
    assert strict_requests_from({"MLOPS_TWIN_STRICT_REQUESTS": "1"}) is True
    assert strict_requests_from({"MLOPS_TWIN_STRICT_REQUESTS": "off"}) is False
    assert strict_requests_from({"MLOPS_TWIN_STRICT_REQUESTS": "0"}) is False
    with pytest.raises(TwinError, match=r"MLOPS_TWIN_STRICT_REQUESTS='maybe' is neither on nor off"):
        strict_requests_from({"MLOPS_TWIN_STRICT_REQUESTS": "maybe"})


def test_gate_stats_are_json_for_the_health_endpoint(gate: RequestGate) -> None:
    with pytest.raises(ClientError):
        _client("logs", gate).create_log_group(logGroupName="a b")
    summary = gate.stats.to_dict()
    assert summary["refused_by_operation"] == {"logs:CreateLogGroup": 1}
    assert json.loads(json.dumps(summary)) == summary


# ------------------------------------------------------------------- through the running twin


def _drain(twin: Twin) -> list[dict[str, Any]]:
    sqs = twin.client("sqs")
    messages = []
    while batch := sqs.receive_message(QueueUrl=twin.made.approval_queue_url, MaxNumberOfMessages=10).get(
        "Messages", []
    ):
        for item in batch:
            messages.append(json.loads(item["Body"]))
            sqs.delete_message(QueueUrl=twin.made.approval_queue_url, ReceiptHandle=item["ReceiptHandle"])
    return messages


@pytest.fixture(scope="module")
def package(twin: Twin) -> str:
    sm = twin.client("sagemaker")
    spec = {
        "Containers": [{"Image": "683313688378.dkr.ecr.us-east-1.amazonaws.com/xgb:3.2-0"}],
        "SupportedContentTypes": ["text/csv"],
        "SupportedResponseMIMETypes": ["application/json"],
    }
    arn: str = sm.create_model_package(
        ModelPackageGroupName="breast-cancer",
        InferenceSpecification=spec,
        ModelApprovalStatus="PendingManualApproval",
        CustomerMetadataProperties={"git_commit": "0123abc"},
    )["ModelPackageArn"]
    return arn


def test_run_url_with_a_query_string_is_refused_and_nothing_is_written(twin: Twin, package: str) -> None:
    assert twin.server.request_gate.enabled  # the default: on
    sm = twin.client("sagemaker")
    _drain(twin)
    with pytest.raises(ClientError) as refused:
        sm.update_model_package(
            ModelPackageArn=package,
            ModelApprovalStatus="Approved",
            CustomerMetadataProperties={"ado.deployRunUrl": RUN_URL},
        )
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "at 'customerMetadataProperties.ado.deployRunUrl' failed to satisfy constraint" in str(refused.value)
    described = sm.describe_model_package(ModelPackageName=package)
    assert described["CustomerMetadataProperties"] == {"git_commit": "0123abc"}
    assert described["ModelApprovalStatus"] == "PendingManualApproval"
    assert _drain(twin) == []  # the shim emitted no approval event either


def test_refused_creations_create_nothing_in_json_query_and_rest_services(twin: Twin) -> None:
    sm, iam, s3 = twin.client("sagemaker"), twin.client("iam"), twin.client("s3")
    with pytest.raises(ClientError, match="ValidationException"):
        sm.create_model_package_group(ModelPackageGroupName="team_a")
    groups = sm.list_model_package_groups()["ModelPackageGroupSummaryList"]
    assert "team_a" not in {g["ModelPackageGroupName"] for g in groups}

    with pytest.raises(ClientError, match="ValidationError"):
        iam.create_role(RoleName="mlops deploy", AssumeRolePolicyDocument="{}")
    assert "mlops deploy" not in {r["RoleName"] for r in iam.list_roles()["Roles"]}

    bucket = s3.list_buckets()["Buckets"][0]["Name"]
    with pytest.raises(ClientError, match="InvalidArgument"):
        s3.put_object(Bucket=bucket, Key="strict/refused.txt", Body=b"x", StorageClass="FAST")
    assert s3.list_objects_v2(Bucket=bucket, Prefix="strict/").get("KeyCount") == 0


def test_a_lenient_twin_accepts_what_aws_refuses(tmp_path: Path, twin: Twin, package: str) -> None:
    lenient = TwinServer(
        state_dir=tmp_path, accounts=twin.server.accounts, region=twin.config.region, strict_requests=False
    ).start()
    try:
        sm = boto3.client(
            "sagemaker",
            endpoint_url=lenient.url,
            region_name=twin.config.region,
            aws_access_key_id="twin-automation",
            aws_secret_access_key="x",
        )
        sm.update_model_package(ModelPackageArn=package, CustomerMetadataProperties={"ado.deployRunUrl": RUN_URL})
        written = sm.describe_model_package(ModelPackageName=package)["CustomerMetadataProperties"]
        assert written["ado.deployRunUrl"] == RUN_URL
    finally:
        lenient.stop()


@pytest.mark.slow
def test_local_up_prints_the_mode_and_the_flag_turns_it_off(twin_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--profile", "local", "local", "up", "--lenient-requests"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0].endswith("; requests lenient")
    assert "requests lenient); provisioning" in err
    assert main(["local", "down"]) == 0
    # Strict, the default, is what tests/local/test_local_cli.py's `local up` prints (one twin fewer here).
