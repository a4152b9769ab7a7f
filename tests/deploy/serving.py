"""A stand-in for sagemaker-runtime that serves a real trained model through its own inference.py.

Errors are shaped as SageMaker shapes them: a handler's PayloadError becomes a ModelError (HTTP 424)
carrying the container's status (400, or 415 for an unsupported media type) as OriginalStatusCode.
"""

from __future__ import annotations

import importlib.util
import io
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import botocore.exceptions

from mlops.core.use_cases import UseCase
from tests.steps.pipeline_run import run_preprocess, run_train, shipped_use_case


def load_handlers(model_dir: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("served_inference", model_dir / "code" / "inference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class ServingRuntime:
    def __init__(self, model_dir: Path, endpoint_name: str, distort: Callable[[Any], Any] | None = None) -> None:
        self.handlers = load_handlers(model_dir)
        self.model = self.handlers.model_fn(str(model_dir))
        self.endpoint_name = endpoint_name
        self.distort = distort
        self.calls = 0

    def invoke_endpoint(self, *, EndpointName: str, Body: bytes, ContentType: str, Accept: str) -> dict[str, Any]:
        self.calls += 1
        if EndpointName != self.endpoint_name:
            raise botocore.exceptions.ClientError(
                {
                    "Error": {"Code": "ValidationError", "Message": f"Endpoint {EndpointName} not found."},
                    "ResponseMetadata": {"HTTPStatusCode": 400},
                },
                "InvokeEndpoint",
            )
        try:
            parsed = self.handlers.input_fn(Body, ContentType)
            prediction = self.handlers.predict_fn(parsed, self.model)
            if self.distort is not None:
                prediction = self.distort(prediction)
            body, content_type = self.handlers.output_fn(prediction, Accept)
        except self.handlers.PayloadError as exc:
            status = 415 if isinstance(exc, self.handlers.UnsupportedMediaType) else 400
            raise botocore.exceptions.ClientError(
                {
                    "Error": {
                        "Code": "ModelError",
                        "Message": f'Received client error ({status}) from primary with message "{exc}".',
                    },
                    "OriginalStatusCode": status,
                    "OriginalMessage": str(exc),
                    "ResponseMetadata": {"HTTPStatusCode": 424},
                },
                "InvokeEndpoint",
            ) from exc
        return {"Body": io.BytesIO(body.encode()), "ContentType": content_type}


def train_model(
    root: Path, use_case: UseCase | None = None, hyperparameters: dict[str, str] | None = None
) -> tuple[Path, Path]:
    """Preprocess the use case's bundled data (default breast-cancer) and train the real model; return
    (model dir, test.csv)."""
    case = use_case or shipped_use_case("breast-cancer")
    spec = run_preprocess(root, case)
    model_dir = run_train(root, spec, hyperparameters or {"max_depth": "3", "eta": "0.2", "num_round": "100"})
    return model_dir, root / "test" / "test.csv"
