"""Lambda entry point of the bridge: `mlops_bridge.handler.handler` (see settings.py for the environment).

The bridge is built once per warm container from the environment. Any failure raises, so Lambda's
retries and then the dead-letter queue keep the event; `mlops bridge replay` calls this same function.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import boto3

from .ado_runs import CredentialFactory, RunsApiStarter, default_credential_factory
from .ado_webhook import WebhookStarter
from .bridge import Bridge, RunStarter
from .credentials import AuthSecretStore
from .idempotency import DEPLOY_RUN_PREFIX, RETRAIN_RUN_PREFIX, RunOnce
from .retrain import BuildRunStarter, RetrainRoute
from .settings import BridgeSettings

_bridge: Bridge | None = None


def build_bridge(
    environ: Mapping[str, str] | None = None,
    *,
    session: boto3.Session | None = None,
    sleep: Callable[[float], None] = time.sleep,
    credential_factory: CredentialFactory = default_credential_factory,
) -> Bridge:
    settings = BridgeSettings.from_env(os.environ if environ is None else environ)
    session = session or boto3.Session()
    secrets = AuthSecretStore(
        session.client("secretsmanager"), settings.auth_secret_arn, ttl_seconds=settings.secret_cache_seconds
    )
    starter: RunStarter
    if settings.trigger == "webhook":
        starter = WebhookStarter(settings, secrets, sleep=sleep)
    else:
        starter = RunsApiStarter(settings, secrets, credential_factory=credential_factory, sleep=sleep)
    run_once = RunOnce(
        table=settings.idempotency_table,
        key_prefix=DEPLOY_RUN_PREFIX,
        expires_after_seconds=settings.idempotency_expiry_seconds,
        dynamodb=session.client("dynamodb"),
    )
    retrain = RetrainRoute(settings, starter=None, run_once=None)
    if settings.build_pipeline_id is not None and settings.trigger == "runs_api":
        retrain = RetrainRoute(
            settings,
            starter=BuildRunStarter(settings, secrets, credential_factory=credential_factory, sleep=sleep),
            run_once=RunOnce(
                table=settings.idempotency_table,
                key_prefix=RETRAIN_RUN_PREFIX,
                expires_after_seconds=settings.idempotency_expiry_seconds,
                dynamodb=session.client("dynamodb"),
            ),
        )
    return Bridge(settings, sagemaker=session.client("sagemaker"), starter=starter, run_once=run_once, retrain=retrain)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    global _bridge
    if _bridge is None:
        _bridge = build_bridge()
    return _bridge.handle(event, context)


def reset() -> None:
    """Forget the cached bridge (tests, and replay after changing the environment)."""
    global _bridge
    _bridge = None
