"""The twin adapter for service connections, without a twin: clear errors, nothing started."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops.core.errors import MlopsError, PipelineRunError
from mlops.local.pipeline_credentials import TwinServiceConnections


def test_missing_twin(tmp_path: Path) -> None:
    connections = TwinServiceConnections(tmp_path / "twin", {"aws-qa": "aws-deploy-staging"})
    with pytest.raises(PipelineRunError, match="'aws-qa' needs the local twin, which is not running"):
        connections("aws-qa")


def test_a_twin_that_did_not_come_up_fails_the_step_not_the_runner(tmp_path: Path) -> None:
    # `mlops demo` starts the twin beside the build: a connection used before it is up waits for it, and
    # a twin that failed is the runner's own error (the step fails, the run reports it), naming why.
    # The wait is told which connection (an alias resolved to the twin's own name), so it waits for its account.
    asked: list[str] = []

    def failed(name: str) -> None:
        asked.append(name)
        raise MlopsError("the twin did not come up: port in use", hint="see .mlops/twin/server.log")

    connections = TwinServiceConnections(tmp_path / "twin", {"aws-qa": "aws-automation"}, twin_ready=failed)
    with pytest.raises(PipelineRunError, match="'aws-automation' needs the local twin, which did not come up") as err:
        connections("aws-automation")
    assert "port in use" in str(err.value) and err.value.hint == "see .mlops/twin/server.log"
    with pytest.raises(PipelineRunError, match="'aws-qa' needs the local twin"):
        connections("aws-qa")
    assert asked == ["aws-automation", "aws-automation"]
