"""Which API operation a request is, and its parameters: decoded with botocore's own service models.

AWS signs every request with the service's signing name in the SigV4 credential scope; the
operation then comes from `X-Amz-Target` (JSON protocols), the `Action` parameter (query protocols)
or the HTTP method and URI template of the operation (REST protocols: S3, Lambda), exactly as the
service model declares them. Pure: no moto, no network.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import parse_qs, unquote

import botocore.session
from botocore.exceptions import UnknownServiceError
from botocore.model import OperationModel, ServiceModel

_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/\d{8}/([a-z0-9-]+)/([a-z0-9.-]+)/aws4_request")
_INVOCATION = re.compile(r"^/endpoints/([^/]+)/(async-)?invocations$")
# Signing names that are not botocore's service name (CloudWatch signs as "monitoring").
_SERVICE_FOR_SIGNING_NAME = {"monitoring": "cloudwatch", "states": "stepfunctions"}
# Unsigned STS operations: the token or assertion is the credential.
_UNSIGNED_STS = {"AssumeRoleWithWebIdentity", "AssumeRoleWithSAML"}


@dataclass(frozen=True)
class Call:
    """One decoded AWS request."""

    service: str  # botocore's service name, e.g. "s3", "sagemaker-runtime"
    operation: str  # the API operation, e.g. "HeadObject"
    params: dict[str, Any]  # the operation's input members that the request carries
    region: str
    access_key: str | None  # None for unsigned requests
    protocol: str
    headers: dict[str, str] = field(default_factory=dict)


class UndecodableRequest(ValueError):
    """The request is not an AWS API call the twin can name (no signature scope, unknown operation)."""


@cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


@cache
def service_model(name: str) -> ServiceModel:
    return _session().get_service_model(name)


@cache
def _routes(service: str) -> list[tuple[OperationModel, str, re.Pattern[str], dict[str, str | None], list[str]]]:
    """Per REST operation: (model, method, path regex, literal query keys, path label names)."""
    routes = []
    model = service_model(service)
    for name in model.operation_names:
        operation = model.operation_model(name)
        uri = operation.http.get("requestUri", "/")
        path, _, query = uri.partition("?")
        labels: list[str] = []

        pattern = ""
        for index, piece in enumerate(re.split(r"\{([A-Za-z0-9_]+\+?)\}", path)):
            if index % 2 == 0:
                pattern += re.escape(piece)
            else:
                labels.append(piece.rstrip("+"))
                # `{Key+}` spans slashes; a plain label is one segment.
                pattern += "(.+)" if piece.endswith("+") else "([^/]+)"
        literals: dict[str, str | None] = {}
        for part in filter(None, query.split("&")):
            key, sep, value = part.partition("=")
            literals[key] = value if sep else None
        routes.append((operation, operation.http.get("method", "POST"), re.compile(f"^{pattern}/?$"), literals, labels))
    return routes


def _bound_members(operation: OperationModel, location: str) -> dict[str, str]:
    """Input members bound to a header or query string: {wire name (lowercase for headers): member}."""
    shape = operation.input_shape
    if shape is None:
        return {}
    found = {}
    for member, member_shape in shape.members.items():
        if member_shape.serialization.get("location") == location:
            wire = member_shape.serialization.get("name", member)
            found[wire.lower() if location == "header" else wire] = member
    return found


def _route(
    service: str, method: str, path: str, query: dict[str, list[str]], headers: dict[str, str]
) -> tuple[OperationModel, dict[str, Any]]:
    best: tuple[tuple[int, int, int], OperationModel, dict[str, Any]] | None = None
    for operation, op_method, pattern, literals, labels in _routes(service):
        if op_method != method:
            continue
        match = pattern.match(path)
        if match is None:
            continue
        if any(key not in query or (value is not None and value not in query[key]) for key, value in literals.items()):
            continue
        params: dict[str, Any] = {name: unquote(value) for name, value in zip(labels, match.groups(), strict=True)}
        for wire, member in _bound_members(operation, "querystring").items():
            if wire in query:
                params[member] = query[wire][0]
        for wire, member in _bound_members(operation, "header").items():
            if wire in headers:
                params[member] = headers[wire]
        # Only members on the URI, query string or headers can be checked here (the body is not parsed).
        shape = operation.input_shape
        required = [
            member
            for member in (shape.required_members if shape else [])
            if shape is not None
            and shape.members[member].serialization.get("location") in ("uri", "querystring", "header")
        ]
        if any(member not in params for member in required):
            continue
        # A valueless query key (`?versioning`, `?policy`) names a sub-resource: a route must declare it.
        bound = _bound_members(operation, "querystring")
        if any(not values[0] and key not in literals and key not in bound for key, values in query.items()):
            continue
        # The most specific route wins: more literal query keys, then more required members, then a longer path.
        score = (len(literals), len(required), len(pattern.pattern))
        if best is None or score > best[0]:
            best = (score, operation, params)
    if best is None:
        raise UndecodableRequest(f"no {service} operation matches {method} {path}")
    return best[1], best[2]


def decode(
    *, method: str, path: str, query_string: str, headers: dict[str, str], body: bytes, default_region: str
) -> Call:
    """Name the operation of one HTTP request to the twin (headers with lowercase names)."""
    query = parse_qs(query_string, keep_blank_values=True)
    credential = _CREDENTIAL.search(headers.get("authorization", ""))
    if credential is None and "X-Amz-Credential" in query:  # a presigned URL
        credential = _CREDENTIAL.search("Credential=" + query["X-Amz-Credential"][0])
    form: dict[str, list[str]] = {}
    if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        form = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    if credential is None:
        action = (form.get("Action") or query.get("Action") or [""])[0]
        if action in _UNSIGNED_STS:
            return Call("sts", action, _flat(form or query), default_region, None, "query", headers)
        raise UndecodableRequest(f"unsigned request {method} {path}: no SigV4 credential scope names its service")
    access_key, region, signing_name = credential.groups()
    name = _INVOCATION.match(path) if signing_name == "sagemaker" else None
    if name is not None:
        operation = "InvokeEndpointAsync" if name.group(2) else "InvokeEndpoint"
        return Call(
            "sagemaker-runtime", operation, {"EndpointName": unquote(name.group(1))}, region, access_key, "rest-json"
        )
    service = _SERVICE_FOR_SIGNING_NAME.get(signing_name, signing_name)
    try:
        model = service_model(service)
    except UnknownServiceError as exc:
        raise UndecodableRequest(f"signing name {signing_name!r} is no botocore service") from exc
    protocol = model.protocol
    target = headers.get("x-amz-target", "")
    if target:
        params = json.loads(body or b"{}") if body else {}
        return Call(service, target.rsplit(".", 1)[-1], params, region, access_key, protocol, headers)
    if protocol in ("query", "ec2") or "Action" in form or "Action" in query:
        source = form or query
        action = (source.get("Action") or [""])[0]
        if not action:
            raise UndecodableRequest(f"{service} request without an Action parameter")
        return Call(service, action, _flat(source), region, access_key, protocol, headers)
    route, params = _route(service, method, unquote(path) if service != "s3" else path, query, headers)
    if protocol == "rest-json" and body:
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            params = {**payload, **params}
    if service == "s3" and "Key" in params:
        params["Key"] = unquote(params["Key"])
    if service == "s3" and route.name == "DeleteObjects":
        params["Delete"] = {
            "Objects": [{"Key": key} for key in re.findall(r"<Key>([^<]*)</Key>", body.decode("utf-8", "replace"))]
        }
    return Call(service, route.name, params, region, access_key, protocol, headers)


def _flat(form: dict[str, list[str]]) -> dict[str, Any]:
    """Query parameters as members: top-level scalars, and `X.member.N.Key` lists of Key/Value pairs."""
    params: dict[str, Any] = {}
    nested: dict[str, dict[str, dict[str, str]]] = {}
    for key, values in form.items():
        parts = key.split(".")
        if len(parts) == 1:
            params[key] = values[0]
        elif len(parts) >= 3:
            nested.setdefault(parts[0], {}).setdefault(parts[-2], {})[parts[-1]] = values[0]
        else:
            params.setdefault(parts[0], {})
            if isinstance(params[parts[0]], dict):
                params[parts[0]][parts[1]] = values[0]
    for name, items in nested.items():
        params[name] = [items[index] for index in sorted(items, key=lambda i: int(i) if i.isdigit() else 0)]
    return params
