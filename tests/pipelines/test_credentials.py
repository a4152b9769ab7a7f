"""The twin adapter for service connections, without a twin: clear errors, nothing started."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops.core.errors import PipelineRunError
from mlops.local.pipeline_credentials import DEFAULT_CONNECTIONS, TwinServiceConnections


def test_default_connections_name_the_three_accounts() -> None:
    assert DEFAULT_CONNECTIONS == {"aws-automation": "automation", "aws-staging": "staging", "aws-prod": "prod"}


def test_unknown_connection_and_missing_twin(tmp_path: Path) -> None:
    connections = TwinServiceConnections(tmp_path / "twin", {"aws-qa": "staging"})
    with pytest.raises(PipelineRunError, match="unknown service connection 'aws-prod'"):
        connections("aws-prod")
    with pytest.raises(PipelineRunError, match="needs the local twin, which is not running"):
        connections("aws-qa")
