"""Model Monitor in the twin: data capture files, monitoring schedules and their executions, drift alarms.

What SageMaker does and the twin reproduces, in the formats AWS documents:

- **Data capture.** An endpoint whose config enables capture writes, for the sampled share of its
  requests, one JSON Lines record per request to
  `<DestinationS3Uri>/<endpoint>/<variant>/<yyyy>/<mm>/<dd>/<hh>/<file>.jsonl`:
  `{"captureData": {"endpointInput": {"observedContentType", "mode": "INPUT", "data", "encoding"},
  "endpointOutput": {...,"mode": "OUTPUT"}}, "eventMetadata": {"eventId", "inferenceTime"},
  "eventVersion": "0"}` (encoding CSV, JSON or BASE64).
- **Monitoring schedules.** CreateMonitoringSchedule/Describe/Update/Delete/List and
  ListMonitoringExecutions for data-quality schedules (moto has none). An execution runs when the
  twin's clock passes the next hour of an hourly schedule: `POST /_twin/monitoring/run` advances the
  clock (tests and `mlops demo --drift` drive it; nothing runs by itself in the background). It
  analyses the captures of the hour before its scheduled time, as Model Monitor does.
- **The analysis** is Model Monitor's built-in data-quality check (model_build/steps/baseline.py):
  statistics of the captured inputs, and violations against the baseline's constraints. It writes
  `statistics.json` and `constraint_violations.json` to
  `<output S3Uri>/<schedule>/<yyyy>/<mm>/<dd>/<hh>/`, and publishes the per-feature metrics
  `feature_baseline_drift_<feature>` and `feature_non_null_<feature>` in the namespace
  `/aws/sagemaker/Endpoints/data-metric` (dimensions `EndpointName`, `ScheduleName`). No captured
  data, or captured data that cannot be read, fails the execution with the reason: it never passes.
- **Alarms** on those metrics are evaluated after each execution (moto never evaluates alarms): the
  latest datapoint of each metric, metric math limited to `MAX([...])`/`MIN([...])` of metrics. A
  transition into ALARM emits CloudWatch's `CloudWatch Alarm State Change` event on the account's
  default bus, where the stage's rule forwards it to the automation account (the retrain route).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

log = logging.getLogger(__name__)

DATA_METRIC_NAMESPACE = "/aws/sagemaker/Endpoints/data-metric"
ALARM_EVENT_SOURCE = "aws.cloudwatch"
ALARM_EVENT_DETAIL_TYPE = "CloudWatch Alarm State Change"
_HOURLY = re.compile(r"^cron\(0 \* \? \* \* \*\)$")
_MAX_MIN = re.compile(r"^\s*(MAX|MIN)\s*\(\s*\[([^\]]*)\]\s*\)\s*$")


class MonitoringInputError(ValueError):
    """The captured data cannot be analysed: none in the window, or records that cannot be read."""


# ------------------------------------------------------------------------------------------ capture


def _encoded(payload: bytes, content_type: str) -> tuple[str, str]:
    kind = (content_type or "").split(";")[0].strip().lower()
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return base64.b64encode(payload).decode("ascii"), "BASE64"
    if kind == "text/csv":
        return text, "CSV"
    if kind == "application/json":
        return text, "JSON"
    return base64.b64encode(payload).decode("ascii"), "BASE64"


def capture_record(
    request: bytes, content_type: str, response: bytes, response_type: str, *, event_id: str, when: datetime
) -> dict[str, Any]:
    """One line of a data capture file, as SageMaker writes it."""
    input_data, input_encoding = _encoded(request, content_type)
    output_data, output_encoding = _encoded(response, response_type)
    return {
        "captureData": {
            "endpointInput": {
                "observedContentType": content_type,
                "mode": "INPUT",
                "data": input_data,
                "encoding": input_encoding,
            },
            "endpointOutput": {
                "observedContentType": response_type,
                "mode": "OUTPUT",
                "data": output_data,
                "encoding": output_encoding,
            },
        },
        "eventMetadata": {
            "eventId": event_id,
            "inferenceTime": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
        },
        "eventVersion": "0",
    }


def capture_key(prefix: str, endpoint: str, variant: str, when: datetime, file_id: str) -> str:
    stamp = when.astimezone(UTC)
    return f"{prefix.strip('/')}/{endpoint}/{variant}/{stamp:%Y/%m/%d/%H}/{stamp:%M-%S-%f}-{file_id}.jsonl".lstrip("/")


def split_s3(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        bucket = uri.removeprefix("s3://")
        return bucket, ""
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


class CaptureSampler:
    """SageMaker captures `InitialSamplingPercentage` of requests; the twin picks them deterministically."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def take(self, endpoint: str, percentage: float) -> bool:
        with self._lock:
            count = self._counts.get(endpoint, 0)
            self._counts[endpoint] = count + 1
        return (count % 100) < percentage


# ------------------------------------------------------------------------------------------ analysis


def _cell(value: Any) -> str:
    return "" if value is None else str(value)


def _rows_from_payload(data: str, encoding: str, where: str, features: list[str]) -> list[list[str]]:
    """Rows of feature values in the baseline's order. CSV: by position (it has no header); JSON: the
    model's contract, `{"instances": [...]}` of lists (by position) or records (by feature name)."""
    if encoding == "BASE64":
        data = base64.b64decode(data).decode("utf-8")
        encoding = "CSV"
    if encoding == "CSV":
        return [row for row in csv.reader(io.StringIO(data)) if row]
    if encoding == "JSON":
        document = json.loads(data)
        instances = document.get("instances") if isinstance(document, dict) else document
        if not isinstance(instances, list):
            raise MonitoringInputError(
                f"{where}: expected JSON with an 'instances' list, found {type(document).__name__}"
            )
        rows = []
        for instance in instances:
            if isinstance(instance, dict):
                rows.append([_cell(instance.get(name)) for name in features])
            elif isinstance(instance, list):
                rows.append([_cell(v) for v in instance])
            else:
                raise MonitoringInputError(f"{where}: expected each instance to be a list or a record")
        return rows
    raise MonitoringInputError(f"{where}: unknown capture encoding {encoding!r}; expected CSV, JSON or BASE64")


def captured_rows(lines: list[tuple[str, str]], features: list[str]) -> list[list[str]]:
    """The request rows of captured records; `lines` is (where, JSON line). Raises on unreadable records."""
    rows: list[list[str]] = []
    for where, line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            captured = record["captureData"]["endpointInput"]
            payload = _rows_from_payload(str(captured["data"]), str(captured.get("encoding", "CSV")), where, features)
        except (ValueError, KeyError, TypeError) as exc:
            raise MonitoringInputError(f"{where}: not a SageMaker data capture record ({exc})") from exc
        rows.extend(payload)
    return rows


def frame_for(rows: list[list[str]], features: list[str]) -> Any:
    """Captured CSV has no header: its columns are the baseline's features, by position."""
    import pandas as pd

    wrong = [len(r) for r in rows if len(r) != len(features)]
    if wrong:
        raise MonitoringInputError(
            f"{len(wrong)} captured row(s) have {wrong[0]} columns; expected {len(features)} (the baseline's features)"
        )
    frame = pd.DataFrame(rows, columns=features)
    return frame.apply(pd.to_numeric, errors="coerce").where(frame.apply(lambda c: c.str.strip() != ""), None)


@dataclass
class ExecutionResult:
    status: str  # Completed | CompletedWithViolations | Failed
    scheduled_time: datetime
    report_uri: str | None = None
    failure_reason: str | None = None
    violations: list[dict[str, str]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    rows: int = 0


def analyse(
    lines: list[tuple[str, str]], statistics: dict[str, Any], constraints: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, str]], dict[str, float], int]:
    """(statistics, violations, metrics, rows) of captured data against a data-quality baseline."""
    from model_build.steps import baseline

    if not lines:
        raise MonitoringInputError("no captured data in the analysis window: the endpoint received no sampled traffic")
    features = [f["name"] for f in constraints.get("features", [])]
    if not features:
        raise MonitoringInputError(
            "the baseline constraints list no features: expected Model Monitor's constraints.json"
        )
    rows = captured_rows(lines, features)
    if not rows:
        raise MonitoringInputError("the captured records hold no request rows")
    frame = frame_for(rows, features)
    try:
        current, violations, distances = baseline.check_data_quality(frame, statistics, constraints)
    except baseline.BaselineError as exc:
        raise MonitoringInputError(str(exc)) from exc
    metrics: dict[str, float] = {}
    for feature in current["features"]:
        name = feature["name"]
        section = feature.get("numerical_statistics") or feature.get("string_statistics") or {}
        common = section.get("common", {})
        present = float(common.get("num_present", 0))
        metrics[f"feature_non_null_{name}"] = present / max(len(frame), 1)
        if name in distances:
            metrics[f"feature_baseline_drift_{name}"] = distances[name]
    return current, violations, metrics, len(frame)


# ------------------------------------------------------------------------------------------ alarms


def _compare(value: float, operator: str, threshold: float) -> bool:
    return {
        "GreaterThanThreshold": value > threshold,
        "GreaterThanOrEqualToThreshold": value >= threshold,
        "LessThanThreshold": value < threshold,
        "LessThanOrEqualToThreshold": value <= threshold,
    }.get(operator, False)


def _query(query: Any) -> tuple[str, str | None, tuple[str, str, list[dict[str, str]]] | None]:
    """(id, expression, (namespace, metric, dimensions)) of a metric data query: PutMetricAlarm's request
    form (dicts) or moto's stored objects (MetricDataQuery > MetricStat > Metric > Dimension)."""
    if isinstance(query, dict):
        stat = query.get("MetricStat")
        metric = (stat or {}).get("Metric")
        spec = (metric["Namespace"], metric["MetricName"], list(metric.get("Dimensions", []))) if metric else None
        return str(query["Id"]), query.get("Expression"), spec
    stat = query.metric_stat
    spec = None
    if stat is not None:
        metric = stat.metric
        dims = [{"Name": d.name, "Value": d.value} for d in metric.dimensions]
        spec = (metric.namespace, metric.metric_name, dims)
    return str(query.id), query.expression, spec


def alarm_value(alarm: Any, latest: Callable[[str, str, list[dict[str, str]]], float | None]) -> float | None:
    """The alarm's current value from the latest datapoints; None when it has no data."""
    queries = list(getattr(alarm, "metric_data_queries", None) or [])
    if not queries:
        dims = [{"Name": d.name, "Value": d.value} for d in alarm.dimensions]
        return latest(alarm.namespace, alarm.metric_name, dims)
    values: dict[str, float | None] = {}
    expression = None
    for query in queries:
        query_id, expr, spec = _query(query)
        if expr:
            expression = expr
        elif spec is not None:
            values[query_id] = latest(*spec)
    if expression is None:
        present = [v for v in values.values() if v is not None]
        return present[0] if present else None
    match = _MAX_MIN.match(expression)
    if not match:
        raise ValueError(f"the twin evaluates only MAX([..]) and MIN([..]) metric math, found {expression!r}")
    ids = [i.strip() for i in match.group(2).split(",") if i.strip()]
    present = [v for i in ids if (v := values.get(i)) is not None]
    if not present:
        return None
    return max(present) if match.group(1) == "MAX" else min(present)


def alarm_event(alarm: Any, account: str, region: str, previous: str, reason: str, when: datetime) -> dict[str, Any]:
    """A PutEvents entry of CloudWatch's alarm state change (source aws.cloudwatch), as AWS documents it."""
    stamp = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000"
    detail = {
        "alarmName": alarm.name,
        "state": {"value": "ALARM", "reason": reason, "timestamp": stamp},
        "previousState": {"value": previous, "reason": alarm.state_reason, "timestamp": stamp},
        "configuration": {"description": alarm.description or ""},
    }
    return {
        "Source": ALARM_EVENT_SOURCE,
        "DetailType": ALARM_EVENT_DETAIL_TYPE,
        "Resources": [alarm.alarm_arn],
        "Detail": json.dumps(detail),
        "EventBusName": "default",
    }


# ------------------------------------------------------------------------------------------ schedules


@dataclass
class Schedule:
    name: str
    arn: str
    account: str
    region: str
    config: dict[str, Any]
    created: datetime
    status: str = "Scheduled"
    executions: list[dict[str, Any]] = field(default_factory=list)

    @property
    def job_definition_name(self) -> str:
        return str(self.config.get("MonitoringJobDefinitionName", ""))

    def describe(self) -> dict[str, Any]:
        answer: dict[str, Any] = {
            "MonitoringScheduleArn": self.arn,
            "MonitoringScheduleName": self.name,
            "MonitoringScheduleStatus": self.status,
            "MonitoringType": self.config.get("MonitoringType", "DataQuality"),
            "CreationTime": self.created.timestamp(),
            "LastModifiedTime": self.created.timestamp(),
            "MonitoringScheduleConfig": self.config,
        }
        if self.executions:
            answer["LastMonitoringExecutionSummary"] = self.executions[-1]
        return answer


class ScheduleError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class MonitoringSchedules:
    """The twin's monitoring schedules, per account and region, and the clock their executions run on."""

    def __init__(self, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._schedules: dict[tuple[str, str, str], Schedule] = {}
        self._lock = threading.Lock()
        self._clock = clock
        self._offset = timedelta(0)

    def now(self) -> datetime:
        """The twin's clock: wall time plus every hour `advance` moved it (captures are stamped with it)."""
        return self._clock() + self._offset

    # API ------------------------------------------------------------------------------------------

    def create(self, account: str, region: str, request: dict[str, Any]) -> dict[str, Any]:
        name = str(request.get("MonitoringScheduleName", ""))
        config = dict(request.get("MonitoringScheduleConfig") or {})
        self._check_config(config)
        key = (account, region, name)
        with self._lock:
            if key in self._schedules:
                raise ScheduleError(400, "ResourceInUse", f"Monitoring schedule {name} already exists.")
            arn = f"arn:aws:sagemaker:{region}:{account}:monitoring-schedule/{name.lower()}"
            self._schedules[key] = Schedule(name, arn, account, region, config, self.now())
        return {"MonitoringScheduleArn": arn}

    def update(self, account: str, region: str, request: dict[str, Any]) -> dict[str, Any]:
        schedule = self.get(account, region, str(request.get("MonitoringScheduleName", "")))
        config = dict(request.get("MonitoringScheduleConfig") or {})
        self._check_config(config)
        schedule.config = config
        return {"MonitoringScheduleArn": schedule.arn}

    def delete(self, account: str, region: str, request: dict[str, Any]) -> dict[str, Any]:
        name = str(request.get("MonitoringScheduleName", ""))
        self.get(account, region, name)
        with self._lock:
            del self._schedules[(account, region, name)]
        return {}

    def describe(self, account: str, region: str, request: dict[str, Any]) -> dict[str, Any]:
        return self.get(account, region, str(request.get("MonitoringScheduleName", ""))).describe()

    def list_schedules(self, account: str, region: str, request: dict[str, Any]) -> dict[str, Any]:
        endpoint = request.get("EndpointName")
        summaries = []
        for (acc, reg, _), schedule in sorted(self._schedules.items()):
            if (acc, reg) != (account, region):
                continue
            summary = {
                "MonitoringScheduleName": schedule.name,
                "MonitoringScheduleArn": schedule.arn,
                "CreationTime": schedule.created.timestamp(),
                "LastModifiedTime": schedule.created.timestamp(),
                "MonitoringScheduleStatus": schedule.status,
                "MonitoringJobDefinitionName": schedule.job_definition_name,
                "MonitoringType": schedule.config.get("MonitoringType", "DataQuality"),
            }
            if endpoint is None or endpoint in schedule.name:
                summaries.append(summary)
        return {"MonitoringScheduleSummaries": summaries}

    def list_executions(self, account: str, region: str, request: dict[str, Any]) -> dict[str, Any]:
        name = request.get("MonitoringScheduleName")
        found = []
        for (acc, reg, schedule_name), schedule in sorted(self._schedules.items()):
            if (acc, reg) == (account, region) and name in (None, schedule_name):
                found.extend(schedule.executions)
        descending = request.get("SortOrder", "Descending") == "Descending"
        found.sort(key=lambda e: e["ScheduledTime"], reverse=descending)
        return {"MonitoringExecutionSummaries": found}

    def get(self, account: str, region: str, name: str) -> Schedule:
        schedule = self._schedules.get((account, region, name))
        if schedule is None:
            raise ScheduleError(400, "ResourceNotFound", f"Monitoring schedule {name} does not exist.")
        return schedule

    def schedules(self) -> list[Schedule]:
        return list(self._schedules.values())

    @staticmethod
    def _check_config(config: dict[str, Any]) -> None:
        expression = str((config.get("ScheduleConfig") or {}).get("ScheduleExpression", ""))
        if not _HOURLY.match(expression):
            # The twin's clock advances in hours; other schedules are valid in SageMaker but not run here.
            raise ScheduleError(
                400,
                "ValidationException",
                f"the twin runs hourly schedules only (cron(0 * ? * * *)), found {expression!r}",
            )
        if config.get("MonitoringType", "DataQuality") != "DataQuality":
            raise ScheduleError(400, "ValidationException", "the twin runs DataQuality schedules only")
        if not config.get("MonitoringJobDefinitionName"):
            raise ScheduleError(400, "ValidationException", "MonitoringJobDefinitionName is required in the twin")

    # the clock ------------------------------------------------------------------------------------

    def advance(self, hours: int) -> list[tuple[Schedule, datetime]]:
        """Move the clock `hours` forward; each hourly boundary crossed makes every schedule due once.

        Returns the (schedule, scheduled time) pairs, oldest first; each analyses the hour before it.
        """
        start = self.now()
        with self._lock:
            self._offset += timedelta(hours=hours)
        end = self.now()
        boundary = start.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        due: list[tuple[Schedule, datetime]] = []
        while boundary <= end:
            due.extend((s, boundary) for s in self.schedules() if s.status == "Scheduled" and s.created < boundary)
            boundary += timedelta(hours=1)
        return due

    @staticmethod
    def record(schedule: Schedule, result: ExecutionResult, job_definition_name: str, endpoint: str) -> dict[str, Any]:
        summary: dict[str, Any] = {
            "MonitoringScheduleName": schedule.name,
            "ScheduledTime": result.scheduled_time.timestamp(),
            "CreationTime": result.scheduled_time.timestamp(),
            "LastModifiedTime": result.scheduled_time.timestamp(),
            "MonitoringExecutionStatus": result.status,
            "ProcessingJobArn": f"arn:aws:sagemaker:{schedule.region}:{schedule.account}:processing-job/"
            f"model-monitoring-{result.scheduled_time:%Y%m%d%H}-{uuid.uuid4().hex[:8]}",
            "EndpointName": endpoint,
            "MonitoringJobDefinitionName": job_definition_name,
            "MonitoringType": "DataQuality",
        }
        if result.failure_reason:
            summary["FailureReason"] = result.failure_reason[:1024]
        schedule.executions.append(summary)
        return summary


# ------------------------------------------------------------------------------------------ executions


class MonitoringRunner:
    """Runs due executions as SageMaker does: as the job definition's role, then evaluates the alarms.

    `role_clients(account, role_arn)` returns (s3, cloudwatch) clients of a session of the monitoring
    role assumed by sagemaker.amazonaws.com, so the twin's IAM checks what the role may read and write.
    """

    def __init__(
        self,
        schedules: MonitoringSchedules,
        *,
        role_clients: Callable[[str, str], tuple[Any, Any]],
    ) -> None:
        self.schedules = schedules
        self.role_clients = role_clients

    def run_due(self, hours: int) -> list[dict[str, Any]]:
        summaries = []
        for schedule, scheduled in self.schedules.advance(hours):
            summaries.append(self.run(schedule, scheduled))
        return summaries

    def run(self, schedule: Schedule, scheduled: datetime) -> dict[str, Any]:
        from moto.sagemaker.models import sagemaker_backends

        backend = sagemaker_backends[schedule.account][schedule.region]
        name = schedule.job_definition_name
        endpoint = ""
        try:
            definition = backend.describe_data_quality_job_definition(name)
            endpoint = str(definition["DataQualityJobInput"]["EndpointInput"]["EndpointName"])
            result = self._execute(schedule, definition, endpoint, scheduled)
        except MonitoringInputError as exc:
            result = ExecutionResult("Failed", scheduled, failure_reason=str(exc))
        except Exception as exc:  # any other failure of the job is the execution's failure, with its reason
            log.warning("monitoring execution of %s failed: %s", schedule.name, exc)
            result = ExecutionResult("Failed", scheduled, failure_reason=f"{type(exc).__name__}: {exc}")
        summary = MonitoringSchedules.record(schedule, result, name, endpoint)
        if result.status != "Failed":
            self._evaluate_alarms(schedule, endpoint, scheduled)
        return {**summary, "Violations": result.violations, "ReportUri": result.report_uri, "Rows": result.rows}

    def _execute(
        self, schedule: Schedule, definition: dict[str, Any], endpoint: str, scheduled: datetime
    ) -> ExecutionResult:
        from moto.sagemaker.models import sagemaker_backends

        s3, cloudwatch = self.role_clients(schedule.account, str(definition["RoleArn"]))
        baseline = definition.get("DataQualityBaselineConfig") or {}
        statistics_uri = (baseline.get("StatisticsResource") or {}).get("S3Uri")
        constraints_uri = (baseline.get("ConstraintsResource") or {}).get("S3Uri")
        if not statistics_uri or not constraints_uri:
            raise MonitoringInputError(
                f"job definition {schedule.job_definition_name} has no DataQualityBaselineConfig: "
                "nothing to check against"
            )
        statistics = json.loads(_get(s3, statistics_uri))
        constraints = json.loads(_get(s3, constraints_uri))
        config_name = sagemaker_backends[schedule.account][schedule.region].endpoints[endpoint].endpoint_config_name
        config = sagemaker_backends[schedule.account][schedule.region].endpoint_configs[config_name]
        capture = getattr(config, "data_capture_config", None) or {}
        destination = str(capture.get("DestinationS3Uri", ""))
        if not capture.get("EnableCapture") or not destination:
            raise MonitoringInputError(f"endpoint {endpoint} does not capture data: enable DataCaptureConfig")
        lines = _captures(s3, destination, endpoint, scheduled - timedelta(hours=1), scheduled)
        current, violations, metrics, rows = analyse(lines, statistics, constraints)
        output_config = definition["DataQualityJobOutputConfig"]
        output = output_config["MonitoringOutputs"][0]["S3Output"]["S3Uri"]
        report = f"{str(output).rstrip('/')}/{schedule.name}/{scheduled:%Y/%m/%d/%H}"
        bucket, key = split_s3(report)
        # As a processing job uploads its outputs: SSE-KMS with the output config's key, when it names one.
        encryption = (
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": str(output_config["KmsKeyId"])}
            if output_config.get("KmsKeyId")
            else {}
        )
        s3.put_object(
            Bucket=bucket, Key=f"{key}/statistics.json", Body=json.dumps(current, indent=2).encode(), **encryption
        )
        s3.put_object(
            Bucket=bucket,
            Key=f"{key}/constraint_violations.json",
            Body=json.dumps({"violations": violations}, indent=2).encode(),
            **encryption,
        )
        dimensions = [{"Name": "EndpointName", "Value": endpoint}, {"Name": "ScheduleName", "Value": schedule.name}]
        data = [
            {"MetricName": metric, "Value": value, "Dimensions": dimensions, "Timestamp": scheduled}
            for metric, value in sorted(metrics.items())
        ]
        for start in range(0, len(data), 1000):
            cloudwatch.put_metric_data(Namespace=DATA_METRIC_NAMESPACE, MetricData=data[start : start + 1000])
        status = "CompletedWithViolations" if violations else "Completed"
        return ExecutionResult(status, scheduled, report_uri=report, violations=violations, metrics=metrics, rows=rows)

    def _evaluate_alarms(self, schedule: Schedule, endpoint: str, now: datetime) -> None:
        from moto.cloudwatch.models import cloudwatch_backends
        from moto.events.models import events_backends

        backend = cloudwatch_backends[schedule.account][schedule.region]
        wanted = {("EndpointName", endpoint), ("ScheduleName", schedule.name)}

        def latest(namespace: str, metric: str, dimensions: list[dict[str, str]]) -> float | None:
            if namespace != DATA_METRIC_NAMESPACE or {(d["Name"], d["Value"]) for d in dimensions} != wanted:
                return None
            points = [
                d
                for d in backend.metric_data
                if d.namespace == namespace and d.name == metric and {(x.name, x.value) for x in d.dimensions} == wanted
            ]
            if not points:
                return None
            newest: Any = max(points, key=lambda d: d.timestamp)  # a MetricDatum: put with a single value
            return float(newest.value)

        for alarm in list(backend.alarms.values()):
            try:
                value = alarm_value(alarm, latest)
            except ValueError as exc:
                log.warning("alarm %s not evaluated: %s", alarm.name, exc)
                continue
            if value is None:
                continue
            breaching = _compare(value, alarm.comparison_operator, float(alarm.threshold))
            state = "ALARM" if breaching else "OK"
            previous = alarm.state_value
            if state == previous:
                continue
            verb = "" if breaching else "not "
            reason = (
                f"Threshold Crossed: 1 datapoint [{value:.4f}] was {verb}{alarm.comparison_operator} {alarm.threshold}"
            )
            backend.set_alarm_state(alarm.name, reason, json.dumps({"value": value}), state)
            if state == "ALARM":
                entry = alarm_event(alarm, schedule.account, schedule.region, previous, reason, now)
                events_backends[schedule.account][schedule.region].put_events([entry])


def _get(s3: Any, uri: str) -> bytes:
    bucket, key = split_s3(uri)
    body: bytes = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return body


def _captures(s3: Any, destination: str, endpoint: str, start: datetime, end: datetime) -> list[tuple[str, str]]:
    """The capture lines written in [start, end): SageMaker's hourly prefixes under the endpoint."""
    bucket, prefix = split_s3(destination)
    lines: list[tuple[str, str]] = []
    hour = start
    while hour < end:
        hour_prefix = f"{prefix.strip('/')}/{endpoint}/".lstrip("/")
        paginator = s3.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=bucket, Prefix=hour_prefix):
            for item in page.get("Contents", []):
                key = str(item["Key"])
                parts = key[len(hour_prefix) :].split("/")
                # <variant>/<yyyy>/<mm>/<dd>/<hh>/<file>
                if len(parts) != 6 or "/".join(parts[1:5]) != f"{hour:%Y/%m/%d/%H}":
                    continue
                text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8", "replace")
                lines.extend((f"s3://{bucket}/{key} line {n}", line) for n, line in enumerate(text.splitlines(), 1))
        hour += timedelta(hours=1)
    return lines
