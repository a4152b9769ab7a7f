"""The errors of `mlops ado`: one hierarchy, each naming what was expected, what was found and what to do."""

from __future__ import annotations

from mlops.core.errors import MlopsError


class AdoError(MlopsError):
    """Azure DevOps refused or failed a request of `mlops ado`."""


class AdoPermissionError(AdoError):
    """The token lacks a permission: the message names the permission and the object."""


class AdoConflict(AdoError):
    """An object with one of our names exists and was not created by `mlops ado`: it is left alone."""
