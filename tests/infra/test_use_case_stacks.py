"""Many use cases in one set of accounts: one stack per use case and account (use-case.yaml), each granting the
shared roles exactly its use case's resources; the shared templates name no use case; the quota of managed
policies per role bounds how many use cases fit, and says so before anything is deployed."""

from __future__ import annotations

import json
from typing import Any

import pytest

from mlops.cli import main
from mlops.core.config import Config
from mlops.core.errors import InfraError
from mlops.core.use_cases import FRAMEWORKS, UseCaseNames
from mlops.infra.render import Renderer
from mlops.infra.templates import (
    BRIDGE_ROLE,
    active_resources,
    check_policy_quota,
    config_parameters,
    use_case_names,
    use_case_stack_spec,
)

from .conftest import REPO_ROOT
from .test_policies import allowed, as_list, statements, sub_text

SM, SSM = "arn:aws:sagemaker:eu-west-1:222222222222", "arn:aws:ssm:eu-west-1:222222222222"
OUTPUTS = {"ArtifactKeyArn": "arn:aws:kms:eu-west-1:111111111111:key/0a1b2c3d", "BridgeFunctionName": "mlops-bridge"}
# Resource forms that scope a grant to one use case: its name, its stage's endpoint, or the artifact key by id.
SCOPED = ("${UseCase}", "${EndpointName}", "${ArtifactKeyId}")


def with_use_cases(config: Config, count: int) -> Config:
    """The config with `count` use cases found: its own (breast-cancer) and `count - 1` more."""
    names = [config.use_case.name, *(f"model{i}" for i in range(count - 1))]
    return config.model_copy(update={"use_cases": config.use_cases.model_copy(update={"available": names})})


def test_the_shared_templates_name_no_use_case(templates: dict[str, dict[str, Any]]) -> None:
    for name in ("automation", "target"):
        text = json.dumps(templates[name])
        for per_use_case in ("ProjectName", "PipelineName", '"Ref": "ModelPackageGroupName"', "breast-cancer"):
            assert per_use_case not in text, f"{name}.yaml still names {per_use_case}: it belongs in use-case.yaml"
        assert "AWS::SageMaker::ModelPackageGroup" not in text and "AWS::IAM::ManagedPolicy" not in text


def test_every_grant_of_a_use_case_stack_is_scoped_to_the_use_case(templates: dict[str, dict[str, Any]]) -> None:
    found = list(statements(templates["use-case"]["Resources"]))
    assert len(found) > 25, "the walk found too few statements to mean anything"
    for where, statement, is_resource_policy in found:
        assert not is_resource_policy and statement["Effect"] == "Allow", where
        # ListBucket is on the bucket: its s3:prefix condition is what scopes it
        prefixes = json.dumps(statement.get("Condition", {}).get("StringLike", {}).get("s3:prefix"))
        for resource in as_list(statement["Resource"]):
            scoped = any(name in sub_text(resource) for name in SCOPED) or "${UseCase}/*" in prefixes
            assert scoped, f"{where}: {resource} is not the use case's"


def test_each_use_case_gets_its_own_stack_in_each_account(local_config: Config) -> None:
    assert use_case_names(local_config) == ["breast-cancer", "wine"]
    stacks = {}
    for account in ("automation", "staging", "prod"):
        for name in use_case_names(local_config):
            spec = use_case_stack_spec(local_config, account, name, OUTPUTS)
            assert spec.template_path.name == "use-case.yaml"
            stacks[spec.stack_name] = spec.parameters
    assert sorted(stacks) == [
        "mlops-breast-cancer-automation", "mlops-breast-cancer-prod", "mlops-breast-cancer-staging",
        "mlops-wine-automation", "mlops-wine-prod", "mlops-wine-staging",
    ]  # fmt: skip
    assert stacks["mlops-wine-staging"]["EndpointName"] == UseCaseNames("wine").endpoint("staging") == "wine-staging"
    assert stacks["mlops-wine-prod"]["EndpointName"] == "wine"
    assert stacks["mlops-wine-automation"]["ArtifactKeyId"] == "0a1b2c3d"
    assert stacks["mlops-wine-automation"]["BridgeRoleName"] == BRIDGE_ROLE


def test_the_bridge_role_name_is_the_templates(templates: dict[str, dict[str, Any]], local_config: Config) -> None:
    assert templates["automation"]["Resources"]["BridgeRole"]["Properties"]["RoleName"] == BRIDGE_ROLE
    # without the bridge (no BridgeFunctionName output), no policy is attached to a role that does not exist
    spec = use_case_stack_spec(local_config, "automation", "wine", {"ArtifactKeyArn": OUTPUTS["ArtifactKeyArn"]})
    active = active_resources(templates["use-case"], spec.parameters)
    assert "BridgePolicy" not in active and "BuildPolicy" in active


def test_a_use_case_stack_needs_a_known_use_case_and_the_shared_stacks_key(local_config: Config) -> None:
    with pytest.raises(InfraError, match=r"--use-case 'fraud': no such use case; expected one of breast-cancer, wine"):
        use_case_stack_spec(local_config, "staging", "fraud", OUTPUTS)
    with pytest.raises(InfraError, match="has no ArtifactKeyArn output") as refused:
        use_case_stack_spec(local_config, "automation", "wine", {})
    assert "mlops infra deploy --account automation" in (refused.value.hint or "")


@pytest.mark.parametrize(
    ("policy", "names", "action", "arn_of"),
    [
        ("BuildPolicy", {}, "sagemaker:StartPipelineExecution", f"{SM}:pipeline/{{}}-build"),
        ("BuildPolicy", {}, "sagemaker:UpdatePipeline", f"{SM}:pipeline/{{}}-build-feature-x"),
        ("RegistryReadPolicy", {}, "sagemaker:DescribeModelPackageGroup", f"{SM}:model-package-group/{{}}"),
        ("PipelinePolicy", {}, "s3:PutObject", "arn:aws:s3:::mlops-artifacts/{}/runs/1/model.tar.gz"),
        ("StagingPassPolicy", {}, "ssm:PutParameter", f"{SSM}:parameter/mlops/{{}}/staging-pass/3"),
        ("DeployPolicy", {"stage": "staging"}, "sagemaker:UpdateEndpoint", f"{SM}:endpoint/{{}}-staging"),
        ("DeployPolicy", {"stage": "prod"}, "sagemaker:CreateModel", f"{SM}:model/{{}}-v3-0a1b2c3d"),
        ("EndpointPolicy", {"stage": "prod"}, "s3:GetObject", "arn:aws:s3:::mlops-artifacts/{}/runs/1/model.tar.gz"),
    ],
)  # fmt: skip
def test_a_use_cases_policy_reaches_its_resources_and_no_other_use_cases(
    templates: dict[str, dict[str, Any]], policy: str, names: dict[str, str], action: str, arn_of: str
) -> None:
    document = templates["use-case"]["Resources"][policy]["Properties"]["PolicyDocument"]
    stage = names.get("stage", "prod")
    for use_case in ("wine", "breast-cancer"):
        values = {"UseCase": use_case, "EndpointName": UseCaseNames(use_case).endpoint(stage)}
        values |= {"ArtifactBucketName": "mlops-artifacts", "RecordParameterPrefix": "/mlops"}
        assert allowed(document, action, arn_of.format(use_case), values), (policy, use_case)
        # another use case's resource (and a name that merely starts like this one) stays out of reach
        other = "breast-cancer" if use_case == "wine" else "wine"
        assert not allowed(document, action, arn_of.format(other), values), (policy, use_case, other)
        assert not allowed(document, action, arn_of.format(f"{use_case}x"), values), (policy, use_case)


def test_the_managed_policy_quota_bounds_the_use_cases_per_role(local_config: Config) -> None:
    # each shared role carries one managed policy per use case (none from the shared templates): 10 fit by default
    assert max(check_policy_quota(local_config).values()) == 2
    ten = with_use_cases(local_config, 10)
    assert max(check_policy_quota(ten).values()) == 10
    eleven = with_use_cases(local_config, 11)
    with pytest.raises(
        InfraError, match=r"11 use cases need 11 managed policies attached to the automation"
    ) as too_many:
        check_policy_quota(eleven)
    assert "IAM allows 10 per role, so at most 10 use cases fit" in str(too_many.value)
    assert "Service Quotas" in (too_many.value.hint or "")
    assert max(check_policy_quota(eleven, quota=20).values()) == 11  # after a quota increase
    with pytest.raises(InfraError, match="expected 1..20"):
        check_policy_quota(local_config, quota=21)


def test_lint_refuses_more_use_cases_than_the_quota_allows(capsys: pytest.CaptureFixture[str]) -> None:
    # the quota check runs before cfn-lint: a quota of 1 with the two shipped use cases fails at once
    code = main(["--config", str(REPO_ROOT / "mlops.yaml"), "infra", "lint", "--no-checkov", "--policy-quota", "1"])
    assert code == 1
    assert "2 use cases need 2 managed policies attached to the automation account's role" in capsys.readouterr().err


# SageMaker's framework image repositories (training, processing and serving) per use_case.yaml framework.
FRAMEWORK_REPOSITORIES = {"xgboost": "sagemaker-xgboost", "sklearn": "sagemaker-scikit-learn"}


def test_the_pipeline_and_endpoint_roles_pull_every_framework_a_use_case_may_choose(
    templates: dict[str, dict[str, Any]],
) -> None:
    pulls = {
        "PipelineExecutionRole": ("automation", "PullFrameworkAndApprovedImages"),
        "EndpointRole": ("target", "PullServingImages"),
    }
    for role, (template, sid) in pulls.items():
        policy = templates[template]["Resources"][role]["Properties"]["Policies"][0]["PolicyDocument"]
        (statement,) = [s for s in policy["Statement"] if s.get("Sid") == sid]
        repositories = {sub_text(r).rsplit(":repository/", 1)[-1] for r in as_list(statement["Resource"])}
        for framework in FRAMEWORKS:
            assert FRAMEWORK_REPOSITORIES[framework] in repositories, (role, framework)


def test_the_stage_roles_list_every_use_cases_prefix_of_the_artifact_bucket(
    templates: dict[str, dict[str, Any]], local_config: Config
) -> None:
    """The one bucket policy learns the use cases from ModelPackageGroups (a CommaDelimitedList made into a list of
    '<use case>/*' prefixes, as CloudFormation evaluates it)."""
    template = templates["automation"]
    pseudo = {"AWS::AccountId": "1", "AWS::Region": "eu-west-1", "AWS::Partition": "aws", "AWS::StackName": "s"}
    renderer = Renderer(
        template,
        config_parameters(local_config, "automation"),
        pseudo=pseudo,
        refs={"ArtifactBucket": "artifacts"},
        attribute=lambda logical_id, name: "arn:aws:s3:::artifacts",
    )
    policy = renderer.value(template["Resources"]["ArtifactBucketPolicy"]["Properties"]["PolicyDocument"])
    (listing,) = [s for s in policy["Statement"] if s.get("Sid") == "TargetRolesListProjectPrefix"]
    assert listing["Condition"]["StringLike"]["s3:prefix"] == ["breast-cancer/*", "wine/*"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--access", "--use-case", "wine"], "--access and --use-case exclude each other"),
        (["--use-case", "wine", "-p", "BridgeCodeKey=x.zip"], "--parameter sets the shared stack's parameters"),
    ],
)
def test_deploy_refuses_flags_that_cannot_apply_to_a_use_cases_stack(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # refused before any AWS call: no credentials or endpoint are needed to see it
    code = main(["--config", str(REPO_ROOT / "mlops.yaml"), "infra", "deploy", "--account", "automation", *args])
    assert code == 1
    assert message in capsys.readouterr().err
