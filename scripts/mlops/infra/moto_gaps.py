"""What moto's CloudFormation skips, and what the local twin adds after `mlops infra deploy --profile local`.

moto 5.2.5 creates no resource of the types below: the stack still ends CREATE_COMPLETE, `Ref`s to them
resolve to nothing, and the stack's outputs are missing. The twin covers them in one of two ways:

- created here through their own APIs, because the local flow uses them at run time: the model package
  group (the build registers into it) and the bridge's auth secret (the bridge reads it; ADO_AUTH_SECRET_ARN
  is then set on the bridge function);
- checked statically instead, because moto does not enforce or evaluate them: resource policies (bucket,
  queue, topic, model package group - moto lacks PutModelPackageGroupPolicy), the OIDC provider (the twin
  reaches accounts through sts:AssumeRole, not web identity), alarms and the Lambda invoke config (the twin
  does not run Lambda asynchronously). tests/infra/test_policies.py holds them to the same rules as the rest.

moto also drops two properties of AWS::S3::Bucket it otherwise creates: VersioningConfiguration and
PublicAccessBlockConfiguration (it keeps BucketEncryption). The twin applies both through the S3 API, because
the build's branch cleanup works on object versions.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import botocore.exceptions

from mlops.core.aws import error_message
from mlops.core.errors import InfraError
from mlops.infra.templates import StackSpec, active_resources, load_template

MOTO_SKIPPED_TYPES = frozenset(
    {
        "AWS::CloudWatch::Alarm",
        "AWS::IAM::OIDCProvider",
        "AWS::Lambda::EventInvokeConfig",
        "AWS::S3::BucketPolicy",
        "AWS::SNS::TopicPolicy",
        "AWS::SQS::QueuePolicy",
        "AWS::SageMaker::ModelPackageGroup",
        "AWS::SecretsManager::Secret",
    }
)


def skipped_resources(active: Mapping[str, str], created_logical_ids: set[str]) -> dict[str, str]:
    """Logical id -> type of the template's resources the stack did not create."""
    return {logical_id: kind for logical_id, kind in active.items() if logical_id not in created_logical_ids}


def supplement_stack(session: Any, spec: StackSpec, progress: Callable[[str], None] = print) -> list[str]:
    """After a deploy into the twin: add what moto skipped for this stack."""
    template = load_template(spec.template_path)
    paginator = session.client("cloudformation").get_paginator("list_stack_resources")
    physical: dict[str, str] = {}
    for page in paginator.paginate(StackName=spec.stack_name):
        for summary in page["StackResourceSummaries"]:
            if summary["LogicalResourceId"]:  # moto lists each skipped resource with an empty id
                physical[summary["LogicalResourceId"]] = summary.get("PhysicalResourceId", "")
    skipped = skipped_resources(active_resources(template, spec.parameters), set(physical))
    return supplement_twin(session, template, spec.parameters, skipped, physical, progress=progress)


def supplement_twin(
    session: Any,
    template: Mapping[str, Any],
    parameters: Mapping[str, str],
    skipped: Mapping[str, str],
    physical_ids: Mapping[str, str],
    progress: Callable[[str], None] = print,
) -> list[str]:
    """Create the skipped resources the local flow needs, and fix the dropped bucket properties. Idempotent."""
    created: list[str] = []
    resources = template["Resources"]
    for logical_id, physical_id in sorted(physical_ids.items()):
        if resources.get(logical_id, {}).get("Type") == "AWS::S3::Bucket":
            created += _bucket_properties(session.client("s3"), physical_id, resources[logical_id]["Properties"])
    for logical_id, kind in sorted(skipped.items()):
        properties = resources[logical_id].get("Properties", {})
        try:
            if kind == "AWS::SageMaker::ModelPackageGroup":
                created += _model_package_group(session.client("sagemaker"), parameters["ModelPackageGroupName"])
            elif kind == "AWS::SecretsManager::Secret":
                created += _auth_secret(session, str(properties["Name"]), str(properties.get("Description", "")))
        except botocore.exceptions.ClientError as exc:
            raise InfraError(
                f"the twin could not create {logical_id} ({kind}), which moto's CloudFormation skips: "
                f"{error_message(exc)}",
                hint="run `mlops local down` and `mlops local up` for a fresh twin, then deploy again",
            ) from exc
    for line in created:
        progress(f"twin: {line}")
    return created


def _model_package_group(sagemaker: Any, name: str) -> list[str]:
    existing = sagemaker.list_model_package_groups(NameContains=name).get("ModelPackageGroupSummaryList", [])
    if any(group["ModelPackageGroupName"] == name for group in existing):
        return []
    sagemaker.create_model_package_group(ModelPackageGroupName=name, ModelPackageGroupDescription="created by the twin")
    return [f"model package group {name}"]


def _auth_secret(session: Any, name: str, description: str) -> list[str]:
    secrets = session.client("secretsmanager")
    try:
        arn = str(secrets.describe_secret(SecretId=name)["ARN"])
        made: list[str] = []
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
        arn = str(secrets.create_secret(Name=name, Description=description)["ARN"])
        made = [f"secret {name} (no value: write one with `aws secretsmanager put-secret-value`)"]
    lam = session.client("lambda")
    try:
        configuration = lam.get_function_configuration(FunctionName="mlops-bridge")
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            return made  # deployed without BridgeCodeKey: no function yet
        raise
    # str(): moto keeps a Number parameter's value as an int, which its own API then refuses.
    variables = {k: str(v) for k, v in ((configuration.get("Environment") or {}).get("Variables") or {}).items()}
    if variables.get("ADO_AUTH_SECRET_ARN") != arn:
        variables["ADO_AUTH_SECRET_ARN"] = arn
        lam.update_function_configuration(FunctionName="mlops-bridge", Environment={"Variables": variables})
        made.append("ADO_AUTH_SECRET_ARN on function mlops-bridge")
    return made


def _bucket_properties(s3: Any, bucket: str, properties: Mapping[str, Any]) -> list[str]:
    done: list[str] = []
    versioning = properties.get("VersioningConfiguration", {}).get("Status")
    if versioning and s3.get_bucket_versioning(Bucket=bucket).get("Status") != versioning:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": versioning})
        done.append(f"versioning {versioning} on bucket {bucket}")
    block = properties.get("PublicAccessBlockConfiguration")
    if block and _public_access_block(s3, bucket) != block:
        s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=dict(block))
        done.append(f"public access block on bucket {bucket}")
    return done


def _public_access_block(s3: Any, bucket: str) -> dict[str, Any]:
    try:
        return dict(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"])
    except botocore.exceptions.ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NoSuchPublicAccessBlockConfiguration":
            return {}
        raise
