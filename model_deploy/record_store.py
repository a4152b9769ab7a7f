"""Deployment records and staging passes in SSM Parameter Store (the I/O side of `records.py`).

Why SSM rather than an S3 object: every PutParameter keeps the previous value as a numbered version
(GetParameterHistory returns them in order), so the history needs no read-modify-write and no lock;
it needs no bucket to exist first; a record is one small JSON document (< 4 KB, the standard tier);
reads and writes are in CloudTrail; and IAM can scope the deploy role to the `/mlops/...` path. SSM
keeps the last 100 versions of a parameter, far more than a rollback looks back.

Layout (prefix = deploy.record_parameter_prefix):
  <prefix>/<project>/deployments/<endpoint>               in the stage's account, one version per deploy/rollback
  <prefix>/<project>/staging-pass/<group>/<version>       in the automation account, written by `mlops test`
"""

from __future__ import annotations

import json
from typing import Any

import botocore.exceptions

from mlops.core.aws import error_message
from mlops.core.errors import AwsError
from model_deploy.clients import is_missing
from model_deploy.package import StagingPass
from model_deploy.records import DeploymentRecord


def deployment_parameter(prefix: str, project: str, endpoint: str) -> str:
    return f"{prefix}/{project}/deployments/{endpoint}"


def staging_pass_parameter(prefix: str, project: str, group: str, version: int) -> str:
    return f"{prefix}/{project}/staging-pass/{group}/{version}"


def read_history(ssm: Any, name: str) -> list[DeploymentRecord]:
    """All records of an endpoint, oldest first; empty if it was never deployed."""
    values: list[tuple[int, str]] = []
    try:
        for page in ssm.get_paginator("get_parameter_history").paginate(Name=name):
            values.extend((int(p["Version"]), str(p["Value"])) for p in page.get("Parameters", []))
    except botocore.exceptions.ClientError as exc:
        if is_missing(exc):
            return []
        raise AwsError(
            f"could not read deployment records {name}: {error_message(exc)}",
            hint="check that the deploy role may ssm:GetParameterHistory on the records path",
        ) from exc
    return [DeploymentRecord.from_json(value, where=f"{name} version {version}") for version, value in sorted(values)]


def append_record(ssm: Any, name: str, record: DeploymentRecord) -> int:
    try:
        response = ssm.put_parameter(
            Name=name,
            Value=record.to_json(),
            Type="String",
            Overwrite=True,
            Description=f"mlops deployment records of {record.endpoint_name} ({record.stage})",
        )
    except botocore.exceptions.ClientError as exc:
        raise AwsError(
            f"the endpoint serves {record.package_arn}, but its deployment record could not be written to "
            f"{name}: {error_message(exc)}",
            hint="grant the deploy role ssm:PutParameter on the records path and deploy again "
            "(the plan will then only write the record)",
        ) from exc
    return int(response.get("Version", 0))


def read_staging_pass(ssm: Any, name: str) -> StagingPass | None:
    try:
        value = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except botocore.exceptions.ClientError as exc:
        if is_missing(exc):
            return None
        raise AwsError(f"could not read the staging-pass record {name}: {error_message(exc)}") from exc
    try:
        document = json.loads(value)
        return StagingPass(
            package_arn=str(document["package_arn"]),
            passed_at=str(document["passed_at"]),
            endpoint_name=str(document["endpoint_name"]),
            measurements=dict(document.get("measurements", {})),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise AwsError(
            f"staging-pass record {name} is malformed ({exc}); "
            "expected JSON with package_arn, passed_at and endpoint_name",
            hint="run `mlops test --stage staging` again to rewrite it",
        ) from exc


def write_staging_pass(ssm: Any, name: str, passed: StagingPass) -> None:
    value = json.dumps(
        {
            "package_arn": passed.package_arn,
            "passed_at": passed.passed_at,
            "endpoint_name": passed.endpoint_name,
            "measurements": dict(passed.measurements),
        },
        sort_keys=True,
    )
    try:
        ssm.put_parameter(
            Name=name, Value=value, Type="String", Overwrite=True, Description="mlops: passed the staging tests"
        )
    except botocore.exceptions.ClientError as exc:
        raise AwsError(
            f"the staging tests passed but the record prod requires could not be written to {name}: "
            f"{error_message(exc)}",
            hint="grant ssm:PutParameter on the staging-pass path in the automation account and run the tests again",
        ) from exc
