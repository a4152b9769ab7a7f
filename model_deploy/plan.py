"""Compare the desired state with the live one and list the actions that close the gap. Pure.

A plan is an ordered list of actions, each with the exact request it will send, so the printed plan
(and the JSON artifact Azure DevOps keeps) is what apply does. Deploying what is already live renders
the same names (`naming.py`) and therefore an empty plan.

Order matters and is decided here, not in apply:
  1. rollback alarms first: UpdateEndpoint's AutoRollbackConfiguration names them, so they must exist;
  2. the model and the endpoint config (immutable, named by content, created only when missing);
  3. autoscaling is deregistered before an update that changes the instance type (SageMaker refuses the
     update otherwise) and registered again after it;
  4. CreateEndpoint, or UpdateEndpoint with the blue/green DeploymentConfig;
  5. scaling, the monitoring schedule, then the deployment record, once the endpoint serves the package.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from mlops.core.errors import DeployError
from model_deploy.desired import SCALABLE_DIMENSION, VARIANT, DesiredState, ScalingSpec
from model_deploy.naming import scaling_resource_id
from model_deploy.records import DeploymentRecord

ActionKind = Literal[
    "put_alarm",
    "create_model",
    "create_endpoint_config",
    "deregister_scaling",
    "create_endpoint",
    "update_endpoint",
    "register_scaling",
    "create_job_definition",
    "create_monitoring_schedule",
    "update_monitoring_schedule",
    "run_transform",
    "write_record",
]
# Endpoint states in which another change is under way: a second one would be refused by SageMaker.
BUSY_STATES = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack", "Deleting"})
# Alarm fields that define its behaviour; anything else (state, ARNs, timestamps) is not compared.
ALARM_FIELDS = (
    "AlarmDescription",
    "Namespace",
    "MetricName",
    "Dimensions",
    "Period",
    "EvaluationPeriods",
    "Threshold",
    "ComparisonOperator",
    "TreatMissingData",
    "Statistic",
    "ExtendedStatistic",
)


@dataclass(frozen=True)
class LiveEndpoint:
    name: str
    status: str
    config_name: str
    failure_reason: str | None = None


@dataclass(frozen=True)
class LiveScaling:
    min_capacity: int
    max_capacity: int
    policy: Mapping[str, Any] | None  # TargetTrackingScalingPolicyConfiguration, None if no policy
    policy_name: str | None = None


@dataclass(frozen=True)
class LiveMonitor:
    job_definition_name: str
    schedule_expression: str
    status: str


@dataclass(frozen=True)
class LiveState:
    endpoint: LiveEndpoint | None = None
    live_instance_type: str | None = None  # of the live config's variant; None if serverless or no endpoint
    existing_models: frozenset[str] = frozenset()
    existing_configs: frozenset[str] = frozenset()
    scaling: LiveScaling | None = None
    alarms: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    monitor: LiveMonitor | None = None
    existing_job_definitions: frozenset[str] = frozenset()
    transform_status: str | None = None
    latest_record: DeploymentRecord | None = None


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    name: str
    reason: str
    request: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        return f"{self.kind:<28} {self.name}  ({self.reason})"


@dataclass(frozen=True)
class DeployPlan:
    stage: str
    endpoint_name: str
    package_arn: str
    inference_type: str
    model_name: str
    endpoint_config_name: str | None
    previous_endpoint_config: str | None
    actions: tuple[Action, ...]
    warnings: tuple[str, ...] = ()
    kind: Literal["deploy", "rollback"] = "deploy"

    @property
    def empty(self) -> bool:
        return not self.actions

    def to_document(self) -> dict[str, Any]:
        document = asdict(self)
        document["empty"] = self.empty
        return document

    def to_json(self) -> str:
        return json.dumps(self.to_document(), indent=2, sort_keys=True, default=str)

    def describe(self) -> str:
        head = (
            f"{self.kind} plan for {self.stage} endpoint {self.endpoint_name}: package {self.package_arn}\n"
            f"  model {self.model_name}, endpoint config {self.endpoint_config_name or '(batch: none)'}, "
            f"live config {self.previous_endpoint_config or '(none)'}"
        )
        if self.empty:
            body = "  nothing to do: this package is live with these settings"
        else:
            body = "\n".join(f"  {i}. {action.describe()}" for i, action in enumerate(self.actions, start=1))
        notes = "".join(f"\n  warning: {w}" for w in self.warnings)
        return f"{head}\n{body}{notes}"


def _alarm_matches(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
    if live is None:
        return False
    return all(desired.get(key) == live.get(key) for key in ALARM_FIELDS)


def _scaling_matches(desired: ScalingSpec, live: LiveScaling | None) -> bool:
    if live is None or live.policy is None:
        return False
    if (live.min_capacity, live.max_capacity) != (desired.min_capacity, desired.max_capacity):
        return False
    return all(live.policy.get(key) == value for key, value in desired.policy.items())


def deregister_action(resource_id: str, reason: str, live: LiveScaling | None) -> Action:
    request: dict[str, Any] = {
        "ServiceNamespace": "sagemaker",
        "ResourceId": resource_id,
        "ScalableDimension": SCALABLE_DIMENSION,
    }
    if live is not None and live.policy is not None and live.policy_name:
        # What apply re-registers if the update that follows fails, so a failed deployment does not
        # also leave the old fleet without autoscaling.
        request["restore"] = _register_request(
            ScalingSpec(resource_id, live.min_capacity, live.max_capacity, live.policy_name, dict(live.policy))
        )
    return Action("deregister_scaling", resource_id, reason, request)


def register_action(spec: ScalingSpec, reason: str) -> Action:
    return Action("register_scaling", spec.resource_id, reason, _register_request(spec))


def _register_request(spec: ScalingSpec) -> dict[str, Any]:
    return {
        "target": {
            "ServiceNamespace": "sagemaker",
            "ResourceId": spec.resource_id,
            "ScalableDimension": SCALABLE_DIMENSION,
            "MinCapacity": spec.min_capacity,
            "MaxCapacity": spec.max_capacity,
        },
        "policy": {
            "PolicyName": spec.policy_name,
            "ServiceNamespace": "sagemaker",
            "ResourceId": spec.resource_id,
            "ScalableDimension": SCALABLE_DIMENSION,
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": spec.policy,
        },
    }


def check_endpoint_usable(endpoint: LiveEndpoint | None) -> None:
    if endpoint is None or endpoint.status in ("InService", "OutOfService"):
        return
    if endpoint.status in BUSY_STATES:
        raise DeployError(
            f"endpoint {endpoint.name} is {endpoint.status}; expected InService before another deployment",
            hint="wait for the running change to finish (aws sagemaker describe-endpoint), then deploy again",
        )
    raise DeployError(
        f"endpoint {endpoint.name} is {endpoint.status}"
        + (f" ({endpoint.failure_reason})" if endpoint.failure_reason else "")
        + "; expected InService: SageMaker cannot update an endpoint in this state",
        hint=f"inspect it, delete it (aws sagemaker delete-endpoint --endpoint-name {endpoint.name}) and deploy again",
    )


def _record_action(desired: DesiredState, package: Mapping[str, Any], live: LiveState) -> Action | None:
    latest = live.latest_record
    if latest is not None and (latest.endpoint_config, latest.model_name) == (
        desired.endpoint_config_name,
        desired.model_name,
    ):
        return None
    reason = "no deployment record yet" if latest is None else f"the last record is {latest.package_arn}"
    request = {
        "stage": desired.stage,
        "endpoint_name": desired.endpoint_name,
        "inference_type": desired.inference_type,
        "endpoint_config": desired.endpoint_config_name,
        "model_name": desired.model_name,
        "previous_endpoint_config": live.endpoint.config_name if live.endpoint else None,
        **package,
    }
    return Action("write_record", desired.endpoint_name, reason, request)


def plan_deployment(desired: DesiredState, live: LiveState, *, package: Mapping[str, Any]) -> DeployPlan:
    """`package` holds the record fields of the package: package_arn, package_version, git_commit, build_id."""
    actions: list[Action] = []
    if desired.inference_type == "batch":
        actions.extend(_plan_batch(desired, live))
    else:
        actions.extend(_plan_endpoint(desired, live))
    record = _record_action(desired, package, live)
    if record is not None:
        actions.append(record)
    return DeployPlan(
        stage=desired.stage,
        endpoint_name=desired.endpoint_name,
        package_arn=str(package["package_arn"]),
        inference_type=desired.inference_type,
        model_name=desired.model_name,
        endpoint_config_name=desired.endpoint_config_name,
        previous_endpoint_config=live.endpoint.config_name if live.endpoint else None,
        actions=tuple(actions),
        warnings=desired.warnings,
    )


def _plan_batch(desired: DesiredState, live: LiveState) -> list[Action]:
    actions: list[Action] = []
    if desired.model_name not in live.existing_models:
        actions.append(
            Action("create_model", desired.model_name, "the package's model is not in this account", desired.model)
        )
    transform = desired.transform
    if transform is not None and live.transform_status != "Completed":
        reason = (
            "score the sample with the new model"
            if live.transform_status is None
            else (f"the last sample transform ended {live.transform_status}")
        )
        request = dict(transform.request)
        if live.transform_status is not None:
            # Transform job names are unique forever: a retry needs a new one.
            request["TransformJobName"] = f"{transform.job_name[:56]}-retry"
        actions.append(Action("run_transform", str(request["TransformJobName"]), reason, request))
    return actions


def _plan_endpoint(desired: DesiredState, live: LiveState) -> list[Action]:
    if desired.endpoint_config_name is None or desired.endpoint_config is None:
        raise DeployError(f"{desired.inference_type} deployments need an endpoint config; none was rendered")
    check_endpoint_usable(live.endpoint)
    actions: list[Action] = []
    for alarm in desired.alarms:
        name = str(alarm["AlarmName"])
        if not _alarm_matches(alarm, live.alarms.get(name)):
            reason = "missing" if name not in live.alarms else "its definition differs"
            actions.append(Action("put_alarm", name, f"rollback alarm {reason}", dict(alarm)))
    if desired.model_name not in live.existing_models:
        actions.append(
            Action("create_model", desired.model_name, "the package's model is not in this account", desired.model)
        )
    if desired.endpoint_config_name not in live.existing_configs:
        actions.append(
            Action(
                "create_endpoint_config",
                desired.endpoint_config_name,
                "new package or settings",
                desired.endpoint_config,
            )
        )
    endpoint = live.endpoint
    changes_endpoint = endpoint is None or endpoint.config_name != desired.endpoint_config_name
    instance_type_changes = endpoint is not None and live.live_instance_type != desired.instance_type
    scaling_registered = live.scaling is not None
    deregistered = False
    if changes_endpoint and endpoint is not None and scaling_registered and instance_type_changes:
        actions.append(
            deregister_action(
                live_resource_id(desired),
                f"SageMaker refuses to change the instance type ({live.live_instance_type} -> "
                f"{desired.instance_type}) of a variant under autoscaling",
                live.scaling,
            )
        )
        deregistered = True
    if endpoint is None:
        actions.append(
            Action(
                "create_endpoint",
                desired.endpoint_name,
                "no endpoint yet",
                {
                    "EndpointName": desired.endpoint_name,
                    "EndpointConfigName": desired.endpoint_config_name,
                    "Tags": desired.endpoint_config.get("Tags", []),
                },
            )
        )
    elif changes_endpoint:
        actions.append(
            Action(
                "update_endpoint",
                desired.endpoint_name,
                f"live config {endpoint.config_name} -> {desired.endpoint_config_name} (blue/green)",
                {
                    "EndpointName": desired.endpoint_name,
                    "EndpointConfigName": desired.endpoint_config_name,
                    # Keep the instance count autoscaling chose, unless scaling was just removed for a
                    # new instance type: then the new config's count is the right start.
                    "RetainAllVariantProperties": scaling_registered and not deregistered,
                    "DeploymentConfig": desired.deployment_config,
                },
            )
        )
    actions.extend(_plan_scaling(desired, live, deregistered))
    actions.extend(_plan_monitor(desired, live))
    return actions


def live_resource_id(desired: DesiredState) -> str:
    return scaling_resource_id(desired.endpoint_name, VARIANT)


def _plan_scaling(desired: DesiredState, live: LiveState, deregistered: bool) -> list[Action]:
    spec = desired.scaling
    if spec is None:
        if live.scaling is not None and not deregistered:
            return [deregister_action(live_resource_id(desired), "autoscaling is not configured", None)]
        return []
    if deregistered or live.endpoint is None:
        return [register_action(spec, "scale the endpoint between the configured bounds")]
    if not _scaling_matches(spec, live.scaling):
        reason = "not registered" if live.scaling is None else "bounds or target differ"
        return [register_action(spec, f"autoscaling {reason}")]
    return []


def _plan_monitor(desired: DesiredState, live: LiveState) -> list[Action]:
    spec = desired.monitor
    if spec is None:
        return []
    actions: list[Action] = []
    if spec.job_definition_name not in live.existing_job_definitions:
        actions.append(
            Action("create_job_definition", spec.job_definition_name, "data-quality job", spec.job_definition)
        )
    expression = spec.schedule["MonitoringScheduleConfig"]["ScheduleConfig"]["ScheduleExpression"]
    if live.monitor is None:
        actions.append(Action("create_monitoring_schedule", spec.schedule_name, "no schedule yet", spec.schedule))
    elif (live.monitor.job_definition_name, live.monitor.schedule_expression) != (spec.job_definition_name, expression):
        actions.append(
            Action(
                "update_monitoring_schedule",
                spec.schedule_name,
                f"job definition or schedule differs (live {live.monitor.job_definition_name})",
                spec.schedule,
            )
        )
    return actions
