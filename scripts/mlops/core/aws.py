"""AWS sessions for the three accounts.

The step's credentials come from the environment (in Azure Pipelines, the AWS Toolkit's OIDC service
connection of the step's purpose exports them; in the twin, `mlops local env`). Another account is reached by
`sts:AssumeRole` into a role that trusts the caller, with botocore's refreshable credentials so the session
outlives long waits. `AWS_ENDPOINT_URL` and friends
are honoured by boto3 itself, which is how the local twin is reached without code changes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import boto3
import botocore.exceptions
import botocore.session
from botocore.credentials import AssumeRoleCredentialFetcher, DeferredRefreshableCredentials

from mlops.core import botocore_data
from mlops.core.config import Config
from mlops.core.errors import AwsError, MlopsError

# Every process that talks to AWS through this module (each `mlops` command, the twin) creates several sessions,
# one per account or assumed role: they share one parse of botocore's data files (mlops/core/botocore_data.py).
botocore_data.share()

# AWS caps a session assumed from another role session (role chaining) at one hour, whatever is asked.
CHAINED_SESSION_SECONDS = 3600


class SessionRefreshError(AwsError):
    """An assumed-role session could not be refreshed before it expired."""


# ClientError codes users really meet, grouped by what to do about them.
_EXPIRED_CODES = frozenset(
    {"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired", "InvalidToken"}
)
_INVALID_CODES = frozenset(
    {"InvalidClientTokenId", "UnrecognizedClientException", "SignatureDoesNotMatch", "InvalidSignatureException",
     "AuthFailure", "InvalidAccessKeyId"}
)  # fmt: skip
_THROTTLING_CODES = frozenset(
    {"Throttling", "ThrottlingException", "ThrottledException", "TooManyRequestsException", "RequestLimitExceeded",
     "ProvisionedThroughputExceededException", "SlowDown", "RequestThrottled", "RequestThrottledException"}
)  # fmt: skip
_DENIED_CODES = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError", "Forbidden",
     "UnauthorizedAccess"}
)  # fmt: skip
_UNREACHABLE = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectionClosedError,
)


def session(config: Config) -> boto3.Session:
    if config.is_local and not os.environ.get("AWS_ENDPOINT_URL"):
        # Without an endpoint, the local profile's fake account ids would be sent to real AWS.
        raise AwsError(
            "the 'local' profile talks to the local twin, and no twin is running (AWS_ENDPOINT_URL is unset)",
            hint="start it with `mlops local up`, or point AWS_ENDPOINT_URL at a running twin",
        )
    return boto3.Session(region_name=config.region)


class _NoFetcherCache(dict[str, Any]):
    """botocore's assume-role fetcher caches its last answer and judges it by the wall clock; the refreshable
    credentials around it already decide when to refresh (with their own, injectable clock), so a refresh
    they ask for must reach STS."""

    def __setitem__(self, key: str, value: Any) -> None:
        return None


def assume_role_session(
    base: boto3.Session,
    role_arn: str,
    session_name: str,
    region: str,
    *,
    duration_seconds: int = CHAINED_SESSION_SECONDS,
    time_fetcher: Callable[[], datetime] | None = None,
) -> boto3.Session:
    """A session of `role_arn`, assumed from `base`, that refreshes itself before it expires.

    botocore's RefreshableCredentials call the assume-role fetcher again 15 minutes before the expiry (10
    minutes: mandatory), so a wait longer than one session (a blue/green bake, an approval) keeps working
    while `base` is valid. The first session is obtained here, so a role that cannot be assumed fails now,
    before anything changes; a refresh that fails later raises SessionRefreshError (an AwsError).
    """
    source = base.get_credentials()
    if source is None:
        raise AwsError(
            f"no AWS credentials to assume {role_arn} with",
            hint="run in a step with the AWS Toolkit's service connection (awsCredentials), or export AWS_PROFILE",
        )
    fetcher = AssumeRoleCredentialFetcher(
        client_creator=base.client,
        source_credentials=source,
        role_arn=role_arn,
        extra_args={"RoleSessionName": session_name[:64], "DurationSeconds": duration_seconds},
        cache=_NoFetcherCache(),
    )
    first = True

    def fetch() -> dict[str, Any]:
        nonlocal first
        try:
            return dict(fetcher.fetch_credentials())
        except botocore.exceptions.ClientError as exc:
            if first:
                raise AwsError(
                    f"could not assume {role_arn}: {error_message(exc)}",
                    hint="check that the role exists (infra/) and trusts the caller's role or service connection "
                    "(docs/security.md lists who may assume what)",
                ) from exc
            raise SessionRefreshError(
                f"the session of {role_arn} expires and could not be refreshed: {error_message(exc)}; "
                "stopped before the next AWS call",
                hint="the credentials it is assumed from (the pipeline's service connection) have probably "
                "expired: raise aws.rolecredential.maxduration above the longest wait (docs/security.md), then "
                "run the step again",
            ) from exc

    credentials = DeferredRefreshableCredentials(
        refresh_using=fetch, method="assume-role", time_fetcher=time_fetcher or _utc_now
    )
    credentials.get_frozen_credentials()  # the first session now: a refusal is an error before any change
    first = False
    core = botocore.session.Session()
    # botocore has no public setter for a credentials object; this is how its own providers attach one.
    core._credentials = credentials  # type: ignore[attr-defined]
    return boto3.Session(botocore_session=core, region_name=region)


def caller_account(session: boto3.Session) -> str:
    """The account the session's credentials belong to (sts:GetCallerIdentity needs no permission)."""
    return str(session.client("sts").get_caller_identity()["Account"])


def _utc_now() -> datetime:
    return datetime.now(UTC)


def error_code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def error_message(exc: botocore.exceptions.ClientError) -> str:
    error = exc.response.get("Error", {})
    return f"{error.get('Code', 'Error')}: {error.get('Message', str(exc))}"


def _is_loopback(url: str | None) -> bool:
    host = urlsplit(url or "").hostname or ""
    return host in ("127.0.0.1", "localhost", "::1")


def translate_aws_failure(exc: BaseException, *, twin: bool = False) -> MlopsError | None:
    """The AWS failures users meet (no or expired credentials, an unreachable endpoint, throttling, access
    denied) as one actionable error; None for anything else. The CLI's top-level handler uses this, so a
    command never shows a botocore traceback for them. `twin`: the `local` profile is in use, so an
    unreachable loopback endpoint is the twin's server, which is gone with its state."""
    if isinstance(exc, botocore.exceptions.NoCredentialsError | botocore.exceptions.PartialCredentialsError):
        return AwsError(
            f"no AWS credentials were found ({exc})",
            hint="in a terminal: `aws sso login` / `aws configure` or export AWS_PROFILE; in Azure Pipelines: run "
            "the step with the AWS Toolkit's service connection (awsCredentials); for the twin: --profile local "
            "with a running twin (`mlops local up`)",
        )
    if isinstance(exc, botocore.exceptions.CredentialRetrievalError | botocore.exceptions.TokenRetrievalError):
        return AwsError(
            f"the AWS credentials could not be obtained: {exc}",
            hint="renew them (`aws sso login`, or re-run the pipeline step so its OIDC credentials are fresh)",
        )
    if isinstance(exc, botocore.exceptions.NoRegionError):
        return AwsError(f"no AWS region is set ({exc})", hint="set `region` in mlops.yaml or AWS_DEFAULT_REGION")
    if isinstance(exc, _UNREACHABLE):
        endpoint = getattr(exc, "kwargs", {}).get("endpoint_url") or os.environ.get("AWS_ENDPOINT_URL")
        if twin and (_is_loopback(endpoint) or _is_loopback(os.environ.get("AWS_ENDPOINT_URL"))):
            return AwsError(
                f"the twin stopped (state lost): {endpoint or os.environ.get('AWS_ENDPOINT_URL')} does not answer "
                f"({type(exc).__name__})",
                hint="`mlops local up` starts an empty twin (its moto state lived in that process): run the build "
                "again (`mlops --profile local build run --wait`) or `mlops demo`",
            )
        return AwsError(
            f"the AWS endpoint {endpoint or ''} could not be reached: {exc}".replace("  ", " "),
            hint="check the network, a proxy (HTTPS_PROXY) and AWS_ENDPOINT_URL; then run the command again",
        )
    if isinstance(exc, botocore.exceptions.ClientError):
        code = error_code(exc)
        operation = getattr(exc, "operation_name", "the call")
        if code in _EXPIRED_CODES:
            return AwsError(
                f"the AWS credentials have expired ({code} on {operation})",
                hint="renew them (`aws sso login`, or re-run the pipeline step for fresh OIDC credentials); for "
                "long waits raise aws.rolecredential.maxduration (docs/setup.md)",
            )
        if code in _INVALID_CODES:
            return AwsError(
                f"AWS does not accept these credentials ({error_message(exc)} on {operation})",
                hint="check AWS_ACCESS_KEY_ID/AWS_PROFILE and that the keys are active; with --profile local, that "
                "the twin is the one `mlops local env` names",
            )
        if code in _THROTTLING_CODES:
            return AwsError(
                f"AWS throttled {operation} ({code}) after botocore's retries",
                hint="run the command again in a minute; for busy accounts set AWS_RETRY_MODE=adaptive and "
                "AWS_MAX_ATTEMPTS=10",
            )
        if code in _DENIED_CODES:
            return AwsError(
                f"access denied to {operation}: {error_message(exc)}",
                hint="the caller's role lacks this permission: check the role the step runs as (docs/security.md) "
                "and its policy in infra/templates",
            )
    return None
