"""Names and S3 locations of a build, computed from config, branch and content. Pure.

Where things live in the artifact bucket (all under the use case's prefix `<project>/`):

  code/<sha256>/<file>                 step code, content-addressed: same code, same key, same
                                       definition, so unchanged steps hit SageMaker's step cache
  data/<sha256>/<file>                 input snapshots, content-addressed
  <branch>/<build-id>/<step>/<output>  what one execution produced (build id = UTC time + commit)
  <branch>/<build-id>/manifest.json    commit, build id, input snapshot, code, definition hash

`<branch>` is `main` for the main line (`main`, `master`, `refs/heads/main`, `Main`: any spelling)
and `<slug>-<8 hex of sha256(branch)>` for every other branch, so two branches that slug alike
(`feature/x`, `feature-x`, `Feature_X`) never share a prefix or a pipeline, and no branch can map
to the reserved prefixes `code/`, `data/` or the main line's.

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
MAIN_SLUG = "main"
# First path segments under the project prefix that hold shared or main-line data.
RESERVED_SEGMENTS = frozenset({"code", "data", MAIN_SLUG})
_PIPELINE_NAME_MAX = 256
_REF_PREFIX = "refs/heads/"
_TAIL_LENGTH = 8


def sha256_of_files(paths: Iterable[Path]) -> str:
    """One digest over file names and contents (order-independent), for a code bundle."""
    return sha256_of_blobs((path.name, path.read_bytes()) for path in paths)


def sha256_of_blobs(blobs: Iterable[tuple[str, bytes]]) -> str:
    """One digest over (file name, content) pairs, order-independent: the same bundle, the same digest."""
    digest = hashlib.sha256()
    for name, body in sorted(blobs, key=lambda blob: blob[0]):
        digest.update(name.encode())
        digest.update(b"\0")
        digest.update(hashlib.sha256(body).digest())
    return digest.hexdigest()


def normalize_branch(branch: str) -> str:
    """The branch as git names it: `refs/heads/feature/x` -> `feature/x` (Azure DevOps passes full refs)."""
    name = branch.strip()
    return name[len(_REF_PREFIX) :] if name.startswith(_REF_PREFIX) else name


def is_main_branch(branch: str) -> bool:
    """The main line in any spelling: `main`, `Main`, `refs/heads/main`, `master`, ` main `."""
    return normalize_branch(branch).lower() in MAIN_BRANCHES


def branch_slug(branch: str) -> str:
    """`main` for the main line; `feature/Add_thing` -> `feature-add-thing-<8 hex>` for any other branch.

    The tail is a digest of the exact branch name, so the slug is unique per branch although the
    readable part is lossy (case, punctuation), and it never equals a reserved segment.
    """
    if is_main_branch(branch):
        return MAIN_SLUG
    name = normalize_branch(branch)
    readable = re.sub(r"[^a-zA-Z0-9]+", "-", name).strip("-").lower()
    if not readable:
        raise ValueError(f"branch name {branch!r} has no letters or digits to name a pipeline after")
    return f"{readable}-{hashlib.sha256(name.encode()).hexdigest()[:_TAIL_LENGTH]}"


def pipeline_name(base: str, branch: str) -> str:
    """The main line owns `base`; every other branch gets `base-<slug>` (bounded, unique per branch)."""
    if is_main_branch(branch):
        return base
    slug = branch_slug(branch)
    name = f"{base}-{slug}"
    if len(name) > _PIPELINE_NAME_MAX:
        tail = slug[-_TAIL_LENGTH:]
        name = f"{name[: _PIPELINE_NAME_MAX - _TAIL_LENGTH - 1].rstrip('-')}-{tail}"
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
