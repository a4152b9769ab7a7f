"""Shared builders for the pure and Stubber tests: a verified package and a stage's desired state."""

from __future__ import annotations

from typing import Any

from mlops.core.config import Config
from model_deploy.deploy import record_fields, render_for
from model_deploy.desired import DesiredState
from model_deploy.package import PackageInfo

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.2-0"


def package(version: int = 1, model_data_url: str | None = None) -> PackageInfo:
    return PackageInfo.from_description(
        {
            "ModelPackageArn": f"arn:aws:sagemaker:us-east-1:000000000001:model-package/breast-cancer/{version}",
            "ModelPackageGroupName": "breast-cancer",
            "ModelPackageVersion": version,
            "ModelApprovalStatus": "Approved",
            "ModelPackageStatus": "Completed",
            "InferenceSpecification": {
                "Containers": [
                    {
                        "Image": IMAGE,
                        "ModelDataUrl": model_data_url or f"s3://artifacts/breast-cancer/main/b{version}/model.tar.gz",
                        "Environment": {"SAGEMAKER_PROGRAM": "inference.py"},
                    }
                ]
            },
            "CustomerMetadataProperties": {"git_commit": f"{version:040d}", "build_id": f"build-{version}"},
            "ModelMetrics": {
                "ModelQuality": {"Statistics": {"S3Uri": "s3://artifacts/b/evaluate/evaluation/evaluation.json"}}
            },
        }
    )


def desired(config: Config, stage: str, pkg: PackageInfo) -> DesiredState:
    return render_for(config, stage, pkg)


def fields(pkg: PackageInfo) -> dict[str, Any]:
    return record_fields(pkg)
