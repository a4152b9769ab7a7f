"""Policy rules as tests: least privilege, KMS everywhere, no secrets, OIDC trust, names the code relies on."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mlops.infra.templates import TEMPLATE_BODY_LIMIT, load_template, template_body

from .conftest import TEMPLATE_FILES
from .service_authorization import expand, supports

# Actions IAM offers no resource-level permissions for: Resource "*" is the only form. All read-only, except
# PutMetricData and the autoscaling writes, which must then carry a condition that narrows them.
RESOURCE_WILDCARD_OK = {
    "ecr:GetAuthorizationToken": None,
    "sts:GetCallerIdentity": None,
    "sagemaker:ListModelPackages": None,
    "sagemaker:ListEndpoints": None,
    "sagemaker:ListEndpointConfigs": None,
    "sagemaker:ListModels": None,
    "sagemaker:ListMonitoringSchedules": None,
    "sagemaker:ListPipelines": None,  # branch cleanup reads the pipelines' branch tags
    "cloudwatch:GetMetricData": None,
    "cloudwatch:PutMetricData": "cloudwatch:namespace",
    "application-autoscaling:DeleteScalingPolicy": "application-autoscaling:service-namespace",
    "application-autoscaling:DeregisterScalableTarget": "application-autoscaling:service-namespace",
    # Read-only and without condition keys (Service Authorization Reference): no condition can narrow them.
    "application-autoscaling:DescribeScalableTargets": None,
    "application-autoscaling:DescribeScalingPolicies": None,
    "application-autoscaling:PutScalingPolicy": "application-autoscaling:service-namespace",
    "application-autoscaling:RegisterScalableTarget": "application-autoscaling:service-namespace",
}
SECRET_NAME = re.compile(r"secret|token|password|passwd|pat$|credential|hmac|private", re.IGNORECASE)
SECRET_VALUE = re.compile(r"AKIA[0-9A-Z]{16}|-----BEGIN|^[a-z2-7]{52}$|xox[bp]-|ghp_[A-Za-z0-9]{20,}")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def sub_text(value: Any) -> str:
    """The template text of a string, !Sub string or !Sub [string, vars] (variables stay as ${...})."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and "Fn::Sub" in value:
        inner = value["Fn::Sub"]
        return inner if isinstance(inner, str) else inner[0]
    return json.dumps(value)


def rendered_sub(value: Any) -> str:
    """A !Sub string with its !Sub'd variables written in (the others stay as ${...})."""
    inner = value["Fn::Sub"]
    if isinstance(inner, str):
        return inner
    text, variables = inner
    for name, variable in variables.items():
        if isinstance(variable, dict) and "Fn::Sub" in variable:
            text = text.replace("${" + name + "}", rendered_sub(variable))
    return str(text)


def trust_document(role: dict[str, Any]) -> dict[str, Any]:
    """The trust policy; a !Sub'd JSON string (needed for the OIDC condition keys) may be assembled from one
    statement per issuer, each an !If on the issuer mode: every statement either mode can produce."""
    document = role["Properties"]["AssumeRolePolicyDocument"]
    if isinstance(document, dict) and "Statement" in document:
        return document
    inner = document["Fn::Sub"]
    if isinstance(inner, str):
        return dict(json.loads(inner))
    found = []
    for variable in inner[1].values():
        branch = variable["Fn::If"][1] if isinstance(variable, dict) and "Fn::If" in variable else variable
        if isinstance(branch, dict) and "Fn::Sub" in branch:
            found.append(json.loads(rendered_sub(branch)))
    return {"Version": "2012-10-17", "Statement": found}


def statements(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any], bool]]:
    """Every policy statement anywhere in the node: (where, statement, is a resource policy)."""
    if isinstance(node, dict):
        if isinstance(node.get("Statement"), list):
            for statement in node["Statement"]:
                yield where, statement, "Principal" in statement
            return
        for key, child in node.items():
            yield from statements(child, f"{where}.{key}" if where else key)
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from statements(child, f"{where}[{index}]")


def all_statements(template: dict[str, Any]) -> list[tuple[str, dict[str, Any], bool]]:
    found = list(statements(template["Resources"]))
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] == "AWS::IAM::Role":
            found += [(f"{logical_id}.trust", s, True) for s in trust_document(resource)["Statement"]]
    return found


@pytest.mark.parametrize("name", ["automation", "target", "access", "use-case"])
def test_no_allow_grants_a_wildcard_action(templates: dict[str, dict[str, Any]], name: str) -> None:
    found = all_statements(templates[name])
    assert len(found) > (8 if name == "access" else 20), "the walk found too few statements to mean anything"
    for where, statement, _ in found:
        if statement["Effect"] != "Allow":
            continue
        assert "NotAction" not in statement and "NotResource" not in statement, where
        for action in as_list(statement["Action"]):
            assert "*" not in action, f"{where}: Allow of wildcard action {action!r}"


@pytest.mark.parametrize("name", ["automation", "target", "use-case"])
def test_identity_policies_use_resource_star_only_where_iam_has_nothing_narrower(
    templates: dict[str, dict[str, Any]], name: str
) -> None:
    for where, statement, is_resource_policy in all_statements(templates[name]):
        if statement["Effect"] != "Allow" or is_resource_policy:
            continue
        if "*" not in as_list(statement.get("Resource")):
            continue
        for action in as_list(statement["Action"]):
            assert action in RESOURCE_WILDCARD_OK, f"{where}: {action} on Resource '*'"
            needed = RESOURCE_WILDCARD_OK[action]
            if needed:
                keys = {key for condition in statement.get("Condition", {}).values() for key in condition}
                assert needed in keys, f"{where}: {action} on '*' needs a {needed} condition"


@pytest.mark.parametrize("name", ["automation", "target", "access", "use-case"])
def test_resource_policies_name_their_principals(templates: dict[str, dict[str, Any]], name: str) -> None:
    for where, statement, is_resource_policy in all_statements(templates[name]):
        if statement["Effect"] != "Allow" or not is_resource_policy:
            continue
        principal = statement["Principal"]
        assert principal != "*" and principal != {"AWS": "*"}, f"{where}: Allow to everyone"
        for arn in as_list(principal.get("AWS", [])):
            text = sub_text(arn)
            if ":root" in text and "${AWS::AccountId}" not in text:
                # another account: only named roles of it, through aws:PrincipalArn
                assert "aws:PrincipalArn" in statement.get("Condition", {}).get("ArnEquals", {}), where
        if "Service" in principal:
            assert statement.get("Condition"), f"{where}: a service principal without a source condition"


@pytest.mark.parametrize("name", ["automation", "target", "access"])
def test_no_long_lived_credentials_and_every_role_trust_is_scoped(
    templates: dict[str, dict[str, Any]], name: str
) -> None:
    resources = templates[name]["Resources"]
    assert not [r for r in resources.values() if r["Type"] in ("AWS::IAM::User", "AWS::IAM::AccessKey")]
    roles = {k: r for k, r in resources.items() if r["Type"] == "AWS::IAM::Role"}
    assert roles
    for logical_id, role in roles.items():
        for statement in trust_document(role)["Statement"]:
            principal = statement["Principal"]
            if "Federated" in principal:
                equals = statement["Condition"]["StringEquals"]
                assert "StringLike" not in statement["Condition"], logical_id
                aud = [v for k, v in equals.items() if k.endswith(":aud")]
                sub = [v for k, v in equals.items() if k.endswith(":sub")]
                assert aud == ["api://AzureADTokenExchange"], logical_id
                assert len(sub) == 1, logical_id
                if all(k.startswith("vstoken.dev.azure.com/${AzureDevOpsOrganizationId}:") for k in equals):
                    assert re.fullmatch(
                        r"sc://\$\{AzureDevOpsOrganizationName\}/\$\{AzureDevOpsProject\}/\$\{\w+\}", sub[0]
                    ), (logical_id, sub)
                else:  # the Entra issuer: the connection's exact subject, given as a parameter
                    assert all(k.startswith("login.microsoftonline.com/${EntraTenantId}/v2.0:") for k in equals)
                    assert re.fullmatch(r"\$\{\w+EntraSubject\}", sub[0]), (logical_id, sub)
            elif "AWS" in principal:  # role chaining from another account: one named role only
                assert statement["Action"] == "sts:AssumeRole"
                assert list(statement["Condition"]["ArnEquals"]) == ["aws:PrincipalArn"], logical_id
            else:
                assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


@pytest.mark.parametrize("name", ["automation", "target"])
def test_oidc_providers_are_azure_devops_legacy_and_entra_issuers(
    templates: dict[str, dict[str, Any]], name: str
) -> None:
    providers = [r for r in templates[name]["Resources"].values() if r["Type"] == "AWS::IAM::OIDCProvider"]
    assert sorted(sub_text(p["Properties"]["Url"]) for p in providers) == [
        "https://login.microsoftonline.com/${EntraTenantId}/v2.0",
        "https://vstoken.dev.azure.com/${AzureDevOpsOrganizationId}",
    ]
    assert all(p["Properties"]["ClientIdList"] == ["api://AzureADTokenExchange"] for p in providers)


@pytest.mark.parametrize("name", ["automation", "target", "use-case"])
def test_no_secret_in_parameter_defaults_outputs_or_properties(templates: dict[str, dict[str, Any]], name: str) -> None:
    template = templates[name]
    for key, parameter in template["Parameters"].items():
        if SECRET_NAME.search(key):
            assert parameter.get("NoEcho") is True and "Default" not in parameter, key
        assert not SECRET_VALUE.search(str(parameter.get("Default", ""))), key
    text = json.dumps(template)
    assert "{{resolve:" not in text
    assert "SecretString" not in text
    no_echo = {k for k, p in template["Parameters"].items() if p.get("NoEcho")}
    for key, output in template.get("Outputs", {}).items():
        value = json.dumps(output["Value"])
        assert not SECRET_VALUE.search(value), key
        assert not any(f'"Ref": "{p}"' in value for p in no_echo), key


@pytest.mark.parametrize("name", ["automation", "target"])
def test_every_bucket_is_versioned_kms_encrypted_tls_only_and_private(
    templates: dict[str, dict[str, Any]], name: str
) -> None:
    resources = templates[name]["Resources"]
    buckets = {k: r["Properties"] for k, r in resources.items() if r["Type"] == "AWS::S3::Bucket"}
    assert buckets
    policies = {
        r["Properties"]["Bucket"]["Ref"]: r["Properties"]["PolicyDocument"]
        for r in resources.values()
        if r["Type"] == "AWS::S3::BucketPolicy"
    }
    for logical_id, bucket in buckets.items():
        assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}, logical_id
        (rule,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
        assert rule["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms", logical_id
        assert "Fn::GetAtt" in rule["ServerSideEncryptionByDefault"]["KMSMasterKeyID"], "a key of this stack"
        assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}, logical_id
        assert len(bucket["PublicAccessBlockConfiguration"]) == 4, logical_id
        tls = [
            s for s in policies[logical_id]["Statement"]
            if s["Effect"] == "Deny" and s.get("Condition", {}).get("Bool", {}).get("aws:SecureTransport") == "false"
        ]  # fmt: skip
        assert tls and tls[0]["Action"] == "s3:*" and tls[0]["Principal"] == "*", logical_id


@pytest.mark.parametrize("name", ["automation", "target"])
def test_kms_everywhere_it_applies(templates: dict[str, dict[str, Any]], name: str) -> None:
    where_the_key_goes = {
        "AWS::SQS::Queue": "KmsMasterKeyId",
        "AWS::SNS::Topic": "KmsMasterKeyId",
        "AWS::SecretsManager::Secret": "KmsKeyId",
        "AWS::Logs::LogGroup": "KmsKeyId",
        "AWS::Lambda::Function": "KmsKeyArn",
    }
    for logical_id, resource in templates[name]["Resources"].items():
        properties = resource.get("Properties", {})
        kind = resource["Type"]
        if kind in where_the_key_goes:
            assert "Fn::GetAtt" in properties.get(where_the_key_goes[kind], {}), logical_id
        if kind == "AWS::KMS::Key":
            assert properties["EnableKeyRotation"] is True, logical_id
        if kind == "AWS::DynamoDB::Table":
            assert properties["SSESpecification"]["SSEType"] == "KMS", logical_id
            assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
        if kind == "AWS::ECR::Repository":
            assert properties["EncryptionConfiguration"]["EncryptionType"] == "KMS", logical_id
            assert properties["ImageTagMutability"] == "IMMUTABLE"
            assert properties["ImageScanningConfiguration"] == {"ScanOnPush": True}


def test_artifact_key_grants_decrypt_to_the_staging_and_prod_roles(templates: dict[str, dict[str, Any]]) -> None:
    policy = templates["automation"]["Resources"]["ArtifactKey"]["Properties"]["KeyPolicy"]
    (grant,) = [s for s in policy["Statement"] if s["Sid"] == "TargetRolesDecryptArtifactsThroughS3"]
    assert "kms:Decrypt" in grant["Action"]
    principals = {sub_text(p) for p in grant["Principal"]["AWS"]}
    assert principals == {
        "arn:${AWS::Partition}:iam::${StagingAccountId}:root",
        "arn:${AWS::Partition}:iam::${ProdAccountId}:root",
    }
    roles = {sub_text(a) for a in grant["Condition"]["ArnEquals"]["aws:PrincipalArn"]}
    for account, deploy_role in (
        ("StagingAccountId", "StagingDeployRoleName"),
        ("ProdAccountId", "ProdDeployRoleName"),
    ):
        for role in (deploy_role, "TargetEndpointRoleName", "TargetMonitoringRoleName"):
            assert f"arn:${{AWS::Partition}}:iam::${{{account}}}:role/${{{role}}}" in roles
    assert grant["Condition"]["StringEquals"]["kms:ViaService"] == {"Fn::Sub": "s3.${AWS::Region}.amazonaws.com"}
    # and the target side asks for exactly that: the endpoint role decrypts automation keys only through S3
    endpoint = templates["target"]["Resources"]["EndpointRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    (decrypt,) = [s for s in endpoint["Statement"] if s["Sid"] == "DecryptModelArtifactsThroughS3"]
    assert "${AutomationAccountId}" in json.dumps(decrypt["Resource"])


def test_only_humans_approve(templates: dict[str, dict[str, Any]]) -> None:
    resources = templates["automation"]["Resources"]
    # the pipeline role registers each use case's packages through its use case's policy: pending only
    pipeline = json.dumps(resources["PipelineExecutionRole"]["Properties"]["Policies"])
    per_use_case = json.dumps(templates["use-case"]["Resources"]["PipelinePolicy"]["Properties"]["PolicyDocument"])
    assert '"sagemaker:ModelApprovalStatus": "PendingManualApproval"' in per_use_case
    assert "UpdateModelPackage" not in pipeline + per_use_case
    assert "CreateModelPackage" not in pipeline
    # The bridge and the build role annotate packages (write-back; model card, lifecycle, MLflow run), and an
    # explicit deny refuses any UpdateModelPackage of theirs that carries an approval status.
    for role in ("BridgeRole", "BuildRole"):
        statements = resources[role]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
        (deny,) = [s for s in statements if s["Effect"] == "Deny"]
        assert deny["Action"] == "sagemaker:UpdateModelPackage", role
        assert deny["Resource"] == "*", role
        assert deny["Condition"] == {"Null": {"sagemaker:ModelApprovalStatus": "false"}}, role


@pytest.mark.parametrize("path", TEMPLATE_FILES, ids=lambda p: p.name)
def test_the_body_sent_is_the_same_template_and_fits_inline(path: Path) -> None:
    body = template_body(path)
    assert json.loads(body) == load_template(path)
    # automation.yaml (one role per purpose, both issuers, package annotations, MLflow, the retrain rule) is near
    # CloudFormation's inline limit: its next growth needs `mlops infra deploy` to upload it (TemplateURL).
    assert len(body.encode()) < TEMPLATE_BODY_LIMIT - 1_000, "keep headroom for growth"


@pytest.mark.parametrize("name", ["automation", "target", "access", "use-case"])
def test_every_action_is_one_aws_knows(templates: dict[str, dict[str, Any]], name: str) -> None:
    for where, statement, _ in all_statements(templates[name]):
        for action in as_list(statement.get("Action", [])):
            assert expand(action), f"{where}: {action} is no action of the Service Authorization Reference"


def condition_keys_of(statement: dict[str, Any]) -> list[str]:
    return [key for condition in statement.get("Condition", {}).values() for key in condition]


@pytest.mark.parametrize("name", ["automation", "target", "access", "use-case"])
def test_every_condition_key_is_supported_by_every_action_of_its_statement(
    templates: dict[str, dict[str, Any]], name: str
) -> None:
    """A key the action does not support is absent from its requests: the statement never matches that action."""
    checked = 0
    for where, statement, _ in all_statements(templates[name]):
        federated = "Federated" in (statement.get("Principal") or {})
        for key in condition_keys_of(statement):
            for pattern in as_list(statement.get("Action", [])):
                for action in expand(pattern):
                    checked += 1
                    assert supports(action, key, federated=federated), (
                        f"{where} (Sid {statement.get('Sid', '-')}): {action} does not support the condition key "
                        f"{key}, so the statement never applies to it; move the action to a statement without it"
                    )
    assert checked > (5 if name in ("access", "use-case") else 20), "the walk found too few conditions to mean anything"


def test_condition_key_check_knows_a_supported_key_from_an_unsupported_one() -> None:
    assert supports("kms:CreateGrant", "kms:GrantIsForAWSResource")
    assert not supports("kms:DescribeKey", "kms:GrantIsForAWSResource")
    assert supports("application-autoscaling:PutScalingPolicy", "application-autoscaling:service-namespace")
    assert not supports("application-autoscaling:DescribeScalableTargets", "application-autoscaling:service-namespace")
    assert supports("logs:CreateLogGroup", "aws:SourceAccount")  # global
    assert supports("kms:Decrypt", "kms:EncryptionContext:aws:logs:arn")  # a ${EncryptionContextKey} template
    assert not supports("s3:GetObject", "aws:RequestTag/team")  # tag keys are per action
    assert supports("sts:AssumeRoleWithWebIdentity", "vstoken.dev.azure.com/x:sub", federated=True)


SUBSTITUTIONS = {
    "AWS::Partition": "aws",
    "AWS::Region": "eu-west-1",
    "AWS::AccountId": "222222222222",
    "ProjectName": "breast-cancer",
}


def rendered(value: Any, substitutions: dict[str, str] | None = None) -> str:
    names = {**SUBSTITUTIONS, **(substitutions or {})}
    text = sub_text(value)
    return re.sub(r"\$\{([^}]+)\}", lambda m: names.get(m.group(1), m.group(0)), text)


def iam_matches(pattern: str, arn: str) -> bool:
    """IAM's ARN wildcards: * any run of characters (also '/'), ? one character; case-sensitive."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, arn) is not None


def allowed(policy: dict[str, Any], action: str, arn: str, substitutions: dict[str, str] | None = None) -> bool:
    for statement in policy["Statement"]:
        if statement["Effect"] != "Allow" or action not in as_list(statement["Action"]):
            continue
        if statement.get("Condition"):
            continue  # no request context here: only unconditional grants count
        if any(iam_matches(rendered(r, substitutions), arn) for r in as_list(statement["Resource"])):
            return True
    return False


@pytest.mark.parametrize("endpoint", ["breast-cancer", "breast-cancer-staging"])
def test_the_deploy_role_can_manage_the_alarms_target_tracking_creates(
    templates: dict[str, dict[str, Any]], endpoint: str
) -> None:
    """PutScalingPolicy (target tracking) creates, reads and deletes alarms with the caller's rights.

    Application Auto Scaling names them TargetTracking-<resource id>-AlarmHigh|AlarmLow-<uuid>, the resource
    id of an endpoint variant being endpoint/<endpoint>/variant/<variant>.
    """
    # the use case's policy for the deploy role of the endpoint's stage (use-case.yaml, EndpointName)
    role = templates["use-case"]["Resources"]["DeployPolicy"]["Properties"]["PolicyDocument"]
    names = {"UseCase": "breast-cancer", "EndpointName": endpoint}
    prefix = "arn:aws:cloudwatch:eu-west-1:222222222222:alarm:"
    for suffix in ("AlarmHigh", "AlarmLow"):
        name = f"TargetTracking-endpoint/{endpoint}/variant/AllTraffic-{suffix}-0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9"
        for action in ("cloudwatch:PutMetricAlarm", "cloudwatch:DescribeAlarms", "cloudwatch:DeleteAlarms"):
            assert allowed(role, action, prefix + name, names), f"{action} on {name}"
    # and still not on another project's alarms
    other = prefix + "TargetTracking-endpoint/fraud/variant/AllTraffic-AlarmHigh-0a1b2c3d"
    assert not allowed(role, "cloudwatch:DeleteAlarms", other, names)
    # the rollback alarms the deploy creates itself keep their project names
    assert allowed(role, "cloudwatch:PutMetricAlarm", prefix + f"{endpoint}-5xx-errors", names)


def test_the_infra_connection_only_changes_its_stack_through_the_execution_role(
    templates: dict[str, dict[str, Any]],
) -> None:
    """access.yaml: the infrastructure connection creates nothing itself; CloudFormation's role may create what
    the mlops stacks declare (Resource "*" for creates is inherent: names are the templates'), never touch the
    access stack's own two roles."""
    resources = templates["access"]["Resources"]
    infra = resources["InfraRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    stacks = [
        "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/${ManagedStackName}/*",
        # the use cases' stacks of the account, mlops-<use case>-<account> (never mlops-<account>-access)
        "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/mlops-*-${Account}/*",
    ]
    actions = {a for s in infra for a in as_list(s["Action"])}
    assert actions == {
        "cloudformation:CreateChangeSet",
        "cloudformation:DeleteChangeSet",
        "cloudformation:DescribeChangeSet",
        "cloudformation:DescribeStackEvents",
        "cloudformation:DescribeStacks",
        "cloudformation:ExecuteChangeSet",
        "iam:PassRole",
    }
    for statement in infra:
        if statement["Action"] == "iam:PassRole":
            assert statement["Resource"] == {"Fn::GetAtt": ["CloudFormationRole", "Arn"]}
            assert statement["Condition"] == {"StringEquals": {"iam:PassedToService": "cloudformation.amazonaws.com"}}
        else:
            assert [sub_text(r) for r in statement["Resource"]] == stacks
    for account in ("automation", "staging", "prod"):  # the pattern reaches the use cases' stacks, not the access one
        pattern = rendered(stacks[1], {"Account": account}).replace("${AWS::Region}", "eu-west-1")
        stack = "arn:aws:cloudformation:eu-west-1:222222222222:stack/{}/0a1b"
        assert iam_matches(pattern, stack.format(f"mlops-wine-{account}"))
        assert not iam_matches(pattern, stack.format(f"mlops-{account}-access"))
        assert not iam_matches(pattern, stack.format(f"mlops-{account}"))
    (create,) = [s for s in infra if s["Action"] == "cloudformation:CreateChangeSet"]
    assert create["Condition"] == {
        "StringEquals": {"cloudformation:RoleArn": {"Fn::GetAtt": ["CloudFormationRole", "Arn"]}}
    }
    execution = resources["CloudFormationRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    (deny,) = [s for s in execution if s["Effect"] == "Deny"]
    assert sorted(sub_text(r) for r in deny["Resource"]) == [
        "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${CloudFormationRoleName}",
        "arn:${AWS::Partition}:iam::${AWS::AccountId}:role/${InfraRoleName}",
    ]
    assert {"iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:UpdateAssumeRolePolicy"} <= set(deny["Action"])
