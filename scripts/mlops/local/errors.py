"""Errors of the local twin."""

from __future__ import annotations

from mlops.core.errors import MlopsError


class TwinError(MlopsError):
    """The local twin cannot do what was asked (not running, already running, bad state)."""


class UnsupportedDefinition(TwinError):
    """A pipeline definition uses a step type, field or expression the local executor does not run."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(
            f"{where}: {problem}",
            hint="the local executor runs what this project's pipeline.py renders; extend "
            "scripts/mlops/local/executor.py for more, or run the pipeline in SageMaker",
        )
        self.where = where
