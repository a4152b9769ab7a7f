"""The AWS failures users meet, as one actionable error (issue 19, item 5)."""

from __future__ import annotations

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
    TokenRetrievalError,
)

from mlops.core.aws import translate_aws_failure


def _client_error(code: str, operation: str = "ListModelPackages") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": f"{code} happened"}}, operation)


@pytest.mark.parametrize(
    ("exc", "message", "fix"),
    [
        (NoCredentialsError(), "no AWS credentials were found", "aws sso login"),
        (TokenRetrievalError(provider="sso", error_msg="expired"), "could not be obtained", "renew them"),
        (_client_error("ExpiredTokenException"), "the AWS credentials have expired", "renew them"),
        (_client_error("RequestExpired"), "the AWS credentials have expired", "aws.rolecredential.maxduration"),
        (_client_error("UnrecognizedClientException"), "AWS does not accept these credentials", "AWS_PROFILE"),
        (_client_error("ThrottlingException"), "AWS throttled ListModelPackages", "AWS_RETRY_MODE=adaptive"),
        (_client_error("AccessDeniedException"), "access denied to ListModelPackages", "docs/security.md"),
        (
            EndpointConnectionError(endpoint_url="https://api.sagemaker.eu-west-1.amazonaws.com/"),
            "the AWS endpoint https://api.sagemaker.eu-west-1.amazonaws.com/ could not be reached",
            "HTTPS_PROXY",
        ),
    ],
)
def test_known_failures_become_one_line_and_a_fix(exc: Exception, message: str, fix: str) -> None:
    error = translate_aws_failure(exc)
    assert error is not None
    assert message in error.message and fix in (error.hint or "")
    assert "\n" not in error.message


def test_an_unreachable_twin_is_reported_as_stopped_only_with_the_local_profile() -> None:
    exc = ReadTimeoutError(endpoint_url="http://127.0.0.1:4566/")
    as_twin = translate_aws_failure(exc, twin=True)
    as_cloud = translate_aws_failure(exc, twin=False)
    assert as_twin is not None and as_twin.message.startswith("the twin stopped (state lost)")
    assert as_cloud is not None and as_cloud.message.startswith("the AWS endpoint http://127.0.0.1:4566/")


def test_other_failures_are_left_to_the_caller() -> None:
    assert translate_aws_failure(_client_error("ValidationException")) is None
    assert translate_aws_failure(KeyError("x")) is None
