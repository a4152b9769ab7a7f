"""Start the deploy pipeline through the Azure DevOps Runs API, with the `azure-devops` SDK.

SDK behaviour this module depends on (azure-devops 7.1.0b4 / msrest 0.7.1):
- it caches API locations on disk under `AZURE_DEVOPS_CACHE_DIR` (default: the home folder, read-only in
  Lambda), read when `azure.devops` is imported: so that variable is set before the import, below;
- its transport (urllib3 `Retry`) silently retries connection errors, and 5xx on GET/OPTIONS, with real
  sleeps (about 5 s to give up on a refused connection) and it honours `Retry-After` unbounded. We turn
  that off on each client and retry 429 ourselves, within a bounded wait, with an injected sleep;
- its errors carry no status code, so a response hook records the status and `Retry-After` of each answer;
- `Run._links` comes back in `additional_properties` (the model expects a `links` key), so the web URL is
  read from there, falling back to `{org}/{project}/_build/results?buildId={id}`.
"""

from __future__ import annotations

import os
import tempfile

# Must precede the SDK import: the SDK fixes its cache directory when azure.devops is first imported.
os.environ.setdefault("AZURE_DEVOPS_CACHE_DIR", os.path.join(tempfile.gettempdir(), "azure-devops-cache"))

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from azure.devops.connection import Connection
from azure.devops.exceptions import AzureDevOpsAuthenticationError, AzureDevOpsClientRequestError
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
    AzureDevOpsError,
    AzureDevOpsUnavailableError,
    ConfigurationError,
)
from .events import StateChange, template_parameters
from .settings import BridgeSettings
from .throttling import Throttled, with_throttle_retries

AZURE_DEVOPS_SCOPE = "499b84ac-1321-427f-aa17-267ca6975798/.default"
CredentialFactory = Callable[[str, str, str], Any]  # (tenant_id, client_id, client_secret) -> TokenCredential


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

    def start(self, change: StateChange) -> dict[str, Any]:
        run = with_throttle_retries(
            lambda: self._post(change),
            describe=f"starting pipeline {self._pipeline_id} for {change.model_package_arn}",
            max_wait_seconds=self._settings.throttle_max_wait_seconds,
            sleep=self._sleep,
            now=self._now,
        )
        links = getattr(getattr(run, "_links", None), "additional_properties", None) or {}
        web_url = (links.get("web") or {}).get("href")
        return {
            "trigger": self.trigger,
            "runId": run.id,
            "runUrl": web_url or f"{self._settings.org_url}/{self._project}/_build/results?buildId={run.id}",
            "runName": run.name,
            "state": run.state,
            "pipelineId": self._pipeline_id,
            "eventId": change.event_id,
        }

    # ------------------------------------------------------------------------------------------ one attempt

    def _post(self, change: StateChange) -> Any:
        answers: list[tuple[int, str | None]] = []
        client = self._client(self._authentication(), answers)
        parameters = RunPipelineParameters(
            template_parameters=template_parameters(change),
            resources=RunResourcesParameters(
                repositories={"self": RepositoryResourceParameters(ref_name=self._settings.branch)}
            ),
        )
        try:
            return client.run_pipeline(parameters, self._project, self._pipeline_id)
        except ClientException as exc:
            # Only the SDK's own error types mean "Azure DevOps answered with an error status"; a plain
            # msrest ClientRequestError is a transport failure (timeout, refused), whatever was answered before.
            answered = isinstance(exc, AzureDevOpsClientRequestError | AzureDevOpsAuthenticationError)
            if answered and answers and not 200 <= answers[-1][0] < 300:
                status, retry_after = answers[-1]
            else:
                status, retry_after = None, None
            raise self._error(status, retry_after, exc) from exc
        except ValueError as exc:  # the SDK's "API resource location ... is not registered"
            raise AzureDevOpsError(
                f"{self._settings.org_url} does not offer the Pipelines Runs API: {exc}",
                hint="check ADO_ORG_URL: it must be the organization URL, e.g. https://dev.azure.com/contoso",
            ) from exc

    def _error(self, status: int | None, retry_after: str | None, exc: Exception) -> Exception:
        where = f"pipeline {self._pipeline_id} in {self._settings.org_url}/{self._project}"
        if status in (401, 403):
            self._secrets.invalidate()  # a rotated secret is picked up by the next attempt
            return AzureDevOpsAuthError(
                f"Azure DevOps answered {status} to starting {where}: the credentials in secret "
                f"{self._secrets.secret_arn} were refused ({exc})",
                hint="renew the PAT or service principal in that secret (scope: Build read & execute) "
                "and check it may run this pipeline; then replay the DLQ",
            )
        if status == 429:
            return Throttled(retry_after)
        if status is None or status >= 500:
            seen = f"answered {status}" if status else "did not answer (timeout or no connection)"
            return AzureDevOpsUnavailableError(
                f"Azure DevOps {seen} when starting {where}: {exc}",
                hint="Lambda retries the event; if it lands in the DLQ, check status.dev.azure.com and replay it",
            )
        return AzureDevOpsError(
            f"Azure DevOps answered {status} when starting {where}: {exc}",
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

    def _client(self, creds: Authentication, answers: list[tuple[int, str | None]]) -> Any:
        client = Connection(base_url=self._settings.org_url, creds=creds).clients_v7_1.get_pipelines_client()
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


def _answer(response: Any) -> tuple[int, str | None]:
    return int(response.status_code), response.headers.get("Retry-After")
