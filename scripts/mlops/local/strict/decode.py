"""Decode an HTTP request to the twin back into (service, operation, input parameters).

Reuses moto 5.2.5's server-side machinery, which is built on botocore's service models:
`moto.core.routing` finds the operation (X-Amz-Target for JSON, `Action` for query, method and
path for REST) and `moto.core.parse` turns the wire format back into the operation's input shape
(JSON bodies, query parameters, REST URI labels, headers, query strings and XML payloads). What
moto does not do is tell the service from the request; here it comes from the SigV4 credential
scope (the signing name), narrowed by the request's own protocol markers, as AWS's front end does
with its host name.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from moto.core.model import OperationModel, ServiceModel
from moto.core.parse import PROTOCOL_PARSERS
from moto.core.request import Request, determine_request_protocol
from moto.core.routing import get_service_router
from moto.core.utils import get_service_model
from werkzeug.exceptions import NotFound

from mlops.local.errors import TwinError

_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/,\s]+/\d{8}/([a-z0-9-]+)/([a-z0-9.-]+)/aws4_request")
# The few operations AWS serves unsigned (botocore sends them without a signature), by query action.
_UNSIGNED_QUERY_ACTIONS = {"AssumeRoleWithWebIdentity": "sts", "AssumeRoleWithSAML": "sts"}
# Signing names that are neither a service's name nor a prefix of it (the rest are found by a scan).
_SIGNING_ALIASES = {"monitoring": ("cloudwatch",), "eventbridge": ("events",), "email": ("ses", "sesv2")}
_JSON_CONTENT = ("application/x-amz-json-1.0", "application/x-amz-json-1.1")
_FORM_CONTENT = "application/x-www-form-urlencoded"


class Undecodable(TwinError):
    """The request names no operation the twin can find in botocore's models (or cannot be parsed).

    `kind` says which AWS error answers it: `unsigned`, `unknown-operation` or `malformed`.
    """

    def __init__(self, kind: str, message: str, service: ServiceModel | None = None) -> None:
        super().__init__(message, hint="send it as an AWS SDK would, signed, to an operation botocore's model has")
        self.kind = kind
        self.service = service


@dataclass(frozen=True)
class Decoded:
    service: ServiceModel
    operation: OperationModel
    protocol: str
    params: dict[str, Any]


def decode(environ: dict[str, Any], body: bytes) -> Decoded:
    """The operation a WSGI request calls and its parameters, decoded as the service's model says."""
    request = Request(dict(environ, **{"wsgi.input": io.BytesIO(body)}))
    service, operation, uri_params = _route(request, body)
    protocol = _protocol(service, request)
    parser = PROTOCOL_PARSERS[protocol](operation)
    try:
        params = parser.parse(
            {
                "method": request.method,
                "values": request.values,
                "headers": request.headers,
                "body": body,
                "url_path": request.path,
                "url_params": uri_params,
            }
        )
    except Exception as exc:  # any parser failure means the body does not fit the model: say so, keep the cause
        raise Undecodable(
            "malformed", f"the {operation.name} request does not parse as its model's input: {exc}", service
        ) from exc
    return Decoded(service, operation, protocol, dict(params))


# ------------------------------------------------------------------------------------- routing


def _route(request: Request, body: bytes) -> tuple[ServiceModel, OperationModel, dict[str, Any]]:
    signing_name = _signing_name(request, body)
    target = request.headers.get("X-Amz-Target")
    candidates: list[ServiceModel] = []
    for service in _signed_as(signing_name):  # models load one by one: most requests match the first
        candidates.append(service)
        try:
            if target and "." in target:
                prefix = target.rsplit(".", 1)[0]
                if service.metadata.get("targetPrefix") != prefix:
                    continue
            elif service.protocol in ("json", "smithy-rpc-v2-cbor") and "query" not in _protocols(service):
                continue  # an RPC service needs its target header
            operation, uri_params = get_service_router(service.service_name).match(request)
        except (NotFound, NotImplementedError):
            continue
        return service, operation, dict(uri_params)
    if not candidates:
        raise Undecodable("unknown-operation", f"no AWS service in botocore's models signs as {signing_name!r}")
    what = f"target {target!r}" if target else f"{request.method} {request.path}"
    names = ", ".join(s.service_name for s in candidates)
    raise Undecodable("unknown-operation", f"no operation of {names} matches {what}", candidates[0])


def _signing_name(request: Request, body: bytes) -> str:
    match = _CREDENTIAL_SCOPE.search(request.headers.get("Authorization", "")) or _CREDENTIAL_SCOPE.search(
        "Credential=" + request.args.get("X-Amz-Credential", "")
    )
    if match:
        return match.group(2)
    action = _query_action(request, body)
    if action in _UNSIGNED_QUERY_ACTIONS:
        return _UNSIGNED_QUERY_ACTIONS[action]
    raise Undecodable("unsigned", "the request carries no AWS Signature Version 4 credential")


def _query_action(request: Request, body: bytes) -> str:
    action = request.args.get("Action")
    if action:
        return action
    if (request.content_type or "").startswith(_FORM_CONTENT):
        return parse_qs(body.decode(errors="replace")).get("Action", [""])[0]
    return ""


def _protocol(service: ServiceModel, request: Request) -> str:
    content_type = request.content_type or ""
    if service.service_name != "s3" and not content_type.startswith((*_JSON_CONTENT, _FORM_CONTENT)):
        # JSON-RPC clients always label their bodies; REST services speak their one protocol.
        return str(service.protocol)
    return determine_request_protocol(service, content_type)


def _protocols(service: ServiceModel) -> list[str]:
    return list(service.metadata.get("protocols", [service.protocol]))


def _signed_as(signing_name: str) -> Iterator[ServiceModel]:
    """The botocore services whose requests are signed with `signing_name`, likeliest first, each model
    loaded only when the one before it did not match (a model is a large JSON file to parse)."""
    available = _available_services()
    likely = [signing_name, *_SIGNING_ALIASES.get(signing_name, ())]
    likely += sorted(n for n in available if n.startswith(f"{signing_name}-"))
    found = False
    for name in likely:
        if name in available and get_service_model(name).signing_name == signing_name:
            found = True
            yield get_service_model(name)
    if not found:
        # A signing name unlike every service name: read every model's metadata (a few seconds, once).
        yield from (get_service_model(n) for n in services_signed_as(signing_name))


@functools.cache
def services_signed_as(signing_name: str) -> tuple[str, ...]:
    """Every botocore service whose requests are signed with `signing_name`, by a scan of all models."""
    return tuple(n for n in sorted(_available_services()) if get_service_model(n).signing_name == signing_name)


@functools.cache
def _available_services() -> frozenset[str]:
    from moto.core.loaders import create_loader

    return frozenset(create_loader().list_available_services("service-2"))
