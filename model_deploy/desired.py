"""The desired state of a stage for one model package, as the exact API requests that create it. Pure.

Rendered from the stage's settings and the verified package only, so the same inputs give the same
requests and the same names (`naming.py`). The model copies the package's container (image, artifact,
environment) rather than referencing the package by ARN: the stage account then needs no access to the
automation account's registry at run time, the twin can serve it from the artifact alone, and the
deployed model can be checked field by field against the package it came from.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from model_deploy import naming
from model_deploy.package import PackageInfo
from model_deploy.settings import StageDeploy

VARIANT = "AllTraffic"  # blue/green requires the same variant name in the old and the new config
# The stage's KMS key (infra/templates/target.yaml StageKeyAlias). The stage bucket's policy refuses uploads
# without SSE-KMS (DenyUploadsNotKmsEncrypted): data capture and monitoring reports must name the key.
STAGE_KEY_ALIAS = "alias/mlops-{stage}"
SCALABLE_DIMENSION = "sagemaker:variant:DesiredInstanceCount"
MANAGED_BY = {"Key": "mlops:managed-by", "Value": "mlops-deploy"}


@dataclass(frozen=True)
class Target:
    """Where a stage lives: resolved from config once, by the caller."""

    stage: str
    account_id: str
    region: str
    partition: str = "aws"

    def role_arn(self, role_name: str) -> str:
        return f"arn:{self.partition}:iam::{self.account_id}:role/{role_name}"

    def bucket(self, template: str) -> str:
        return template.replace("{account_id}", self.account_id).replace("{region}", self.region)


@dataclass(frozen=True)
class ScalingSpec:
    resource_id: str
    min_capacity: int
    max_capacity: int
    policy_name: str
    policy: dict[str, Any]


@dataclass(frozen=True)
class MonitorSpec:
    schedule_name: str
    job_definition_name: str
    job_definition: dict[str, Any]
    schedule: dict[str, Any]


@dataclass(frozen=True)
class TransformSpec:
    job_name: str
    request: dict[str, Any]


@dataclass(frozen=True)
class DesiredState:
    stage: str
    inference_type: str
    endpoint_name: str
    model_name: str
    model: dict[str, Any]
    instance_type: str | None
    endpoint_config_name: str | None
    endpoint_config: dict[str, Any] | None
    deployment_config: dict[str, Any] | None
    alarms: tuple[dict[str, Any], ...] = ()
    scaling: ScalingSpec | None = None
    monitor: MonitorSpec | None = None
    transform: TransformSpec | None = None
    warnings: tuple[str, ...] = field(default=())


def _tags(package: PackageInfo, stage: str) -> list[dict[str, str]]:
    return [
        MANAGED_BY,
        {"Key": "mlops:stage", "Value": stage},
        {"Key": "mlops:model-package-arn", "Value": package.arn},
        {"Key": "mlops:git-commit", "Value": package.git_commit[:256]},
        {"Key": "mlops:build-id", "Value": package.build_id[:256]},
    ]


def render_model(settings: StageDeploy, target: Target, package: PackageInfo) -> tuple[str, dict[str, Any]]:
    container = {
        "Image": package.image,
        "ModelDataUrl": package.model_data_url,
        "Environment": dict(package.environment),
    }
    role = target.role_arn(settings.execution_role_name)
    name = naming.model_name(package.group, package.version, {"container": container, "role": role, "arn": package.arn})
    request = {
        "ModelName": name,
        "PrimaryContainer": container,
        "ExecutionRoleArn": role,
        "Tags": _tags(package, target.stage),
    }
    return name, request


def _variant(settings: StageDeploy, model_name: str) -> dict[str, Any]:
    inference = settings.inference
    if inference.type == "serverless":
        serverless: dict[str, Any] = {
            "MemorySizeInMB": inference.serverless.memory_size_mb,
            "MaxConcurrency": inference.serverless.max_concurrency,
        }
        if inference.serverless.provisioned_concurrency is not None:
            serverless["ProvisionedConcurrency"] = inference.serverless.provisioned_concurrency
        return {"VariantName": VARIANT, "ModelName": model_name, "ServerlessConfig": serverless}
    return {
        "VariantName": VARIANT,
        "ModelName": model_name,
        "InstanceType": inference.instance_type,
        "InitialInstanceCount": inference.instance_count,
        "InitialVariantWeight": 1.0,
    }


def render_endpoint_config(
    settings: StageDeploy, target: Target, package: PackageInfo, model_name: str
) -> tuple[str, dict[str, Any]]:
    bucket = target.bucket(settings.bucket)
    endpoint = settings.endpoint_name
    body: dict[str, Any] = {"ProductionVariants": [_variant(settings, model_name)]}
    if settings.data_capture.percentage:
        body["DataCaptureConfig"] = {
            "EnableCapture": True,
            "InitialSamplingPercentage": settings.data_capture.percentage,
            "DestinationS3Uri": f"s3://{bucket}/{settings.data_capture.prefix}/{endpoint}",
            "KmsKeyId": STAGE_KEY_ALIAS.format(stage=target.stage),
            "CaptureOptions": [{"CaptureMode": "Input"}, {"CaptureMode": "Output"}],
            "CaptureContentTypeHeader": {"CsvContentTypes": ["text/csv"], "JsonContentTypes": ["application/json"]},
        }
    if settings.inference.type == "async":
        asynchronous = settings.inference.asynchronous
        prefix = f"s3://{bucket}/{asynchronous.output_prefix}/{endpoint}"
        body["AsyncInferenceConfig"] = {
            "ClientConfig": {
                "MaxConcurrentInvocationsPerInstance": asynchronous.max_concurrent_invocations_per_instance
            },
            "OutputConfig": {"S3OutputPath": f"{prefix}/output", "S3FailurePath": f"{prefix}/failure"},
        }
    name = naming.endpoint_config_name(endpoint, package.version, body)
    return name, {"EndpointConfigName": name, **body, "Tags": _tags(package, target.stage)}


def render_deployment_config(settings: StageDeploy) -> dict[str, Any]:
    blue_green = settings.blue_green
    routing: dict[str, Any]
    # Capacity percentages mean nothing without instances: a serverless endpoint shifts all at once.
    if blue_green.traffic == "canary" and settings.inference.type != "serverless":
        routing = {
            "Type": "CANARY",
            "CanarySize": {"Type": "CAPACITY_PERCENT", "Value": blue_green.canary_percent},
            "WaitIntervalInSeconds": blue_green.canary_wait_seconds,
        }
    else:
        routing = {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": blue_green.canary_wait_seconds}
    config: dict[str, Any] = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": routing,
            "TerminationWaitInSeconds": blue_green.bake_seconds,
            "MaximumExecutionTimeoutInSeconds": blue_green.max_execution_seconds,
        }
    }
    if settings.rollback_alarms:
        config["AutoRollbackConfiguration"] = {
            "Alarms": [
                {"AlarmName": naming.alarm_name(settings.endpoint_name, a.name)} for a in settings.rollback_alarms
            ]
        }
    return config


def render_alarms(settings: StageDeploy) -> tuple[dict[str, Any], ...]:
    alarms = []
    for alarm in settings.rollback_alarms:
        request: dict[str, Any] = {
            "AlarmName": naming.alarm_name(settings.endpoint_name, alarm.name),
            "AlarmDescription": f"mlops: rolls back deployments of {settings.endpoint_name} ({alarm.metric})",
            "Namespace": "AWS/SageMaker",
            "MetricName": alarm.metric,
            "Dimensions": [
                {"Name": "EndpointName", "Value": settings.endpoint_name},
                {"Name": "VariantName", "Value": VARIANT},
            ],
            "Period": alarm.period_seconds,
            "EvaluationPeriods": alarm.evaluation_periods,
            "Threshold": alarm.threshold,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            # No traffic is not an outage: an idle endpoint must not block or roll back a deployment.
            "TreatMissingData": "notBreaching",
        }
        if alarm.statistic.startswith("p"):
            request["ExtendedStatistic"] = alarm.statistic
        else:
            request["Statistic"] = alarm.statistic
        alarms.append(request)
    return tuple(alarms)


# Model Monitor's data-quality metrics (the built-in analyzer; AWS's "CloudWatch Metrics" page of Model Monitor).
DATA_METRIC_NAMESPACE = "/aws/sagemaker/Endpoints/data-metric"
DRIFT_ALARM_SUFFIX = "data-drift"


def monitoring_schedule_name(endpoint: str) -> str:
    return f"{endpoint}-data-quality"


def render_drift_alarm(settings: StageDeploy) -> dict[str, Any] | None:
    """The retrain alarm: the largest baseline drift of the watched features against the threshold.

    Not a rollback alarm (the deployment config names only `rollback_alarms`): it fires between
    deployments, when the hourly monitoring execution publishes drift, and its state change reaches
    the bridge's retrain route through EventBridge (infra/templates).
    """
    drift = settings.monitor.drift_alarm
    if not settings.monitor.enabled or drift is None:
        return None
    endpoint = settings.endpoint_name
    dimensions = [
        {"Name": "EndpointName", "Value": endpoint},
        {"Name": "ScheduleName", "Value": monitoring_schedule_name(endpoint)},
    ]
    metrics: list[dict[str, Any]] = [
        {
            "Id": f"m{index}",
            "MetricStat": {
                "Metric": {
                    "Namespace": DATA_METRIC_NAMESPACE,
                    "MetricName": f"feature_baseline_drift_{feature}",
                    "Dimensions": dimensions,
                },
                "Period": 3600,
                "Stat": "Maximum",
            },
            "ReturnData": False,
        }
        for index, feature in enumerate(drift.features)
    ]
    ids = ",".join(m["Id"] for m in metrics)
    metrics.append({"Id": "drift", "Expression": f"MAX([{ids}])", "Label": "largest feature drift", "ReturnData": True})
    return {
        "AlarmName": naming.alarm_name(endpoint, DRIFT_ALARM_SUFFIX),
        # The description names what is watched: the plan compares descriptions, not metric queries.
        "AlarmDescription": f"mlops: data drift of {endpoint} beyond {drift.threshold} in any of "
        f"{', '.join(drift.features)}; starts a retrain"[:1024],
        "Metrics": metrics,
        "EvaluationPeriods": 1,
        "Threshold": drift.threshold,
        "ComparisonOperator": "GreaterThanThreshold",
        # No monitoring data (no traffic in the hour) is no evidence of drift.
        "TreatMissingData": "notBreaching",
    }


def render_scaling(settings: StageDeploy) -> ScalingSpec | None:
    scaling = settings.autoscaling
    if scaling is None:
        return None
    return ScalingSpec(
        resource_id=naming.scaling_resource_id(settings.endpoint_name, VARIANT),
        min_capacity=scaling.min_instances,
        max_capacity=scaling.max_instances,
        policy_name=f"{settings.endpoint_name}-invocations-per-instance",
        policy={
            "TargetValue": scaling.target_invocations_per_instance,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"},
            "ScaleInCooldown": scaling.scale_in_cooldown_seconds,
            "ScaleOutCooldown": scaling.scale_out_cooldown_seconds,
        },
    )


def render_monitor(
    settings: StageDeploy, target: Target, package: PackageInfo, image_uri: str
) -> tuple[MonitorSpec | None, tuple[str, ...]]:
    monitor = settings.monitor
    if not monitor.enabled:
        return None, ()
    bucket = target.bucket(settings.bucket)
    endpoint = settings.endpoint_name
    definition: dict[str, Any] = {
        "DataQualityAppSpecification": {"ImageUri": image_uri},
        "DataQualityJobInput": {"EndpointInput": {"EndpointName": endpoint, "LocalPath": "/opt/ml/processing/input"}},
        "DataQualityJobOutputConfig": {
            "KmsKeyId": STAGE_KEY_ALIAS.format(stage=target.stage),
            "MonitoringOutputs": [
                {
                    "S3Output": {
                        "S3Uri": f"s3://{bucket}/{monitor.output_prefix}/{endpoint}",
                        "LocalPath": "/opt/ml/processing/output",
                        "S3UploadMode": "EndOfJob",
                    }
                }
            ],
        },
        "JobResources": {
            "ClusterConfig": {"InstanceCount": 1, "InstanceType": monitor.instance_type, "VolumeSizeInGB": 20}
        },
        "RoleArn": target.role_arn(monitor.role_name),
        "StoppingCondition": {"MaxRuntimeInSeconds": monitor.max_runtime_seconds},
    }
    warnings: tuple[str, ...] = ()
    if package.data_quality_baseline is not None:
        statistics, constraints = package.data_quality_baseline
        definition["DataQualityBaselineConfig"] = {
            "ConstraintsResource": {"S3Uri": constraints},
            "StatisticsResource": {"S3Uri": statistics},
        }
    else:
        warnings = (
            f"package {package.arn} carries no DriftCheckBaselines.ModelDataQuality: the monitor computes "
            "statistics of the captured data but has no constraints to report violations against",
        )
    name = naming.job_definition_name(endpoint, definition)
    schedule_name = monitoring_schedule_name(endpoint)
    schedule = {
        "MonitoringScheduleName": schedule_name,
        "MonitoringScheduleConfig": {
            "ScheduleConfig": {"ScheduleExpression": monitor.schedule_expression},
            "MonitoringJobDefinitionName": name,
            "MonitoringType": "DataQuality",
        },
    }
    return MonitorSpec(schedule_name, name, {"JobDefinitionName": name, **definition}, schedule), warnings


def render_transform(settings: StageDeploy, target: Target, model_name: str) -> TransformSpec:
    batch = settings.inference.batch
    if batch.sample_input_s3_uri is None:  # settings validation makes this unreachable for batch stages
        raise ValueError("inference.batch.sample_input_s3_uri is required for batch transform")
    job_name = naming.transform_job_name(model_name)
    bucket = target.bucket(settings.bucket)
    request = {
        "TransformJobName": job_name,
        "ModelName": model_name,
        "MaxPayloadInMB": batch.max_payload_mb,
        "BatchStrategy": "MultiRecord",
        "TransformInput": {
            "DataSource": {
                "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": target.bucket(batch.sample_input_s3_uri)}
            },
            "ContentType": "text/csv",
            "SplitType": "Line",
        },
        "TransformOutput": {
            "S3OutputPath": f"s3://{bucket}/{batch.output_prefix}/{model_name}",
            "Accept": "text/csv",
            "AssembleWith": "Line",
        },
        "TransformResources": {
            "InstanceType": settings.inference.instance_type,
            "InstanceCount": settings.inference.instance_count,
        },
    }
    return TransformSpec(job_name, request)


def render_desired(
    settings: StageDeploy, target: Target, package: PackageInfo, *, monitor_image_uri: str | None = None
) -> DesiredState:
    model_name, model = render_model(settings, target, package)
    if settings.inference.type == "batch":
        return DesiredState(
            stage=target.stage,
            inference_type="batch",
            endpoint_name=settings.endpoint_name,
            model_name=model_name,
            model=model,
            instance_type=settings.inference.instance_type,
            endpoint_config_name=None,
            endpoint_config=None,
            deployment_config=None,
            transform=render_transform(settings, target, model_name),
        )
    config_name, config = render_endpoint_config(settings, target, package, model_name)
    monitor: MonitorSpec | None = None
    warnings: tuple[str, ...] = ()
    if settings.monitor.enabled:
        image = settings.monitor.image_uri or monitor_image_uri
        if not image:
            raise ValueError("a model-monitor image URI is required when the monitor is enabled")
        monitor, warnings = render_monitor(settings, target, package, image)
    return DesiredState(
        stage=target.stage,
        inference_type=settings.inference.type,
        endpoint_name=settings.endpoint_name,
        model_name=model_name,
        model=model,
        instance_type=None if settings.inference.type == "serverless" else settings.inference.instance_type,
        endpoint_config_name=config_name,
        endpoint_config=config,
        deployment_config=render_deployment_config(settings),
        alarms=render_alarms(settings) + tuple(a for a in (render_drift_alarm(settings),) if a is not None),
        scaling=render_scaling(settings),
        monitor=monitor,
        warnings=warnings,
    )
