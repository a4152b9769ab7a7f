"""The twin's AWS endpoint: moto, with a thin shim in front for what moto lacks and the flow needs.

One HTTP server on 127.0.0.1 serves every AWS service boto3 asks for (through `AWS_ENDPOINT_URL`).
The shim:
  - maps a caller with no known credentials to the automation account (moto's accounts come from
    the access key; assumed-role credentials land in the role's account, as in AWS);
  - runs pipeline executions for real (StartPipelineExecution and its Describe/List/Stop calls) with
    the local step executor, on the definition moto stores;
  - serves InvokeEndpoint (`POST /endpoints/<name>/invocations`) and UpdateEndpoint (blue/green);
  - emits `SageMaker Model Package State Change` on the automation account's default bus when
    UpdateModelPackage changes a package's approval status;
  - loads a registered (CreateModelPackage) or approved package's model in the background, ahead of its endpoint;
  - keeps Model Monitor's schedules (Create/Describe/Update/Delete/ListMonitoringSchedule(s),
    ListMonitoringExecutions) and runs their executions when `POST /_twin/monitoring/run?hours=N`
    advances the twin's clock (mlops/local/monitoring.py); endpoints write data capture files.
Everything else is moto's.
"""

from __future__ import annotations

import argparse
import contextlib
import html
import io
import json
import logging
import os
import re
import signal
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config as BotoConfig
from moto.events.models import events_backends
from moto.events.utils import EventTemplateParser
from moto.iam.models import get_account_id_from, iam_backends
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.sagemaker.exceptions import ValidationError as SageMakerValidationError
from moto.sagemaker.models import sagemaker_backends
from werkzeug.serving import BaseWSGIServer, make_server

from mlops.core import botocore_data, gc_policy
from mlops.local import step_launcher
from mlops.local.endpoints import Hosting, InvocationError, error_body
from mlops.local.executor import Execution, Executor, StepCache
from mlops.local.iam.gate import IamGate
from mlops.local.mlflow_server import MlflowServer
from mlops.local.monitoring import MonitoringRunner, MonitoringSchedules, ScheduleError
from mlops.local.moto_fixes import (
    change_set_outputs,
    forwarded_events_keep_resources,
    key_policy_as_text,
    model_package_group_policies,
    no_partial_bucket_policy_evaluation,
    regions_listed_once,
    templates_parsed_by_libyaml,
)
from mlops.local.moto_registry import aws_update_model_package_semantics
from mlops.local.oidc import TokenRejected, check_web_identity
from mlops.local.paths import SERVER_FILE
from mlops.local.registry_events import state_change_entry
from mlops.local.strict.gate import RequestGate
from mlops.local.twin_state import TWIN_ACCESS_KEY as TWIN_ACCESS_KEY
from mlops.local.twin_state import service_access_key, service_key_account

log = logging.getLogger(__name__)

# moto 5.2.5 leaves "account" out of the envelope it delivers to rule targets; AWS includes it.
EventTemplateParser.DEFAULT_EVENT_INPUT_TEMPLATE = (
    '{"version": "0", "id": "<id>", "detail-type": "<detail-type>", "source": "<source>", "account": "<account>", '
    '"time": <time>, "region": "<region>", "resources": <resources>, "detail": <detail>}'
)

MOTO_DEFAULT_ACCOUNT = "123456789012"
_CREDENTIAL = re.compile(r"Credential=([^/]+)/\d{8}/([a-z0-9-]+)/")
_INVOCATION = re.compile(r"^/endpoints/([^/]+)/invocations$")
_PIPELINE_WRITES = frozenset(
    {"SageMaker.CreatePipeline", "SageMaker.UpdatePipeline", "SageMaker.StartPipelineExecution"}
)
StartResponse = Callable[..., Any]


def _json(status: int, body: dict[str, Any]) -> tuple[int, bytes, str]:
    return status, json.dumps(body, default=str).encode(), "application/x-amz-json-1.1"


def _client_error(code: str, message: str, status: int = 400) -> tuple[int, bytes, str]:
    return _json(status, {"__type": code, "message": message})


class Shim:
    def __init__(self, twin: TwinServer) -> None:
        self.twin = twin
        self.moto = DomainDispatcherApplication(create_backend_app)

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/_twin/health":
            return self._respond(start_response, *_json(200, {"status": "ok", **self.twin.describe()}))
        if path == "/_twin/iam":  # the IAM ledger and least-privilege report (`mlops local iam-report`)
            return self._respond(start_response, *_json(200, self.twin.iam.report()))
        if path == "/_twin/monitoring/run":  # advance the twin's clock; due monitoring executions run
            return self._respond(start_response, *self._run_monitoring(environ))
        # Strict requests: refuse what AWS's request validation refuses, before anything is created.
        refusal = self.twin.request_gate.check(environ)
        if refusal is not None:
            return self._respond(start_response, refusal.status, refusal.body, refusal.content_type, refusal.headers)
        account, region = self._caller(environ)
        environ["HTTP_X_MOTO_ACCOUNT_ID"] = account
        # STS checks a web identity token itself (issuer's provider, audience, signature, expiry) before it
        # evaluates the role's trust policy: InvalidIdentityToken comes before any AccessDenied.
        if environ.get("REQUEST_METHOD") == "POST" and "x-www-form-urlencoded" in str(environ.get("CONTENT_TYPE", "")):
            refused = self._check_web_identity(environ)
            if refused is not None:
                return self._respond(start_response, *refused)
        # ---- IAM (mlops.local.iam): authorise before moto or the shim acts, so a refusal creates nothing.
        denial = self.twin.iam.check(environ, self._body(environ), account, region)
        if denial is not None:
            return self._respond(start_response, *denial[:3], denial[3])
        # ---- end IAM
        method = environ.get("REQUEST_METHOD", "GET")
        invocation = _INVOCATION.match(path)
        if method == "POST" and invocation:
            return self._invoke(environ, start_response, account, region, invocation.group(1))
        target = str(environ.get("HTTP_X_AMZ_TARGET", ""))
        if target in _PIPELINE_WRITES:
            # A build is coming: let the step launcher import the libraries now, not at the first step.
            step_launcher.warm_up()
            self.twin.first_build()
        handler = {
            "SageMaker.StartPipelineExecution": self._start_execution,
            "SageMaker.DescribePipelineExecution": self._describe_execution,
            "SageMaker.ListPipelineExecutionSteps": self._list_steps,
            "SageMaker.ListPipelineExecutions": self._list_executions,
            "SageMaker.StopPipelineExecution": self._stop_execution,
            "SageMaker.UpdateEndpoint": self._update_endpoint,
            **self._monitoring_api(),
        }.get(target)
        if handler is not None:
            request = json.loads(self._body(environ) or b"{}")
            try:
                return self._respond(start_response, *handler(account, region, request))
            except InvocationError as error:
                return self._respond(start_response, error.status, error_body(error), "application/x-amz-json-1.1")
            except ScheduleError as error:
                body = json.dumps({"__type": error.code, "message": error.message}).encode()
                return self._respond(start_response, error.status, body, "application/x-amz-json-1.1")
        if target == "SageMaker.UpdateModelPackage":
            return self._update_model_package(environ, start_response, account, region)
        if target == "SageMaker.CreateModelPackage":
            return self._create_model_package(environ, start_response)
        return self.moto(environ, start_response)  # type: ignore[no-any-return]

    def _check_web_identity(self, environ: dict[str, Any]) -> tuple[int, bytes, str] | None:
        body = self._body(environ)
        if b"AssumeRoleWithWebIdentity" not in body:
            return None
        form = {k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()}
        if form.get("Action") != "AssumeRoleWithWebIdentity":
            return None
        role_account = form.get("RoleArn", "").split(":")[4] if form.get("RoleArn", "").count(":") >= 5 else ""
        backend = iam_backends[role_account]["aws"] if role_account.isdigit() else None
        providers = {
            arn: (provider.url, list(provider.client_id_list))
            for arn, provider in (backend.open_id_providers.items() if backend is not None else [])
        }
        try:
            check_web_identity(form, providers, self.twin.state_dir, now=time.time())
        except TokenRejected as rejected:
            log.warning("AssumeRoleWithWebIdentity into %s refused: %s", form.get("RoleArn"), rejected)
            error = (
                '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
                f"<Code>{rejected.code}</Code><Message>{html.escape(str(rejected))}</Message></Error>"
                f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
            )
            return 400, error.encode(), "text/xml"
        return None

    # ------------------------------------------------------------------------------ plumbing

    def _caller(self, environ: dict[str, Any]) -> tuple[str, str]:
        match = _CREDENTIAL.search(str(environ.get("HTTP_AUTHORIZATION", "")))
        region = match.group(2) if match else self.twin.region
        named = match.group(1).removeprefix("twin-") if match and match.group(1).startswith("twin-") else ""
        if named in self.twin.accounts:  # the twin's root credentials of an account (bootstrap.root_access_key)
            return self.twin.accounts[named], region
        acting_for = service_key_account(match.group(1)) if match else None
        if acting_for in self.twin.accounts.values():  # a service acting for one account (iam.state)
            return str(acting_for), region
        account = get_account_id_from(match.group(1)) if match else MOTO_DEFAULT_ACCOUNT
        if account == MOTO_DEFAULT_ACCOUNT:
            account = self.twin.accounts["automation"]
        return account, region

    @staticmethod
    def _body(environ: dict[str, Any]) -> bytes:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        return bytes(body)

    @staticmethod
    def _respond(
        start_response: StartResponse,
        status: int,
        body: bytes,
        content_type: str,
        headers: list[tuple[str, str]] | None = None,
    ) -> list[bytes]:
        reason = {
            200: "OK",
            400: "Bad Request",
            403: "Forbidden",
            404: "Not Found",
            424: "Failed Dependency",
            500: "Internal Server Error",
        }
        start_response(
            f"{status} {reason.get(status, 'Status')}",
            [("Content-Type", content_type), ("Content-Length", str(len(body))), *(headers or [])],
        )
        return [body]

    # --------------------------------------------------------------------------- pipelines

    def _start_execution(self, account: str, region: str, request: dict[str, Any]) -> tuple[int, bytes, str]:
        name = request.get("PipelineName", "")
        pipeline = sagemaker_backends[account][region].pipelines.get(name.split("/")[-1])
        if pipeline is None:
            return _client_error("ResourceNotFound", f"Pipeline '{name}' does not exist.")
        token = request.get("ClientRequestToken")
        if token and token in self.twin.tokens:
            return _json(200, {"PipelineExecutionArn": self.twin.tokens[token]})
        execution_id = uuid.uuid4().hex[:12]
        execution = Execution(
            arn=f"{pipeline.arn}/execution/{execution_id}",
            pipeline_name=pipeline.pipeline_name,
            pipeline_arn=pipeline.arn,
            display_name=request.get("PipelineExecutionDisplayName") or f"execution-{execution_id}",
            description=request.get("PipelineExecutionDescription", ""),
            parameters={p["Name"]: p["Value"] for p in request.get("PipelineParameters", [])},
        )
        self.twin.executions[execution.arn] = execution
        if token:
            self.twin.tokens[token] = execution.arn
        definition = json.loads(pipeline.pipeline_definition)
        threading.Thread(target=self.twin.run_execution, args=(definition, execution), daemon=True).start()
        return _json(200, {"PipelineExecutionArn": execution.arn})

    def _execution(self, request: dict[str, Any]) -> Execution:
        arn = request.get("PipelineExecutionArn", "")
        execution = self.twin.executions.get(arn)
        if execution is None:
            raise InvocationError(400, "ResourceNotFound", f"Pipeline execution '{arn}' does not exist.")
        return execution

    def _describe_execution(self, account: str, region: str, request: dict[str, Any]) -> tuple[int, bytes, str]:
        return _json(200, self._execution(request).describe())

    def _list_steps(self, account: str, region: str, request: dict[str, Any]) -> tuple[int, bytes, str]:
        steps = [s.to_api() for s in self._execution(request).steps]
        steps.sort(key=lambda s: s["StartTime"], reverse=request.get("SortOrder", "Descending") == "Descending")
        return _json(200, {"PipelineExecutionSteps": steps})

    def _list_executions(self, account: str, region: str, request: dict[str, Any]) -> tuple[int, bytes, str]:
        name = request.get("PipelineName", "").split("/")[-1]
        found = [e for e in self.twin.executions.values() if e.pipeline_name == name]
        found.sort(key=lambda e: e.created, reverse=request.get("SortOrder", "Descending") == "Descending")
        summaries = [
            {
                "PipelineExecutionArn": e.arn,
                "StartTime": e.created,
                "PipelineExecutionStatus": e.status,
                "PipelineExecutionDisplayName": e.display_name,
            }
            for e in found
        ]
        return _json(200, {"PipelineExecutionSummaries": summaries})

    def _stop_execution(self, account: str, region: str, request: dict[str, Any]) -> tuple[int, bytes, str]:
        execution = self._execution(request)
        if execution.status == "Executing":
            execution.status = "Stopping"
            self.twin.executor.stop(execution)
        return _json(200, {"PipelineExecutionArn": execution.arn})

    # ---------------------------------------------------------------------------- hosting

    def _invoke(
        self, environ: dict[str, Any], start_response: StartResponse, account: str, region: str, name: str
    ) -> list[bytes]:
        body = self._body(environ)
        try:
            data, content_type, variant = self.twin.hosting.invoke(
                account,
                region,
                name,
                body,
                str(environ.get("CONTENT_TYPE", "")),
                str(environ.get("HTTP_ACCEPT", "")),
            )
        except InvocationError as error:
            headers = [("x-amzn-ErrorType", error.code)]
            return self._respond(start_response, error.status, error_body(error), "application/json", headers)
        return self._respond(start_response, 200, data, content_type, [("x-Amzn-Invoked-Production-Variant", variant)])

    # --------------------------------------------------------------------------- model monitor

    def _monitoring_api(self) -> dict[str, Callable[[str, str, dict[str, Any]], tuple[int, bytes, str]]]:
        schedules = self.twin.monitoring

        def answer(call: Callable[[str, str, dict[str, Any]], dict[str, Any]]) -> Any:
            return lambda account, region, request: _json(200, call(account, region, request))

        return {
            "SageMaker.CreateMonitoringSchedule": answer(schedules.create),
            "SageMaker.DescribeMonitoringSchedule": answer(schedules.describe),
            "SageMaker.UpdateMonitoringSchedule": answer(schedules.update),
            "SageMaker.DeleteMonitoringSchedule": answer(schedules.delete),
            "SageMaker.ListMonitoringSchedules": answer(schedules.list_schedules),
            "SageMaker.ListMonitoringExecutions": answer(schedules.list_executions),
        }

    def _run_monitoring(self, environ: dict[str, Any]) -> tuple[int, bytes, str]:
        if environ.get("REQUEST_METHOD") != "POST":
            return _client_error("MethodNotAllowed", "POST /_twin/monitoring/run?hours=N advances the clock", 405)
        query = urllib.parse.parse_qs(str(environ.get("QUERY_STRING", "")))
        try:
            hours = int((query.get("hours") or ["1"])[0])
        except ValueError:
            hours = 0
        if not 1 <= hours <= 168:
            return _client_error("ValidationException", "hours must be a whole number from 1 to 168")
        executions = self.twin.monitor_runner.run_due(hours)
        now = self.twin.monitoring.now().isoformat()
        return _json(200, {"now": now, "executions": executions})

    def _update_endpoint(self, account: str, region: str, request: dict[str, Any]) -> tuple[int, bytes, str]:
        self.twin.hosting.update(account, region, request)
        endpoint = sagemaker_backends[account][region].endpoints[request["EndpointName"]]
        return _json(200, {"EndpointArn": endpoint.arn})

    # --------------------------------------------------------------------------- registry

    def _moto_answer(self, environ: dict[str, Any], start_response: StartResponse) -> tuple[bool, bytes]:
        """moto's answer to the request, passed on as it is; and whether it succeeded."""
        captured: dict[str, str] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"] = status
            return start_response(status, headers, exc_info)

        body = b"".join(self.moto(environ, capture))
        return captured.get("status", "").startswith("200"), body

    def _create_model_package(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """moto registers the package; the twin then loads its model in the background, as it does at an approval:
        a registered package is what gets approved and deployed next, and the load's framework import (about
        0.9 s) would otherwise land on a twin busy with the bridge and the deployment."""
        request = json.loads(self._body(environ) or b"{}")  # before moto reads the body
        succeeded, body = self._moto_answer(environ, start_response)
        if succeeded and request.get("ModelApprovalStatus") != "Rejected":
            self.twin.hosting.preload(request)  # the request names the model: InferenceSpecification
        return [body]

    def _update_model_package(
        self, environ: dict[str, Any], start_response: StartResponse, account: str, region: str
    ) -> Iterable[bytes]:
        request = json.loads(self._body(environ) or b"{}")
        backend = sagemaker_backends[account][region]
        arn = request.get("ModelPackageArn", "")
        try:
            before = backend.describe_model_package(arn).model_approval_status
        except SageMakerValidationError:  # unknown package: moto answers the request with its own error
            before = None
        succeeded, body = self._moto_answer(environ, start_response)
        after_status = request.get("ModelApprovalStatus")
        if succeeded and after_status and after_status != before:
            package = backend.describe_model_package(arn).gen_response_object()
            # SageMaker's event goes to the registry account's default bus, whoever approved.
            registry_account = arn.split(":")[4]
            events_backends[registry_account][region].put_events([state_change_entry(package)])
            if after_status == "Approved":
                self.twin.hosting.preload(package)
        return [body]


class TwinServer:
    """The moto server with the shim, on 127.0.0.1, holding the three accounts of the `local` profile."""

    def __init__(
        self,
        *,
        state_dir: Path,
        accounts: dict[str, str],
        region: str,
        port: int = 0,
        time_scale: float = 0.01,
        strict_requests: bool | None = None,
        iam_mode: str | None = None,
    ) -> None:
        self.iam = IamGate(iam_mode)  # enforce | report | off (MLOPS_TWIN_IAM when not given)
        self.state_dir = state_dir
        self.accounts = accounts
        self.region = region
        self.time_scale = time_scale
        self.executions: dict[str, Execution] = {}
        self.tokens: dict[str, str] = {}
        self.request_gate = RequestGate(strict_requests)  # None: MLOPS_TWIN_STRICT_REQUESTS, default on
        self._server: BaseWSGIServer = make_server("127.0.0.1", port, Shim(self), threaded=True)
        self._thread: threading.Thread | None = None
        self._patches = contextlib.ExitStack()
        self._first_build: list[Callable[[], None]] = []  # run once, at the first pipeline write
        self._first_build_lock = threading.Lock()
        self.url = f"http://127.0.0.1:{self._server.server_port}"
        self.executor = Executor(
            s3=self._client("s3"),
            sagemaker=self._client("sagemaker"),
            work_dir=state_dir / "jobs",
            cache=StepCache(state_dir / "step-cache.json"),
        )
        self.monitoring = MonitoringSchedules()
        self.monitor_runner = MonitoringRunner(self.monitoring, role_clients=self._monitoring_role_clients)
        self.hosting = Hosting(
            read_object=self._read_object,
            automation_account=accounts["automation"],
            cache_dir=state_dir / "models",
            time_scale=time_scale,
            clock=self.monitoring.now,
        )

    def _client(self, service: str) -> Any:
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id=TWIN_ACCESS_KEY,
            aws_secret_access_key="twin",  # noqa: S106 - the twin accepts any secret
            config=BotoConfig(retries={"max_attempts": 2, "mode": "standard"}),
        )

    def _monitoring_role_clients(self, account: str, role_arn: str) -> tuple[Any, Any]:
        """S3 and CloudWatch as a monitoring job's role, assumed by SageMaker for that account (trust policy)."""
        sts = boto3.client(
            "sts",
            endpoint_url=self.url,
            region_name=self.region,
            aws_access_key_id=service_access_key("sagemaker", account),
            aws_secret_access_key="twin",  # noqa: S106 - the twin accepts any secret
        )
        credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName="model-monitoring")["Credentials"]
        session = boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=self.region,
        )
        # botocore gzips large PutMetricData bodies (the operation's requestcompression trait); moto cannot read
        # them, so the job's client sends them plain (AWS accepts both).
        cloudwatch = session.client(
            "cloudwatch", endpoint_url=self.url, config=BotoConfig(disable_request_compression=True)
        )
        return session.client("s3", endpoint_url=self.url), cloudwatch

    def _read_object(self, uri: str) -> bytes:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        body: bytes = self._client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        return body

    def run_execution(self, definition: dict[str, Any], execution: Execution) -> None:
        try:
            self.executor.run(definition, execution)
        except Exception as exc:  # an executor bug must still end the execution, visibly
            log.exception("execution %s crashed", execution.arn)
            execution.status = "Failed"
            execution.failure_reason = f"local executor error: {type(exc).__name__}: {exc}"

    def at_first_build(self, action: Callable[[], None]) -> None:
        """Run `action` at the twin's first pipeline write (CreatePipeline, UpdatePipeline, StartPipelineExecution)."""
        with self._first_build_lock:
            self._first_build.append(action)

    def first_build(self) -> None:
        with self._first_build_lock:
            actions, self._first_build = self._first_build, []
        for action in actions:
            action()

    def describe(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "region": self.region,
            "accounts": self.accounts,
            "pid": os.getpid(),
            "requests": self.request_gate.mode,
            "request_checks": self.request_gate.stats.to_dict(),
            "iam": self.iam.describe(),
        }

    def _patch_moto(self) -> None:
        # SageMaker leaves absent UpdateModelPackage fields alone; moto 5.2.5 clears them.
        self._patches.enter_context(aws_update_model_package_semantics())
        # Four moto defects and one missing API the templates' resources hit (mlops/local/moto_fixes.py).
        self._patches.enter_context(key_policy_as_text())
        self._patches.enter_context(change_set_outputs())
        self._patches.enter_context(no_partial_bucket_policy_evaluation())
        self._patches.enter_context(model_package_group_policies())
        self._patches.enter_context(regions_listed_once())
        self._patches.enter_context(forwarded_events_keep_resources())
        self._patches.enter_context(templates_parsed_by_libyaml())

    def start(self) -> TwinServer:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self.iam.start()
        self._patch_moto()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._patch_moto()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._patches.close()
        self.iam.stop()


def watch_state_dir(
    directory: Path, stop: Callable[[], None], *, interval: float, wait: Callable[[float], bool]
) -> bool:
    """Check every `interval` seconds that the state folder exists; when it is gone, `stop()` and return True.
    Returns False when `wait` reports the twin stopping by other means (it returns True then)."""
    while not wait(interval):
        if not directory.is_dir():
            logging.getLogger(__name__).warning("state folder %s was removed: the twin stops", directory)
            stop()
            return True
    return False


def stop_when_state_dir_removed(
    directory: Path, stop: Callable[[], None], *, interval: float, stopped: threading.Event
) -> threading.Thread:
    """Stop the twin when its state folder disappears (a deleted clone, `rm -rf .mlops`): nothing could
    reach or stop it any more (`mlops local down` finds no state), so it would otherwise run forever."""
    thread = threading.Thread(
        target=watch_state_dir,
        args=(directory, stop),
        kwargs={"interval": interval, "wait": stopped.wait},
        name="twin-state-watch",
        daemon=True,
    )
    thread.start()
    return thread


def main(argv: list[str] | None = None) -> int:
    """Entry point of the background process that `mlops local up` starts."""
    parser = argparse.ArgumentParser(description="the local twin's AWS endpoint (started by `mlops local up`)")
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--accounts", required=True, help="JSON: {automation, staging, prod}")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--time-scale", type=float, default=0.01)
    parser.add_argument(
        "--watch-seconds", type=float, default=2.0, help="how often to check that the state folder still exists"
    )
    parser.add_argument(
        "--requests",
        choices=["strict", "lenient"],
        help="validate AWS requests against botocore's model (default: MLOPS_TWIN_STRICT_REQUESTS, else strict)",
    )
    parser.add_argument("--iam", choices=["enforce", "report", "off"], default=None, help="default: MLOPS_TWIN_IAM")
    parser.add_argument("--no-mlflow", action="store_true", help="do not start the MLflow tracking server")
    parser.add_argument(
        "--mlflow-at-first-build",
        action="store_true",
        help="start the MLflow tracking server at the first pipeline write, not now (MLOPS_TWIN_MLFLOW=lazy)",
    )
    args = parser.parse_args(argv)
    botocore_data.share()  # moto and the twin's own clients parse botocore's data files once
    gc_policy.tune()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    twin = TwinServer(
        state_dir=args.state_dir,
        accounts=json.loads(args.accounts),
        region=args.region,
        port=args.port,
        time_scale=args.time_scale,
        strict_requests=None if args.requests is None else args.requests == "strict",
        iam_mode=args.iam,
    )
    twin.iam.start()  # before the ready file: a twin whose IAM engine cannot start does not come up
    gc_policy.freeze_survivors()  # moto's and the SDK's modules live as long as the twin: no collection walks them
    # MLflow comes up in the background after the ready file: the twin's readiness does not wait for it.
    tracking = None if args.no_mlflow else MlflowServer(args.state_dir)
    ready = args.state_dir / SERVER_FILE
    partial = ready.with_suffix(".json.partial")  # `up` polls for this file: never let it read half of it
    described = {**twin.describe(), "started": time.time(), "mlflow_url": tracking.url if tracking else ""}
    partial.write_text(json.dumps(described))
    partial.replace(ready)
    # `mlops local up` is how a build usually starts: warm the step launcher now, unless told to wait for
    # the first pipeline write (MLOPS_TWIN_WARM_STEPS=lazy, as the tests run it).
    if step_launcher.warm_eagerly():
        step_launcher.warm_up()
    if tracking is not None:
        if args.mlflow_at_first_build:
            twin.at_first_build(tracking.start)
        else:
            tracking.start()

    def stop_all() -> None:
        twin.stop()
        if tracking is not None:
            tracking.stop()

    def shutdown(signum: int, frame: Any) -> None:
        threading.Thread(target=stop_all, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    stopped = threading.Event()
    stop_when_state_dir_removed(args.state_dir, stop_all, interval=args.watch_seconds, stopped=stopped)
    try:
        twin.serve_forever()
    finally:
        stopped.set()
        if tracking is not None:
            tracking.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
