"""Deterministic resource names. Pure.

A model is named after its package group and version plus a short hash of everything it is made of
(image, artifact, environment, role, package); an endpoint config after the endpoint, the version and a
hash of its full request. The same package with the same settings therefore renders the same names,
which is what makes re-deploying the live package an empty plan, and any change of either renders new
names: SageMaker models and endpoint configs are immutable, so a change is a new resource.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

SAGEMAKER_NAME_MAX = 63
HASH_LENGTH = 8


def short_hash(document: Any) -> str:
    canonical = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:HASH_LENGTH]


def bounded(base: str, suffix: str, limit: int = SAGEMAKER_NAME_MAX) -> str:
    """`<base>-<suffix>`, shortening base (never the suffix, which carries version and hash) to fit."""
    room = limit - len(suffix) - 1
    if room < 1:
        raise ValueError(f"suffix {suffix!r} leaves no room for a name within {limit} characters")
    return f"{base[:room].rstrip('-')}-{suffix}"


def model_name(group: str, version: int, spec: Any) -> str:
    return bounded(group, f"v{version}-{short_hash(spec)}")


def endpoint_config_name(endpoint: str, version: int, spec: Any) -> str:
    return bounded(endpoint, f"v{version}-{short_hash(spec)}")


def job_definition_name(endpoint: str, spec: Any) -> str:
    return bounded(endpoint, f"dq-{short_hash(spec)}")


def transform_job_name(model: str) -> str:
    return bounded(model, "sample")


def alarm_name(endpoint: str, suffix: str) -> str:
    return f"{endpoint}-{suffix}"


def scaling_resource_id(endpoint: str, variant: str) -> str:
    return f"endpoint/{endpoint}/variant/{variant}"
