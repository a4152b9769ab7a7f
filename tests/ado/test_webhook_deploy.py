"""The webhook-triggered deploy: a delivery to the incoming webhook starts model-deploy-webhook.yml, whose payload
mapping gives the same stages, steps and values as model-deploy.yml run with the same parameters."""

from __future__ import annotations

import hashlib
import hmac
import json
import urllib.request
from pathlib import Path
from typing import Any

from mlops.ado.desired import Desired
from mlops.ado.plan import make_plan
from mlops.ado.project import AdoProject
from mlops.local.ado_checks import webhook_pipelines
from mlops.local.fake_ado import FakeAzureDevOps, WebhookDelivery
from mlops.pipelines.loader import plain
from mlops.pipelines.model import Pipeline, load_pipeline

PAYLOAD = {
    "useCase": "breast-cancer",
    "modelPackageArn": "arn:aws:sagemaker:us-east-1:000000000001:model-package/breast-cancer/3",
    "modelPackageGroup": "breast-cancer",
    "modelPackageVersion": "3",
    "eventId": "e-1",
}
CONNECTIONS = {"aws-registry-read", "aws-deploy-staging", "aws-deploy-prod"}


def _shape(pipeline: Pipeline) -> list[Any]:
    """Stages, jobs and steps with their inputs and env, service connection names left out."""
    shape = []
    for stage in pipeline.stages:
        for job in stage.jobs:
            for step in job.steps:
                inputs = {k: plain(v) for k, v in step.inputs.items() if k != "awsCredentials"}
                shape.append((stage.name, job.name, job.environment, step.display_name, inputs, plain(step.env)))
    return shape


def test_the_webhook_payload_maps_to_the_deploy_pipelines_parameters(repo_root: Path) -> None:
    direct = load_pipeline(repo_root / "azure-pipelines/model-deploy.yml", PAYLOAD, root=repo_root)
    hooked = load_pipeline(
        repo_root / "azure-pipelines/model-deploy-webhook.yml", root=repo_root, webhook_payloads={"registry": PAYLOAD}
    )

    assert _shape(hooked) == _shape(direct)
    used = {
        str(s.inputs["awsCredentials"])
        for st in hooked.stages
        for j in st.jobs
        for s in j.steps
        if s.inputs.get("awsCredentials")
    }
    assert used == CONNECTIONS  # the identities() names, per purpose


def test_a_signed_delivery_to_the_incoming_webhook_starts_the_webhook_pipeline(
    fake: FakeAzureDevOps, ado: AdoProject, want: Desired, repo_root: Path
) -> None:
    current = ado.read(want)
    ado.apply(want, make_plan(want, current), current, lambda _line: None)
    deliveries: list[Any] = []
    fake.on_trigger = deliveries.append
    fake.register_webhook("mlops-model-approved", secret="s3cret")
    body = json.dumps(PAYLOAD).encode()
    signature = hmac.new(b"s3cret", body, hashlib.sha1).hexdigest()
    request = urllib.request.Request(
        fake.webhook_url("mlops-model-approved"),
        data=body,
        method="POST",
        headers={"Content-Type": "application/json", "X-MLOps-Signature": signature},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200

    delivery = deliveries[0]
    assert isinstance(delivery, WebhookDelivery)
    store = fake.project
    assert store is not None
    started = webhook_pipelines(store, repo_root, delivery.name, delivery.payload)
    assert started == [("azure-pipelines/model-deploy-webhook.yml", "registry")]
    assert webhook_pipelines(store, repo_root, "another-webhook", delivery.payload) == []
