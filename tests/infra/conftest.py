from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from mlops.core.config import Config, load_config
from mlops.infra.templates import TEMPLATES_DIR, load_template
from mlops.local.moto_fixes import change_set_outputs, key_policy_as_text, model_package_group_policies

REPO_ROOT = Path(__file__).resolve().parents[2]
ORG_ID = "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"
TEMPLATE_FILES = sorted(TEMPLATES_DIR.glob("*.yaml"))


@pytest.fixture(scope="session")
def local_config() -> Config:
    return load_config(REPO_ROOT / "mlops.yaml", profile="local", environ={})


@pytest.fixture(scope="session")
def default_config() -> Config:
    return load_config(REPO_ROOT / "mlops.yaml", environ={})


@pytest.fixture(scope="session")
def templates() -> dict[str, dict[str, Any]]:
    return {path.stem: load_template(path) for path in TEMPLATE_FILES}


@pytest.fixture
def aws_accounts() -> Iterator[Callable[[str], boto3.Session]]:
    """moto for all accounts; a session per account id, reached through sts:AssumeRole as in the twin."""
    # the twin's fixes of moto
    with mock_aws(), key_policy_as_text(), model_package_group_policies(), change_set_outputs():

        def account_session(account_id: str) -> boto3.Session:
            credentials = boto3.client("sts", region_name="us-east-1").assume_role(
                RoleArn=f"arn:aws:iam::{account_id}:role/admin", RoleSessionName="tests"
            )["Credentials"]
            return boto3.Session(
                aws_access_key_id=credentials["AccessKeyId"],
                aws_secret_access_key=credentials["SecretAccessKey"],
                aws_session_token=credentials["SessionToken"],
                region_name="us-east-1",
            )

        yield account_session
