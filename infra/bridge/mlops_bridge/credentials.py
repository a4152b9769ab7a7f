"""The Azure DevOps auth secret in Secrets Manager: parse it, and cache it briefly in a warm Lambda.

Shapes (`type` decides): `{"type": "pat", "token": ...}`,
`{"type": "service_principal", "tenant_id": ..., "client_id": ..., "client_secret": ...}` or
`{"type": "webhook", "hmac_secret": ...}`. Secret values never appear in a message or a repr.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from .errors import ConfigurationError


@dataclass(frozen=True)
class PatAuth:
    token: str = field(repr=False)


@dataclass(frozen=True)
class ServicePrincipalAuth:
    tenant_id: str
    client_id: str
    client_secret: str = field(repr=False)


@dataclass(frozen=True)
class WebhookAuth:
    hmac_secret: str = field(repr=False)


AuthSecret = PatAuth | ServicePrincipalAuth | WebhookAuth
_SHAPES = {
    "pat": (PatAuth, ("token",)),
    "service_principal": (ServicePrincipalAuth, ("tenant_id", "client_id", "client_secret")),
    "webhook": (WebhookAuth, ("hmac_secret",)),
}


def parse_auth_secret(text: str, secret_arn: str) -> AuthSecret:
    shapes = "; ".join(
        f'{{"type": "{kind}", ' + ", ".join(f'"{k}": ...' for k in keys) + "}" for kind, (_, keys) in _SHAPES.items()
    )
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ConfigurationError(
            f"secret {secret_arn} is not JSON: expected one of {shapes}", hint="rewrite the secret's value"
        ) from exc
    if not isinstance(document, dict) or document.get("type") not in _SHAPES:
        found = document.get("type") if isinstance(document, dict) else type(document).__name__
        raise ConfigurationError(
            f"secret {secret_arn} has type {found!r}: expected one of {shapes}", hint="rewrite the secret's value"
        )
    cls, keys = _SHAPES[document["type"]]
    missing = [k for k in keys if not isinstance(document.get(k), str) or not document[k]]
    if missing:
        raise ConfigurationError(
            f"secret {secret_arn} of type {document['type']!r} lacks {', '.join(missing)}: expected non-empty strings",
            hint="rewrite the secret's value",
        )
    secret: AuthSecret = cls(**{k: document[k] for k in keys})
    return secret


class AuthSecretStore:
    """Reads the secret at most every `ttl_seconds`; `invalidate()` after a 401/403 picks up a rotation."""

    def __init__(
        self, secretsmanager: Any, secret_arn: str, *, ttl_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._client = secretsmanager
        self.secret_arn = secret_arn
        self._ttl = ttl_seconds
        self._clock = clock
        self._cached: tuple[float, AuthSecret] | None = None

    def get(self) -> AuthSecret:
        now = self._clock()
        if self._cached is not None and now - self._cached[0] < self._ttl:
            return self._cached[1]
        try:
            value = self._client.get_secret_value(SecretId=self.secret_arn)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise ConfigurationError(
                f"could not read the Azure DevOps auth secret {self.secret_arn}: "
                f"{error.get('Code')}: {error.get('Message')}",
                hint="check ADO_AUTH_SECRET_ARN and the bridge role's secretsmanager:GetSecretValue (and kms:Decrypt)",
            ) from exc
        if "SecretString" not in value:
            raise ConfigurationError(
                f"secret {self.secret_arn} holds binary data: expected a JSON SecretString",
                hint="store the auth JSON as the secret's string value",
            )
        secret = parse_auth_secret(value["SecretString"], self.secret_arn)
        self._cached = (now, secret)
        return secret

    def invalidate(self) -> None:
        self._cached = None
