"""Pure planning: names, ordering, empty plans, guardrails and refusals, without any AWS."""

from __future__ import annotations

import json

import pytest

from mlops.core.config import Config
from mlops.core.errors import DeployError, PackageRefused, RollbackUnavailable
from model_deploy.package import PackageArn, verify
from model_deploy.plan import LiveEndpoint, LiveScaling, LiveState, plan_deployment
from model_deploy.records import DeploymentRecord, deployment_stack, rollback_target
from tests.deploy.helpers import desired, fields, package


def test_names_are_deterministic_and_change_with_package_or_settings(local_config: Config) -> None:
    one, again = desired(local_config, "prod", package(1)), desired(local_config, "prod", package(1))
    assert (one.model_name, one.endpoint_config_name) == (again.model_name, again.endpoint_config_name)
    assert one.model_name.startswith("breast-cancer-v1-") and len(one.model_name) <= 63
    assert one.endpoint_config_name is not None and one.endpoint_config_name.startswith("breast-cancer-v1-")
    two = desired(local_config, "prod", package(2))
    assert two.model_name != one.model_name and two.endpoint_config_name != one.endpoint_config_name
    bigger = local_config.model_copy(
        update={
            "deploy": local_config.deploy.model_copy(
                update={
                    "prod": local_config.deploy.prod.model_copy(
                        update={
                            "inference": local_config.deploy.prod.inference.model_copy(
                                update={"instance_type": "ml.c5.xlarge"}
                            )
                        }
                    )
                }
            )
        }
    )
    resized = desired(bigger, "prod", package(1))
    assert resized.model_name == one.model_name  # same model...
    assert resized.endpoint_config_name != one.endpoint_config_name  # ...in a new config


def test_first_deployment_creates_in_order(local_config: Config) -> None:
    state = desired(local_config, "prod", package(1))
    plan = plan_deployment(state, LiveState(), package=fields(package(1)))
    assert [a.kind for a in plan.actions] == [
        "put_alarm",
        "put_alarm",
        "create_model",
        "create_endpoint_config",
        "create_endpoint",
        "register_scaling",
        "write_record",
    ]
    config = plan.actions[3].request
    assert config["ProductionVariants"] == [
        {
            "VariantName": "AllTraffic",
            "ModelName": state.model_name,
            "InstanceType": "ml.m5.large",
            "InitialInstanceCount": 2,
            "InitialVariantWeight": 1.0,
        }
    ]
    assert config["DataCaptureConfig"]["InitialSamplingPercentage"] == 20
    assert (
        config["DataCaptureConfig"]["DestinationS3Uri"]
        == "s3://mlops-deploy-000000000003-us-east-1/data-capture/breast-cancer"
    )
    assert json.loads(plan.to_json())["actions"][0]["request"]["Dimensions"][0] == {
        "Name": "EndpointName",
        "Value": "breast-cancer",
    }


def _live(state_config: str, *, scaling: bool, instance_type: str = "ml.m5.large") -> LiveState:
    return LiveState(
        endpoint=LiveEndpoint("breast-cancer", "InService", state_config),
        live_instance_type=instance_type,
        scaling=LiveScaling(2, 6, {"TargetValue": 200.0}, "breast-cancer-invocations-per-instance")
        if scaling
        else None,
    )


def test_new_package_updates_through_blue_green_with_canary_and_alarms(local_config: Config) -> None:
    state = desired(local_config, "prod", package(2))
    live = _live("breast-cancer-v1-aaaaaaaa", scaling=True)
    plan = plan_deployment(state, live, package=fields(package(2)))
    update = next(a for a in plan.actions if a.kind == "update_endpoint")
    assert update.request == {
        "EndpointName": "breast-cancer",
        "EndpointConfigName": state.endpoint_config_name,
        "RetainAllVariantProperties": True,  # keep the instance count autoscaling chose
        "DeploymentConfig": {
            "BlueGreenUpdatePolicy": {
                "TrafficRoutingConfiguration": {
                    "Type": "CANARY",
                    "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": 10},
                    "WaitIntervalInSeconds": 1,
                },
                "TerminationWaitInSeconds": 1,
                "MaximumExecutionTimeoutInSeconds": 600,
            },
            "AutoRollbackConfiguration": {
                "Alarms": [{"AlarmName": "breast-cancer-5xx-errors"}, {"AlarmName": "breast-cancer-model-latency-p99"}]
            },
        },
    }
    assert "deregister_scaling" not in [a.kind for a in plan.actions]
    assert plan.previous_endpoint_config == "breast-cancer-v1-aaaaaaaa"


def test_instance_type_change_under_autoscaling_deregisters_first_and_registers_after(local_config: Config) -> None:
    state = desired(local_config, "prod", package(2))
    live = _live("breast-cancer-v1-aaaaaaaa", scaling=True, instance_type="ml.c5.large")
    kinds = [a.kind for a in plan_deployment(state, live, package=fields(package(2))).actions]
    assert kinds.index("deregister_scaling") < kinds.index("update_endpoint") < kinds.index("register_scaling")
    plan = plan_deployment(state, live, package=fields(package(2)))
    update = next(a for a in plan.actions if a.kind == "update_endpoint")
    assert update.request["RetainAllVariantProperties"] is False
    restore = next(a for a in plan.actions if a.kind == "deregister_scaling").request["restore"]
    assert restore["target"]["MinCapacity"] == 2 and restore["policy"]["TargetTrackingScalingPolicyConfiguration"] == {
        "TargetValue": 200.0
    }


@pytest.mark.parametrize("status", ["Updating", "Creating", "RollingBack", "SystemUpdating"])
def test_busy_endpoint_is_refused(local_config: Config, status: str) -> None:
    state = desired(local_config, "staging", package(2))
    live = LiveState(endpoint=LiveEndpoint("breast-cancer-staging", status, "old"))
    with pytest.raises(DeployError, match=f"is {status}; expected InService before another deployment"):
        plan_deployment(state, live, package=fields(package(2)))


def test_failed_endpoint_is_refused_with_the_reason(local_config: Config) -> None:
    state = desired(local_config, "staging", package(2))
    live = LiveState(endpoint=LiveEndpoint("breast-cancer-staging", "Failed", "old", "image not found"))
    with pytest.raises(DeployError, match=r"(?s)is Failed \(image not found\).*delete-endpoint"):
        plan_deployment(state, live, package=fields(package(2)))


def _record(n: int, kind: str = "deploy") -> DeploymentRecord:
    return DeploymentRecord(
        kind=kind,  # type: ignore[arg-type]
        stage="prod",
        endpoint_name="breast-cancer",
        inference_type="realtime",
        endpoint_config=f"cfg-{n}",
        model_name=f"model-{n}",
        package_arn=f"arn:aws:sagemaker:us-east-1:000000000001:model-package/breast-cancer/{n}",
        package_version=n,
        git_commit="c",
        build_id="b",
        deployed_at="2026-11-22T00:00:00+00:00",
    )


def test_rollbacks_walk_back_through_the_history() -> None:
    history = [_record(1), _record(2), _record(3)]
    current, target = rollback_target(history, endpoint_name="breast-cancer")
    assert (current.package_version, target.package_version) == (3, 2)
    # After a rollback to 2 (recorded), the next rollback goes to 1, not back to 3.
    history.append(_record(2, "rollback"))
    current, target = rollback_target(history, endpoint_name="breast-cancer")
    assert (current.package_version, target.package_version) == (2, 1)
    history.append(_record(1, "rollback"))
    with pytest.raises(RollbackUnavailable, match="found only one deployment"):
        rollback_target(history, endpoint_name="breast-cancer")
    assert [r.package_version for r in deployment_stack(history)] == [1]
    assert DeploymentRecord.from_json(_record(4).to_json(), where="x") == _record(4)
    with pytest.raises(DeployError, match="not a record this version understands"):
        DeploymentRecord.from_json('{"schema": 99}', where="/mlops/x version 3")


def test_verify_rules_without_aws() -> None:
    arn = PackageArn.parse("arn:aws:sagemaker:us-east-1:000000000001:model-package/breast-cancer/1")
    assert verify(arn, package(1), stage="staging", expected_group="breast-cancer", staging_pass=None).version == 1
    two_containers = package(1).__class__(**{**package(1).__dict__, "container_count": 2})
    with pytest.raises(PackageRefused, match="expected exactly one"):
        verify(arn, two_containers, stage="staging", expected_group="breast-cancer", staging_pass=None)
    with pytest.raises(PackageRefused, match="versioned model package ARN"):
        PackageArn.parse("arn:aws:sagemaker:us-east-1:000000000001:model-package-group/breast-cancer")


def test_a_lifecycle_write_that_fails_says_the_endpoint_is_live_and_how_to_repair() -> None:
    import boto3
    from botocore.stub import Stubber

    from mlops.core.errors import AwsError
    from model_deploy.clients import AutomationClients
    from model_deploy.lifecycle import record_stage, stage_lifecycle

    sagemaker = boto3.client("sagemaker", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    arn = "arn:aws:sagemaker:us-east-1:000000000001:model-package/breast-cancer/3"
    lifecycle = stage_lifecycle("prod", "breast-cancer", "000000000003", "2026-12-01T20:00:00Z")
    with Stubber(sagemaker) as stub:
        stub.add_client_error(
            "update_model_package",
            service_error_code="AccessDeniedException",
            service_message="not authorized to perform: sagemaker:UpdateModelPackage",
            expected_params={"ModelPackageArn": arn, "ModelLifeCycle": lifecycle},
        )
        with pytest.raises(
            AwsError, match="the endpoint serves .* lifecycle stage Prod could not be recorded"
        ) as raised:
            record_stage(AutomationClients(sagemaker=sagemaker, s3=None, ssm=None), arn, lifecycle)  # type: ignore[arg-type]
    assert "re-run the same `mlops deploy`" in (raised.value.hint or "")
    with pytest.raises(ValueError, match="expected a stage in"):
        stage_lifecycle("dev", "e", "1", "now")
