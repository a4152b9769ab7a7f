"""The pure parts of the twin's IAM: request decoding, action names, ARN computation, messages, report."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlops.local.iam.engine import _denial, mode_from_environment, request_context
from mlops.local.iam.operations import Call, UndecodableRequest, decode
from mlops.local.iam.report import build_report, summary_line
from mlops.local.iam.resources import ActionInfo, fill, iam_action, needs
from mlops.local.iam.responses import access_denied
from mlops.local.iam.sidecar import IamEngineError
from mlops.local.iam.state import Principal

SIGNED = "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20261201/us-east-1/{service}/aws4_request, SignedHeaders=host"


def _decode(service: str, method: str, path: str, query: str = "", body: bytes = b"", **headers: str) -> Call:
    return decode(
        method=method,
        path=path,
        query_string=query,
        headers={"authorization": SIGNED.format(service=service), **headers},
        body=body,
        default_region="us-east-1",
    )


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "operation"),
    [
        ("PUT", "/bucket/a/b.csv", "", {}, "PutObject"),
        ("PUT", "/bucket/a/b.csv", "partNumber=1&uploadId=u", {}, "UploadPart"),
        ("PUT", "/bucket/a/b.csv", "", {"x-amz-copy-source": "src/k"}, "CopyObject"),
        ("GET", "/bucket", "list-type=2&prefix=a%2F", {}, "ListObjectsV2"),
        ("GET", "/bucket", "location", {}, "GetBucketLocation"),
        ("HEAD", "/bucket/a/b.csv", "", {}, "HeadObject"),
        ("PUT", "/bucket", "versioning", {}, "PutBucketVersioning"),
        ("POST", "/bucket/k", "uploads", {}, "CreateMultipartUpload"),
    ],
)
def test_s3_operations_are_routed_by_botocores_uri_templates(
    method: str, path: str, query: str, headers: dict[str, str], operation: str
) -> None:
    call = _decode("s3", method, path, query, **headers)
    assert call.operation == operation
    assert call.params["Bucket"] == "bucket"


def test_json_query_and_unsigned_sts_requests_are_named() -> None:
    json_call = _decode(
        "sagemaker",
        "POST",
        "/",
        body=b'{"ModelPackageGroupName": "g"}',
        **{"x-amz-target": "SageMaker.DescribeModelPackageGroup"},
    )
    assert (json_call.service, json_call.operation, json_call.params) == (
        "sagemaker",
        "DescribeModelPackageGroup",
        {"ModelPackageGroupName": "g"},
    )
    query_call = _decode(
        "iam",
        "POST",
        "/",
        body=b"Action=CreateRole&RoleName=r&Tags.member.1.Key=team&Tags.member.1.Value=ml",
        **{"content-type": "application/x-www-form-urlencoded"},
    )
    assert query_call.operation == "CreateRole"
    assert query_call.params["Tags"] == [{"Key": "team", "Value": "ml"}]
    unsigned = decode(
        method="POST",
        path="/",
        query_string="",
        headers={"content-type": "application/x-www-form-urlencoded"},
        body=b"Action=AssumeRoleWithWebIdentity&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr&WebIdentityToken=t",
        default_region="us-east-1",
    )
    assert (unsigned.service, unsigned.operation, unsigned.access_key) == ("sts", "AssumeRoleWithWebIdentity", None)
    with pytest.raises(UndecodableRequest):
        decode(method="GET", path="/", query_string="", headers={}, body=b"", default_region="us-east-1")
    runtime = _decode("sagemaker", "POST", "/endpoints/my-endpoint/invocations")
    assert (runtime.service, runtime.operation, runtime.params) == (
        "sagemaker-runtime",
        "InvokeEndpoint",
        {"EndpointName": "my-endpoint"},
    )


@pytest.mark.parametrize(
    ("service", "operation", "params", "action"),
    [
        ("s3", "HeadObject", {}, "s3:GetObject"),
        ("s3", "GetObject", {"VersionId": "v1"}, "s3:GetObjectVersion"),
        ("s3", "ListObjectsV2", {}, "s3:ListBucket"),
        ("lambda", "Invoke", {}, "lambda:InvokeFunction"),
        ("cloudwatch", "PutMetricAlarm", {}, "cloudwatch:PutMetricAlarm"),
        ("sagemaker-runtime", "InvokeEndpoint", {}, "sagemaker:InvokeEndpoint"),
        ("sts", "GetCallerIdentity", {}, None),
    ],
)
def test_iam_action_names(service: str, operation: str, params: dict[str, Any], action: str | None) -> None:
    assert iam_action(Call(service, operation, params, "us-east-1", "k", "json")) == action


class FakeLookups:
    def bucket_account(self, bucket: str) -> str | None:
        return {"their-bucket": "222222222222"}.get(bucket)

    def kms_key(self, account: str, region: str, reference: str) -> tuple[str, str] | None:
        return (account, "1234abcd") if reference in ("alias/artifacts", "1234abcd") else None

    def resource_arn(self, account: str, region: str, template: str, arn: str) -> str | None:
        return None

    def next_model_package(self, account: str, region: str, group: str) -> str | None:
        return f"{group}/3"

    def stack_arn(self, account: str, region: str, name: str) -> str | None:
        return None


def _call(operation: str, **params: Any) -> Call:
    return Call("x", operation, params, "us-east-1", "k", "json")


@pytest.mark.parametrize(
    ("template", "params", "arns"),
    [
        (
            "arn:${Partition}:s3:::${BucketName}/${ObjectName}",
            {"Bucket": "b", "Key": "a/b.csv"},
            ["arn:aws:s3:::b/a/b.csv"],
        ),
        (
            "arn:${Partition}:sqs:${Region}:${Account}:${QueueName}",
            {"QueueUrl": "http://127.0.0.1:5000/111111111111/q1"},
            ["arn:aws:sqs:us-east-1:111111111111:q1"],
        ),
        (
            "arn:${Partition}:kms:${Region}:${Account}:key/${KeyId}",
            {"KeyId": "alias/artifacts"},
            ["arn:aws:kms:us-east-1:111111111111:key/1234abcd"],
        ),
        (
            "arn:${Partition}:cloudwatch:${Region}:${Account}:alarm:${AlarmName}",
            {"AlarmNames": ["x", "y"]},
            ["arn:aws:cloudwatch:us-east-1:111111111111:alarm:x", "arn:aws:cloudwatch:us-east-1:111111111111:alarm:y"],
        ),
        (
            "arn:${Partition}:sagemaker:${Region}:${Account}:model-package/${ModelPackageName}",
            {"ModelPackageArn": "arn:aws:sagemaker:us-east-1:333333333333:model-package/g/1"},
            ["arn:aws:sagemaker:us-east-1:333333333333:model-package/g/1"],
        ),
        (
            "arn:${Partition}:sagemaker:${Region}:${Account}:model-package/${ModelPackageName}",
            {"ModelPackageGroupName": "g"},
            ["arn:aws:sagemaker:us-east-1:111111111111:model-package/g/3"],
        ),
        (
            "arn:${Partition}:ssm:${Region}:${Account}:parameter/${ParameterNameWithoutLeadingSlash}",
            {"Name": "/mlops/x"},
            ["arn:aws:ssm:us-east-1:111111111111:parameter/mlops/x"],
        ),
        ("arn:${Partition}:sagemaker:${Region}:${Account}:endpoint/${EndpointName}", {}, None),
    ],
)
def test_arns_are_filled_from_the_request(template: str, params: dict[str, Any], arns: list[str] | None) -> None:
    assert fill(template, _call("Op", **params), "111111111111", FakeLookups()) == arns


def test_a_required_resource_the_request_does_not_name_is_unresolved_not_wildcarded() -> None:
    info = ActionInfo(
        "sagemaker:DescribeEndpoint",
        False,
        [
            {
                "name": "endpoint",
                "required": True,
                "arn": "arn:${Partition}:sagemaker:${Region}:${Account}:endpoint/${EndpointName}",
            }
        ],
    )
    (need,) = needs(_call("DescribeEndpoint"), "sagemaker:DescribeEndpoint", info, "111111111111", FakeLookups())
    assert need.resources == [] and need.unresolved and "endpoint" in need.unresolved
    wildcard = ActionInfo("sagemaker:ListEndpoints", True, [])
    assert needs(_call("ListEndpoints"), "sagemaker:ListEndpoints", wildcard, "1", FakeLookups())[0].resources == ["*"]


def test_an_action_whose_resource_types_are_all_optional_is_authorised_on_star() -> None:
    # cloudwatch:PutMetricData lists `dataset` as an optional resource type; a request names none.
    info = ActionInfo(
        "cloudwatch:PutMetricData",
        False,
        [
            {
                "name": "dataset",
                "required": False,
                "arn": "arn:${Partition}:cloudwatch:${Region}:${Account}:dataset/${DatasetId}",
            }
        ],
    )
    (need,) = needs(_call("PutMetricData", Namespace="n"), "cloudwatch:PutMetricData", info, "1", FakeLookups())
    assert need.resources == ["*"] and need.unresolved is None


def test_request_context_names_only_members_and_tags() -> None:
    info = ActionInfo(
        "application-autoscaling:RegisterScalableTarget",
        False,
        [],
        ["application-autoscaling:service-namespace", "aws:RequestTag/${TagKey}"],
    )
    principal = Principal("role-session", "arn:aws:sts::1:assumed-role/r/s", "1", context={"aws:PrincipalAccount": "1"})
    call = _call("RegisterScalableTarget", ServiceNamespace="sagemaker", Tags={"team": "ml"})
    context = request_context(call, info, principal)
    assert context["application-autoscaling:service-namespace"] == "sagemaker"
    assert context["aws:RequestTag/team"] == "ml" and context["aws:TagKeys"] == ["team"]
    assert context["aws:PrincipalAccount"] == "1"


@pytest.mark.parametrize(
    ("result", "ending"),
    [
        (
            {"decision": "ImplicitlyDenied", "identity": {"result": "ImplicitlyDenied"}},
            "because no identity-based policy allows the s3:GetObject action",
        ),
        (
            {
                "decision": "ImplicitlyDenied",
                "identity": {"result": "Allowed"},
                "resource": {"result": "ImplicitlyDenied"},
            },
            "because no resource-based policy allows the s3:GetObject action",
        ),
        (
            {"decision": "ExplicitlyDenied", "identity": {"result": "ExplicitlyDenied"}},
            "with an explicit deny in an identity-based policy",
        ),
        (
            {"decision": "ExplicitlyDenied", "resource": {"result": "ExplicitlyDenied"}},
            "with an explicit deny in a resource-based policy",
        ),
    ],
)
def test_denial_messages_use_awss_wording(result: dict[str, Any], ending: str) -> None:
    message = _denial(result, "arn:aws:sts::1:assumed-role/r/s", "s3:GetObject", "arn:aws:s3:::b/k")
    head = (
        "User: arn:aws:sts::1:assumed-role/r/s is not authorized to perform: s3:GetObject on resource: arn:aws:s3:::b/k"
    )
    assert message == f"{head} {ending}"


def test_denials_are_shaped_per_protocol() -> None:
    status, body, _, _ = access_denied("json", "no")
    assert (status, json.loads(body)["__type"]) == (400, "AccessDeniedException")
    status, body, _, headers = access_denied("rest-json", "no")
    assert status == 403 and ("x-amzn-ErrorType", "AccessDeniedException") in headers
    for protocol in ("rest-xml", "query"):
        status, body, _, _ = access_denied(protocol, "a < b")
        assert status == 403 and b"<Code>AccessDenied</Code>" in body and b"a &lt; b" in body


def test_mode_comes_from_the_environment_and_rejects_unknown_values() -> None:
    assert mode_from_environment({"MLOPS_TWIN_IAM": "Enforce"}) == "enforce"
    with pytest.raises(IamEngineError, match="enforce, report, off"):
        mode_from_environment({"MLOPS_TWIN_IAM": "lenient"})


def test_report_counts_granted_actions_no_call_used() -> None:
    role = "arn:aws:iam::1:role/deploy"
    ledger = {
        "mode": "enforce",
        "calls": 3,
        "records": [
            {
                "principal": "s",
                "role_arn": role,
                "action": "s3:GetObject",
                "resource": "r",
                "outcome": "allowed",
                "detail": "",
                "count": 3,
            }
        ],
    }
    policies = [("p", {"Statement": [{"Effect": "Allow", "Action": ["s3:Get*"], "Resource": "*"}]})]
    report = build_report(
        ledger, [(role, policies)], lambda patterns: {"s3:Get*": ["s3:GetObject", "s3:GetObjectTagging"]}
    )
    assert report["roles"][0]["unused_actions"] == ["s3:GetObjectTagging"]
    assert summary_line(report) == "3 AWS calls, all allowed by the templates' policies; 1 granted actions unused"
    ledger["records"].append(
        {
            "principal": "s",
            "role_arn": role,
            "action": "s3:PutObject",
            "resource": "r",
            "outcome": "denied",
            "detail": "",
            "count": 1,
        }
    )
    assert "1 (principal, action, resource) denied" in summary_line(build_report(ledger, [], lambda p: {}))
