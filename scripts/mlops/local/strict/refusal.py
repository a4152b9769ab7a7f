"""Answer a refused request the way the service would, in its own protocol's error shape.

The error code a constraint violation gets is what the service's model declares for it, where it
declares one (CloudWatch: `ValidationException`, query code `ValidationError`; SNS:
`ValidationException`; SageMaker Runtime: `ValidationError`); otherwise what AWS's request
validation answers for that protocol family: `ValidationException` for JSON and REST-JSON services
(SageMaker, EventBridge, Lambda, ...), `ValidationError` for query services (STS, IAM,
CloudFormation) and `InvalidArgument` for S3.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from botocore.model import ServiceModel


@dataclass(frozen=True)
class Refusal:
    """An HTTP answer: status, body, content type and extra headers."""

    status: int
    body: bytes
    content_type: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    code: str = ""
    message: str = ""


# Wire codes by what went wrong and the protocol family, where the model declares nothing.
_DEFAULT_CODES = {
    "validation": {"json": "ValidationException", "rest-json": "ValidationException", "query": "ValidationError"},
    "serialization": {"json": "SerializationException", "rest-json": "SerializationException"},
    "malformed": {"json": "SerializationException", "rest-json": "SerializationException", "query": "MalformedInput"},
    "unknown-operation": {"json": "UnknownOperationException", "query": "InvalidAction"},
    "unsigned": {"json": "MissingAuthenticationTokenException", "query": "MissingAuthenticationToken"},
}
_S3_CODES = {
    "validation": "InvalidArgument",
    "serialization": "InvalidArgument",
    "malformed": "MalformedXML",
    "unknown-operation": "MethodNotAllowed",
    "unsigned": "AccessDenied",
}
_STATUS = {"unsigned": 403, "unknown-operation": 400}


def validation_codes(service: ServiceModel | None, protocol: str) -> tuple[str, str | None]:
    """(wire code, query-compatible code) for a constraint violation in this service."""
    if service is not None:
        for name in ("ValidationException", "ValidationError"):
            if name in service.shape_names:
                shape = service.shape_for(name)
                if shape.metadata.get("exception"):
                    return name, shape.metadata.get("error", {}).get("code")
    return _code("validation", service, protocol), None


def refuse(kind: str, message: str, service: ServiceModel | None, protocol: str | None = None) -> Refusal:
    """The answer to a refused request; `kind`: validation, serialization, malformed, unknown-operation, unsigned."""
    protocol = protocol or (str(service.protocol) if service is not None else "json")
    if kind == "validation":
        code, query_code = validation_codes(service, protocol)
    else:
        code, query_code = _code(kind, service, protocol), None
    status = _STATUS.get(kind, 400)
    if (service is not None and service.service_name == "s3") or protocol == "rest-xml":
        return _rest_xml(status, code, message)
    if protocol == "query":
        return _query(status, code, message, service)
    if protocol == "rest-json":
        body = json.dumps({"Type": "User", "message": message}).encode()
        return Refusal(status, body, "application/json", [("x-amzn-ErrorType", code)], code, message)
    headers = [("x-amzn-ErrorType", code)]
    if service is not None and "awsQueryCompatible" in service.metadata:
        # botocore reads the query-mode code of a query-compatible JSON service from this header.
        headers.append(("x-amzn-query-error", f"{query_code or code};Sender"))
    version = service.metadata.get("jsonVersion", "1.1") if service is not None else "1.1"
    body = json.dumps({"__type": code, "message": message}).encode()
    return Refusal(status, body, f"application/x-amz-json-{version}", headers, code, message)


def _code(kind: str, service: ServiceModel | None, protocol: str) -> str:
    if (service is not None and service.service_name == "s3") or protocol == "rest-xml":
        return _S3_CODES[kind]
    family = _DEFAULT_CODES[kind]
    return family.get(protocol) or family.get("json") or "ValidationException"


def _query(status: int, code: str, message: str, service: ServiceModel | None) -> Refusal:
    namespace = service.metadata.get("xmlNamespace", "") if service is not None else ""
    xmlns = f' xmlns="{escape(namespace)}"' if namespace else ""
    body = (
        f"<ErrorResponse{xmlns}><Error><Type>Sender</Type><Code>{escape(code)}</Code>"
        f"<Message>{escape(message)}</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
    ).encode()
    return Refusal(status, body, "text/xml", [], code, message)


def _rest_xml(status: int, code: str, message: str) -> Refusal:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId></Error>"
    ).encode()
    return Refusal(status, body, "application/xml", [], code, message)
