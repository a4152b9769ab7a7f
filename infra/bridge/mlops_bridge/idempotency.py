"""Run an action at most once per key, on Powertools idempotency with DynamoDB (partition key `id`).

- The key prefix is fixed. Without it Powertools prefixes keys with `AWS_LAMBDA_FUNCTION_NAME` (or
  "test-func" outside Lambda) and the module path, so `mlops bridge replay` on a laptop, or a renamed
  function, would compute other keys and start a second run.
- If the action raises, Powertools deletes the in-progress record, so Lambda's retry can try again.
- One persistence layer per `RunOnce`: a layer keeps the first configuration it was given.
- Register the invocation's context (its remaining time bounds the in-progress record); otherwise a crash
  mid-call leaves a record that blocks retries for the whole expiry.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)

from .errors import AlreadyInProgressError, BridgeError

DEPLOY_RUN_PREFIX = "mlops-bridge.deploy-run"
REMINDER_PREFIX = "mlops-bridge.pending-reminder"
RETRAIN_RUN_PREFIX = "mlops-bridge.retrain-run"


class RunOnce:
    def __init__(self, *, table: str, key_prefix: str, expires_after_seconds: int, dynamodb: Any) -> None:
        self.table = table
        self._config = IdempotencyConfig(raise_on_no_idempotency_key=True, expires_after_seconds=expires_after_seconds)
        self.dynamodb = dynamodb
        store = DynamoDBPersistenceLayer(table_name=table, key_attr="id", boto3_client=dynamodb)

        @idempotent_function(  # type: ignore[untyped-decorator]
            data_keyword_argument="key", persistence_store=store, config=self._config, key_prefix=key_prefix
        )
        def once(*, key: dict[str, str], action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
            return action()

        self._once = once

    def run(
        self, key: dict[str, str], action: Callable[[], dict[str, Any]], context: Any = None
    ) -> tuple[dict[str, Any], bool]:
        """The action's result and whether it ran now (False: an earlier run's stored result)."""
        ran = False

        def tracked() -> dict[str, Any]:
            nonlocal ran
            ran = True
            return action()

        if context is not None:
            self._config.register_lambda_context(context)
        try:
            return self._once(key=key, action=tracked), ran
        except IdempotencyAlreadyInProgressError as exc:
            raise AlreadyInProgressError(
                f"another delivery of {key} is being handled right now (idempotency table {self.table})",
                hint="nothing to do: Lambda retries this event and then finds the finished result",
            ) from exc
        except IdempotencyPersistenceLayerError as exc:
            raise BridgeError(
                f"the idempotency table {self.table} could not be used for {key}: {exc}",
                hint="check IDEMPOTENCY_TABLE (partition key 'id') and the role's dynamodb:PutItem/GetItem/"
                "UpdateItem/DeleteItem; Lambda retries the event",
            ) from exc
