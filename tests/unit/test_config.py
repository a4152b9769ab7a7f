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
    raw["build"]["instances"]["training"]["count"] = 50
    with pytest.raises(ConfigError) as caught:
        config_from_mapping(raw, source="mlops.yaml")
    message = str(caught.value)
    assert "build.instances.training.count" in message
    assert "50" in message
    assert "an instance count between 1 and 20" in message
    assert "Fix: set build.instances.training.count in mlops.yaml" in message


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
    raw["build"]["instances"]["training"]["cuont"] = 2
    with pytest.raises(ConfigError, match="build.instances.training.cuont: found an unknown key 'cuont'"):
        config_from_mapping(raw)


def test_missing_key_is_reported(raw: dict) -> None:
    del raw["build"]["artifact_bucket"]
    with pytest.raises(ConfigError, match="build.artifact_bucket: found nothing"):
        config_from_mapping(raw)


def test_every_error_is_listed(raw: dict) -> None:
    raw["region"] = "Europe"
    raw["build"]["instances"]["training"]["type"] = "m5.large"
    with pytest.raises(ConfigError) as caught:
        config_from_mapping(raw)
    assert "region" in str(caught.value) and "build.instances.training.type" in str(caught.value)


def test_a_quality_metric_of_another_task_is_refused(raw: dict) -> None:
    with pytest.raises(ConfigError, match="'rmse' is not a binary metric; choose one of auc, f1, precision, recall"):
        config_from_mapping(raw, environ={"MLOPS__BUILD__QUALITY__METRIC": "rmse"})


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


# ------------------------------------------------------------------------------- strict types (issue 19, item 6)


@pytest.mark.parametrize(("text", "found"), [("0", "0"), ("0.0", "0.0"), ("-0.1", "-0.1"), ("1.5", "1.5")])
def test_an_auc_threshold_must_be_above_zero_up_to_one(raw: dict, text: str, found: str) -> None:
    with pytest.raises(ConfigError) as raised:
        config_from_mapping(raw, environ={"MLOPS__BUILD__QUALITY__THRESHOLD": text})
    message = str(raised.value)
    assert message.startswith("invalid configuration: build.quality.threshold: found " + found)
    assert "threshold is a minimum above 0 and at most 1" in message


@pytest.mark.parametrize("value", ["1", "1.0", "0.5", "0.001"])
def test_quality_threshold_accepts_numbers_in_the_half_open_interval(raw: dict, value: str) -> None:
    config = config_from_mapping(raw, environ={"MLOPS__BUILD__QUALITY__THRESHOLD": value})
    assert config.build.quality.threshold == float(value)


@pytest.mark.parametrize("text", ["true", "yes"])
def test_a_threshold_override_of_the_wrong_type_says_how_to_write_it(raw: dict, text: str) -> None:
    with pytest.raises(ConfigError) as raised:
        config_from_mapping(raw, environ={"MLOPS__BUILD__QUALITY__THRESHOLD": text})
    message = str(raised.value)
    assert "Fix: set MLOPS__BUILD__QUALITY__THRESHOLD to a value of the expected type" in message
    assert "MLOPS__BUILD__QUALITY__THRESHOLD=0.9" in message and "unquoted" in message


def test_an_account_id_override_needs_no_quoting(raw: dict) -> None:
    # YAML reads 000000000002 as the integer 2; the key is text, so the override keeps the digits as written.
    config = config_from_mapping(
        raw,
        environ={"MLOPS__ACCOUNTS__STAGING__ID": "000000000002", "MLOPS__ACCOUNTS__PROD__ID": "222233334444"},
    )
    assert config.accounts.staging.id == "000000000002" and config.accounts.prod.id == "222233334444"


def test_text_overrides_keep_null_for_optional_keys_and_numbers_stay_numbers(raw: dict) -> None:
    config = config_from_mapping(
        raw,
        environ={
            "MLOPS__BUILD__KMS_KEY_ID": "null",
            "MLOPS__BUILD__QUALITY__THRESHOLD": "0.75",
            "MLOPS__BUILD__EXECUTION_ROLE_NAME": "1234",
        },
    )
    assert config.build.kms_key_id is None and config.build.quality.threshold == 0.75
    assert config.build.execution_role_name == "1234"


def test_a_structured_override_for_a_single_value_is_refused_with_quoting_advice(raw: dict) -> None:
    with pytest.raises(ConfigError, match="expected one value") as raised:
        config_from_mapping(raw, environ={"MLOPS__BUILD__QUALITY__THRESHOLD": "[0.9]"})
    assert "quote it" in str(raised.value)


@pytest.mark.parametrize("region", ["xx-fake-1", "eu-middle-9", "us-east-9"])
def test_a_region_that_matches_the_pattern_but_does_not_exist_fails_at_load(raw: dict, region: str) -> None:
    raw["region"] = region
    with pytest.raises(ConfigError) as raised:
        config_from_mapping(raw, environ={})
    assert f"region: found '{region}'" in str(raised.value)
    assert "not a region with SageMaker" in str(raised.value)


@pytest.mark.parametrize("region", ["eu-west-1", "us-gov-west-1", "cn-north-1", "ap-southeast-2"])
def test_real_regions_load(raw: dict, region: str) -> None:
    raw["region"] = region
    assert config_from_mapping(raw, environ={}).region == region


def test_a_config_file_that_is_not_utf8_is_a_config_error(tmp_path: Path, repo_root: Path) -> None:
    text = (repo_root / "mlops.yaml").read_text(encoding="utf-8")
    broken = tmp_path / "mlops.yaml"
    broken.write_bytes(("# Projekt für Ärzte\n" + text).encode("latin-1", "replace"))
    with pytest.raises(ConfigError) as raised:
        load_config(broken, environ={})
    message = str(raised.value)
    assert "is not UTF-8 text" in message and "line 1" in message and "save mlops.yaml as UTF-8" in message


def test_known_regions_equal_botocores_own_answer() -> None:
    import botocore.session

    from mlops.core.config import known_regions

    session = botocore.session.get_session()
    expected = {
        region
        for partition in session.get_available_partitions()
        for region in session.get_available_regions("sagemaker", partition_name=partition)
    }
    assert known_regions() == expected and "eu-west-1" in expected


def test_the_entra_issuer_needs_the_tenant(raw: dict) -> None:
    assert config_from_mapping(raw, environ={}).azure_devops.oidc_issuer == "legacy"
    with pytest.raises(ConfigError, match="oidc_issuer is 'both' but entra_tenant_id is not set") as missing:
        config_from_mapping(raw, environ={"MLOPS__AZURE_DEVOPS__OIDC_ISSUER": "both"})
    assert "login.microsoftonline.com/<tenant id>/v2.0" in str(missing.value)
    with pytest.raises(ConfigError, match="oidc_issuer"):
        config_from_mapping(raw, environ={"MLOPS__AZURE_DEVOPS__OIDC_ISSUER": "vstoken"})
    tenant = "7a1b2c3d-0000-4000-8000-000000000001"
    config = config_from_mapping(
        raw, environ={"MLOPS__AZURE_DEVOPS__OIDC_ISSUER": "entra", "MLOPS__AZURE_DEVOPS__ENTRA_TENANT_ID": tenant}
    )
    assert (config.azure_devops.oidc_issuer, config.azure_devops.entra_tenant_id) == ("entra", tenant)
