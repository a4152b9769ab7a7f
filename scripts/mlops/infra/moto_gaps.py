"""What moto's CloudFormation skips, and what the twin adds after deploying a template into it.

moto 5.2.5 creates no resource of the types in MOTO_SKIPPED_TYPES: the stack still ends CREATE_COMPLETE, and a
`Ref`/`Fn::GetAtt`/`${...}` to one of them resolves to nothing ("None" inside a `!Sub`). After a deploy into the
twin, `supplement_stack`:

1. creates each skipped resource through its own API, from the template's own properties evaluated for this
   stack (mlops/infra/render.py: parameters, conditions, pseudo parameters, the physical ids of what moto did
   create). No second hand-written copy: change the template and the twin follows;
2. re-applies what moto resolved to nothing in the resources it did create: the trust and inline policies of
   roles (the OIDC provider, the bridge's secret) and a function's environment (ADO_AUTH_SECRET_ARN);
3. applies the two AWS::S3::Bucket properties moto drops (VersioningConfiguration, PublicAccessBlockConfiguration).

What even the twin cannot do is returned as known gaps (one line each), never skipped silently. (moto has no
PutModelPackageGroupPolicy: the twin's server adds it, mlops/local/moto_fixes.py, and so must any moto this runs
against.)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

import botocore.exceptions

from mlops.core.aws import error_code, error_message
from mlops.core.errors import InfraError
from mlops.infra.render import Renderer, references
from mlops.infra.templates import StackSpec, active_resources, load_template

MOTO_SKIPPED_TYPES = frozenset(
    {
        "AWS::CloudWatch::Alarm",
        "AWS::Events::EventBusPolicy",
        "AWS::IAM::OIDCProvider",
        "AWS::Lambda::EventInvokeConfig",
        "AWS::S3::BucketPolicy",
        "AWS::SNS::TopicPolicy",
        "AWS::SQS::QueuePolicy",
        "AWS::SageMaker::ModelPackageGroup",
        "AWS::SecretsManager::Secret",
    }
)


@dataclass
class Supplement:
    """What the twin did after moto's CloudFormation, and what it could not do."""

    created: list[str] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)


def skipped_resources(active: Mapping[str, str], created_logical_ids: set[str]) -> dict[str, str]:
    """Logical id -> type of the template's resources the stack did not create."""
    return {logical_id: kind for logical_id, kind in active.items() if logical_id not in created_logical_ids}


def supplement_stack(session: Any, spec: StackSpec, progress: Callable[[str], None] = print) -> list[str]:
    """After a deploy into the twin: add what moto skipped for this stack. Returns the lines of what changed."""
    return supplement(session, spec, progress=progress).created


def supplement(session: Any, spec: StackSpec, progress: Callable[[str], None] = print) -> Supplement:
    template = load_template(spec.template_path)
    paginator = session.client("cloudformation").get_paginator("list_stack_resources")
    physical: dict[str, str] = {}
    for page in paginator.paginate(StackName=spec.stack_name):
        for summary in page["StackResourceSummaries"]:
            if summary["LogicalResourceId"]:  # moto lists each skipped resource with an empty id
                physical[summary["LogicalResourceId"]] = summary.get("PhysicalResourceId", "")
    skipped = skipped_resources(active_resources(template, spec.parameters), set(physical))
    unknown = sorted({kind for kind in skipped.values() if kind not in MOTO_SKIPPED_TYPES})
    if unknown:
        raise InfraError(
            f"moto's CloudFormation skipped {', '.join(unknown)} in {spec.stack_name}, which the twin cannot add",
            hint="teach scripts/mlops/infra/moto_gaps.py to create it from the template's properties",
        )
    pseudo = {
        "AWS::AccountId": spec.account_id,
        "AWS::Region": str(session.region_name),
        "AWS::Partition": "aws",
        "AWS::StackName": spec.stack_name,
        "AWS::URLSuffix": "amazonaws.com",
    }
    gaps = _Gaps(session, template, spec.parameters, pseudo, physical, skipped)
    result = gaps.run()
    for line in result.created:
        progress(f"twin: {line}")
    for line in result.gaps:
        progress(f"known gap: {line}")
    return result


class _Gaps:
    def __init__(
        self,
        session: Any,
        template: Mapping[str, Any],
        parameters: Mapping[str, str],
        pseudo: Mapping[str, str],
        physical: Mapping[str, str],
        skipped: Mapping[str, str],
    ) -> None:
        self.session = session
        self.resources: Mapping[str, Any] = template["Resources"]
        self.pseudo = pseudo
        self.physical = dict(physical)
        self.skipped = skipped
        self.result = Supplement()
        self.render = Renderer(template, parameters, pseudo=pseudo, refs=self._refs(), attribute=self._attribute)

    # ------------------------------------------------------------------------------ resolution

    def _refs(self) -> dict[str, str]:
        return {logical_id: self._ref_value(logical_id) for logical_id in self.physical}

    def _ref_value(self, logical_id: str) -> str:
        """What Ref returns for a created resource (moto's physical id is that value for the types used)."""
        return self.physical[logical_id]

    def _type(self, logical_id: str) -> str:
        if logical_id not in self.resources:
            raise InfraError(f"the template refers to {logical_id!r}, which it does not declare")
        return str(self.resources[logical_id]["Type"])

    def _attribute(self, logical_id: str, name: str) -> str:
        """Fn::GetAtt of a created resource, derived as CloudFormation documents it for the type."""
        if logical_id not in self.physical:
            raise InfraError(f"Fn::GetAtt {logical_id}.{name}: {logical_id} does not exist in the twin (yet)")
        kind, ref = self._type(logical_id), self.physical[logical_id]
        account, region = self.pseudo["AWS::AccountId"], self.pseudo["AWS::Region"]
        arn = {
            "AWS::KMS::Key": f"arn:aws:kms:{region}:{account}:key/{ref}",
            "AWS::S3::Bucket": f"arn:aws:s3:::{ref}",
            "AWS::SQS::Queue": f"arn:aws:sqs:{region}:{account}:{ref.rstrip('/').rsplit('/', 1)[-1]}",
            "AWS::IAM::Role": f"arn:aws:iam::{account}:role/{ref}",
            "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{region}:{account}:table/{ref}",
            "AWS::Lambda::Function": f"arn:aws:lambda:{region}:{account}:function:{ref}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{region}:{account}:log-group:{ref}:*",
            "AWS::ECR::Repository": f"arn:aws:ecr:{region}:{account}:repository/{ref}",
            "AWS::Events::Rule": f"arn:aws:events:{region}:{account}:rule/{ref}",
            "AWS::SNS::Topic": ref,
            "AWS::SecretsManager::Secret": ref,
            "AWS::IAM::OIDCProvider": ref,
        }.get(kind)
        if name == "Arn" and arn is not None:
            return arn
        if kind == "AWS::SQS::Queue" and name == "QueueName":
            return ref.rstrip("/").rsplit("/", 1)[-1]
        if kind == "AWS::SQS::Queue" and name == "QueueUrl":
            return ref
        if kind == "AWS::SNS::Topic" and name == "TopicName":
            return ref.rsplit(":", 1)[-1]
        if kind == "AWS::ECR::Repository" and name == "RepositoryUri":
            return f"{account}.dkr.ecr.{region}.amazonaws.com/{ref}"
        raise InfraError(f"the twin cannot derive Fn::GetAtt {logical_id}.{name} ({kind}): extend moto_gaps.py")

    def properties(self, logical_id: str) -> dict[str, Any]:
        rendered = self.render.value(self.resources[logical_id].get("Properties", {}))
        return dict(rendered)

    # ------------------------------------------------------------------------------ the work

    def run(self) -> Supplement:
        for logical_id, physical_id in sorted(self.physical.items()):
            if self._type(logical_id) == "AWS::S3::Bucket":
                self._bucket_properties(physical_id, self.resources[logical_id].get("Properties", {}))
        # Skipped resources in dependency order: what others refer to first (the provider before the roles
        # are re-applied, the secret before the function's environment, functions before their configs).
        pending = dict(self.skipped)
        while pending:
            ready = sorted(lid for lid in pending if not (references(self.resources[lid]) & set(pending)) - {lid})
            if not ready:
                raise InfraError(f"circular references among skipped resources {sorted(pending)}")
            for logical_id in ready:
                self._create(logical_id, pending.pop(logical_id))
        self._reapply_references_to_skipped()
        return self.result

    def _create(self, logical_id: str, kind: str) -> None:
        try:
            ref = self._create_resource(logical_id, kind, self.properties(logical_id))
        except botocore.exceptions.ClientError as exc:
            raise InfraError(
                f"the twin could not create {logical_id} ({kind}), which moto's CloudFormation skips: "
                f"{error_message(exc)}",
                hint="run `mlops local down` and `mlops local up` for a fresh twin, then deploy again",
            ) from exc
        if ref is not None:
            self.physical[logical_id] = ref
            self.render.refs[logical_id] = ref

    def _create_resource(self, logical_id: str, kind: str, properties: dict[str, Any]) -> str | None:
        """Create one skipped resource; returns what Ref gives for it (None when nothing refers to it)."""
        created = self.result.created
        if kind == "AWS::IAM::OIDCProvider":
            return self._oidc_provider(properties)
        if kind == "AWS::SecretsManager::Secret":
            return self._secret(properties)
        if kind == "AWS::SageMaker::ModelPackageGroup":
            self._model_package_group(logical_id, properties)
            return str(properties["ModelPackageGroupName"])
        if kind == "AWS::S3::BucketPolicy":
            s3 = self.session.client("s3")
            bucket, document = str(properties["Bucket"]), properties["PolicyDocument"]
            if _json_or_none(lambda: s3.get_bucket_policy(Bucket=bucket)["Policy"]) != document:
                s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(document))
                created.append(f"bucket policy {logical_id} on {bucket}")
            return None
        if kind == "AWS::SQS::QueuePolicy":
            sqs = self.session.client("sqs")
            document = properties["PolicyDocument"]
            for url in properties["Queues"]:
                live = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"]).get("Attributes", {})
                if "Policy" not in live or json.loads(live["Policy"]) != document:
                    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(document)})
                    created.append(f"queue policy {logical_id} on {url.rsplit('/', 1)[-1]}")
            return None
        if kind == "AWS::SNS::TopicPolicy":
            sns = self.session.client("sns")
            document = properties["PolicyDocument"]
            for arn in properties["Topics"]:
                live = sns.get_topic_attributes(TopicArn=arn)["Attributes"].get("Policy")
                if live is None or json.loads(live) != document:
                    sns.set_topic_attributes(TopicArn=arn, AttributeName="Policy", AttributeValue=json.dumps(document))
                    created.append(f"topic policy {logical_id} on {arn.rsplit(':', 1)[-1]}")
            return None
        if kind == "AWS::Events::EventBusPolicy":
            events = self.session.client("events")
            statement = {**properties["Statement"], "Sid": str(properties["StatementId"])}
            bus = str(properties.get("EventBusName") or "default")
            live = _json_or_none(lambda: events.describe_event_bus(Name=bus).get("Policy") or "null")
            # EventBridge rewrites the principals of a stored statement (account ids to root ARNs): match by Sid.
            if not live or statement["Sid"] not in {x.get("Sid") for x in live.get("Statement", [])}:
                events.put_permission(
                    EventBusName=bus, Policy=json.dumps({"Version": "2012-10-17", "Statement": [statement]})
                )
                created.append(f"event bus policy {logical_id} on {bus}")
            return None
        if kind == "AWS::CloudWatch::Alarm":
            cloudwatch = self.session.client("cloudwatch")
            name = str(properties["AlarmName"])
            if not cloudwatch.describe_alarms(AlarmNames=[name]).get("MetricAlarms"):
                cloudwatch.put_metric_alarm(**properties)
                created.append(f"alarm {name}")
            return name
        if kind == "AWS::Lambda::EventInvokeConfig":
            lam = self.session.client("lambda")
            request = dict(properties)
            try:
                live = lam.get_function_event_invoke_config(
                    FunctionName=request["FunctionName"], Qualifier=request.get("Qualifier", "$LATEST")
                )
                same = all(live.get(k) == v for k, v in request.items() if k not in ("FunctionName", "Qualifier"))
            except botocore.exceptions.ClientError as exc:
                if error_code(exc) != "ResourceNotFoundException":
                    raise
                same = False
            if not same:
                lam.put_function_event_invoke_config(**request)
                created.append(f"event invoke config of {request['FunctionName']}")
            return None
        raise InfraError(f"the twin cannot create {kind} ({logical_id}): extend scripts/mlops/infra/moto_gaps.py")

    def _oidc_provider(self, properties: dict[str, Any]) -> str:
        iam = self.session.client("iam")
        url = str(properties["Url"])
        arn = f"arn:aws:iam::{self.pseudo['AWS::AccountId']}:oidc-provider/{url.removeprefix('https://')}"
        try:
            iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn)
            return arn
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "NoSuchEntity":
                raise
        request: dict[str, Any] = {"Url": url, "ClientIDList": list(properties.get("ClientIdList", []))}
        if properties.get("ThumbprintList"):
            request["ThumbprintList"] = list(properties["ThumbprintList"])
        created_arn = str(iam.create_open_id_connect_provider(**request)["OpenIDConnectProviderArn"])
        self.result.created.append(f"OIDC provider {url}")
        return created_arn

    def _secret(self, properties: dict[str, Any]) -> str:
        secrets = self.session.client("secretsmanager")
        name = str(properties["Name"])
        try:
            return str(secrets.describe_secret(SecretId=name)["ARN"])
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "ResourceNotFoundException":
                raise
        request = {k: properties[k] for k in ("Name", "Description", "KmsKeyId", "Tags") if k in properties}
        arn = str(secrets.create_secret(**request)["ARN"])
        self.result.created.append(f"secret {name} (no value: write one with `aws secretsmanager put-secret-value`)")
        return arn

    def _model_package_group(self, logical_id: str, properties: dict[str, Any]) -> None:
        sagemaker = self.session.client("sagemaker")
        name = str(properties["ModelPackageGroupName"])
        existing = sagemaker.list_model_package_groups(NameContains=name).get("ModelPackageGroupSummaryList", [])
        if not any(group["ModelPackageGroupName"] == name for group in existing):
            request = {"ModelPackageGroupName": name}
            if "ModelPackageGroupDescription" in properties:
                request["ModelPackageGroupDescription"] = properties["ModelPackageGroupDescription"]
            if properties.get("Tags"):
                request["Tags"] = properties["Tags"]
            sagemaker.create_model_package_group(**request)
            self.result.created.append(f"model package group {name}")
        policy = properties.get("ModelPackageGroupPolicy")
        if policy:
            document = json.loads(policy) if isinstance(policy, str) else policy
            try:
                live = json.loads(
                    sagemaker.get_model_package_group_policy(ModelPackageGroupName=name)["ResourcePolicy"]
                )
            except botocore.exceptions.ClientError as exc:
                if error_code(exc) != "ValidationException":
                    raise  # moto without the twin's PutModelPackageGroupPolicy answers 500: a clear failure
                live = None
            if live != document:
                sagemaker.put_model_package_group_policy(
                    ModelPackageGroupName=name, ResourcePolicy=json.dumps(document)
                )
                self.result.created.append(f"model package group policy of {name}")

    def _reapply_references_to_skipped(self) -> None:
        """Created resources whose properties referred to a skipped one got nothing from moto: apply them again."""
        skipped = set(self.skipped)
        for logical_id in sorted(self.physical):
            if logical_id in skipped:
                continue
            resource = self.resources[logical_id]
            if not references(resource.get("Properties", {})) & skipped:
                continue
            kind = str(resource["Type"])
            if kind == "AWS::IAM::Role":
                self._reapply_role(logical_id, resource["Properties"])
            elif kind == "AWS::Lambda::Function":
                self._reapply_function_environment(logical_id, resource["Properties"])
            else:
                raise InfraError(
                    f"{logical_id} ({kind}) refers to {sorted(references(resource['Properties']) & skipped)}, which "
                    "moto's CloudFormation skipped; the twin cannot re-apply that type",
                    hint="extend _reapply_references_to_skipped in scripts/mlops/infra/moto_gaps.py",
                )

    def _reapply_role(self, logical_id: str, template_properties: Mapping[str, Any]) -> None:
        iam = self.session.client("iam")
        name = self.physical[logical_id]
        skipped = set(self.skipped)
        if references(template_properties.get("AssumeRolePolicyDocument")) & skipped:
            document = self.render.value(template_properties["AssumeRolePolicyDocument"])
            wanted = json.loads(document) if isinstance(document, str) else document
            if _as_document(iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]) != wanted:
                iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(wanted))
                self.result.created.append(f"trust policy of role {name}")
        for policy in template_properties.get("Policies", []):
            if references(policy) & skipped:
                rendered = self.render.value(policy)
                live = iam.get_role_policy(RoleName=name, PolicyName=rendered["PolicyName"])["PolicyDocument"]
                if _as_document(live) != rendered["PolicyDocument"]:
                    iam.put_role_policy(
                        RoleName=name,
                        PolicyName=rendered["PolicyName"],
                        PolicyDocument=json.dumps(rendered["PolicyDocument"]),
                    )
                    self.result.created.append(f"policy {rendered['PolicyName']} of role {name}")

    def _reapply_function_environment(self, logical_id: str, template_properties: Mapping[str, Any]) -> None:
        lam = self.session.client("lambda")
        name = self.physical[logical_id]
        wanted = self.render.value(template_properties.get("Environment", {})).get("Variables", {})
        wanted = {k: str(v) for k, v in wanted.items()}  # a Number parameter renders as text, as in Lambda
        live = (lam.get_function_configuration(FunctionName=name).get("Environment") or {}).get("Variables") or {}
        if live != wanted:
            lam.update_function_configuration(FunctionName=name, Environment={"Variables": wanted})
            self.result.created.append(f"environment of function {name}")

    def _bucket_properties(self, bucket: str, template_properties: Mapping[str, Any]) -> None:
        s3 = self.session.client("s3")
        properties = self.render.value(template_properties)
        versioning = properties.get("VersioningConfiguration", {}).get("Status")
        if versioning and s3.get_bucket_versioning(Bucket=bucket).get("Status") != versioning:
            s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": versioning})
            self.result.created.append(f"versioning {versioning} on bucket {bucket}")
        block = properties.get("PublicAccessBlockConfiguration")
        if block and _public_access_block(s3, bucket) != block:
            s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration=dict(block))
            self.result.created.append(f"public access block on bucket {bucket}")


def _public_access_block(s3: Any, bucket: str) -> dict[str, Any]:
    try:
        return dict(s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"])
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) == "NoSuchPublicAccessBlockConfiguration":
            return {}
        raise


def _as_document(value: Any) -> Any:
    """IAM returns policy documents URL-encoded JSON text (boto3 decodes some, moto others): one form."""
    if isinstance(value, str):
        try:
            return json.loads(unquote(value))
        except ValueError:  # moto keeps a document CloudFormation gave it as Python text: never equal, re-put
            return value
    return value


def _json_or_none(read: Callable[[], str]) -> Any:
    try:
        return json.loads(read())
    except botocore.exceptions.ClientError as exc:
        if error_code(exc) in ("NoSuchBucketPolicy", "NoSuchEntity", "ResourceNotFoundException"):
            return None
        raise
