"""Deployment records: what was deployed where and when, and what `rollback` goes back to. Pure.

Records are kept as the versions of one SSM parameter per endpoint in the stage's own account
(see `record_store.py` for why SSM). Each version is one JSON record. The history is replayed as a
stack: a deployment pushes, a rollback pops, so the top is what should be live and the entry below it
is where the next rollback goes. Rolling back twice therefore goes back two deployments, not back and
forth between the last two.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

from mlops.core.errors import DeployError, RollbackUnavailable

RecordKind = Literal["deploy", "rollback"]
RECORD_SCHEMA = 1


@dataclass(frozen=True)
class DeploymentRecord:
    kind: RecordKind
    stage: str
    endpoint_name: str
    inference_type: str
    endpoint_config: str | None  # None for batch transform: there is no endpoint
    model_name: str
    package_arn: str
    package_version: int
    git_commit: str
    build_id: str
    deployed_at: str
    previous_endpoint_config: str | None = None

    def to_json(self) -> str:
        return json.dumps({"schema": RECORD_SCHEMA, **asdict(self)}, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, *, where: str) -> DeploymentRecord:
        try:
            document: dict[str, Any] = json.loads(text)
            if document.pop("schema", None) != RECORD_SCHEMA:
                raise ValueError(f"schema {RECORD_SCHEMA} expected")
            return cls(**document)
        except (ValueError, TypeError) as exc:
            raise DeployError(
                f"deployment record {where} is not a record this version understands: {exc}",
                hint="inspect it with `aws ssm get-parameter-history`; records are written only by `mlops deploy`",
            ) from exc

    def same_target(self, other: DeploymentRecord) -> bool:
        return (self.endpoint_config, self.model_name) == (other.endpoint_config, other.model_name)


def deployment_stack(history: Sequence[DeploymentRecord]) -> list[DeploymentRecord]:
    """Replay the records oldest first: deployments push, rollbacks pop."""
    stack: list[DeploymentRecord] = []
    for record in history:
        if record.kind == "deploy":
            if not (stack and stack[-1].same_target(record)):
                stack.append(record)
        elif stack:
            stack.pop()
    return stack


def rollback_target(
    history: Sequence[DeploymentRecord], *, endpoint_name: str
) -> tuple[DeploymentRecord, DeploymentRecord]:
    """(current, target): the live record and the one before it. Raises if there is nothing to go back to."""
    stack = deployment_stack(history)
    if len(stack) < 2:
        found = "no deployment record" if not stack else f"only one deployment ({stack[0].package_arn})"
        raise RollbackUnavailable(
            f"cannot roll back {endpoint_name}: expected at least two deployments in its history, found {found}",
            hint="deploy an earlier approved package with `mlops deploy --model-package-arn ARN` instead",
        )
    return stack[-1], stack[-2]
