"""IAM enforced by the twin, through a running twin: each case fails on a lenient twin (moto alone).

Roles, policies and resources are made here (as the account's root, the twin's bootstrap caller);
the calls under test are made by role sessions, as the pipelines make them.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import pytest
from botocore.config import Config as BotoConfig

from mlops.local.server import TwinServer

A, B = "000000000011", "000000000022"  # two accounts: A owns the resources, B calls across
REGION = "us-east-1"
NO_RETRY = BotoConfig(retries={"max_attempts": 1, "mode": "standard"})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwinServer]:
    twin = TwinServer(
        state_dir=tmp_path_factory.mktemp("iam-twin"),
        accounts={"automation": A, "staging": B, "prod": "000000000033"},
        region=REGION,
        iam_mode="enforce",
    ).start()
    with urllib.request.urlopen(urllib.request.Request(f"{twin.url}/moto-api/reset", method="POST"), timeout=10):
        pass
    try:
        yield twin
    finally:
        twin.stop()


def _client(server: TwinServer, service: str, session: boto3.Session) -> Any:
    return session.client(service, endpoint_url=server.url, config=NO_RETRY)  # type: ignore[call-overload]


def _root(account: str = A) -> boto3.Session:
    """The automation account's root: the twin maps keys moto never issued to it (its bootstrap caller)."""
    if account != A:
        raise ValueError(f"only account {A}'s root has keys in the twin; reach {account} through a role")
    return boto3.Session(aws_access_key_id="twin-automation", aws_secret_access_key="x", region_name=REGION)


def _trust(principal: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}],
        }
    )


def _role(server: TwinServer, name: str, statements: list[dict[str, Any]], *, account: str = A) -> str:
    """A role in `account` trusting account A, with one inline policy of these statements."""
    iam = _client(server, "iam", _admin(server, account))
    arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=_trust(f"arn:aws:iam::{A}:root"))["Role"]["Arn"]
    if statements:
        iam.put_role_policy(
            RoleName=name,
            PolicyName="grants",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
        )
    return str(arn)


_ADMINS: dict[str, boto3.Session] = {}


def _admin(server: TwinServer, account: str) -> boto3.Session:
    """Account A's root; for another account, a session of an admin role there (made through moto's IAM)."""
    if account == A:
        return _root(A)
    if account not in _ADMINS:
        from moto.iam.models import iam_backends

        admin = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        backend = iam_backends[account]["aws"]
        backend.create_role("admin", _trust(f"arn:aws:iam::{A}:root"), "/", None, "", [], None)
        backend.put_role_policy("admin", "admin", json.dumps(admin))
        _ADMINS[account] = _session(server, f"arn:aws:iam::{account}:role/admin")
    return _ADMINS[account]


def _session(server: TwinServer, role_arn: str, via: boto3.Session | None = None) -> boto3.Session:
    sts = _client(server, "sts", via or _root(A))
    credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName="under-test")["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )


def _denied(call: Any) -> botocore.exceptions.ClientError:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call()
    assert caught.value.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException"), caught.value.response
    return caught.value


def test_a_role_without_a_grant_is_denied_with_awss_message_and_nothing_is_created(server: TwinServer) -> None:
    role = _role(server, "no-grants", [])
    session = _session(server, role)
    error = _denied(
        lambda: _client(server, "sagemaker", session).create_model_package_group(ModelPackageGroupName="g1")
    )
    assert error.response["Error"]["Message"] == (
        f"User: arn:aws:sts::{A}:assumed-role/no-grants/under-test is not authorized to perform: "
        f"sagemaker:CreateModelPackageGroup on resource: arn:aws:sagemaker:{REGION}:{A}:model-package-group/g1 "
        "because no identity-based policy allows the sagemaker:CreateModelPackageGroup action"
    )
    s3_error = _denied(lambda: _client(server, "s3", session).create_bucket(Bucket="never-made"))
    assert s3_error.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    groups = _client(server, "sagemaker", _root(A)).list_model_package_groups()["ModelPackageGroupSummaryList"]
    assert "g1" not in [g["ModelPackageGroupName"] for g in groups]
    buckets = _client(server, "s3", _root(A)).list_buckets()["Buckets"]
    assert "never-made" not in [b["Name"] for b in buckets]
    ledger = server.iam.report()
    assert any(
        d["action"] == "sagemaker:CreateModelPackageGroup"
        and d["outcome"] == "denied"
        and "no-grants" in d["principal"]
        for d in ledger["decisions"]
    )


def test_a_statement_scoped_to_another_resource_does_not_match(server: TwinServer) -> None:
    root_s3 = _client(server, "s3", _root(A))
    for bucket in ("granted-bucket", "other-bucket"):
        root_s3.create_bucket(Bucket=bucket)
        root_s3.put_object(Bucket=bucket, Key="data.csv", Body=b"1,2")
    role = _role(
        server,
        "reads-one-bucket",
        [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::granted-bucket/*"}],
    )
    s3 = _client(server, "s3", _session(server, role))
    assert s3.get_object(Bucket="granted-bucket", Key="data.csv")["Body"].read() == b"1,2"
    error = _denied(lambda: s3.get_object(Bucket="other-bucket", Key="data.csv"))
    assert "on resource: arn:aws:s3:::other-bucket/data.csv" in error.response["Error"]["Message"]


@pytest.mark.parametrize(
    ("action", "condition", "call"),
    [
        (
            "application-autoscaling:DescribeScalableTargets",
            {"StringEquals": {"application-autoscaling:service-namespace": "sagemaker"}},
            lambda c: c("application-autoscaling").describe_scalable_targets(ServiceNamespace="sagemaker"),
        ),
        (
            "kms:DescribeKey",
            {"Bool": {"kms:GrantIsForAWSResource": "true"}},
            lambda c: c("kms").describe_key(KeyId="alias/under-test"),
        ),
    ],
    ids=["autoscaling-service-namespace", "kms-grant-is-for-aws-resource"],
)
def test_a_statement_under_a_condition_key_its_action_does_not_support_does_not_match(
    server: TwinServer, action: str, condition: dict[str, Any], call: Any
) -> None:
    kms = _client(server, "kms", _root(A))
    if "alias/under-test" not in [a["AliasName"] for a in kms.list_aliases()["Aliases"]]:
        kms.create_alias(AliasName="alias/under-test", TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
    name = action.split(":")[1]
    conditioned = _session(
        server,
        _role(server, f"cond-{name}", [{"Effect": "Allow", "Action": action, "Resource": "*", "Condition": condition}]),
    )
    plain = _session(server, _role(server, f"plain-{name}", [{"Effect": "Allow", "Action": action, "Resource": "*"}]))
    call(lambda service: _client(server, service, plain))  # the same grant without the condition is allowed
    error = _denied(lambda: call(lambda service: _client(server, service, conditioned)))
    assert f"because no identity-based policy allows the {action} action" in error.response["Error"]["Message"]


def test_an_explicit_deny_wins(server: TwinServer) -> None:
    role = _role(
        server,
        "allowed-then-denied",
        [
            {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"},
            {"Effect": "Deny", "Action": "sqs:CreateQueue", "Resource": f"arn:aws:sqs:{REGION}:{A}:forbidden-*"},
        ],
    )
    sqs = _client(server, "sqs", _session(server, role))
    sqs.create_queue(QueueName="fine-queue")
    error = _denied(lambda: sqs.create_queue(QueueName="forbidden-queue"))
    assert error.response["Error"]["Message"].endswith("with an explicit deny in an identity-based policy")
    assert "forbidden-queue" not in " ".join(_client(server, "sqs", _root(A)).list_queues().get("QueueUrls", []))


def test_a_missing_trust_makes_assume_role_fail(server: TwinServer) -> None:
    iam = _client(server, "iam", _root(A))
    iam.create_role(RoleName="trusts-someone-else", AssumeRolePolicyDocument=_trust("arn:aws:iam::999999999999:root"))
    error = _denied(
        lambda: _client(server, "sts", _root(A)).assume_role(
            RoleArn=f"arn:aws:iam::{A}:role/trusts-someone-else", RoleSessionName="nope"
        )
    )
    assert "sts:AssumeRole" in error.response["Error"]["Message"]


def _token(issuer: str, subject: str, audience: str) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'RS256', 'typ': 'JWT'})}.{part({'iss': issuer, 'sub': subject, 'aud': audience})}.c2ln"


def test_web_identity_trust_conditions_on_sub_and_aud_are_evaluated(server: TwinServer) -> None:
    issuer = "vstoken.dev.azure.com/00000000-0000-0000-0000-0000000000aa"
    iam = _client(server, "iam", _root(A))
    provider = iam.create_open_id_connect_provider(
        Url=f"https://{issuer}", ClientIDList=["api://AzureADTokenExchange"], ThumbprintList=["a" * 40]
    )["OpenIDConnectProviderArn"]
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Federated": provider},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {
                    "StringEquals": {
                        f"{issuer}:aud": "api://AzureADTokenExchange",
                        f"{issuer}:sub": "sc://org/project/aws-build",
                    }
                },
            }
        ],
    }
    iam.create_role(RoleName="build-oidc", AssumeRolePolicyDocument=json.dumps(trust))
    role_arn = f"arn:aws:iam::{A}:role/build-oidc"

    def assume(subject: str, audience: str = "api://AzureADTokenExchange") -> Any:
        # The IAM hook alone: the token's signature is the twin's STS stand-in's check, made after it.
        form = urllib.parse.urlencode(
            {
                "Action": "AssumeRoleWithWebIdentity",
                "Version": "2011-06-15",
                "RoleArn": role_arn,
                "RoleSessionName": "pipeline",
                "WebIdentityToken": _token(f"https://{issuer}", subject, audience),
            }
        ).encode()
        environ = {
            "REQUEST_METHOD": "POST",
            "PATH_INFO": "/",
            "QUERY_STRING": "",
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
        }
        return server.iam.check(environ, form, A, REGION)

    assert assume("sc://org/project/aws-build") is None  # the trust's sub and aud hold: allowed
    for refused in (assume("sc://org/project/aws-prod"), assume("sc://org/project/aws-build", "api://other")):
        assert refused is not None
        status, body, _, _ = refused
        assert status == 403 and b"<Code>AccessDenied</Code>" in body
        assert b"sts:AssumeRoleWithWebIdentity on resource: arn:aws:iam::" in body


def test_cross_account_s3_and_kms_need_both_sides(server: TwinServer) -> None:
    a_s3, a_kms = _client(server, "s3", _root(A)), _client(server, "kms", _root(A))
    a_s3.create_bucket(Bucket="shared-artifacts")
    a_s3.put_object(Bucket="shared-artifacts", Key="model.tar.gz", Body=b"model")
    key_id = a_kms.create_key()["KeyMetadata"]["KeyId"]
    key_arn = f"arn:aws:kms:{REGION}:{A}:key/{key_id}"
    reader_arn = _role(
        server,
        "cross-reader",
        [
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::shared-artifacts/*"},
            {"Effect": "Allow", "Action": "kms:DescribeKey", "Resource": key_arn},
        ],
        account=B,
    )
    reader = _session(server, reader_arn)
    b_s3, b_kms = _client(server, "s3", reader), _client(server, "kms", reader)
    # The identity side alone: the bucket has no policy, the key's policy trusts only account A.
    s3_error = _denied(lambda: b_s3.get_object(Bucket="shared-artifacts", Key="model.tar.gz"))
    assert "because no resource-based policy allows the s3:GetObject action" in s3_error.response["Error"]["Message"]
    _denied(lambda: b_kms.describe_key(KeyId=key_arn))
    # Both sides: the bucket policy and the key policy name the reader.
    a_s3.put_bucket_policy(
        Bucket="shared-artifacts",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": reader_arn},
                        "Action": "s3:GetObject",
                        "Resource": "arn:aws:s3:::shared-artifacts/*",
                    }
                ],
            }
        ),
    )
    a_kms.put_key_policy(
        KeyId=key_id,
        PolicyName="default",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{A}:root"},
                        "Action": "kms:*",
                        "Resource": "*",
                    },
                    {"Effect": "Allow", "Principal": {"AWS": reader_arn}, "Action": "kms:DescribeKey", "Resource": "*"},
                ],
            }
        ),
    )
    assert b_s3.get_object(Bucket="shared-artifacts", Key="model.tar.gz")["Body"].read() == b"model"
    # moto keeps KMS keys per calling account, so past IAM it cannot find A's key for B: the IAM
    # decision is what this asserts (allowed with both sides), not moto's answer.
    with pytest.raises(botocore.exceptions.ClientError) as past_iam:
        b_kms.describe_key(KeyId=key_arn)
    assert past_iam.value.response["Error"]["Code"] == "NotFoundException"
    outcomes = {
        d["outcome"]
        for d in server.iam.report()["decisions"]
        if d["action"] == "kms:DescribeKey" and d["resource"] == key_arn
    }
    assert outcomes == {"allowed", "denied"}


def test_report_mode_allows_and_records_what_enforce_would_deny(tmp_path: Path, server: TwinServer) -> None:
    server.iam.authorizer.mode = "report"  # type: ignore[union-attr]
    try:
        session = _session(server, _role(server, "report-mode", []))
        _client(server, "sqs", session).create_queue(QueueName="made-in-report-mode")
    finally:
        server.iam.authorizer.mode = "enforce"  # type: ignore[union-attr]
    decisions = server.iam.report()["decisions"]
    assert any(d["outcome"] == "would-deny" and "report-mode" in d["principal"] for d in decisions)


def test_a_dead_engine_refuses_instead_of_allowing(tmp_path: Path) -> None:
    twin = TwinServer(
        state_dir=tmp_path,
        accounts={"automation": A, "staging": B, "prod": "000000000033"},
        region=REGION,
        iam_mode="enforce",
    ).start()
    try:
        assert twin.iam.sidecar is not None
        twin.iam.sidecar.process.kill()
        twin.iam.sidecar.process.wait()
        with pytest.raises(botocore.exceptions.ClientError) as caught:
            _client(twin, "sqs", _root(A)).create_queue(QueueName="made-without-iam")
        assert "IAM engine" in caught.value.response["Error"]["Message"]
    finally:
        twin.stop()


def test_a_service_principal_assumes_only_roles_that_trust_it(server: TwinServer) -> None:
    from mlops.local.twin_state import service_access_key

    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": A}},
            }
        ],
    }
    iam = _client(server, "iam", _root(A))
    iam.create_role(RoleName="function-role", AssumeRolePolicyDocument=json.dumps(trust))
    role_arn = f"arn:aws:iam::{A}:role/function-role"
    as_lambda = boto3.Session(
        aws_access_key_id=service_access_key("lambda"), aws_secret_access_key="x", region_name=REGION
    )
    assert _client(server, "sts", as_lambda).assume_role(RoleArn=role_arn, RoleSessionName="fn")["Credentials"]
    # The account's root is not the Lambda service: the trust names only lambda.amazonaws.com.
    _denied(lambda: _client(server, "sts", _root(A)).assume_role(RoleArn=role_arn, RoleSessionName="fn"))
    as_sagemaker = boto3.Session(
        aws_access_key_id=service_access_key("sagemaker"), aws_secret_access_key="x", region_name=REGION
    )
    _denied(lambda: _client(server, "sts", as_sagemaker).assume_role(RoleArn=role_arn, RoleSessionName="fn"))


def test_iam_report_command_lists_decisions_denials_and_unused_grants(
    server: TwinServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from click.testing import CliRunner

    import mlops.local.twin
    from mlops.cli.root import cli

    role = _role(
        server,
        "reporter",
        [{"Sid": "ReadQueues", "Effect": "Allow", "Action": ["sqs:GetQueueUrl", "sqs:ListQueues"], "Resource": "*"}],
    )
    sqs = _client(server, "sqs", _session(server, role))
    sqs.list_queues()
    _denied(lambda: sqs.create_queue(QueueName="not-granted"))
    monkeypatch.setattr(mlops.local.twin, "running", lambda directory: SimpleNamespace(url=server.url))
    out = tmp_path / "iam.json"
    result = CliRunner().invoke(cli, ["local", "iam-report", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "IAM mode: enforce" in result.output
    assert (
        "assumed-role/reporter/under-test | sqs:ListQueues | * | allowed x1 | statement 'ReadQueues'" in result.output
    )
    assert "sqs:CreateQueue" in result.output and "denied x1" in result.output
    report = json.loads(out.read_text())
    (reporter,) = [r for r in report["roles"] if r["role"].endswith(":role/reporter")]
    assert reporter["used_actions"] == ["sqs:ListQueues"]
    assert reporter["unused_actions"] == ["sqs:GetQueueUrl"]


def test_passing_a_role_to_a_service_needs_iam_pass_role_for_that_service(server: TwinServer) -> None:
    execution = f"arn:aws:iam::{A}:role/model-execution"
    _client(server, "iam", _root(A)).create_role(
        RoleName="model-execution", AssumeRolePolicyDocument=_trust(f"arn:aws:iam::{A}:root")
    )
    create_models = {"Effect": "Allow", "Action": "sagemaker:CreateModel", "Resource": "*"}

    def pass_role(service: str) -> dict[str, Any]:
        return {
            "Effect": "Allow",
            "Action": "iam:PassRole",
            "Resource": execution,
            "Condition": {"StringEquals": {"iam:PassedToService": service}},
        }

    def create_model(role_name: str, statements: list[dict[str, Any]]) -> Any:
        session = _session(server, _role(server, role_name, statements))
        return _client(server, "sagemaker", session).create_model(
            ModelName=f"model-{role_name}",
            ExecutionRoleArn=execution,
            PrimaryContainer={"Image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/x:1"},
        )

    error = _denied(lambda: create_model("no-pass-role", [create_models]))
    assert f"iam:PassRole on resource: {execution}" in error.response["Error"]["Message"]
    _denied(lambda: create_model("pass-to-lambda", [create_models, pass_role("lambda.amazonaws.com")]))
    assert create_model("pass-to-sagemaker", [create_models, pass_role("sagemaker.amazonaws.com")])["ModelArn"]
    models = _client(server, "sagemaker", _root(A)).list_models()["Models"]
    assert [m["ModelName"] for m in models if m["ModelName"].startswith("model-")] == ["model-pass-to-sagemaker"]
