"""Pure parts: settings from the environment, Retry-After, event classification, secret parsing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from mlops_bridge.credentials import PatAuth, ServicePrincipalAuth, parse_auth_secret
from mlops_bridge.errors import ConfigurationError, MalformedEventError
from mlops_bridge.events import decide, parse_event
from mlops_bridge.settings import BridgeSettings
from mlops_bridge.throttling import retry_after_seconds

BASE = {
    "ADO_ORG_URL": "https://dev.azure.com/contoso/",
    "ADO_PROJECT": "mlops",
    "ADO_PIPELINE_ID": "2",
    "ADO_AUTH_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:1:secret:x",
    "IDEMPOTENCY_TABLE": "t",
    "MODEL_PACKAGE_GROUPS": " a, b ,,",
}


def test_settings_defaults() -> None:
    settings = BridgeSettings.from_env(BASE)
    assert settings.org_url == "https://dev.azure.com/contoso"
    assert settings.branch == "refs/heads/main" and settings.trigger == "runs_api"
    assert settings.model_package_groups == frozenset({"a", "b"})
    assert settings.idempotency_expiry_seconds == 30 * 86400 and settings.throttle_max_wait_seconds == 60


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"ADO_ORG_URL": ""}, "ADO_ORG_URL is not set"),
        ({"ADO_ORG_URL": "dev.azure.com/contoso"}, "expected an http(s) URL"),
        ({"ADO_PIPELINE_ID": "deploy"}, "ADO_PIPELINE_ID is 'deploy': expected a positive integer"),
        ({"ADO_PIPELINE_ID": "0"}, "ADO_PIPELINE_ID is 0"),
        ({"ADO_BRANCH": "main"}, "set ADO_BRANCH=refs/heads/main"),
        ({"MODEL_PACKAGE_GROUPS": " , "}, "expected comma-separated group names"),
        ({"ADO_TRIGGER": "email"}, "expected one of runs_api, webhook"),
        ({"ADO_TRIGGER": "webhook"}, "ADO_WEBHOOK_NAME is not set"),
        ({"ADO_HTTP_TIMEOUT_SECONDS": "-1"}, "expected a number above zero"),
    ],
)
def test_settings_errors_name_the_variable_and_what_was_expected(change: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError) as raised:
        BridgeSettings.from_env({**BASE, **change})
    assert message in str(raised.value) and "fix:" in str(raised.value)


def test_webhook_mode_needs_no_project_or_pipeline() -> None:
    env = {k: v for k, v in BASE.items() if k not in ("ADO_PROJECT", "ADO_PIPELINE_ID")}
    settings = BridgeSettings.from_env({**env, "ADO_TRIGGER": "webhook", "ADO_WEBHOOK_NAME": "h"})
    assert settings.pipeline_id is None and settings.webhook_signature_header == "X-MLOps-Signature"


NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "attempt", "seconds"),
    [
        ("5", 1, 5.0),
        ("0", 1, 0.0),
        (None, 1, 1.0),
        (None, 3, 4.0),
        (None, 10, 30.0),
        ("soon", 2, 2.0),
        ("Thu, 01 Jan 2026 12:00:20 GMT", 1, 20.0),
        ("Thu, 01 Jan 2026 11:00:00 GMT", 1, 0.0),
    ],
)
def test_retry_after(header: str | None, attempt: int, seconds: float) -> None:
    assert retry_after_seconds(header, attempt, NOW) == seconds


def _event(**detail: object) -> dict[str, object]:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/my-group/3"
    base = {
        "ModelPackageGroupName": "My-Group",
        "ModelPackageVersion": 3,
        "ModelPackageArn": arn,
        "ModelApprovalStatus": "Approved",
    }
    return {
        "id": "e",
        "source": "aws.sagemaker",
        "detail-type": "SageMaker Model Package State Change",
        "resources": [arn],
        "detail": {**base, **detail},
    }


def test_the_group_in_the_arn_is_compared_without_case() -> None:
    change = parse_event(_event())
    assert change.group == "My-Group" and change.version == 3
    assert decide(change, frozenset({"My-Group"})).start_run
    assert not decide(change, frozenset({"my-group"})).start_run  # group names themselves are exact


def test_an_arn_that_disagrees_with_the_detail_is_malformed() -> None:
    with pytest.raises(MalformedEventError, match="does not match group"):
        parse_event(_event(ModelPackageVersion=4))
    with pytest.raises(MalformedEventError, match="expected 'resources' to list"):
        parse_event({**_event(), "resources": ["arn:aws:sagemaker:us-east-1:123456789012:model-package/x/1"]})


def test_secret_values_stay_out_of_reprs() -> None:
    assert "tok" not in repr(parse_auth_secret('{"type": "pat", "token": "tok"}', "arn"))
    assert isinstance(parse_auth_secret('{"type": "pat", "token": "tok"}', "arn"), PatAuth)
    sp = parse_auth_secret(
        '{"type": "service_principal", "tenant_id": "t", "client_id": "c", "client_secret": "zz"}', "arn"
    )
    assert isinstance(sp, ServicePrincipalAuth) and "zz" not in repr(sp)
