"""The endpoint test suite `mlops test` runs (with pytest) against a deployed endpoint.

Not collected by the repository's own test run: `suite.run_suite` passes this file to pytest with a
plugin that provides the `endpoint` fixture (a `suite.SuiteContext`: the sagemaker-runtime client,
the endpoint, rows of the build's test split, the registered metric and the stage's thresholds).
Measured values go into the JUnit XML as properties, for Azure DevOps' test tab.
"""

# ruff: noqa: S101 - a pytest suite: assert is how it reports (pyproject exempts only tests/** by path)

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import botocore.exceptions
import pytest

from model_deploy.endpoint_checks import (
    Output,
    csv_payload,
    error_status,
    json_payload,
    parse_csv_predictions,
    parse_json_predictions,
    percentile,
    quality_bound,
    task_metric,
    within_quality,
)
from model_deploy.suite import SuiteContext

CONTRACT_ROWS = 5
QUALITY_BATCH = 100

RecordProperty = Callable[[str, Any], None]


def _json_outputs(endpoint: SuiteContext, body: str, rows: int) -> list[Output]:
    split = endpoint.split
    return parse_json_predictions(body, rows, split.task, split.class_count)


def test_json_request_returns_one_prediction_per_row(endpoint: SuiteContext) -> None:
    """The output shape of the package's task (binary, multiclass with K probabilities, regression)."""
    rows = endpoint.split.rows[:CONTRACT_ROWS]
    body = endpoint.invoke(json_payload(endpoint.split.feature_names, rows), "application/json", "application/json")
    _json_outputs(endpoint, body, len(rows))


def test_csv_request_agrees_with_json(endpoint: SuiteContext) -> None:
    split = endpoint.split
    rows = split.rows[:CONTRACT_ROWS]
    from_csv = parse_csv_predictions(
        endpoint.invoke(csv_payload(rows), "text/csv", "text/csv"), len(rows), split.task, split.class_count
    )
    from_json = _json_outputs(
        endpoint,
        endpoint.invoke(json_payload(split.feature_names, rows), "application/json", "application/json"),
        len(rows),
    )
    flat_csv = [v for output in from_csv for v in output]
    flat_json = [v for output in from_json for v in output]
    # CSV carries 10 significant digits; a regression's values are on the label's scale.
    assert flat_csv == pytest.approx(flat_json, rel=1e-8, abs=1e-6), (
        "CSV and JSON requests for the same rows must agree"
    )


@pytest.mark.parametrize(
    ("payload", "content_type"),
    [
        pytest.param("1.0,2.0,3.0\n", "text/csv", id="csv-with-too-few-columns"),
        pytest.param('{"instances": [{"no such feature": 1}]}', "application/json", id="json-with-unknown-feature"),
        pytest.param("not json", "application/json", id="invalid-json"),
        pytest.param("1,2,3", "application/x-unknown", id="unsupported-content-type"),
    ],
)
def test_malformed_payload_is_a_clear_client_error(endpoint: SuiteContext, payload: str, content_type: str) -> None:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        endpoint.invoke(payload, content_type, "application/json")
    status = error_status(caught.value.response)
    message = str(caught.value.response.get("OriginalMessage") or caught.value.response.get("Error", {}))
    assert 400 <= status < 500, f"expected a 4xx for a malformed request, found {status}: {message}"
    assert "expected" in message.lower(), f"expected the error to say what was expected, found {message!r}"


def test_quality_within_tolerance_of_the_registered_metric(
    endpoint: SuiteContext, record_property: RecordProperty
) -> None:
    rows = endpoint.split.rows[: endpoint.quality_rows]
    labels = endpoint.split.labels[: endpoint.quality_rows]
    outputs: list[Output] = []
    for start in range(0, len(rows), QUALITY_BATCH):
        batch = rows[start : start + QUALITY_BATCH]
        body = endpoint.invoke(
            json_payload(endpoint.split.feature_names, batch), "application/json", "application/json"
        )
        outputs.extend(_json_outputs(endpoint, body, len(batch)))
    measured = task_metric(endpoint.split.task, endpoint.metric, labels, outputs)
    bound, comparison = quality_bound(endpoint.metric, endpoint.registered_value, endpoint.tolerance)
    endpoint.measurements.update(
        {f"{endpoint.metric}": measured, f"registered_{endpoint.metric}": endpoint.registered_value, "rows": len(rows)}
    )
    record_property(f"{endpoint.metric}", round(measured, 6))
    record_property(f"registered_{endpoint.metric}", round(endpoint.registered_value, 6))
    record_property("tolerance", endpoint.tolerance)
    record_property("rows", len(rows))
    margin = (
        f"+ {endpoint.tolerance:.0%} (an error, relative)"
        if comparison == "at most"
        else f"- tolerance {endpoint.tolerance}"
    )
    assert within_quality(endpoint.metric, measured, endpoint.registered_value, endpoint.tolerance), (
        f"{endpoint.metric} through the endpoint is {measured:.4f} on {len(rows)} test rows; expected {comparison} "
        f"{bound:.4f} (registered {endpoint.registered_value:.4f} {margin})"
    )


def test_latency(endpoint: SuiteContext, record_property: RecordProperty) -> None:
    row = endpoint.split.rows[:1]
    payload = json_payload(endpoint.split.feature_names, row)
    timings_ms = []
    for _ in range(endpoint.latency_requests):
        started = endpoint.clock()
        endpoint.invoke(payload, "application/json", "application/json")
        timings_ms.append((endpoint.clock() - started) * 1000)
    p50, p95 = percentile(timings_ms, 50), percentile(timings_ms, 95)
    endpoint.measurements.update({"latency_p50_ms": p50, "latency_p95_ms": p95, "latency_requests": len(timings_ms)})
    record_property("latency_p50_ms", round(p50, 3))
    record_property("latency_p95_ms", round(p95, 3))
    record_property("latency_requests", len(timings_ms))
    if endpoint.latency_p95_max_ms is not None:
        assert p95 <= endpoint.latency_p95_max_ms, (
            f"p95 latency is {p95:.1f} ms over {len(timings_ms)} requests; expected at most "
            f"{endpoint.latency_p95_max_ms} ms (tests.latency_p95_max_ms)"
        )
