"""Names and S3 locations of a build, computed from config, branch and content. Pure.

Where things live in the artifact bucket (all under the use case's prefix `<project>/`):

  code/<sha256>/<file>                 step code, content-addressed: same code, same key, same
                                       definition, so unchanged steps hit SageMaker's step cache
  data/<sha256>/<file>                 input snapshots, content-addressed
  <branch>/<build-id>/<step>/<output>  what one execution produced (build id = UTC time + commit)
  <branch>/<build-id>/manifest.json    commit, build id, input snapshot, code, definition hash

The build id reaches the definition only as an execution parameter (`BuildId`) that is joined into
output paths. SageMaker's cache key for a processing or training step covers its image, code,
inputs, environment and hyperparameters, not its output locations, so a new build id does not defeat
the cache: a cached step reports the outputs of the earlier build that computed them, and the
manifest of the new build records exactly those URIs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

MAIN_BRANCHES = frozenset({"main", "master"})
_PIPELINE_NAME_MAX = 256


def sha256_of_files(paths: Iterable[Path]) -> str:
    """One digest over file names and contents (order-independent), for a code bundle."""
    digest = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.name):
        digest.update(path.name.encode())
        digest.update(b"\0")
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def branch_slug(branch: str) -> str:
    """`feature/Add_thing` -> `feature-add-thing`: usable in pipeline names and S3 keys."""
    slug = re.sub(r"[^a-zA-Z0-9]+", "-", branch).strip("-").lower()
    if not slug:
        raise ValueError(f"branch name {branch!r} has no letters or digits to name a pipeline after")
    return slug


def pipeline_name(base: str, branch: str) -> str:
    """The main branch owns `base`; every other branch gets `base-<branch>` (bounded, unique)."""
    if branch in MAIN_BRANCHES:
        return base
    name = f"{base}-{branch_slug(branch)}"
    if len(name) > _PIPELINE_NAME_MAX:
        tail = hashlib.sha256(branch.encode()).hexdigest()[:8]
        name = f"{name[: _PIPELINE_NAME_MAX - 9].rstrip('-')}-{tail}"
    return name


@dataclass(frozen=True)
class BucketLayout:
    bucket: str
    project: str

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def code_key(self, digest: str, file_name: str) -> str:
        return f"{self.project}/code/{digest}/{file_name}"

    def data_key(self, digest: str, file_name: str) -> str:
        return f"{self.project}/data/{digest}/{file_name}"

    def branch_prefix(self, branch: str) -> str:
        return f"{self.project}/{branch_slug(branch)}/"

    def run_prefix(self, branch: str, build_id: str) -> str:
        return f"{self.branch_prefix(branch)}{build_id}/"

    def manifest_key(self, branch: str, build_id: str) -> str:
        return f"{self.run_prefix(branch, build_id)}manifest.json"
