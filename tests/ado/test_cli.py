"""`mlops ado plan|apply` on the command line, against the fake organization with a PAT."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops.cli import main
from mlops.local.fake_ado import FakeAzureDevOps

from .conftest import PAT


@pytest.fixture(autouse=True)
def _no_twin(restore_environ: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # `--profile local` points AWS at a running twin by writing os.environ; these commands make no AWS call,
    # and the environment is restored afterwards (restore_environ) so no later test talks to a twin.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")


def test_plan_exits_2_with_changes_apply_converges_and_plan_then_exits_0(
    fake: FakeAzureDevOps, repo_root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AZURE_DEVOPS_EXT_PAT", PAT)
    monkeypatch.delenv("MLOPS__AZURE_DEVOPS__SETUP__BRIDGE_IDENTITY", raising=False)
    arguments = ["--config", str(repo_root / "mlops.yaml"), "--profile", "local", "ado"]
    url = ["--organization-url", fake.org_url]

    assert main([*arguments, "plan", *url]) == 2
    planned = capsys.readouterr().out
    assert "+ create environment mlops-prod" in planned and "42 to change, 0 unchanged" in planned

    assert main([*arguments, "apply", *url]) == 0
    assert "Azure DevOps project is up to date" in capsys.readouterr().out

    assert main([*arguments, "plan", *url]) == 0
    assert capsys.readouterr().out.strip().endswith("0 to change, 42 unchanged, 0 conflict(s)")


def test_a_token_the_organization_refuses_is_one_actionable_line(
    fake: FakeAzureDevOps, repo_root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AZURE_DEVOPS_EXT_PAT", "not-the-pat")
    code = main(
        [
            "--config",
            str(repo_root / "mlops.yaml"),
            "--profile",
            "local",
            "ado",
            "apply",
            "--organization-url",
            fake.org_url,
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and err.startswith(
        "error: Azure DevOps did not accept the credential to connect to the organization"
    )
    assert "fix: use a token that can read and manage the project" in err
    assert fake.project is not None and fake.project.state["pipelines"] == []  # nothing changed
