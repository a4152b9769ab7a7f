"""The twin's stand-in for Azure DevOps' OIDC issuer: the tokens its service connections present to AWS STS.

Azure DevOps issues, for an AWS service connection with OIDC, a JWT with `aud` `api://AzureADTokenExchange`
in one of two formats (docs/security.md has the sources):
- legacy: `iss` `https://vstoken.dev.azure.com/{organization id}`, `sub` `sc://{organization}/{project}/{connection}`;
- Entra: `iss` `https://login.microsoftonline.com/{tenant id}/v2.0`,
  `sub` `/eid1/c/pub/t/{tenant, base64url}/a/{Azure DevOps app id, base64url}/sc/{organization id}/{connection id}`.
The AWS Toolkit trades it for role credentials with sts:AssumeRoleWithWebIdentity. The twin signs either format
(RS256) with a key it generates at `mlops local up`, and its STS verifies the signature with that key's JWKS
before the role's trust policy is evaluated, so both trust paths of the templates are exercised. The key lives
under the twin directory (`oidc/`), which `mlops local down` removes.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from mlops.local.errors import TwinError

AUDIENCE = "api://AzureADTokenExchange"
ISSUER_HOST = "vstoken.dev.azure.com"
ENTRA_HOST = "login.microsoftonline.com"
# Azure DevOps' first-party application id in Entra ID (the resource of Azure DevOps tokens).
AZURE_DEVOPS_APP_ID = "499b84ac-1321-427f-aa17-267ca6975798"
TOKEN_LIFETIME_SECONDS = 600
OIDC_DIR = "oidc"
ROLES_FILE = "connection-roles.json"  # connection name -> {account, role_arn, entra}: what it is configured with


class TokenRejected(TwinError):
    """STS refuses the web identity token; `code` is STS's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def subject(organization: str, project: str, connection: str) -> str:
    return f"sc://{organization}/{project}/{connection}"


def _guid_b64(guid: str) -> str:
    return base64.urlsafe_b64encode(uuid.UUID(guid).bytes_le).decode().rstrip("=")


def entra_subject(tenant_id: str, organization_id: str, connection_id: str) -> str:
    """The Entra issuer's subject of one service connection (the shape Azure DevOps documents)."""
    return (
        f"/eid1/c/pub/t/{_guid_b64(tenant_id)}/a/{_guid_b64(AZURE_DEVOPS_APP_ID)}/sc/{organization_id}/{connection_id}"
    )


def connection_id(organization_id: str, project: str, connection: str) -> str:
    """The twin's id of a service connection (Azure DevOps gives each a GUID): fixed for its name."""
    return str(uuid.uuid5(uuid.UUID(organization_id), f"{project}/{connection}"))


@dataclass(frozen=True)
class Issuer:
    organization_id: str
    organization: str
    project: str
    key_id: str
    private_pem: bytes
    jwks: dict[str, Any]
    tenant: str = ""  # the Entra tenant (azure_devops.entra_tenant_id); empty: one derived from the organization

    @property
    def url(self) -> str:
        return f"https://{ISSUER_HOST}/{self.organization_id}"

    @property
    def tenant_id(self) -> str:
        return self.tenant or str(uuid.uuid5(uuid.UUID(self.organization_id), "entra-tenant"))

    @property
    def entra_url(self) -> str:
        return f"https://{ENTRA_HOST}/{self.tenant_id}/v2.0"

    def entra_subject(self, project: str, connection: str) -> str:
        return entra_subject(
            self.tenant_id, self.organization_id, connection_id(self.organization_id, project, connection)
        )

    @classmethod
    def create(cls, directory: Path, organization_id: str, organization: str, project: str, tenant: str = "") -> Issuer:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_id = uuid.uuid4().hex
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        jwks = {"keys": [{**public, "kid": key_id, "use": "sig", "alg": "RS256"}]}
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        folder = directory / OIDC_DIR
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "signing-key.pem").write_bytes(pem)
        (folder / "signing-key.pem").chmod(0o600)
        issuer = cls(organization_id, organization, project, key_id, pem, jwks, tenant)
        described = {
            "issuer": issuer.url,
            "entra_issuer": issuer.entra_url,
            "tenant": tenant,
            "organization_id": organization_id,
            "organization": organization,
            "project": project,
            "jwks": jwks,
        }
        (folder / "issuer.json").write_text(json.dumps(described, indent=2))
        return issuer

    @classmethod
    def load(cls, directory: Path) -> Issuer:
        folder = directory / OIDC_DIR
        try:
            described = json.loads((folder / "issuer.json").read_text())
            pem = (folder / "signing-key.pem").read_bytes()
        except (OSError, ValueError) as exc:
            raise TwinError(
                f"the twin's OIDC issuer is missing or unreadable under {folder}: {exc}",
                hint="restart the twin: `mlops local down` then `mlops local up`",
            ) from exc
        jwks = described["jwks"]
        return cls(
            described["organization_id"],
            described["organization"],
            described["project"],
            jwks["keys"][0]["kid"],
            pem,
            jwks,
            str(described.get("tenant", "")),
        )

    def token(self, project: str, connection: str, *, now: float | None = None, entra: bool = False) -> str:
        """The token Azure DevOps hands a pipeline job for one service connection (`entra`: the new issuer)."""
        issued = int(time.time() if now is None else now)
        claims = {
            "iss": self.entra_url if entra else self.url,
            "aud": AUDIENCE,
            "sub": self.entra_subject(project, connection)
            if entra
            else subject(self.organization, project, connection),
            "iat": issued,
            "nbf": issued,
            "exp": issued + TOKEN_LIFETIME_SECONDS,
            "jti": str(uuid.uuid4()),
        }
        return jwt.encode(claims, self.private_pem, algorithm="RS256", headers={"kid": self.key_id})


def verify(token: str, jwks: Mapping[str, Any], issuer: str, client_ids: list[str], *, now: float) -> dict[str, Any]:
    """What STS checks before the trust policy: signature by the issuer's key, issuer, audience, lifetime.

    Raises TokenRejected with STS's codes: InvalidIdentityToken, ExpiredTokenException.
    """
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError as exc:
        raise TokenRejected("InvalidIdentityToken", f"Couldn't parse the web identity token: {exc}") from exc
    keys = {k.get("kid"): k for k in jwks.get("keys", [])}
    if header.get("kid") not in keys:
        raise TokenRejected("InvalidIdentityToken", "The token's signing key is not one of the issuer's keys")
    public = jwt.algorithms.RSAAlgorithm.from_jwk(json.dumps(keys[header["kid"]]))
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            public,  # type: ignore[arg-type]
            algorithms=["RS256"],
            audience=client_ids,
            issuer=issuer,
            options={"require": ["iss", "aud", "sub", "exp"], "verify_iat": False},
            leeway=0,
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenRejected("ExpiredTokenException", "Token expired") from exc
    except jwt.InvalidAudienceError as exc:
        raise TokenRejected(
            "InvalidIdentityToken", f"Incorrect token audience: none of the provider's client ids {client_ids}"
        ) from exc
    except jwt.PyJWTError as exc:
        raise TokenRejected("InvalidIdentityToken", f"The web identity token is not valid: {exc}") from exc
    if int(claims["exp"]) <= now:
        raise TokenRejected("ExpiredTokenException", "Token expired")
    return claims


def check_web_identity(
    form: Mapping[str, str],
    providers: Mapping[str, tuple[str, list[str]]],
    directory: Path,
    *,
    now: float,
) -> dict[str, Any]:
    """STS's checks of an AssumeRoleWithWebIdentity request before the trust policy is evaluated.

    `providers`: the OIDC providers of the role's account, ARN -> (url without https://, client ids).
    The token's issuer must be one of them, and the only issuer the twin can verify is its own.
    """
    token = form.get("WebIdentityToken", "")
    try:
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError as exc:
        raise TokenRejected("InvalidIdentityToken", f"Couldn't parse the web identity token: {exc}") from exc
    issuer_url = str(unverified.get("iss", ""))
    found = [ids for url, ids in providers.values() if f"https://{url}" == issuer_url]
    if not found:
        raise TokenRejected("InvalidIdentityToken", f"No OpenIDConnect provider found in your account for {issuer_url}")
    issuer = Issuer.load(directory)
    if issuer_url not in (issuer.url, issuer.entra_url):
        raise TokenRejected("InvalidIdentityToken", f"the twin cannot verify tokens of issuer {issuer_url}")
    return verify(token, issuer.jwks, issuer_url, found[0], now=now)


def write_connection_roles(directory: Path, roles: Mapping[str, Mapping[str, Any]]) -> None:
    folder = directory / OIDC_DIR
    folder.mkdir(parents=True, exist_ok=True)
    (folder / ROLES_FILE).write_text(json.dumps({k: dict(v) for k, v in roles.items()}, indent=2))


def connection_roles(directory: Path) -> dict[str, dict[str, Any]]:
    try:
        return dict(json.loads((directory / OIDC_DIR / ROLES_FILE).read_text()))
    except (OSError, ValueError) as exc:
        raise TwinError(
            f"the twin's service-connection roles are missing under {directory / OIDC_DIR}: {exc}",
            hint="restart the twin: `mlops local down` then `mlops local up`",
        ) from exc
