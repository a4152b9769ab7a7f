"""AWS sessions for the three accounts.

The automation account's credentials come from the environment (in Azure Pipelines, the AWS
Toolkit's OIDC service connection exports them; in the twin, `mlops local env`). Another account is
reached by `sts:AssumeRole` into its deploy role, as in the cloud. `AWS_ENDPOINT_URL` and friends
are honoured by boto3 itself, which is how the local twin is reached without code changes.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import boto3
import botocore.exceptions

from mlops.core.config import Config
from mlops.core.errors import AwsError, MlopsError

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


def assume_role_session(base: boto3.Session, role_arn: str, session_name: str, region: str) -> boto3.Session:
    try:
        credentials = base.client("sts").assume_role(RoleArn=role_arn, RoleSessionName=session_name[:64])["Credentials"]
    except botocore.exceptions.ClientError as exc:
        raise AwsError(
            f"could not assume {role_arn}: {error_message(exc)}",
            hint="check that the role exists (infra/) and trusts the caller's role or service connection",
        ) from exc
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )


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
