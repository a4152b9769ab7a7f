"""The one exception hierarchy of the `mlops` package.

Every error a user can cause or meet carries three things: what was expected, what was found,
and what to do about it. The CLI prints `str(error)` as the first line on stderr and exits non-zero.
"""

from __future__ import annotations


class MlopsError(Exception):
    """Base class: an error with a message and a concrete next step."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  fix: {self.hint}"
        return self.message


class ConfigError(MlopsError):
    """mlops.yaml (or an MLOPS__ override) is missing, malformed or holds an invalid value."""


class GitError(MlopsError):
    """The build cannot tell which commit or branch it builds."""


class BuildError(MlopsError):
    """Rendering, upserting or running the SageMaker pipeline failed."""


class PipelineExecutionFailed(BuildError):
    """A pipeline execution ended in Failed or Stopped."""


class AwsError(MlopsError):
    """An AWS call failed in a way the caller cannot fix by retrying the same input."""


class BridgeError(MlopsError):
    """`mlops bridge`: replaying the dead-letter queue or packaging the bridge Lambda failed."""


class DeployError(MlopsError):
    """`mlops deploy|test`: a deployment was refused, could not be planned or did not reach InService."""


class PackageRefused(DeployError):
    """Verification refused the package (unknown, not approved, foreign group, no staging pass); nothing created."""


class DeploymentFailed(DeployError):
    """Applying a plan failed; the endpoint was left on, or restored to, its previous configuration."""


class RollbackUnavailable(DeployError):
    """`mlops deploy rollback` found no earlier deployment record to go back to."""


class EndpointTestsFailed(DeployError):
    """`mlops test`: the endpoint test suite ran and at least one test failed."""


class InfraError(MlopsError):
    """`mlops infra`: linting or deploying the account CloudFormation failed."""


class PipelineError(MlopsError):
    """`mlops pipelines`: an Azure Pipelines YAML file is invalid or uses what the local runner does not support."""


class PipelineValidationError(PipelineError):
    """`mlops pipelines validate` found problems; the message lists each as `file:line: problem`."""


class PipelineRunError(PipelineError):
    """`mlops pipelines run`: the run could not start or ended failed/rejected."""
