"""The deploy's day-2 parts: the drift alarm on Model Monitor's metrics, the baseline and the KMS key wiring."""

from __future__ import annotations

import shutil
from pathlib import Path

import botocore.session
import pytest
from botocore.validate import ParamValidator

from mlops.core.config import load_config
from mlops.core.errors import ConfigError
from model_deploy.desired import DATA_METRIC_NAMESPACE, render_drift_alarm
from model_deploy.package import PackageInfo
from tests.deploy.helpers import desired, package

REPO_ROOT = Path(__file__).resolve().parents[2]
STATS = "s3://artifacts/breast-cancer/main/b1/preprocess/baseline/statistics.json"
CONSTRAINTS = "s3://artifacts/breast-cancer/main/b1/preprocess/baseline/constraints.json"


def _prod() -> tuple[object, PackageInfo]:
    config = load_config(REPO_ROOT / "mlops.yaml", profile="local", environ={})
    base = package()
    with_baseline = PackageInfo(**{**base.__dict__, "data_quality_baseline": (STATS, CONSTRAINTS)})
    return config, with_baseline


def test_prod_gets_a_drift_alarm_a_baselined_schedule_and_encrypted_outputs() -> None:
    config, pkg = _prod()
    state = desired(config, "prod", pkg)  # type: ignore[arg-type]
    [drift] = [a for a in state.alarms if a["AlarmName"] == "breast-cancer-data-drift"]
    metrics = [m for m in drift["Metrics"] if "MetricStat" in m]
    assert len(metrics) == 9 and drift["Metrics"][-1]["Expression"] == "MAX([m0,m1,m2,m3,m4,m5,m6,m7,m8])"
    first = metrics[0]["MetricStat"]["Metric"]
    assert first == {
        "Namespace": DATA_METRIC_NAMESPACE,
        "MetricName": "feature_baseline_drift_mean radius",
        "Dimensions": [
            {"Name": "EndpointName", "Value": "breast-cancer"},
            {"Name": "ScheduleName", "Value": "breast-cancer-data-quality"},
        ],
    }
    assert (drift["Threshold"], drift["ComparisonOperator"]) == (0.1, "GreaterThanThreshold")
    assert drift["TreatMissingData"] == "notBreaching"
    # Not a rollback alarm: a deployment must not roll back because the data drifted.
    rollback = state.deployment_config["AutoRollbackConfiguration"]["Alarms"]  # type: ignore[index]
    assert {"AlarmName": "breast-cancer-data-drift"} not in rollback
    # The request is valid for PutMetricAlarm as botocore's model defines it.
    model = botocore.session.get_session().get_service_model("cloudwatch")
    report = ParamValidator().validate(drift, model.operation_model("PutMetricAlarm").input_shape)
    assert not report.has_errors(), report.generate_report()
    assert state.monitor is not None
    job = state.monitor.job_definition
    assert job["DataQualityBaselineConfig"] == {
        "ConstraintsResource": {"S3Uri": CONSTRAINTS},
        "StatisticsResource": {"S3Uri": STATS},
    }
    # The stage bucket refuses uploads without SSE-KMS: capture and reports name the stage key.
    assert job["DataQualityJobOutputConfig"]["KmsKeyId"] == "alias/mlops-prod"
    assert state.endpoint_config["DataCaptureConfig"]["KmsKeyId"] == "alias/mlops-prod"  # type: ignore[index]


def test_no_monitor_no_drift_alarm() -> None:
    config = load_config(
        REPO_ROOT / "mlops.yaml", profile="local", environ={"MLOPS__DEPLOY__PROD__MONITOR__ENABLED": "false"}
    )
    assert render_drift_alarm(config.deploy.prod) is None
    assert all(a["AlarmName"] != "breast-cancer-data-drift" for a in desired(config, "prod", package()).alarms)


def test_a_drift_alarm_of_more_than_nine_features_is_refused_at_load(tmp_path: Path) -> None:
    # The drift features come from the use case (monitor.drift_features); a metric-math alarm holds nine.
    shutil.copytree(REPO_ROOT / "model_build/use_cases", tmp_path / "use_cases")
    use_case = tmp_path / "use_cases/breast-cancer/use_case.yaml"
    use_case.write_text(
        use_case.read_text().replace("worst concave points]", "worst concave points, mean symmetry]", 1)
    )
    config = tmp_path / "mlops.yaml"
    config.write_text((REPO_ROOT / "mlops.yaml").read_text())
    refused = r"use case 'breast-cancer' .*monitor.drift_features: found .*at most 9 items"
    with pytest.raises(ConfigError, match=refused):
        load_config(config, environ={"MLOPS__USE_CASES__PATH": str(tmp_path / "use_cases")})
