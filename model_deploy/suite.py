"""Run the endpoint test suite (`endpoint_suite.py`) with pytest and report it as JUnit XML.

The suite's inputs are gathered before pytest starts and handed to it through a plugin that provides
the `endpoint` fixture, so the suite file holds only tests, and tests of the suite can hand in any
runtime client (a Stubber, a stand-in serving the real model, the twin, or SageMaker).
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from model_deploy.endpoint_checks import HoldoutSplit

SUITE_FILE = Path(__file__).resolve().parent / "endpoint_suite.py"


@dataclass
class SuiteContext:
    runtime: Any  # a sagemaker-runtime client, or anything with its invoke_endpoint
    endpoint_name: str
    split: HoldoutSplit
    metric: str
    registered_value: float
    tolerance: float
    quality_rows: int
    latency_requests: int
    latency_p95_max_ms: float | None = None
    clock: Callable[[], float] = time.perf_counter
    measurements: dict[str, float] = field(default_factory=dict)

    def invoke(self, body: str, content_type: str, accept: str) -> str:
        response = self.runtime.invoke_endpoint(
            EndpointName=self.endpoint_name, Body=body.encode("utf-8"), ContentType=content_type, Accept=accept
        )
        payload = response["Body"].read()
        return payload.decode("utf-8") if isinstance(payload, bytes) else str(payload)


class SuitePlugin:
    """A pytest plugin object: its fixture hands the prepared context to the suite."""

    def __init__(self, context: SuiteContext) -> None:
        self.context = context

    @pytest.fixture(scope="session")
    def endpoint(self) -> SuiteContext:
        return self.context


@dataclass(frozen=True)
class SuiteResult:
    exit_code: int
    junit_path: Path
    measurements: dict[str, float]

    @property
    def passed(self) -> bool:
        return self.exit_code == 0


def run_suite(context: SuiteContext, junit_path: Path, *, suite_name: str, quiet: bool = True) -> SuiteResult:
    junit_path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mlops-endpoint-suite-") as work:
        # An ini of our own: the suite must not pick up the repository's (or the caller's) pytest settings.
        ini = Path(work) / "pytest.ini"
        ini.write_text("[pytest]\n", encoding="utf-8")
        arguments = [
            str(SUITE_FILE),
            "-c",
            str(ini),
            "--rootdir",
            str(SUITE_FILE.parent.parent),
            "-p",
            "no:cacheprovider",
            # Only the suite's own plugin: the environment's pytest plugins (coverage, xdist, anyio, ...) would
            # cost about 0.5 s of imports per run and could change how the suite runs.
            "--disable-plugin-autoload",
            "--junitxml",
            str(junit_path),
            # record_property writes <properties> per test case, which xunit1 keeps and xunit2 drops.
            "-o",
            "junit_family=xunit1",
            "-o",
            f"junit_suite_name={suite_name}",
            "-o",
            "junit_logging=no",
            "-rfE",
        ]
        if quiet:
            arguments.append("-q")
        exit_code = int(pytest.main(arguments, plugins=[SuitePlugin(context)]))
    return SuiteResult(exit_code, junit_path, dict(context.measurements))
