"""The twin's accounts are what infra/templates deploy: roles, trusts, bridge pieces, keys; OIDC stand-ins.

Each of these fails on the old bootstrap, which made its own roles trusting `<account>:root`, a KMS key and
queues by hand, and let any caller assume any role.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import botocore.exceptions
import jwt
import moto.sts.models
import pytest

from mlops.cli import main
from mlops.core.aws import SessionRefreshError, assume_role_session
from mlops.core.errors import PipelineRunError
from mlops.core.identities import identities
from mlops.infra.templates import load_template, template_path, use_case_names
from mlops.local.bootstrap import APPROVAL_QUEUE, APPROVAL_RULE
from mlops.local.oidc import Issuer
from mlops.local.pipeline_credentials import connection_credentials
from mlops.local.twin import TwinState

from .conftest import Twin

pytestmark = pytest.mark.slow
REPO_ROOT = Path(__file__).resolve().parents[2]


def template_roles(account: str) -> set[str]:
    """The role names the account's templates (its mlops stack and its access stack) create."""
    names = {
        "automation": {
            "mlops-deploy",
            "mlops-registry-read",
            "mlops-staging-pass",
            "mlops-sagemaker-pipeline",
            "mlops-bridge",
            "mlops-bridge-reminders",
        }
    }
    template = load_template(template_path("automation" if account == "automation" else "staging"))
    # automation: build, registry reader, staging-pass writer, pipeline, bridge, reminders; stages: deploy,
    # execution, monitoring, drift-alarm forwarding; each account's access stack: infra and CloudFormation.
    assert sum(r["Type"] == "AWS::IAM::Role" for r in template["Resources"].values()) == (
        6 if account == "automation" else 4
    )
    stage = {"mlops-deploy", "mlops-sagemaker-execution", "mlops-sagemaker-monitoring"}
    if account == "prod":  # only prod has a drift alarm (mlops.yaml): its state changes go to the automation bus
        stage.add("mlops-drift-alarm-forward")
    return {"mlops-infra", "mlops-cloudformation"} | names.get(account, stage)


def test_the_automation_account_is_complete_before_staging_and_prod_are_provisioned(twin: Twin) -> None:
    # `mlops demo` starts the build when bootstrap reports the automation account ready: by then that account has
    # all of its stacks (shared, each use case's, access), every connection has its role entry and the approval
    # rule has its queue, while staging and prod have nothing yet.
    seen = twin.at_automation_ready
    final = {
        account: sorted(s["StackName"] for s in twin.client("cloudformation", account).describe_stacks()["Stacks"])
        for account in ("automation", "staging", "prod")
    }
    assert seen["automation"] == final["automation"]
    assert len(final["automation"]) == 2 + len(use_case_names(twin.config))  # shared, access, one per use case
    assert seen["staging"] == [] and seen["prod"] == []
    assert final["staging"] and final["prod"]
    assert seen["connection roles"] == sorted(c.name for c in identities(twin.config).connections)
    assert seen["approval queue"].endswith(f"/{APPROVAL_QUEUE}")


@pytest.mark.parametrize("account", ["automation", "staging", "prod"])
def test_the_roles_are_the_templates_and_none_trusts_a_whole_account(twin: Twin, account: str) -> None:
    roles = twin.client("iam", account).list_roles()["Roles"]
    assert {r["RoleName"] for r in roles} == template_roles(account)
    stage_deploy_roles = {"arn:aws:iam::000000000002:role/mlops-deploy", "arn:aws:iam::000000000003:role/mlops-deploy"}
    issuers = set()
    for role in roles:
        for statement in role["AssumeRolePolicyDocument"]["Statement"]:
            principal = statement["Principal"]
            if "AWS" in principal:  # chaining into the automation registry roles: only the stage deploy roles
                assert account == "automation" and role["RoleName"] in ("mlops-registry-read", "mlops-staging-pass")
                named = statement["Condition"]["ArnEquals"]["aws:PrincipalArn"]
                assert set(named if isinstance(named, list) else [named]) <= stage_deploy_roles
            if "Federated" in principal:  # the template's own provider, not moto's unresolved "None"
                assert principal["Federated"].startswith(f"arn:aws:iam::{getattr(twin.config.accounts, account).id}:")
                issuers.add(principal["Federated"].split(":oidc-provider/")[1].split("/")[0])
    # the local profile is mid-migration (oidc_issuer: both): every OIDC role trusts both issuers
    assert issuers == {"vstoken.dev.azure.com", "login.microsoftonline.com"}


def state_of(twin: Twin) -> TwinState:
    accounts = {"automation": "000000000001", "staging": "000000000002", "prod": "000000000003"}
    return TwinState(twin.server.url, os.getpid(), twin.config.region, accounts, "", "", time.time())


CONNECTION_ROLES = {
    "aws-build": ("000000000001", "mlops-deploy"),
    "aws-registry-read": ("000000000001", "mlops-registry-read"),
    "aws-deploy-staging": ("000000000002", "mlops-deploy"),
    "aws-deploy-prod": ("000000000003", "mlops-deploy"),
    "aws-infra-automation": ("000000000001", "mlops-infra"),
    "aws-infra-staging": ("000000000002", "mlops-infra"),
    "aws-infra-prod": ("000000000003", "mlops-infra"),
}


def caller(twin: Twin, env: dict[str, str]) -> str:
    sts = twin.session().client(
        "sts",
        endpoint_url=twin.server.url,
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env["AWS_SESSION_TOKEN"],
    )
    return str(sts.get_caller_identity()["Arn"])


@pytest.mark.parametrize("connection", sorted(CONNECTION_ROLES))
def test_each_connection_gets_its_purposes_role_under_either_issuer(twin: Twin, connection: str) -> None:
    account_id, role = CONNECTION_ROLES[connection]
    expected = f"arn:aws:sts::{account_id}:assumed-role/{role}/ado-{connection}"
    # Entra tokens (what the twin's connections present under `both`); legacy ones for one role of each
    # template (build, registry-read and stage roles share their trust's shape per template): both paths hold.
    assert caller(twin, twin.connection_env(connection)) == expected
    if connection in ("aws-build", "aws-deploy-prod", "aws-infra-staging"):
        assert caller(twin, twin.connection_env(connection, entra=False)) == expected


def test_a_role_refuses_every_connection_but_its_own(twin: Twin) -> None:
    issuer = Issuer.load(twin.server.state_dir)
    for connection in ("aws-build", "aws-deploy-staging"):  # prod's deploy role: the build and the staging token
        for entra in (False, True):
            with pytest.raises(botocore.exceptions.ClientError) as refused:
                assume_with(twin, issuer.token("mlops", connection, entra=entra), "000000000003")
            assert refused.value.response["Error"]["Code"] == "AccessDenied", connection


def assume_with(twin: Twin, token: str, account_id: str = "000000000002") -> dict[str, Any]:
    sts = twin.session().client("sts", endpoint_url=twin.server.url)
    return dict(
        sts.assume_role_with_web_identity(
            RoleArn=f"arn:aws:iam::{account_id}:role/mlops-deploy", RoleSessionName="twin-test", WebIdentityToken=token
        )
    )


def test_sts_refuses_a_token_the_twins_issuer_did_not_sign(twin: Twin, tmp_path: Path) -> None:
    issuer = Issuer.load(twin.server.state_dir)
    assert assume_with(twin, issuer.token("mlops", "aws-deploy-staging"))["Credentials"]["AccessKeyId"]
    impostor = Issuer.create(tmp_path, issuer.organization_id, issuer.organization, issuer.project, issuer.tenant)
    for entra in (False, True):
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            assume_with(twin, impostor.token("mlops", "aws-deploy-staging", entra=entra))
        assert refused.value.response["Error"]["Code"] == "InvalidIdentityToken"
    claims = jwt.decode(issuer.token("mlops", "aws-deploy-staging"), options={"verify_signature": False})
    other_org = jwt.encode({**claims, "iss": "https://vstoken.dev.azure.com/other"}, issuer.private_pem, "RS256")
    with pytest.raises(botocore.exceptions.ClientError, match="No OpenIDConnect provider found"):
        assume_with(twin, other_org)


def test_an_unknown_twin_issuer_is_a_clear_error(twin: Twin, tmp_path: Path) -> None:
    with pytest.raises(PipelineRunError, match="OIDC issuer is missing"):
        connection_credentials(state_of(twin), tmp_path, "aws-deploy-staging")
    with pytest.raises(PipelineRunError, match="unknown service connection 'aws-staging'"):
        connection_credentials(state_of(twin), twin.server.state_dir, "aws-staging")


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
    # every use case's group (automation.yaml ModelPackageGroups), as the bridge's MODEL_PACKAGE_GROUPS
    groups = ["breast-cancer", "wine"]
    assert pattern["detail"] == {"ModelPackageGroupName": groups, "ModelApprovalStatus": ["Approved"]}
    assert variables["MODEL_PACKAGE_GROUPS"] == ",".join(groups)
    (target,) = events.list_targets_by_rule(Rule=APPROVAL_RULE)["Targets"]
    assert target["Arn"].endswith(f":{APPROVAL_QUEUE}")  # the known gap: a queue stands in for the Lambda
    assert target["DeadLetterConfig"]["Arn"].endswith(":mlops-bridge-dlq")
    assert twin.made.bridge_dlq_url.endswith("/mlops-bridge-dlq")


def test_the_registry_is_read_across_accounts_only_through_the_reader_role(twin: Twin) -> None:
    sagemaker = twin.client("sagemaker")
    group = sagemaker.describe_model_package_group(ModelPackageGroupName="breast-cancer")
    assert (
        group["ModelPackageGroupDescription"]
        == "breast-cancer models built by breast-cancer-build; approval deploys them"
    )
    # no resource policy: a stage deploy role reads the registry only after chaining into mlops-registry-read
    with pytest.raises(botocore.exceptions.ClientError):
        sagemaker.get_model_package_group_policy(ModelPackageGroupName="breast-cancer")
    stage = twin.connection_env("aws-deploy-staging")
    stage_sm = twin.session().client(
        "sagemaker",
        endpoint_url=twin.server.url,
        aws_access_key_id=stage["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=stage["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=stage["AWS_SESSION_TOKEN"],
    )
    with pytest.raises(botocore.exceptions.ClientError) as denied:
        stage_sm.describe_model_package_group(ModelPackageGroupName=group["ModelPackageGroupArn"])
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"


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


# ------------------------------------------------------------------------- one identity per purpose, proven


def session_of(twin: Twin, env: dict[str, str]) -> boto3.Session:
    return boto3.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env["AWS_SESSION_TOKEN"],
        region_name=twin.config.region,
    )


def test_the_build_identity_can_assume_nothing_in_staging_or_prod_nor_deploy(
    twin: Twin, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    build = twin.connection_env("aws-build")
    sts = session_of(twin, build).client("sts", endpoint_url=twin.server.url)
    for role in (
        "arn:aws:iam::000000000002:role/mlops-deploy",
        "arn:aws:iam::000000000003:role/mlops-deploy",
        "arn:aws:iam::000000000003:role/mlops-infra",
        "arn:aws:iam::000000000001:role/mlops-registry-read",
        "arn:aws:iam::000000000001:role/mlops-staging-pass",
    ):
        with pytest.raises(botocore.exceptions.ClientError) as refused:
            sts.assume_role(RoleArn=role, RoleSessionName="build")
        assert refused.value.response["Error"]["Code"] == "AccessDenied", role
    # `mlops deploy` on the build connection stops before anything: the stage role does not trust it
    monkeypatch.setenv("MLOPS_CONFIG", str(REPO_ROOT / "mlops.yaml"))
    monkeypatch.setenv("MLOPS_PROFILE", "local")
    for name, value in build.items():
        if name.startswith("AWS_") and not name.startswith("AWS_ENDPOINT_URL"):
            monkeypatch.setenv(name, value)
    arn = "arn:aws:sagemaker:us-east-1:000000000001:model-package/breast-cancer/1"
    assert main(["deploy", "--stage", "prod", "--model-package-arn", arn]) == 1
    error = capsys.readouterr().err
    assert "could not assume arn:aws:iam::000000000003:role/mlops-deploy" in error and "AccessDenied" in error


def refusal(call: Any, **request: str) -> str:
    """'allowed' when the twin's IAM lets the call through (the service may still answer, e.g. not found)."""
    try:
        call(**request)
    except botocore.exceptions.ClientError as exc:
        code = str(exc.response["Error"]["Code"])  # SageMaker's is AccessDeniedException
        return "AccessDenied" if code.startswith("AccessDenied") else "allowed"
    return "allowed"


def test_each_use_case_stack_grants_the_shared_roles_its_use_case_only(twin: Twin) -> None:
    """Two use cases (breast-cancer, wine) share the accounts: each has its stacks, and the shared roles reach
    wine's group, pipeline and endpoints through wine's policies, and nothing of a name that is no use case."""
    for account in ("automation", "staging", "prod"):
        stacks = {s["StackName"] for s in twin.client("cloudformation", account).list_stacks()["StackSummaries"]}
        assert {f"mlops-breast-cancer-{account}", f"mlops-wine-{account}"} <= stacks
    groups = twin.client("sagemaker").list_model_package_groups()["ModelPackageGroupSummaryList"]
    assert {"breast-cancer", "wine"} <= {g["ModelPackageGroupName"] for g in groups}
    build = session_of(twin, twin.connection_env("aws-build")).client("sagemaker", endpoint_url=twin.server.url)
    reader = session_of(twin, twin.connection_env("aws-registry-read")).client(
        "sagemaker", endpoint_url=twin.server.url
    )
    for use_case, expected in (("wine", "allowed"), ("breast-cancer", "allowed"), ("fraud", "AccessDenied")):
        assert refusal(build.describe_model_package_group, ModelPackageGroupName=use_case) == expected
        assert refusal(build.describe_pipeline, PipelineName=f"{use_case}-build") == expected
        assert refusal(build.describe_pipeline, PipelineName=f"{use_case}-build-feature-x") == expected
        assert refusal(reader.describe_model_package_group, ModelPackageGroupName=use_case) == expected
    for stage in ("staging", "prod"):
        deploy = session_of(twin, twin.connection_env(f"aws-deploy-{stage}")).client(
            "sagemaker", endpoint_url=twin.server.url
        )
        endpoint = "wine" if stage == "prod" else "wine-staging"
        assert refusal(deploy.describe_endpoint, EndpointName=endpoint) == "allowed"
        assert refusal(deploy.describe_endpoint_config, EndpointConfigName=f"{endpoint}-v1-0a1b2c3d") == "allowed"
        assert refusal(deploy.describe_model, ModelName="wine-v1-0a1b2c3d") == "allowed"
        for other in ("fraud", "fraud-staging"):
            assert refusal(deploy.describe_endpoint, EndpointName=other) == "AccessDenied"
        assert refusal(deploy.describe_model, ModelName="fraud-v1-0a1b2c3d") == "AccessDenied"
    # the staging deploy role manages the staging endpoints only: a prod-named endpoint is out of its reach
    staging = session_of(twin, twin.connection_env("aws-deploy-staging")).client(
        "sagemaker", endpoint_url=twin.server.url
    )
    assert refusal(staging.describe_endpoint, EndpointName="wine") == "AccessDenied"


def test_the_infra_connection_may_only_change_its_stack_through_the_execution_role(twin: Twin) -> None:
    cfn = session_of(twin, twin.connection_env("aws-infra-staging")).client(
        "cloudformation", endpoint_url=twin.server.url
    )
    body = '{"Resources": {"Q": {"Type": "AWS::SQS::Queue"}}}'
    execution = "arn:aws:iam::000000000002:role/mlops-cloudformation"

    def change_set(stack: str, **extra: str) -> str:
        try:
            cfn.create_change_set(
                StackName=stack, ChangeSetName="probe", TemplateBody=body, ChangeSetType="UPDATE", **extra
            )
        except botocore.exceptions.ClientError as exc:
            return str(exc.response["Error"]["Code"])
        cfn.delete_change_set(StackName=stack, ChangeSetName="probe")
        return "created"

    assert change_set("mlops-staging", RoleARN=execution) == "created"
    assert change_set("mlops-wine-staging", RoleARN=execution) == "created"  # a use case's stack of the account
    assert change_set("mlops-wine-staging") == "AccessDenied"
    assert change_set("mlops-staging") == "AccessDenied"  # CloudFormation would act as the connection itself
    assert change_set("mlops-staging-access", RoleARN=execution) == "AccessDenied"  # not its own access
    assert change_set("mlops-staging", RoleARN="arn:aws:iam::000000000002:role/mlops-deploy") == "AccessDenied"
    assert cfn.describe_stacks(StackName="mlops-staging")["Stacks"][0]["StackStatus"].endswith("COMPLETE")


def test_a_chained_session_refreshes_past_its_expiry_and_says_so_when_it_cannot(
    twin: Twin, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One clock for the twin's STS (the Expiration it issues), its IAM gate (which refuses expired sessions)
    # and botocore's refreshable credentials: a bake longer than a session, without waiting for it.
    now = [datetime.now(UTC)]
    monkeypatch.setattr(moto.sts.models, "utcnow", lambda: now[0].replace(tzinfo=None))
    monkeypatch.setattr(twin.server.iam, "clock", lambda: now[0])
    base = session_of(twin, twin.connection_env("aws-deploy-staging"))  # the step's session: 3600 s
    reader = assume_role_session(
        base,
        "arn:aws:iam::000000000001:role/mlops-registry-read",
        "refresh-test",
        twin.config.region,
        duration_seconds=900,  # STS's minimum; chained sessions get at most 3600
        time_fetcher=lambda: now[0],
    )
    registry = reader.client("sagemaker", endpoint_url=twin.server.url)
    registry.describe_model_package_group(ModelPackageGroupName="breast-cancer")
    first = reader.get_credentials().get_frozen_credentials()
    static = boto3.Session(first.access_key, first.secret_key, first.token, region_name=twin.config.region)

    now[0] += timedelta(seconds=1000)  # past the first session's end: a fixed session (the old code) is refused
    with pytest.raises(botocore.exceptions.ClientError) as expired:
        static.client("sagemaker", endpoint_url=twin.server.url).describe_model_package_group(
            ModelPackageGroupName="breast-cancer"
        )
    assert expired.value.response["Error"]["Code"] == "ExpiredTokenException"
    registry.describe_model_package_group(ModelPackageGroupName="breast-cancer")  # refreshed, still working
    assert reader.get_credentials().get_frozen_credentials().access_key != first.access_key

    now[0] += timedelta(seconds=3600)  # the step's own session has ended too: no refresh is possible
    with pytest.raises(SessionRefreshError, match="could not be refreshed: ExpiredToken") as failed:
        registry.describe_model_package_group(ModelPackageGroupName="breast-cancer")
    assert "aws.rolecredential.maxduration" in (failed.value.hint or "")
