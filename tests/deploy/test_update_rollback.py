"""UpdateEndpoint and rollback with botocore Stubber (moto lacks UpdateEndpoint): the exact requests,
the bounded wait, SageMaker's alarm-triggered rollback, undoing what apply changed, and `rollback`."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from mlops.core.config import Config
from mlops.core.errors import DeploymentFailed
from model_deploy.apply import Applier, Expected
from model_deploy.clients import AutomationClients, StageClients
from model_deploy.deploy import Runtime, deployment_parameter, rollback
from model_deploy.plan import LiveEndpoint, LiveScaling, LiveState, plan_deployment
from model_deploy.records import DeploymentRecord
from tests.deploy.helpers import desired, fields, package

OLD = "breast-cancer-v1-aaaaaaaa"
ARN = "arn:aws:sagemaker:us-east-1:000000000003:resource/x"


@dataclass
class FakeTime:
    now: float = 0.0
    slept: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@dataclass
class Stubbed:
    clients: StageClients
    sm: Stubber
    scaling: Stubber
    cloudwatch: Stubber
    ssm: Stubber


@pytest.fixture
def stubbed() -> Iterator[Stubbed]:
    session = boto3.Session(region_name="us-east-1")
    clients = StageClients(
        sagemaker=session.client("sagemaker"),
        autoscaling=session.client("application-autoscaling"),
        cloudwatch=session.client("cloudwatch"),
        ssm=session.client("ssm"),
        runtime=session.client("sagemaker-runtime"),
    )
    stubs = [Stubber(c) for c in (clients.sagemaker, clients.autoscaling, clients.cloudwatch, clients.ssm)]
    for stub in stubs:
        stub.activate()
    yield Stubbed(clients, *stubs)
    for stub in stubs:
        stub.assert_no_pending_responses()
        stub.deactivate()


def _endpoint(status: str, config: str, reason: str | None = None) -> dict[str, Any]:
    response = {
        "EndpointName": "breast-cancer",
        "EndpointArn": "arn:aws:sagemaker:us-east-1:000000000003:endpoint/breast-cancer",
        "EndpointConfigName": config,
        "EndpointStatus": status,
        "CreationTime": "2026-11-22T00:00:00Z",
        "LastModifiedTime": "2026-11-22T00:00:00Z",
    }
    if reason:
        response["FailureReason"] = reason
    return response


def _applier(config: Config, clients: StageClients, time: FakeTime) -> Applier:
    return Applier(
        clients=clients,
        record_parameter=deployment_parameter(config, "prod"),
        timeout_seconds=120,
        poll_seconds=1,
        sleep=time.sleep,
        clock=time.clock,
        progress=lambda _m: None,
    )


def _plan(config: Config, *, instance_type: str = "ml.m5.large") -> tuple[Any, Any]:
    state = desired(config, "prod", package(2))
    live = LiveState(
        endpoint=LiveEndpoint("breast-cancer", "InService", OLD),
        live_instance_type=instance_type,
        existing_models=frozenset({state.model_name}),
        existing_configs=frozenset({str(state.endpoint_config_name)}),
        scaling=LiveScaling(2, 6, dict(state.scaling.policy), state.scaling.policy_name) if state.scaling else None,
        alarms={str(a["AlarmName"]): dict(a) for a in state.alarms},
    )
    return plan_deployment(state, live, package=fields(package(2))), state


def test_update_sends_the_deployment_config_waits_confirms_and_records(local_config: Config, stubbed: Stubbed) -> None:
    plan, state = _plan(local_config)
    assert [a.kind for a in plan.actions] == ["update_endpoint", "write_record"]
    new = state.endpoint_config_name
    stubbed.sm.add_response("update_endpoint", {"EndpointArn": ARN}, plan.actions[0].request)
    stubbed.sm.add_response("describe_endpoint", _endpoint("Updating", OLD), {"EndpointName": "breast-cancer"})
    stubbed.sm.add_response("describe_endpoint", _endpoint("Updating", OLD), {"EndpointName": "breast-cancer"})
    stubbed.sm.add_response("describe_endpoint", _endpoint("InService", new), {"EndpointName": "breast-cancer"})
    stubbed.sm.add_response("describe_endpoint", _endpoint("InService", new), {"EndpointName": "breast-cancer"})
    stubbed.sm.add_response(
        "describe_endpoint_config",
        {
            "EndpointConfigName": new,
            "EndpointConfigArn": ARN,
            "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": state.model_name}],
            "CreationTime": "2026-11-22T00:00:00Z",
        },
        {"EndpointConfigName": new},
    )
    stubbed.sm.add_response(
        "describe_model",
        {
            "ModelName": state.model_name,
            "ModelArn": ARN,
            "CreationTime": "2026-11-22T00:00:00Z",
            "PrimaryContainer": state.model["PrimaryContainer"],
        },
        {"ModelName": state.model_name},
    )
    stubbed.ssm.add_response(
        "put_parameter",
        {"Version": 2},
        {
            "Name": "/mlops/breast-cancer/deployments/breast-cancer",
            "Value": ANY,
            "Type": "String",
            "Overwrite": True,
            "Description": ANY,
        },
    )
    time = FakeTime()
    result = _applier(local_config, stubbed.clients, time).apply(
        plan, Expected(new, state.model_name, state.model["PrimaryContainer"])
    )
    assert result.record_version == 2
    assert time.slept == [0.25, 0.5]  # polls back off towards the configured interval; no real sleep


def _expect_update_then_rollback(stubbed: Stubbed, plan: Any) -> None:
    update = next(a for a in plan.actions if a.kind == "update_endpoint")
    stubbed.sm.add_response("update_endpoint", {"EndpointArn": ARN}, update.request)
    stubbed.sm.add_response("describe_endpoint", _endpoint("Updating", OLD), {"EndpointName": "breast-cancer"})
    stubbed.sm.add_response(
        "describe_endpoint",
        _endpoint("InService", OLD, "Alarm breast-cancer-5xx-errors went into ALARM during the baking period"),
        {"EndpointName": "breast-cancer"},
    )


def test_tripped_alarm_rollback_is_reported_and_nothing_is_recorded(local_config: Config, stubbed: Stubbed) -> None:
    plan, state = _plan(local_config)
    _expect_update_then_rollback(stubbed, plan)
    with pytest.raises(
        DeploymentFailed,
        match=r"(?s)was rolled back.*InService on breast-cancer-v1-aaaaaaaa.*5xx-errors went into ALARM",
    ):
        _applier(local_config, stubbed.clients, FakeTime()).apply(
            plan, Expected(state.endpoint_config_name, state.model_name)
        )
    # No put_parameter was stubbed: a record write would have raised in the Stubber.


def test_instance_type_change_puts_autoscaling_back_when_the_update_rolls_back(
    local_config: Config, stubbed: Stubbed
) -> None:
    plan, state = _plan(local_config, instance_type="ml.c5.large")
    assert [a.kind for a in plan.actions] == [
        "deregister_scaling",
        "update_endpoint",
        "register_scaling",
        "write_record",
    ]
    resource = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": "endpoint/breast-cancer/variant/AllTraffic",
        "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
    }
    stubbed.scaling.add_response("deregister_scalable_target", {}, resource)
    _expect_update_then_rollback(stubbed, plan)
    # The undo: the old fleet gets its scalable target and policy back.
    stubbed.scaling.add_response("register_scalable_target", {}, {**resource, "MinCapacity": 2, "MaxCapacity": 6})
    stubbed.scaling.add_response(
        "put_scaling_policy",
        {"PolicyARN": ARN, "Alarms": []},
        {
            **resource,
            "PolicyName": "breast-cancer-invocations-per-instance",
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": dict(state.scaling.policy),
        },
    )
    with pytest.raises(DeploymentFailed, match="was rolled back"):
        _applier(local_config, stubbed.clients, FakeTime()).apply(
            plan, Expected(state.endpoint_config_name, state.model_name)
        )


def test_wait_is_bounded(local_config: Config, stubbed: Stubbed) -> None:
    plan, state = _plan(local_config)
    stubbed.sm.add_response("update_endpoint", {"EndpointArn": ARN}, plan.actions[0].request)
    for _ in range(123):  # 0.25 s, 0.5 s, then 1 s polls until 120 s
        stubbed.sm.add_response("describe_endpoint", _endpoint("Updating", OLD), {"EndpointName": "breast-cancer"})
    time = FakeTime()
    with pytest.raises(DeploymentFailed, match=r"(?s)still Updating after 120s.*rolls it back on alarm by itself"):
        _applier(local_config, stubbed.clients, time).apply(
            plan, Expected(state.endpoint_config_name, state.model_name)
        )
    assert sum(time.slept) == 120


def _history_page(records: list[DeploymentRecord]) -> dict[str, Any]:
    return {
        "Parameters": [
            {
                "Name": "/mlops/breast-cancer/deployments/breast-cancer-staging",
                "Version": i + 1,
                "Value": r.to_json(),
                "Type": "String",
            }
            for i, r in enumerate(records)
        ]
    }


def _staging_record(n: int) -> DeploymentRecord:
    return DeploymentRecord(
        kind="deploy",
        stage="staging",
        endpoint_name="breast-cancer-staging",
        inference_type="realtime",
        endpoint_config=f"breast-cancer-staging-v{n}-0000000{n}",
        model_name=f"breast-cancer-v{n}-0000000{n}",
        package_arn=f"arn:aws:sagemaker:us-east-1:000000000001:model-package/breast-cancer/{n}",
        package_version=n,
        git_commit="c" * 40,
        build_id="b",
        deployed_at="2026-11-22T00:00:00+00:00",
    )


def _automation_approving(record: DeploymentRecord) -> AutomationClients:
    """Automation clients whose registry answers that the rollback target is an approved package."""
    session = boto3.Session(region_name="us-east-1")
    clients = AutomationClients(
        sagemaker=session.client("sagemaker"), s3=session.client("s3"), ssm=session.client("ssm")
    )
    registry = Stubber(clients.sagemaker)
    registry.add_response(
        "describe_model_package",
        {
            "ModelPackageName": "breast-cancer",
            "ModelPackageArn": record.package_arn,
            "ModelPackageGroupName": "breast-cancer",
            "ModelPackageVersion": record.package_version,
            "ModelApprovalStatus": "Approved",
            "ModelPackageStatus": "Completed",
            "CreationTime": "2026-11-22T00:00:00Z",
            "ModelPackageStatusDetails": {"ValidationStatuses": [], "ImageScanStatuses": []},
            "InferenceSpecification": {
                "Containers": [{"Image": "i", "ModelDataUrl": "s3://b/model.tar.gz"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
        },
        {"ModelPackageName": record.package_arn},
    )
    # The rollback leaves the endpoint serving this package: its lifecycle stage follows (model_deploy.lifecycle).
    registry.add_response(
        "update_model_package",
        {"ModelPackageArn": record.package_arn},
        {
            "ModelPackageArn": record.package_arn,
            "ModelLifeCycle": {"Stage": "Staging", "StageStatus": "Deployed", "StageDescription": ANY},
        },
    )
    registry.activate()
    return clients


def _config_description(name: str, model: str) -> dict[str, Any]:
    return {
        "EndpointConfigName": name,
        "EndpointConfigArn": ARN,
        "ProductionVariants": [{"VariantName": "AllTraffic", "ModelName": model, "InstanceType": "ml.m5.large"}],
        "CreationTime": "2026-11-22T00:00:00Z",
    }


def test_rollback_goes_to_the_previous_record_through_update_endpoint(local_config: Config, stubbed: Stubbed) -> None:
    one, two = _staging_record(1), _staging_record(2)
    name = "breast-cancer-staging"
    stubbed.ssm.add_response(
        "get_parameter_history", _history_page([one, two]), {"Name": f"/mlops/breast-cancer/deployments/{name}"}
    )
    staging_endpoint = {**_endpoint("InService", str(two.endpoint_config)), "EndpointName": name}
    stubbed.sm.add_response("describe_endpoint", staging_endpoint, {"EndpointName": name})
    stubbed.sm.add_response(
        "describe_endpoint_config",
        _config_description(str(two.endpoint_config), two.model_name),
        {"EndpointConfigName": two.endpoint_config},
    )
    stubbed.sm.add_response(
        "describe_endpoint_config",
        _config_description(str(one.endpoint_config), one.model_name),
        {"EndpointConfigName": one.endpoint_config},
    )
    stubbed.scaling.add_response(
        "describe_scalable_targets",
        {"ScalableTargets": []},
        {
            "ServiceNamespace": "sagemaker",
            "ResourceIds": [f"endpoint/{name}/variant/AllTraffic"],
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
        },
    )
    stubbed.sm.add_response(
        "update_endpoint",
        {"EndpointArn": ARN},
        {
            "EndpointName": name,
            "EndpointConfigName": one.endpoint_config,
            "RetainAllVariantProperties": False,
            "DeploymentConfig": {
                "BlueGreenUpdatePolicy": {
                    "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 300},
                    "TerminationWaitInSeconds": 0,
                    "MaximumExecutionTimeoutInSeconds": 1800,
                },
                "AutoRollbackConfiguration": {"Alarms": [{"AlarmName": "breast-cancer-staging-5xx-errors"}]},
            },
        },
    )
    stubbed.sm.add_response(
        "describe_endpoint", {**staging_endpoint, "EndpointStatus": "Updating"}, {"EndpointName": name}
    )
    back = {**staging_endpoint, "EndpointConfigName": one.endpoint_config}
    stubbed.sm.add_response("describe_endpoint", back, {"EndpointName": name})
    stubbed.sm.add_response("describe_endpoint", back, {"EndpointName": name})
    stubbed.sm.add_response(
        "describe_endpoint_config",
        _config_description(str(one.endpoint_config), one.model_name),
        {"EndpointConfigName": one.endpoint_config},
    )
    written: list[str] = []
    stubbed.ssm.add_response(
        "put_parameter",
        {"Version": 3},
        {
            "Name": f"/mlops/breast-cancer/deployments/{name}",
            "Value": ANY,
            "Type": "String",
            "Overwrite": True,
            "Description": ANY,
        },
    )
    stubbed.clients.ssm.meta.events.register(
        "before-parameter-build.ssm.PutParameter", lambda params, **_: written.append(params["Value"])
    )
    time = FakeTime()
    outcome = rollback(
        local_config,
        "staging",
        automation=_automation_approving(one),
        stage_clients=stubbed.clients,
        runtime=Runtime(sleep=time.sleep, clock=time.clock),
    )
    assert outcome.plan.kind == "rollback" and outcome.plan.package_arn == one.package_arn
    record = DeploymentRecord.from_json(written[0], where="test")
    assert (record.kind, record.package_arn, record.previous_endpoint_config) == (
        "rollback",
        one.package_arn,
        two.endpoint_config,
    )


def test_rollback_refuses_when_the_endpoint_was_changed_by_hand(local_config: Config, stubbed: Stubbed) -> None:
    one, two = _staging_record(1), _staging_record(2)
    name = "breast-cancer-staging"
    stubbed.ssm.add_response(
        "get_parameter_history", _history_page([one, two]), {"Name": f"/mlops/breast-cancer/deployments/{name}"}
    )
    stubbed.sm.add_response(
        "describe_endpoint", {**_endpoint("InService", "hand-made"), "EndpointName": name}, {"EndpointName": name}
    )
    stubbed.sm.add_response(
        "describe_endpoint_config", _config_description("hand-made", "m"), {"EndpointConfigName": "hand-made"}
    )
    stubbed.sm.add_response(
        "describe_endpoint_config",
        _config_description(str(one.endpoint_config), one.model_name),
        {"EndpointConfigName": one.endpoint_config},
    )
    stubbed.scaling.add_response(
        "describe_scalable_targets",
        {"ScalableTargets": []},
        {
            "ServiceNamespace": "sagemaker",
            "ResourceIds": [f"endpoint/{name}/variant/AllTraffic"],
            "ScalableDimension": "sagemaker:variant:DesiredInstanceCount",
        },
    )
    with pytest.raises(Exception, match="runs hand-made; expected breast-cancer-staging-v2-00000002"):
        rollback(
            local_config,
            "staging",
            automation=_automation_approving(one),
            stage_clients=stubbed.clients,
            runtime=Runtime(sleep=pytest.fail),
        )
