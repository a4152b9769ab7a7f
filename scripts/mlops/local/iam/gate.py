"""The shim's IAM hook: one call per request, before moto or the shim acts, so a refusal creates nothing."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from mlops.local.iam.engine import Authorizer, Verdict, mode_from_environment
from mlops.local.iam.operations import UndecodableRequest, decode
from mlops.local.iam.report import build_report
from mlops.local.iam.responses import access_denied, engine_failure, expired_token
from mlops.local.iam.sidecar import IamEngineError, Sidecar
from mlops.local.iam.state import MotoState, Principal, all_roles, principal_for, role_policies, web_identity_principal

log = logging.getLogger("mlops.local.iam")
Response = tuple[int, bytes, str, list[tuple[str, str]]]
_INTERNAL_PATHS = ("/_twin/", "/moto-api/")


class IamGate:
    """Starts the engine with the twin (unless off) and answers a denied request as AWS would."""

    def __init__(self, mode: str | None = None, *, clock: Callable[[], datetime] | None = None) -> None:
        """`clock`: the time role sessions expire against (tests move it; AWS's is the wall clock)."""
        self.mode = mode or mode_from_environment()
        self.sidecar: Sidecar | None = None
        self.authorizer: Authorizer | None = None
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))

    def start(self) -> IamGate:
        if self.mode == "off" or self.sidecar is not None:
            return self
        self.sidecar = Sidecar.start()
        state = MotoState()
        self.authorizer = Authorizer(
            engine=self.sidecar.call, lookups=state, resource_policy=state.resource_policy, mode=self.mode
        )
        return self

    def stop(self) -> None:
        if self.sidecar is not None:
            self.sidecar.stop()
            self.sidecar = None

    def describe(self) -> dict[str, Any]:
        versions = self.sidecar.versions if self.sidecar else {}
        return {"mode": self.mode, "engine": versions.get("engine"), "data": versions.get("data")}

    def ledger(self) -> dict[str, Any]:
        if self.authorizer is None:
            return {"mode": self.mode, "calls": 0, "records": []}
        return {"mode": self.mode, **self.describe(), **self.authorizer.ledger.to_json()}

    def report(self) -> dict[str, Any]:
        """The iam-report: decisions, denials and, per role, the granted actions no call used."""
        sidecar = self.sidecar
        roles = [(str(role.arn), role_policies(role)) for role in all_roles()]
        if sidecar is None:
            return build_report(self.ledger(), roles, lambda patterns: {})

        def expand(patterns: list[str]) -> dict[str, list[str]]:
            return dict(sidecar.call("/expand", {"patterns": patterns})["expanded"])

        return build_report(self.ledger(), roles, expand)

    def check(self, environ: dict[str, Any], body: bytes, account: str, region: str) -> Response | None:
        """None to let the request through; AWS's refusal otherwise."""
        if self.authorizer is None or str(environ.get("PATH_INFO", "")).startswith(_INTERNAL_PATHS):
            return None
        headers = {k[5:].replace("_", "-").lower(): str(v) for k, v in environ.items() if k.startswith("HTTP_")}
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = str(environ["CONTENT_TYPE"])
        try:
            call = decode(
                method=str(environ.get("REQUEST_METHOD", "GET")),
                path=str(environ.get("PATH_INFO", "/")),
                query_string=str(environ.get("QUERY_STRING", "")),
                headers=headers,
                body=body,
                default_region=region,
            )
        except UndecodableRequest as exc:
            log.warning("IAM: refusing a request the twin cannot name: %s", exc)
            return engine_failure("query", f"the twin's IAM engine cannot name this request's operation: {exc}")
        try:
            if call.access_key is None:
                principal: Principal = web_identity_principal(
                    str(call.params.get("RoleArn", "")), str(call.params.get("WebIdentityToken", ""))
                )
            else:
                principal = principal_for(call.access_key, account)
                # AWS refuses an expired session's signature before it authorises anything.
                if principal.expires_at is not None and self.clock() >= principal.expires_at:
                    log.warning("IAM: %s.%s with the expired session %s", call.service, call.operation, principal.arn)
                    return expired_token(call.protocol)
            refused: Verdict | None = self.authorizer.check(call, principal)
        except IamEngineError as exc:
            log.error("IAM engine failure on %s.%s: %s", call.service, call.operation, exc)
            return engine_failure(call.protocol, str(exc))
        if refused is None:
            return None
        return access_denied(call.protocol, refused.message)
