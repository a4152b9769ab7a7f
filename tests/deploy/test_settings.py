"""The deploy: section of mlops.yaml: defaults, references to accounts, and load-time errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from mlops.core.config import config_from_mapping
from mlops.core.errors import ConfigError
from model_deploy.deploy import stage_role_arn, stage_target


@pytest.fixture
def raw(repo_root: Path) -> dict[str, Any]:
    return dict(yaml.safe_load((repo_root / "mlops.yaml").read_text()))


def test_stages_reference_their_accounts_and_roles(raw: dict[str, Any]) -> None:
    config = config_from_mapping(raw)
    assert stage_role_arn(config, "prod") == "arn:aws:iam::333333333333:role/mlops-deploy"
    assert stage_target(config, "staging").bucket(config.deploy.staging.bucket) == "mlops-deploy-222222222222-eu-west-1"
    local = config_from_mapping(raw, profile="local")
    assert stage_role_arn(local, "staging") == "arn:aws:iam::000000000002:role/mlops-deploy"
    # The twin runs Model Monitor (mlops/local/monitoring.py): prod is monitored there as in the cloud.
    assert local.deploy.prod.monitor.enabled is True and config.deploy.prod.monitor.enabled is True
    drift = config.deploy.prod.monitor.drift_alarm
    assert drift is not None and len(drift.features) == 9 and drift.threshold == 0.1


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda d: d["prod"]["rollback_alarms"][0].update(threshold=-1),
            r"deploy\.prod\.rollback_alarms\.0\.threshold: found -1; expected a number >= 0",
        ),
        (lambda d: d["prod"]["inference"].update(type="edge"), "expected one of realtime, serverless, async, batch"),
        (
            lambda d: d["staging"]["inference"].update(type="serverless"),
            "serverless endpoints cannot capture data",
        ),
        (lambda d: d["prod"].update(account="staging"), "deploy.staging must target the staging account"),
        (lambda d: d["prod"]["autoscaling"].update(min_instances=3), "instance_count 2 is outside autoscaling"),
        (lambda d: d["prod"]["blue_green"].update(max_execution_seconds=600, bake_seconds=600), "leaves no time"),
        (lambda d: d["prod"]["data_capture"].update(percentage=0), "monitor.enabled needs captured requests"),
    ],
)
def test_bad_deploy_settings_fail_at_load(raw: dict[str, Any], edit: Any, message: str) -> None:
    edit(raw["deploy"])
    with pytest.raises(ConfigError, match=message):
        config_from_mapping(raw)
