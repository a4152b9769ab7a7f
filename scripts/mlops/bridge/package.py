"""Build the bridge Lambda's zip.

Installs infra/bridge/requirements.txt for Lambda's python3.11 x86_64 into a staging dir, adds the
`mlops_bridge` package and writes a reproducible zip (sorted entries, fixed timestamps).
"""

from __future__ import annotations

import compileall
import os
import py_compile
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from mlops.core.errors import BridgeError

REPO_ROOT = Path(__file__).resolve().parents[3]
BRIDGE_DIR = REPO_ROOT / "infra" / "bridge"
BRIDGE_SOURCE = BRIDGE_DIR / "mlops_bridge"
BRIDGE_REQUIREMENTS = BRIDGE_DIR / "requirements.txt"
DEFAULT_ZIP = REPO_ROOT / "dist" / "mlops-bridge-lambda.zip"
LAMBDA_PLATFORM = "x86_64-manylinux2014"  # Lambda python3.11 runs on Amazon Linux 2 (glibc 2.26)
LAMBDA_PYTHON = "3.11"
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)

Installer = Callable[[Path, Path], None]  # (requirements file, target dir) -> None


@dataclass(frozen=True)
class PackageResult:
    path: Path
    size_bytes: int
    entries: int


def uv_installer(requirements: Path, target: Path) -> None:
    """Install wheels for Lambda's platform with uv (needs the package index: run it where PyPI is reachable)."""
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        raise BridgeError(
            "uv was not found next to the Python interpreter or on PATH: expected it to build the Lambda zip",
            hint="run `make install` (it installs uv into .venv) or `pip install uv`",
        )
    command = [
        uv, "pip", "install", "--quiet", "--target", str(target),
        "--python-platform", LAMBDA_PLATFORM, "--python-version", LAMBDA_PYTHON,
        "--only-binary", ":all:", "-r", str(requirements),
    ]  # fmt: skip
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        tail = "\n".join((completed.stderr or completed.stdout).strip().splitlines()[-15:])
        raise BridgeError(
            f"installing {requirements} for {LAMBDA_PLATFORM} / Python {LAMBDA_PYTHON} failed "
            f"(exit {completed.returncode}):\n{tail}",
            hint="check that the package index is reachable and every pin has a manylinux2014 x86_64 wheel",
        )


def build_lambda_zip(
    out: Path,
    *,
    source_dir: Path = BRIDGE_SOURCE,
    requirements: Path | None = None,
    installer: Installer = uv_installer,
    compile_bytecode: bool = True,
) -> PackageResult:
    """Stage dependencies + `mlops_bridge/`, then zip them reproducibly.

    The installer is injected: tests pass one that writes a few files, so no test needs the network.
    Bytecode is compiled as unchecked-hash .pyc: Lambda's /var/task is read-only, so without them every
    cold start compiles every imported module again.
    """
    requirements = requirements or source_dir.parent / "requirements.txt"
    if not (source_dir / "handler.py").is_file():
        raise BridgeError(f"no handler.py in {source_dir}: expected the bridge source (infra/bridge/mlops_bridge/)")
    if not requirements.is_file():
        raise BridgeError(f"no {requirements}: expected the bridge's pinned runtime requirements")
    with tempfile.TemporaryDirectory(prefix="mlops-bridge-zip-") as staging_name:
        staging = Path(staging_name)
        installer(requirements, staging)
        shutil.rmtree(staging / "bin", ignore_errors=True)  # console scripts: of no use in Lambda
        package_dir = staging / "mlops_bridge"
        if package_dir.exists():
            raise BridgeError(f"the installed requirements already contain mlops_bridge/ ({requirements})")
        package_dir.mkdir()
        for source in sorted(source_dir.glob("*.py")):
            shutil.copy2(source, package_dir / source.name)
        for cache in list(staging.rglob("__pycache__")):
            shutil.rmtree(cache)
        if compile_bytecode:
            compiled = compileall.compile_dir(
                staging, quiet=2, workers=0, invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH
            )
            if not compiled:
                raise BridgeError(f"compiling the staged sources in {staging} to bytecode failed")
        out.parent.mkdir(parents=True, exist_ok=True)
        entries = _write_zip(staging, out)
    return PackageResult(path=out, size_bytes=out.stat().st_size, entries=entries)


def _write_zip(root: Path, out: Path) -> int:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    partial = out.with_suffix(out.suffix + ".partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(root).as_posix(), date_time=_ZIP_EPOCH)
            info.external_attr = (0o755 if os.access(path, os.X_OK) else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
    partial.replace(out)  # never leave a half-written zip under the real name
    return len(files)
