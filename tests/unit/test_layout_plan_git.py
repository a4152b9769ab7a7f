from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mlops.core.errors import GitError
from mlops.core.gitinfo import current_revision, make_build_id, validate_build_id
from model_build.layout import (
    RESERVED_SEGMENTS,
    BucketLayout,
    branch_slug,
    is_main_branch,
    pipeline_name,
    sha256_of_files,
)
from model_build.plan import first_failed_step, plan_upsert


def test_pipeline_names_per_branch() -> None:
    assert pipeline_name("bc-build", "main") == "bc-build"
    name = pipeline_name("bc-build", "feature/Add_Thing")
    assert re.fullmatch(r"bc-build-feature-add-thing-[0-9a-f]{8}", name)
    long = pipeline_name("bc-build", "x" * 400)
    assert len(long) <= 256 and long.startswith("bc-build-xxx")
    assert long != pipeline_name("bc-build", "x" * 401)
    with pytest.raises(ValueError, match="no letters or digits"):
        branch_slug("///")


@pytest.mark.parametrize(
    "spelling", ["main", "Main", "MAIN", "refs/heads/main", " main ", "master", "refs/heads/Master"]
)
def test_the_main_line_in_any_spelling_is_main(spelling: str) -> None:
    assert is_main_branch(spelling)
    assert branch_slug(spelling) == "main"
    assert pipeline_name("bc-build", spelling) == "bc-build"


def test_branches_that_slug_alike_never_share_a_prefix() -> None:
    layout = BucketLayout("bucket", "bc")
    alike = ["feature/x", "feature-x", "Feature_X", "feature/X", "refs/heads/feature-x-"]
    prefixes = {layout.branch_prefix(b) for b in alike}
    assert len(prefixes) == len(alike)
    assert layout.branch_prefix("refs/heads/feature/x") == layout.branch_prefix("feature/x")
    # No branch maps onto the shared stores or the main line's outputs.
    for branch in ("code", "data", "Data", "main-", "refs/heads/code"):
        assert branch_slug(branch).split("-")[0] in {"code", "data", "main"}
        assert branch_slug(branch) not in RESERVED_SEGMENTS


def test_bucket_layout() -> None:
    layout = BucketLayout("bucket", "bc")
    slug = branch_slug("feature/x")
    assert layout.run_prefix("feature/x", "20261122T020304Z-abcdef1") == f"bc/{slug}/20261122T020304Z-abcdef1/"
    assert layout.branch_prefix("main") == "bc/main/"
    assert layout.uri(layout.code_key("d" * 64, "train.py")) == f"s3://bucket/bc/code/{'d' * 64}/train.py"


def test_code_digest_depends_on_content_and_names_only(tmp_path: Path) -> None:
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("1")
    b.write_text("2")
    first = sha256_of_files([a, b])
    assert first == sha256_of_files([b, a])
    b.write_text("3")
    assert sha256_of_files([a, b]) != first


def test_plan_upsert_create_unchanged_update() -> None:
    definition = json.dumps({"Version": "2020-12-01", "Steps": [{"Name": "A"}]})
    assert plan_upsert("p", definition, "role", None, None).action == "create"
    reordered = json.dumps({"Steps": [{"Name": "A"}], "Version": "2020-12-01"}, indent=4)
    assert plan_upsert("p", definition, "role", reordered, "role").action == "unchanged"
    changed = plan_upsert("p", definition, "role", json.dumps({"Version": "2020-12-01", "Steps": []}), "role")
    assert changed.action == "update"
    assert '+      "Name": "A"' in changed.diff
    assert "update (" in changed.describe()
    role = plan_upsert("p", definition, "role2", definition, "role1")
    assert role.action == "update" and role.role_changed and "role: role1 -> role2" in role.diff


def test_first_failed_step_is_the_earliest_failure() -> None:
    steps = [
        {"StepName": "Register", "StepStatus": "Failed", "StartTime": "2026-01-01T00:05:00", "FailureReason": "later"},
        {"StepName": "Train", "StepStatus": "Failed", "StartTime": "2026-01-01T00:01:00", "FailureReason": "OOM"},
        {"StepName": "Preprocess", "StepStatus": "Succeeded", "StartTime": "2026-01-01T00:00:00"},
    ]
    culprit = first_failed_step(steps)
    assert culprit is not None and (culprit.name, culprit.failure_reason) == ("Train", "OOM")
    assert first_failed_step([{"StepName": "A", "StepStatus": "Succeeded"}]) is None


def test_build_id_format() -> None:
    moment = datetime(2026, 11, 22, 2, 3, 4, tzinfo=UTC)
    build_id = make_build_id("abcdef0123456789", moment)
    assert build_id == "20261122T020304Z-abcdef0"
    assert validate_build_id(build_id) == build_id
    with pytest.raises(GitError, match="expected a build id like"):
        validate_build_id("latest")


def test_revision_from_azure_pipelines_variables() -> None:
    env = {"BUILD_SOURCEVERSION": "a" * 40, "BUILD_SOURCEBRANCH": "refs/heads/main"}
    assert current_revision(env).branch == "main"
    env["SYSTEM_PULLREQUEST_SOURCEBRANCH"] = "refs/heads/feature/x"
    assert current_revision(env).branch == "feature/x"
    with pytest.raises(GitError, match="hexadecimal commit"):
        current_revision({"BUILD_SOURCEVERSION": "not-a-sha", "BUILD_SOURCEBRANCH": "main"})


def test_revision_from_git(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", "-b", "topic", str(tmp_path)], check=True)
    with pytest.raises(GitError, match="failed"):
        current_revision({}, cwd=tmp_path)  # no commit yet
    subprocess.run(
        [
            "git",
            "-C",
            str(tmp_path),
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "x",
        ],
        check=True,
    )
    revision = current_revision({}, cwd=tmp_path)
    assert revision.branch == "topic" and len(revision.commit) == 40
    subprocess.run(["git", "-C", str(tmp_path), "checkout", "-q", "--detach"], check=True)
    with pytest.raises(GitError, match="detached HEAD"):
        current_revision({}, cwd=tmp_path)
