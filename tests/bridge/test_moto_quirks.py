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
