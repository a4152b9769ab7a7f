"""Plan a rollback to the previous deployment record. Pure.

A rollback is a deployment of the previous record's endpoint config, which still exists (configs are
never deleted by mlops), through the same blue/green policy and alarms as any other update, followed
by a `rollback` record. It refuses when the endpoint does not run what the last record says: then the
history no longer describes the endpoint and going "back" from it would be a guess.
"""

from __future__ import annotations

from typing import Any

from mlops.core.errors import DeployError, RollbackUnavailable
from model_deploy.desired import ScalingSpec
from model_deploy.plan import (
    Action,
    DeployPlan,
    LiveEndpoint,
    LiveScaling,
    check_endpoint_usable,
    deregister_action,
    register_action,
)
from model_deploy.records import DeploymentRecord


def _record_request(target: DeploymentRecord, previous: str | None) -> dict[str, Any]:
    return {
        "stage": target.stage,
        "endpoint_name": target.endpoint_name,
        "inference_type": target.inference_type,
        "endpoint_config": target.endpoint_config,
        "model_name": target.model_name,
        "previous_endpoint_config": previous,
        "package_arn": target.package_arn,
        "package_version": target.package_version,
        "git_commit": target.git_commit,
        "build_id": target.build_id,
    }


def plan_rollback(
    *,
    current: DeploymentRecord,
    target: DeploymentRecord,
    endpoint: LiveEndpoint | None,
    target_config_exists: bool,
    live_instance_type: str | None,
    target_instance_type: str | None,
    live_scaling: LiveScaling | None,
    scaling: ScalingSpec | None,
    deployment_config: dict[str, Any] | None,
    scaling_resource_id: str,
) -> DeployPlan:
    reason = f"roll back {current.package_arn} -> {target.package_arn}"
    actions: list[Action] = []
    if target.endpoint_config is not None:
        if endpoint is None:
            raise RollbackUnavailable(
                f"endpoint {current.endpoint_name} does not exist; expected it to serve {current.endpoint_config}",
                hint="deploy a package with `mlops deploy` instead",
            )
        check_endpoint_usable(endpoint)
        if endpoint.config_name != current.endpoint_config:
            raise DeployError(
                f"endpoint {endpoint.name} runs {endpoint.config_name}; expected {current.endpoint_config}, the last "
                "deployment record: it was changed outside mlops, so the record history no longer describes it",
                hint="deploy the package you want with `mlops deploy --model-package-arn ARN`",
            )
        if not target_config_exists:
            raise RollbackUnavailable(
                f"endpoint config {target.endpoint_config} of the previous deployment no longer exists",
                hint=f"deploy {target.package_arn} again with `mlops deploy` (it recreates the config)",
            )
        deregistered = live_scaling is not None and live_instance_type != target_instance_type
        if deregistered:
            actions.append(
                deregister_action(scaling_resource_id, "instance type changes under autoscaling", live_scaling)
            )
        actions.append(
            Action(
                "update_endpoint",
                endpoint.name,
                reason,
                {
                    "EndpointName": endpoint.name,
                    "EndpointConfigName": target.endpoint_config,
                    "RetainAllVariantProperties": live_scaling is not None and not deregistered,
                    **({"DeploymentConfig": deployment_config} if deployment_config else {}),
                },
            )
        )
        if deregistered and scaling is not None:
            actions.append(register_action(scaling, "autoscaling back on the restored fleet"))
    actions.append(
        Action("write_record", current.endpoint_name, reason, _record_request(target, current.endpoint_config))
    )
    return DeployPlan(
        stage=target.stage,
        endpoint_name=current.endpoint_name,
        package_arn=target.package_arn,
        inference_type=target.inference_type,
        model_name=target.model_name,
        endpoint_config_name=target.endpoint_config,
        previous_endpoint_config=current.endpoint_config,
        actions=tuple(actions),
        kind="rollback",
    )
