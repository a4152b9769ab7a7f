"""Incoming-webhook mode, for organisations that forbid PATs and service principals.

POST `{ADO_ORG_URL}/_apis/public/distributedtask/webhooks/{ADO_WEBHOOK_NAME}?api-version=6.0-preview` with the
four parameters as the JSON payload (the pipeline reads them as `${{ parameters.<alias>.modelPackageArn }}`),
signed with HMAC-SHA1 over the exact body bytes, as bare hex in `ADO_WEBHOOK_SIGNATURE_HEADER`. The endpoint
returns no run id, and cannot choose a branch: the pipeline's webhook resource decides.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from .credentials import AuthSecretStore, WebhookAuth
from .errors import (
    AzureDevOpsAuthError,
    AzureDevOpsBadAnswerError,
    AzureDevOpsError,
    AzureDevOpsUnavailableError,
    ConfigurationError,
)
from .events import StateChange, template_parameters
from .settings import BridgeSettings
from .throttling import Throttled, with_throttle_retries


def signed_body(payload: dict[str, str], hmac_secret: str) -> tuple[bytes, str]:
    """The body bytes and their signature; sign exactly what is sent (compact, sorted JSON)."""
    body = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return body, hmac.new(hmac_secret.encode("utf-8"), body, hashlib.sha1).hexdigest()


class WebhookStarter:
    trigger = "webhook"

    def __init__(
        self,
        settings: BridgeSettings,
        secrets: AuthSecretStore,
        *,
        sleep: Callable[[float], None] = time.sleep,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if not settings.webhook_name:
            raise ConfigurationError("ADO_TRIGGER=webhook needs ADO_WEBHOOK_NAME", hint="set ADO_WEBHOOK_NAME")
        self._settings = settings
        self._secrets = secrets
        self._sleep = sleep
        self._now = now
        self.url = (
            f"{settings.org_url}/_apis/public/distributedtask/webhooks/{quote(settings.webhook_name, safe='')}"
            "?api-version=6.0-preview"
        )

    def find(self, change: StateChange, *, not_before: datetime | None = None) -> dict[str, Any] | None:
        """Always None: an incoming webhook answers with no run id, and finding its run would need Azure
        DevOps credentials this mode does not have. So in this mode our own store is the only guard (see
        docs/bridge.md: a store failure after the delivery, or a lost answer, can start a second run)."""
        return None

    def start(self, change: StateChange, *, not_before: datetime | None = None) -> dict[str, Any]:
        with_throttle_retries(
            lambda: self._post(change),
            describe=f"calling incoming webhook {self._settings.webhook_name} for {change.model_package_arn}",
            max_wait_seconds=self._settings.throttle_max_wait_seconds,
            sleep=self._sleep,
            now=self._now,
        )
        return {
            "trigger": self.trigger,
            "runId": None,  # the webhook endpoint does not say which run it queued
            "runUrl": None,
            "webhook": self._settings.webhook_name,
            "eventId": change.event_id,
            "created": True,
        }

    def _post(self, change: StateChange) -> None:
        auth = self._secrets.get()
        if not isinstance(auth, WebhookAuth):
            raise ConfigurationError(
                f"secret {self._secrets.secret_arn} is of type {type(auth).__name__}: expected "
                "'webhook' with ADO_TRIGGER=webhook",
                hint='store {"type": "webhook", "hmac_secret": ...} in the secret, or set ADO_TRIGGER=runs_api',
            )
        body, signature = signed_body(template_parameters(change), auth.hmac_secret)
        request = urllib.request.Request(  # noqa: S310 - ADO_ORG_URL, checked to be http(s) in settings
            self.url,
            data=body,
            method="POST",
            headers={"Content-Type": "application/json", self._settings.webhook_signature_header: signature},
        )
        try:
            with urllib.request.urlopen(request, timeout=self._settings.http_timeout_seconds) as response:  # noqa: S310
                status, content_type = int(response.status), response.headers.get("Content-Type") or ""
                head = response.read(200).decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            raise self._error(exc) from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise AzureDevOpsUnavailableError(
                f"incoming webhook {self.url} did not answer (timeout or no connection): {exc}",
                hint="Lambda retries the event; if it lands in the DLQ, check ADO_ORG_URL and replay it",
            ) from exc
        if status == 203 or "html" in content_type.lower():
            # Azure DevOps' sign-in page, or a proxy's: the webhook did not take the delivery.
            raise AzureDevOpsBadAnswerError(
                f"incoming webhook {self.url} answered {status} with {content_type}: expected an empty or JSON "
                f"answer from Azure DevOps, found a page starting {' '.join(head.split())[:80]!r}",
                hint="check ADO_ORG_URL (the organization URL, reached without a proxy that rewrites answers); "
                "Lambda retries the event",
            )

    def _error(self, exc: urllib.error.HTTPError) -> Exception:
        detail = exc.read().decode("utf-8", "replace")[:300]
        if exc.code in (401, 403):
            self._secrets.invalidate()
            return AzureDevOpsAuthError(
                f"incoming webhook {self.url} answered {exc.code}: the HMAC secret in {self._secrets.secret_arn} "
                f"or the header {self._settings.webhook_signature_header} does not match the service connection "
                f"({detail})",
                hint="make the secret and ADO_WEBHOOK_SIGNATURE_HEADER equal to the incoming-webhook service "
                "connection's settings; then replay the DLQ",
            )
        if exc.code == 429:
            return Throttled(exc.headers.get("Retry-After"))
        if exc.code >= 500:
            return AzureDevOpsUnavailableError(
                f"incoming webhook {self.url} answered {exc.code}: {detail}",
                hint="Lambda retries the event; if it lands in the DLQ, replay it",
            )
        return AzureDevOpsError(
            f"incoming webhook {self.url} answered {exc.code}: {detail}",
            hint="check ADO_WEBHOOK_NAME against the incoming-webhook service connection",
        )
