"""The local step executor: runs a SageMaker pipeline definition (the JSON that would be upserted).

Processing and training steps run as subprocesses under the SageMaker container contract: the
container's `/opt/ml/...` is mapped into a per-job work directory, inputs are fetched from the twin's
S3 and outputs written back, training gets `/opt/ml/input/config/hyperparameters.json`, the
channels and the `SM_*` variables a framework toolkit sets, and its `/opt/ml/model` is tarred to
`<S3OutputPath>/<job>/output/model.tar.gz`. `PropertyFile`/`JsonGet`, conditions, `Fail` and
`RegisterModel` (into the twin's registry) behave as in SageMaker, and `CacheConfig` is honoured with
SageMaker's cache key (a step's image, code, inputs, environment and hyperparameters, not its outputs).

Differences from SageMaker, on purpose: the container image is not pulled; the step runs with this
machine's Python, whose numpy/pandas/scikit-learn/xgboost pins match the images the definition names,
in a process forked from a launcher that has imported those libraries once (`step_launcher`).
Instance types and counts are recorded, not provisioned (one local process per job).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tarfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops.local import step_launcher
from mlops.local.errors import UnsupportedDefinition
from mlops.local.expressions import Scope, evaluate_condition, json_path, referenced_steps, resolve

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sagemaker import SageMakerClient

OPT_ML = "/opt/ml/"
_PROCESSING_FIELDS = {
    "AppSpecification", "ProcessingInputs", "ProcessingOutputConfig", "ProcessingResources", "RoleArn",
    "StoppingCondition", "Environment", "NetworkConfig", "ExperimentConfig",
}  # fmt: skip
_TRAINING_FIELDS = {
    "AlgorithmSpecification", "HyperParameters", "InputDataConfig", "OutputDataConfig", "ResourceConfig", "RoleArn",
    "StoppingCondition", "Environment", "VpcConfig", "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption",
    "EnableManagedSpotTraining", "DebugHookConfig", "ProfilerConfig", "RetryStrategy", "ExperimentConfig",
}  # fmt: skip
_CACHE_KEY_FIELDS = {
    "Processing": ("AppSpecification", "Environment", "ProcessingInputs"),
    "Training": ("AlgorithmSpecification", "Environment", "HyperParameters", "InputDataConfig"),
}


def _boolean(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).lower()
    if text not in ("true", "false"):
        raise ValueError(text)
    return text == "true"


_PARAMETER_TYPES: dict[str, Callable[[Any], Any]] = {"Integer": int, "Float": float, "Boolean": _boolean}


class StepFailed(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ExecutionStopped(Exception):
    pass


@dataclass
class StepRecord:
    name: str
    type: str
    status: str = "Executing"
    start: float = 0.0
    end: float | None = None
    failure_reason: str | None = None
    cache_source_arn: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_api(self) -> dict[str, Any]:
        item: dict[str, Any] = {"StepName": self.name, "StepStatus": self.status, "StartTime": self.start}
        if self.end is not None:
            item["EndTime"] = self.end
        if self.failure_reason:
            item["FailureReason"] = self.failure_reason
        if self.cache_source_arn:
            item["CacheHitResult"] = {"SourcePipelineExecutionArn": self.cache_source_arn}
        if self.metadata:
            item["Metadata"] = self.metadata
        return item


@dataclass
class Execution:
    arn: str
    pipeline_name: str
    pipeline_arn: str
    display_name: str
    description: str
    parameters: dict[str, Any]
    status: str = "Executing"
    failure_reason: str | None = None
    created: float = field(default_factory=time.time)
    modified: float = field(default_factory=time.time)
    steps: list[StepRecord] = field(default_factory=list)
    stop_requested: threading.Event = field(default_factory=threading.Event)

    @property
    def execution_id(self) -> str:
        return self.arn.rsplit("/", 1)[-1]

    def describe(self) -> dict[str, Any]:
        item: dict[str, Any] = {
            "PipelineArn": self.pipeline_arn,
            "PipelineExecutionArn": self.arn,
            "PipelineExecutionDisplayName": self.display_name,
            "PipelineExecutionStatus": self.status,
            "PipelineExecutionDescription": self.description,
            "CreationTime": self.created,
            "LastModifiedTime": self.modified,
        }
        if self.failure_reason:
            item["FailureReason"] = self.failure_reason
        return item


def parse_duration(text: str) -> timedelta:
    """ISO 8601 durations as CacheConfig uses them (P30D, PT12H, P1W, P1DT2H)."""
    match = re.fullmatch(r"P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?", text)
    if not match or text in ("P", "PT"):
        raise ValueError(f"not an ISO 8601 duration: {text!r}")
    years, months, weeks, days, hours, minutes, seconds = (int(g) if g else 0 for g in match.groups())
    return timedelta(days=years * 365 + months * 30 + weeks * 7 + days, hours=hours, minutes=minutes, seconds=seconds)


class StepCache:
    """SageMaker's step cache: same step type and cache-key attributes, not expired -> reuse."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()

    def _load(self) -> dict[str, Any]:
        if not self.path.exists():
            return {}
        loaded: dict[str, Any] = json.loads(self.path.read_text())
        return loaded

    def lookup(self, key: str, expire_after: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._load().get(key)
        if entry is None:
            return None
        if self.clock() - float(entry["time"]) > parse_duration(expire_after).total_seconds():
            return None
        return entry  # type: ignore[no-any-return]

    def store(self, key: str, entry: dict[str, Any]) -> None:
        with self._lock:
            entries = self._load()
            entries[key] = {**entry, "time": self.clock()}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(entries, indent=1, sort_keys=True))
            tmp.replace(self.path)


def cache_key(step_type: str, resolved_arguments: Mapping[str, Any]) -> str:
    keyed = {name: resolved_arguments.get(name) for name in _CACHE_KEY_FIELDS[step_type]}
    return hashlib.sha256(json.dumps([step_type, keyed], sort_keys=True).encode()).hexdigest()


def sagemaker_output_encryption(kms_key: str | None) -> dict[str, str]:
    """How SageMaker writes a job's outputs to S3: SSE-KMS with the job's KmsKeyId, else the account's
    default S3 KMS key (OutputDataConfig / ProcessingOutputConfig `KmsKeyId`). Bucket policies that deny
    uploads without `s3:x-amz-server-side-encryption: aws:kms` rely on it."""
    return {"ServerSideEncryption": "aws:kms", **({"SSEKMSKeyId": kms_key} if kms_key else {})}


def _split_s3(uri: str, where: str) -> tuple[str, str]:
    if not isinstance(uri, str) or not uri.startswith("s3://"):
        raise UnsupportedDefinition(where, f"expected an s3:// URI, found {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


class Executor:
    def __init__(
        self,
        *,
        s3: S3Client,
        sagemaker: SageMakerClient,
        work_dir: Path,
        cache: StepCache,
        python: str = sys.executable,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.s3 = s3
        self.sagemaker = sagemaker
        self.work_dir = work_dir
        self.cache = cache
        self.python = python
        self.clock = clock
        self._process: step_launcher.StepProcess | None = None

    # ------------------------------------------------------------------------------------ run

    def run(self, definition: Mapping[str, Any], execution: Execution) -> Execution:
        try:
            scope = Scope(
                self._parameters(definition, execution.parameters),
                {
                    "PipelineExecutionId": execution.execution_id,
                    "PipelineExecutionArn": execution.arn,
                    "PipelineName": execution.pipeline_name,
                },
                read_property_file=lambda step, name, path: self._read_property_file(
                    definition, scope, step, name, path
                ),
            )
            for step in self._ordered(definition.get("Steps", [])):
                self._run_step(step, scope, execution)
            execution.status = "Succeeded"
        except StepFailed as failure:
            execution.status = "Failed"
            execution.failure_reason = failure.reason
        except ExecutionStopped:
            execution.status = "Stopped"
        except UnsupportedDefinition as error:
            execution.status = "Failed"
            execution.failure_reason = str(error).splitlines()[0]
        execution.modified = self.clock()
        return execution

    def stop(self, execution: Execution) -> None:
        execution.stop_requested.set()
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()

    def _parameters(self, definition: Mapping[str, Any], given: Mapping[str, Any]) -> dict[str, Any]:
        declared = {p["Name"]: p for p in definition.get("Parameters", [])}
        unknown = sorted(set(given) - set(declared))
        if unknown:
            raise StepFailed(f"unknown pipeline parameter(s) {unknown}; the pipeline declares {sorted(declared)}")
        values: dict[str, Any] = {}
        for name, spec in declared.items():
            raw = given.get(name, spec.get("DefaultValue"))
            if raw is None:
                raise StepFailed(f"pipeline parameter {name} has no value and no default")
            kind = spec.get("Type", "String")
            try:
                values[name] = _PARAMETER_TYPES.get(kind, str)(raw)
            except ValueError:
                raise StepFailed(f"pipeline parameter {name}: expected {kind}, found {raw!r}") from None
        return values

    def _ordered(self, steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Topological order over data references and DependsOn, stable in definition order."""
        by_name = {s["Name"]: s for s in steps}
        nested = set()
        for step in steps:
            if step.get("Type") == "Condition":
                for branch in ("IfSteps", "ElseSteps"):
                    nested |= {s["Name"] for s in step.get("Arguments", {}).get(branch, [])}
        ordered: list[dict[str, Any]] = []
        visiting: set[str] = set()

        def visit(step: dict[str, Any]) -> None:
            name = step["Name"]
            if any(s["Name"] == name for s in ordered):
                return
            if name in visiting:
                raise UnsupportedDefinition(f"step {name}", "is part of a dependency cycle")
            visiting.add(name)
            deps = referenced_steps(step.get("Arguments", {})) | set(step.get("DependsOn", []))
            for dep in sorted(deps, key=lambda d: list(by_name).index(d) if d in by_name else -1):
                if dep in by_name and dep not in nested:
                    visit(by_name[dep])
            visiting.discard(name)
            ordered.append(step)

        for step in steps:
            if step["Name"] not in nested:
                visit(step)
        return ordered

    def _run_step(self, step: dict[str, Any], scope: Scope, execution: Execution) -> None:
        if execution.stop_requested.is_set():
            raise ExecutionStopped
        name, kind = step["Name"], step.get("Type", "?")
        record = StepRecord(name=name, type=kind, start=self.clock())
        execution.steps.append(record)
        execution.modified = self.clock()
        handlers = {
            "Processing": self._processing,
            "Training": self._training,
            "Condition": self._condition,
            "Fail": self._fail,
            "RegisterModel": self._register,
        }
        try:
            handler = handlers.get(kind)
            if handler is None:
                raise UnsupportedDefinition(
                    f"step {name}", f"step type {kind!r} is not supported by the local executor"
                )
            follow_ups = handler(step, scope, execution, record)
        except StepFailed as failure:
            record.status, record.failure_reason, record.end = "Failed", failure.reason, self.clock()
            raise
        except UnsupportedDefinition as error:
            record.status, record.failure_reason, record.end = "Failed", str(error).splitlines()[0], self.clock()
            raise
        except ExecutionStopped:
            record.status, record.end = "Stopped", self.clock()
            raise
        record.status = "Succeeded"
        record.end = self.clock()
        execution.modified = record.end
        for nested in self._ordered(follow_ups or []):
            self._run_step(nested, scope, execution)

    # ------------------------------------------------------------------------------ step types

    def _resolved(self, step: dict[str, Any], scope: Scope, allowed: set[str]) -> dict[str, Any]:
        arguments = step.get("Arguments", {})
        unknown = sorted(set(arguments) - allowed)
        if unknown:
            raise UnsupportedDefinition(f"step {step['Name']}", f"field(s) {unknown} are not supported locally")
        resolved: dict[str, Any] = resolve(arguments, scope, f"step {step['Name']}")
        return resolved

    def _cached(
        self, step: dict[str, Any], kind: str, arguments: dict[str, Any], record: StepRecord
    ) -> tuple[str, dict[str, Any] | None]:
        key = cache_key(kind, arguments)
        config = step.get("CacheConfig") or {}
        if not config.get("Enabled"):
            return key, None
        entry = self.cache.lookup(key, str(config.get("ExpireAfter", "P30D")))
        if entry is not None:
            record.cache_source_arn = entry["execution_arn"]
        return key, entry

    def _job_step(
        self,
        step: dict[str, Any],
        scope: Scope,
        execution: Execution,
        record: StepRecord,
        kind: str,
        run_job: Callable[[str, dict[str, Any], Execution, str, Path], tuple[dict[str, Any], dict[str, Any]]],
    ) -> None:
        """Resolve, reuse a cached result or run the job, then publish its properties."""
        name = step["Name"]
        arguments = self._resolved(step, scope, _PROCESSING_FIELDS if kind == "Processing" else _TRAINING_FIELDS)
        key, cached = self._cached(step, kind, arguments, record)
        if cached is not None:
            scope.step_properties[name] = cached["properties"]
            record.metadata = cached["metadata"]
            return
        job = self._job_name(execution, name)
        properties, record.metadata = run_job(
            name, arguments, execution, job, self.work_dir / execution.execution_id / name
        )
        scope.step_properties[name] = properties
        self.cache.store(key, {"properties": properties, "metadata": record.metadata, "execution_arn": execution.arn})

    def _processing(
        self, step: dict[str, Any], scope: Scope, execution: Execution, record: StepRecord
    ) -> list[dict[str, Any]] | None:
        self._job_step(step, scope, execution, record, "Processing", self._run_processing)
        return None

    def _training(
        self, step: dict[str, Any], scope: Scope, execution: Execution, record: StepRecord
    ) -> list[dict[str, Any]] | None:
        self._job_step(step, scope, execution, record, "Training", self._run_training)
        return None

    def _run_processing(
        self, name: str, arguments: dict[str, Any], execution: Execution, job: str, root: Path
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        for index, item in enumerate(arguments.get("ProcessingInputs", [])):
            where = f"step {name}: ProcessingInputs[{index}]"
            s3_input = item.get("S3Input")
            if not s3_input:
                raise UnsupportedDefinition(where, "only S3Input is supported locally")
            if s3_input.get("S3DataType", "S3Prefix") != "S3Prefix":
                raise UnsupportedDefinition(where, f"S3DataType {s3_input.get('S3DataType')!r} (only S3Prefix)")
            self._download(s3_input["S3Uri"], self._map(root, s3_input["LocalPath"]), where)
        outputs = arguments.get("ProcessingOutputConfig", {}).get("Outputs", [])
        for item in outputs:
            self._map(root, item["S3Output"]["LocalPath"]).mkdir(parents=True, exist_ok=True)
        app = arguments["AppSpecification"]
        entrypoint = app.get("ContainerEntrypoint")
        if not entrypoint:
            raise UnsupportedDefinition(f"step {name}", "AppSpecification.ContainerEntrypoint is required locally")
        command = self._command(root, [*entrypoint, *app.get("ContainerArguments", [])])
        env = self._environment(root, arguments.get("Environment", {}))
        timeout = float(arguments.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400))
        self._execute(command, env, root, timeout, root / "job.log", failure_file=None, execution=execution)
        properties: dict[str, Any] = {}
        output_key = arguments.get("ProcessingOutputConfig", {}).get("KmsKeyId")
        for item in outputs:
            uri = item["S3Output"]["S3Uri"]
            self._upload_dir(self._map(root, item["S3Output"]["LocalPath"]), uri, f"step {name}", output_key)
            properties[f"ProcessingOutputConfig.Outputs['{item['OutputName']}'].S3Output.S3Uri"] = uri
        properties["ProcessingJobName"] = job
        return properties, {"ProcessingJob": {"Arn": self._job_arn(execution, "processing-job", job)}}

    def _run_training(
        self, name: str, arguments: dict[str, Any], execution: Execution, job: str, root: Path
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        opt_ml = root / "opt" / "ml"
        channels = []
        for index, channel in enumerate(arguments.get("InputDataConfig", [])):
            where = f"step {name}: InputDataConfig[{index}]"
            source = channel.get("DataSource", {}).get("S3DataSource")
            if not source:
                raise UnsupportedDefinition(where, "only S3DataSource channels are supported locally")
            channel_name = channel["ChannelName"]
            self._download(source["S3Uri"], opt_ml / "input" / "data" / channel_name, where)
            channels.append(channel_name)
        config_dir = opt_ml / "input" / "config"
        config_dir.mkdir(parents=True, exist_ok=True)
        hyperparameters = {k: str(v) for k, v in arguments.get("HyperParameters", {}).items()}
        (config_dir / "hyperparameters.json").write_text(json.dumps(hyperparameters))
        (config_dir / "inputdataconfig.json").write_text(
            json.dumps(
                {
                    c["ChannelName"]: {k: v for k, v in c.items() if k != "DataSource"}
                    for c in arguments.get("InputDataConfig", [])
                }
            )
        )
        (config_dir / "resourceconfig.json").write_text(json.dumps({"current_host": "algo-1", "hosts": ["algo-1"]}))
        for sub in ("model", "output/data"):
            (opt_ml / sub).mkdir(parents=True, exist_ok=True)
        spec = arguments["AlgorithmSpecification"]
        entrypoint = spec.get("ContainerEntrypoint")
        if not entrypoint:
            raise UnsupportedDefinition(
                f"step {name}", "AlgorithmSpecification.ContainerEntrypoint is required (script mode) locally"
            )
        # What a framework toolkit exports in the container; our train.py also reads the platform files.
        toolkit_env = {
            "SM_MODEL_DIR": str(opt_ml / "model"),
            "SM_OUTPUT_DIR": str(opt_ml / "output"),
            "SM_OUTPUT_DATA_DIR": str(opt_ml / "output" / "data"),
            "SM_INPUT_CONFIG_DIR": str(config_dir),
            "SM_HPS": json.dumps(hyperparameters),
            "SM_CHANNELS": json.dumps(channels),
            "SM_CURRENT_HOST": "algo-1",
            "SM_HOSTS": json.dumps(["algo-1"]),
            **{f"SM_CHANNEL_{c.upper()}": str(opt_ml / "input" / "data" / c) for c in channels},
        }
        env = self._environment(root, {**arguments.get("Environment", {}), **toolkit_env})
        command = self._command(root, [*entrypoint, *spec.get("ContainerArguments", [])])
        timeout = float(arguments.get("StoppingCondition", {}).get("MaxRuntimeInSeconds", 86400))
        self._execute(command, env, root, timeout, root / "job.log", opt_ml / "output" / "failure", execution)
        artifact = root / "model.tar.gz"
        with tarfile.open(artifact, "w:gz") as archive:
            for path in sorted((opt_ml / "model").rglob("*")):
                archive.add(path, arcname=str(path.relative_to(opt_ml / "model")), recursive=False)
        output_path = str(arguments["OutputDataConfig"]["S3OutputPath"]).rstrip("/")
        model_uri = f"{output_path}/{job}/output/model.tar.gz"
        bucket, model_key = _split_s3(model_uri, f"step {name}: OutputDataConfig")
        self.s3.upload_file(
            str(artifact),
            bucket,
            model_key,
            ExtraArgs=sagemaker_output_encryption(arguments["OutputDataConfig"].get("KmsKeyId")),
        )
        properties = {"ModelArtifacts.S3ModelArtifacts": model_uri, "TrainingJobName": job}
        return properties, {"TrainingJob": {"Arn": self._job_arn(execution, "training-job", job)}}

    def _condition(
        self, step: dict[str, Any], scope: Scope, execution: Execution, record: StepRecord
    ) -> list[dict[str, Any]]:
        arguments = step.get("Arguments", {})
        where = f"step {step['Name']}"
        outcome = all(
            evaluate_condition(c, scope, f"{where}: Conditions[{i}]")
            for i, c in enumerate(arguments.get("Conditions", []))
        )
        record.metadata = {"Condition": {"Outcome": "True" if outcome else "False"}}
        scope.step_properties[step["Name"]] = {"Outcome": outcome}
        branch: list[dict[str, Any]] = arguments.get("IfSteps" if outcome else "ElseSteps", [])
        return branch  # run after this step is recorded as Succeeded, as SageMaker lists them

    def _fail(
        self, step: dict[str, Any], scope: Scope, execution: Execution, record: StepRecord
    ) -> list[dict[str, Any]] | None:
        message = resolve(step.get("Arguments", {}).get("ErrorMessage", ""), scope, f"step {step['Name']}")
        record.metadata = {"Fail": {"ErrorMessage": str(message)}}
        raise StepFailed(str(message))

    def _register(
        self, step: dict[str, Any], scope: Scope, execution: Execution, record: StepRecord
    ) -> list[dict[str, Any]] | None:
        arguments = resolve(step.get("Arguments", {}), scope, f"step {step['Name']}")
        # As SageMaker does for a package a pipeline registers: the lineage points at the execution.
        arguments.setdefault("MetadataProperties", {})["GeneratedBy"] = execution.arn
        arguments.pop("SkipModelValidation", None)
        arguments.setdefault("ClientToken", hashlib.sha256(f"{execution.arn}/{step['Name']}".encode()).hexdigest()[:36])
        try:
            response = self.sagemaker.create_model_package(**arguments)
        except Exception as exc:  # any API error fails the step with its reason
            raise StepFailed(f"CreateModelPackage failed: {exc}") from exc
        arn = response["ModelPackageArn"]
        record.metadata = {"RegisterModel": {"Arn": arn}}
        scope.step_properties[step["Name"]] = {"ModelPackageArn": arn}
        return None

    # -------------------------------------------------------------------------------- plumbing

    def _read_property_file(self, definition: Mapping[str, Any], scope: Scope, step: str, name: str, path: str) -> Any:
        where = f"JsonGet on {step}.{name}"
        spec = self._find_step(definition.get("Steps", []), step)
        files = {f["PropertyFileName"]: f for f in (spec or {}).get("PropertyFiles", [])}
        if name not in files:
            raise UnsupportedDefinition(where, f"step {step!r} declares no property file {name!r}")
        output = files[name]["OutputName"]
        base = scope.get(f"Steps.{step}.ProcessingOutputConfig.Outputs['{output}'].S3Output.S3Uri", where)
        bucket, key = _split_s3(f"{str(base).rstrip('/')}/{files[name]['FilePath']}", where)
        document = json.loads(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        return json_path(document, path, where)

    def _find_step(self, steps: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
        for step in steps:
            if step["Name"] == name:
                return step
            for branch in ("IfSteps", "ElseSteps"):
                found = self._find_step(step.get("Arguments", {}).get(branch, []), name)
                if found:
                    return found
        return None

    def _job_name(self, execution: Execution, step: str) -> str:
        return f"pipelines-{execution.execution_id}-{step}-{uuid.uuid4().hex[:10]}"[:63]

    def _job_arn(self, execution: Execution, kind: str, job: str) -> str:
        prefix = execution.pipeline_arn.split(":pipeline/")[0]
        return f"{prefix}:{kind}/{job.lower()}"

    def _map(self, root: Path, container_path: str) -> Path:
        if not container_path.startswith(OPT_ML):
            raise UnsupportedDefinition(f"path {container_path!r}", "local paths must live under /opt/ml/")
        return root / container_path.lstrip("/")

    def _command(self, root: Path, argv: list[str]) -> list[str]:
        command = []
        for index, arg in enumerate(argv):
            if index == 0 and arg in ("python", "python3"):
                command.append(self.python)
            elif isinstance(arg, str) and arg.startswith(OPT_ML):
                command.append(str(self._map(root, arg)))
            else:
                command.append(str(arg))
        return command

    def _environment(self, root: Path, extra: Mapping[str, Any]) -> dict[str, str]:
        # The job sees no AWS credentials or endpoints of the caller, as a container would not.
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SM_", "MLOPS"))}
        return {**base, **{k: str(v) for k, v in extra.items()}}

    def _execute(
        self,
        command: list[str],
        env: dict[str, str],
        root: Path,
        timeout: float,
        log: Path,
        failure_file: Path | None,
        execution: Execution,
    ) -> None:
        root.mkdir(parents=True, exist_ok=True)
        process = step_launcher.start(command, python=self.python, env=env, cwd=root, log=log)
        self._process = process
        try:
            code = process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise StepFailed(f"job exceeded MaxRuntimeInSeconds={timeout:.0f}") from None
        finally:
            self._process = None
        if execution.stop_requested.is_set():
            raise ExecutionStopped
        if code != 0:
            reason = failure_file.read_text().strip() if failure_file and failure_file.exists() else ""
            if not reason:
                lines = log.read_text(errors="replace").strip().splitlines()
                reason = " | ".join(lines[-3:]) or "no output"
            raise StepFailed(f"AlgorithmError: exit code {code}: {reason} (log: {log})")

    def _download(self, uri: str, destination: Path, where: str) -> None:
        bucket, prefix = _split_s3(uri, where)
        destination.mkdir(parents=True, exist_ok=True)
        paginator = self.s3.get_paginator("list_objects_v2")
        count = 0
        for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                key = item["Key"]
                if key.endswith("/"):
                    continue
                relative = Path(key).name if key == prefix else key[len(prefix) :].lstrip("/")
                target = destination / relative
                target.parent.mkdir(parents=True, exist_ok=True)
                self.s3.download_file(bucket, key, str(target))
                count += 1
        if count == 0:
            raise StepFailed(f"{where}: no objects under {uri}")

    def _upload_dir(self, source: Path, uri: str, where: str, kms_key: str | None = None) -> None:
        bucket, prefix = _split_s3(uri, where)
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            key = f"{prefix.rstrip('/')}/{path.relative_to(source).as_posix()}"
            self.s3.upload_file(str(path), bucket, key, ExtraArgs=sagemaker_output_encryption(kms_key))
