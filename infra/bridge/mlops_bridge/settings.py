"""The bridge's configuration, read from environment variables only (the Lambda's settings).

Approval handler (`mlops_bridge.handler.handler`):

- `ADO_ORG_URL` (required): organization URL, e.g. `https://dev.azure.com/contoso`.
- `ADO_PROJECT`, `ADO_PIPELINE_ID` (required with `ADO_TRIGGER=runs_api`): project and deploy pipeline id.
- `ADO_BRANCH`: the full ref the run uses, default `refs/heads/main`.
- `ADO_AUTH_SECRET_ARN` (required): Secrets Manager secret, `{"type": "pat", "token": ...}`,
  `{"type": "service_principal", "tenant_id": ..., "client_id": ..., "client_secret": ...}` or
  `{"type": "webhook", "hmac_secret": ...}`.
- `ADO_TRIGGER`: `runs_api` (default, Pipelines Runs API) or `webhook` (incoming webhook, HMAC-SHA1 signed).
- `ADO_WEBHOOK_NAME` (required with `ADO_TRIGGER=webhook`): the incoming webhook's name.
- `ADO_WEBHOOK_SIGNATURE_HEADER`: header of the signature, as named in the service connection;
  default `X-MLOps-Signature`.
- `ADO_HTTP_TIMEOUT_SECONDS`: timeout of one HTTP call to Azure DevOps, default 10.
- `ADO_THROTTLE_MAX_WAIT_SECONDS`: total time spent honouring 429 `Retry-After` before raising, default 60.
- `ADO_SECRET_CACHE_SECONDS`: how long a warm Lambda reuses the secret, default 300 (a 401/403 drops it).
- `IDEMPOTENCY_TABLE` (required): DynamoDB table, partition key `id`, TTL attribute `expiration`.
- `IDEMPOTENCY_EXPIRY_DAYS`: how long one approval is remembered, default 30 (longer than the DLQ's 14 days).
- `MODEL_PACKAGE_GROUPS` (required): comma-separated groups whose approvals start a run.
- `ADO_BUILD_PIPELINE_ID` (optional): the build pipeline's id; with it, the second route starts the build
  (retraining) when a retrain alarm goes into ALARM (`mlops_bridge.retrain`). Without it such events fail
  with a clear error and stay in the DLQ.
- `RETRAIN_ALARM_NAMES` (optional): comma-separated alarm names that may start a retrain; empty accepts
  every alarm the retrain rule delivers.

Reminders (`mlops_bridge.reminders.handler`): `MODEL_PACKAGE_GROUPS`, `IDEMPOTENCY_TABLE`,
`REMINDER_TOPIC_ARN` (required), `REMINDER_MIN_AGE_HOURS` (default 24), `REMINDER_EXPIRY_DAYS` (default 90:
one reminder per package in that time).

`POWERTOOLS_IDEMPOTENCY_DISABLED` must not be set: it would let a redelivered event start a second run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from .errors import ConfigurationError

DEFAULT_BRANCH = "refs/heads/main"
DEFAULT_SIGNATURE_HEADER = "X-MLOps-Signature"
TRIGGERS = ("runs_api", "webhook")
_FIX = "set it in the bridge Lambda's environment (infra/ CloudFormation parameters), then redeploy"


@dataclass(frozen=True)
class BridgeSettings:
    org_url: str
    project: str | None
    pipeline_id: int | None
    branch: str
    auth_secret_arn: str
    idempotency_table: str
    model_package_groups: frozenset[str]
    trigger: Literal["runs_api", "webhook"] = "runs_api"
    webhook_name: str | None = None
    webhook_signature_header: str = DEFAULT_SIGNATURE_HEADER
    http_timeout_seconds: float = 10.0
    throttle_max_wait_seconds: float = 60.0
    secret_cache_seconds: float = 300.0
    idempotency_expiry_seconds: int = 30 * 86400
    build_pipeline_id: int | None = None
    retrain_alarm_names: frozenset[str] = frozenset()

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> BridgeSettings:
        refuse_disabled_idempotency(environ)
        trigger = _choice(environ, "ADO_TRIGGER", TRIGGERS, default="runs_api")
        branch = environ.get("ADO_BRANCH", "").strip() or DEFAULT_BRANCH
        if not branch.startswith("refs/"):
            raise ConfigurationError(
                f"ADO_BRANCH is {branch!r}: expected a full ref such as 'refs/heads/main'",
                hint=f"set ADO_BRANCH=refs/heads/{branch}",
            )
        runs_api = trigger == "runs_api"
        return cls(
            org_url=_url(environ, "ADO_ORG_URL"),
            project=_required(environ, "ADO_PROJECT") if runs_api else environ.get("ADO_PROJECT") or None,
            pipeline_id=_positive_int(environ, "ADO_PIPELINE_ID") if runs_api else None,
            branch=branch,
            auth_secret_arn=_required(environ, "ADO_AUTH_SECRET_ARN"),
            idempotency_table=_required(environ, "IDEMPOTENCY_TABLE"),
            model_package_groups=groups_from_env(environ),
            trigger=trigger,  # type: ignore[arg-type]
            webhook_name=None if runs_api else _required(environ, "ADO_WEBHOOK_NAME"),
            webhook_signature_header=environ.get("ADO_WEBHOOK_SIGNATURE_HEADER", "").strip()
            or DEFAULT_SIGNATURE_HEADER,
            http_timeout_seconds=_positive_float(environ, "ADO_HTTP_TIMEOUT_SECONDS", 10.0),
            throttle_max_wait_seconds=_positive_float(environ, "ADO_THROTTLE_MAX_WAIT_SECONDS", 60.0),
            secret_cache_seconds=_positive_float(environ, "ADO_SECRET_CACHE_SECONDS", 300.0, allow_zero=True),
            idempotency_expiry_seconds=int(_positive_float(environ, "IDEMPOTENCY_EXPIRY_DAYS", 30.0) * 86400),
            build_pipeline_id=_positive_int(environ, "ADO_BUILD_PIPELINE_ID")
            if environ.get("ADO_BUILD_PIPELINE_ID", "").strip()
            else None,
            retrain_alarm_names=frozenset(
                name.strip() for name in environ.get("RETRAIN_ALARM_NAMES", "").split(",") if name.strip()
            ),
        )


@dataclass(frozen=True)
class ReminderSettings:
    topic_arn: str
    idempotency_table: str
    model_package_groups: frozenset[str]
    min_age_seconds: float = 24 * 3600
    expiry_seconds: int = 90 * 86400

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ReminderSettings:
        refuse_disabled_idempotency(environ)
        return cls(
            topic_arn=_required(environ, "REMINDER_TOPIC_ARN"),
            idempotency_table=_required(environ, "IDEMPOTENCY_TABLE"),
            model_package_groups=groups_from_env(environ),
            min_age_seconds=_positive_float(environ, "REMINDER_MIN_AGE_HOURS", 24.0) * 3600,
            expiry_seconds=int(_positive_float(environ, "REMINDER_EXPIRY_DAYS", 90.0) * 86400),
        )


def groups_from_env(environ: Mapping[str, str]) -> frozenset[str]:
    groups = frozenset(g.strip() for g in _required(environ, "MODEL_PACKAGE_GROUPS").split(",") if g.strip())
    if not groups:
        raise ConfigurationError(
            f"MODEL_PACKAGE_GROUPS is {environ.get('MODEL_PACKAGE_GROUPS')!r}: expected comma-separated group names",
            hint="e.g. MODEL_PACKAGE_GROUPS=breast-cancer",
        )
    return groups


def refuse_disabled_idempotency(environ: Mapping[str, str]) -> None:
    value = environ.get("POWERTOOLS_IDEMPOTENCY_DISABLED", "").strip().lower()
    if value in ("1", "true", "yes", "on", "y", "t"):
        raise ConfigurationError(
            f"POWERTOOLS_IDEMPOTENCY_DISABLED is {value!r}: expected it unset, because without idempotency a "
            "redelivered approval event starts a second deploy run",
            hint="remove POWERTOOLS_IDEMPOTENCY_DISABLED from the environment",
        )


def _required(environ: Mapping[str, str], name: str) -> str:
    value = environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"{name} is not set: expected a non-empty value", hint=_FIX)
    return value


def _url(environ: Mapping[str, str], name: str) -> str:
    value = _required(environ, name).rstrip("/")
    if not value.startswith(("https://", "http://")):
        raise ConfigurationError(
            f"{name} is {value!r}: expected an http(s) URL such as 'https://dev.azure.com/contoso'", hint=_FIX
        )
    return value


def _positive_int(environ: Mapping[str, str], name: str) -> int:
    text = _required(environ, name)
    try:
        value = int(text)
    except ValueError as exc:
        raise ConfigurationError(
            f"{name} is {text!r}: expected a positive integer (the pipeline's definitionId from its URL)", hint=_FIX
        ) from exc
    if value <= 0:
        raise ConfigurationError(f"{name} is {value}: expected a positive integer", hint=_FIX)
    return value


def _positive_float(environ: Mapping[str, str], name: str, default: float, *, allow_zero: bool = False) -> float:
    text = environ.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError as exc:
        raise ConfigurationError(f"{name} is {text!r}: expected a number", hint=_FIX) from exc
    if value < 0 or (value == 0 and not allow_zero):
        raise ConfigurationError(f"{name} is {text!r}: expected a number above zero", hint=_FIX)
    return value


def _choice(environ: Mapping[str, str], name: str, choices: tuple[str, ...], *, default: str) -> str:
    value = environ.get(name, "").strip() or default
    if value not in choices:
        raise ConfigurationError(f"{name} is {value!r}: expected one of {', '.join(choices)}", hint=_FIX)
    return value
