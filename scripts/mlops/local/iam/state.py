"""Who is calling, and which policies apply: read from moto's IAM/STS and resource backends in-process.

moto issues the credentials of every `sts:AssumeRole*` session and stores each role's inline and
managed policies, trust policy and permissions boundary, each bucket's, key's, queue's, topic's and
function's resource policy. Nothing here decides: it gathers the inputs of the engine.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from moto.awslambda.models import lambda_backends
from moto.cloudformation.models import cloudformation_backends
from moto.iam.models import get_account_id_from, iam_backends
from moto.kms.models import kms_backends
from moto.s3.models import s3_backends
from moto.sagemaker.models import sagemaker_backends
from moto.secretsmanager.models import secretsmanager_backends
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends
from moto.sts.models import sts_backends

from mlops.local.twin_state import SERVICE_KEY_PREFIX, service_key_account

PARTITION = "aws"


ROOT_POLICY_NAME = "account root (the twin's bootstrap credentials)"
_ROOT_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


@dataclass(frozen=True)
class Principal:
    """The caller of one request, with the policies AWS would evaluate for it."""

    kind: str  # "root" | "role-session" | "user" | "web-identity" | "service"
    arn: str  # as AWS names the caller in messages: the session ARN, the user ARN, the root ARN
    account: str
    role_arn: str | None = None
    policies: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    session_policy: dict[str, Any] | None = None
    boundary: dict[str, Any] | None = None
    context: dict[str, str | list[str]] = field(default_factory=dict)
    problem: str | None = None  # why this identity can do nothing (a session of a deleted role)
    claims: dict[str, str | list[str]] = field(default_factory=dict)  # a web identity token's `<issuer>:<claim>` keys
    expires_at: datetime | None = None  # a role session's Expiration (UTC): after it, every request is refused


def _document(text: Any) -> dict[str, Any]:
    if isinstance(text, dict):
        return text
    return dict(json.loads(text)) if text else {}


def _managed_document(policy: Any) -> dict[str, Any]:
    for version in policy.versions:
        if getattr(version, "is_default", False):
            return _document(version.document)
    return _document(policy.versions[-1].document)


def role_policies(role: Any) -> list[tuple[str, dict[str, Any]]]:
    """A role's inline and attached managed policies, named as AWS names them."""
    found = [(f"{role.name}/inline:{name}", _document(text)) for name, text in role.policies.items()]
    found += [(arn, _managed_document(policy)) for arn, policy in role.managed_policies.items()]
    return found


def find_role(role_arn: str) -> Any | None:
    account = role_arn.split(":")[4]
    iam = iam_backends[account][PARTITION]
    name = role_arn.rsplit("/", 1)[-1]
    for role in list(iam.roles.values()):
        if role.name == name:
            return role
    return None


def all_roles() -> list[Any]:
    roles = []
    for account in list(iam_backends.keys()):
        roles.extend(list(iam_backends[account][PARTITION].roles.values()))
    return roles


def principal_for(access_key: str, mapped_account: str) -> Principal:
    """The caller behind an access key. Keys moto never issued are the account's root (the twin's bootstrap)."""
    if access_key.startswith(SERVICE_KEY_PREFIX):
        service = f"{access_key.removeprefix(SERVICE_KEY_PREFIX).partition('.')[0]}.amazonaws.com"
        mapped_account = service_key_account(access_key) or mapped_account
        return Principal(
            "service",
            service,
            mapped_account,
            context={
                "aws:PrincipalIsAWSService": "true",
                "aws:PrincipalServiceName": service,
                "aws:SourceAccount": mapped_account,
            },
        )
    account = get_account_id_from(access_key)
    iam = iam_backends[account][PARTITION]
    key = iam.access_keys.get(access_key)
    if key is not None and getattr(key, "role_arn", None):
        role_arn = str(key.role_arn)
        session = next(
            (s for s in sts_backends[account][PARTITION].assumed_roles if s.access_key_id == access_key), None
        )
        session_name = session.session_name if session else "session"
        arn = f"arn:aws:sts::{account}:assumed-role/{role_arn.rsplit('/', 1)[-1]}/{session_name}"
        role = find_role(role_arn)
        context: dict[str, str | list[str]] = {
            "aws:PrincipalArn": role_arn,
            "aws:PrincipalAccount": account,
            "aws:PrincipalType": "AssumedRole",
        }
        if role is None:
            return Principal(
                "role-session", arn, account, role_arn, context=context, problem=f"role {role_arn} does not exist"
            )
        context["aws:userid"] = f"{role.id}:{session_name}"
        boundary = None
        if role.permissions_boundary_arn:
            managed = iam.managed_policies.get(role.permissions_boundary_arn)
            boundary = _managed_document(managed) if managed is not None else None
        session_policy = _document(session.policy) if session is not None and session.policy else None
        expires_at = _utc(session.expiration) if session is not None else None
        return Principal(
            "role-session",
            arn,
            account,
            role_arn,
            role_policies(role),
            session_policy,
            boundary,
            context,
            expires_at=expires_at,
        )
    if key is not None and getattr(key, "user_name", None):
        user = iam.get_user(str(key.user_name))
        policies = [(f"{user.name}/inline:{n}", _document(t)) for n, t in user.policies.items()]
        policies += [(arn, _managed_document(p)) for arn, p in user.managed_policies.items()]
        return Principal(
            "user",
            user.arn,
            account,
            policies=policies,
            context={"aws:PrincipalArn": user.arn, "aws:PrincipalAccount": account, "aws:PrincipalType": "User"},
        )
    root = f"arn:aws:iam::{mapped_account}:root"
    return Principal(
        "root",
        root,
        mapped_account,
        policies=[(ROOT_POLICY_NAME, _ROOT_POLICY)],
        context={"aws:PrincipalArn": root, "aws:PrincipalAccount": mapped_account, "aws:PrincipalType": "Account"},
    )


def _utc(moment: datetime) -> datetime:
    """moto keeps naive UTC datetimes."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _jwt_claims(token: str) -> dict[str, Any]:
    try:
        payload = token.split(".")[1]
        return dict(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))))
    except (IndexError, ValueError, binascii.Error) as exc:
        raise ValueError(f"the web identity token is not a JWT: {exc}") from exc


def web_identity_principal(role_arn: str, token: str) -> Principal:
    """The federated caller of AssumeRoleWithWebIdentity: its OIDC provider, with the token's claims as keys."""
    account = role_arn.split(":")[4]
    try:
        claims = _jwt_claims(token)
    except ValueError as exc:
        return Principal("web-identity", "anonymous", account, problem=str(exc))
    issuer = str(claims.get("iss", "")).removeprefix("https://")
    provider = f"arn:aws:iam::{account}:oidc-provider/{issuer}"
    context: dict[str, str | list[str]] = {"aws:FederatedProvider": provider}
    claim_keys: dict[str, str | list[str]] = {}
    for claim in ("aud", "sub", "amr", "azp", "oaud"):
        if claim in claims:
            value = claims[claim]
            claim_keys[f"{issuer}:{claim}"] = [str(v) for v in value] if isinstance(value, list) else str(value)
    known = iam_backends[account][PARTITION].open_id_providers.get(provider)
    problem = None
    if known is None:
        problem = f"no OpenID Connect provider {provider} exists in account {account}"
    else:
        audiences = [str(a) for a in getattr(known, "client_id_list", [])]
        token_audiences = claims.get("aud")
        token_audiences = token_audiences if isinstance(token_audiences, list) else [token_audiences]
        if audiences and not set(audiences) & {str(a) for a in token_audiences}:
            problem = f"the token's audience {token_audiences} is not a client id of {provider} ({audiences})"
    return Principal("web-identity", provider, account, context=context, problem=problem, claims=claim_keys)


_POLICY_ELEMENTS = (
    "Sid",
    "Effect",
    "Principal",
    "NotPrincipal",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Condition",
)


def _lambda_statement(stored: dict[str, Any]) -> dict[str, Any]:
    """A Lambda permission as GetPolicy returns it: moto keeps AddPermission's request members too
    (FunctionName, a bare account id as Principal), which are not policy elements."""
    statement = {key: stored[key] for key in _POLICY_ELEMENTS if key in stored}
    principal = statement.get("Principal")
    if isinstance(principal, str) and principal.isdigit():
        statement["Principal"] = {"AWS": f"arn:aws:iam::{principal}:root"}
    elif isinstance(principal, str):
        statement["Principal"] = {"AWS": principal} if principal.startswith("arn:") or principal == "*" else principal
    return statement


class MotoState:
    """The `Lookups` of the resolver and the resource policies, from moto's backends."""

    def bucket_account(self, bucket: str) -> str | None:
        owner = s3_backends.bucket_accounts.get(bucket)
        return str(owner[1]) if owner else None

    def kms_key(self, account: str, region: str, reference: str) -> tuple[str, str] | None:
        if reference.startswith("arn:"):
            account, region = reference.split(":")[4], reference.split(":")[3]
        backend = kms_backends[account][region]
        try:
            key_id = backend.any_id_to_key_id(reference)
        except (KeyError, TypeError, AttributeError):
            return None
        return (account, key_id) if key_id in backend.keys else None

    def resource_arn(self, account: str, region: str, template: str, arn: str) -> str | None:
        if ":secretsmanager:" in template:
            name = arn.split(":secret:", 1)[-1]
            secret = secretsmanager_backends[account][region].secrets.get(name)
            return str(secret.arn) if secret is not None else None
        return None

    def stack_arn(self, account: str, region: str, name: str) -> str | None:
        for stack in cloudformation_backends[account][region].stacks.values():
            if stack.name == name and stack.status != "DELETE_COMPLETE":
                return str(stack.stack_id)
        return None

    def next_model_package(self, account: str, region: str, group: str) -> str | None:
        backend = sagemaker_backends[account][region]
        versions = [p for p in backend.model_packages.values() if p.model_package_group_name == group]
        return f"{group}/{len(versions) + 1}"

    def resource_policy(self, action: str, arn: str, region: str) -> dict[str, Any] | None:
        """The policy AWS evaluates on the resource of this action, if the service has one."""
        parts = arn.split(":", 5)
        if len(parts) < 6:
            return None
        service, arn_region, account, rest = parts[2], parts[3] or region, parts[4], parts[5]
        if service == "iam" and rest.startswith("role/") and action.lower().startswith("sts:assumerole"):
            role = find_role(arn)
            return _document(role.assume_role_policy_document) if role is not None else None
        if service == "s3":
            bucket_name = rest.split("/", 1)[0]
            owner = self.bucket_account(bucket_name)
            if owner is None:
                return None
            bucket = s3_backends[owner][PARTITION].buckets.get(bucket_name)
            policy = getattr(bucket, "policy", None)
            return _document(policy.decode() if isinstance(policy, bytes) else policy) if policy else None
        if service == "kms" and rest.startswith("key/"):
            key = kms_backends[account][arn_region].keys.get(rest.removeprefix("key/"))
            return _document(key.policy) if key is not None else None
        if service == "sqs":
            queue = sqs_backends[account][arn_region].queues.get(rest)
            return _document(queue.policy) if queue is not None and queue.policy else None
        if service == "sns":
            topic = sns_backends[account][arn_region].topics.get(arn)
            return _document(topic._policy_json) if topic is not None else None
        if service == "lambda" and rest.startswith("function:"):
            name = rest.removeprefix("function:").split(":", 1)[0]
            for function in lambda_backends[account][arn_region].list_functions():
                if function.function_name == name and function.policy.statements:
                    return {
                        "Version": "2012-10-17",
                        "Statement": [_lambda_statement(s) for s in function.policy.statements],
                    }
            return None
        if service == "sagemaker" and ("model-package" in rest):
            group_name = rest.split("/", 2)[1] if "/" in rest else ""
            group = sagemaker_backends[account][arn_region].model_package_groups.get(group_name)
            policy = getattr(group, "resource_policy", None)
            return _document(policy) if policy else None
        return None
