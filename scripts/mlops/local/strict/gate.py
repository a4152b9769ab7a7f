"""The shim's request gate: decode each AWS request, validate it, refuse it as AWS would.

On by default. `MLOPS_TWIN_STRICT_REQUESTS=0` (or `mlops local up --lenient-requests`) turns it
off, for the strict-vs-lenient bench only: a lenient twin accepts what AWS refuses, so a green run
on it proves less. A refused request never reaches moto or the shim, so it creates nothing.
"""

from __future__ import annotations

import io
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mlops.local.errors import TwinError
from mlops.local.strict.decode import Decoded, Undecodable, decode
from mlops.local.strict.patterns import PatternError
from mlops.local.strict.refusal import Refusal, refuse
from mlops.local.strict.requests import PatternTimeout, message, validate

log = logging.getLogger(__name__)

STRICT_REQUESTS_ENV = "MLOPS_TWIN_STRICT_REQUESTS"
_ON = ("1", "true", "yes", "on")
_OFF = ("0", "false", "no", "off")
# Paths that are the twin's or moto's own management API, not AWS requests.
_NOT_AWS = ("/_twin/", "/moto-api/")


def strict_requests_from(environ: Mapping[str, str]) -> bool:
    """Whether request validation is on, from MLOPS_TWIN_STRICT_REQUESTS (default: on)."""
    raw = environ.get(STRICT_REQUESTS_ENV, "").strip().lower()
    if raw in ("", *_ON):
        return True
    if raw in _OFF:
        return False
    raise TwinError(
        f"{STRICT_REQUESTS_ENV}={environ.get(STRICT_REQUESTS_ENV)!r} is neither on nor off",
        hint=f"set {STRICT_REQUESTS_ENV} to 1 (validate every AWS request, the default) or 0 (bench only)",
    )


@dataclass
class GateStats:
    """What the gate saw: requests checked and refused, per operation, and the time it took."""

    checked: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked": sum(self.checked.values()),
            "refused": sum(self.refused.values()),
            "seconds": round(self.seconds, 3),
            "checked_by_operation": dict(sorted(self.checked.items())),
            "refused_by_operation": dict(sorted(self.refused.items())),
        }


class RequestGate:
    """Checks every AWS request against botocore's model before moto or the shim sees it."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = strict_requests_from(os.environ) if enabled is None else enabled
        self.stats = GateStats()
        self._lock = threading.Lock()

    @property
    def mode(self) -> str:
        return "strict" if self.enabled else "lenient"

    def check(self, environ: dict[str, Any]) -> Refusal | None:
        """None to let the request through; else the answer AWS would give (nothing is created)."""
        path = str(environ.get("PATH_INFO", ""))
        if not self.enabled or path.startswith(_NOT_AWS):
            return None
        started = time.perf_counter()
        body = buffer_body(environ)
        try:
            decoded = decode(environ, body)
        except Undecodable as exc:
            undecodable = refuse(
                exc.kind, f"{exc.message} (the twin validates every request against botocore's model)", exc.service
            )
            self._record(f"{environ.get('REQUEST_METHOD')} {path}", undecodable, started)
            return undecodable
        refusal = self._validate(decoded)
        self._record(f"{decoded.service.service_name}:{decoded.operation.name}", refusal, started)
        return refusal

    def _validate(self, decoded: Decoded) -> Refusal | None:
        try:
            violations = validate(decoded.operation.input_shape, decoded.params)
        except (PatternError, PatternTimeout) as exc:
            reason = f"the twin cannot check this request: {exc.message}"
            return refuse("malformed", reason, decoded.service, decoded.protocol)
        if not violations:
            return None
        kind = "serialization" if any(v.kind == "type" for v in violations) else "validation"
        return refuse(kind, message(violations), decoded.service, decoded.protocol)

    def _record(self, operation: str, refusal: Refusal | None, started: float) -> None:
        with self._lock:
            self.stats.checked[operation] += 1
            self.stats.seconds += time.perf_counter() - started
            if refusal is not None:
                self.stats.refused[operation] += 1
        if refusal is not None:
            log.warning("refused %s: %s: %s", operation, refusal.code, refusal.message)


def buffer_body(environ: dict[str, Any]) -> bytes:
    """Read the request body once and put it back, so the next reader (moto, the shim) sees it whole."""
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length = environ.get("CONTENT_LENGTH")
    if length:
        body = stream.read(int(length))
    elif environ.get("wsgi.input_terminated"):  # chunked: the server ends the stream
        body = stream.read()
    else:
        body = b""
    environ["wsgi.input"] = io.BytesIO(body)
    return bytes(body)
