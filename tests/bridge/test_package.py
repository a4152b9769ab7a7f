"""The Lambda zip and what the bridge may import.

No test here needs the network: the zip layout is tested with an injected installer that writes a
small fake distribution (the real `uv pip install` for manylinux2014 runs in `mlops bridge package`
and in bench/bench_bridge.py, where PyPI is reachable).
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

from mlops.bridge.package import build_lambda_zip
from mlops.core.errors import BridgeError

REPO = Path(__file__).resolve().parents[2]
BRIDGE = REPO / "infra" / "bridge"


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            pins[_normal(name)] = version.split(";")[0].strip()
    return pins


def _normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def fake_installer(calls: list[tuple[Path, Path]]):  # type: ignore[no-untyped-def]
    def install(requirements: Path, target: Path) -> None:
        calls.append((requirements, target))
        (target / "fakedep").mkdir()
        (target / "fakedep" / "__init__.py").write_text("VALUE = 1\n")
        (target / "fakedep-1.0.dist-info").mkdir()
        (target / "fakedep-1.0.dist-info" / "METADATA").write_text("Name: fakedep\nVersion: 1.0\n")
        (target / "bin").mkdir()
        (target / "bin" / "fakedep-cli").write_text("#!/bin/sh\n")

    return install


def test_the_zip_holds_the_bridge_package_and_the_installed_dependencies(tmp_path: Path) -> None:
    calls: list[tuple[Path, Path]] = []
    result = build_lambda_zip(tmp_path / "bridge.zip", installer=fake_installer(calls))

    names = set(zipfile.ZipFile(result.path).namelist())
    assert calls and calls[0][0] == BRIDGE / "requirements.txt"
    assert {f"mlops_bridge/{p.name}" for p in (BRIDGE / "mlops_bridge").glob("*.py")} <= names
    assert "mlops_bridge/handler.py" in names and "fakedep/__init__.py" in names
    assert "mlops_bridge/__pycache__/handler.cpython-311.pyc" in names  # read-only /var/task: ship bytecode
    assert not any(n.startswith(("bin/", "tests/", "mlops/", "model_build/")) for n in names)
    assert "mlops_bridge/requirements.txt" not in names
    assert result.entries == len(names) and result.size_bytes == result.path.stat().st_size


def test_the_zip_is_reproducible(tmp_path: Path) -> None:
    first = build_lambda_zip(tmp_path / "a.zip", installer=fake_installer([]), compile_bytecode=False)
    second = build_lambda_zip(tmp_path / "b.zip", installer=fake_installer([]), compile_bytecode=False)
    assert first.path.read_bytes() == second.path.read_bytes()
    assert all(i.date_time == (1980, 1, 1, 0, 0, 0) for i in zipfile.ZipFile(first.path).infolist())


def test_an_installer_failure_leaves_no_zip(tmp_path: Path) -> None:
    def broken(requirements: Path, target: Path) -> None:
        raise BridgeError("no wheel for cryptography on manylinux2014")

    with pytest.raises(BridgeError, match="no wheel"):
        build_lambda_zip(tmp_path / "bridge.zip", installer=broken)
    assert list(tmp_path.iterdir()) == []


def test_requirements_are_pinned_exactly_as_in_the_lock_and_closed_under_dependencies() -> None:
    pins = _pins(BRIDGE / "requirements.txt")
    lock = _pins(REPO / "requirements.lock")
    assert {name: lock.get(name) for name in pins} == pins
    environment = {**default_environment(), "sys_platform": "linux", "platform_system": "Linux", "extra": ""}
    missing = set()
    for name in pins:
        for text in importlib.metadata.distribution(name).requires or []:
            requirement = Requirement(text)
            applies = requirement.marker is None or requirement.marker.evaluate(environment)
            if applies and _normal(requirement.name) not in pins:
                missing.add(f"{name} -> {requirement.name}")
    assert missing == set()


def test_the_bridge_imports_only_itself_the_stdlib_and_its_pinned_requirements() -> None:
    provided = {
        module
        for module, dists in importlib.metadata.packages_distributions().items()
        if any(_normal(d) in _pins(BRIDGE / "requirements.txt") for d in dists)
    }
    allowed = provided | set(sys.stdlib_module_names) | {"mlops_bridge", "__future__"}
    found = {}
    for source in BRIDGE.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found[name.split(".")[0]] = source.name
    assert {top: where for top, where in found.items() if top not in allowed} == {}


def test_the_handler_imports_where_the_home_folder_is_read_only() -> None:
    # Lambda's home is read-only: the SDK's import-time cache dir must not default to it.
    env = {
        "HOME": "/proc/no-home-here",
        "PATH": "/usr/bin:/bin",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    bare = subprocess.run(
        [sys.executable, "-c", "import azure.devops.connection"], env=env, capture_output=True, text=True
    )
    ours = subprocess.run(
        [
            sys.executable,
            "-c",
            "import mlops_bridge.handler, azure.devops._file_cache as c; print(c.DEFAULT_CACHE_DIR)",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert bare.returncode != 0 and "/proc/no-home-here" in bare.stderr  # the trap this guards against
    assert ours.returncode == 0, ours.stderr
    assert ours.stdout.strip().endswith("azure-devops-cache")
