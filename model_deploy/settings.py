"""Per-stage deployment settings: the `deploy:` section of mlops.yaml. Pure: pydantic only.

Each stage (staging, prod) names the account it deploys into by its key in `accounts:` (never an id:
ids live in one place), the inference type and its sizing, autoscaling, data capture, the blue/green
canary with the CloudWatch alarms that roll it back, the model-monitor schedule and the checks that
`mlops test` applies. Combinations SageMaker rejects (data capture on a serverless endpoint, a monitor
without captured data) fail here, at load, rather than halfway through a deployment.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

EndpointName = Annotated[
    str,
    Field(
        pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,47}$",
        description="an endpoint name: letters, digits and single hyphens, at most 48 characters "
        "(model and config names add a version and a hash to it)",
    ),
]
DeployInstanceType = Annotated[
    str,
    Field(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$", description="a SageMaker instance type such as 'ml.m5.large'"),
]
RoleName = Annotated[
    str,
    Field(pattern=r"^[\w+=,.@-]{1,64}$", description="an IAM role name (not an ARN), e.g. 'mlops-sagemaker-execution'"),
]
BucketTemplate = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9{][a-z0-9.{}_-]{1,80}[a-z0-9}]$",
        description="an S3 bucket name in the stage's account; '{account_id}' and '{region}' are replaced, "
        "e.g. 'mlops-deploy-{account_id}-{region}'",
    ),
]
AlarmMetric = Literal[
    "Invocation5XXErrors", "Invocation4XXErrors", "ModelLatency", "OverheadLatency", "Invocations", "ModelSetupTime"
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerlessSettings(_Strict):
    memory_size_mb: Literal[1024, 2048, 3072, 4096, 5120, 6144] = Field(
        2048, description="one of 1024, 2048, 3072, 4096, 5120, 6144 (MB)"
    )
    max_concurrency: int = Field(5, ge=1, le=200, description="concurrent invocations between 1 and 200")
    provisioned_concurrency: int | None = Field(
        None, ge=1, le=200, description="pre-warmed concurrency between 1 and max_concurrency, or null"
    )

    @model_validator(mode="after")
    def _provisioned_within_max(self) -> ServerlessSettings:
        if self.provisioned_concurrency is not None and self.provisioned_concurrency > self.max_concurrency:
            raise ValueError(
                f"provisioned_concurrency {self.provisioned_concurrency} exceeds max_concurrency "
                f"{self.max_concurrency}; lower it or raise max_concurrency"
            )
        return self


class AsyncSettings(_Strict):
    output_prefix: str = Field(
        "async-output", pattern=r"^[a-zA-Z0-9!_.*'()/-]{1,200}$", description="an S3 key prefix in the stage bucket"
    )
    max_concurrent_invocations_per_instance: int = Field(
        4, ge=1, le=1000, description="queued requests an instance takes at once, between 1 and 1000"
    )


class BatchSettings(_Strict):
    sample_input_s3_uri: str | None = Field(
        None,
        pattern=r"^s3://[a-z0-9.{}_-]+/.+$",
        description="an s3:// URI (prefix or object) of raw CSV rows without header or label, scored after each "
        "deployment; '{account_id}' and '{region}' are replaced",
    )
    output_prefix: str = Field(
        "batch-output", pattern=r"^[a-zA-Z0-9!_.*'()/-]{1,200}$", description="an S3 key prefix in the stage bucket"
    )
    max_payload_mb: int = Field(6, ge=1, le=100, description="the largest request body in MB, between 1 and 100")


InferenceType = Literal["realtime", "serverless", "async", "batch"]


class Inference(_Strict):
    type: InferenceType = Field(..., description="one of realtime, serverless, async, batch")
    instance_type: DeployInstanceType = "ml.m5.large"
    instance_count: int = Field(1, ge=1, le=20, description="an instance count between 1 and 20")
    serverless: ServerlessSettings = ServerlessSettings()
    asynchronous: AsyncSettings = AsyncSettings()
    batch: BatchSettings = BatchSettings()


class Autoscaling(_Strict):
    min_instances: int = Field(1, ge=1, le=100, description="the fewest instances, between 1 and 100")
    max_instances: int = Field(2, ge=1, le=100, description="the most instances, between 1 and 100")
    target_invocations_per_instance: float = Field(
        ..., gt=0, description="the SageMakerVariantInvocationsPerInstance target (per minute), above 0"
    )
    scale_in_cooldown_seconds: int = Field(300, ge=0, le=3600, description="seconds between 0 and 3600")
    scale_out_cooldown_seconds: int = Field(60, ge=0, le=3600, description="seconds between 0 and 3600")

    @model_validator(mode="after")
    def _ordered(self) -> Autoscaling:
        if self.min_instances > self.max_instances:
            raise ValueError(
                f"min_instances {self.min_instances} exceeds max_instances {self.max_instances}; swap or fix them"
            )
        return self


class DataCapture(_Strict):
    percentage: int = Field(
        0, ge=0, le=100, description="the share of requests captured to S3, 0 (off) to 100; model monitor needs it"
    )
    prefix: str = Field(
        "data-capture", pattern=r"^[a-zA-Z0-9!_.*'()/-]{1,200}$", description="an S3 key prefix in the stage bucket"
    )


class BlueGreen(_Strict):
    traffic: Literal["canary", "all_at_once"] = Field("canary", description="one of canary, all_at_once")
    canary_percent: int = Field(
        10, ge=1, le=50, description="the share of capacity that takes traffic first, between 1 and 50 (percent)"
    )
    canary_wait_seconds: int = Field(
        300, ge=0, le=3600, description="seconds the canary is watched before all traffic shifts, 0 to 3600"
    )
    bake_seconds: int = Field(
        600, ge=0, le=3600, description="seconds the old fleet is kept after the shift (TerminationWait), 0 to 3600"
    )
    max_execution_seconds: int = Field(
        3600, ge=600, le=28800, description="the deployment's own time limit, 600 to 28800 seconds"
    )

    @model_validator(mode="after")
    def _room_for_the_waits(self) -> BlueGreen:
        if self.max_execution_seconds <= self.canary_wait_seconds + self.bake_seconds:
            raise ValueError(
                f"max_execution_seconds {self.max_execution_seconds} leaves no time to provision after "
                f"canary_wait_seconds {self.canary_wait_seconds} + bake_seconds {self.bake_seconds}; raise it"
            )
        return self


class RollbackAlarm(_Strict):
    name: str = Field(
        ...,
        pattern=r"^[a-zA-Z0-9][a-zA-Z0-9_-]{0,99}$",
        description="an alarm suffix: letters, digits, '-' or '_' (the alarm is '<endpoint>-<name>')",
    )
    metric: AlarmMetric = Field(
        ...,
        description="one of Invocation5XXErrors, Invocation4XXErrors, ModelLatency, OverheadLatency, Invocations, "
        "ModelSetupTime",
    )
    statistic: Literal["Sum", "Average", "Maximum", "p99", "p95", "p50"] = Field(
        "Sum", description="one of Sum, Average, Maximum, p99, p95, p50"
    )
    threshold: float = Field(..., ge=0, description="a number >= 0 in the metric's unit (microseconds for latency)")
    period_seconds: Literal[10, 30, 60, 300] = Field(60, description="one of 10, 30, 60, 300")
    evaluation_periods: int = Field(2, ge=1, le=10, description="periods between 1 and 10")


class DriftAlarm(_Strict):
    """The alarm on Model Monitor's drift metrics that starts a retrain (the bridge's second route)."""

    features: list[str] = Field(
        ...,
        min_length=1,
        max_length=9,
        description="1 to 9 feature names whose feature_baseline_drift_<name> metric the alarm watches "
        "(a CloudWatch metric-math alarm holds at most 10 queries: 9 metrics and their MAX)",
    )
    threshold: float = Field(
        0.1, gt=0, le=1, description="the drift distance (0 to 1) above which the alarm fires; Model Monitor flags 0.1"
    )


class Monitor(_Strict):
    enabled: bool = Field(False, description="true to schedule data-quality monitoring of captured requests")
    drift_alarm: DriftAlarm | None = Field(
        None, description="the retrain alarm on the drift metrics (features, threshold); null for none"
    )
    schedule_expression: str = Field(
        "cron(0 * ? * * *)",
        pattern=r"^cron\(.+\)$",
        description="a SageMaker schedule such as 'cron(0 * ? * * *)' (hourly)",
    )
    instance_type: DeployInstanceType = "ml.m5.large"
    max_runtime_seconds: int = Field(1800, ge=60, le=3600, description="a job time limit between 60 and 3600")
    role_name: RoleName = Field("mlops-sagemaker-monitoring", description="the monitoring job's role in the stage")
    output_prefix: str = Field(
        "monitoring", pattern=r"^[a-zA-Z0-9!_.*'()/-]{1,200}$", description="an S3 key prefix in the stage bucket"
    )
    image_uri: str | None = Field(
        None, description="the model-monitor analyzer image; null for SageMaker's image in the configured region"
    )


class StageTests(_Strict):
    quality_tolerance: float = Field(
        0.02, ge=0, le=1, description="how far below the registered metric the endpoint may score, 0 to 1"
    )
    quality_rows: int = Field(200, ge=10, le=10000, description="test-split rows sent for the quality check, 10+")
    latency_requests: int = Field(50, ge=5, le=2000, description="single-row requests timed, between 5 and 2000")
    latency_p95_max_ms: float | None = Field(
        None, gt=0, description="fail when the measured p95 exceeds this many milliseconds; null to only report it"
    )


class StageDeploy(_Strict):
    account: Literal["staging", "prod"] = Field(
        ..., description="the key of the target account under 'accounts:' (staging or prod; never automation)"
    )
    role_name: RoleName | None = Field(
        None, description="the role assumed in that account; null for accounts.<account>.deploy_role_name"
    )
    endpoint_name: EndpointName
    execution_role_name: RoleName = Field(
        "mlops-sagemaker-execution", description="the role SageMaker hosting runs the model with, in the stage"
    )
    bucket: BucketTemplate
    inference: Inference
    autoscaling: Autoscaling | None = None
    data_capture: DataCapture = DataCapture()
    blue_green: BlueGreen = BlueGreen()
    rollback_alarms: list[RollbackAlarm] = Field(
        default_factory=list, description="a list of alarms, each with name, metric and threshold"
    )
    monitor: Monitor = Monitor()
    tests: StageTests = StageTests()
    wait_timeout_seconds: int = Field(
        3600, ge=60, le=28800, description="how long a deploy waits for the endpoint, 60 to 28800 seconds"
    )
    poll_seconds: int = Field(30, ge=1, le=300, description="seconds between status checks, 1 to 300")

    @model_validator(mode="after")
    def _supported_by_sagemaker(self) -> StageDeploy:
        kind = self.inference.type
        if kind == "serverless":
            if self.data_capture.percentage:
                raise ValueError("serverless endpoints cannot capture data: set data_capture.percentage to 0")
            if self.autoscaling is not None:
                raise ValueError("serverless endpoints scale by max_concurrency, not autoscaling: remove 'autoscaling'")
        if kind == "batch" and self.inference.batch.sample_input_s3_uri is None:
            raise ValueError("inference.batch.sample_input_s3_uri is required for batch: the rows scored on deploy")
        if kind == "batch" and (self.autoscaling is not None or self.data_capture.percentage or self.monitor.enabled):
            raise ValueError(
                "batch transform has no endpoint: remove autoscaling, data capture and monitor for this stage"
            )
        if self.monitor.enabled and not self.data_capture.percentage:
            raise ValueError("monitor.enabled needs captured requests: set data_capture.percentage above 0")
        if self.autoscaling is not None and not (
            self.autoscaling.min_instances <= self.inference.instance_count <= self.autoscaling.max_instances
        ):
            raise ValueError(
                f"inference.instance_count {self.inference.instance_count} is outside autoscaling "
                f"[{self.autoscaling.min_instances}, {self.autoscaling.max_instances}]"
            )
        names = [alarm.name for alarm in self.rollback_alarms]
        if len(names) != len(set(names)):
            raise ValueError(f"rollback_alarms names must be unique, found {names}")
        return self


class DeploySettings(_Strict):
    record_parameter_prefix: str = Field(
        "/mlops",
        pattern=r"^(/[a-zA-Z0-9_.-]+)+$",
        description="an SSM parameter path such as '/mlops' under which deployment records are kept",
    )
    staging: StageDeploy
    prod: StageDeploy

    @model_validator(mode="after")
    def _stages_in_their_accounts(self) -> DeploySettings:
        if self.staging.account != "staging" or self.prod.account != "prod":
            raise ValueError(
                f"deploy.staging must target the staging account and deploy.prod the prod account, found "
                f"{self.staging.account!r} and {self.prod.account!r}; the account split is the isolation of prod"
            )
        return self

    def stage(self, name: str) -> StageDeploy:
        if name == "staging":
            return self.staging
        if name == "prod":
            return self.prod
        raise ValueError(f"expected stage 'staging' or 'prod', found {name!r}")
