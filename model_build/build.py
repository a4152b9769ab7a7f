"""Upsert, run and clean up the build pipeline in the automation account (the I/O layer).

Pure decisions live in `plan.py` and `layout.py`; the definition comes from `pipeline.py`. Clients,
the clock and sleep are passed in, so every poll and every failure path is testable without waiting.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import botocore.exceptions

from mlops.core.aws import error_code, error_message
from mlops.core.config import Config
from mlops.core.errors import AwsError, BuildError, PipelineExecutionFailed
from model_build import data, render_cache
from model_build.layout import (
    RESERVED_SEGMENTS,
    BucketLayout,
    branch_slug,
    is_main_branch,
    normalize_branch,
    pipeline_name,
    sha256_of_blobs,
)
from model_build.plan import TERMINAL_STATUSES, UpsertPlan, first_failed_step, plan_upsert

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import CopySourceTypeDef, ObjectIdentifierTypeDef
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sagemaker.type_defs import TagTypeDef

STEPS_DIR = Path(__file__).resolve().parent / "steps"
# Which files each step's code bundle holds. inference.py travels with train.py into the model. Every
# bundle also holds the use case's `use_case.json` (UseCase.step_spec), which the scripts read.
CODE_BUNDLES: dict[str, tuple[str, ...]] = {
    "preprocess": ("preprocess.py", "baseline.py"),
    "train": ("train.py", "inference.py"),
    "evaluate": ("evaluate.py", "baseline.py"),
}
STEP_SPEC_FILE = "use_case.json"
OVERRIDES_DIR = "steps"  # <use case>/steps/<file>.py replaces model_build/steps/<file>.py for that use case


def step_files(config: Config) -> dict[str, bytes]:
    """The step scripts of the chosen use case: the generic ones, each replaced by the use case's own file of
    the same name, plus any extra modules it adds (they travel in every bundle), plus use_case.json."""
    files = {path.name: path.read_bytes() for path in sorted(STEPS_DIR.glob("*.py")) if path.name != "__init__.py"}
    overrides = config.use_case_dir / OVERRIDES_DIR
    if overrides.is_dir():
        files.update({path.name: path.read_bytes() for path in sorted(overrides.glob("*.py"))})
    files[STEP_SPEC_FILE] = (json.dumps(config.use_case.step_spec(), indent=2, sort_keys=True) + "\n").encode()
    return files


def bundle_files(files: Mapping[str, bytes], bundle: str) -> dict[str, bytes]:
    generic = {path.name for path in STEPS_DIR.glob("*.py")}
    extra = [name for name in files if name not in generic and name != STEP_SPEC_FILE]
    names = [*CODE_BUNDLES[bundle], *extra, STEP_SPEC_FILE]
    return {name: files[name] for name in names}


@dataclass(frozen=True)
class Upload:
    key: str
    body: bytes


@dataclass(frozen=True)
class RenderedBuild:
    pipeline_name: str
    definition: str
    role_arn: str
    code_uris: dict[str, str]
    input_data_uri: str
    input_sha256: str
    uploads: tuple[Upload, ...] = field(repr=False)

    @property
    def definition_sha256(self) -> str:
        return hashlib.sha256(self.definition.encode()).hexdigest()


def render(config: Config, branch: str, *, cache: bool = True) -> RenderedBuild:
    """Render the definition and the content-addressed objects it refers to. No AWS call.

    The definition comes from the render cache when its inputs are unchanged (`render_cache`).
    """
    layout = BucketLayout(config.build.artifact_bucket, config.project.name)
    uploads: list[Upload] = []
    code_uris: dict[str, str] = {}
    files = step_files(config)
    for bundle in CODE_BUNDLES:
        contents = bundle_files(files, bundle)
        digest = sha256_of_blobs(contents.items())
        for file_name, body in contents.items():
            uploads.append(Upload(layout.code_key(digest, file_name), body))
        code_uris[bundle] = layout.uri(layout.code_key(digest, ""))
    source = config.use_case.data.source
    if source.startswith("s3://"):
        # Read at run time through the build's client: `start` snapshots the object (its version) into data/.
        input_uri, data_sha = source, ""
    else:
        file_name, dataset = data.source_csv_bytes(config.use_case, config.use_case_dir)
        data.check_shape(config.use_case, dataset)
        data_sha = hashlib.sha256(dataset).hexdigest()
        uploads.append(Upload(layout.data_key(data_sha, file_name), dataset))
        input_uri = layout.uri(layout.data_key(data_sha, ""))
    name = pipeline_name(config.build.pipeline_name, branch)
    output_prefix_uri = layout.uri(layout.branch_prefix(branch)).rstrip("/")
    main_line = is_main_branch(branch)
    arguments = {
        "pipeline_name": name,
        "code_uris": code_uris,
        "input_data_uri": input_uri,
        "output_prefix_uri": output_prefix_uri,
        "main_line": main_line,
    }

    def render_with_sdk() -> str:
        from model_build import pipeline  # the only module that imports the SageMaker SDK

        return pipeline.render_definition(
            config,
            pipeline_name=name,
            code_uris=code_uris,
            input_data_uri=input_uri,
            output_prefix_uri=output_prefix_uri,
            main_line=main_line,
        )

    definition, _ = render_cache.cached_render(
        render_cache.render_key(config.model_dump(mode="json"), arguments),
        render_with_sdk,
        render_cache.cache_dir() if cache else None,
    )
    return RenderedBuild(
        pipeline_name=name,
        definition=definition,
        role_arn=config.execution_role_arn(),
        code_uris=code_uris,
        input_data_uri=input_uri,
        input_sha256=data_sha,
        uploads=tuple(uploads),
    )


def _tags(config: Config, branch: str) -> list[TagTypeDef]:
    return [
        {"Key": "mlops:project", "Value": config.project.name},
        {"Key": "mlops:branch", "Value": normalize_branch(branch)[:256]},
        {"Key": "mlops:managed-by", "Value": "mlops-cli"},
    ]


def _object_exists(s3: S3Client, bucket: str, key: str) -> bool:
    try:
        s3.head_object(Bucket=bucket, Key=key)
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) in ("404", "NoSuchKey", "NotFound"):
            return False
        raise AwsError(
            f"could not check s3://{bucket}/{key}: {error_message(exc)}",
            hint="check that the build role may s3:GetObject on the artifact bucket",
        ) from exc
    return True


def ensure_uploaded(s3: S3Client, config: Config, uploads: tuple[Upload, ...]) -> list[str]:
    """Put each content-addressed object that is not there yet; return the keys written."""
    bucket = config.build.artifact_bucket
    written = []
    for upload in uploads:
        if _object_exists(s3, bucket, upload.key):
            continue
        try:
            if config.build.kms_key_id:
                s3.put_object(
                    Bucket=bucket,
                    Key=upload.key,
                    Body=upload.body,
                    ServerSideEncryption="aws:kms",
                    SSEKMSKeyId=config.build.kms_key_id,
                )
            else:
                s3.put_object(Bucket=bucket, Key=upload.key, Body=upload.body)
        except botocore.exceptions.ClientError as exc:
            raise AwsError(
                f"could not upload s3://{bucket}/{upload.key}: {error_message(exc)}",
                hint="check the artifact bucket exists (infra/) and the build role may write to it and use its key",
            ) from exc
        written.append(upload.key)
    return written


def _is_missing_pipeline(exc: botocore.exceptions.ClientError) -> bool:
    # SageMaker answers ResourceNotFound; moto (the twin) answers ValidationException "Could not find".
    code = error_code(exc)
    message = str(exc.response.get("Error", {}).get("Message", "")).lower()
    return code == "ResourceNotFound" or (code == "ValidationException" and "could not find" in message)


def live_pipeline(sm: SageMakerClient, name: str) -> tuple[str | None, str | None]:
    try:
        described = sm.describe_pipeline(PipelineName=name)
    except botocore.exceptions.ClientError as exc:
        if _is_missing_pipeline(exc):
            return None, None
        raise AwsError(f"could not describe pipeline {name}: {error_message(exc)}") from exc
    return described.get("PipelineDefinition"), described.get("RoleArn")


def upsert(
    sm: SageMakerClient, s3: S3Client, config: Config, rendered: RenderedBuild, branch: str, *, dry_run: bool = False
) -> UpsertPlan:
    live_definition, live_role = live_pipeline(sm, rendered.pipeline_name)
    plan = plan_upsert(rendered.pipeline_name, rendered.definition, rendered.role_arn, live_definition, live_role)
    if dry_run or plan.action == "unchanged":
        return plan
    ensure_uploaded(s3, config, rendered.uploads)
    description = f"{config.project.name} model build ({branch}), managed by mlops"
    try:
        if plan.action == "create":
            sm.create_pipeline(
                PipelineName=rendered.pipeline_name,
                PipelineDefinition=rendered.definition,
                RoleArn=rendered.role_arn,
                PipelineDescription=description,
                PipelineDisplayName=rendered.pipeline_name,
                Tags=_tags(config, branch),
                ClientRequestToken=rendered.definition_sha256[:64],
            )
        else:
            sm.update_pipeline(
                PipelineName=rendered.pipeline_name,
                PipelineDefinition=rendered.definition,
                RoleArn=rendered.role_arn,
                PipelineDescription=description,
            )
    except botocore.exceptions.ClientError as exc:
        raise BuildError(
            f"{plan.action} of pipeline {rendered.pipeline_name} failed: {error_message(exc)}",
            hint="run `mlops build upsert --dry-run` to see the definition, and check the build role's permissions",
        ) from exc
    return plan


def azure_devops_run(environ: Mapping[str, str]) -> dict[str, str] | None:
    """The Azure Pipelines run this command runs in (its predefined variables), for the lineage; None outside."""
    run_id = environ.get("BUILD_BUILDID", "").strip()
    if not run_id:
        return None
    collection = environ.get("SYSTEM_COLLECTIONURI") or environ.get("SYSTEM_TEAMFOUNDATIONCOLLECTIONURI") or ""
    project = environ.get("SYSTEM_TEAMPROJECT", "")
    url = f"{collection.rstrip('/')}/{project}/_build/results?buildId={run_id}" if collection and project else ""
    return {"run_id": run_id, "run_url": url, "pipeline": environ.get("BUILD_DEFINITIONNAME", "")}


@dataclass(frozen=True)
class Execution:
    arn: str
    build_id: str
    manifest_uri: str


def start(
    sm: SageMakerClient,
    s3: S3Client,
    config: Config,
    rendered: RenderedBuild,
    *,
    branch: str,
    commit: str,
    build_id: str,
) -> Execution:
    """Start an execution for this commit; idempotent per build id (ClientRequestToken)."""
    if live_pipeline(sm, rendered.pipeline_name)[0] is None:
        raise BuildError(
            f"pipeline {rendered.pipeline_name} does not exist",
            hint="run `mlops build upsert` first (the build pipeline does both on main)",
        )
    ensure_uploaded(s3, config, rendered.uploads)
    layout = BucketLayout(config.build.artifact_bucket, config.project.name)
    input_record: dict[str, object] = {"uri": rendered.input_data_uri, "sha256": rendered.input_sha256}
    input_uri = rendered.input_data_uri
    if config.use_case.data.source.startswith("s3://"):
        input_uri, input_record = snapshot_s3_source(s3, config, layout)
    parameters = {"GitCommit": commit, "BuildId": build_id, "InputDataUrl": input_uri}
    try:
        response = sm.start_pipeline_execution(
            PipelineName=rendered.pipeline_name,
            PipelineExecutionDisplayName=build_id,
            PipelineExecutionDescription=f"commit {commit} on {branch}",
            PipelineParameters=[{"Name": k, "Value": v} for k, v in parameters.items()],
            ClientRequestToken=hashlib.sha256(f"{rendered.pipeline_name}/{build_id}".encode()).hexdigest()[:64],
        )
    except botocore.exceptions.ClientError as exc:
        raise BuildError(f"could not start pipeline {rendered.pipeline_name}: {error_message(exc)}") from exc
    arn = response["PipelineExecutionArn"]
    manifest: dict[str, object] = {
        "pipeline_name": rendered.pipeline_name,
        "pipeline_execution_arn": arn,
        "definition_sha256": rendered.definition_sha256,
        "build_id": build_id,
        "git_commit": commit,
        "branch": branch,
        "input": input_record,
        "code": rendered.code_uris,
        "outputs_prefix": layout.uri(layout.run_prefix(branch, build_id)),
    }
    pipeline_run = azure_devops_run(os.environ)
    if pipeline_run:
        manifest["azure_devops"] = pipeline_run
    key = layout.manifest_key(branch, build_id)
    ensure_uploaded(s3, config, (Upload(key, json.dumps(manifest, indent=2, sort_keys=True).encode()),))
    return Execution(arn=arn, build_id=build_id, manifest_uri=layout.uri(key))


def snapshot_s3_source(s3: S3Client, config: Config, layout: BucketLayout) -> tuple[str, dict[str, object]]:
    """Freeze the use case's S3 data for this build: copy the object's current version into data/ (server side).

    The copy's key carries a digest of the source URI and its version (or ETag, unversioned buckets), so a
    changed object is a new input (SageMaker's step cache misses) and an unchanged one hits as before. The
    header is checked first: a file without the use case's columns fails here, before any job starts.
    """
    use_case = config.use_case
    source = use_case.data.source
    bucket, _, key = source.removeprefix("s3://").partition("/")
    try:
        head = s3.head_object(Bucket=bucket, Key=key)
        version = head.get("VersionId") if head.get("VersionId") not in (None, "null") else None
        if version:
            first = s3.get_object(Bucket=bucket, Key=key, Range="bytes=0-65535", VersionId=version)["Body"].read()
        else:
            first = s3.get_object(Bucket=bucket, Key=key, Range="bytes=0-65535")["Body"].read()
    except botocore.exceptions.ClientError as exc:
        raise BuildError(
            f"use case {use_case.name!r}: could not read its data {source}: {error_message(exc)}",
            hint="check the object exists and that the build role (mlops-deploy in automation) and the pipeline "
            "execution role may s3:GetObject on it (and kms:Decrypt with its key)",
        ) from exc
    etag = str(head.get("ETag", "")).strip('"')
    header = next(iter(first.decode("utf-8", errors="replace").splitlines()), "")
    data.check_header(use_case, header, where=source)
    identity = hashlib.sha256(f"{source}\0{version or etag}".encode()).hexdigest()
    snapshot_key = layout.data_key(f"s3-{identity}", key.rsplit("/", 1)[-1])
    if not _object_exists(s3, config.build.artifact_bucket, snapshot_key):
        copy_source: CopySourceTypeDef = {"Bucket": bucket, "Key": key}
        if version:
            copy_source["VersionId"] = version
        try:
            if config.build.kms_key_id:
                s3.copy_object(
                    Bucket=config.build.artifact_bucket,
                    Key=snapshot_key,
                    CopySource=copy_source,
                    ServerSideEncryption="aws:kms",
                    SSEKMSKeyId=config.build.kms_key_id,
                )
            else:
                s3.copy_object(Bucket=config.build.artifact_bucket, Key=snapshot_key, CopySource=copy_source)
        except botocore.exceptions.ClientError as exc:
            raise BuildError(
                f"use case {use_case.name!r}: could not snapshot {source} into the artifact bucket: "
                f"{error_message(exc)}",
                hint="the build role needs s3:GetObject (and GetObjectVersion) on the source and s3:PutObject on the "
                "artifact bucket; objects above 5 GB need a multipart copy (split the data into files below 5 GB)",
            ) from exc
    snapshot_uri = layout.uri(layout.data_key(f"s3-{identity}", ""))
    record: dict[str, object] = {
        "uri": snapshot_uri,
        "source": source,
        "version_id": version,
        "etag": etag,
        "size": head.get("ContentLength"),
    }
    return snapshot_uri, record


def wait(
    sm: SageMakerClient,
    execution_arn: str,
    *,
    timeout_seconds: float,
    poll_seconds: float = 30.0,
    first_poll_seconds: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    progress: Callable[[str], None] = lambda _msg: None,
) -> str:
    """Poll until the execution ends or the bound passes; raise on Failed/Stopped/timeout.

    Polls back off from `first_poll_seconds` to `poll_seconds`, so a short execution (the twin's, or
    a fully cached one) is seen at once and a long one costs few calls.
    """
    deadline = clock() + timeout_seconds
    interval = min(first_poll_seconds, poll_seconds)
    last = None
    while True:
        status = sm.describe_pipeline_execution(PipelineExecutionArn=execution_arn)["PipelineExecutionStatus"]
        if status != last:
            progress(f"execution {execution_arn.rsplit('/', 1)[-1]}: {status}")
            last = status
        if status == "Succeeded":
            return status
        if status in TERMINAL_STATUSES:
            raise _explain_failure(sm, execution_arn, status)
        remaining = deadline - clock()
        if remaining <= 0:
            raise BuildError(
                f"execution {execution_arn} is still {status} after {timeout_seconds:.0f}s",
                hint="it keeps running in SageMaker: follow it in Studio or with "
                f"`aws sagemaker describe-pipeline-execution --pipeline-execution-arn {execution_arn}`, "
                "or raise build.wait_timeout_seconds",
            )
        sleep(min(interval, remaining))
        interval = min(interval * 2, poll_seconds)


def _explain_failure(sm: SageMakerClient, execution_arn: str, status: str) -> PipelineExecutionFailed:
    try:
        steps = sm.list_pipeline_execution_steps(PipelineExecutionArn=execution_arn, SortOrder="Ascending")[
            "PipelineExecutionSteps"
        ]
    except botocore.exceptions.ClientError as exc:
        return PipelineExecutionFailed(
            f"execution {execution_arn} ended {status}; its steps could not be listed ({error_message(exc)})",
            hint="open the execution in SageMaker Studio to see which step failed",
        )
    culprit = first_failed_step(steps)
    described = sm.describe_pipeline_execution(PipelineExecutionArn=execution_arn)
    if culprit is None:
        reason = described.get("FailureReason") or "no step reported a failure"
        return PipelineExecutionFailed(f"execution {execution_arn} ended {status}: {reason}")
    reason = culprit.failure_reason or "no reason given"
    return PipelineExecutionFailed(
        f"execution ended {status}: step {culprit.name} {culprit.status}: {reason}",
        hint=f"see the step's job logs in CloudWatch; execution {execution_arn}",
    )


BRANCH_TAG = "mlops:branch"
PROJECT_TAG = "mlops:project"


@dataclass(frozen=True)
class CleanupResult:
    pipeline_deleted: bool
    objects_deleted: int


@dataclass(frozen=True)
class CleanupPlan:
    """What a cleanup deletes: shown in full before anything is deleted."""

    branch: str
    pipeline_name: str
    pipeline_exists: bool
    bucket: str
    prefix: str
    versions: tuple[ObjectIdentifierTypeDef, ...]

    def describe(self, shown: int = 5) -> list[str]:
        pipeline = f"pipeline {self.pipeline_name}" if self.pipeline_exists else "no pipeline (none exists)"
        lines = [
            f"cleanup of branch {self.branch!r}: {pipeline}, "
            f"{len(self.versions)} object version(s) under s3://{self.bucket}/{self.prefix}"
        ]
        lines += [f"  {v['Key']} (version {v.get('VersionId')})" for v in self.versions[:shown]]
        if len(self.versions) > shown:
            lines.append(f"  ... and {len(self.versions) - shown} more")
        return lines


def _refuse(branch: str, why: str, hint: str) -> BuildError:
    return BuildError(f"refusing to clean up {branch!r}: {why}", hint=hint)


def _pipeline_tags(sm: SageMakerClient, arn: str) -> dict[str, str]:
    try:
        tags = sm.list_tags(ResourceArn=arn, MaxResults=100).get("Tags", [])
    except botocore.exceptions.ClientError as exc:
        raise AwsError(
            f"could not read the tags of {arn}: {error_message(exc)}",
            hint="cleanup needs sagemaker:ListTags to know which branch a pipeline belongs to",
        ) from exc
    return {t["Key"]: t["Value"] for t in tags}


def _check_owners(sm: SageMakerClient, config: Config, branch: str, name: str, prefix: str) -> bool:
    """Whether the branch's pipeline exists; refuse when it, or another live pipeline, says otherwise."""
    layout = BucketLayout(config.build.artifact_bucket, config.project.name)
    exists = False
    paginator = sm.get_paginator("list_pipelines")
    for page in paginator.paginate(PipelineNamePrefix=config.build.pipeline_name):
        for summary in page.get("PipelineSummaries", []):
            tags = _pipeline_tags(sm, summary["PipelineArn"])
            owner = tags.get(BRANCH_TAG)
            if summary["PipelineName"] == name:
                exists = True
                if owner != branch:
                    raise _refuse(
                        branch,
                        f"pipeline {name} is tagged {BRANCH_TAG}={owner!r}, not this branch",
                        "it was not created by `mlops build upsert` for this branch; delete it by hand if it is stale",
                    )
                continue
            if owner is None or tags.get(PROJECT_TAG) != config.project.name:
                continue
            try:
                other_prefix = layout.branch_prefix(owner)
            except ValueError:
                continue
            if other_prefix == prefix:
                raise _refuse(
                    branch,
                    f"live pipeline {summary['PipelineName']} (branch {owner!r}) writes to the same prefix {prefix}",
                    "clean up or rename that pipeline's branch first",
                )
    return exists


def plan_cleanup(sm: SageMakerClient, s3: S3Client, config: Config, branch: str) -> CleanupPlan:
    """Decide what a branch's cleanup deletes, refusing the main line, reserved prefixes and shared ones."""
    if is_main_branch(branch):
        raise _refuse(
            branch,
            "it is the main line, whose runs are the audit trail and hold what the endpoints serve",
            "pass the merged feature branch, e.g. --branch feature/x",
        )
    branch = normalize_branch(branch)
    try:
        slug = branch_slug(branch)
    except ValueError as exc:
        raise _refuse(branch, str(exc), "pass the branch's name as git shows it") from exc
    if slug in RESERVED_SEGMENTS or "/" in slug:
        raise _refuse(branch, f"it maps to the reserved prefix {slug!r}", "reserved prefixes are never cleaned up")
    layout = BucketLayout(config.build.artifact_bucket, config.project.name)
    prefix = layout.branch_prefix(branch)
    name = pipeline_name(config.build.pipeline_name, branch)
    exists = _check_owners(sm, config, branch, name, prefix)
    versions: list[ObjectIdentifierTypeDef] = []
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=config.build.artifact_bucket, Prefix=prefix):
        for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
            versions.append({"Key": entry["Key"], "VersionId": entry["VersionId"]})
    return CleanupPlan(branch, name, exists, config.build.artifact_bucket, prefix, tuple(versions))


def cleanup(
    sm: SageMakerClient,
    s3: S3Client,
    config: Config,
    branch: str,
    *,
    dry_run: bool = False,
    progress: Callable[[str], None] = lambda _msg: None,
) -> CleanupResult:
    """Delete a merged branch's pipeline and every object version under its prefix, after showing the plan."""
    plan = plan_cleanup(sm, s3, config, branch)
    for line in plan.describe():
        progress(line)
    if dry_run:
        return CleanupResult(pipeline_deleted=plan.pipeline_exists, objects_deleted=len(plan.versions))
    name, prefix = plan.pipeline_name, plan.prefix
    if plan.pipeline_exists:
        try:
            sm.delete_pipeline(PipelineName=name, ClientRequestToken=hashlib.sha256(name.encode()).hexdigest()[:64])
        except botocore.exceptions.ClientError as exc:
            raise BuildError(f"could not delete pipeline {name}: {error_message(exc)}") from exc
    versions = list(plan.versions)
    for start_at in range(0, len(versions), 1000):
        batch = versions[start_at : start_at + 1000]
        response = s3.delete_objects(Bucket=plan.bucket, Delete={"Objects": batch, "Quiet": True})
        errors = response.get("Errors", [])
        if errors:
            first = errors[0]
            raise AwsError(
                f"{len(errors)} object(s) under s3://{plan.bucket}/{prefix} could not be deleted, "
                f"e.g. {first.get('Key')}: {first.get('Code')} {first.get('Message')}",
                hint="re-run the cleanup; check the role may s3:DeleteObjectVersion",
            )
    return CleanupResult(pipeline_deleted=plan.pipeline_exists, objects_deleted=len(versions))


def branch_pipelines(sm: SageMakerClient, config: Config) -> dict[str, str]:
    """Branch -> pipeline name of this use case's branch pipelines (by their tags; the main line excluded)."""
    found: dict[str, str] = {}
    paginator = sm.get_paginator("list_pipelines")
    for page in paginator.paginate(PipelineNamePrefix=config.build.pipeline_name):
        for summary in page.get("PipelineSummaries", []):
            tags = _pipeline_tags(sm, summary["PipelineArn"])
            branch = tags.get(BRANCH_TAG)
            if branch and tags.get(PROJECT_TAG) == config.project.name and not is_main_branch(branch):
                found[branch] = summary["PipelineName"]
    return found


def stale_branches(pipelines: dict[str, str], live: set[str]) -> list[str]:
    """The branches that have a pipeline but no longer exist (merged and deleted, or deleted). Pure."""
    return sorted(branch for branch in pipelines if normalize_branch(branch) not in live)
