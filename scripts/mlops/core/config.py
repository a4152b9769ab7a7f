"""Load and validate `mlops.yaml`: one file for the accounts, Azure DevOps and the build.

Precedence, lowest to highest (the only place it is defined):

1. the top level of `mlops.yaml`;
2. the selected profile, `profiles.<name>` (chosen with `--profile` or `MLOPS_PROFILE`), merged
   key by key over the top level;
2b. the chosen use case (`--use-case`, `MLOPS_USE_CASE`, else `use_cases.default`): its use_case.yaml's model
   settings and every name derived from its name (mlops/core/use_cases.py); mlops.yaml may not set those;
3. environment variables `MLOPS__<SECTION>__<KEY>` (double underscores separate levels, names are
   case-insensitive, values are parsed as YAML scalars, except that a key whose type is text takes the
   text as written, so `MLOPS__ACCOUNTS__PROD__ID=000000000003` needs no quoting), e.g.
   `MLOPS__BUILD__QUALITY__THRESHOLD=0.9`;
4. command-line flags of the command being run.

The file is found at `--config`, else `MLOPS_CONFIG`, else the nearest `mlops.yaml` from the
current directory upwards. Any invalid value fails here, at load, naming the key, the value, what
was expected and how to fix it: types are strict (`true` is not a number), the quality threshold is in
(0, 1], the region must be one where botocore's endpoint data lists SageMaker, and the file must be UTF-8.
Pure module: no AWS SDK (botocore's endpoint data is read as a file).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from mlops.core.errors import ConfigError
from mlops.core.use_cases import (
    DERIVED_KEYS,
    METRICS,
    USE_CASE_ENV,
    UseCase,
    UseCaseNames,
    check_collisions,
    check_quality,
    checked_hyperparameters,
    config_overlay,
    default_directory,
    discover,
    load_use_case,
)
from model_deploy.settings import DeploySettings

CONFIG_FILE_NAME = "mlops.yaml"
ENV_PREFIX = "MLOPS__"
PROFILE_ENV = "MLOPS_PROFILE"
CONFIG_ENV = "MLOPS_CONFIG"

AccountId = Annotated[
    str,
    Field(
        pattern=r"^\d{12}$",
        description="a 12-digit AWS account id, quoted so YAML keeps leading zeros, e.g. '111111111111'",
    ),
]
S3BucketName = Annotated[
    str,
    Field(
        pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
        description="an S3 bucket name: 3-63 lowercase letters, digits, dots or hyphens",
    ),
]
ResourceName = Annotated[
    str,
    Field(
        pattern=r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$",
        description="a SageMaker resource name: letters, digits and single hyphens, at most 63 characters",
    ),
]
InstanceType = Annotated[
    str,
    Field(pattern=r"^ml\.[a-z0-9]+\.[a-z0-9]+$", description="a SageMaker instance type such as 'ml.m5.large'"),
]
RoleName = Annotated[
    str,
    Field(pattern=r"^[\w+=,.@-]{1,64}$", description="an IAM role name (not an ARN), e.g. 'mlops-sagemaker-pipeline'"),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Account(_Strict):
    id: AccountId
    deploy_role_name: RoleName = Field(
        "mlops-deploy",
        description="the role the pipelines assume in this account (created by infra/)",
    )

    def role_arn(self, role_name: str | None = None) -> str:
        return f"arn:aws:iam::{self.id}:role/{role_name or self.deploy_role_name}"


class Accounts(_Strict):
    automation: Account
    staging: Account
    prod: Account

    @model_validator(mode="after")
    def _distinct(self) -> Accounts:
        ids = [self.automation.id, self.staging.id, self.prod.id]
        if len(set(ids)) != 3:
            raise ValueError(
                f"automation, staging and prod must be three different accounts, got {ids}; "
                "the isolation of prod is the point of the layout"
            )
        return self


class AzurePipelineIds(_Strict):
    build: int = Field(..., gt=0, description="the numeric id of the model-build pipeline in Azure DevOps")
    deploy: int = Field(..., gt=0, description="the numeric id of the model-deploy pipeline in Azure DevOps")
    infrastructure: int = Field(..., gt=0, description="the numeric id of the infrastructure pipeline in Azure DevOps")


ConnectionName = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$",
        description="an Azure DevOps service connection name: letters, digits, '.', '_' or '-', at most 80",
    ),
]
EnvironmentName = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$",
        description="an Azure DevOps environment name: letters, digits, '.', '_' or '-', at most 80",
    ),
]


class ConnectionNames(_Strict):
    """One AWS service connection per purpose (see mlops/core/identities.py for what each may do)."""

    build: ConnectionName = Field("aws-build", description="the build pipeline's connection (automation)")
    registry_read: ConnectionName = Field(
        "aws-registry-read", description="reads of the automation registry by the deploy pipeline's Verify stage"
    )
    deploy_staging: ConnectionName = Field("aws-deploy-staging", description="the staging deployment job's connection")
    deploy_prod: ConnectionName = Field("aws-deploy-prod", description="the prod deployment job's connection")
    infra_prefix: ConnectionName = Field(
        "aws-infra", description="prefix of the per-account infrastructure connections: '<prefix>-<account>'"
    )


class EnvironmentNames(_Strict):
    staging: EnvironmentName = Field("mlops-staging", description="the environment of the staging deployment job")
    prod: EnvironmentName = Field("mlops-prod", description="the environment of the prod deployment job (approval)")
    infra_prefix: EnvironmentName = Field(
        "mlops-infra", description="prefix of the per-account infrastructure environments: '<prefix>-<account>'"
    )


class AdoSetup(_Strict):
    """What `mlops ado plan|apply` sets up in the project beyond the identities (mlops/core/identities.py)."""

    repository: str = Field(
        "", description="the Azure Repos Git repository holding this code; empty: the project's default repository"
    )
    default_branch: str = Field(
        "refs/heads/main", pattern=r"^refs/heads/\S+$", description="the main branch: pipelines' default branch"
    )
    pipeline_prefix: str = Field(
        "mlops",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,60}$",
        description="the Azure DevOps pipelines are named '<prefix>-build', '<prefix>-deploy', ...: one set for "
        "every use case",
    )
    pipeline_folder: str = Field("\\mlops", pattern=r"^\\[^\\]*$", description="the pipelines' folder, e.g. '\\mlops'")
    approvers: str = Field(
        "[mlops]\\MLOps Approvers",
        min_length=1,
        description="the group that approves prod deployments: its display name, e.g. '[mlops]\\MLOps Approvers'",
    )
    approval_timeout_minutes: int = Field(
        1440, ge=1, le=43200, description="how long an approval waits before the stage fails (at most 30 days)"
    )
    variable_group: str = Field(
        "mlops", pattern=r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,79}$", description="the variable group the pipelines read"
    )
    bridge_identity: str = Field(
        "",
        description="the identity (display name) the bridge Lambda queues runs as; empty: not granted by `mlops ado`",
    )


class AzureDevOps(_Strict):
    organization_url: str = Field(
        ...,
        pattern=r"^https?://[^\s/]+(/[^\s/]+)?/?$",
        description="the organization URL, e.g. 'https://dev.azure.com/contoso'",
    )
    project: str = Field(..., min_length=1, description="the Azure DevOps project name")
    pipelines: AzurePipelineIds
    connections: ConnectionNames = Field(default_factory=ConnectionNames)
    environments: EnvironmentNames = Field(default_factory=EnvironmentNames)
    oidc_issuer: Literal["legacy", "entra", "both"] = Field(
        "legacy",
        description="the token issuer the OIDC roles trust: legacy (vstoken.dev.azure.com), entra (Microsoft Entra "
        "ID) or both while service connections migrate (docs/security.md)",
    )
    entra_tenant_id: str | None = Field(
        None,
        pattern=r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$",
        description="the Entra tenant (a GUID) of the organization; required when oidc_issuer is entra or both",
    )

    @model_validator(mode="after")
    def _tenant_for_entra(self) -> AzureDevOps:
        if self.oidc_issuer != "legacy" and not self.entra_tenant_id:
            raise ValueError(
                f"oidc_issuer is {self.oidc_issuer!r} but entra_tenant_id is not set: the Entra issuer is "
                "https://login.microsoftonline.com/<tenant id>/v2.0; set azure_devops.entra_tenant_id (Entra ID > "
                "Overview > Tenant ID) or keep oidc_issuer: legacy"
            )
        return self

    setup: AdoSetup = Field(default_factory=AdoSetup)


class InstanceGroup(_Strict):
    type: InstanceType
    count: int = Field(1, ge=1, le=20, description="an instance count between 1 and 20")


class BranchInstances(_Strict):
    """Branch pipelines run one small instance per step: they check the change, they ship nothing."""

    processing: InstanceType = "ml.t3.medium"
    training: InstanceType = "ml.m5.large"


class Instances(_Strict):
    processing: InstanceGroup
    training: InstanceGroup
    inference: list[InstanceType] = Field(..., min_length=1, description="instance types the package may be hosted on")
    transform: list[InstanceType] = Field(..., min_length=1, description="instance types for batch transform")


class Quality(_Strict):
    """The CheckQuality gate; the use case sets it (use_case.yaml `quality:`), checked against its task."""

    metric: str = Field(..., description="one of the task's model-quality metrics (mlops/core/use_cases.py METRICS)")
    # strict: YAML's `true` would otherwise read as 1.0 and text as a number.
    threshold: float = Field(
        ...,
        strict=True,
        description="a number: the minimum (or, for an error metric such as rmse, the maximum) on the test split",
    )

    # The use case's task arrives as validation context (config_from_mapping), so an override from the
    # environment is checked like the use case's own value, and the error names the key.
    @field_validator("metric")
    @classmethod
    def _metric_of_the_task(cls, value: str, info: ValidationInfo) -> str:
        task = (info.context or {}).get("task")
        if task and value not in METRICS[task]:
            raise ValueError(f"{value!r} is not a {task} metric; choose one of {', '.join(METRICS[task])}")
        return value

    @field_validator("threshold")
    @classmethod
    def _gates(cls, value: float, info: ValidationInfo) -> float:
        task, metric = (info.context or {}).get("task"), info.data.get("metric")
        if task and metric in METRICS[task]:
            check_quality(task, metric, value)
        return value


class UseCaseSettings(_Strict):
    path: str | None = Field(
        None,
        description="the folder holding one folder per use case, relative to mlops.yaml; "
        "null: model_build/use_cases of the installed package",
    )
    default: str = Field(..., description="the use case commands act on without --use-case / MLOPS_USE_CASE")
    available: list[str] = Field(
        default_factory=list, description="set by the loader: every use case found (not to be set by hand)"
    )


class Build(_Strict):
    pipeline_name: ResourceName = Field(
        ..., description="the SageMaker pipeline name; pull-request builds use '<name>-<branch>'"
    )
    model_package_group: ResourceName
    artifact_bucket: S3BucketName
    kms_key_id: str | None = Field(
        None, description="a KMS key id, ARN or alias for the artifact bucket and job volumes; null for none"
    )
    execution_role_name: RoleName = Field(
        "mlops-sagemaker-pipeline", description="the SageMaker pipeline execution role in the automation account"
    )
    instances: Instances
    branch_instances: BranchInstances = Field(
        default_factory=lambda: BranchInstances(),
        description="the cheaper processing and training instances of branch (pull-request) pipelines",
    )
    quality: Quality
    hyperparameters: dict[str, Any] = Field(
        default_factory=dict, description="the framework's hyperparameters (set by the use case)"
    )

    @field_validator("hyperparameters")
    @classmethod
    def _framework_keys(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        framework = (info.context or {}).get("framework")
        return checked_hyperparameters(framework, value) if framework else value

    max_runtime_seconds: int = Field(3600, ge=60, le=432000, description="a job time limit between 60 and 432000")
    cache_expire_after: str = Field(
        "P30D", pattern=r"^P(\d+[YMWD])*(T(\d+[HMS])+)?$", description="an ISO 8601 duration such as 'P30D'"
    )
    wait_timeout_seconds: int = Field(
        3000, ge=1, description="how long `mlops build run --wait` polls before giving up (seconds)"
    )

    @field_validator("cache_expire_after")
    @classmethod
    def _non_empty_duration(cls, value: str) -> str:
        if value in {"P", "PT"}:
            raise ValueError("an empty ISO 8601 duration")
        return value


MLFLOW_ARN_PATTERN = (
    r"^arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:\d{12}:(mlflow-tracking-server|mlflow-app)/[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"
)


class Tracking(_Strict):
    """MLflow experiment tracking: every pipeline execution is one run (model_build/tracking.py)."""

    mlflow_uri: str | None = Field(
        None,
        description="the SageMaker MLflow tracking server or MLflow App ARN "
        "(arn:aws:sagemaker:<region>:<account>:mlflow-tracking-server/<name> or ...:mlflow-app/<id>), "
        "or an http(s) URL of an MLflow server; null: the twin's server (local profile) or MLFLOW_TRACKING_URI",
    )
    experiment_name: ResourceName | None = Field(None, description="the MLflow experiment; default: project.name")
    connect_timeout_seconds: int = Field(
        60, ge=1, le=3600, description="how long to retry an unreachable tracking server before the build fails"
    )

    @field_validator("mlflow_uri")
    @classmethod
    def _arn_or_url(cls, value: str | None) -> str | None:
        if value is None or value.startswith(("http://", "https://")) or re.fullmatch(MLFLOW_ARN_PATTERN, value):
            return value
        raise ValueError(
            f"{value!r} is neither a SageMaker MLflow tracking server/App ARN nor an http(s) URL; "
            "copy the ARN from `aws sagemaker list-mlflow-tracking-servers` (or list-mlflow-apps)"
        )


class Project(_Strict):
    name: ResourceName = Field(..., description="the use case's name: the S3 prefix of its runs")


@functools.cache
def known_regions() -> frozenset[str]:
    """SageMaker's regions in every partition, from botocore's bundled endpoint data (no network).

    Read from the JSON file directly: the same set as botocore's `get_available_regions("sagemaker")` in
    a twentieth of the time (a botocore session costs about 0.1 s to build and is not needed here)."""
    # find_spec locates botocore without importing it: this module stays free of the AWS SDK.
    spec = importlib.util.find_spec("botocore")
    if spec is None or spec.origin is None:
        raise ConfigError("botocore is not installed: the region cannot be checked", hint="run `make install`")
    endpoints = Path(spec.origin).parent / "data" / "endpoints.json"
    data = json.loads(endpoints.read_text(encoding="utf-8"))
    return frozenset(
        region
        for partition in data["partitions"]
        for region in partition["services"].get("api.sagemaker", {}).get("endpoints", {})
        if region in partition["regions"]
    )


class Config(_Strict):
    project: Project
    use_cases: UseCaseSettings
    use_case: UseCase
    region: str = Field(
        ..., pattern=r"^[a-z]{2}(-[a-z]+)+-\d$", description="an AWS region where SageMaker runs, e.g. 'eu-west-1'"
    )
    accounts: Accounts
    azure_devops: AzureDevOps
    build: Build
    deploy: DeploySettings
    tracking: Tracking = Tracking()
    profile: str = Field("default", description="the profile these values came from")

    @field_validator("region")
    @classmethod
    def _existing_region(cls, value: str) -> str:
        regions = known_regions()
        if value not in regions:
            close = sorted(r for r in regions if r.split("-")[0] == value.split("-")[0])[:6]
            raise ValueError(
                f"{value!r} is not a region with SageMaker in botocore's endpoint data"
                + (f" (regions starting alike: {', '.join(close)})" if close else "")
                + "; if AWS opened it after this botocore was released, upgrade boto3/botocore"
            )
        return value

    @property
    def is_local(self) -> bool:
        return self.profile == "local"

    @property
    def names(self) -> UseCaseNames:
        return UseCaseNames(self.use_case.name)

    @property
    def use_case_dir(self) -> Path:
        """The chosen use case's folder (its use_case.yaml, data files and step overrides)."""
        return Path(self.use_cases.path or default_directory()) / self.use_case.name

    def execution_role_arn(self) -> str:
        return self.accounts.automation.role_arn(self.build.execution_role_name)


# ---------------------------------------------------------------------------------------------
# Loading


def find_config_file(explicit: str | os.PathLike[str] | None = None, *, start: Path | None = None) -> Path:
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(
                f"config file {path} does not exist",
                hint="pass the path of your mlops.yaml with --config, or unset MLOPS_CONFIG",
            )
        return path
    env = os.environ.get(CONFIG_ENV)
    if env:
        return find_config_file(env)
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / CONFIG_FILE_NAME
        if candidate.is_file():
            return candidate
    raise ConfigError(
        f"no {CONFIG_FILE_NAME} found in {here} or any parent directory",
        hint=f"run from the repository root, pass --config PATH, or set {CONFIG_ENV}",
    )


def load_config(
    path: str | os.PathLike[str] | None = None,
    *,
    profile: str | None = None,
    environ: Mapping[str, str] | None = None,
    use_case: str | None = None,
) -> Config:
    """Read, layer and validate the configuration. Raises ConfigError on any problem."""
    environ = os.environ if environ is None else environ
    file = find_config_file(path)
    try:
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        line = file.read_bytes()[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{file} is not UTF-8 text: byte 0x{exc.object[exc.start]:02x} on line {line} cannot be decoded",
            hint=f"save {file.name} as UTF-8 (e.g. `iconv -f latin1 -t utf-8 {file.name}`), then run again",
        ) from exc
    except OSError as exc:
        raise ConfigError(f"{file} cannot be read: {exc.strerror}", hint="check the path and its permissions") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(
            f"{file} is not valid YAML: {exc}", hint="fix the syntax at the line and column shown"
        ) from exc
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{file}: expected a mapping at the top level, found {type(raw).__name__}",
            hint="start from the mlops.yaml in the repository",
        )
    return config_from_mapping(
        raw, source=str(file), profile=profile, environ=environ, use_case=use_case, base_dir=file.parent
    )


def config_from_mapping(
    raw: Mapping[str, Any],
    *,
    source: str = CONFIG_FILE_NAME,
    profile: str | None = None,
    environ: Mapping[str, str] | None = None,
    use_case: str | None = None,
    base_dir: Path | None = None,
) -> Config:
    environ = {} if environ is None else environ
    data = {k: v for k, v in raw.items() if k != "profiles"}
    profiles = raw.get("profiles") or {}
    if not isinstance(profiles, dict):
        raise ConfigError(f"{source}: 'profiles' must be a mapping of profile name to overrides")
    chosen = profile or environ.get(PROFILE_ENV) or "default"
    if chosen != "default":
        if chosen not in profiles:
            known = ", ".join(sorted(profiles)) or "none"
            raise ConfigError(
                f"{source}: profile {chosen!r} is not defined (profiles: {known})",
                hint=f"add 'profiles: {{{chosen}: ...}}' to {source} or choose one of the defined profiles",
            )
        data = _deep_merge(data, profiles[chosen])
    data["profile"] = chosen
    env_keys = _env_overrides(environ)
    # Where the use cases are and which is the default decide what the use case layer adds: those overrides
    # apply first (MLOPS__USE_CASES__PATH points a run at another folder); every other override after it.
    for dotted, value in env_keys.items():
        if dotted.startswith("use_cases."):
            _set_dotted(data, dotted, value)
    data = _with_use_case(data, source=source, explicit=use_case, environ=environ, base_dir=base_dir)
    for dotted, value in env_keys.items():
        if not dotted.startswith("use_cases."):
            _set_dotted(data, dotted, value)
    chosen_use_case: dict[str, Any] = data.get("use_case") or {}
    context = {"task": chosen_use_case.get("task"), "framework": chosen_use_case.get("framework")}
    try:
        return Config.model_validate(data, context=context)
    except ValidationError as exc:
        raise _explain(exc, source=source, profile=chosen, env_keys=env_keys) from exc


def _with_use_case(
    data: dict[str, Any], *, source: str, explicit: str | None, environ: Mapping[str, str], base_dir: Path | None
) -> dict[str, Any]:
    """Layer the chosen use case over the file and profile: its values, and every name derived from it."""
    settings = data.get("use_cases")
    if not isinstance(settings, dict) or not settings.get("default"):
        raise ConfigError(
            f"{source}: 'use_cases.default' is missing: the use case commands act on by default",
            hint="add 'use_cases: {default: <name>}' naming a folder of model_build/use_cases",
        )
    if "available" in settings:
        raise ConfigError(
            f"{source}: 'use_cases.available' is found by the loader, not set by hand",
            hint="remove it; every folder with a use_case.yaml is a use case",
        )
    for path in DERIVED_KEYS:
        node: Any = data
        for key in path:
            node = node.get(key) if isinstance(node, dict) else None
        if node is not None:
            raise ConfigError(
                f"{source}: {'.'.join(path)} is set to {node!r}, but it comes from the use case",
                hint=f"remove {'.'.join(path)} from {source}: names are derived from the use case's name "
                "(mlops/core/use_cases.py) and the model's settings live in its use_case.yaml",
            )
    folder = Path(settings["path"]) if settings.get("path") else default_directory()
    if not folder.is_absolute():
        folder = (base_dir or Path.cwd()) / folder
    found = discover(folder)
    check_collisions(found)
    name = explicit or environ.get(USE_CASE_ENV) or str(settings["default"])
    chosen = load_use_case(folder, name)
    merged = _deep_merge(data, config_overlay(chosen))
    monitor = (((merged.get("deploy") or {}).get("prod") or {}).get("monitor")) or {}
    if isinstance(monitor, dict) and isinstance(monitor.get("drift_alarm"), dict):
        alarm = {
            **monitor["drift_alarm"],
            "features": chosen.drift_features,
            "threshold": chosen.monitor.drift_threshold,
        }
        merged = _deep_merge(merged, {"deploy": {"prod": {"monitor": {"drift_alarm": alarm}}}})
    merged["use_cases"] = {**settings, "path": str(folder.resolve()), "available": sorted(found)}
    merged["use_case"] = chosen.model_dump()
    return merged


def _deep_merge(base: Mapping[str, Any], override: Any) -> dict[str, Any]:
    if not isinstance(override, dict):
        raise ConfigError("a profile must be a mapping of the keys it overrides")
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """`MLOPS__A__B=text` as {"a.b": value}: YAML scalars, except that a key whose type is text takes the text
    as it is, so an account id (`000000000002`) or a version-like name needs no quoting in the shell."""
    found: dict[str, Any] = {}
    for name, text in environ.items():
        if not name.upper().startswith(ENV_PREFIX):
            continue
        parts = [p.lower() for p in name[len(ENV_PREFIX) :].split("__") if p]
        if not parts:
            continue
        dotted = ".".join(parts)
        if _FIELD_IS_TEXT.get(dotted) and text != "" and not (_FIELD_IS_OPTIONAL.get(dotted) and text in _YAML_NULLS):
            found[dotted] = text
            continue
        try:
            value = yaml.safe_load(text) if text != "" else None
        except yaml.YAMLError as exc:
            raise ConfigError(
                f"environment variable {name}={text!r} is not a valid YAML scalar",
                hint=f"write a plain value such as {name}=0.9; quote text that YAML would misread: {name}=\"'{text}'\"",
            ) from exc
        if isinstance(value, dict | list) and not _FIELD_IS_LIST.get(dotted):
            raise ConfigError(
                f"environment variable {name}={text!r} is a YAML {type(value).__name__}: expected one value",
                hint=f"an override sets one key; for text starting with [ or {{ quote it: {name}=\"'{text}'\"",
            )
        found[dotted] = value
    return found


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    node = data
    keys = dotted.split(".")
    for key in keys[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[keys[-1]] = value


_FIELD_DESCRIPTIONS: dict[str, str] = {}
_FIELD_IS_TEXT: dict[str, bool] = {}  # dotted key -> its value is text (str, or str | None)
_FIELD_IS_LIST: dict[str, bool] = {}
_FIELD_IS_OPTIONAL: dict[str, bool] = {}
_YAML_NULLS = frozenset({"null", "Null", "NULL", "~"})


def _describe(model: type[BaseModel], prefix: str = "") -> None:
    for name, field in model.model_fields.items():
        dotted = f"{prefix}{name}"
        union = get_origin(field.annotation) in (Union, UnionType)
        kinds = [a for a in get_args(field.annotation) if a is not type(None)] if union else [field.annotation]
        _FIELD_IS_TEXT[dotted] = bool(kinds) and all(kind is str for kind in kinds)
        _FIELD_IS_LIST[dotted] = get_origin(field.annotation) is list
        _FIELD_IS_OPTIONAL[dotted] = union and type(None) in get_args(field.annotation)
        description = field.description
        for meta in field.metadata:
            description = description or getattr(meta, "description", None)
        if description:
            _FIELD_DESCRIPTIONS[dotted] = description
        _describe_nested(field.annotation, dotted + ".")


def _describe_nested(annotation: Any, prefix: str) -> None:
    # Walk into optional models (`X | None`) and lists/dicts of models as well: an error inside a
    # list item is located as `a.b.0.c`, which `_explain` looks up without the index as `a.b.c`.
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        _describe(annotation, prefix)
        return
    for argument in get_args(annotation):
        _describe_nested(argument, prefix)


_describe(Config)


def _explain(exc: ValidationError, *, source: str, profile: str, env_keys: Mapping[str, Any]) -> ConfigError:
    lines = []
    for error in exc.errors():
        loc = [str(p) for p in error["loc"]]
        key = ".".join(loc) or "(top level)"
        generic = ".".join(p for p in loc if not p.isdigit())
        found = error.get("input")
        if error["type"] == "missing":
            found_text = "nothing (the key is missing)"
        elif error["type"] == "extra_forbidden":
            found_text = f"an unknown key {loc[-1]!r}"
        else:
            found_text = f"{found!r}"
        expected = _FIELD_DESCRIPTIONS.get(generic) or error["msg"]
        origin = (
            f"environment variable {ENV_PREFIX}{'__'.join(p.upper() for p in loc)}"
            if key in env_keys
            else (f"{source} (profile {profile!r})" if profile != "default" else source)
        )
        if error["type"] == "extra_forbidden":
            fix = f"remove or correct {key!r} in {origin}; check the spelling against the shipped mlops.yaml"
        elif key in env_keys:
            name = f"{ENV_PREFIX}{'__'.join(p.upper() for p in loc)}"
            fix = (
                f"set {name} to a value of the expected type; it is read as a YAML scalar, so write numbers "
                f"and true/false unquoted ({name}=0.9); text keys take the text as it is"
            )
        else:
            fix = f"set {key} in {origin}"
        lines.append(f"{key}: found {found_text}; expected {expected} ({error['msg']}). Fix: {fix}.")
    first = lines[0]
    more = "".join(f"\n  also: {line}" for line in lines[1:])
    return ConfigError(f"invalid configuration: {first}{more}")
