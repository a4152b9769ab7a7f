"""The `mlops` command line: exit codes, errors on stderr, and the build commands against moto."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from mlops.cli import main

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, restore_environ: None) -> Iterator[None]:
    # Hermetic: a twin a developer left running beside mlops.yaml must not answer these commands.
    monkeypatch.setenv("MLOPS_TWIN_DIR", str(tmp_path / "no-twin"))
    monkeypatch.setenv("MLOPS_CONFIG", str(REPO_ROOT / "mlops.yaml"))
    monkeypatch.setenv("MLOPS_PROFILE", "local")
    monkeypatch.setenv("BUILD_SOURCEVERSION", "0123456789abcdef0123456789abcdef01234567")
    monkeypatch.setenv("BUILD_SOURCEBRANCH", "refs/heads/main")
    yield


def test_config_error_exits_1_with_one_actionable_line(
    local: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLOPS__BUILD__QUALITY__THRESHOLD", "high")
    monkeypatch.setenv("TF_BUILD", "True")
    assert main(["build", "definition"]) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("error: invalid configuration: build.quality.threshold: found 'high'")
    assert err[-1].startswith("##vso[task.logissue type=error]invalid configuration")


def test_usage_error_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "run", "--timeout", "0"]) == 2
    assert "Invalid value for '--timeout'" in capsys.readouterr().err


def test_local_profile_without_a_twin_refuses_to_call_aws(local: None, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["build", "upsert", "--dry-run"]) == 1
    assert "no twin is running" in capsys.readouterr().err


@pytest.mark.slow
def test_upsert_dry_run_then_upsert_then_run(
    local: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # The cloud profile against moto (the local profile would insist on a running twin).
    monkeypatch.delenv("MLOPS_PROFILE")
    monkeypatch.setenv("MLOPS__REGION", "us-east-1")
    monkeypatch.setenv("MLOPS__BUILD__ARTIFACT_BUCKET", "mlops-artifacts-111111111111-us-east-1")
    monkeypatch.setenv("MLOPS__BUILD__KMS_KEY_ID", "")
    with mock_aws():
        boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="mlops-artifacts-111111111111-us-east-1")
        assert main(["build", "upsert", "--dry-run"]) == 0
        assert capsys.readouterr().out.strip() == "(dry run) pipeline breast-cancer-build: create"
        assert main(["build", "upsert"]) == 0
        assert capsys.readouterr().out.strip() == "pipeline breast-cancer-build: create"
        assert main(["build", "upsert"]) == 0
        assert capsys.readouterr().out.strip() == "pipeline breast-cancer-build: unchanged (nothing to write)"
        assert main(["build", "run", "--wait", "--no-track", "--build-id", "20261122T020304Z-0123456"]) == 0
        started = json.loads(capsys.readouterr().out)
        assert started["build_id"] == "20261122T020304Z-0123456"
        assert started["manifest"].endswith("/breast-cancer/main/20261122T020304Z-0123456/manifest.json")
        assert main(["build", "run", "--build-id", "yesterday"]) == 1
        assert "expected a build id like" in capsys.readouterr().err
        assert main(["build", "cleanup", "--branch", "main"]) == 1
        assert "refusing to clean up 'main'" in capsys.readouterr().err
        assert main(["build", "cleanup", "--branch", "refs/heads/Main"]) == 1
        assert "it is the main line" in capsys.readouterr().err
        assert main(["build", "cleanup"]) == 1
        assert "expected exactly one of --branch NAME and --stale" in capsys.readouterr().err
