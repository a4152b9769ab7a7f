"""What the cloud would have before the first build, created in the twin through boto3.

Automation account: the KMS key and alias, the artifact bucket (versioned), the pipeline execution
role, the model package group, the approval rule of EventBridge with an SQS target (the bridge's
queue in the twin) and the bridge's dead-letter queue. Staging and prod: the deploy role (reached by
sts:AssumeRole, as in the cloud), the hosting execution role and the stage bucket of `deploy.<stage>`.
Idempotent: running it twice changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import boto3
import botocore.exceptions

from mlops.core.config import Config

APPROVAL_RULE = "mlops-model-package-approved"
APPROVAL_QUEUE = "mlops-approvals"
BRIDGE_DLQ = "mlops-bridge-dlq"


@dataclass(frozen=True)
class Bootstrapped:
    approval_queue_url: str
    bridge_dlq_url: str
    kms_key_arn: str


def _trust(principal_account: str) -> str:
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{principal_account}:root"},
                    "Action": "sts:AssumeRole",
                }
            ],
        }
    )


def _ensure_role(iam: Any, name: str, trust: str) -> None:
    try:
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=trust, Tags=[{"Key": "mlops:twin", "Value": "true"}])
    except botocore.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] != "EntityAlreadyExists":
            raise


def _ensure_bucket(s3: Any, name: str, region: str) -> None:
    try:
        if region == "us-east-1":
            s3.create_bucket(Bucket=name)
        else:
            s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    except botocore.exceptions.ClientError as exc:
        if exc.response["Error"]["Code"] not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
            raise
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})


def bootstrap(config: Config, automation: boto3.Session) -> Bootstrapped:
    region = config.region
    accounts = config.accounts
    kms = automation.client("kms")
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    if "alias/mlops-artifacts" in aliases:
        key_id = aliases["alias/mlops-artifacts"]
    else:
        key_id = kms.create_key(Description="mlops artifacts (twin)")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName="alias/mlops-artifacts", TargetKeyId=key_id)
    key_arn = kms.describe_key(KeyId=key_id)["KeyMetadata"]["Arn"]

    _ensure_bucket(automation.client("s3"), config.build.artifact_bucket, region)
    iam = automation.client("iam")
    _ensure_role(iam, config.build.execution_role_name, _trust(accounts.automation.id))
    _ensure_role(iam, accounts.automation.deploy_role_name, _trust(accounts.automation.id))

    sagemaker = automation.client("sagemaker")
    try:
        sagemaker.create_model_package_group(
            ModelPackageGroupName=config.build.model_package_group,
            ModelPackageGroupDescription=f"{config.project.name} models",
        )
    except botocore.exceptions.ClientError as exc:
        if "already exists" not in str(exc).lower():
            raise

    sqs = automation.client("sqs")
    dlq_url = sqs.create_queue(QueueName=BRIDGE_DLQ)["QueueUrl"]
    queue_url = sqs.create_queue(QueueName=APPROVAL_QUEUE)["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events = automation.client("events")
    pattern = {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Package State Change"],
        "detail": {
            "ModelApprovalStatus": ["Approved"],
            "ModelPackageGroupName": [config.build.model_package_group],
        },
    }
    events.put_rule(Name=APPROVAL_RULE, EventPattern=json.dumps(pattern), State="ENABLED")
    events.put_targets(Rule=APPROVAL_RULE, Targets=[{"Id": "bridge-queue", "Arn": queue_arn}])

    for settings in (config.deploy.staging, config.deploy.prod):
        stage = getattr(accounts, settings.account)
        sts = automation.client("sts")
        role = stage.role_arn(settings.role_name)
        credentials = sts.assume_role(RoleArn=role, RoleSessionName="mlops-twin-bootstrap")["Credentials"]
        target = boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
            region_name=region,
        )
        target_iam = target.client("iam")
        _ensure_role(target_iam, settings.role_name or stage.deploy_role_name, _trust(accounts.automation.id))
        _ensure_role(target_iam, settings.execution_role_name, _trust(stage.id))
        # The stage's bucket: data capture, async and batch output, monitoring reports.
        _ensure_bucket(target.client("s3"), settings.bucket.format(account_id=stage.id, region=region), region)
    return Bootstrapped(approval_queue_url=queue_url, bridge_dlq_url=dlq_url, kms_key_arn=key_arn)
