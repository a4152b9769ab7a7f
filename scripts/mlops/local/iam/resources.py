"""What a call asks IAM for: its action(s) and the resource ARN(s) each acts on.

The action of an operation is the operation's own name under the service's IAM prefix, except
where AWS documents another (S3's "Required permissions for Amazon S3 API operations", Lambda's
`Invoke` = `lambda:InvokeFunction`): `RENAMED` lists only those. Every action must exist in the
engine's Service Authorization Reference data, which also gives each action's resource types and
their ARN templates (`arn:${Partition}:s3:::${BucketName}/${ObjectName}`). The ARN is filled from
the request: an ARN the request names that fits the template, or the template's placeholders from
the request's members. Pure, apart from `Lookups` (moto's state, injected).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import unquote

from mlops.local.iam.operations import Call

# Where the IAM prefix is not botocore's signing name.
IAM_PREFIX = {"cloudwatch": "cloudwatch", "sagemaker-runtime": "sagemaker"}

# Operations whose IAM action has another name than the operation (AWS documents each).
RENAMED: dict[tuple[str, str], str] = {
    ("s3", "ListObjectsV2"): "ListBucket",
    ("s3", "ListObjects"): "ListBucket",
    ("s3", "HeadBucket"): "ListBucket",
    ("s3", "HeadObject"): "GetObject",
    ("s3", "ListBuckets"): "ListAllMyBuckets",
    ("s3", "ListObjectVersions"): "ListBucketVersions",
    ("s3", "ListMultipartUploads"): "ListBucketMultipartUploads",
    ("s3", "ListParts"): "ListMultipartUploadParts",
    ("s3", "CreateMultipartUpload"): "PutObject",
    ("s3", "UploadPart"): "PutObject",
    ("s3", "CompleteMultipartUpload"): "PutObject",
    ("s3", "AbortMultipartUpload"): "AbortMultipartUpload",
    ("s3", "CopyObject"): "PutObject",
    ("s3", "DeleteObjects"): "DeleteObject",
    ("s3", "GetBucketLifecycleConfiguration"): "GetLifecycleConfiguration",
    ("s3", "PutBucketLifecycleConfiguration"): "PutLifecycleConfiguration",
    ("s3", "DeleteBucketLifecycle"): "PutLifecycleConfiguration",
    ("s3", "GetBucketEncryption"): "GetEncryptionConfiguration",
    ("s3", "PutBucketEncryption"): "PutEncryptionConfiguration",
    ("s3", "DeleteBucketEncryption"): "PutEncryptionConfiguration",
    ("s3", "GetBucketNotificationConfiguration"): "GetBucketNotification",
    ("s3", "PutBucketNotificationConfiguration"): "PutBucketNotification",
    ("s3", "GetPublicAccessBlock"): "GetBucketPublicAccessBlock",
    ("s3", "PutPublicAccessBlock"): "PutBucketPublicAccessBlock",
    ("s3", "DeletePublicAccessBlock"): "PutBucketPublicAccessBlock",
    ("s3", "GetBucketReplication"): "GetReplicationConfiguration",
    ("s3", "PutBucketReplication"): "PutReplicationConfiguration",
    ("s3", "DeleteBucketTagging"): "PutBucketTagging",
    ("s3", "DeleteBucketCors"): "PutBucketCORS",
    ("s3", "PutBucketCors"): "PutBucketCORS",
    ("s3", "GetBucketCors"): "GetBucketCORS",
    ("s3", "DeleteBucketOwnershipControls"): "PutBucketOwnershipControls",
    ("lambda", "Invoke"): "InvokeFunction",
    ("lambda", "InvokeAsync"): "InvokeFunction",
    ("lambda", "GetFunctionConfiguration"): "GetFunctionConfiguration",
}
# Operations AWS answers without an authorisation check ("No permissions are required", STS API reference).
NO_AUTHORIZATION = {("sts", "GetCallerIdentity")}
# Versioned variants: the same operation on a version is another action (S3's permission table).
_VERSIONED = {
    "GetObject": "GetObjectVersion",
    "DeleteObject": "DeleteObjectVersion",
    "GetObjectTagging": "GetObjectVersionTagging",
}

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9]+)\}")


class Lookups(Protocol):
    """What the resolver reads from the twin's state (moto), injected."""

    def bucket_account(self, bucket: str) -> str | None: ...

    def kms_key(self, account: str, region: str, reference: str) -> tuple[str, str] | None:
        """(account, key id) of a key id, key ARN, alias name or alias ARN."""
        ...

    def resource_arn(self, account: str, region: str, placeholder: str, value: str) -> str | None:
        """The full ARN where the name alone does not make it (a stack's id, a secret's suffix)."""
        ...

    def next_model_package(self, account: str, region: str, group: str) -> str | None: ...

    def stack_arn(self, account: str, region: str, name: str) -> str | None: ...


@dataclass(frozen=True)
class ActionInfo:
    """One action of the engine's data: its resource types (name, required, ARN template)."""

    name: str
    wildcard_only: bool
    resource_types: list[dict[str, Any]]
    condition_keys: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Need:
    """One authorisation AWS performs for a call: an action on a resource, with request context."""

    action: str
    resources: list[str]  # ["*"] for actions that take no resource
    unresolved: str | None = None  # why no ARN could be computed (the call is then refused)
    context: dict[str, str | list[str]] = field(default_factory=dict)


def iam_action(call: Call) -> str | None:
    """`service:Action` for a call, or None when AWS authorises nothing for it."""
    if (call.service, call.operation) in NO_AUTHORIZATION:
        return None
    prefix = IAM_PREFIX.get(call.service, _signing_prefix(call.service))
    name = RENAMED.get((call.service, call.operation), call.operation)
    if call.service == "s3" and call.params.get("VersionId") and name in _VERSIONED:
        name = _VERSIONED[name]
    return f"{prefix}:{name}"


def _signing_prefix(service: str) -> str:
    from mlops.local.iam.operations import service_model

    return str(service_model(service).signing_name)


def _template_regex(template: str) -> re.Pattern[str]:
    parts = _PLACEHOLDER.split(template)
    pattern = ""
    for index, part in enumerate(parts):
        if index % 2 == 0:
            pattern += re.escape(part)
        else:
            pattern += f"(?P<{part}>.+)" if index == len(parts) - 2 else f"(?P<{part}>[^:]*?)"
    return re.compile(f"^{pattern}$")


def _arns_in(params: dict[str, Any]) -> list[str]:
    found = []
    for value in params.values():
        if isinstance(value, str) and value.startswith("arn:"):
            found.append(value)
        elif isinstance(value, list):
            found.extend(v for v in value if isinstance(v, str) and v.startswith("arn:"))
    return found


def _member_values(params: dict[str, Any], placeholder: str) -> list[str]:
    """The request members that name a placeholder of an ARN template."""
    candidates = [placeholder]
    stem = re.sub(r"(NameWithPath|NameWithoutLeadingSlash|Name|Id)$", "", placeholder)
    candidates += [stem, f"{stem}Name", f"{stem}Names", f"{stem}Id", f"{stem}Ids", f"{placeholder}s"]
    special = {
        "ObjectName": ["Key"],
        "BucketName": ["Bucket"],
        "QueueName": ["QueueUrl", "QueueName"],
        "TopicName": ["TopicArn", "Name"],
        "RuleName": ["Name", "Rule"],
        "ParameterNameWithoutLeadingSlash": ["Name", "Names"],
        "RoleNameWithPath": ["RoleName"],
        "PolicyNameWithPath": ["PolicyName"],
        "Alias": ["AliasName"],
        "KeyId": ["KeyId", "TargetKeyId"],
        "SecretId": ["SecretId", "Name"],
        "ResourceId": ["ResourceId"],
        "OidcProviderName": ["OpenIDConnectProviderArn", "Url"],
        # Create/Describe/DeleteDataQualityJobDefinition name it JobDefinitionName.
        "DataQualityJobDefinitionName": ["JobDefinitionName"],
    }
    candidates = special.get(placeholder, []) + candidates
    for member in candidates:
        value = params.get(member)
        if isinstance(value, str) and value:
            return [value]
        if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            return list(value)
    return []


def _normalise(placeholder: str, value: str) -> str:
    if placeholder == "QueueName":
        return value.rstrip("/").rsplit("/", 1)[-1]
    if placeholder in ("TopicName",) and value.startswith("arn:"):
        return value.rsplit(":", 1)[-1]
    if placeholder == "ParameterNameWithoutLeadingSlash":
        return value.lstrip("/")
    if placeholder == "OidcProviderName":
        return value.split(":oidc-provider/", 1)[-1].removeprefix("https://")
    if placeholder == "Alias":
        return value.removeprefix("alias/")
    if placeholder == "RoleNameWithPath" and value.startswith("arn:"):
        return value.split(":role/", 1)[-1]
    return value


def fill(template: str, call: Call, account: str, lookups: Lookups) -> list[str] | None:
    """The ARNs of one resource type for this call, or None when the request does not name them."""
    regex = _template_regex(template)
    named = [arn for arn in _arns_in(call.params) if regex.match(arn)]
    if named:
        return named
    values: dict[str, list[str]] = {}
    arn_account = account
    for placeholder in _PLACEHOLDER.findall(template):
        if placeholder == "Partition":
            values[placeholder] = ["aws"]
        elif placeholder == "Region":
            values[placeholder] = [call.region]
        elif placeholder == "Account":
            continue
        elif placeholder == "KeyId":
            reference = _member_values(call.params, "KeyId")
            key = lookups.kms_key(account, call.region, reference[0]) if reference else None
            if key is None:
                return None
            arn_account, values[placeholder] = key[0], [key[1]]
        elif placeholder == "ModelPackageName" and "ModelPackageGroupName" in call.params:
            package = lookups.next_model_package(account, call.region, str(call.params["ModelPackageGroupName"]))
            if package is None:
                return None
            values[placeholder] = [package]
        elif placeholder == "Id" and "StackName" in call.params:
            name = str(call.params["StackName"])
            existing = lookups.stack_arn(account, call.region, name)
            # A stack being created has no id yet: AWS's id is a UUID, which `stack/<name>/*` matches alike.
            values[placeholder] = [existing.rsplit("/", 1)[-1] if existing else "00000000-0000-0000-0000-000000000000"]
        elif placeholder == "EventBusName" and not call.params.get("EventBusName"):
            return None  # the default-bus resource type applies
        else:
            found = _member_values(call.params, placeholder)
            if not found:
                return None
            values[placeholder] = [_normalise(placeholder, v) for v in found]
    if "BucketName" in values:
        arn_account = lookups.bucket_account(values["BucketName"][0]) or account
    values["Account"] = [arn_account]
    arns = [template]
    for placeholder, options in values.items():
        arns = [arn.replace("${" + placeholder + "}", option) for arn in arns for option in options]
    resolved = []
    for arn in arns:
        if "${" in arn:
            return None
        full = lookups.resource_arn(arn_account, call.region, template, arn)
        resolved.append(full or arn)
    return resolved


def resource_account(arn: str, lookups: Lookups, default: str) -> str:
    """The account that owns a resource: the ARN's account field, S3's bucket owner, else the caller's."""
    parts = arn.split(":", 5)
    if len(parts) < 6:
        return default
    if parts[2] == "s3" and not parts[4]:
        return lookups.bucket_account(parts[5].split("/", 1)[0]) or default
    return parts[4] or default


_PASSED_ROLE_MEMBER = re.compile(r"^(Execution)?Role(Arn|ARN)?$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/")


def passed_roles(call: Call) -> list[str]:
    """Role ARNs a call hands to the service to use (`ExecutionRoleArn`, `RoleArn`, Lambda's `Role`):
    AWS authorises `iam:PassRole` on each, with `iam:PassedToService`. STS and IAM take role ARNs as
    their subject, not to pass them."""
    if call.service in ("sts", "iam"):
        return []
    return [
        str(value)
        for name, value in call.params.items()
        if _PASSED_ROLE_MEMBER.match(name) and isinstance(value, str) and _ROLE_ARN.match(value)
    ]


def needs(call: Call, action: str, info: ActionInfo, account: str, lookups: Lookups) -> list[Need]:
    """Every authorisation the call needs, with the ARNs computed from the request."""
    result = [_need(call, action, info, account, lookups)]
    prefix = action.split(":", 1)[0]
    for role in passed_roles(call):
        result.append(Need("iam:PassRole", [role], context={"iam:PassedToService": f"{prefix}.amazonaws.com"}))
    if call.service == "s3" and call.operation == "CopyObject" and call.params.get("CopySource"):
        source = unquote(str(call.params["CopySource"])).lstrip("/").split("?", 1)[0]
        result.append(Need("s3:GetObject", [f"arn:aws:s3:::{source}"]))
    if call.service == "s3" and call.operation == "DeleteObjects":
        keys = [o.get("Key", "") for o in call.params.get("Delete", {}).get("Objects", [])]
        bucket = call.params.get("Bucket", "")
        result = [Need(action, [f"arn:aws:s3:::{bucket}/{key}" for key in keys] or [f"arn:aws:s3:::{bucket}/*"])]
    return result


def _need(call: Call, action: str, info: ActionInfo, account: str, lookups: Lookups) -> Need:
    if info.wildcard_only or not info.resource_types:
        return Need(action, ["*"])
    resources: list[str] = []
    missing: list[str] = []
    for resource_type in info.resource_types:
        arns = fill(str(resource_type["arn"]), call, account, lookups)
        if arns is None:
            if resource_type["required"]:
                missing.append(f"{resource_type['name']} ({resource_type['arn']})")
            continue
        if resource_type["required"] or not resources:
            resources.extend(a for a in arns if a not in resources)
    if not missing and not resources and not any(t["required"] for t in info.resource_types):
        # Every resource type is optional (cloudwatch:PutMetricData's `dataset`) and the request names none:
        # AWS authorises the action on "*", as for an action without resource types.
        return Need(action, ["*"])
    if missing or not resources:
        what = ", ".join(missing) or ", ".join(f"{t['name']} ({t['arn']})" for t in info.resource_types)
        return Need(action, [], unresolved=f"the request names no {what}")
    return Need(action, resources)
