from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mlops.core.config import config_from_mapping, find_config_file, load_config
from mlops.core.errors import ConfigError


@pytest.fixture
def raw(repo_root: Path) -> dict:
    return yaml.safe_load((repo_root / "mlops.yaml").read_text())


def test_shipped_config_loads_for_default_and_local_profiles(repo_root: Path) -> None:
    default = load_config(repo_root / "mlops.yaml", environ={})
    local = load_config(repo_root / "mlops.yaml", profile="local", environ={})
    assert default.profile == "default" and not default.is_local
    assert default.accounts.automation.id == "111111111111"
    assert local.is_local
    assert [local.accounts.automation.id, local.accounts.staging.id, local.accounts.prod.id] == [
        "000000000001",
        "000000000002",
        "000000000003",
    ]
    # The profile overrides key by key: untouched keys keep the top-level value.
    assert local.build.model_package_group == default.build.model_package_group
    # KMS stays on in the twin: its artifact key is the template's (no quiet local relaxation).
    assert local.build.kms_key_id == default.build.kms_key_id == "alias/mlops-artifacts"
    assert local.execution_role_arn() == "arn:aws:iam::000000000001:role/mlops-sagemaker-pipeline"


def test_profile_can_come_from_the_environment(raw: dict) -> None:
    assert config_from_mapping(raw, environ={"MLOPS_PROFILE": "local"}).region == "us-east-1"


def test_environment_overrides_file_and_profile(raw: dict) -> None:
    config = config_from_mapping(
        raw,
        profile="local",
        environ={"MLOPS__BUILD__QUALITY__THRESHOLD": "0.8", "MLOPS__REGION": "eu-central-1"},
    )
    assert config.build.quality.threshold == 0.8
    assert config.region == "eu-central-1"


def test_bad_value_names_key_value_expectation_and_fix(raw: dict) -> None:
    raw["build"]["quality"]["threshold"] = 1.5
    with pytest.raises(ConfigError) as caught:
        config_from_mapping(raw, source="mlops.yaml")
    message = str(caught.value)
    assert "build.quality.threshold" in message
    assert "1.5" in message
    assert "between 0 and 1" in message
    assert "Fix: set build.quality.threshold in mlops.yaml" in message


def test_bad_env_value_points_at_the_variable(raw: dict) -> None:
    with pytest.raises(ConfigError, match="MLOPS__BUILD__INSTANCES__TRAINING__COUNT"):
        config_from_mapping(raw, environ={"MLOPS__BUILD__INSTANCES__TRAINING__COUNT": "zero"})


def test_account_id_must_be_twelve_digits(raw: dict) -> None:
    raw["accounts"]["prod"]["id"] = 333
    with pytest.raises(ConfigError, match=r"accounts\.prod\.id: found 333; expected a 12-digit AWS account id"):
        config_from_mapping(raw)


def test_accounts_must_differ(raw: dict) -> None:
    raw["accounts"]["prod"]["id"] = raw["accounts"]["staging"]["id"]
    with pytest.raises(ConfigError, match="three different accounts"):
        config_from_mapping(raw)


def test_unknown_key_is_a_typo_not_ignored(raw: dict) -> None:
    raw["build"]["quality"]["treshold"] = 0.9
    with pytest.raises(ConfigError, match="build.quality.treshold: found an unknown key 'treshold'"):
        config_from_mapping(raw)


def test_missing_key_is_reported(raw: dict) -> None:
    del raw["build"]["model_package_group"]
    with pytest.raises(ConfigError, match="build.model_package_group: found nothing"):
        config_from_mapping(raw)


def test_every_error_is_listed(raw: dict) -> None:
    raw["region"] = "Europe"
    raw["build"]["instances"]["training"]["type"] = "m5.large"
    with pytest.raises(ConfigError) as caught:
        config_from_mapping(raw)
    assert "region" in str(caught.value) and "build.instances.training.type" in str(caught.value)


def test_unknown_quality_metric(raw: dict) -> None:
    raw["build"]["quality"]["metric"] = "rmse"
    with pytest.raises(ConfigError, match="one of auc, f1, precision, recall, accuracy"):
        config_from_mapping(raw)


def test_unknown_profile(raw: dict) -> None:
    with pytest.raises(ConfigError, match="profile 'cloud' is not defined"):
        config_from_mapping(raw, profile="cloud")


def test_invalid_yaml_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "mlops.yaml"
    bad.write_text("project: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad, environ={})


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    bad = tmp_path / "mlops.yaml"
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping at the top level, found list"):
        load_config(bad, environ={})


def test_config_is_found_upwards_and_missing_is_explained(tmp_path: Path, repo_root: Path, clean_env: None) -> None:
    nested = tmp_path / "a" / "b"
    nested.mkdir(parents=True)
    (tmp_path / "mlops.yaml").write_text((repo_root / "mlops.yaml").read_text())
    assert find_config_file(start=nested) == tmp_path / "mlops.yaml"
    with pytest.raises(ConfigError, match="no mlops.yaml found"):
        find_config_file(start=Path("/"))
    with pytest.raises(ConfigError, match="does not exist"):
        find_config_file(tmp_path / "nope.yaml")
