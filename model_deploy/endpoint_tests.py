"""`mlops test --stage S`: gather what the endpoint suite needs, run it, and record a staging pass.

Which package is tested is not the caller's word either: it is the one the stage's last deployment
record names, and the endpoint must be InService on that record's config serving that record's model.
The expected quality comes from the package's own evaluation report in the registry, the rows from
the build's test split. On success in staging the pass is written to the automation account, where
`mlops deploy --stage prod` looks for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import botocore.exceptions

from mlops.core.aws import error_message
from mlops.core.config import Config
from mlops.core.errors import DeployError, EndpointTestsFailed
from model_deploy import record_store
from model_deploy.apply import Expected, confirm_serving
from model_deploy.clients import AutomationClients, StageClients, is_missing
from model_deploy.deploy import Runtime, deployment_parameter, describe_package, staging_pass_parameter
from model_deploy.endpoint_checks import package_task, parse_test_split, registered_metric
from model_deploy.package import PackageArn, PackageInfo, StagingPass
from model_deploy.suite import SuiteContext, SuiteResult, run_suite

EVALUATION_SUFFIX = "/evaluate/evaluation/evaluation.json"
TEST_SPLIT_SUFFIX = "/preprocess/test/test.csv"


@dataclass(frozen=True)
class EndpointTestOutcome:
    package_arn: str
    result: SuiteResult
    staging_pass_written: str | None


def resolve_test_data_uri(package: PackageInfo, override: str | None) -> str:
    """Where the build's test split is: --test-data, the package's `test_data_uri`, or beside its evaluation."""
    if override:
        return override
    if package.customer_metadata.get("test_data_uri"):
        return package.customer_metadata["test_data_uri"]
    if package.metrics_uri and package.metrics_uri.endswith(EVALUATION_SUFFIX):
        return package.metrics_uri[: -len(EVALUATION_SUFFIX)] + TEST_SPLIT_SUFFIX
    raise DeployError(
        f"cannot tell where the test split of {package.arn} is: it has no test_data_uri metadata and its "
        f"evaluation report {package.metrics_uri!r} is not where the build writes it",
        hint="pass --test-data s3://.../test.csv (the Preprocess step's 'test' output)",
    )


def read_text(automation: AutomationClients, uri: str, what: str) -> str:
    parsed = urlparse(uri)
    if parsed.scheme != "s3":
        try:
            return Path(uri).read_text(encoding="utf-8")
        except OSError as exc:
            raise DeployError(
                f"could not read {what} {uri}: {exc}", hint="pass an s3:// URI or a readable file"
            ) from exc
    bucket, key = parsed.netloc, parsed.path.lstrip("/")
    try:
        return automation.s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    except botocore.exceptions.ClientError as exc:
        hint = "check the automation credentials may s3:GetObject on the artifact bucket"
        if is_missing(exc) or exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
            hint = (
                "the build's Preprocess step may have been cached, so its outputs live under an earlier build id: "
                "pass --test-data with the URI the step reported"
            )
        raise DeployError(f"could not read {what} {uri}: {error_message(exc)}", hint=hint) from exc


def run_endpoint_tests(
    config: Config,
    stage: str,
    *,
    automation: AutomationClients,
    stage_clients: StageClients,
    junit_path: Path,
    expected_package_arn: str | None = None,
    test_data: str | None = None,
    runtime: Runtime | None = None,
) -> EndpointTestOutcome:
    runtime = runtime or Runtime()
    settings = config.deploy.stage(stage)
    if settings.inference.type == "batch":
        raise DeployError(
            f"stage {stage} deploys batch transform: there is no endpoint to test",
            hint="the deployment itself scores the configured sample; check its transform output",
        )
    history = record_store.read_history(stage_clients.ssm, deployment_parameter(config, stage))
    if not history:
        raise DeployError(
            f"nothing has been deployed to {stage} endpoint {settings.endpoint_name}: no deployment record",
            hint=f"run `mlops deploy --stage {stage} --model-package-arn ARN` first",
        )
    record = history[-1]
    if expected_package_arn and record.package_arn != expected_package_arn:
        raise DeployError(
            f"{stage} endpoint {settings.endpoint_name} was last deployed with {record.package_arn}; expected "
            f"{expected_package_arn}",
            hint="deploy the package you mean to test first; the tests only vouch for what the endpoint serves",
        )
    confirm_serving(
        stage_clients.sagemaker, settings.endpoint_name, Expected(record.endpoint_config, record.model_name)
    )
    arn = PackageArn.parse(record.package_arn)
    package = describe_package(automation, arn)
    if package is None:
        raise DeployError(f"model package {record.package_arn} of the live deployment is not in the registry")
    if not package.metrics_uri:
        raise DeployError(f"model package {package.arn} has no ModelQuality statistics to compare against")
    evaluation = json.loads(read_text(automation, package.metrics_uri, "evaluation report"))
    metric = config.build.quality.metric
    try:
        task = package_task(package.customer_metadata)
        registered = registered_metric(evaluation, metric, task)
        classes = evaluation.get("classes") if task != "regression" else None
        split = parse_test_split(
            read_text(automation, resolve_test_data_uri(package, test_data), "test split"),
            task=task,
            classes=classes if isinstance(classes, list) else None,
        )
    except ValueError as exc:
        raise DeployError(
            f"{package.arn}: {exc}",
            hint="check the package's task metadata and the build's evaluation and preprocess outputs",
        ) from exc
    runtime.progress(
        f"testing {stage} endpoint {settings.endpoint_name} ({package.arn}, {task}, registered {metric} "
        f"{registered:.4f})"
    )
    context = SuiteContext(
        runtime=stage_clients.runtime,
        endpoint_name=settings.endpoint_name,
        split=split,
        metric=metric,
        registered_value=registered,
        tolerance=settings.tests.quality_tolerance,
        quality_rows=settings.tests.quality_rows,
        latency_requests=settings.tests.latency_requests,
        latency_p95_max_ms=settings.tests.latency_p95_max_ms,
        clock=runtime.clock,
    )
    result = run_suite(context, junit_path, suite_name=f"endpoint-tests-{stage}")
    if not result.passed:
        raise EndpointTestsFailed(
            f"the {stage} endpoint tests failed for {package.arn} (pytest exit code {result.exit_code}); "
            f"see {junit_path}",
            hint="fix the model or the endpoint; prod stays closed to this package until staging passes",
        )
    written = None
    if stage == "staging":
        written = staging_pass_parameter(config, arn)
        passed = StagingPass(
            package_arn=package.arn,
            passed_at=runtime.now().isoformat(timespec="seconds"),
            endpoint_name=settings.endpoint_name,
            measurements=result.measurements,
        )
        record_store.write_staging_pass(automation.ssm, written, passed)
    return EndpointTestOutcome(package.arn, result, written)
