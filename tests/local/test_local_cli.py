"""`mlops local up|status|env|down` and `mlops registry` through a real background twin process."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops.cli import main

pytestmark = pytest.mark.slow


def test_lifecycle_env_and_registry(twin_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--profile", "local", "local", "status"]) == 1
    assert "not running" in capsys.readouterr().out
    assert main(["--profile", "local", "registry", "list"]) == 1
    assert "no twin is running" in capsys.readouterr().err

    assert main(["--profile", "local", "local", "up"]) == 0
    started = capsys.readouterr()
    assert "twin started at http://127.0.0.1:" in started.out
    assert started.out.splitlines()[0].endswith("; requests strict")  # the default; the flag: test_strict_requests
    # provisioned from the templates, and every way the twin differs from AWS said on one line
    for stack in ("mlops-automation", "mlops-staging", "mlops-prod"):
        assert f"{stack}: CREATE_COMPLETE from " in started.err
    gaps = [line for line in started.err.splitlines() if line.startswith("known gap: ")]
    assert any("mlops-approvals instead of the mlops-bridge Lambda" in line for line in gaps), gaps
    assert any("monitor" in line for line in gaps), gaps
    assert main(["--profile", "local", "local", "up"]) == 0
    assert "already running" in capsys.readouterr().out
    assert main(["local", "status"]) == 0
    assert '"status": "running"' in capsys.readouterr().out

    assert main(["local", "env", "--account", "staging"]) == 0
    lines = capsys.readouterr().out.splitlines()
    exported = dict(line.removeprefix("export ").split("=", 1) for line in lines if line.startswith("export "))
    assert exported["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    # the staging account's administrator: the templates' deploy role trusts only its service connection
    assert exported["AWS_ACCESS_KEY_ID"] == "twin-staging" and "AWS_SESSION_TOKEN" not in exported

    assert main(["--profile", "local", "registry", "list"]) == 0
    assert "no packages in group breast-cancer" in capsys.readouterr().err
    assert main(["--profile", "local", "registry", "approve", "--version", "3", "--reason", "x"]) == 1
    assert "model package arn:aws:sagemaker:us-east-1:000000000001:model-package/breast-cancer/3 not found" in (
        capsys.readouterr().err
    )

    assert main(["local", "down"]) == 0
    assert capsys.readouterr().out.strip() == "twin stopped"
    assert not twin_dir.exists()
    assert main(["local", "env"]) == 1
    assert "the twin is not running" in capsys.readouterr().err
