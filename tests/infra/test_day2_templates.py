"""The templates' day-2 resources: drift alarms forwarded from the stages, the retrain rule, the bridge's settings."""

from __future__ import annotations

import importlib
from typing import Any

from mlops.core.config import Config
from mlops.infra.templates import active_resources, config_parameters


def test_mlops_yaml_names_the_drift_alarms(default_config: Config) -> None:
    automation = config_parameters(default_config, "automation")
    assert automation["AdoBuildPipelineId"] == "1"
    # each use case's prod drift alarm (staging has no monitor), as model_deploy names them
    assert automation["RetrainAlarmNames"] == "breast-cancer-data-drift,wine-data-drift"
    assert config_parameters(default_config, "prod")["DriftAlarmNames"] == "breast-cancer-data-drift,wine-data-drift"
    assert config_parameters(default_config, "staging")["DriftAlarmNames"] == ""


def test_retrain_rule_takes_transitions_into_alarm_of_the_drift_alarms(templates: dict[str, dict[str, Any]]) -> None:
    resources = templates["automation"]["Resources"]
    rule = resources["RetrainRule"]
    pattern = rule["Properties"]["EventPattern"]
    assert pattern["source"] == ["aws.cloudwatch"]
    assert pattern["detail-type"] == ["CloudWatch Alarm State Change"]
    assert pattern["account"] == [{"Ref": "StagingAccountId"}, {"Ref": "ProdAccountId"}]
    assert pattern["detail"] == {
        "alarmName": {"Fn::Split": [",", {"Ref": "RetrainAlarmNames"}]},
        "state": {"value": ["ALARM"]},
    }
    (target,) = rule["Properties"]["Targets"]
    assert target["Arn"] == {"Fn::GetAtt": ["BridgeFunction", "Arn"]}
    assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["BridgeDlq", "Arn"]}}
    policy = resources["StageAlarmsBusPolicy"]["Properties"]["Statement"]
    assert policy["Action"] == "events:PutEvents" and len(policy["Principal"]["AWS"]) == 2


def test_the_retrain_resources_exist_only_with_drift_alarms(templates: dict[str, dict[str, Any]]) -> None:
    code = {"BridgeCodeKey": "bridge/abc/mlops-bridge-lambda.zip"}
    with_alarms = active_resources(templates["automation"], {**code, "RetrainAlarmNames": "a-data-drift"})
    without = active_resources(templates["automation"], {**code, "RetrainAlarmNames": ""})
    for logical_id in ("RetrainRule", "RetrainRulePermission", "StageAlarmsBusPolicy"):
        assert logical_id in with_alarms and logical_id not in without
    forwarding = active_resources(templates["target"], {"DriftAlarmNames": "a-data-drift,b-data-drift"})
    assert {"DriftAlarmForwardRule", "DriftAlarmForwardRole"} <= set(forwarding)
    assert "DriftAlarmForwardRule" not in active_resources(templates["target"], {"DriftAlarmNames": ""})
    forward = templates["target"]["Resources"]["DriftAlarmForwardRule"]["Properties"]
    (target,) = forward["Targets"]
    assert target["Arn"] == {
        "Fn::Sub": "arn:${AWS::Partition}:events:${AWS::Region}:${AutomationAccountId}:event-bus/default"
    }
    assert forward["EventPattern"]["detail"]["alarmName"] == {"Fn::Split": [",", {"Ref": "DriftAlarmNames"}]}


def test_the_bridge_reads_its_retrain_settings_from_the_template(
    templates: dict[str, dict[str, Any]], default_config: Config
) -> None:
    settings = importlib.import_module("mlops_bridge.settings")
    variables = templates["automation"]["Resources"]["BridgeFunction"]["Properties"]["Environment"]["Variables"]
    parameters = {**config_parameters(default_config, "automation"), "AdoBranch": "refs/heads/main"}
    environ = {
        key: parameters.get(value["Ref"], "resource-x") if isinstance(value, dict) and "Ref" in value else "x"
        for key, value in variables.items()
    }
    environ["ADO_ORG_URL"] = "https://dev.azure.com/contoso"
    bridge = settings.BridgeSettings.from_env(environ)
    assert bridge.build_pipeline_id == 1
    assert bridge.retrain_alarm_names == frozenset({"breast-cancer-data-drift", "wine-data-drift"})
