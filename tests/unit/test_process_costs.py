"""What each `mlops` process pays at start (issue 18): checked in fresh processes, as a pipeline step starts them."""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from pathlib import Path

from mlops.core import gc_policy

REPO_ROOT = Path(__file__).resolve().parents[2]


def _fresh(code: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, env=env, check=True
    )
    return done.stdout.strip().splitlines()[-1]


def test_a_command_under_the_local_profile_finds_its_twin_without_importing_the_server(tmp_path: Path) -> None:
    # A twin that was started here and is gone: the command still reads its state (and points AWS at it).
    twin = tmp_path / "twin"
    twin.mkdir()
    state = {
        "url": "http://127.0.0.1:9",
        "pid": 2**22 + 7,  # above Linux's default pid_max: no such process
        "region": "us-east-1",
        "accounts": {"automation": "000000000001", "staging": "000000000002", "prod": "000000000003"},
        "approval_queue_url": "",
        "bridge_dlq_url": "",
        "started": 0.0,
    }
    (twin / "twin.json").write_text(json.dumps(state))
    code = (
        "import os, sys, json; from mlops.cli.root import _use_running_twin; _use_running_twin(None); "
        "print(json.dumps([os.environ.get('AWS_ENDPOINT_URL'), sorted(m for m in sys.modules if m.startswith("
        "('moto', 'mlops.local.server', 'mlops.local.bootstrap')))]))"
    )
    env = {"PATH": "/usr/bin:/bin", "MLOPS_TWIN_DIR": str(twin), "MLOPS_CONFIG": str(REPO_ROOT / "mlops.yaml")}
    endpoint, heavy = json.loads(_fresh(code, env))
    assert endpoint == "http://127.0.0.1:9"
    assert heavy == []


def test_mlops_processes_collect_garbage_at_the_policys_thresholds() -> None:
    assert _fresh("import gc, mlops.cli; print(list(gc.get_threshold()))") == json.dumps(list(gc_policy.THRESHOLDS))
    assert _fresh("import gc; print(list(gc.get_threshold()))") != json.dumps(list(gc_policy.THRESHOLDS))


def test_frozen_survivors_are_exempt_from_collections() -> None:
    kept = [[object()] for _ in range(1000)]
    before = gc.get_freeze_count()
    gc_policy.freeze_survivors()
    assert gc.get_freeze_count() >= before + len(kept)
