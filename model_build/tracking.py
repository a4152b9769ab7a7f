"""Record a finished pipeline execution: the model card and lifecycle on its package, and one MLflow run.

Runs on the build agent after `mlops build run --wait` saw the execution succeed (and again, idempotently,
with `mlops build track --execution ARN`). The step scripts stay free of MLflow: they run in SageMaker's
framework images, which do not have it, and a step process would pay MLflow's 1.3 s import each. The
agent reads what the steps wrote (the package's evaluation and explainability reports, the plots beside
them, the build manifest, the model artifact) and logs it once.

Order, and why: the card and the `Registered` lifecycle stage go on the package first (they need only
SageMaker), then the MLflow run is logged, then the package gets the run's ids. An unreachable tracking
server is retried for `tracking.connect_timeout_seconds`, then the command FAILS (exit 1, the error
names the server and the re-run command). We chose failing over buffering: a buffer on a hosted
agent dies with the agent, so "buffered" would mean "lost" there; a failed build is seen at once, the
metrics are never lost because the reports stay in S3 beside the package, and re-running `mlops build
track --execution ARN` logs the same run later (it finds an existing run by the execution's tag
instead of logging a second one).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import botocore.exceptions

from mlops.core.aws import error_message
from mlops.core.config import Config
from mlops.core.errors import AwsError, MlopsError
from model_build.card import CardInputs, model_card_content, quality_metrics, registered_lifecycle

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker import SageMakerClient

# Files the Evaluate step writes beside evaluation.json that the run keeps as artifacts.
REPORT_FILES = (
    "evaluation.json",
    "analysis.json",
    "report.md",
    "roc.png",
    "confusion_matrix.png",
    "feature_importance.png",
)
EXECUTION_TAG = "mlops.pipeline_execution_arn"
RUN_ID_KEY = "mlflow_run_id"
EXPERIMENT_ID_KEY = "mlflow_experiment_id"


class TrackingError(MlopsError):
    """The execution could not be recorded (no package, unreadable reports, tracking server unreachable)."""


@dataclass(frozen=True)
class BuildRecord:
    package: dict[str, Any]
    manifest: dict[str, Any]
    evaluation: dict[str, Any]
    explanations: dict[str, Any] | None
    evaluation_uri: str
    explainability_uri: str | None
    files: dict[str, Path]  # local copies of REPORT_FILES that exist, and the model artifact

    @property
    def arn(self) -> str:
        return str(self.package["ModelPackageArn"])


@dataclass(frozen=True)
class RunLink:
    tracking_uri: str
    experiment_id: str
    run_id: str
    run_url: str
    created: bool  # False when the run existed already (a re-run of `build track`)

    def as_card_fields(self) -> dict[str, str]:
        return {
            "tracking_uri": self.tracking_uri,
            "experiment_id": self.experiment_id,
            "run_id": self.run_id,
            "run_url": self.run_url,
        }


class Tracker(Protocol):
    def log(self, record: BuildRecord, *, params: Mapping[str, str], metrics: Mapping[str, float]) -> RunLink: ...


def split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise TrackingError(f"expected an s3://bucket/key URI, found {uri!r}")
    bucket, key = uri[5:].split("/", 1)
    return bucket, key


def registered_package(sm: SageMakerClient, config: Config, execution_arn: str) -> dict[str, Any]:
    """The package this execution registered (SageMaker sets MetadataProperties.GeneratedBy to it)."""
    group = config.build.model_package_group
    try:
        paginator = sm.get_paginator("list_model_packages")
        for page in paginator.paginate(ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending"):
            for summary in page["ModelPackageSummaryList"]:
                package: dict[str, Any] = dict(sm.describe_model_package(ModelPackageName=summary["ModelPackageArn"]))
                metadata: dict[str, Any] = dict(package.get("MetadataProperties", {}))
                if metadata.get("GeneratedBy") == execution_arn:
                    return package
    except botocore.exceptions.ClientError as exc:
        raise AwsError(f"could not read model package group {group}: {error_message(exc)}") from exc
    raise TrackingError(
        f"no package of group {group} was registered by execution {execution_arn}",
        hint="the quality gate may have failed (see the execution's Fail step), or the ARN is of another pipeline",
    )


def _get(s3: S3Client, uri: str) -> bytes:
    bucket, key = split_s3(uri)
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except botocore.exceptions.ClientError as exc:
        raise AwsError(
            f"could not read {uri}: {error_message(exc)}",
            hint="check the build role may s3:GetObject on the artifact bucket and use its key",
        ) from exc


def _maybe_get(s3: S3Client, uri: str) -> bytes | None:
    bucket, key = split_s3(uri)
    try:
        return s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return None
        raise AwsError(f"could not read {uri}: {error_message(exc)}") from exc


def read_build(s3: S3Client, package: dict[str, Any], into: Path) -> BuildRecord:
    """Download the package's reports, the manifest and the model artifact into `into`."""
    arn = package["ModelPackageArn"]
    metrics = package.get("ModelMetrics", {})
    evaluation_uri = metrics.get("ModelQuality", {}).get("Statistics", {}).get("S3Uri")
    if not evaluation_uri:
        raise TrackingError(f"package {arn} has no ModelMetrics.ModelQuality.Statistics report")
    explainability_uri = metrics.get("Explainability", {}).get("Report", {}).get("S3Uri")
    manifest_uri = package.get("CustomerMetadataProperties", {}).get("manifest_uri")
    manifest: dict[str, Any] = json.loads(_get(s3, manifest_uri)) if manifest_uri else {}
    files: dict[str, Path] = {}
    base = evaluation_uri.rsplit("/", 1)[0]
    for name in REPORT_FILES:
        body = _get(s3, evaluation_uri) if name == "evaluation.json" else _maybe_get(s3, f"{base}/{name}")
        if body is not None:
            (into / name).write_bytes(body)
            files[name] = into / name
    model_url = package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"]
    (into / "model.tar.gz").write_bytes(_get(s3, model_url))
    files["model.tar.gz"] = into / "model.tar.gz"
    analysis = files.get("analysis.json")
    return BuildRecord(
        package=package,
        manifest=manifest,
        evaluation=json.loads(files["evaluation.json"].read_text()),
        explanations=json.loads(analysis.read_text()) if analysis else None,
        evaluation_uri=evaluation_uri,
        explainability_uri=explainability_uri,
        files=files,
    )


def card_inputs(config: Config, record: BuildRecord, run: RunLink | None) -> CardInputs:
    return CardInputs(
        package_arn=record.arn,
        model_data_url=record.package["InferenceSpecification"]["Containers"][0]["ModelDataUrl"],
        evaluation=record.evaluation,
        explanations=record.explanations,
        manifest=record.manifest,
        hyperparameters=dict(config.build.hyperparameters),
        quality_metric=config.build.quality.metric,
        quality_threshold=config.build.quality.threshold,
        evaluation_uri=record.evaluation_uri,
        explainability_uri=record.explainability_uri,
        use_case=config.use_case,
        mlflow=run.as_card_fields() if run else None,
    )


def _update(sm: SageMakerClient, arn: str, **fields: Any) -> None:
    try:
        sm.update_model_package(ModelPackageArn=arn, **fields)
    except botocore.exceptions.ClientError as exc:
        raise AwsError(
            f"could not annotate model package {arn}: {error_message(exc)}",
            hint="the build role needs sagemaker:UpdateModelPackage on the group's packages (infra/templates)",
        ) from exc


def run_params(config: Config, record: BuildRecord) -> dict[str, str]:
    data = record.manifest.get("input", {})
    return {
        **{k: str(v) for k, v in dict(config.build.hyperparameters).items()},
        "quality_metric": config.build.quality.metric,
        "quality_threshold": str(config.build.quality.threshold),
        "data_snapshot_sha256": str(data.get("sha256", "unknown")),
    }


@dataclass(frozen=True)
class TrackResult:
    package_arn: str
    run: RunLink
    lifecycle_stage: str


def track_execution(
    sm: SageMakerClient,
    s3: S3Client,
    config: Config,
    execution_arn: str,
    *,
    tracker: Tracker,
    progress: Callable[[str], None] = lambda _m: None,
) -> TrackResult:
    package = registered_package(sm, config, execution_arn)
    arn = package["ModelPackageArn"]
    with tempfile.TemporaryDirectory(prefix="mlops-track-") as tmp:
        record = read_build(s3, package, Path(tmp))
        # A package that already moved on (approved, deployed) keeps its stage; a fresh one is Registered.
        stage = package.get("ModelLifeCycle") or registered_lifecycle(str(record.manifest.get("build_id", "?")))
        card = {"ModelCardContent": model_card_content(card_inputs(config, record, None)), "ModelCardStatus": "Draft"}
        _update(sm, arn, ModelCard=card, ModelLifeCycle=stage)
        progress(f"model card and lifecycle stage {stage['Stage']} on {arn}")
        run = tracker.log(record, params=run_params(config, record), metrics=quality_metrics(record.evaluation))
    card["ModelCardContent"] = model_card_content(card_inputs(config, record, run))
    _update(
        sm,
        arn,
        ModelCard=card,
        CustomerMetadataProperties={RUN_ID_KEY: run.run_id, EXPERIMENT_ID_KEY: run.experiment_id},
    )
    progress(f"MLflow run {run.run_url}" + ("" if run.created else " (already logged)"))
    return TrackResult(package_arn=arn, run=run, lifecycle_stage=stage["Stage"])


# ------------------------------------------------------------------------------------------- MLflow


def tracking_uri(config: Config, environ: Mapping[str, str] | None = None) -> str:
    """The configured server, else MLFLOW_TRACKING_URI (the twin sets it); refuse a silent local file store."""
    environ = os.environ if environ is None else environ
    uri = config.tracking.mlflow_uri or environ.get("MLFLOW_TRACKING_URI", "").strip()
    if not uri:
        raise TrackingError(
            "no MLflow tracking server is configured: tracking.mlflow_uri is null and MLFLOW_TRACKING_URI is unset",
            hint="set tracking.mlflow_uri in mlops.yaml to your SageMaker MLflow tracking server or App ARN "
            "(with the local profile, start the twin: `mlops --profile local local up`)",
        )
    return uri


def run_url(uri: str, experiment_id: str, run_id: str) -> str:
    """Where a person opens the run. Managed MLflow's UI is reached through a presigned URL (Studio, or
    `aws sagemaker create-presigned-mlflow-tracking-server-url`), so for an ARN this names the run."""
    if uri.startswith(("http://", "https://")):
        return f"{uri.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"
    return f"{uri} experiment {experiment_id} run {run_id}"


def wait_reachable(
    uri: str,
    timeout_seconds: float,
    *,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    probe: Callable[[str], None] | None = None,
) -> None:
    """Retry an http(s) server's /health with backoff until `timeout_seconds`; then raise TrackingError."""
    if not uri.startswith(("http://", "https://")):
        return  # managed MLflow: the plugin's signed calls carry MLflow's own retries

    def health(url: str) -> None:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=5) as response:  # noqa: S310 - http(s) only
            if response.status != 200:
                raise OSError(f"HTTP {response.status}")

    check = probe or health
    deadline = clock() + timeout_seconds
    interval = 0.1
    while True:
        try:
            check(uri)
            return
        except (OSError, urllib.error.URLError) as exc:
            remaining = deadline - clock()
            if remaining <= 0:
                raise TrackingError(
                    f"the MLflow tracking server {uri} did not answer within {timeout_seconds:.0f}s ({exc})",
                    hint="the package's reports are safe in S3; when the server is back, record this build with "
                    "`mlops build track --execution ARN` (it logs the run once)",
                ) from exc
            sleep(min(interval, remaining))
            interval = min(interval * 2, 2.0)


class MlflowTracker:
    """Logs through MLflow's client: the same code for the twin's server and for SageMaker managed MLflow
    (an ARN tracking URI makes the `sagemaker-mlflow` plugin sign each request with the AWS credentials)."""

    def __init__(
        self,
        uri: str,
        experiment: str,
        *,
        connect_timeout_seconds: float,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.uri = uri
        self.experiment = experiment
        self.connect_timeout_seconds = connect_timeout_seconds
        self.sleep = sleep
        self.clock = clock

    def _client(self) -> Any:
        # The sagemaker-mlflow plugin's header provider parses the *global* tracking URI as an ARN on every
        # request and logs a warning when it is a URL; it adds nothing for a URL, so quiet it there.
        if not self.uri.startswith("arn:"):
            logging.getLogger("mlflow.tracking.request_header.registry").setLevel(logging.ERROR)
        import mlflow
        from mlflow.tracking import MlflowClient

        mlflow.set_tracking_uri(self.uri)
        return MlflowClient(tracking_uri=self.uri)

    def log(self, record: BuildRecord, *, params: Mapping[str, str], metrics: Mapping[str, float]) -> RunLink:
        wait_reachable(self.uri, self.connect_timeout_seconds, sleep=self.sleep, clock=self.clock)
        try:
            return self._log(record, params, metrics)
        except TrackingError:
            raise
        except Exception as exc:  # MLflow raises MlflowException or requests' errors; keep the cause
            raise TrackingError(
                f"logging the MLflow run for {record.arn} to {self.uri} failed: {exc}",
                hint="when the server is back, re-run `mlops build track --execution ARN` (it logs the run once)",
            ) from exc

    def _log(self, record: BuildRecord, params: Mapping[str, str], metrics: Mapping[str, float]) -> RunLink:
        from mlflow.entities import Metric, Param, RunTag

        client = self._client()
        experiment = client.get_experiment_by_name(self.experiment)
        experiment_id = experiment.experiment_id if experiment else client.create_experiment(self.experiment)
        execution_arn = str(record.package.get("MetadataProperties", {}).get("GeneratedBy", ""))
        existing = client.search_runs(
            [experiment_id],
            filter_string=f"tags.`{EXECUTION_TAG}` = '{execution_arn}' and attributes.status = 'FINISHED'",
            max_results=1,
        )
        if existing:
            run_id = existing[0].info.run_id
            return RunLink(self.uri, experiment_id, run_id, run_url(self.uri, experiment_id, run_id), created=False)
        manifest = record.manifest
        tags = {
            EXECUTION_TAG: execution_arn,
            "mlops.model_package_arn": record.arn,
            "mlops.git_commit": str(manifest.get("git_commit", "unknown")),
            "mlops.build_id": str(manifest.get("build_id", "unknown")),
            "mlops.branch": str(manifest.get("branch", "unknown")),
            "mlops.data_snapshot_uri": str(manifest.get("input", {}).get("uri", "unknown")),
            "mlflow.source.git.commit": str(manifest.get("git_commit", "unknown")),
        }
        run = client.create_run(experiment_id, run_name=str(manifest.get("build_id") or record.arn.rsplit("/", 1)[-1]))
        run_id = run.info.run_id
        try:
            stamp = int(time.time() * 1000)
            client.log_batch(
                run_id,
                metrics=[Metric(name, value, stamp, 0) for name, value in metrics.items()],
                params=[Param(name, value) for name, value in params.items()],
                tags=[RunTag(name, value) for name, value in tags.items()],
            )
            for name, path in record.files.items():
                client.log_artifact(run_id, str(path), "model" if name == "model.tar.gz" else "evaluation")
        except BaseException:
            _terminate(client, run_id, "FAILED")
            raise
        _terminate(client, run_id, "FINISHED")
        return RunLink(self.uri, experiment_id, run_id, run_url(self.uri, experiment_id, run_id), created=True)


def _terminate(client: Any, run_id: str, status: str) -> None:
    # MLflow prints the run's links to stdout here; stdout is the command's JSON (the pipeline parses it).
    with contextlib.redirect_stdout(sys.stderr):
        client.set_terminated(run_id, status=status)


def tracker_for(config: Config, environ: Mapping[str, str] | None = None) -> MlflowTracker:
    return MlflowTracker(
        tracking_uri(config, environ),
        config.tracking.experiment_name or config.project.name,
        connect_timeout_seconds=config.tracking.connect_timeout_seconds,
    )


def prefetch_mlflow() -> None:
    """Import MLflow's client on a thread: `build run --wait` starts this while the execution runs, so
    the 1.3 s import overlaps the wait instead of following it."""
    import threading

    def load() -> None:
        import mlflow.tracking  # noqa: F401

    threading.Thread(target=load, name="mlflow-import", daemon=True).start()
