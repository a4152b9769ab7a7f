"""A fake Azure DevOps organization on loopback: the Runs API and incoming webhooks, as the real SDK calls them.

What the `azure-devops` SDK (7.1.0b4) actually sends, and what this server therefore answers:

- `OPTIONS /{org}/_apis` (once per process and org URL; the SDK also caches the answer on disk under
  `AZURE_DEVOPS_CACHE_DIR` for 12 hours) -> a collection of API resource locations. The Runs API is
  location `7859261e-d2e9-4a68-b820-a5d84cc5bb3d` (area `pipelines`, resource `runs`); the SDK builds the
  URL from its `routeTemplate` and negotiates the version against `minVersion`/`maxVersion`.
- `POST /{org}/{project}/_apis/pipelines/{id}/runs` with the version in the `Accept` header
  (`application/json;api-version=7.1-preview.1`, not in the query string) and a JSON body of
  `templateParameters` (string values), `resources.repositories.self.refName` and `variables`.
- `GET .../pipelines/{id}/runs` and `GET .../pipelines/{id}/runs/{runId}`.
- The Build API's view of the same runs (a pipeline run is a build with the same id), as Microsoft's REST
  spec (build 7.1) defines it: `GET /{org}/{project}/_apis/build/builds` (Builds - List; filters
  `definitions`, `tagFilters` (comma-separated, a build must carry all), `minTime`/`maxTime` on the queue
  time, `queryOrder`, `$top`; answer `{"count", "value": [Build]}` with `templateParameters` and `tags`),
  `POST /{org}/{project}/_apis/build/builds/{buildId}/tags` (Tags - Add Build Tags; body: a JSON array of
  strings; answer: all tags of the build) and `GET` of the same path. Location ids
  `0cd358e1-9217-4d94-8269-1c1ee6f93dcf` (builds, 7.1-preview.7) and `6e6114b2-8161-44c8-8f6c-c5505782427f`
  (tags, 7.1-preview.3).
- `POST /{org}/_apis/public/distributedtask/webhooks/{name}?api-version=6.0-preview`: an incoming
  webhook; when a secret is registered for it, the bare-hex HMAC-SHA1 of the exact body bytes must be
  in the header the (fake) service connection names.

Every request is recorded (method, path, query, headers, body). Faults can be queued: any status
(401, 429 with `Retry-After`, 503, ...) with any body and content type (a 2xx HTML sign-in page, a 204),
slow answers, a dropped connection, and `after_create` faults that create the run first and then fail
the answer (the run exists, the caller does not learn it). `on_trigger`, a callable, receives every
run and webhook delivery; the local twin uses it to hand the run to its pipeline runner.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mlops.local.fake_ado_project import LOCATIONS, ProjectStore

RUNS_LOCATION_ID = "7859261e-d2e9-4a68-b820-a5d84cc5bb3d"
PIPELINES_LOCATION_ID = "28e1305e-2afe-47bf-abaf-cbb0e6a91988"
BUILDS_LOCATION_ID = "0cd358e1-9217-4d94-8269-1c1ee6f93dcf"
BUILD_TAGS_LOCATION_ID = "6e6114b2-8161-44c8-8f6c-c5505782427f"
DEFAULT_SIGNATURE_HEADER = "X-MLOps-Signature"

_RUNS_PATH = re.compile(
    r"^/(?P<org>[^/]+)/(?P<project>[^/]+)/_apis/pipelines/(?P<pipeline>\d+)/runs(?:/(?P<run>\d+))?/?$"
)
_BUILDS_PATH = re.compile(r"^/(?P<org>[^/]+)/(?P<project>[^/]+)/_apis/build/builds/?$", re.IGNORECASE)
_TAGS_PATH = re.compile(r"^/(?P<org>[^/]+)/(?P<project>[^/]+)/_apis/build/builds/(?P<build>\d+)/tags/?$", re.IGNORECASE)
_WEBHOOK_PATH = re.compile(r"^/(?P<org>[^/]+)/_apis/public/distributedtask/webhooks/(?P<name>[^/]+)/?$")
_OPTIONS_PATH = re.compile(r"^/(?P<org>[^/]+)/_apis/?$")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8"))

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class FakeRun:
    id: int
    project: str
    pipeline_id: int
    template_parameters: dict[str, str]
    ref_name: str | None
    variables: dict[str, Any]
    created: datetime
    state: str = "inProgress"
    result: str | None = None
    tags: list[str] = field(default_factory=list)

    def web_url(self, org_url: str) -> str:
        return f"{org_url}/{self.project}/_build/results?buildId={self.id}"

    def to_build_json(self, org_url: str) -> dict[str, Any]:
        """The run as the Build API shows it (Build in Microsoft's build 7.1 spec; the fields a client reads)."""
        api_url = f"{org_url}/{self.project}/_apis/build/Builds/{self.id}"
        answer: dict[str, Any] = {
            "_links": {"self": {"href": api_url}, "web": {"href": self.web_url(org_url)}},
            "id": self.id,
            "buildNumber": f"{self.created:%Y%m%d}.{self.id}",
            "status": _BUILD_STATUS.get(self.state, "none"),
            "queueTime": self.created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "url": api_url,
            "definition": {"id": self.pipeline_id, "name": f"pipeline-{self.pipeline_id}", "type": "build"},
            "project": {"name": self.project},
            "sourceBranch": self.ref_name,
            "tags": list(self.tags),
            "templateParameters": dict(self.template_parameters),
            "reason": "manual",
        }
        if self.result is not None:
            answer["result"] = self.result
        return answer

    def to_json(self, org_url: str) -> dict[str, Any]:
        api_url = f"{org_url}/{self.project}/_apis/pipelines/{self.pipeline_id}/runs/{self.id}"
        answer: dict[str, Any] = {
            "_links": {"self": {"href": api_url}, "web": {"href": self.web_url(org_url)}},
            "pipeline": {
                "url": f"{org_url}/{self.project}/_apis/pipelines/{self.pipeline_id}?revision=1",
                "id": self.pipeline_id,
                "revision": 1,
                "name": f"pipeline-{self.pipeline_id}",
                "folder": "\\",
            },
            "state": self.state,
            "createdDate": self.created.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "url": api_url,
            "resources": {"repositories": {"self": {"refName": self.ref_name, "version": "0" * 40}}},
            "templateParameters": dict(self.template_parameters),
            "id": self.id,
            "name": f"{self.created:%Y%m%d}.{self.id}",
        }
        if self.result is not None:
            answer["result"] = self.result
        return answer


@dataclass(frozen=True)
class WebhookDelivery:
    name: str
    payload: Any
    body: bytes
    headers: dict[str, str]


Trigger = FakeRun | WebhookDelivery


@dataclass
class Fault:
    """One queued misbehaviour, applied to the next `times` requests whose kind matches `only`."""

    status: int | None = None  # None: answer normally (after the delay)
    retry_after: str | None = None
    delay_seconds: float = 0.0
    body: str | None = None
    content_type: str | None = None  # None: the kind of body Azure DevOps sends for that status
    only: str | None = None  # "options" | "runs" | "runs-get" | "builds" | "tags" | "webhook" | None for any
    times: int = 1
    after_create: bool = False  # handle the request (a POST creates its run), then answer with the fault
    drop_connection: bool = False  # close the connection without any answer (the answer is lost)


@dataclass
class _Webhook:
    secret: str | None
    signature_header: str


class FakeAzureDevOps:
    """A loopback Azure DevOps organization. Use as a context manager, or `start()` and `stop()`."""

    def __init__(
        self,
        organization: str = "fabrikam",
        *,
        pat: str | None = None,
        bearer_tokens: tuple[str, ...] = (),
        pipelines: dict[int, set[str] | None] | None = None,
        on_trigger: Callable[[Trigger], None] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        project: str | None = None,
        store: Path | None = None,
        identities: tuple[str, ...] = (),
    ) -> None:
        """`pat` / `bearer_tokens`: the credentials accepted (none given: any caller is let in).
        `pipelines`: known pipeline ids with their declared template parameters (None: any parameter);
        None accepts every pipeline id and parameter.
        `project`: serve that project's APIs (pipelines, environments, checks, service connections, pipeline
        permissions, variable groups, identities, ACLs, approvals: mlops.local.fake_ado_project), with its
        state in the JSON file `store` and `identities` (users and groups) in the organization."""
        self.organization = organization
        self.pat = pat
        self.bearer_tokens = tuple(bearer_tokens)
        self.pipelines = pipelines
        self.on_trigger = on_trigger
        self._clock = clock
        self.project = (
            ProjectStore(project, store=store, identities=identities, clock=clock) if project is not None else None
        )
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._runs: list[FakeRun] = []
        self._deliveries: list[WebhookDelivery] = []
        self._faults: list[Fault] = []
        self._webhooks: dict[str, _Webhook] = {}
        self.hook_errors: list[BaseException] = []
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------------------------ lifecycle

    def start(self) -> FakeAzureDevOps:
        if self._server is not None:
            raise RuntimeError("the fake Azure DevOps server is already running; call stop() first")
        self._stopping.clear()
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-azure-devops", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()  # ends slow answers at once
        server.shutdown()
        server.close_connections()
        server.server_close()
        thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeAzureDevOps:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the fake Azure DevOps server is not running; call start() first")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def org_url(self) -> str:
        return f"{self.base_url}/{self.organization}"

    def webhook_url(self, name: str) -> str:
        return f"{self.org_url}/_apis/public/distributedtask/webhooks/{name}?api-version=6.0-preview"

    # ------------------------------------------------------------------------------------ behaviour

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        retry_after: str | int | None = None,
        only: str | None = None,
        body: str | None = None,
        content_type: str | None = None,
        after_create: bool = False,
    ) -> None:
        """Answer the next `times` matching requests with `status` (e.g. 401, 429 with `retry_after`, 503).

        `body`/`content_type` replace the answer's body (e.g. a 200 HTML sign-in page, or JSON without an id);
        `after_create` creates the run first, so the run exists although the caller sees the fault."""
        self._add_fault(
            Fault(
                status=status,
                retry_after=None if retry_after is None else str(retry_after),
                body=body,
                content_type=content_type,
                only=only,
                times=times,
                after_create=after_create,
            )
        )

    def drop_next(self, *, times: int = 1, only: str | None = None, after_create: bool = False) -> None:
        """Close the connection of the next `times` matching requests without answering (the answer is lost);
        with `after_create` the run is created first."""
        self._add_fault(Fault(drop_connection=True, only=only, times=times, after_create=after_create))

    def slow_next(
        self,
        seconds: float,
        *,
        times: int = 1,
        only: str | None = None,
        status: int | None = None,
        after_create: bool = False,
    ) -> None:
        """Hold the next `times` matching answers for `seconds` (cut short when the server stops); with
        `after_create` the run is created before the wait (a read timeout that hides a created run)."""
        self._add_fault(Fault(status=status, delay_seconds=seconds, only=only, times=times, after_create=after_create))

    def register_webhook(
        self, name: str, *, secret: str | None = None, signature_header: str = DEFAULT_SIGNATURE_HEADER
    ) -> None:
        with self._lock:
            self._webhooks[name] = _Webhook(secret=secret, signature_header=signature_header)

    def set_run_state(self, run_id: int, state: str, result: str | None = None) -> None:
        with self._lock:
            for run in self._runs:
                if run.id == run_id:
                    run.state, run.result = state, result
                    return
        raise KeyError(f"no run {run_id} on the fake Azure DevOps server (runs: {[r.id for r in self.runs]})")

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._runs.clear()
            self._deliveries.clear()
            self._faults.clear()
            self.hook_errors.clear()

    # ------------------------------------------------------------------------------------ what happened

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def runs(self) -> list[FakeRun]:
        with self._lock:
            return list(self._runs)

    @property
    def webhook_deliveries(self) -> list[WebhookDelivery]:
        with self._lock:
            return list(self._deliveries)

    def requests_to(self, kind: str) -> list[RecordedRequest]:
        """Recorded requests of one kind: "options", "runs" (POST), "runs-get", "builds", "tags" or "webhook"."""
        return [r for r in self.requests if _kind(r.method, r.path) == kind]

    # ------------------------------------------------------------------------------------ internals

    def _add_fault(self, fault: Fault) -> None:
        if fault.times < 1:
            raise ValueError(f"times must be >= 1, got {fault.times}")
        if fault.only not in (None, *_KINDS):
            raise ValueError(f"only must be one of {', '.join(_KINDS)} or None; got {fault.only!r}")
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, kind: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.only in (None, kind):
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _authorized(self, request: RecordedRequest) -> bool:
        if self.pat is None and not self.bearer_tokens:
            return True
        authorization = request.header("authorization") or ""
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "basic" and self.pat is not None:
            try:
                _user, _, password = base64.b64decode(value).decode("utf-8").partition(":")
            except ValueError:
                return False
            return hmac.compare_digest(password, self.pat)
        if scheme.lower() == "bearer":
            return any(hmac.compare_digest(value, token) for token in self.bearer_tokens)
        return False

    def _handle(self, request: RecordedRequest) -> tuple[int, dict[str, str], bytes] | None:
        """The answer, or None to close the connection without one."""
        kind = _kind(request.method, request.path)
        fault = self._take_fault(kind)
        if fault is None or not fault.after_create:
            if fault is not None and fault.delay_seconds:
                self._stopping.wait(fault.delay_seconds)
            if fault is not None and fault.drop_connection:
                return None
            if fault is not None and fault.status is not None:
                return _fault_answer(fault)
            return self._answer(request, kind)
        answer = self._answer(request, kind)  # the run is created; then its answer goes wrong
        if fault.delay_seconds:
            self._stopping.wait(fault.delay_seconds)
        if fault.drop_connection:
            return None
        return _fault_answer(fault) if fault.status is not None else answer

    def _answer(self, request: RecordedRequest, kind: str) -> tuple[int, dict[str, str], bytes]:
        if kind == "webhook":
            return self._webhook(request)  # public endpoint: the HMAC signature is its only check
        if not self._authorized(request):
            return _text(
                401, "Access Denied: the Personal Access Token or bearer token is not valid (fake Azure DevOps)."
            )
        if kind == "options":
            return self._options(request)
        if kind in ("builds", "tags"):
            return self._build_api(request, kind)
        if self.project is not None and kind == "other":
            org = request.path.strip("/").split("/", 1)[0]
            if org.lower() != self.organization.lower():
                return _wrapped_error(404, f"no organization at {request.path}")
            if not _api_version(request):
                return _wrapped_error(400, "No api-version was supplied for the request: add it to Accept or the query")
            try:
                body = request.json() if request.body else None
            except ValueError:
                return _wrapped_error(400, "the request body is not JSON")
            answer = self.project.handle(request.method, request.path, request.query, body, self.organization)
            if answer is not None:
                return answer
        match = _RUNS_PATH.match(request.path)
        if match is None or match["org"].lower() != self.organization.lower():
            return _wrapped_error(
                404, f"no route for {request.method} {request.path} on organization {self.organization}"
            )
        if not _api_version(request):
            return _wrapped_error(400, "No api-version was supplied for the request: add it to Accept or the query")
        pipeline_id = int(match["pipeline"])
        if self.pipelines is not None and pipeline_id not in self.pipelines:
            return _wrapped_error(404, f"Pipeline with id {pipeline_id} does not exist in project {match['project']}")
        if kind == "runs":
            return self._start_run(request, match["project"], pipeline_id)
        if match["run"] is not None:
            run_id = int(match["run"])
            for run in self.runs:
                if run.id == run_id and run.pipeline_id == pipeline_id:
                    return _json(200, run.to_json(self.org_url))
            return _wrapped_error(404, f"Run {run_id} of pipeline {pipeline_id} does not exist")
        listed = [r.to_json(self.org_url) for r in reversed(self.runs) if r.pipeline_id == pipeline_id]
        return _json(200, {"count": len(listed), "value": listed})

    def _options(self, request: RecordedRequest) -> tuple[int, dict[str, str], bytes]:
        match = _OPTIONS_PATH.match(request.path)
        if match is None or match["org"].lower() != self.organization.lower():
            return _wrapped_error(404, f"no organization at {request.path}")
        locations = [
            {
                "id": RUNS_LOCATION_ID,
                "area": "pipelines",
                "resourceName": "runs",
                "routeTemplate": "{project}/_apis/{area}/{pipelineId}/{resource}/{runId}",
                "resourceVersion": 1,
                "minVersion": 5.1,
                "maxVersion": 7.2,
                "releasedVersion": "0.0",
            },
            {
                "id": PIPELINES_LOCATION_ID,
                "area": "pipelines",
                "resourceName": "pipelines",
                "routeTemplate": "{project}/_apis/{resource}/{pipelineId}",
                "resourceVersion": 1,
                "minVersion": 5.1,
                "maxVersion": 7.2,
                "releasedVersion": "0.0",
            },
            {
                "id": BUILDS_LOCATION_ID,
                "area": "build",
                "resourceName": "builds",
                "routeTemplate": "{project}/_apis/build/Builds/{buildId}",
                "resourceVersion": 7,
                "minVersion": 1.0,
                "maxVersion": 7.2,
                "releasedVersion": "7.1",
            },
            {
                "id": BUILD_TAGS_LOCATION_ID,
                "area": "build",
                "resourceName": "tags",
                "routeTemplate": "{project}/_apis/build/builds/{buildId}/tags/{*tag}",
                "resourceVersion": 3,
                "minVersion": 2.0,
                "maxVersion": 7.2,
                "releasedVersion": "7.1",
            },
        ]
        if self.project is not None:
            locations += [
                {
                    "id": location_id,
                    "area": area,
                    "resourceName": resource,
                    "routeTemplate": template,
                    "resourceVersion": 1,
                    "minVersion": 1.0,
                    "maxVersion": 7.2,
                    "releasedVersion": "7.1",
                }
                for location_id, area, resource, template in LOCATIONS
            ]
        return _json(200, {"count": len(locations), "value": locations})

    def _build_api(self, request: RecordedRequest, kind: str) -> tuple[int, dict[str, str], bytes]:
        match = (_BUILDS_PATH if kind == "builds" else _TAGS_PATH).match(request.path)
        if match is None or match["org"].lower() != self.organization.lower():
            return _wrapped_error(404, f"no route for {request.method} {request.path} on {self.organization}")
        if not _api_version(request):
            return _wrapped_error(400, "No api-version was supplied for the request: add it to Accept or the query")
        project = match["project"]
        if kind == "builds":
            if request.method != "GET":
                return _wrapped_error(405, f"{request.method} on Builds is not served by the fake (only List)")
            return _json(200, self._list_builds(request.query, project))
        build_id = int(match["build"])
        run = next((r for r in self.runs if r.id == build_id and r.project == project), None)
        if run is None:
            return _wrapped_error(404, f"The requested build {build_id} could not be found.")
        if request.method == "POST":
            try:
                tags = request.json()
            except ValueError:
                return _wrapped_error(400, "the request body is not JSON: expected an array of tag strings")
            if not isinstance(tags, list) or not all(isinstance(t, str) and t.strip() for t in tags):
                return _wrapped_error(400, f"expected a JSON array of non-empty tag strings, got {tags!r}")
            with self._lock:
                for tag in tags:
                    if tag.strip() not in run.tags:
                        run.tags.append(tag.strip())
        elif request.method != "GET":
            return _wrapped_error(405, f"{request.method} on build tags is not served by the fake (GET, POST)")
        tags_now = sorted(run.tags)
        return _json(200, {"count": len(tags_now), "value": tags_now})

    def _list_builds(self, query: dict[str, list[str]], project: str) -> dict[str, Any]:
        def one(name: str) -> str | None:
            return query[name][0] if name in query else None

        definitions = {int(d) for d in (one("definitions") or "").split(",") if d.strip()}
        tag_filters = [t.strip() for t in (one("tagFilters") or "").split(",") if t.strip()]
        min_time, max_time = _query_time(one("minTime")), _query_time(one("maxTime"))
        ascending = (one("queryOrder") or "queueTimeDescending") == "queueTimeAscending"
        builds = [
            r
            for r in sorted(self.runs, key=lambda r: (r.created, r.id), reverse=not ascending)
            if r.project == project
            and (not definitions or r.pipeline_id in definitions)
            and all(tag.lower() in {t.lower() for t in r.tags} for tag in tag_filters)
            and (min_time is None or r.created >= min_time)
            and (max_time is None or r.created <= max_time)
        ]
        top = one("$top")
        if top is not None:
            builds = builds[: int(top)]
        listed = [b.to_build_json(self.org_url) for b in builds]
        return {"count": len(listed), "value": listed}

    def _start_run(self, request: RecordedRequest, project: str, pipeline_id: int) -> tuple[int, dict[str, str], bytes]:
        try:
            body = request.json() if request.body else {}
        except ValueError:
            return _wrapped_error(400, "the request body is not JSON")
        if not isinstance(body, dict):
            return _wrapped_error(400, "the request body must be a JSON object of run parameters")
        parameters = body.get("templateParameters") or {}
        if not isinstance(parameters, dict) or not all(isinstance(v, str) for v in parameters.values()):
            return _wrapped_error(400, f"templateParameters must map names to strings, got {parameters!r}")
        declared = (self.pipelines or {}).get(pipeline_id)
        unexpected = sorted(set(parameters) - declared) if declared is not None else []
        if unexpected:
            return _wrapped_error(400, f"Unexpected parameter '{unexpected[0]}'")
        ref_name = (((body.get("resources") or {}).get("repositories") or {}).get("self") or {}).get("refName")
        with self._lock:
            run = FakeRun(
                id=len(self._runs) + 1,
                project=project,
                pipeline_id=pipeline_id,
                template_parameters=dict(parameters),
                ref_name=ref_name,
                variables=dict(body.get("variables") or {}),
                created=self._clock(),
            )
            self._runs.append(run)
        failure = self._call_hook(run)
        if failure is not None:
            return failure
        return _json(200, run.to_json(self.org_url))

    def _webhook(self, request: RecordedRequest) -> tuple[int, dict[str, str], bytes]:
        match = _WEBHOOK_PATH.match(request.path)
        if match is None or match["org"].lower() != self.organization.lower():
            return _wrapped_error(404, f"no incoming webhook at {request.path}")
        with self._lock:
            webhook = self._webhooks.get(match["name"])
        if webhook is None:
            return _wrapped_error(404, f"no service connection for incoming webhook {match['name']!r}")
        if webhook.secret is not None:
            expected = hmac.new(webhook.secret.encode("utf-8"), request.body, hashlib.sha1).hexdigest()
            received = request.header(webhook.signature_header) or ""
            if not hmac.compare_digest(received.lower(), expected):
                return _wrapped_error(401, f"the {webhook.signature_header} signature does not match the request body")
        try:
            payload = request.json()
        except ValueError:
            return _wrapped_error(400, "the webhook payload is not JSON")
        delivery = WebhookDelivery(
            name=match["name"], payload=payload, body=request.body, headers=dict(request.headers)
        )
        with self._lock:
            self._deliveries.append(delivery)
        failure = self._call_hook(delivery)
        if failure is not None:
            return failure
        return 200, {"Content-Type": "text/plain"}, b""

    def _call_hook(self, trigger: Trigger) -> tuple[int, dict[str, str], bytes] | None:
        if self.on_trigger is None:
            return None
        try:
            self.on_trigger(trigger)
        except Exception as exc:
            with self._lock:
                self.hook_errors.append(exc)
            return _wrapped_error(500, f"the on_trigger hook failed: {type(exc).__name__}: {exc}")
        return None


# A run's state (Pipelines API) as the same run's status in the Build API.
_BUILD_STATUS = {"inProgress": "inProgress", "completed": "completed", "canceling": "cancelling", "unknown": "none"}
_KINDS = ("options", "runs", "runs-get", "builds", "tags", "webhook")


def _kind(method: str, path: str) -> str:
    if method == "OPTIONS":
        return "options"
    if _WEBHOOK_PATH.match(path):
        return "webhook"
    if _BUILDS_PATH.match(path):
        return "builds"
    if _TAGS_PATH.match(path):
        return "tags"
    if _RUNS_PATH.match(path):
        return "runs" if method == "POST" else "runs-get"
    return "other"


def _api_version(request: RecordedRequest) -> str | None:
    if "api-version" in request.query:
        return request.query["api-version"][0]
    found = re.search(r"api-version=([\w.\-]+)", request.header("accept") or "")
    return found.group(1) if found else None


def _query_time(text: str | None) -> datetime | None:
    if not text:
        return None
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _json(status: int, payload: Any, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json; charset=utf-8", **(headers or {})}, json.dumps(payload).encode()


def _text(status: int, text: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "text/plain; charset=utf-8", **(headers or {})}, text.encode("utf-8")


def _wrapped_error(
    status: int, message: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    # The shape Azure DevOps uses for service errors; the SDK turns it into AzureDevOpsServiceError.
    payload = {
        "$id": "1",
        "innerException": None,
        "message": message,
        "typeName": "Microsoft.TeamFoundation.Framework.Server.FakeAzureDevOpsException, Fake",
        "typeKey": "FakeAzureDevOpsException",
        "errorCode": 0,
        "eventId": 3000,
    }
    return _json(status, payload, headers)


def _fault_answer(fault: Fault) -> tuple[int, dict[str, str], bytes]:
    if fault.status is None:
        raise ValueError("a fault answer needs a status")
    headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
    if fault.content_type is not None:
        return fault.status, {"Content-Type": fault.content_type, **headers}, (fault.body or "").encode("utf-8")
    if fault.status == 401:
        return _text(401, fault.body or "Access Denied: the token has expired (fake fault).", headers)
    if fault.status >= 500:
        return _text(fault.status, fault.body or f"Service Unavailable (fake fault {fault.status})", headers)
    return _wrapped_error(fault.status, fault.body or f"fake fault {fault.status}", headers)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    fake: FakeAzureDevOps

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        # Keep-alive connections park handler threads in readline(); shutting the sockets ends them.
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client: nothing left to end
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as Azure DevOps; every answer carries Content-Length
    server: _Server

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; with Nagle's algorithm the body then waits for the client's
        # delayed ACK (about 40 ms a request on loopback).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _serve(self) -> None:
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        request = RecordedRequest(
            method=self.command,
            path=url.path,
            query=parse_qs(url.query),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        fake = self.server.fake
        fake._record(request)
        answer = fake._handle(request)
        if answer is None:  # a lost answer: the connection closes with nothing sent
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        status, headers, payload = answer
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client gave up (e.g. its timeout on a slow answer)

    do_GET = do_POST = do_OPTIONS = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return  # every request is recorded in FakeAzureDevOps.requests; stderr stays quiet
