"""Invoke the bridge Lambda's handler the way Lambda does: a fresh process per (cold) invocation.

    python -m mlops.local.lambda_invoke < event.json

The handler's configuration comes from the environment (as in Lambda); the result is printed as JSON,
and an exception exits non-zero with its message, so the caller keeps the event (as Lambda's retries
and the DLQ would). A fresh process also means no module state (secret cache, idempotency layer,
clients) leaks from one twin to the next.
"""

from __future__ import annotations

import json
import sys
import time
import uuid


class LambdaContext:
    """What powertools needs of a Lambda context: a deadline and a request id."""

    def __init__(self, budget_seconds: float = 60.0) -> None:
        self._deadline = time.monotonic() + budget_seconds
        self.aws_request_id = str(uuid.uuid4())
        self.function_name = "mlops-bridge"
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 256
        self.invoked_function_arn = "arn:aws:lambda:us-east-1:000000000001:function:mlops-bridge"

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def main() -> int:
    from mlops_bridge.handler import handler

    event = json.load(sys.stdin)
    try:
        result = handler(event, LambdaContext())
    except Exception as exc:  # reported like a failed Lambda invocation
        print(json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc)}), file=sys.stderr)
        return 1
    print(json.dumps(result, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
