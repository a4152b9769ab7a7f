"""AWS sessions for the three accounts.

The automation account's credentials come from the environment (in Azure Pipelines, the AWS
Toolkit's OIDC service connection exports them; in the twin, `mlops local env`). Another account is
reached by `sts:AssumeRole` into its deploy role, as in the cloud. `AWS_ENDPOINT_URL` and friends
are honoured by boto3 itself, which is how the local twin is reached without code changes.
"""

from __future__ import annotations

import os

import boto3
import botocore.exceptions

from mlops.core.config import Config
from mlops.core.errors import AwsError


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
