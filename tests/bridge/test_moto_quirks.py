"""moto behaviour the bridge tests depend on or work around; these fail when moto changes."""

from __future__ import annotations

import boto3
from moto import mock_aws


def test_moto_update_model_package_resets_fields_the_request_does_not_carry() -> None:
    # Why mlops.local.moto_registry exists: SageMaker keeps the approval and merges the metadata.
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name="us-east-1")
        sagemaker.create_model_package_group(ModelPackageGroupName="g")
        arn = sagemaker.create_model_package(
            ModelPackageGroupName="g",
            ModelApprovalStatus="Approved",
            InferenceSpecification={
                "Containers": [{"Image": "i"}],
                "SupportedContentTypes": ["text/csv"],
                "SupportedResponseMIMETypes": ["text/csv"],
            },
            CustomerMetadataProperties={"kept": "no"},
        )["ModelPackageArn"]
        sagemaker.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"new": "1"})
        described = sagemaker.describe_model_package(ModelPackageName=arn)
    assert described.get("ModelApprovalStatus") is None
    assert described["CustomerMetadataProperties"] == {"new": "1"}


_SPEC = {
    "Containers": [{"Image": "i"}],
    "SupportedContentTypes": ["text/csv"],
    "SupportedResponseMIMETypes": ["text/csv"],
}


def test_moto_drops_model_card_and_life_cycle_and_the_patch_keeps_them() -> None:
    """botocore's CreateModelPackage/UpdateModelPackage carry ModelCard and ModelLifeCycle and
    DescribeModelPackage returns them; moto 5.2.5 drops both, mlops.local.moto_registry keeps them."""
    from mlops.local.moto_registry import aws_update_model_package_semantics

    card = {"ModelCardContent": '{"intended_uses": {"purpose_of_model": "p"}}', "ModelCardStatus": "Draft"}
    with mock_aws():
        sagemaker = boto3.client("sagemaker", region_name="us-east-1")
        sagemaker.create_model_package_group(ModelPackageGroupName="g")
        plain = sagemaker.create_model_package(ModelPackageGroupName="g", InferenceSpecification=_SPEC, ModelCard=card)[
            "ModelPackageArn"
        ]
        assert "ModelCard" not in sagemaker.describe_model_package(ModelPackageName=plain)
        with aws_update_model_package_semantics():
            arn = sagemaker.create_model_package(
                ModelPackageGroupName="g",
                InferenceSpecification=_SPEC,
                ModelCard=card,
                ModelLifeCycle={"Stage": "Registered", "StageStatus": "PendingManualApproval"},
            )["ModelPackageArn"]
            sagemaker.update_model_package(
                ModelPackageArn=arn, ModelLifeCycle={"Stage": "Staging", "StageStatus": "Deployed"}
            )
            described = sagemaker.describe_model_package(ModelPackageName=arn)
        assert "ModelCard" not in sagemaker.describe_model_package(ModelPackageName=arn)  # restored on exit
    assert described["ModelCard"] == card  # an update without a card leaves it alone
    assert described["ModelLifeCycle"] == {"Stage": "Staging", "StageStatus": "Deployed"}
