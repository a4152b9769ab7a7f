"""Carry out a plan, wait with a bound, prove the endpoint serves the package, and write the record.

A failure never leaves prod worse than it was found: UpdateEndpoint's blue/green policy keeps the old
fleet serving until the new one has baked, and its alarms make SageMaker roll back by itself; apply
only has to notice (the endpoint is InService again on the *previous* config) and say so. Where apply
itself changed something on the way (autoscaling taken off for an instance-type change, or a config
that turned out to serve the wrong model), it puts it back before raising.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import botocore.exceptions

from mlops.core.aws import error_message
from mlops.core.errors import DeployError, DeploymentFailed
from model_deploy.clients import StageClients
from model_deploy.plan import Action, DeployPlan
from model_deploy.record_store import append_record
from model_deploy.records import DeploymentRecord

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient

TRANSITIONAL = frozenset({"Creating", "Updating", "SystemUpdating", "RollingBack"})
FAILED = frozenset({"Failed", "UpdateRollbackFailed", "OutOfService", "Deleting"})


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Expected:
    """What the endpoint must serve once the plan is applied."""

    endpoint_config: str | None
    model_name: str
    container: dict[str, Any] | None = None  # Image/ModelDataUrl of the package; None: the model name suffices


def confirm_serving(sm: SageMakerClient, name: str, expected: Expected) -> None:
    """The live endpoint's config -> variant -> model is the one the plan put there, holding the package."""
    described = sm.describe_endpoint(EndpointName=name)
    config_name = described["EndpointConfigName"]
    if described["EndpointStatus"] != "InService" or config_name != expected.endpoint_config:
        raise DeploymentFailed(
            f"endpoint {name} is {described['EndpointStatus']} on {config_name}; expected InService on "
            f"{expected.endpoint_config}"
        )
    variants = sm.describe_endpoint_config(EndpointConfigName=config_name)["ProductionVariants"]
    models = sorted({str(v["ModelName"]) for v in variants})
    if models != [expected.model_name]:
        raise DeploymentFailed(
            f"endpoint config {config_name} serves model(s) {models}; expected only {expected.model_name}"
        )
    if expected.container is not None:
        container = sm.describe_model(ModelName=expected.model_name).get("PrimaryContainer", {})
        for key in ("Image", "ModelDataUrl"):
            if container.get(key) != expected.container.get(key):
                raise DeploymentFailed(
                    f"model {expected.model_name} has {key} {container.get(key)!r}; expected the package's "
                    f"{expected.container.get(key)!r}",
                    hint="the model of that name was changed outside mlops; delete it and deploy again",
                )


@dataclass
class ApplyResult:
    applied: list[str] = field(default_factory=list)
    record_version: int | None = None
    seconds: float = 0.0


@dataclass
class Applier:
    clients: StageClients
    record_parameter: str
    timeout_seconds: float
    poll_seconds: float
    sleep: Callable[[float], None] = time.sleep
    # Polls back off from this to poll_seconds: a quick transition (a small endpoint, the twin) is seen at once,
    # a long one costs few calls.
    first_poll_seconds: float = 0.25
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], datetime] = utc_now
    progress: Callable[[str], None] = lambda _message: None

    def apply(self, plan: DeployPlan, expected: Expected) -> ApplyResult:
        started = self.clock()
        result = ApplyResult()
        undo: list[Callable[[], None]] = []
        for action in plan.actions:
            self.progress(f"{plan.stage}: {action.kind} {action.name}")
            try:
                self._run(action, plan, expected, undo)
            except DeployError as exc:
                self._undo(undo, exc)
                raise
            except botocore.exceptions.ClientError as exc:
                failure = DeploymentFailed(
                    f"{action.kind} {action.name} failed: {error_message(exc)}; "
                    f"the endpoint stays on {plan.previous_endpoint_config or 'nothing (it was being created)'}",
                    hint="fix the cause (permissions, quotas, the request in the plan artifact) and deploy again; "
                    "resources already created are reused",
                )
                self._undo(undo, failure)
                raise failure from exc
            result.applied.append(action.kind)
            if action.kind == "write_record":
                result.record_version = self._write_record(action, plan)
        result.seconds = self.clock() - started
        return result

    # ------------------------------------------------------------------------------------- actions

    def _run(self, action: Action, plan: DeployPlan, expected: Expected, undo: list[Callable[[], None]]) -> None:
        sm = self.clients.sagemaker
        request = action.request
        kind = action.kind
        if kind == "put_alarm":
            self.clients.cloudwatch.put_metric_alarm(**request)
        elif kind == "create_model":
            sm.create_model(**request)
        elif kind == "create_endpoint_config":
            sm.create_endpoint_config(**request)
        elif kind == "deregister_scaling":
            scaling = {k: v for k, v in request.items() if k != "restore"}
            self.clients.autoscaling.deregister_scalable_target(**scaling)
            if "restore" in request:
                undo.append(lambda: self._register(request["restore"]))
        elif kind == "register_scaling":
            self._register(request)
        elif kind == "create_endpoint":
            sm.create_endpoint(**request)
            self.wait_for_endpoint(plan.endpoint_name, expected_config=str(expected.endpoint_config), previous=None)
            confirm_serving(self.clients.sagemaker, plan.endpoint_name, expected)
        elif kind == "update_endpoint":
            sm.update_endpoint(**request)
            self.wait_for_endpoint(
                plan.endpoint_name,
                expected_config=str(expected.endpoint_config),
                previous=plan.previous_endpoint_config,
            )
            try:
                confirm_serving(self.clients.sagemaker, plan.endpoint_name, expected)
            except DeploymentFailed as mismatch:
                self._restore(plan, request, mismatch)
                raise
        elif kind == "create_job_definition":
            sm.create_data_quality_job_definition(**request)
        elif kind == "create_monitoring_schedule":
            sm.create_monitoring_schedule(**request)
        elif kind == "update_monitoring_schedule":
            sm.update_monitoring_schedule(**request)
        elif kind == "run_transform":
            sm.create_transform_job(**request)
            self.wait_for_transform(str(request["TransformJobName"]))
        elif kind == "write_record":
            pass  # written by apply() after every other action succeeded
        else:  # pragma: no cover - ActionKind is closed; a new kind must be handled here
            raise DeployError(f"unknown action kind {kind!r} in the plan; expected one of the kinds in plan.py")

    def _register(self, request: dict[str, Any]) -> None:
        self.clients.autoscaling.register_scalable_target(**request["target"])
        self.clients.autoscaling.put_scaling_policy(**request["policy"])

    def _write_record(self, action: Action, plan: DeployPlan) -> int:
        fields = dict(action.request)
        record = DeploymentRecord(
            kind=plan.kind,
            stage=str(fields["stage"]),
            endpoint_name=str(fields["endpoint_name"]),
            inference_type=str(fields["inference_type"]),
            endpoint_config=fields.get("endpoint_config"),
            model_name=str(fields["model_name"]),
            package_arn=str(fields["package_arn"]),
            package_version=int(fields["package_version"]),
            git_commit=str(fields["git_commit"]),
            build_id=str(fields["build_id"]),
            deployed_at=self.now().isoformat(timespec="seconds"),
            previous_endpoint_config=fields.get("previous_endpoint_config"),
        )
        return append_record(self.clients.ssm, self.record_parameter, record)

    # ---------------------------------------------------------------------------- waiting, checking

    def wait_for_endpoint(self, name: str, *, expected_config: str, previous: str | None) -> dict[str, Any]:
        """Poll until InService on `expected_config`; raise on failure, rollback or timeout."""
        deadline = self.clock() + self.timeout_seconds
        interval = min(self.first_poll_seconds, self.poll_seconds)
        last_status = None
        moved = False  # seen the endpoint leave InService since the call: an InService on `previous` is final
        while True:
            described: dict[str, Any] = dict(self.clients.sagemaker.describe_endpoint(EndpointName=name))
            status = str(described["EndpointStatus"])
            config = str(described.get("EndpointConfigName", ""))
            reason = described.get("FailureReason")
            if status != last_status:
                self.progress(f"endpoint {name}: {status} ({config})")
                last_status = status
            moved = moved or status != "InService"
            if status == "InService" and config == expected_config:
                return described
            if status == "InService" and (moved or reason):
                raise DeploymentFailed(
                    f"endpoint {name} was rolled back: expected it to serve {expected_config}, found it InService on "
                    f"{config}" + (f"; SageMaker says: {reason}" if reason else ""),
                    hint="a rollback alarm fired or the new fleet failed to start; the previous model keeps serving. "
                    "Check the alarms and the endpoint's CloudWatch logs before deploying again",
                )
            if status in FAILED:
                raise DeploymentFailed(
                    f"endpoint {name} is {status}; expected InService on {expected_config}"
                    + (f": {reason}" if reason else ""),
                    hint="see the endpoint's CloudWatch logs (/aws/sagemaker/Endpoints/"
                    + name
                    + ")"
                    + (f"; the previous config was {previous}" if previous else ""),
                )
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise DeploymentFailed(
                    f"endpoint {name} is still {status} after {self.timeout_seconds:.0f}s; expected InService on "
                    f"{expected_config}",
                    hint="SageMaker continues the deployment and rolls it back on alarm by itself; follow it with "
                    f"`aws sagemaker describe-endpoint --endpoint-name {name}`, or raise wait_timeout_seconds",
                )
            self.sleep(min(interval, remaining))
            interval = min(interval * 2, self.poll_seconds)

    def wait_for_transform(self, job_name: str) -> None:
        deadline = self.clock() + self.timeout_seconds
        interval = min(self.first_poll_seconds, self.poll_seconds)
        while True:
            described = self.clients.sagemaker.describe_transform_job(TransformJobName=job_name)
            status = str(described["TransformJobStatus"])
            if status == "Completed":
                return
            if status in ("Failed", "Stopped"):
                raise DeploymentFailed(
                    f"sample transform {job_name} ended {status}: {described.get('FailureReason', 'no reason given')}; "
                    "expected Completed",
                    hint="see the job's CloudWatch logs (/aws/sagemaker/TransformJobs); the batch record still points "
                    "at the previous model",
                )
            remaining = deadline - self.clock()
            if remaining <= 0:
                raise DeploymentFailed(
                    f"sample transform {job_name} is still {status} after {self.timeout_seconds:.0f}s",
                    hint="it keeps running; deploy again once it completed (the plan then only writes the record)",
                )
            self.sleep(min(interval, remaining))
            interval = min(interval * 2, self.poll_seconds)

    # ------------------------------------------------------------------------------------ recovery

    def _restore(self, plan: DeployPlan, update: dict[str, Any], cause: DeploymentFailed) -> None:
        previous = plan.previous_endpoint_config
        if previous is None:
            return
        self.progress(f"endpoint {plan.endpoint_name}: restoring {previous}")
        try:
            self.clients.sagemaker.update_endpoint(**{**update, "EndpointConfigName": previous})
            self.wait_for_endpoint(plan.endpoint_name, expected_config=previous, previous=None)
        except (DeployError, botocore.exceptions.ClientError) as exc:
            raise DeploymentFailed(
                f"{cause.message}; restoring the previous config {previous} failed too: {exc}",
                hint=f"restore by hand: aws sagemaker update-endpoint --endpoint-name {plan.endpoint_name} "
                f"--endpoint-config-name {previous}",
            ) from exc

    def _undo(self, undo: list[Callable[[], None]], cause: DeployError) -> None:
        for step in reversed(undo):
            try:
                step()
            except botocore.exceptions.ClientError as exc:
                raise DeploymentFailed(
                    f"{cause.message}; putting autoscaling back failed too: {error_message(exc)}",
                    hint="register the variant's scalable target and policy again (see the plan artifact's "
                    "deregister_scaling.restore)",
                ) from exc
