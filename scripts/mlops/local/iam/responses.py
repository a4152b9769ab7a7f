"""A denied call answered as AWS answers it, in the protocol of the service.

JSON protocols: `AccessDeniedException` in `__type` (HTTP 400, as SageMaker, KMS, SQS, DynamoDB
answer it); query protocols (STS, IAM, SNS, CloudFormation, CloudWatch): an `ErrorResponse` with
code `AccessDenied`, HTTP 403; S3 (rest-xml): `<Error><Code>AccessDenied</Code>`, HTTP 403;
rest-json (Lambda, runtime): `AccessDeniedException` in `x-amzn-ErrorType`, HTTP 403.
"""

from __future__ import annotations

import json
import uuid
from xml.sax.saxutils import escape


def access_denied(protocol: str, message: str) -> tuple[int, bytes, str, list[tuple[str, str]]]:
    request_id = str(uuid.uuid4())
    headers = [("x-amzn-RequestId", request_id)]
    if protocol == "json":
        body = json.dumps({"__type": "AccessDeniedException", "message": message}).encode()
        return 400, body, "application/x-amz-json-1.1", headers
    if protocol == "rest-json":
        body = json.dumps({"Type": "User", "message": message, "Message": message}).encode()
        return 403, body, "application/json", [*headers, ("x-amzn-ErrorType", "AccessDeniedException")]
    if protocol == "rest-xml":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>AccessDenied</Code><Message>{escape(message)}</Message>"
            f"<RequestId>{request_id}</RequestId></Error>"
        ).encode()
        return 403, body, "application/xml", headers
    body = (
        "<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>"
        f"<Message>{escape(message)}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()
    return 403, body, "text/xml", headers


def engine_failure(protocol: str, message: str) -> tuple[int, bytes, str, list[tuple[str, str]]]:
    """The engine could not decide: a server error that names why, never an allow."""
    if protocol in ("json", "rest-json"):
        body = json.dumps({"__type": "InternalFailure", "message": message}).encode()
        return 500, body, "application/x-amz-json-1.1", [("x-amzn-ErrorType", "InternalFailure")]
    body = (
        "<ErrorResponse><Error><Type>Receiver</Type><Code>InternalFailure</Code>"
        f"<Message>{escape(message)}</Message></Error></ErrorResponse>"
    ).encode()
    return 500, body, "text/xml", []


def expired_token(protocol: str) -> tuple[int, bytes, str, list[tuple[str, str]]]:
    """A request signed with an expired role session, refused before authorisation, as AWS does."""
    message = "The security token included in the request is expired"
    request_id = str(uuid.uuid4())
    headers = [("x-amzn-RequestId", request_id)]
    if protocol == "json":
        body = json.dumps({"__type": "ExpiredTokenException", "message": message}).encode()
        return 400, body, "application/x-amz-json-1.1", headers
    if protocol == "rest-json":
        body = json.dumps({"message": message}).encode()
        return 403, body, "application/json", [*headers, ("x-amzn-ErrorType", "ExpiredTokenException")]
    if protocol == "rest-xml":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>ExpiredToken</Code><Message>{message}</Message><RequestId>{request_id}</RequestId></Error>"
        ).encode()
        return 400, body, "application/xml", headers
    body = (
        "<ErrorResponse><Error><Type>Sender</Type><Code>ExpiredToken</Code>"
        f"<Message>{message}</Message></Error><RequestId>{request_id}</RequestId></ErrorResponse>"
    ).encode()
    return 403, body, "text/xml", headers
