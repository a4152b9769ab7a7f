"""The model card a registered package carries, and its lifecycle stages (pure: no AWS, no MLflow).

The card's content follows SageMaker's model card JSON schema (`model_overview`, `intended_uses`,
`training_details`, `evaluation_details`, `additional_information`), so Studio renders it and any
reader of the schema finds the same fields. It holds the intended use, the training data snapshot,
the test-split metrics and the explanations (mean |SHAP| per feature from the Evaluate step), plus the
provenance a reviewer needs: commit, build, pipeline execution and, once logged, the MLflow run.

`ModelLifeCycle` follows the package: `Registered` (pending approval) when the build registers it,
`Staging` and `Prod` when a deployment to that stage succeeds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlops.core.use_cases import MODEL_QUALITY_SECTION, TASKS, UseCase
from mlops.core.use_cases import quality_metrics as task_metrics

CARD_STATUS = "Draft"  # Draft | PendingReview | Approved | Archived (botocore's ModelCardStatus enum)
MAX_CARD_CHARACTERS = 100_000  # botocore: ModelPackageModelCard.ModelCardContent max
TOP_FEATURES = 10
PROBLEM_TYPES = {
    "binary": "Binary Classification",
    "multiclass": "Multiclass Classification",
    "regression": "Regression",
}
ALGORITHMS = {"xgboost": "XGBoost", "sklearn": "Random Forest (scikit-learn)"}

REGISTERED_STAGE = "Registered"  # then Staging and Prod (model_deploy.lifecycle) as deployments succeed


def registered_lifecycle(build_id: str) -> dict[str, str]:
    """The ModelLifeCycle of a freshly registered package: pending the reviewer's approval."""
    return {
        "Stage": REGISTERED_STAGE,
        "StageStatus": "PendingManualApproval",
        "StageDescription": f"registered by build {build_id}"[:1024],
    }


@dataclass(frozen=True)
class CardInputs:
    package_arn: str
    model_data_url: str
    evaluation: Mapping[str, Any]  # evaluation.json (SageMaker model-quality format)
    explanations: Mapping[str, Any] | None  # analysis.json (Clarify format), None if the build wrote none
    manifest: Mapping[str, Any]  # the build's manifest.json
    hyperparameters: Mapping[str, Any]
    quality_metric: str
    quality_threshold: float
    evaluation_uri: str
    explainability_uri: str | None
    use_case: UseCase
    mlflow: Mapping[str, str] | None = None  # tracking_uri, experiment_id, run_id, run_url


def quality_metrics(evaluation: Mapping[str, Any]) -> dict[str, float]:
    """The task's metrics of a model-quality report, whichever task wrote it (its `task`, else its section)."""
    task = evaluation.get("task")
    if task not in TASKS:
        task = next((t for t, section in MODEL_QUALITY_SECTION.items() if section in evaluation), "binary")
    try:
        return task_metrics(evaluation, str(task))
    except ValueError:
        return {}


def global_attributions(explanations: Mapping[str, Any] | None) -> dict[str, float]:
    """Mean |SHAP| per feature, largest first, from a Clarify-format report (any SHAP method key)."""
    if not explanations:
        return {}
    methods = explanations.get("explanations", {})
    for method in methods.values():
        values = method.get("label0", {}).get("global_shap_values")
        if isinstance(values, dict):
            return dict(sorted(((str(k), float(v)) for k, v in values.items()), key=lambda kv: -kv[1]))
    return {}


def model_card_content(inputs: CardInputs) -> str:
    use_case = inputs.use_case
    metrics = quality_metrics(inputs.evaluation)
    attributions = global_attributions(inputs.explanations)
    top = list(attributions.items())[:TOP_FEATURES]
    data = inputs.manifest.get("input", {})
    metric_groups: list[dict[str, Any]] = [
        {
            "name": f"{PROBLEM_TYPES[use_case.task].lower()} (test split)",
            "metric_data": [{"name": name, "type": "number", "value": value} for name, value in metrics.items()],
        }
    ]
    if top:
        metric_groups.append(
            {
                "name": "feature attributions: mean |attribution| per feature (Evaluate step)",
                "metric_data": [{"name": name, "type": "number", "value": value} for name, value in top],
            }
        )
    custom = {
        "model_package_arn": inputs.package_arn,
        "git_commit": str(inputs.manifest.get("git_commit", "unknown")),
        "build_id": str(inputs.manifest.get("build_id", "unknown")),
        "branch": str(inputs.manifest.get("branch", "unknown")),
        "pipeline_execution_arn": str(inputs.manifest.get("pipeline_execution_arn", "unknown")),
        "data_snapshot_uri": str(data.get("uri", "unknown")),
        "data_snapshot_sha256": str(data.get("sha256", "unknown")),
        "evaluation_report": inputs.evaluation_uri,
        "explainability_report": inputs.explainability_uri or "missing",
        "use_case": use_case.name,
        "quality_gate": f"{inputs.quality_metric} {'<=' if inputs.quality_metric in ('rmse', 'mae', 'mse') else '>='} "
        f"{inputs.quality_threshold}",
    }
    if inputs.mlflow:
        custom.update({f"mlflow_{key}": value for key, value in inputs.mlflow.items()})
    card = {
        "model_overview": {
            "model_description": f"{use_case.name}: {ALGORITHMS[use_case.framework]} "
            f"({PROBLEM_TYPES[use_case.task].lower()}) with its fitted preprocessor (imputation, scaling)",
            "problem_type": PROBLEM_TYPES[use_case.task],
            "algorithm_type": ALGORITHMS[use_case.framework],
            "model_artifact": [inputs.model_data_url],
        },
        "intended_uses": {"purpose_of_model": use_case.description, **use_case.card.model_dump()},
        "training_details": {
            "training_observations": ("Stratified " if use_case.task != "regression" else "")
            + "train/validation/test split (seed 42); validation for early stopping.",
            "training_job_details": {
                "training_datasets": [str(data.get("uri", "unknown"))],
                "hyper_parameters": [{"name": k, "value": str(v)} for k, v in sorted(inputs.hyperparameters.items())],
            },
        },
        "evaluation_details": [
            {
                "name": "test split",
                "evaluation_observation": f"{inputs.evaluation.get('test_rows', '?')} rows the model never saw; "
                f"decision threshold {inputs.evaluation.get('decision_threshold', '?')}",
                "metric_groups": metric_groups,
            }
        ],
        "additional_information": {
            "caveats_and_recommendations": "Attributions explain the model, not the world: correlated "
            "features share credit between them.",
            "custom_details": custom,
        },
    }
    content = json.dumps(card, sort_keys=True)
    if len(content) > MAX_CARD_CHARACTERS:
        raise ValueError(f"the model card has {len(content)} characters; SageMaker takes at most {MAX_CARD_CHARACTERS}")
    return content


@dataclass(frozen=True)
class CardView:
    """What a reviewer reads off a package's card (`mlops registry show`)."""

    intended_use: str
    metrics: dict[str, float]
    top_features: list[tuple[str, float]]
    details: dict[str, str]
    status: str


def read_card(model_card: Mapping[str, Any] | None) -> CardView | None:
    """The card of a DescribeModelPackage answer, or None when the package has none (registered before cards)."""
    if not model_card or not model_card.get("ModelCardContent"):
        return None
    try:
        content = json.loads(model_card["ModelCardContent"])
    except json.JSONDecodeError as exc:
        raise ValueError(f"the package's model card is not JSON ({exc.msg} at {exc.pos})") from exc
    groups = [g for e in content.get("evaluation_details", []) for g in e.get("metric_groups", [])]
    metrics: dict[str, float] = {}
    top: list[tuple[str, float]] = []
    for group in groups:
        pairs = [(str(m["name"]), float(m["value"])) for m in group.get("metric_data", []) if "value" in m]
        if "attribution" in str(group.get("name", "")):
            top = pairs
        else:
            metrics.update(pairs)
    uses = content.get("intended_uses", {})
    return CardView(
        intended_use=str(uses.get("intended_uses") or uses.get("purpose_of_model") or "not stated"),
        metrics=metrics,
        top_features=top,
        details={
            str(k): str(v) for k, v in content.get("additional_information", {}).get("custom_details", {}).items()
        },
        status=str(model_card.get("ModelCardStatus", "unknown")),
    )
