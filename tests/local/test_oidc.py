"""The twin's stand-in for Azure DevOps' OIDC issuer: the token's claims and what STS checks of it. Pure."""

from __future__ import annotations

import base64
import time
import uuid
from pathlib import Path

import jwt
import pytest

from mlops.local.oidc import AUDIENCE, Issuer, TokenRejected, check_web_identity, verify

ORG_ID = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Issuer:
    return Issuer.create(tmp_path_factory.mktemp("twin"), ORG_ID, "contoso", "mlops")


def test_the_token_carries_what_azure_devops_issues(issuer: Issuer) -> None:
    token = issuer.token("mlops", "aws-staging", now=1_800_000_000)
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert header["alg"] == "RS256" and header["kid"] == issuer.key_id
    assert claims["iss"] == f"https://vstoken.dev.azure.com/{ORG_ID}"
    assert claims["aud"] == AUDIENCE == "api://AzureADTokenExchange"
    assert claims["sub"] == "sc://contoso/mlops/aws-staging"
    assert claims["exp"] - claims["iat"] == 600


def test_verify_accepts_the_issuers_token_and_refuses_others(issuer: Issuer, tmp_path: Path) -> None:
    now = time.time()
    claims = verify(issuer.token("mlops", "aws-prod"), issuer.jwks, issuer.url, [AUDIENCE], now=now)
    assert claims["sub"] == "sc://contoso/mlops/aws-prod"

    other = Issuer.create(tmp_path, ORG_ID, "contoso", "mlops")  # same issuer URL, another key
    with pytest.raises(TokenRejected, match="signing key is not one of the issuer's keys") as refused:
        verify(other.token("mlops", "aws-prod"), issuer.jwks, issuer.url, [AUDIENCE], now=now)
    assert refused.value.code == "InvalidIdentityToken"
    # signed by another key under the issuer's key id: the signature does not verify
    claims = jwt.decode(other.token("mlops", "aws-prod"), options={"verify_signature": False})
    forged = jwt.encode(claims, other.private_pem, algorithm="RS256", headers={"kid": issuer.key_id})
    with pytest.raises(TokenRejected, match="not valid: Signature verification failed"):
        verify(forged, issuer.jwks, issuer.url, [AUDIENCE], now=now)
    with pytest.raises(TokenRejected, match="Incorrect token audience"):
        verify(issuer.token("mlops", "aws-prod"), issuer.jwks, issuer.url, ["sts.amazonaws.com"], now=now)
    with pytest.raises(TokenRejected, match="Token expired") as expired:
        verify(issuer.token("mlops", "aws-prod", now=now - 3600), issuer.jwks, issuer.url, [AUDIENCE], now=now)
    assert expired.value.code == "ExpiredTokenException"


def test_sts_needs_a_provider_for_the_tokens_issuer(tmp_path: Path) -> None:
    issuer = Issuer.create(tmp_path, ORG_ID, "contoso", "mlops")
    form = {"Action": "AssumeRoleWithWebIdentity", "WebIdentityToken": issuer.token("mlops", "aws-automation")}
    url = f"vstoken.dev.azure.com/{ORG_ID}"
    provider = {f"arn:aws:iam::000000000001:oidc-provider/{url}": (url, [AUDIENCE])}
    assert check_web_identity(form, provider, tmp_path, now=time.time())["sub"] == "sc://contoso/mlops/aws-automation"
    with pytest.raises(TokenRejected, match="No OpenIDConnect provider found in your account"):
        check_web_identity(form, {}, tmp_path, now=time.time())
    with pytest.raises(TokenRejected, match="Couldn't parse"):
        check_web_identity({"WebIdentityToken": "not-a-jwt"}, provider, tmp_path, now=time.time())


def test_the_entra_token_carries_the_entra_issuer_and_subject(issuer: Issuer, tmp_path: Path) -> None:
    token = issuer.token("mlops", "aws-deploy-prod", now=1_800_000_000, entra=True)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == f"https://login.microsoftonline.com/{issuer.tenant_id}/v2.0" == issuer.entra_url
    assert claims["aud"] == AUDIENCE
    # /eid1/c/pub/t/<tenant, base64url of its GUID bytes>/a/<app, likewise>/sc/<organization id>/<connection id>
    tenant = base64.urlsafe_b64encode(uuid.UUID(issuer.tenant_id).bytes_le).decode().rstrip("=")
    prefix = f"/eid1/c/pub/t/{tenant}/a/rISbSSETf0KqFyZ8ppdXmA/sc/{ORG_ID}/"
    assert claims["sub"].startswith(prefix)
    assert uuid.UUID(claims["sub"].removeprefix(prefix))  # the connection's id: a GUID, fixed for its name
    assert claims["sub"] == issuer.entra_subject("mlops", "aws-deploy-prod") != issuer.entra_subject("mlops", "x")
    # STS accepts it only with a provider for the Entra issuer, and verifies it with the same key
    url = issuer.entra_url.removeprefix("https://")
    form = {"Action": "AssumeRoleWithWebIdentity", "WebIdentityToken": issuer.token("mlops", "aws-build", entra=True)}
    legacy = f"vstoken.dev.azure.com/{ORG_ID}"
    with pytest.raises(TokenRejected, match="No OpenIDConnect provider found"):
        check_web_identity(form, {"legacy": (legacy, [AUDIENCE])}, tmp_path, now=time.time())
    Issuer.create(tmp_path, ORG_ID, "contoso", "mlops", issuer.tenant)  # another key under the same issuers
    with pytest.raises(TokenRejected, match="signing key is not one of the issuer's keys"):
        check_web_identity(form, {"entra": (url, [AUDIENCE])}, tmp_path, now=time.time())
