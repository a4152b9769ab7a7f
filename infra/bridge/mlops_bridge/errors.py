"""The bridge's one exception hierarchy.

Every error says what was expected, what was found and what to do. The handler lets them propagate:
Lambda then retries the event and, when retries are spent, puts it on the dead-letter queue, where
`mlops bridge replay` finds it. Nothing is swallowed.
"""

from __future__ import annotations


class BridgeError(Exception):
    """Base class: a message and, where one exists, a concrete next step."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  fix: {self.hint}" if self.hint else self.message


class ConfigurationError(BridgeError):
    """An environment variable or the auth secret is missing or invalid."""


class MalformedEventError(BridgeError):
    """The event is not a well-formed SageMaker Model Package State Change."""


class RegistryMismatchError(BridgeError):
    """The registry contradicts the event (package missing, other group or version)."""


class AzureDevOpsError(BridgeError):
    """Azure DevOps did not start the run."""


class AzureDevOpsAuthError(AzureDevOpsError):
    """401/403: the credentials in the auth secret were refused."""


class AzureDevOpsThrottledError(AzureDevOpsError):
    """429 for longer than the bounded wait allows."""


class AzureDevOpsUnavailableError(AzureDevOpsError):
    """5xx, a timeout or no connection: the run may or may not exist, Lambda's retry decides."""


class AzureDevOpsBadAnswerError(AzureDevOpsUnavailableError):
    """A 2xx that does not prove a run: no run id, not JSON, 204, an HTML (sign-in) page. The run may or may
    not exist, so it is handled like a 5xx: looked up in Azure DevOps, else raised for Lambda's retry."""


class AlreadyInProgressError(BridgeError):
    """Another delivery of the same approval is starting the run right now."""


class WriteBackError(BridgeError):
    """The run started but recording it on the model package failed."""


class ReminderError(BridgeError):
    """Publishing one or more pending-approval reminders failed."""
