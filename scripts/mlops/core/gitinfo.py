"""Which commit and branch is being built, and the build id that names the run.

In Azure Pipelines the predefined variables (`BUILD_SOURCEVERSION`, `BUILD_SOURCEBRANCH`,
`SYSTEM_PULLREQUEST_SOURCEBRANCH`) win, because the agent checks out a detached merge commit;
elsewhere `git` is asked. The build id is `<UTC time>-<short commit>`, e.g. `20261122T020304Z-1a2b3c4`.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from mlops.core.errors import GitError

BUILD_ID_PATTERN = re.compile(r"^\d{8}T\d{6}Z-[0-9a-f]{7,40}$")


@dataclass(frozen=True)
class Revision:
    commit: str
    branch: str

    @property
    def short(self) -> str:
        return self.commit[:7]


def _git(args: list[str], cwd: Path | None) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=10)
    except FileNotFoundError as exc:
        raise GitError(
            "git is not installed", hint="install git, or set BUILD_SOURCEVERSION and BUILD_SOURCEBRANCH"
        ) from exc
    except subprocess.CalledProcessError as exc:
        raise GitError(
            f"`git {' '.join(args)}` failed: {exc.stderr.strip() or exc}",
            hint="run inside a git clone with at least one commit, or set BUILD_SOURCEVERSION and BUILD_SOURCEBRANCH",
        ) from exc
    return done.stdout.strip()


def _strip_ref(ref: str) -> str:
    for prefix in ("refs/heads/", "refs/tags/"):
        if ref.startswith(prefix):
            return ref[len(prefix) :]
    return ref


def current_revision(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> Revision:
    env = os.environ if environ is None else environ
    commit = env.get("BUILD_SOURCEVERSION") or _git(["rev-parse", "HEAD"], cwd)
    branch_ref = env.get("SYSTEM_PULLREQUEST_SOURCEBRANCH") or env.get("BUILD_SOURCEBRANCH")
    if branch_ref:
        branch = _strip_ref(branch_ref)
    else:
        branch = _git(["rev-parse", "--abbrev-ref", "HEAD"], cwd)
        if branch == "HEAD":
            raise GitError(
                "the checkout is on a detached HEAD, so the branch is unknown",
                hint="check out a branch, pass --branch, or set BUILD_SOURCEBRANCH",
            )
    if not re.fullmatch(r"[0-9a-f]{7,40}", commit):
        raise GitError(f"expected a hexadecimal commit id, found {commit!r}", hint="check BUILD_SOURCEVERSION")
    return Revision(commit=commit, branch=branch)


def make_build_id(commit: str, now: datetime | None = None) -> str:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{moment:%Y%m%dT%H%M%SZ}-{commit[:7]}"


def validate_build_id(build_id: str) -> str:
    if not BUILD_ID_PATTERN.fullmatch(build_id):
        raise GitError(
            f"expected a build id like 20261122T020304Z-1a2b3c4 (UTC time, '-', short commit), found {build_id!r}",
            hint="omit --build-id to have one made from the clock and the commit",
        )
    return build_id


def remote_branches(remote: str = "origin", cwd: Path | None = None) -> set[str]:
    """The branches the remote has now (`git ls-remote --heads`): what branch cleanup must keep."""
    listed = _git(["ls-remote", "--heads", remote], cwd)
    return {_strip_ref(line.split("\t", 1)[1]) for line in listed.splitlines() if "\t" in line}
