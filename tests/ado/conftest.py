"""Fixtures for `mlops ado` against the fake Azure DevOps organization (loopback, the real SDK)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

# The SDK caches OPTIONS answers on disk under the home folder unless told otherwise (before import).
os.environ.setdefault("AZURE_DEVOPS_CACHE_DIR", tempfile.mkdtemp(prefix="mlops-ado-cache-"))

from msrest.authentication import BasicAuthentication

from mlops.ado.desired import Desired, desired
from mlops.ado.project import AdoProject
from mlops.core.config import Config, load_config
from mlops.local.fake_ado import FakeAzureDevOps

PAT = "ado-test-pat"
BRIDGE = "mlops-bridge (service principal)"


@pytest.fixture
def config(repo_root: Path) -> Config:
    return load_config(
        repo_root / "mlops.yaml",
        profile="local",
        environ={"MLOPS__AZURE_DEVOPS__SETUP__BRIDGE_IDENTITY": BRIDGE},
    )


@pytest.fixture
def want(config: Config) -> Desired:
    return desired(config)


@pytest.fixture
def fake(want: Desired, tmp_path: Path) -> Iterator[FakeAzureDevOps]:
    with FakeAzureDevOps(
        "local-org", pat=PAT, project="mlops", store=tmp_path / "ado.json", identities=(want.approvers, BRIDGE)
    ) as server:
        yield server


@pytest.fixture
def ado(fake: FakeAzureDevOps) -> AdoProject:
    return AdoProject(fake.org_url, "mlops", BasicAuthentication("", PAT))
