"""`mlops deploy rollback` verifies its target like a deploy (issue 19, item 3): a package rejected after it
was deployed is refused before anything changes, and the refusal names the newest deployable alternative."""

from __future__ import annotations

import pytest

from mlops.core.config import Config
from mlops.core.errors import PackageRefused
from model_deploy.deploy import Runtime, deployment_parameter, rollback, staging_pass_parameter
from model_deploy.package import PackageArn, StagingPass
from model_deploy.record_store import append_record, read_history, write_staging_pass
from model_deploy.records import DeploymentRecord
from tests.deploy.conftest import Accounts, register_package


def _record(stage: str, arn: str, version: int) -> DeploymentRecord:
    return DeploymentRecord(
        kind="deploy",
        stage=stage,
        endpoint_name=f"breast-cancer-{stage}",
        inference_type="realtime",
        endpoint_config=f"breast-cancer-{stage}-v{version}-0000000{version}",
        model_name=f"breast-cancer-v{version}-0000000{version}",
        package_arn=arn,
        package_version=version,
        git_commit="c" * 40,
        build_id="b",
        deployed_at=f"2026-11-2{version}T00:00:00+00:00",
    )


def _history(aws: Accounts, config: Config, stage: str, arns: list[str]) -> None:
    clients = aws.stage(stage)
    for version, arn in enumerate(arns, start=1):
        append_record(clients.ssm, deployment_parameter(config, stage), _record(stage, arn, version))


def _staging_pass(aws: Accounts, config: Config, arn: str) -> None:
    write_staging_pass(
        aws.automation.ssm,
        staging_pass_parameter(config, PackageArn.parse(arn)),
        StagingPass(package_arn=arn, passed_at="2026-11-22T00:00:00+00:00", endpoint_name="breast-cancer-staging"),
    )


def test_rollback_to_a_package_rejected_since_is_refused_naming_the_newest_deployable_one(
    aws: Accounts, local_config: Config
) -> None:
    v1, v2, v3 = (register_package(aws, local_config) for _ in range(3))
    _history(aws, local_config, "staging", [v1, v2, v3])
    aws.automation.sagemaker.update_model_package(ModelPackageArn=v2, ModelApprovalStatus="Rejected")
    before = len(read_history(aws.staging.ssm, deployment_parameter(local_config, "staging")))

    with pytest.raises(PackageRefused) as refused:
        rollback(local_config, "staging", automation=aws.automation, stage_clients=aws.staging, runtime=Runtime())

    message = str(refused.value)
    assert f"refusing to roll staging back to {v2}" in message and "is Rejected; expected Approved" in message
    assert f"--model-package-arn {v1}" in message and "version 1" in message
    # Nothing changed: no endpoint call, no new record.
    assert [c for c in aws.calls["staging"] if "Endpoint" in c] == []
    assert len(read_history(aws.staging.ssm, deployment_parameter(local_config, "staging"))) == before


def test_prod_rollback_needs_the_targets_staging_pass(aws: Accounts, local_config: Config) -> None:
    v1, v2, v3 = (register_package(aws, local_config) for _ in range(3))
    _history(aws, local_config, "prod", [v1, v2, v3])
    _staging_pass(aws, local_config, v1)  # v2, the target, has none (its record was removed, say)

    with pytest.raises(PackageRefused, match="has no staging-pass record") as refused:
        rollback(local_config, "prod", automation=aws.automation, stage_clients=aws.prod, runtime=Runtime())
    assert f"--model-package-arn {v1}" in str(refused.value)


def test_a_rollback_with_no_deployable_alternative_says_so(aws: Accounts, local_config: Config) -> None:
    v1, v2 = (register_package(aws, local_config) for _ in range(2))
    _history(aws, local_config, "staging", [v1, v2])
    aws.automation.sagemaker.update_model_package(ModelPackageArn=v1, ModelApprovalStatus="Rejected")
    with pytest.raises(PackageRefused, match="no earlier deployment of this endpoint passes") as refused:
        rollback(local_config, "staging", automation=aws.automation, stage_clients=aws.staging, runtime=Runtime())
    assert "mlops registry list" in str(refused.value)


def test_a_rollback_to_a_foreign_group_is_refused(aws: Accounts, local_config: Config) -> None:
    foreign = register_package(aws, local_config, group="someone-else")
    current = register_package(aws, local_config)
    _history(aws, local_config, "staging", [foreign, current])
    with pytest.raises(PackageRefused, match="belongs to group 'someone-else'"):
        rollback(local_config, "staging", automation=aws.automation, stage_clients=aws.staging, runtime=Runtime())
