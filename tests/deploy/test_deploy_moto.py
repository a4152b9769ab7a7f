"""Verify, plan and create against moto: three accounts, the registry in automation, the endpoint in the stage."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlops.core.config import Config
from mlops.core.errors import PackageRefused
from model_deploy.deploy import Runtime, deploy, deployment_parameter, staging_pass_parameter
from model_deploy.package import PackageArn, StagingPass
from model_deploy.record_store import read_history, write_staging_pass
from tests.deploy.conftest import Accounts, register_package

NO_WAIT = Runtime(sleep=lambda _s: pytest.fail("moto endpoints are InService at once; nothing should wait"))


def test_approved_package_deploys_to_staging_only_and_again_is_an_empty_plan(
    aws: Accounts, local_config: Config, tmp_path: Path
) -> None:
    arn = register_package(aws, local_config)
    aws.calls["automation"].clear()
    plan_file = tmp_path / "plan.json"
    outcome = deploy(
        local_config,
        "staging",
        arn,
        automation=aws.automation,
        stage_clients=aws.staging,
        plan_out=plan_file,
        runtime=NO_WAIT,
    )
    kinds = [a.kind for a in outcome.plan.actions]
    assert kinds == ["put_alarm", "create_model", "create_endpoint_config", "create_endpoint", "write_record"]
    settings = local_config.deploy.staging
    described = aws.staging.sagemaker.describe_endpoint(EndpointName=settings.endpoint_name)
    assert described["EndpointStatus"] == "InService"
    assert described["EndpointConfigName"] == outcome.plan.endpoint_config_name
    model = aws.staging.sagemaker.describe_model(ModelName=outcome.plan.model_name)
    assert model["PrimaryContainer"]["ModelDataUrl"].endswith("/train/model.tar.gz")
    assert model["ExecutionRoleArn"] == "arn:aws:iam::000000000002:role/mlops-sagemaker-execution"
    # Nothing in the automation or prod account but the package's lifecycle stage: no hosting writes there.
    assert aws.writes("automation") == ["UpdateModelPackage"]
    lifecycle = aws.automation.sagemaker.describe_model_package(ModelPackageName=arn)["ModelLifeCycle"]
    assert (lifecycle["Stage"], lifecycle["StageStatus"]) == ("Staging", "Deployed")
    assert "breast-cancer-staging" in lifecycle["StageDescription"]
    assert aws.automation.sagemaker.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "Approved"
    assert aws.writes("prod") == []
    assert aws.automation.sagemaker.list_endpoints()["Endpoints"] == []
    assert aws.prod.sagemaker.list_endpoints()["Endpoints"] == []
    # The record names the package, its commit and the config, in the staging account.
    history = read_history(aws.staging.ssm, deployment_parameter(local_config, "staging"))
    assert [(r.package_arn, r.endpoint_config, r.git_commit[:7]) for r in history] == [
        (arn, outcome.plan.endpoint_config_name, "0123456")
    ]
    artifact = json.loads(plan_file.read_text())
    assert artifact["package_arn"] == arn and artifact["empty"] is False and artifact["dry_run"] is False
    assert [a["kind"] for a in artifact["actions"]] == kinds

    aws.calls["staging"].clear()
    again = deploy(local_config, "staging", arn, automation=aws.automation, stage_clients=aws.staging, runtime=NO_WAIT)
    assert again.plan.empty and again.applied is None
    assert aws.writes("staging") == []
    assert "nothing to do" in again.plan.describe()


def test_dry_run_plans_and_creates_nothing(aws: Accounts, local_config: Config, tmp_path: Path) -> None:
    arn = register_package(aws, local_config)
    outcome = deploy(
        local_config,
        "staging",
        arn,
        automation=aws.automation,
        stage_clients=aws.staging,
        dry_run=True,
        plan_out=tmp_path / "plan.json",
        runtime=NO_WAIT,
    )
    assert not outcome.plan.empty and outcome.applied is None
    assert aws.writes("staging") == []
    assert json.loads((tmp_path / "plan.json").read_text())["dry_run"] is True


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("pending", "is PendingManualApproval; expected Approved"),
        ("rejected", "is Rejected; expected Approved"),
        ("foreign-group", "belongs to group 'someone-else'; expected 'breast-cancer'"),
        ("unknown", "does not exist in the registry"),
        ("other-account", "is in account 999999999999; expected the automation account 000000000001"),
        ("not-an-arn", "expected a versioned model package ARN"),
    ],
)
def test_refused_packages_create_nothing(aws: Accounts, local_config: Config, case: str, message: str) -> None:
    if case == "pending":
        arn = register_package(aws, local_config, approval="PendingManualApproval")
    elif case == "rejected":
        arn = register_package(aws, local_config, approval="Rejected")
    elif case == "foreign-group":
        arn = register_package(aws, local_config, group="someone-else")
    elif case == "unknown":
        arn = "arn:aws:sagemaker:us-east-1:000000000001:model-package/breast-cancer/42"
    elif case == "other-account":
        arn = "arn:aws:sagemaker:us-east-1:999999999999:model-package/breast-cancer/1"
    else:
        arn = "breast-cancer/1"
    aws.calls["staging"].clear()
    with pytest.raises(PackageRefused, match=message):
        deploy(local_config, "staging", arn, automation=aws.automation, stage_clients=aws.staging, runtime=NO_WAIT)
    assert aws.calls["staging"] == []  # refused before the stage account was even read
    assert aws.staging.sagemaker.list_models()["Models"] == []


def test_prod_requires_a_staging_pass_for_the_same_package(aws: Accounts, local_config: Config) -> None:
    first = register_package(aws, local_config)
    second = register_package(aws, local_config)
    with pytest.raises(PackageRefused, match="no staging-pass record; prod requires"):
        deploy(local_config, "prod", second, automation=aws.automation, stage_clients=aws.prod, runtime=NO_WAIT)
    assert aws.calls["prod"] == []
    # A pass recorded for another package does not open prod for this one.
    parameter = staging_pass_parameter(local_config, PackageArn.parse(second))
    write_staging_pass(aws.automation.ssm, parameter, StagingPass(first, "2026-11-22T02:00:00+00:00", "x"))
    with pytest.raises(PackageRefused, match="the staging-pass record is for .*/1; expected .*/2"):
        deploy(local_config, "prod", second, automation=aws.automation, stage_clients=aws.prod, runtime=NO_WAIT)
    write_staging_pass(aws.automation.ssm, parameter, StagingPass(second, "2026-11-22T02:00:00+00:00", "x"))
    outcome = deploy(local_config, "prod", second, automation=aws.automation, stage_clients=aws.prod, runtime=NO_WAIT)
    kinds = [a.kind for a in outcome.plan.actions]
    assert kinds == [
        "put_alarm",
        "put_alarm",
        "create_model",
        "create_endpoint_config",
        "create_endpoint",
        "register_scaling",
        "write_record",
    ]
    target = aws.prod.autoscaling.describe_scalable_targets(ServiceNamespace="sagemaker")["ScalableTargets"]
    assert [(t["ResourceId"], t["MinCapacity"], t["MaxCapacity"]) for t in target] == [
        ("endpoint/breast-cancer/variant/AllTraffic", 2, 6)
    ]
    alarms = aws.prod.cloudwatch.describe_alarms()["MetricAlarms"]
    assert sorted(a["AlarmName"] for a in alarms) == ["breast-cancer-5xx-errors", "breast-cancer-model-latency-p99"]
    # Prod again: alarms, scaling, model, config and record all match: an empty plan.
    again = deploy(local_config, "prod", second, automation=aws.automation, stage_clients=aws.prod, runtime=NO_WAIT)
    assert again.plan.empty, again.plan.describe()
    # The package's lifecycle followed it: Prod now (the build set Registered, the staging deploy Staging).
    lifecycle = aws.automation.sagemaker.describe_model_package(ModelPackageName=second)["ModelLifeCycle"]
    assert (lifecycle["Stage"], lifecycle["StageStatus"]) == ("Prod", "Deployed")
