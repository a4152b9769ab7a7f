"""Read the live state of a stage: only what the plan compares, only by the names the plan renders."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import botocore.exceptions

from mlops.core.aws import error_message
from mlops.core.errors import AwsError
from model_deploy.clients import StageClients, is_missing
from model_deploy.desired import SCALABLE_DIMENSION, DesiredState
from model_deploy.plan import LiveEndpoint, LiveMonitor, LiveScaling, LiveState, live_resource_id
from model_deploy.records import DeploymentRecord


def describe_or_none(call: Callable[..., Any], what: str, **kwargs: Any) -> Any | None:
    """A describe call that answers None for "not found" and explains every other failure."""
    try:
        return call(**kwargs)
    except botocore.exceptions.ClientError as exc:
        if is_missing(exc):
            return None
        raise AwsError(
            f"could not read {what}: {error_message(exc)}",
            hint="check that the deploy role in the stage account may describe SageMaker, scaling and alarms",
        ) from exc


def read_endpoint(clients: StageClients, name: str) -> tuple[LiveEndpoint | None, dict[str, Any] | None]:
    """The endpoint and the description of the config it runs, or (None, None)."""
    described = describe_or_none(clients.sagemaker.describe_endpoint, f"endpoint {name}", EndpointName=name)
    if described is None:
        return None, None
    endpoint = LiveEndpoint(
        name=name,
        status=str(described["EndpointStatus"]),
        config_name=str(described["EndpointConfigName"]),
        failure_reason=described.get("FailureReason"),
    )
    config = describe_or_none(
        clients.sagemaker.describe_endpoint_config,
        f"endpoint config {endpoint.config_name}",
        EndpointConfigName=endpoint.config_name,
    )
    return endpoint, config


def variant_instance_type(config: dict[str, Any] | None) -> str | None:
    if not config:
        return None
    variants = config.get("ProductionVariants") or [{}]
    value = variants[0].get("InstanceType")
    return str(value) if value else None


def read_scaling(clients: StageClients, resource_id: str) -> LiveScaling | None:
    targets = describe_or_none(
        clients.autoscaling.describe_scalable_targets,
        f"scalable target {resource_id}",
        ServiceNamespace="sagemaker",
        ResourceIds=[resource_id],
        ScalableDimension=SCALABLE_DIMENSION,
    )
    found = (targets or {}).get("ScalableTargets", [])
    if not found:
        return None
    policies = describe_or_none(
        clients.autoscaling.describe_scaling_policies,
        f"scaling policies of {resource_id}",
        ServiceNamespace="sagemaker",
        ResourceId=resource_id,
        ScalableDimension=SCALABLE_DIMENSION,
    )
    tracking = [
        p for p in (policies or {}).get("ScalingPolicies", []) if "TargetTrackingScalingPolicyConfiguration" in p
    ]
    return LiveScaling(
        min_capacity=int(found[0]["MinCapacity"]),
        max_capacity=int(found[0]["MaxCapacity"]),
        policy=tracking[0]["TargetTrackingScalingPolicyConfiguration"] if tracking else None,
        policy_name=str(tracking[0]["PolicyName"]) if tracking else None,
    )


def _alarms(clients: StageClients, names: list[str]) -> dict[str, dict[str, Any]]:
    if not names:
        return {}
    described = describe_or_none(clients.cloudwatch.describe_alarms, f"alarms {names}", AlarmNames=names)
    return {str(a["AlarmName"]): dict(a) for a in (described or {}).get("MetricAlarms", [])}


def _monitor(clients: StageClients, desired: DesiredState) -> tuple[LiveMonitor | None, frozenset[str]]:
    spec = desired.monitor
    if spec is None:
        return None, frozenset()
    definitions = frozenset(
        {spec.job_definition_name}
        if describe_or_none(
            clients.sagemaker.describe_data_quality_job_definition,
            f"job definition {spec.job_definition_name}",
            JobDefinitionName=spec.job_definition_name,
        )
        else set()
    )
    schedule = describe_or_none(
        clients.sagemaker.describe_monitoring_schedule,
        f"monitoring schedule {spec.schedule_name}",
        MonitoringScheduleName=spec.schedule_name,
    )
    if schedule is None:
        return None, definitions
    config = schedule["MonitoringScheduleConfig"]
    live = LiveMonitor(
        job_definition_name=str(config.get("MonitoringJobDefinitionName", "")),
        schedule_expression=str(config.get("ScheduleConfig", {}).get("ScheduleExpression", "")),
        status=str(schedule.get("MonitoringScheduleStatus", "")),
    )
    return live, definitions


def read_live_state(
    clients: StageClients, desired: DesiredState, history: list[DeploymentRecord]
) -> tuple[LiveState, dict[str, Any] | None]:
    """The live state the plan compares against, and the live endpoint config's description."""
    latest = history[-1] if history else None
    models = frozenset(
        {desired.model_name}
        if describe_or_none(
            clients.sagemaker.describe_model, f"model {desired.model_name}", ModelName=desired.model_name
        )
        else set()
    )
    if desired.inference_type == "batch":
        transform = None
        if desired.transform is not None:
            transform = describe_or_none(
                clients.sagemaker.describe_transform_job,
                f"transform job {desired.transform.job_name}",
                TransformJobName=desired.transform.job_name,
            )
        status = str(transform["TransformJobStatus"]) if transform else None
        return LiveState(existing_models=models, transform_status=status, latest_record=latest), None
    endpoint, live_config = read_endpoint(clients, desired.endpoint_name)
    configs: set[str] = set()
    if desired.endpoint_config_name and describe_or_none(
        clients.sagemaker.describe_endpoint_config,
        f"endpoint config {desired.endpoint_config_name}",
        EndpointConfigName=desired.endpoint_config_name,
    ):
        configs.add(desired.endpoint_config_name)
    scaling = read_scaling(clients, live_resource_id(desired)) if endpoint is not None else None
    monitor, definitions = _monitor(clients, desired)
    state = LiveState(
        endpoint=endpoint,
        live_instance_type=variant_instance_type(live_config),
        existing_models=models,
        existing_configs=frozenset(configs),
        scaling=scaling,
        alarms=_alarms(clients, [str(a["AlarmName"]) for a in desired.alarms]),
        monitor=monitor,
        existing_job_definitions=definitions,
        latest_record=latest,
    )
    return state, live_config
