"""Model Monitor in the twin, its pure parts: capture records, the analysis, alarms, the clock."""

from __future__ import annotations

import base64
import io
import json
import random
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from mlops.local.monitoring import (
    MonitoringInputError,
    MonitoringSchedules,
    ScheduleError,
    alarm_value,
    analyse,
    capture_key,
    capture_record,
)
from model_build import data
from model_build.steps import baseline

WHEN = datetime(2026, 12, 1, 10, 17, 5, 123000, tzinfo=UTC)


@pytest.fixture(scope="module")
def baselined() -> tuple[list[str], list[list[str]], dict[str, Any], dict[str, Any]]:
    frame = pd.read_csv(io.BytesIO(data.dataset_csv_bytes())).drop(columns=[data.LABEL_COLUMN])
    stats = baseline.data_quality_statistics(frame)
    rows = [[str(v) for v in row] for row in frame.itertuples(index=False)]
    return list(frame.columns), rows, stats, baseline.data_quality_constraints(stats)


def _line(rows: list[list[str]], where: str = "s3://b/k line 1") -> tuple[str, str]:
    body = "\n".join(",".join(r) for r in rows).encode()
    record = capture_record(body, "text/csv", b'{"predictions": []}', "application/json", event_id="e", when=WHEN)
    return where, json.dumps(record)


def test_capture_record_and_key_follow_sagemakers_format() -> None:
    record = capture_record(b"1,2", "text/csv", b"\x00\xff", "application/x-npy", event_id="e1", when=WHEN)
    assert record == {
        "captureData": {
            "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT", "data": "1,2", "encoding": "CSV"},
            "endpointOutput": {
                "observedContentType": "application/x-npy",
                "mode": "OUTPUT",
                "data": base64.b64encode(b"\x00\xff").decode(),
                "encoding": "BASE64",
            },
        },
        "eventMetadata": {"eventId": "e1", "inferenceTime": "2026-12-01T10:17:05.123Z"},
        "eventVersion": "0",
    }
    key = capture_key("data-capture/ep", "ep", "AllTraffic", WHEN, "abc")
    assert key == "data-capture/ep/ep/AllTraffic/2026/12/01/10/17-05-123000-abc.jsonl"


def test_analysis_of_shifted_rows_reports_drift(baselined: Any) -> None:
    features, rows, stats, constraints = baselined
    index = features.index("mean area")
    sample = [rows[i] for i in random.Random(3).sample(range(len(rows)), 300)]  # noqa: S311 - ordered file: sample
    shifted = [[*r[:index], str(float(r[index]) * 2), *r[index + 1 :]] for r in sample]
    current, violations, metrics, count = analyse([_line(shifted)], stats, constraints)
    assert count == 300 and current["dataset"]["item_count"] == 300
    assert [(v["feature_name"], v["constraint_check_type"]) for v in violations] == [
        ("mean area", "baseline_drift_check")
    ]
    assert metrics["feature_baseline_drift_mean area"] > 0.5
    assert metrics["feature_non_null_mean area"] == 1.0
    _, unshifted, _, _ = analyse([_line(sample)], stats, constraints)
    assert unshifted == []


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "no captured data in the analysis window"),
        ([("s3://b/x.jsonl line 3", "{not json")], "x.jsonl line 3: not a SageMaker data capture record"),
        ([("s3://b/y line 1", '{"captureData": {}}')], "y line 1: not a SageMaker data capture record"),
    ],
)
def test_empty_or_malformed_captures_are_errors(baselined: Any, lines: list[tuple[str, str]], message: str) -> None:
    _, _, stats, constraints = baselined
    with pytest.raises(MonitoringInputError, match=message):
        analyse(lines, stats, constraints)


def test_rows_of_the_wrong_width_are_errors(baselined: Any) -> None:
    _, rows, stats, constraints = baselined
    with pytest.raises(MonitoringInputError, match="have 3 columns; expected 30"):
        analyse([_line([rows[0][:3]])], stats, constraints)


def test_metric_math_alarm_takes_the_max_of_its_metrics() -> None:
    values = {"feature_baseline_drift_a": 0.05, "feature_baseline_drift_b": 0.4}

    def metric(metric_id: str, name: str) -> dict[str, Any]:
        return {"Id": metric_id, "MetricStat": {"Metric": {"Namespace": "n", "MetricName": name, "Dimensions": []}}}

    alarm = SimpleNamespace(
        metric_data_queries=[
            metric("m0", "feature_baseline_drift_a"),
            metric("m1", "feature_baseline_drift_b"),
            metric("m2", "feature_baseline_drift_missing"),
            {"Id": "drift", "Expression": "MAX([m0,m1,m2])"},
        ]
    )
    assert alarm_value(alarm, lambda _ns, name, _dims: values.get(name)) == 0.4
    alarm.metric_data_queries[-1] = {"Id": "x", "Expression": "SUM([m0])"}
    with pytest.raises(ValueError, match="only MAX"):
        alarm_value(alarm, lambda _ns, name, _dims: values.get(name))


def test_the_clock_runs_each_schedule_once_per_hour_crossed() -> None:
    wall = [datetime(2026, 12, 1, 10, 30, tzinfo=UTC)]
    schedules = MonitoringSchedules(clock=lambda: wall[0])
    config = {
        "ScheduleConfig": {"ScheduleExpression": "cron(0 * ? * * *)"},
        "MonitoringJobDefinitionName": "jd",
        "MonitoringType": "DataQuality",
    }
    schedules.create("1", "r", {"MonitoringScheduleName": "s", "MonitoringScheduleConfig": config})
    due = schedules.advance(2)
    assert [when for _, when in due] == [datetime(2026, 12, 1, 11, tzinfo=UTC), datetime(2026, 12, 1, 12, tzinfo=UTC)]
    assert schedules.now() == wall[0] + timedelta(hours=2)
    with pytest.raises(ScheduleError, match="already exists"):
        schedules.create("1", "r", {"MonitoringScheduleName": "s", "MonitoringScheduleConfig": config})
    with pytest.raises(ScheduleError, match="hourly schedules only"):
        schedules.create(
            "1",
            "r",
            {
                "MonitoringScheduleName": "daily",
                "MonitoringScheduleConfig": {**config, "ScheduleConfig": {"ScheduleExpression": "cron(0 0 ? * * *)"}},
            },
        )
    with pytest.raises(ScheduleError, match="does not exist"):
        schedules.describe("1", "r", {"MonitoringScheduleName": "nope"})


def test_json_records_are_read_by_feature_name(baselined: Any) -> None:
    features, rows, stats, constraints = baselined
    sample = [rows[i] for i in random.Random(5).sample(range(len(rows)), 300)]  # noqa: S311 - ordered file: sample
    records = [dict(zip(features, (float(v) for v in row), strict=True)) for row in sample]
    records[0]["mean area"] = None  # the model imputes a null; the monitor counts it as missing
    body = json.dumps({"instances": list(reversed(records))}).encode()
    line = capture_record(body, "application/json", b"{}", "application/json", event_id="e", when=WHEN)
    current, violations, _, count = analyse([("s3://b/j line 1", json.dumps(line))], stats, constraints)
    area = next(f for f in current["features"] if f["name"] == "mean area")
    assert count == 300 and area["numerical_statistics"]["common"] == {"num_present": 299, "num_missing": 1}
    assert [v["constraint_check_type"] for v in violations] == ["completeness_check"]


def test_alarms_as_moto_stores_them_are_evaluated() -> None:
    from moto.cloudwatch.models import Dimension, Metric, MetricDataQuery, MetricStat

    dims = [Dimension("EndpointName", "ep"), Dimension("ScheduleName", "ep-data-quality")]
    queries = [
        MetricDataQuery(
            f"m{i}", "", "3600", "false", metric_stat=MetricStat(Metric(name, "ns", dims), "3600", "Maximum", "")
        )
        for i, name in enumerate(("feature_baseline_drift_a", "feature_baseline_drift_b"))
    ]
    queries.append(MetricDataQuery("drift", "largest", "3600", "true", expression="MAX([m0,m1])"))
    seen: list[tuple[str, str, list[dict[str, str]]]] = []

    def latest(namespace: str, name: str, dimensions: list[dict[str, str]]) -> float | None:
        seen.append((namespace, name, dimensions))
        return {"feature_baseline_drift_a": 0.3, "feature_baseline_drift_b": 0.2}[name]

    assert alarm_value(SimpleNamespace(metric_data_queries=queries), latest) == 0.3
    assert seen[0] == (
        "ns",
        "feature_baseline_drift_a",
        [{"Name": "EndpointName", "Value": "ep"}, {"Name": "ScheduleName", "Value": "ep-data-quality"}],
    )
