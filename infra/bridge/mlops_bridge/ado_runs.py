"""Start the deploy pipeline through the Azure DevOps Runs API, with the `azure-devops` SDK, at most once.

Azure DevOps is the source of truth for "was a run started for this approval?", because our own store
(DynamoDB) or the network can fail after the run was created. So every start first asks Azure DevOps:

1. Builds - List with `tagFilters=<approval tag>` (a pipeline run is a build with the same id): a run
   tagged for this approval exists -> it is returned, nothing is started;
2. Builds - List of the deploy pipeline queued since the package was created, matched on the run's
   `templateParameters.modelPackageArn`: finds a run whose create answer was lost (5xx, timeout, dropped
   connection, a 2xx without a run) before it could be tagged; it is tagged now;
3. only then `POST .../pipelines/{id}/runs`; the created run is tagged (Tags - Add Build Tags, the body
   form: the path form cannot carry special characters). If the POST's outcome is unknown, step 2 runs
   at once; if the run is not visible yet, the error is raised and the retry's step 2 finds it.

SDK behaviour this module depends on (azure-devops 7.1.0b4 / msrest 0.7.1):
- it caches API locations on disk under `AZURE_DEVOPS_CACHE_DIR` (default: the home folder, read-only in
  Lambda), read when `azure.devops` is imported: so that variable is set before the import, below;
- its transport (urllib3 `Retry`) silently retries connection errors, and 5xx on GET/OPTIONS, with real
  sleeps (about 5 s to give up on a refused connection) and it honours `Retry-After` unbounded. We turn
  that off on each client and retry 429 ourselves, within a bounded wait, with an injected sleep;
- its errors carry no status code, so a response hook records the status and `Retry-After` of each answer;
- a 2xx whose body is not JSON raises msrest's `DeserializationError` (a `ValueError`); a 204 returns None;
  a JSON body without `id` returns a `Run` whose id is None: none of these proves a run;
- `Run._links` comes back in `additional_properties` (the model expects a `links` key), so the web URL is
  read from there, falling back to `{org}/{project}/_build/results?buildId={id}`;
- `get_build_client()` first discovers the Build area's URL through ResourceAreas (one more request per
  cold start); for dev.azure.com that URL is the organization URL, so the `BuildClient` is built on it.
"""

from __future__ import annotations

import os
import tempfile

# Must precede the SDK import: the SDK fixes its cache directory when azure.devops is first imported.
os.environ.setdefault("AZURE_DEVOPS_CACHE_DIR", os.path.join(tempfile.gettempdir(), "azure-devops-cache"))

import hashlib
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, TypeVar

from azure.core.exceptions import DeserializationError  # what msrest raises for a 2xx body it cannot read
from azure.devops.connection import Connection
from azure.devops.exceptions import AzureDevOpsAuthenticationError, AzureDevOpsClientRequestError
from azure.devops.v7_1.build.build_client import BuildClient
from azure.devops.v7_1.pipelines.models import (
    RepositoryResourceParameters,
    RunPipelineParameters,
    RunResourcesParameters,
)
from msrest.authentication import Authentication, BasicAuthentication, BasicTokenAuthentication
from msrest.exceptions import ClientException

from .credentials import AuthSecretStore, PatAuth, ServicePrincipalAuth
from .errors import (
    AzureDevOpsAuthError,
    AzureDevOpsBadAnswerError,
    AzureDevOpsError,
    AzureDevOpsUnavailableError,
    ConfigurationError,
)
from .events import StateChange, template_parameters
from .log import logger
from .settings import BridgeSettings
from .throttling import Throttled, with_throttle_retries

AZURE_DEVOPS_SCOPE = "499b84ac-1321-427f-aa17-267ca6975798/.default"
CredentialFactory = Callable[[str, str, str], Any]  # (tenant_id, client_id, client_secret) -> TokenCredential
APPROVAL_TAG_PREFIX = "mlops-approval"
# Step 2 reads at most this many of the deploy pipeline's runs queued since the package was created.
LOOKBACK_RUNS = 1000
T = TypeVar("T")
Answer = tuple[int, str | None, str | None, str]  # status, Retry-After, Content-Type, start of the body


def approval_tag(change: StateChange) -> str:
    """The tag that marks the run of one approval: readable, and exact through a digest of ARN + status.

    No commas (`tagFilters` is comma-separated) and short (ARNs can be long; a digest is not)."""
    digest = hashlib.sha256(f"{change.model_package_arn}|{change.approval_status}".encode()).hexdigest()[:20]
    return f"{APPROVAL_TAG_PREFIX}:{change.group}:v{change.version}:{digest}"


def default_credential_factory(tenant_id: str, client_id: str, client_secret: str) -> Any:
    from azure.identity import ClientSecretCredential  # only service-principal mode pays for this import

    return ClientSecretCredential(tenant_id=tenant_id, client_id=client_id, client_secret=client_secret)


class RunsApiStarter:
    """Starts one run of `ADO_PIPELINE_ID` on `ADO_BRANCH` with the four template parameters."""

    trigger = "runs_api"

    def __init__(
        self,
        settings: BridgeSettings,
        secrets: AuthSecretStore,
        *,
        credential_factory: CredentialFactory = default_credential_factory,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if settings.project is None or settings.pipeline_id is None:
            raise ConfigurationError(
                "the Runs API needs ADO_PROJECT and ADO_PIPELINE_ID", hint="set both, or ADO_TRIGGER=webhook"
            )
        self._settings = settings
        self._project: str = settings.project
        self._pipeline_id: int = settings.pipeline_id
        self._secrets = secrets
        self._credential_factory = credential_factory
        self._credentials: dict[tuple[str, str, str], Any] = {}  # keeps azure-identity's token cache warm
        self._sleep = sleep
        self._now = now

    def start(self, change: StateChange, *, not_before: datetime | None = None) -> dict[str, Any]:
        """The run of this approval: the one Azure DevOps already has (`created` False), else a new one.

        `not_before`: the package's creation time; no run for it can be older (bounds the lookup)."""
        existing = self.find(change, not_before=not_before)
        if existing is not None:
            return existing
        try:
            run = self._throttled(f"starting pipeline {self._pipeline_id}", change, lambda: self._post(change))
        except AzureDevOpsUnavailableError as unknown:
            # The run may have been created although we did not learn it (5xx, timeout, lost or bad answer).
            try:
                found = self.find(change, not_before=not_before)
            except AzureDevOpsError as lookup_failed:
                raise unknown from lookup_failed
            if found is None:
                raise
            logger.info(f"the answer to the create was lost, but run {found['runId']} exists: using it")
            return {**found, "created": True, "eventId": change.event_id}
        self._tag(change, run.id)
        links = getattr(getattr(run, "_links", None), "additional_properties", None) or {}
        return self._result(change, run.id, (links.get("web") or {}).get("href"), change.event_id, created=True)

    def find(self, change: StateChange, *, not_before: datetime | None = None) -> dict[str, Any] | None:
        """The run Azure DevOps has for this approval, or None. Tags the run if it was not tagged yet."""
        tag = approval_tag(change)
        tagged = self._throttled(
            "looking up runs tagged " + tag,
            change,
            lambda: self._builds(tag_filters=[tag], query_order="queueTimeAscending", top=10),
        )
        # The tag holds a digest of the ARN; the parameter, when the list shows it, must agree too.
        builds = [b for b in tagged if _parameter(b, "modelPackageArn") in (None, change.model_package_arn)]
        if not builds:
            recent = self._throttled(
                f"looking up runs of pipeline {self._pipeline_id} for the package",
                change,
                lambda: self._builds(min_time=not_before, query_order="queueTimeDescending", top=LOOKBACK_RUNS),
            )
            builds = [b for b in recent if _parameter(b, "modelPackageArn") == change.model_package_arn]
            if not builds:
                return None
            self._tag(change, min(b.id for b in builds))
        first = min(builds, key=lambda b: b.id)  # the run started first is the approval's run
        links = getattr(getattr(first, "_links", None), "additional_properties", None) or {}
        started_by = _parameter(first, "eventId") or change.event_id
        return self._result(change, first.id, (links.get("web") or {}).get("href"), started_by, created=False)

    def _result(
        self, change: StateChange, run_id: int, web_url: str | None, event_id: str, *, created: bool
    ) -> dict[str, Any]:
        return {
            "trigger": self.trigger,
            "runId": run_id,
            "runUrl": web_url or f"{self._settings.org_url}/{self._project}/_build/results?buildId={run_id}",
            "runApiUrl": f"{self._settings.org_url}/{self._project}/_apis/build/builds/{run_id}",
            "pipelineId": self._pipeline_id,
            "tag": approval_tag(change),
            "eventId": event_id,
            "created": created,
        }

    # ------------------------------------------------------------------------------------------ requests

    def _throttled(self, describe: str, change: StateChange, call: Callable[[], T]) -> T:
        return with_throttle_retries(
            call,
            describe=f"{describe} for {change.model_package_arn}",
            max_wait_seconds=self._settings.throttle_max_wait_seconds,
            sleep=self._sleep,
            now=self._now,
        )

    def _post(self, change: StateChange) -> Any:
        return self._run(f"starting pipeline {self._pipeline_id}", template_parameters(change))

    def _run(self, what: str, values: Mapping[str, str]) -> Any:
        """POST a run of this pipeline on the configured branch; the answer must carry a positive run id."""
        parameters = RunPipelineParameters(
            template_parameters=dict(values),
            resources=RunResourcesParameters(
                repositories={"self": RepositoryResourceParameters(ref_name=self._settings.branch)}
            ),
        )
        answers: list[Answer] = []
        run = self._request(
            what,
            answers,
            lambda: self._pipelines_client(answers).run_pipeline(parameters, self._project, self._pipeline_id),
        )
        run_id = getattr(run, "id", None)
        if not isinstance(run_id, int) or isinstance(run_id, bool) or run_id <= 0:
            raise self._bad_answer(what, answers, f"a JSON run whose id is {run_id!r}" if run else "no body")
        return run

    def _builds(self, **filters: Any) -> list[Any]:
        answers: list[Answer] = []
        builds = self._request(
            f"listing runs of pipeline {self._pipeline_id}",
            answers,
            lambda: self._build_client(answers).get_builds(self._project, definitions=[self._pipeline_id], **filters),
        )
        if not isinstance(builds, list):
            raise self._bad_answer(f"listing runs of pipeline {self._pipeline_id}", answers, "no list of builds")
        return builds

    def _tag(self, change: StateChange, run_id: int) -> None:
        answers: list[Answer] = []
        tag = approval_tag(change)
        tags = self._throttled(
            f"tagging run {run_id} with {tag}",
            change,
            lambda: self._request(
                f"tagging run {run_id}",
                answers,
                lambda: self._build_client(answers).add_build_tags([tag], self._project, run_id),
            ),
        )
        if not isinstance(tags, list) or tag not in tags:
            raise AzureDevOpsError(
                f"run {run_id} was started, but tagging it {tag!r} did not take (tags now: {tags!r})",
                hint="Lambda retries the event; the retry finds the run by its modelPackageArn parameter and "
                "starts no second one. Check that the identity may edit build quality/tags on the pipeline",
            )

    def _request(self, what: str, answers: list[Answer], call: Callable[[], T]) -> T:
        try:
            return call()
        except ClientException as exc:
            # Only the SDK's own error types mean "Azure DevOps answered with an error status"; a plain
            # msrest ClientRequestError is a transport failure (timeout, refused), whatever was answered before.
            answered = isinstance(exc, AzureDevOpsClientRequestError | AzureDevOpsAuthenticationError)
            if answered and answers and not 200 <= answers[-1][0] < 300:
                status, retry_after = answers[-1][0], answers[-1][1]
            else:
                status, retry_after = None, None
            raise self._error(what, status, retry_after, exc) from exc
        except DeserializationError as exc:  # a 2xx whose body is not the JSON the API defines
            raise self._bad_answer(what, answers, f"a body that is not that JSON ({exc})") from exc
        except ValueError as exc:  # the SDK's "API resource location ... is not registered"
            raise AzureDevOpsError(
                f"{self._settings.org_url} does not offer the API for {what}: {exc}",
                hint="check ADO_ORG_URL: it must be the organization URL, e.g. https://dev.azure.com/contoso",
            ) from exc

    def _bad_answer(self, what: str, answers: list[Answer], found: str) -> AzureDevOpsBadAnswerError:
        status, _, content_type, body = answers[-1] if answers else (None, None, None, "")
        sign_in = "html" in (content_type or "").lower()
        return AzureDevOpsBadAnswerError(
            f"Azure DevOps answered {status} ({content_type or 'no content type'}) to {what} in "
            f"{self._settings.org_url}/{self._project}: expected JSON with the run's numeric id, found {found}"
            + (f"; the body starts {body!r}" if body else ""),
            hint=(
                "an HTML page is Azure DevOps' sign-in page for credentials it does not accept, or a proxy's: "
                f"check the token in {self._secrets.secret_arn} and ADO_ORG_URL. "
                if sign_in
                else "check that ADO_ORG_URL reaches Azure DevOps directly (no proxy rewriting answers). "
            )
            + "Nothing is recorded as started: Lambda retries the event, which finds the run if one was created",
        )

    def _error(self, what: str, status: int | None, retry_after: str | None, exc: Exception) -> Exception:
        where = f"pipeline {self._pipeline_id} in {self._settings.org_url}/{self._project}"
        if status in (401, 403):
            self._secrets.invalidate()  # a rotated secret is picked up by the next attempt
            return AzureDevOpsAuthError(
                f"Azure DevOps answered {status} to {what} ({where}): the credentials in secret "
                f"{self._secrets.secret_arn} were refused ({exc})",
                hint="renew the PAT or service principal in that secret (scope: Build read & execute) "
                "and check it may run this pipeline; then replay the DLQ",
            )
        if status == 429:
            return Throttled(retry_after)
        if status is None or status >= 500:
            seen = f"answered {status}" if status else "did not answer (timeout or no connection)"
            return AzureDevOpsUnavailableError(
                f"Azure DevOps {seen} when {what} ({where}): {exc}",
                hint="Lambda retries the event (the retry finds a run that was created meanwhile); if it lands "
                "in the DLQ, check status.dev.azure.com and replay it",
            )
        return AzureDevOpsError(
            f"Azure DevOps answered {status} when {what} ({where}): {exc}",
            hint="check ADO_PROJECT, ADO_PIPELINE_ID, ADO_BRANCH and that the pipeline declares the parameters "
            "modelPackageArn, modelPackageGroup, modelPackageVersion and eventId",
        )

    def _authentication(self) -> Authentication:
        auth = self._secrets.get()
        if isinstance(auth, PatAuth):
            return BasicAuthentication("", auth.token)
        if isinstance(auth, ServicePrincipalAuth):
            key = (auth.tenant_id, auth.client_id, auth.client_secret)
            credential = self._credentials.get(key)
            if credential is None:
                credential = self._credentials[key] = self._credential_factory(*key)
            try:
                token = credential.get_token(AZURE_DEVOPS_SCOPE).token
            except Exception as exc:  # azure-identity raises several types; all mean "no token"
                raise AzureDevOpsAuthError(
                    f"could not get an Entra token for client {auth.client_id} in tenant {auth.tenant_id} "
                    f"(secret {self._secrets.secret_arn}): {type(exc).__name__}: {exc}",
                    hint="check the service principal's secret and that it is added to the Azure DevOps organization",
                ) from exc
            return BasicTokenAuthentication({"access_token": token})
        raise ConfigurationError(
            f"secret {self._secrets.secret_arn} is of type {type(auth).__name__}: expected 'pat' or "
            "'service_principal' with ADO_TRIGGER=runs_api",
            hint="store a PAT or service principal in the secret, or set ADO_TRIGGER=webhook",
        )

    def _pipelines_client(self, answers: list[Answer]) -> Any:
        creds = self._authentication()
        return self._configured(
            Connection(base_url=self._settings.org_url, creds=creds).clients_v7_1.get_pipelines_client(), answers
        )

    def _build_client(self, answers: list[Answer]) -> Any:
        return self._configured(BuildClient(self._settings.org_url, self._authentication()), answers)

    def _configured(self, client: Any, answers: list[Answer]) -> Any:
        disable_transport_retries(client)
        client.config.connection.timeout = self._settings.http_timeout_seconds
        client.config.hooks.append(lambda response, *_, **__: answers.append(_answer(response)))
        return client


def disable_transport_retries(client: Any) -> None:
    """Mutate, not replace, the Retry object: the session adopted it when the client was built."""
    policy = client.config.retry_policy.policy
    client.config.retry_policy.retries = 0  # total, connect and read
    policy.status = 0
    policy.other = 0
    policy.status_forcelist = frozenset()
    policy.raise_on_status = False
    policy.respect_retry_after_header = False
    policy.backoff_factor = 0


def _answer(response: Any) -> Answer:
    body = response.content[:120].decode("utf-8", "replace") if response.content else ""
    return (
        int(response.status_code),
        response.headers.get("Retry-After"),
        response.headers.get("Content-Type"),
        " ".join(body.split()),
    )


def _parameter(build: Any, name: str) -> str | None:
    parameters = getattr(build, "template_parameters", None) or {}
    value = parameters.get(name) if isinstance(parameters, dict) else None
    return value if isinstance(value, str) else None
