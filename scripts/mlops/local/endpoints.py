"""Hosting in the twin: real InvokeEndpoint and blue/green UpdateEndpoint over moto's endpoints.

InvokeEndpoint loads the live variant's model artifact from the twin's S3 and runs the model's own
inference handlers (`SAGEMAKER_PROGRAM` in `SAGEMAKER_SUBMIT_DIRECTORY`, i.e. `code/inference.py`
inside the artifact), as the framework serving container does: real predictions, and a handler's
ValueError becomes the client error SageMaker reports (424 ModelError, original status 400). Each
invocation of an existing endpoint also publishes SageMaker's per-variant metrics to the account's
CloudWatch (`AWS/SageMaker`, dimensions EndpointName and VariantName: `Invocations`,
`Invocation4XXErrors`, `Invocation5XXErrors`, `ModelLatency` in microseconds), the metrics the rollback
alarms read: a client's bad payload counts as 4xx, never as 5xx. An endpoint config with data capture
enabled gets SageMaker's capture files for the sampled share of its answered requests
(mlops/local/monitoring.py), stamped with the twin's clock.

UpdateEndpoint with a DeploymentConfig runs SageMaker's blue/green sequence in a background thread:
provision the new fleet (the model must load), shift the canary share of requests, wait, shift the
rest, bake; an auto-rollback alarm in ALARM during any of it puts all traffic back on the old config.
Requests are answered throughout. Waits are multiplied by the twin's time scale (e.g. 0.01: a 300 s
bake takes 3 s) so the flow is testable on one machine.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import logging
import tarfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from moto.cloudwatch.models import cloudwatch_backends
from moto.s3.models import s3_backends
from moto.sagemaker.models import sagemaker_backends

from mlops.local.monitoring import CaptureSampler, capture_key, capture_record, split_s3

log = logging.getLogger(__name__)


class InvocationError(Exception):
    def __init__(self, status: int, code: str, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra or {}


@dataclass
class LoadedModel:
    module: ModuleType
    model: Any


@dataclass
class Rollout:
    """An UpdateEndpoint in progress: which share of requests goes to the new config."""

    old_config: str
    new_config: str
    new_share: float = 0.0
    counter: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def pick(self) -> str:
        with self.lock:
            self.counter += 1
            # Deterministic split: of every 100 requests, `share` go to the new fleet.
            return self.new_config if (self.counter % 100) < round(self.new_share * 100) else self.old_config


class Hosting:
    def __init__(
        self,
        *,
        read_object: Callable[[str], bytes],
        automation_account: str,
        cache_dir: Path,
        time_scale: float,
        sleep: Callable[[float], None] = time.sleep,
        poll_seconds: float = 0.05,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.read_object = read_object
        self.clock = clock
        self._sampler = CaptureSampler()
        self.automation_account = automation_account
        self.cache_dir = cache_dir
        self.time_scale = time_scale
        self.sleep = sleep
        self.poll_seconds = poll_seconds
        self._models: dict[str, LoadedModel] = {}
        self._rollouts: dict[tuple[str, str, str], Rollout] = {}
        self._lock = threading.Lock()

    # --------------------------------------------------------------------------- resolution

    def _backend(self, account: str, region: str) -> Any:
        return sagemaker_backends[account][region]

    def _container(self, account: str, region: str, config_name: str) -> tuple[str, dict[str, str], str]:
        """(model data URL, environment, variant name) of the first variant of an endpoint config."""
        backend = self._backend(account, region)
        config = backend.endpoint_configs.get(config_name)
        if config is None:
            raise InvocationError(400, "ValidationError", f"Endpoint configuration {config_name} does not exist.")
        variant = config.production_variants[0]
        model = backend._models.get(variant["ModelName"])
        if model is None:
            raise InvocationError(400, "ValidationError", f"Model {variant['ModelName']} does not exist.")
        container = model.primary_container or (model.containers or [{}])[0]
        environment = dict(container.get("Environment") or {})
        data_url = container.get("ModelDataUrl")
        package_name = container.get("ModelPackageName")
        if package_name:
            package = self._package(region, package_name)
            spec = package["InferenceSpecification"]["Containers"][0]
            data_url = data_url or spec.get("ModelDataUrl")
            environment = {**(spec.get("Environment") or {}), **environment}
        if not data_url:
            raise InvocationError(400, "ValidationError", f"Model {variant['ModelName']} has no ModelDataUrl.")
        return str(data_url), environment, str(variant["VariantName"])

    def _package(self, region: str, arn: str) -> dict[str, Any]:
        account = arn.split(":")[4] if arn.startswith("arn:") else self.automation_account
        backend = self._backend(account, region)
        try:
            package: dict[str, Any] = backend.describe_model_package(arn).gen_response_object()
        except Exception as exc:  # moto raises its own ValidationError types
            raise InvocationError(400, "ValidationError", f"Model package {arn} does not exist: {exc}") from exc
        return package

    def load(self, data_url: str, environment: dict[str, str]) -> LoadedModel:
        with self._lock:
            cached = self._models.get(data_url)
            if cached is not None:
                return cached
            # Stable across processes (hash() is salted) and free of collisions between artifacts.
            target = self.cache_dir / hashlib.sha256(data_url.encode()).hexdigest()[:32]
            target.mkdir(parents=True, exist_ok=True)
            with tarfile.open(fileobj=io.BytesIO(self.read_object(data_url)), mode="r:gz") as archive:
                archive.extractall(target, filter="data")
            program = environment.get("SAGEMAKER_PROGRAM", "inference.py")
            submit_dir = environment.get("SAGEMAKER_SUBMIT_DIRECTORY", "/opt/ml/model/code")
            code_dir = target / submit_dir.removeprefix("/opt/ml/model").lstrip("/")
            script = code_dir / program
            if not script.exists():
                raise InvocationError(500, "ModelError", f"the model artifact has no {submit_dir}/{program}")
            spec = importlib.util.spec_from_file_location(f"twin_model_{len(self._models)}", script)
            if spec is None or spec.loader is None:
                raise InvocationError(500, "ModelError", f"cannot import {script}")
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            loaded = LoadedModel(module=module, model=module.model_fn(str(target)))
            self._models[data_url] = loaded
            return loaded

    def preload(self, package: dict[str, Any]) -> threading.Thread | None:
        """Load a registered or approved package's model in the background: its deployment follows (the approval,
        the bridge, then the deploy pipeline), and loading imports the framework (about 0.9 s for XGBoost) that the
        endpoint's creation would otherwise wait for, in a twin busy with those steps' requests. A failure is only
        logged: the endpoint's own load raises it again."""
        containers = (package.get("InferenceSpecification") or {}).get("Containers") or []
        data_url = containers[0].get("ModelDataUrl") if containers else None
        if not data_url:
            return None
        environment = dict(containers[0].get("Environment") or {})

        def load() -> None:
            try:
                self.load(str(data_url), environment)
            except Exception:  # the deployment's load reports it to the caller
                log.warning("preloading the model %s failed", data_url, exc_info=True)

        thread = threading.Thread(target=load, name="preload-model", daemon=True)
        thread.start()
        return thread

    # -------------------------------------------------------------------------------- invoke

    def invoke(
        self, account: str, region: str, name: str, body: bytes, content_type: str, accept: str
    ) -> tuple[bytes, str, str]:
        endpoint = self._backend(account, region).endpoints.get(name)
        if endpoint is None:
            raise InvocationError(400, "ValidationError", f"Endpoint {name} of account {account} not found.")
        rollout = self._rollouts.get((account, region, name))
        config_name = rollout.pick() if rollout else endpoint.endpoint_config_name
        data_url, environment, variant = self._container(account, region, config_name)
        started = time.monotonic()
        try:
            answer = self._serve(data_url, environment, variant, body, content_type, accept)
        except InvocationError as error:
            original = int(error.extra.get("OriginalStatusCode", error.status))
            self._publish(account, region, name, variant, started, original)
            raise
        self._publish(account, region, name, variant, started, 200)
        self._capture(account, region, name, config_name, variant, body, content_type, answer)
        return answer

    def _capture(
        self,
        account: str,
        region: str,
        endpoint: str,
        config_name: str,
        variant: str,
        body: bytes,
        content_type: str,
        answer: tuple[bytes, str, str],
    ) -> None:
        config = self._backend(account, region).endpoint_configs.get(config_name)
        capture = (getattr(config, "data_capture_config", None) or {}) if config is not None else {}
        if not capture.get("EnableCapture"):
            return
        if not self._sampler.take(endpoint, float(capture.get("InitialSamplingPercentage", 0))):
            return
        when = self.clock()
        record = capture_record(
            body, content_type or "application/json", answer[0], answer[1], event_id=str(uuid.uuid4()), when=when
        )
        modes = {o.get("CaptureMode") for o in capture.get("CaptureOptions", [])} or {"Input", "Output"}
        if "Output" not in modes:
            record["captureData"].pop("endpointOutput")
        if "Input" not in modes:
            record["captureData"].pop("endpointInput")
        bucket, prefix = split_s3(str(capture.get("DestinationS3Uri", "")))
        key = capture_key(prefix, endpoint, variant, when, uuid.uuid4().hex[:12])
        try:
            s3_backends[account]["aws"].put_object(bucket, key, (json.dumps(record) + "\n").encode())
        except Exception as exc:  # SageMaker drops a capture it cannot write; the request is still answered
            log.warning("data capture of %s to s3://%s/%s failed: %s", endpoint, bucket, key, exc)

    def _serve(
        self, data_url: str, environment: dict[str, str], variant: str, body: bytes, content_type: str, accept: str
    ) -> tuple[bytes, str, str]:
        loaded = self.load(data_url, environment)
        try:
            parsed = loaded.module.input_fn(body, content_type or "application/json")
            prediction = loaded.module.predict_fn(parsed, loaded.model)
            result = loaded.module.output_fn(prediction, accept or "application/json")
        except ValueError as exc:  # the handlers' client errors (PayloadError is a ValueError)
            raise InvocationError(
                424,
                "ModelError",
                f'Received client error (400) from primary with message "{exc}".',
                {"OriginalStatusCode": 400, "OriginalMessage": str(exc)},
            ) from exc
        except Exception as exc:
            raise InvocationError(
                424,
                "ModelError",
                f'Received server error (500) from primary with message "{type(exc).__name__}: {exc}".',
                {"OriginalStatusCode": 500, "OriginalMessage": str(exc)},
            ) from exc
        payload, out_type = result if isinstance(result, tuple) else (result, accept or "application/json")
        data = payload.encode() if isinstance(payload, str) else bytes(payload)
        return data, out_type, variant

    def _publish(self, account: str, region: str, name: str, variant: str, started: float, status: int) -> None:
        dimensions = [{"Name": "EndpointName", "Value": name}, {"Name": "VariantName", "Value": variant}]
        values = {
            "Invocations": 1.0,
            "Invocation4XXErrors": float(400 <= status < 500),
            "Invocation5XXErrors": float(status >= 500),
            "ModelLatency": (time.monotonic() - started) * 1_000_000,
        }
        cloudwatch_backends[account][region].put_metric_data(
            "AWS/SageMaker",
            [
                {
                    "MetricName": metric,
                    "Value": value,
                    "Unit": "Microseconds" if metric == "ModelLatency" else "None",
                    "Dimensions": dimensions,
                }
                for metric, value in values.items()
            ],
        )

    # -------------------------------------------------------------------------------- update

    def update(self, account: str, region: str, request: dict[str, Any]) -> None:
        backend = self._backend(account, region)
        name = request.get("EndpointName", "")
        endpoint = backend.endpoints.get(name)
        if endpoint is None:
            raise InvocationError(400, "ValidationException", f'Could not find endpoint "{name}".')
        if endpoint.endpoint_status != "InService":
            raise InvocationError(
                400, "ValidationException", f"Cannot update endpoint {name} while it is {endpoint.endpoint_status}."
            )
        new_config = request.get("EndpointConfigName", "")
        if new_config not in backend.endpoint_configs:
            raise InvocationError(400, "ValidationException", f'Could not find endpoint configuration "{new_config}".')
        endpoint.endpoint_status = "Updating"
        endpoint.failure_reason = None
        rollout = Rollout(old_config=endpoint.endpoint_config_name, new_config=new_config)
        self._rollouts[(account, region, name)] = rollout
        thread = threading.Thread(
            target=self._deploy,
            args=(account, region, name, rollout, request.get("DeploymentConfig") or {}),
            daemon=True,
        )
        thread.start()

    def _deploy(self, account: str, region: str, name: str, rollout: Rollout, config: dict[str, Any]) -> None:
        backend = self._backend(account, region)
        endpoint = backend.endpoints[name]
        alarms = [a["AlarmName"] for a in (config.get("AutoRollbackConfiguration") or {}).get("Alarms", [])]
        policy = config.get("BlueGreenUpdatePolicy") or {}
        routing = policy.get("TrafficRoutingConfiguration") or {"Type": "ALL_AT_ONCE"}
        try:
            data_url, environment, _ = self._container(account, region, rollout.new_config)
            self.load(data_url, environment)  # provisioning the new fleet: the model must load
            kind = routing.get("Type", "ALL_AT_ONCE")
            if kind == "CANARY":
                rollout.new_share = self._canary_share(backend, rollout, routing.get("CanarySize") or {})
                self._watch(account, region, alarms, float(routing.get("WaitIntervalInSeconds", 0)))
            elif kind == "LINEAR":
                step = self._canary_share(backend, rollout, routing.get("LinearStepSize") or {})
                while rollout.new_share + step < 1:
                    rollout.new_share += step
                    self._watch(account, region, alarms, float(routing.get("WaitIntervalInSeconds", 0)))
            rollout.new_share = 1.0
            self._watch(account, region, alarms, float(policy.get("TerminationWaitInSeconds", 0)))
        except _AlarmTripped as tripped:
            rollout.new_share = 0.0
            self._finish(account, region, name, rollout.old_config, f"Rolled back: alarm {tripped} went into ALARM")
            return
        except Exception as exc:  # provisioning failed: the old config keeps serving
            log.warning("update of %s failed: %s", name, exc)
            self._finish(account, region, name, rollout.old_config, f"Failed to update endpoint: {exc}")
            return
        variants = backend.endpoint_configs[rollout.new_config].production_variants
        endpoint.production_variants = endpoint._process_production_variants(variants)
        self._finish(account, region, name, rollout.new_config, None)

    def _canary_share(self, backend: Any, rollout: Rollout, size: dict[str, Any]) -> float:
        value = float(size.get("Value", 0))
        if size.get("Type") == "CAPACITY_PERCENT":
            return max(0.0, min(1.0, value / 100))
        count = sum(
            int(v.get("InitialInstanceCount", 1))
            for v in backend.endpoint_configs[rollout.new_config].production_variants
        )
        return max(0.0, min(1.0, value / max(count, 1)))

    def _watch(self, account: str, region: str, alarms: list[str], seconds: float) -> None:
        deadline = time.monotonic() + seconds * self.time_scale
        while True:
            backend = cloudwatch_backends[account][region]
            for alarm in alarms:
                found = backend.alarms.get(alarm)
                if found is not None and found.state_value == "ALARM":
                    raise _AlarmTripped(alarm)
            if time.monotonic() >= deadline:
                return
            self.sleep(self.poll_seconds)

    def _finish(self, account: str, region: str, name: str, config_name: str, failure: str | None) -> None:
        endpoint = self._backend(account, region).endpoints[name]
        endpoint.endpoint_config_name = config_name
        endpoint.failure_reason = failure
        endpoint.endpoint_status = "InService"
        self._rollouts.pop((account, region, name), None)


class _AlarmTripped(Exception):
    pass


def error_body(error: InvocationError) -> bytes:
    return json.dumps(
        {"__type": error.code, "message": error.message, "Message": error.message, **error.extra}
    ).encode()
