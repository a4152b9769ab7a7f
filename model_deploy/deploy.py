"""`mlops deploy` and `mlops deploy rollback`: verify, plan, then (unless a dry run) apply.

Sessions are the caller's business: the automation account's clients (registry, staging passes) come
from the environment, the stage's clients from sts:AssumeRole into its deploy role (`commands.py`).
Here everything is passed in, so the whole sequence runs against moto or Stubber in tests.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import botocore.exceptions

from mlops.core.aws import error_message
from mlops.core.config import Config
from mlops.core.errors import AwsError, PackageRefused
from model_deploy import record_store
from model_deploy.apply import Applier, ApplyResult, Expected, utc_now
from model_deploy.clients import AutomationClients, StageClients, is_missing
from model_deploy.desired import VARIANT, DesiredState, Target, render_deployment_config, render_desired, render_scaling
from model_deploy.lifecycle import record_stage, stage_lifecycle
from model_deploy.live import describe_or_none, read_endpoint, read_live_state, read_scaling, variant_instance_type
from model_deploy.monitor_image import monitor_image_uri
from model_deploy.naming import scaling_resource_id
from model_deploy.package import PackageArn, PackageInfo, StagingPass, check_arn_location, verify
from model_deploy.plan import DeployPlan, plan_deployment
from model_deploy.records import DeploymentRecord, deployment_stack, rollback_target
from model_deploy.rollback import plan_rollback


@dataclass(frozen=True)
class Runtime:
    """The injected clock, sleep and progress reporter of one command."""

    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = utc_now
    progress: Callable[[str], None] = lambda _message: None


@dataclass(frozen=True)
class DeployOutcome:
    plan: DeployPlan
    applied: ApplyResult | None  # None for a dry run or an empty plan


def stage_target(config: Config, stage: str) -> Target:
    settings = config.deploy.stage(stage)
    account = getattr(config.accounts, settings.account)
    return Target(stage=stage, account_id=account.id, region=config.region)


def stage_role_arn(config: Config, stage: str) -> str:
    settings = config.deploy.stage(stage)
    account = getattr(config.accounts, settings.account)
    return str(account.role_arn(settings.role_name))


def deployment_parameter(config: Config, stage: str) -> str:
    endpoint = config.deploy.stage(stage).endpoint_name
    return record_store.deployment_parameter(config.deploy.record_parameter_prefix, config.project.name, endpoint)


def staging_pass_parameter(config: Config, package: PackageArn) -> str:
    return record_store.staging_pass_parameter(
        config.deploy.record_parameter_prefix, config.project.name, package.group, package.version
    )


def describe_package(automation: AutomationClients, arn: PackageArn) -> PackageInfo | None:
    try:
        described = automation.sagemaker.describe_model_package(ModelPackageName=arn.arn)
    except botocore.exceptions.ClientError as exc:
        if is_missing(exc):
            return None
        raise AwsError(
            f"could not read model package {arn.arn} from the registry: {error_message(exc)}",
            hint="check the automation account credentials may sagemaker:DescribeModelPackage",
        ) from exc
    return PackageInfo.from_description(dict(described))


def verify_package(config: Config, automation: AutomationClients, stage: str, arn_text: str) -> PackageInfo:
    """Re-read the registry (never trust the caller); raises PackageRefused before anything is created."""
    arn = PackageArn.parse(arn_text)
    check_arn_location(arn, automation_account=config.accounts.automation.id, region=config.region)
    package = describe_package(automation, arn)
    passed: StagingPass | None = None
    if stage == "prod" and package is not None:
        passed = record_store.read_staging_pass(automation.ssm, staging_pass_parameter(config, arn))
    return verify(arn, package, stage=stage, expected_group=config.build.model_package_group, staging_pass=passed)


def record_fields(package: PackageInfo) -> dict[str, Any]:
    return {
        "package_arn": package.arn,
        "package_version": package.version,
        "git_commit": package.git_commit,
        "build_id": package.build_id,
    }


def render_for(config: Config, stage: str, package: PackageInfo) -> DesiredState:
    settings = config.deploy.stage(stage)
    image = None
    if settings.monitor.enabled and settings.monitor.image_uri is None:
        image = monitor_image_uri(config.region)
    return render_desired(settings, stage_target(config, stage), package, monitor_image_uri=image)


def plan_for(
    config: Config, stage: str, package: PackageInfo, clients: StageClients
) -> tuple[DeployPlan, DesiredState]:
    desired = render_for(config, stage, package)
    history = record_store.read_history(clients.ssm, deployment_parameter(config, stage))
    live, _ = read_live_state(clients, desired, history)
    return plan_deployment(desired, live, package=record_fields(package)), desired


def write_plan(plan: DeployPlan, path: Path | None, *, dry_run: bool) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {**plan.to_document(), "dry_run": dry_run}
    path.write_text(json.dumps(document, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")


def _applier(config: Config, stage: str, clients: StageClients, runtime: Runtime) -> Applier:
    settings = config.deploy.stage(stage)
    return Applier(
        clients=clients,
        record_parameter=deployment_parameter(config, stage),
        timeout_seconds=settings.wait_timeout_seconds,
        poll_seconds=settings.poll_seconds,
        sleep=runtime.sleep,
        clock=runtime.clock,
        now=runtime.now,
        progress=runtime.progress,
    )


def deploy(
    config: Config,
    stage: str,
    package_arn: str,
    *,
    automation: AutomationClients,
    stage_clients: StageClients,
    dry_run: bool = False,
    plan_out: Path | None = None,
    runtime: Runtime | None = None,
) -> DeployOutcome:
    runtime = runtime or Runtime()
    package = verify_package(config, automation, stage, package_arn)
    runtime.progress(f"verified {package.arn}: Approved, group {package.group}, commit {package.git_commit}")
    plan, desired = plan_for(config, stage, package, stage_clients)
    write_plan(plan, plan_out, dry_run=dry_run)
    if dry_run:
        return DeployOutcome(plan, None)
    applied = None
    if not plan.empty:
        container = desired.model["PrimaryContainer"]
        expected = Expected(desired.endpoint_config_name, desired.model_name, container)
        applied = _applier(config, stage, stage_clients, runtime).apply(plan, expected)
    _record_stage(config, stage, automation, package.arn, runtime)
    return DeployOutcome(plan, applied)


def _record_stage(
    config: Config, stage: str, automation: AutomationClients, package_arn: str, runtime: Runtime
) -> None:
    target = stage_target(config, stage)
    when = runtime.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    lifecycle = stage_lifecycle(stage, config.deploy.stage(stage).endpoint_name, target.account_id, when)
    record_stage(automation, package_arn, lifecycle, runtime.progress)


def verify_rollback_target(
    config: Config,
    automation: AutomationClients,
    stage: str,
    target: DeploymentRecord,
    older: list[DeploymentRecord],
) -> PackageInfo:
    """The rollback target passes the same checks as a deploy (approved, our group and account; for prod, a
    staging pass), read again now: it may have been rejected since it was deployed. A refusal names the
    newest earlier deployment that would pass, so the operator has a concrete next step."""
    try:
        return verify_package(config, automation, stage, target.package_arn)
    except PackageRefused as refused:
        alternative = None
        for candidate in reversed(older):  # newest first
            try:
                alternative = verify_package(config, automation, stage, candidate.package_arn)
            except PackageRefused:
                continue
            break
        if alternative is not None:
            hint = (
                f"the newest earlier deployment that passes is version {alternative.version}: "
                f"mlops deploy --stage {stage} --model-package-arn {alternative.arn}"
            )
        else:
            hint = (
                "no earlier deployment of this endpoint passes the checks; deploy an approved package: "
                "`mlops registry list` shows them (prod also needs its staging pass)"
            )
        raise PackageRefused(
            f"refusing to roll {stage} back to {target.package_arn} (version {target.package_version}): "
            f"{refused.message}",
            hint=hint,
        ) from refused


def rollback(
    config: Config,
    stage: str,
    *,
    automation: AutomationClients,
    stage_clients: StageClients,
    dry_run: bool = False,
    plan_out: Path | None = None,
    runtime: Runtime | None = None,
) -> DeployOutcome:
    runtime = runtime or Runtime()
    settings = config.deploy.stage(stage)
    history = record_store.read_history(stage_clients.ssm, deployment_parameter(config, stage))
    current, target = rollback_target(history, endpoint_name=settings.endpoint_name)
    package = verify_rollback_target(config, automation, stage, target, deployment_stack(history)[:-2])
    runtime.progress(f"verified rollback target {package.arn}: Approved, group {package.group}")
    endpoint, live_config = (None, None)
    target_config: dict[str, Any] | None = None
    live_scaling = None
    resource_id = scaling_resource_id(settings.endpoint_name, VARIANT)
    if target.endpoint_config is not None:
        endpoint, live_config = read_endpoint(stage_clients, settings.endpoint_name)
        target_config = describe_or_none(
            stage_clients.sagemaker.describe_endpoint_config,
            f"endpoint config {target.endpoint_config}",
            EndpointConfigName=target.endpoint_config,
        )
        live_scaling = read_scaling(stage_clients, resource_id) if endpoint is not None else None
    plan = plan_rollback(
        current=current,
        target=target,
        endpoint=endpoint,
        target_config_exists=target_config is not None,
        live_instance_type=variant_instance_type(live_config),
        target_instance_type=variant_instance_type(target_config),
        live_scaling=live_scaling,
        scaling=render_scaling(settings),
        deployment_config=render_deployment_config(settings) if target.endpoint_config else None,
        scaling_resource_id=resource_id,
    )
    write_plan(plan, plan_out, dry_run=dry_run)
    if dry_run:
        return DeployOutcome(plan, None)
    expected = Expected(target.endpoint_config, target.model_name, None)
    applied = _applier(config, stage, stage_clients, runtime).apply(plan, expected)
    _record_stage(config, stage, automation, package.arn, runtime)
    return DeployOutcome(plan, applied)
