"""The endpoint suite (`mlops test`) against a stand-in runtime that serves the real trained model."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import numpy
import pytest
from sklearn.metrics import roc_auc_score

from mlops.core.config import Config
from mlops.core.errors import EndpointTestsFailed, PackageRefused
from model_deploy.deploy import deploy, staging_pass_parameter
from model_deploy.endpoint_checks import HoldoutSplit, auc, parse_test_split, percentile
from model_deploy.endpoint_tests import run_endpoint_tests
from model_deploy.package import PackageArn
from model_deploy.record_store import read_staging_pass
from model_deploy.suite import SuiteContext, run_suite
from tests.deploy.conftest import Accounts, put_json, register_package
from tests.deploy.serving import ServingRuntime, train_model

ENDPOINT = "breast-cancer-staging"


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, HoldoutSplit, float]:
    model_dir, test_csv = train_model(tmp_path_factory.mktemp("model"))
    split = parse_test_split(test_csv.read_text())
    model = ServingRuntime(model_dir, ENDPOINT).model
    raw = numpy.asarray([[numpy.nan if v is None else v for v in row] for row in split.rows], dtype=float)
    scores = [float(p) for p in model.predict_proba(raw)]
    return model_dir, split, float(roc_auc_score(split.labels, scores))


def _context(
    trained: tuple[Path, HoldoutSplit, float],
    *,
    registered: float | None = None,
    distort: Callable | None = None,
    p95_max: float | None = None,
) -> SuiteContext:
    model_dir, split, measured = trained
    ticks = iter(range(10_000))
    return SuiteContext(
        runtime=ServingRuntime(model_dir, ENDPOINT, distort),
        endpoint_name=ENDPOINT,
        split=split,
        metric="auc",
        registered_value=measured if registered is None else registered,
        tolerance=0.02,
        quality_rows=200,
        latency_requests=10,
        latency_p95_max_ms=p95_max,
        clock=lambda: next(ticks) * 0.004,  # every request "takes" 4 ms: deterministic latency figures
    )


def _junit_root(path: Path) -> ET.Element:
    return ET.parse(path).getroot()  # noqa: S314 - the XML pytest just wrote in this test's tmp dir


def _properties(junit: Path) -> dict[str, dict[str, str]]:
    root = _junit_root(junit)
    return {
        case.get("name", ""): {p.get("name", ""): p.get("value", "") for p in case.iter("property")}
        for case in root.iter("testcase")
    }


def test_suite_passes_against_the_real_model_and_reports_figures_in_junit(
    trained: tuple[Path, HoldoutSplit, float], tmp_path: Path
) -> None:
    context = _context(trained)
    result = run_suite(context, tmp_path / "junit.xml", suite_name="endpoint-tests-staging")
    assert result.passed, (tmp_path / "junit.xml").read_text()
    properties = _properties(tmp_path / "junit.xml")
    quality = properties["test_quality_within_tolerance_of_the_registered_metric"]
    assert float(quality["auc"]) == pytest.approx(trained[2], abs=1e-6)  # our AUC equals scikit-learn's
    assert quality["rows"] == "114"  # the whole test split (fewer rows than quality_rows)
    latency = properties["test_latency"]
    assert (float(latency["latency_p50_ms"]), float(latency["latency_p95_ms"])) == (4.0, 4.0)
    root = _junit_root(tmp_path / "junit.xml")
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    assert suite is not None and suite.get("name") == "endpoint-tests-staging"
    assert int(suite.get("tests", 0)) == 8 and int(suite.get("failures", 0)) == 0
    assert result.measurements["auc"] == pytest.approx(trained[2])


def test_a_model_below_tolerance_fails_the_suite(trained: tuple[Path, HoldoutSplit, float], tmp_path: Path) -> None:
    # The same endpoint, judged against a registered metric 0.021 above what it measures: just outside tolerance.
    result = run_suite(_context(trained, registered=trained[2] + 0.021), tmp_path / "junit.xml", suite_name="s")
    assert not result.passed
    failures = [c for c in _junit_root(tmp_path / "junit.xml").iter("testcase") if c.find("failure") is not None]
    assert [c.get("name") for c in failures] == ["test_quality_within_tolerance_of_the_registered_metric"]
    assert "expected at least" in (failures[0].find("failure").get("message") or "")  # type: ignore[union-attr]
    # Just inside the tolerance it passes: the boundary is where the setting says.
    assert run_suite(_context(trained, registered=trained[2] + 0.019), tmp_path / "ok.xml", suite_name="s").passed


def test_a_model_that_ranks_backwards_fails_quality(trained: tuple[Path, HoldoutSplit, float], tmp_path: Path) -> None:
    result = run_suite(_context(trained, distort=lambda p: 1 - p), tmp_path / "junit.xml", suite_name="s")
    assert not result.passed and result.measurements["auc"] < 0.1


def test_latency_bound_fails_when_exceeded(trained: tuple[Path, HoldoutSplit, float], tmp_path: Path) -> None:
    assert not run_suite(_context(trained, p95_max=3.9), tmp_path / "junit.xml", suite_name="s").passed


def test_auc_and_percentile_match_the_reference_implementations() -> None:
    labels = [0, 0, 1, 1, 0, 1, 1, 0]
    scores = [0.1, 0.4, 0.35, 0.8, 0.4, 0.4, 0.9, 0.2]
    assert auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores))
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5 and percentile([5.0], 95) == 5.0


def test_mlops_test_reads_registry_and_split_runs_the_suite_and_records_the_staging_pass(
    aws: Accounts, local_config: Config, trained: tuple[Path, HoldoutSplit, float], tmp_path: Path
) -> None:
    model_dir, _, measured = trained
    evaluation = "s3://mlops-artifacts-000000000001-us-east-1/breast-cancer/main/b1/evaluate/evaluation/evaluation.json"
    arn = register_package(aws, local_config, evaluation_uri=evaluation)
    put_json(aws, evaluation, {"binary_classification_metrics": {"auc": {"value": measured}}})
    test_csv = Path(model_dir).parent / "test" / "test.csv"
    put_json(
        aws,
        evaluation.replace("/evaluate/evaluation/evaluation.json", "/preprocess/test/test.csv"),
        test_csv.read_text(),
    )
    deploy(local_config, "staging", arn, automation=aws.automation, stage_clients=aws.staging)
    parameter = staging_pass_parameter(local_config, PackageArn.parse(arn))

    # The endpoint serving a model that ranks backwards fails the suite, and no pass is written.
    backwards = aws.staging.__class__(
        **{**vars(aws.staging), "runtime": ServingRuntime(model_dir, ENDPOINT, lambda p: 1 - p)}
    )
    with pytest.raises(EndpointTestsFailed, match="the staging endpoint tests failed"):
        run_endpoint_tests(
            local_config, "staging", automation=aws.automation, stage_clients=backwards, junit_path=tmp_path / "bad.xml"
        )
    assert read_staging_pass(aws.automation.ssm, parameter) is None
    with pytest.raises(PackageRefused, match="no staging-pass record"):
        deploy(local_config, "prod", arn, automation=aws.automation, stage_clients=aws.prod, dry_run=True)

    # The real model passes; the pass is recorded where prod looks for it.
    staging = aws.staging.__class__(**{**vars(aws.staging), "runtime": ServingRuntime(model_dir, ENDPOINT)})
    outcome = run_endpoint_tests(
        local_config,
        "staging",
        automation=aws.automation,
        stage_clients=staging,
        junit_path=tmp_path / "junit.xml",
        expected_package_arn=arn,
    )
    assert outcome.result.passed and outcome.staging_pass_written == parameter
    passed = read_staging_pass(aws.automation.ssm, parameter)
    assert passed is not None and passed.package_arn == arn and passed.measurements["auc"] == pytest.approx(measured)
    plan = deploy(local_config, "prod", arn, automation=aws.automation, stage_clients=aws.prod, dry_run=True).plan
    assert "create_endpoint" in [a.kind for a in plan.actions]
