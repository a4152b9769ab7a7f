"""The templates name what the code and mlops.yaml name: roles, bucket, key alias, bridge settings and handlers."""

from __future__ import annotations

import importlib
from typing import Any

import pytest

from mlops.core.config import Config
from mlops.core.errors import InfraError
from mlops.infra.templates import (
    active_resources,
    config_parameters,
    organization_name,
    parameter_list,
    parse_overrides,
    stack_spec,
)

from .conftest import ORG_ID


def resolve(value: Any, parameters: dict[str, str], physical: dict[str, str]) -> str:
    """Enough of CloudFormation's Ref/Join for the bridge's environment."""
    if isinstance(value, dict) and "Ref" in value:
        return parameters.get(value["Ref"]) or physical[value["Ref"]]
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, (listed,) = value["Fn::Join"][0], [value["Fn::Join"][1]]
        return separator.join(resolve(listed, parameters, physical).split(","))  # a CommaDelimitedList's Ref
    return str(value)


def test_mlops_yaml_fills_the_names_the_code_uses(default_config: Config) -> None:
    automation = config_parameters(default_config, "automation")
    assert automation["ArtifactBucketName"] == "mlops-artifacts-111111111111-eu-west-1"
    assert automation["ArtifactKeyAlias"] == "alias/mlops-artifacts"
    assert automation["PipelineExecutionRoleName"] == "mlops-sagemaker-pipeline"
    assert automation["DeployRoleName"] == "mlops-deploy"
    # every use case of model_build/use_cases shares the account: the bridge and approval rule know each group
    assert automation["ModelPackageGroups"] == "breast-cancer,wine"
    assert not {"ModelPackageGroupName", "PipelineName", "ProjectName"} & set(automation)
    assert automation["AzureDevOpsOrganizationName"] == "contoso"
    assert automation["AdoDeployPipelineId"] == "2"
    assert (automation["StagingAccountId"], automation["ProdAccountId"]) == ("222222222222", "333333333333")
    # the records' prefix is only in the use cases' stacks now (each use case's records are its own)
    assert "RecordParameterPrefix" not in automation
    prod = config_parameters(default_config, "prod")
    assert prod["Stage"] == "prod" and prod["AutomationAccountId"] == "111111111111"
    assert prod["DeployRoleName"] == "mlops-deploy"
    # the trust policies name the connections of mlops/core/identities.py, the names the YAML uses
    assert automation["BuildServiceConnectionName"] == "aws-build"
    assert automation["RegistryReadServiceConnectionName"] == "aws-registry-read"
    assert prod["StageServiceConnectionName"] == "aws-deploy-prod"
    assert automation["OidcIssuer"] == prod["OidcIssuer"] == "legacy"
    # the execution role model_deploy names in CreateModel is the one the template creates
    assert prod["EndpointRoleName"] == default_config.deploy.prod.execution_role_name


def test_the_stage_bucket_is_the_one_model_deploy_uses(
    templates: dict[str, dict[str, Any]], default_config: Config
) -> None:
    bucket = templates["target"]["Resources"]["StageBucket"]["Properties"]["BucketName"]
    pattern = default_config.deploy.staging.bucket.replace("{account_id}", "${AWS::AccountId}")
    assert bucket == {"Fn::Sub": pattern.replace("{region}", "${AWS::Region}")}


def test_template_defaults_match_the_config_defaults(templates: dict[str, dict[str, Any]]) -> None:
    parameters = templates["automation"]["Parameters"]
    assert parameters["PipelineExecutionRoleName"]["Default"] == "mlops-sagemaker-pipeline"
    assert parameters["ArtifactKeyAlias"]["Default"] == "alias/mlops-artifacts"
    assert (
        parameters["TargetEndpointRoleName"]["Default"]
        == templates["target"]["Parameters"]["EndpointRoleName"]["Default"]
    )
    assert (
        parameters["EcrRepositoryName"]["Default"] == templates["target"]["Parameters"]["EcrRepositoryName"]["Default"]
    )


def test_bridge_environment_is_what_the_bridge_reads(
    templates: dict[str, dict[str, Any]], default_config: Config
) -> None:
    settings = importlib.import_module("mlops_bridge.settings")
    resources = templates["automation"]["Resources"]
    parameters = {
        **config_parameters(default_config, "automation"),
        "AdoBranch": "refs/heads/main",
        "ReminderMinAgeHours": "24",
    }
    physical = {
        "AdoAuthSecret": "arn:aws:secretsmanager:eu-west-1:111111111111:secret:mlops/azure-devops/bridge-auth-abc",
        "IdempotencyTable": "mlops-bridge-idempotency",
        "ReminderTopic": "arn:aws:sns:eu-west-1:111111111111:mlops-pending-approvals",
    }

    def environment(logical_id: str) -> dict[str, str]:
        variables = resources[logical_id]["Properties"]["Environment"]["Variables"]
        return {k: resolve(v, parameters, physical) for k, v in variables.items()}

    bridge = settings.BridgeSettings.from_env(environment("BridgeFunction"))
    assert bridge.pipeline_id == 2 and bridge.project == "mlops"
    assert bridge.model_package_groups == frozenset({"breast-cancer", "wine"})
    assert bridge.auth_secret_arn == physical["AdoAuthSecret"]
    reminders = settings.ReminderSettings.from_env(environment("ReminderFunction"))
    assert reminders.topic_arn == physical["ReminderTopic"]


@pytest.mark.parametrize("logical_id", ["BridgeFunction", "ReminderFunction"])
def test_handlers_exist(templates: dict[str, dict[str, Any]], logical_id: str) -> None:
    module, _, name = templates["automation"]["Resources"][logical_id]["Properties"]["Handler"].rpartition(".")
    assert module.startswith("mlops_bridge.")
    assert callable(getattr(importlib.import_module(module), name))


def test_idempotency_table_is_what_powertools_expects(templates: dict[str, dict[str, Any]]) -> None:
    table = templates["automation"]["Resources"]["IdempotencyTable"]["Properties"]
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]
    assert table["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}


def test_approval_rule_matches_approvals_of_our_groups_only(templates: dict[str, dict[str, Any]]) -> None:
    rule = templates["automation"]["Resources"]["ApprovalRule"]["Properties"]
    pattern = rule["EventPattern"]
    assert pattern["source"] == ["aws.sagemaker"]
    assert pattern["detail-type"] == ["SageMaker Model Package State Change"]
    assert pattern["detail"] == {
        "ModelPackageGroupName": {"Ref": "ModelPackageGroups"},
        "ModelApprovalStatus": ["Approved"],
    }
    (target,) = rule["Targets"]
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] > 0
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["BridgeDlq", "Arn"]}}


def test_conditions_decide_which_resources_exist(templates: dict[str, dict[str, Any]]) -> None:
    template = templates["automation"]
    without_code = active_resources(template, {})
    with_code = active_resources(template, {"BridgeCodeKey": "bridge/abc/mlops-bridge-lambda.zip"})
    assert "BridgeFunction" not in without_code and "BridgeFunction" in with_code
    assert "AzureDevOpsOidcProvider" in without_code
    reused = active_resources(template, {"ExistingOidcProviderArn": "arn:aws:iam::1:oidc-provider/x"})
    assert "AzureDevOpsOidcProvider" not in reused


def test_overrides_are_checked_against_the_template(local_config: Config) -> None:
    assert parse_overrides(["A=b=c", "Empty="]) == {"A": "b=c", "Empty": ""}
    with pytest.raises(InfraError, match="expected KEY=VALUE"):
        parse_overrides(["novalue"])
    with pytest.raises(InfraError, match="has no such parameter"):
        stack_spec(local_config, "staging", {"BridgeCodeKey": "x.zip"})
    spec = stack_spec(local_config, "automation", {"AzureDevOpsOrganizationId": ORG_ID})
    assert spec.parameters["AzureDevOpsOrganizationId"] == ORG_ID and spec.stack_name == "mlops-automation"


def test_parameters_keep_previous_values_and_name_what_is_missing(
    local_config: Config, templates: dict[str, Any]
) -> None:
    spec = stack_spec(local_config, "staging")
    declared = templates["target"]["Parameters"]
    entries, missing = parameter_list(spec, declared, frozenset())
    assert missing == ["AzureDevOpsOrganizationId"]
    entries, missing = parameter_list(spec, declared, frozenset({"AzureDevOpsOrganizationId"}))
    assert missing == []
    assert {"ParameterKey": "AzureDevOpsOrganizationId", "UsePreviousValue": True} in entries
    assert {"ParameterKey": "Stage", "ParameterValue": "staging"} in entries


@pytest.mark.parametrize(
    ("url", "name"),
    [("https://dev.azure.com/contoso", "contoso"), ("https://dev.azure.com/contoso/", "contoso"),
     ("https://contoso.visualstudio.com", "contoso"), ("http://127.0.0.1/local-org", "local-org")],
)  # fmt: skip
def test_organization_name(url: str, name: str) -> None:
    assert organization_name(url) == name
