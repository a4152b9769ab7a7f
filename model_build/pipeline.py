"""The SageMaker Pipeline of the use case, rendered with the SageMaker Python SDK v3.

    Preprocess -> Train -> Evaluate -> CheckQuality -> Register (PendingManualApproval)
                                                    `-> Fail (message carries the metric)

This is the only module that imports the SageMaker SDK, so a change of SDK touches one file.
Rendering makes no AWS call and uploads nothing: every script is referenced by a content-addressed
S3 URI that `build.render` computes and `build.upsert` uploads first. The same inputs render the
same bytes (no timestamps, no generated names), so an unchanged upsert writes nothing and unchanged
steps hit SageMaker's step cache. The git commit and build id are execution parameters, never baked
into the definition.
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any

# Offline traps of SDK v3 (shared/PLATFORM-FACTS.md): the import builds a client and needs a
# region; ModelTrainer would validate the role through IAM; telemetry calls out from a thread;
# the SDK's own default sessions would probe the EC2 metadata service for credentials.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("SAGEMAKER_VALIDATE_ROLE", "false")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")

# The SDK reconfigures the root logger on import and while building steps (level INFO/DEBUG, a
# handler of its own): remember the caller's logging set-up and put it back afterwards.
_root = logging.getLogger()
_ROOT_STATE = (_root.level, list(_root.handlers))


def _restore_root_logging() -> None:
    _root.setLevel(_ROOT_STATE[0])
    _root.handlers[:] = _ROOT_STATE[1]


import boto3  # noqa: E402
import sagemaker.core.telemetry.telemetry_logging as _telemetry  # noqa: E402

_telemetry._send_telemetry_request = lambda *args, **kwargs: None

from sagemaker.core import image_uris  # noqa: E402
from sagemaker.core.drift_check_baselines import DriftCheckBaselines  # noqa: E402
from sagemaker.core.model_metrics import MetricsSource, ModelMetrics  # noqa: E402
from sagemaker.core.processing import ScriptProcessor  # noqa: E402
from sagemaker.core.shapes import (  # noqa: E402
    Channel,
    DataSource,
    ProcessingInput,
    ProcessingOutput,
    ProcessingS3Input,
    ProcessingS3Output,
    S3DataSource,
    StoppingCondition,
)
from sagemaker.core.workflow.conditions import (  # noqa: E402
    ConditionGreaterThanOrEqualTo,
    ConditionLessThanOrEqualTo,
)
from sagemaker.core.workflow.functions import Join, JsonGet  # noqa: E402
from sagemaker.core.workflow.parameters import ParameterFloat, ParameterInteger, ParameterString  # noqa: E402
from sagemaker.core.workflow.pipeline_context import PipelineSession  # noqa: E402
from sagemaker.core.workflow.properties import PropertyFile  # noqa: E402
from sagemaker.mlops.workflow.condition_step import ConditionStep  # noqa: E402
from sagemaker.mlops.workflow.fail_step import FailStep  # noqa: E402
from sagemaker.mlops.workflow.model_step import ModelStep  # noqa: E402
from sagemaker.mlops.workflow.pipeline import Pipeline  # noqa: E402
from sagemaker.mlops.workflow.steps import CacheConfig, ProcessingStep, TrainingStep  # noqa: E402
from sagemaker.serve.model_builder import ModelBuilder  # noqa: E402
from sagemaker.train import ModelTrainer  # noqa: E402
from sagemaker.train.configs import Compute, OutputDataConfig  # noqa: E402

from mlops.core.config import Config  # noqa: E402
from mlops.core.use_cases import MODEL_QUALITY_SECTION, metric_is_lower_better  # noqa: E402

_restore_root_logging()

# The framework images the steps run in; the local pins of scikit-learn and xgboost-cpu match them.
SKLEARN_IMAGE_VERSION = "1.9-0"
XGBOOST_IMAGE_VERSION = "3.2-0"
IMAGE_VERSIONS = {"sklearn": SKLEARN_IMAGE_VERSION, "xgboost": XGBOOST_IMAGE_VERSION}
TASK_DESCRIPTIONS = {"binary": "binary classifier", "multiclass": "multiclass classifier", "regression": "regressor"}
TRAIN_ENTRYPOINT = ["python3", "/opt/ml/input/data/code/train.py"]
PREPROCESS_CHANNELS = ("train", "validation", "test", "preprocessor", "baseline")
EVALUATION_REPORT = "EvaluationReport"


class _EntrypointTrainingStep(TrainingStep):
    """A TrainingStep whose container runs our script through AlgorithmSpecification.ContainerEntrypoint.

    ModelTrainer emits ContainerEntrypoint only with `source_code`, which uploads the code and a
    driver under a timestamped key (a new definition on every render). Here the code arrives as the
    content-addressed `code` channel and the entrypoint is set on the request instead.
    """

    def __init__(self, *args: Any, container_entrypoint: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.container_entrypoint = list(container_entrypoint)

    @property
    def arguments(self) -> dict[str, Any]:
        request: dict[str, Any] = super().arguments
        request["AlgorithmSpecification"]["ContainerEntrypoint"] = list(self.container_entrypoint)
        return request


class _BundleProcessingStep(ProcessingStep):
    """A ProcessingStep whose `code` input is the step's whole content-addressed code bundle.

    `ScriptProcessor.run(code=...)` downloads the one script file; the scripts import helpers that
    travel beside them (`baseline.py`), so the input is widened to the bundle's prefix. The
    entrypoint still names the script, and the prefix is content-addressed like the file was.
    """

    def __init__(self, *args: Any, bundle_uri: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bundle_uri = bundle_uri

    @property
    def arguments(self) -> dict[str, Any]:
        request: dict[str, Any] = super().arguments
        for item in request.get("ProcessingInputs", []):
            if item.get("InputName") == "code":
                item["S3Input"]["S3Uri"] = self.bundle_uri
        return request


def _s3_join(*parts: Any) -> Join:
    return Join(on="/", values=["s3:/", *parts])


def _channel(name: str, uri: Any, content_type: str | None = None) -> Channel:
    extra = {"content_type": content_type} if content_type else {}
    return Channel(
        channel_name=name,
        data_source=DataSource(
            s3_data_source=S3DataSource(
                s3_data_type="S3Prefix", s3_uri=uri, s3_data_distribution_type="FullyReplicated"
            )
        ),
        input_mode="File",
        **extra,
    )


def _processing_input(name: str, uri: Any) -> ProcessingInput:
    return ProcessingInput(
        input_name=name,
        s3_input=ProcessingS3Input(
            s3_uri=uri,
            local_path=f"/opt/ml/processing/{name}",
            s3_data_type="S3Prefix",
            s3_input_mode="File",
            s3_data_distribution_type="FullyReplicated",
        ),
    )


def _processing_output(name: str, uri: Any) -> ProcessingOutput:
    return ProcessingOutput(
        output_name=name,
        s3_output=ProcessingS3Output(s3_uri=uri, local_path=f"/opt/ml/processing/{name}", s3_upload_mode="EndOfJob"),
    )


def build_pipeline(
    config: Config,
    *,
    pipeline_name: str,
    code_uris: dict[str, str],
    input_data_uri: str,
    output_prefix_uri: str,
    main_line: bool = True,
) -> Pipeline:
    """The Pipeline object. `code_uris` maps preprocess/train/evaluate to `s3://.../code/<sha256>/`;
    `output_prefix_uri` is the branch's prefix, under which each execution writes `<BuildId>/<step>/<output>`.

    A branch pipeline (`main_line` False) runs on `build.branch_instances`, one instance each, and
    registers nothing: the quality gate still fails it, but no package reaches the production group
    (whose approvals deploy).
    """
    build = config.build
    region = config.region
    role = config.execution_role_arn()
    # A static, render-only session: rendering needs no credentials and must not look for any.
    boto_session = boto3.Session(
        region_name=region,
        aws_access_key_id="render-only",
        aws_secret_access_key="render-only",  # noqa: S106 - a placeholder, never sent anywhere
    )
    session = PipelineSession(boto_session=boto_session, default_bucket=build.artifact_bucket)
    use_case = config.use_case
    framework = use_case.framework
    sklearn_image = image_uris.retrieve("sklearn", region, version=SKLEARN_IMAGE_VERSION, image_scope="training")
    # The use case's framework image trains, evaluates (it has scikit-learn and pandas too) and serves.
    framework_image = image_uris.retrieve(framework, region, version=IMAGE_VERSIONS[framework], image_scope="training")
    serving_image = image_uris.retrieve(framework, region, version=IMAGE_VERSIONS[framework], image_scope="inference")

    input_data = ParameterString("InputDataUrl", default_value=input_data_uri)
    if main_line:
        sizes = (
            build.instances.processing.type,
            build.instances.processing.count,
            build.instances.training.type,
            build.instances.training.count,
        )
    else:
        sizes = (build.branch_instances.processing, 1, build.branch_instances.training, 1)
    processing_type = ParameterString("ProcessingInstanceType", default_value=sizes[0])
    processing_count = ParameterInteger("ProcessingInstanceCount", default_value=sizes[1])
    training_type = ParameterString("TrainingInstanceType", default_value=sizes[2])
    training_count = ParameterInteger("TrainingInstanceCount", default_value=sizes[3])
    threshold = ParameterFloat("QualityThreshold", default_value=build.quality.threshold)
    git_commit = ParameterString("GitCommit", default_value="unknown")
    build_id = ParameterString("BuildId", default_value="unversioned")
    parameters = [
        input_data,
        processing_type,
        processing_count,
        training_type,
        training_count,
        threshold,
        git_commit,
        build_id,
    ]
    cache = CacheConfig(enable_caching=True, expire_after=build.cache_expire_after)
    kms = build.kms_key_id

    def output_uri(step: str, output: str) -> Join:
        return _s3_join(output_prefix_uri.removeprefix("s3://"), build_id, step, output)

    def processor(image: str, job: str, count: Any) -> ScriptProcessor:
        return ScriptProcessor(
            role=role,
            image_uri=image,
            command=["python3"],
            instance_type=processing_type,
            instance_count=count,
            output_kms_key=kms,
            max_runtime_in_seconds=build.max_runtime_seconds,
            base_job_name=f"{pipeline_name}-{job}"[:40],
            sagemaker_session=session,
        )

    # Preprocess: the scikit-learn image.
    preprocess_args = processor(sklearn_image, "preprocess", processing_count).run(
        code=code_uris["preprocess"] + "preprocess.py",
        inputs=[_processing_input("input", input_data)],
        outputs=[_processing_output(c, output_uri("preprocess", c)) for c in PREPROCESS_CHANNELS],
        # Paths are explicit (they are the scripts' defaults) so a local executor can map /opt/ml.
        arguments=["--input-dir", "/opt/ml/processing/input", "--output-dir", "/opt/ml/processing"],
    )
    preprocess = _BundleProcessingStep(
        name="Preprocess", step_args=preprocess_args, cache_config=cache, bundle_uri=code_uris["preprocess"]
    )

    def preprocessed(channel: str) -> Any:
        return preprocess.properties.ProcessingOutputConfig.Outputs[channel].S3Output.S3Uri

    # Train: the framework's image running our train.py from the content-addressed code channel.
    trainer = ModelTrainer(
        training_image=framework_image,
        role=role,
        sagemaker_session=session,
        base_job_name=f"{pipeline_name}-train"[:40],
        compute=Compute(instance_type=training_type, instance_count=training_count, volume_size_in_gb=30),
        stopping_condition=StoppingCondition(max_runtime_in_seconds=build.max_runtime_seconds),
        output_data_config=OutputDataConfig(s3_output_path=output_uri("train", "model"), kms_key_id=kms),
        hyperparameters={k: str(v) for k, v in build.hyperparameters.items()},
        environment={},
    )
    train_args = trainer.train(
        input_data_config=[
            _channel("train", preprocessed("train"), "text/csv"),
            _channel("validation", preprocessed("validation"), "text/csv"),
            _channel("preprocessor", preprocessed("preprocessor"), "application/json"),
            _channel("code", code_uris["train"]),
        ]
    )
    train = _EntrypointTrainingStep(
        name="Train", step_args=train_args, cache_config=cache, container_entrypoint=TRAIN_ENTRYPOINT
    )
    model_artifact = train.properties.ModelArtifacts.S3ModelArtifacts

    # Evaluate: the framework's image (it has the framework, scikit-learn and pandas) on the test split.
    evaluate_args = processor(framework_image, "evaluate", 1).run(
        code=code_uris["evaluate"] + "evaluate.py",
        inputs=[_processing_input("model", model_artifact), _processing_input("test", preprocessed("test"))],
        outputs=[_processing_output("evaluation", output_uri("evaluate", "evaluation"))],
        arguments=[
            "--model-dir",
            "/opt/ml/processing/model",
            "--test-dir",
            "/opt/ml/processing/test",
            "--output-dir",
            "/opt/ml/processing/evaluation",
        ],
    )
    report = PropertyFile(name=EVALUATION_REPORT, output_name="evaluation", path="evaluation.json")
    evaluate = _BundleProcessingStep(
        name="Evaluate",
        step_args=evaluate_args,
        property_files=[report],
        cache_config=cache,
        bundle_uri=code_uris["evaluate"],
    )

    def evaluated(file: str) -> Join:
        evaluation_output = evaluate.properties.ProcessingOutputConfig.Outputs["evaluation"].S3Output.S3Uri
        return Join(on="/", values=[evaluation_output, file])

    def json_source(uri: Any) -> MetricsSource:
        return MetricsSource(s3_uri=uri, content_type="application/json")

    evaluation_uri = evaluated("evaluation.json")
    # Model Monitor's baselines (steps/baseline.py), registered so the deploy wires them into the
    # monitoring schedule: data quality of the training features, model quality of the test split.
    drift_check_baselines = DriftCheckBaselines(
        model_data_statistics=json_source(Join(on="/", values=[preprocessed("baseline"), "statistics.json"])),
        model_data_constraints=json_source(Join(on="/", values=[preprocessed("baseline"), "constraints.json"])),
        model_statistics=json_source(evaluated("model_quality/statistics.json")),
        model_constraints=json_source(evaluated("model_quality/constraints.json")),
    )
    # TreeSHAP attributions in Clarify's report format (steps/evaluate.py).
    explainability_uri = evaluated("analysis.json")

    # Register: the trained artifact already holds code/inference.py, so no repack step is needed.
    builder = ModelBuilder(
        s3_model_data_url=model_artifact,
        image_uri=serving_image,
        role_arn=role,
        sagemaker_session=session,
        env_vars={
            "SAGEMAKER_PROGRAM": "inference.py",
            "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
            "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
            "SAGEMAKER_REGION": region,
        },
        # The default dependencies={"auto": True} sends register() through a code upload that
        # looks the bucket up (s3:ListBuckets) although there is nothing to upload.
        dependencies=None,
    )
    register_args = builder.register(
        model_package_group_name=build.model_package_group,
        approval_status="PendingManualApproval",
        content_types=["text/csv", "application/json"],
        response_types=["application/json", "text/csv"],
        inference_instances=list(build.instances.inference),
        transform_instances=list(build.instances.transform),
        model_metrics=ModelMetrics(
            model_statistics=json_source(evaluation_uri),
            explainability=json_source(explainability_uri),
        ),
        drift_check_baselines=drift_check_baselines,
        customer_metadata_properties={
            "git_commit": git_commit,
            "build_id": build_id,
            # Where the staging tests find rows the model never saw (the real location, also when cached).
            "test_data_uri": Join(on="/", values=[preprocessed("test"), "test.csv"]),
            # The build's manifest (commit, build, data snapshot, code): lineage and the model card read it.
            "manifest_uri": Join(on="/", values=[output_prefix_uri, build_id, "manifest.json"]),
            # What the deploy's endpoint tests derive the contract from (model_deploy/endpoint_checks.py).
            "use_case": use_case.name,
            "task": use_case.task,
            "framework": framework,
        },
        description=f"{use_case.name}: {framework} {TASK_DESCRIPTIONS[use_case.task]}",
    )
    register = ModelStep(name="Register", step_args=register_args)

    metric = build.quality.metric
    measured = JsonGet(
        step_name=evaluate.name,
        property_file=report,
        json_path=f"{MODEL_QUALITY_SECTION[use_case.task]}.{metric}.value",
    )
    # Errors (rmse, mae, mse) gate from above, every other metric from below.
    lower_is_better = metric_is_lower_better(metric)
    gate = (
        ConditionLessThanOrEqualTo(left=measured, right=threshold)
        if lower_is_better
        else ConditionGreaterThanOrEqualTo(left=measured, right=threshold)
    )
    fail = FailStep(
        name="Fail",
        error_message=Join(
            on=" ",
            values=[
                f"Model {metric}",
                measured,
                "is above the quality threshold" if lower_is_better else "is below the quality threshold",
                threshold,
                "- not registered.",
            ],
        ),
    )
    check = ConditionStep(
        name="CheckQuality",
        conditions=[gate],
        if_steps=[register] if main_line else [],
        else_steps=[fail],
    )
    return Pipeline(
        name=pipeline_name,
        parameters=parameters,
        steps=[preprocess, train, evaluate, check],
        sagemaker_session=session,
    )


def render_definition(
    config: Config,
    *,
    pipeline_name: str,
    code_uris: dict[str, str],
    input_data_uri: str,
    output_prefix_uri: str,
    main_line: bool = True,
) -> str:
    # The SDK narrates every object it builds (INFO logs, a UserWarning per job, a warning per field
    # it drops from the definition by design): keep a render's output to what matters.
    sdk_logger = logging.getLogger("sagemaker")
    level = sdk_logger.level
    sdk_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Running within a PipelineSession")
            pipeline = build_pipeline(
                config,
                pipeline_name=pipeline_name,
                code_uris=code_uris,
                input_data_uri=input_data_uri,
                output_prefix_uri=output_prefix_uri,
                main_line=main_line,
            )
            return str(pipeline.definition())
    finally:
        sdk_logger.setLevel(level)
        _restore_root_logging()
