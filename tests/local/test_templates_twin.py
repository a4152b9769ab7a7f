"""The twin's accounts are what infra/templates deploy: roles, trusts, bridge pieces, keys; OIDC stand-ins.

Each of these fails on the old bootstrap, which made its own roles trusting `<account>:root`, a KMS key and
queues by hand, and let any caller assume any role.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import botocore.exceptions
import jwt
import pytest

from mlops.core.errors import PipelineRunError
from mlops.infra.templates import load_template, template_path
from mlops.local.bootstrap import APPROVAL_QUEUE, APPROVAL_RULE
from mlops.local.oidc import Issuer
from mlops.local.pipeline_credentials import connection_credentials
from mlops.local.twin import TwinState

from .conftest import Twin

pytestmark = pytest.mark.slow


def template_roles(account: str) -> set[str]:
    """The role names the account's template creates with the local profile's parameters."""
    names = {"automation": {"mlops-deploy", "mlops-sagemaker-pipeline", "mlops-bridge", "mlops-bridge-reminders"}}
    template = load_template(template_path("automation" if account == "automation" else "staging"))
    # automation: deploy, pipeline, bridge, reminders; stages: deploy, execution, monitoring, drift-alarm forwarding.
    assert sum(r["Type"] == "AWS::IAM::Role" for r in template["Resources"].values()) == 4
    stage = {"mlops-deploy", "mlops-sagemaker-execution", "mlops-sagemaker-monitoring"}
    if account == "prod":  # only prod has a drift alarm (mlops.yaml): its state changes go to the automation bus
        stage.add("mlops-drift-alarm-forward")
    return names.get(account, stage)


@pytest.mark.parametrize("account", ["automation", "staging", "prod"])
def test_the_roles_are_the_templates_and_none_trusts_a_whole_account(twin: Twin, account: str) -> None:
    roles = twin.client("iam", account).list_roles()["Roles"]
    assert {r["RoleName"] for r in roles} == template_roles(account)
    for role in roles:
        for statement in role["AssumeRolePolicyDocument"]["Statement"]:
            principal = statement["Principal"]
            if "AWS" in principal:  # cross-account chaining: only one named role, by condition
                assert statement["Condition"]["ArnEquals"]["aws:PrincipalArn"].endswith(":role/mlops-deploy")
            if "Federated" in principal:  # the template's own provider, not moto's unresolved "None"
                assert principal["Federated"].startswith(f"arn:aws:iam::{getattr(twin.config.accounts, account).id}:")
                assert ":oidc-provider/vstoken.dev.azure.com/" in principal["Federated"]


def state_of(twin: Twin) -> TwinState:
    accounts = {"automation": "000000000001", "staging": "000000000002", "prod": "000000000003"}
    return TwinState(twin.server.url, os.getpid(), twin.config.region, accounts, "", "", time.time())


@pytest.mark.parametrize("connection,account", [("aws-automation", "automation"), ("aws-staging", "staging")])
def test_service_connections_get_their_role_through_a_web_identity(twin: Twin, connection: str, account: str) -> None:
    env = connection_credentials(state_of(twin), twin.server.state_dir, connection, account)
    sts = twin.session().client(
        "sts",
        endpoint_url=twin.server.url,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env["AWS_SESSION_TOKEN"],
    )
    account_id = getattr(twin.config.accounts, account).id
    assert sts.get_caller_identity()["Arn"] == f"arn:aws:sts::{account_id}:assumed-role/mlops-deploy/ado-{connection}"


def assume_with(twin: Twin, token: str, account_id: str = "000000000002") -> dict[str, Any]:
    sts = twin.session().client("sts", endpoint_url=twin.server.url)
    return dict(
        sts.assume_role_with_web_identity(
            RoleArn=f"arn:aws:iam::{account_id}:role/mlops-deploy", RoleSessionName="twin-test", WebIdentityToken=token
        )
    )


def test_sts_refuses_a_token_the_twins_issuer_did_not_sign(twin: Twin, tmp_path: Path) -> None:
    issuer = Issuer.load(twin.server.state_dir)
    assert assume_with(twin, issuer.token("mlops", "aws-staging"))["Credentials"]["AccessKeyId"]
    impostor = Issuer.create(tmp_path, issuer.organization_id, issuer.organization, issuer.project)
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        assume_with(twin, impostor.token("mlops", "aws-staging"))
    assert refused.value.response["Error"]["Code"] == "InvalidIdentityToken"
    claims = jwt.decode(issuer.token("mlops", "aws-staging"), options={"verify_signature": False})
    other_org = jwt.encode({**claims, "iss": "https://vstoken.dev.azure.com/other"}, issuer.private_pem, "RS256")
    with pytest.raises(botocore.exceptions.ClientError, match="No OpenIDConnect provider found"):
        assume_with(twin, other_org)


def test_an_unknown_twin_issuer_is_a_clear_error(twin: Twin, tmp_path: Path) -> None:
    with pytest.raises(PipelineRunError, match="OIDC issuer is missing"):
        connection_credentials(state_of(twin), tmp_path, "aws-staging", "staging")


def test_the_bridge_runs_on_the_templates_function_secret_table_and_rule(twin: Twin) -> None:
    function = twin.client("lambda").get_function_configuration(FunctionName="mlops-bridge")
    variables = function["Environment"]["Variables"]
    secret = twin.client("secretsmanager").describe_secret(SecretId="mlops/azure-devops/bridge-auth")
    assert variables["ADO_AUTH_SECRET_ARN"] == secret["ARN"]
    ops_key = twin.client("kms").describe_key(KeyId="alias/mlops-ops")["KeyMetadata"]["Arn"]
    assert secret["KmsKeyId"] == ops_key
    table = twin.client("dynamodb").describe_table(TableName=variables["IDEMPOTENCY_TABLE"])["Table"]
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    bridge_policy = twin.client("iam").get_role_policy(RoleName="mlops-bridge", PolicyName="bridge")["PolicyDocument"]
    (read_secret,) = [s for s in bridge_policy["Statement"] if s["Sid"] == "ReadAuthSecret"]
    assert read_secret["Resource"] == secret["ARN"]  # moto had left "None" there

    events = twin.client("events")
    pattern = json.loads(events.describe_rule(Name=APPROVAL_RULE)["EventPattern"])
    assert pattern["detail"] == {"ModelPackageGroupName": ["breast-cancer"], "ModelApprovalStatus": ["Approved"]}
    (target,) = events.list_targets_by_rule(Rule=APPROVAL_RULE)["Targets"]
    assert target["Arn"].endswith(f":{APPROVAL_QUEUE}")  # the known gap: a queue stands in for the Lambda
    assert target["DeadLetterConfig"]["Arn"].endswith(":mlops-bridge-dlq")
    assert twin.made.bridge_dlq_url.endswith("/mlops-bridge-dlq")


def test_the_registry_carries_the_templates_cross_account_policy(twin: Twin) -> None:
    sagemaker = twin.client("sagemaker")
    group = sagemaker.describe_model_package_group(ModelPackageGroupName="breast-cancer")
    assert (
        group["ModelPackageGroupDescription"]
        == "breast-cancer models built by breast-cancer-build; approval deploys them"
    )
    policy = json.loads(
        sagemaker.get_model_package_group_policy(ModelPackageGroupName="breast-cancer")["ResourcePolicy"]
    )
    (statement,) = policy["Statement"]
    assert statement["Principal"]["AWS"] == ["arn:aws:iam::000000000002:root", "arn:aws:iam::000000000003:root"]
    assert statement["Condition"]["ArnEquals"]["aws:PrincipalArn"] == [
        "arn:aws:iam::000000000002:role/mlops-deploy",
        "arn:aws:iam::000000000003:role/mlops-deploy",
    ]


def test_buckets_are_encrypted_with_the_templates_keys_and_carry_their_policies(twin: Twin) -> None:
    s3 = twin.client("s3")
    bucket = twin.config.build.artifact_bucket
    (rule,) = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == twin.made.kms_key_arn
    assert twin.config.build.kms_key_id == "alias/mlops-artifacts"  # the local profile no longer turns KMS off
    kms = twin.client("kms")
    assert kms.describe_key(KeyId="alias/mlops-artifacts")["KeyMetadata"]["Arn"] == twin.made.kms_key_arn
    sids = {s["Sid"] for s in json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])["Statement"]}
    assert {"DenyInsecureTransport", "TargetRolesReadProjectArtifacts"} <= sids
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    key_policy = json.loads(kms.get_key_policy(KeyId=twin.made.kms_key_arn, PolicyName="default")["Policy"])
    assert "TargetRolesDecryptArtifactsThroughS3" in {s["Sid"] for s in key_policy["Statement"]}
    stage_bucket = "mlops-deploy-000000000002-us-east-1"
    staging_s3 = twin.client("s3", "staging")
    (stage_rule,) = staging_s3.get_bucket_encryption(Bucket=stage_bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    stage_key = twin.client("kms", "staging").describe_key(KeyId="alias/mlops-staging")["KeyMetadata"]["Arn"]
    assert stage_rule["ApplyServerSideEncryptionByDefault"]["KMSMasterKeyID"] == stage_key


def test_objects_can_be_written_and_read_under_the_templates_bucket_policy(twin: Twin) -> None:
    """moto alone refuses every object request under a bucket policy with conditions (DenyInsecureTransport)."""
    s3 = twin.client("s3")
    bucket = twin.config.build.artifact_bucket
    s3.put_object(Bucket=bucket, Key="breast-cancer/probe.txt", Body=b"x", ServerSideEncryption="aws:kms")
    assert s3.get_object(Bucket=bucket, Key="breast-cancer/probe.txt")["Body"].read() == b"x"
