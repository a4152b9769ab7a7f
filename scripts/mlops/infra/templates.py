"""The account templates in infra/templates/ and the stack parameters derived from mlops.yaml. Pure.

One shared stack per account: `mlops-automation` from automation.yaml, `mlops-staging` and `mlops-prod` from the
one parameterised target.yaml; beside each, `mlops-<account>-access` from access.yaml (the infrastructure
connection's role and CloudFormation's execution role, deployed by an administrator only); and after it one
stack per use case, `mlops-<use case>-<account>` from use-case.yaml: the use case's model package group and
approver policy (automation) and the managed policies that give the shared roles exactly that use case's
resources. Each use case's policies are attached to the shared roles, so the number of use cases is bounded by
IAM's managed-policies-per-role quota (`check_policy_quota`). Parameters come
from three places, highest first: `--parameter KEY=VALUE` on the command line, mlops.yaml (names the code relies
on, so they can never drift from the config), and, on an update, the stack's previous value (so a value given
once, such as the Azure DevOps organization id, sticks).
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

import yaml

from mlops.core.config import Config
from mlops.core.errors import InfraError
from mlops.core.identities import (
    CFN_EXECUTION_ROLE,
    INFRA_ROLE,
    REGISTRY_READ_ROLE,
    STAGING_PASS_ROLE,
    identities,
    stage_role_name,
)
from mlops.core.use_cases import UseCaseNames

REPO_ROOT = Path(__file__).resolve().parents[3]
TEMPLATES_DIR = REPO_ROOT / "infra" / "templates"
AccountName = Literal["automation", "staging", "prod"]
ACCOUNTS: tuple[AccountName, ...] = ("automation", "staging", "prod")
# CloudFormation refuses an inline TemplateBody above this size (a larger one must go through S3). The
# commented YAML of automation.yaml is above it, so the body sent is the template as compact JSON.
TEMPLATE_BODY_LIMIT = 51_200


@dataclass(frozen=True)
class StackSpec:
    account: AccountName
    account_id: str
    stack_name: str
    template_path: Path
    parameters: dict[str, str]  # from mlops.yaml and --parameter; the rest keep previous values or defaults


ACCESS_TEMPLATE = "access.yaml"
USE_CASE_TEMPLATE = "use-case.yaml"
# IAM's default quota of managed policies attached to one role (raisable to 20 through Service Quotas,
# "Managed policies per role"); each use case's stack attaches one policy to each shared role it grants.
DEFAULT_POLICIES_PER_ROLE = 10
MAX_POLICIES_PER_ROLE = 20
# automation.yaml BridgeRole's RoleName: the bridge's policy of each use case is attached to it.
BRIDGE_ROLE = "mlops-bridge"


def template_path(account: AccountName, *, access: bool = False) -> Path:
    if access:
        return TEMPLATES_DIR / ACCESS_TEMPLATE
    return TEMPLATES_DIR / ("automation.yaml" if account == "automation" else "target.yaml")


def stack_name(account: AccountName, *, access: bool = False) -> str:
    return f"mlops-{account}-access" if access else f"mlops-{account}"


def use_case_stack_name(use_case: str, account: AccountName) -> str:
    """`mlops-<use case>-<account>`: access.yaml lets the infrastructure connection change `mlops-*-<account>`."""
    return f"mlops-{use_case}-{account}"


def drift_alarm_names(config: Config, stage: str) -> list[str]:
    """Each use case's drift alarm in the stage (model_deploy/desired.py render_drift_alarm), if the stage has one."""
    settings = config.deploy.stage(stage)
    if not settings.monitor.enabled or settings.monitor.drift_alarm is None:
        return []
    return [f"{UseCaseNames(name).endpoint(stage)}-data-drift" for name in use_case_names(config)]


def use_case_names(config: Config) -> list[str]:
    """Every use case of model_build/use_cases (config.use_cases.available), the selected one at least."""
    return sorted(set(config.use_cases.available) | {config.use_case.name})


def execution_role_arn(config: Config, account: AccountName) -> str:
    """The RoleARN of every change set on the account's mlops stack after the first bootstrap (access.yaml)."""
    account_id: str = getattr(config.accounts, account).id
    return f"arn:aws:iam::{account_id}:role/{CFN_EXECUTION_ROLE}"


def access_parameters(config: Config, account: AccountName) -> dict[str, str]:
    """access.yaml's parameters: the infrastructure connection of mlops/core/identities.py and its stack."""
    ado = config.azure_devops
    parameters = {
        "Account": account,
        "ManagedStackName": stack_name(account),
        "InfraRoleName": INFRA_ROLE,
        "CloudFormationRoleName": CFN_EXECUTION_ROLE,
        "AzureDevOpsOrganizationName": organization_name(ado.organization_url),
        "AzureDevOpsProject": ado.project,
        "InfraServiceConnectionName": identities(config).connection(f"infra-{account}").name,
        "OidcIssuer": ado.oidc_issuer,
    }
    if ado.entra_tenant_id:
        parameters["EntraTenantId"] = ado.entra_tenant_id
    return parameters


# libyaml's parser when PyYAML has it (about 5x faster on automation.yaml, which the twin loads at every start).
_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _CfnLoader(_SafeLoader):  # type: ignore[valid-type,misc]
    """Reads CloudFormation YAML: short-form intrinsics (!Ref, !Sub, ...) become their long form."""


def _intrinsic(loader: yaml.SafeLoader, tag_suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = tag_suffix if tag_suffix in ("Ref", "Condition") else f"Fn::{tag_suffix}"
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _intrinsic)


def load_template(path: Path) -> dict[str, Any]:
    """The template as a fresh document (callers may change their copy)."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise InfraError(
            f"cannot read template {path}: {exc}", hint="run from a checkout of the repository (infra/templates/)"
        ) from exc
    return copy.deepcopy(_parsed(path, stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=8)
def _parsed(path: Path, mtime_ns: int, size: int) -> dict[str, Any]:
    del mtime_ns, size  # part of the cache key: an edited template is read again
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InfraError(
            f"cannot read template {path}: {exc}", hint="run from a checkout of the repository (infra/templates/)"
        ) from exc
    try:
        document = yaml.load(text, Loader=_CfnLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise InfraError(f"{path} is not valid YAML: {exc}", hint="run `mlops infra lint` to see the problem") from exc
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise InfraError(f"{path} has no Resources mapping: expected a CloudFormation template")
    return document


def template_body(path: Path) -> str:
    """What is sent to CloudFormation: the template as compact JSON (same document, no comments or indent)."""
    body = json.dumps(load_template(path), separators=(",", ":"), ensure_ascii=False)
    if len(body.encode()) > TEMPLATE_BODY_LIMIT:
        raise InfraError(
            f"{path.name} is {len(body.encode())} bytes as compact JSON: CloudFormation takes at most "
            f"{TEMPLATE_BODY_LIMIT} bytes inline",
            hint="split the template, or shorten its descriptions",
        )
    return body


def organization_name(organization_url: str) -> str:
    """'https://dev.azure.com/contoso' -> 'contoso'; 'https://contoso.visualstudio.com' -> 'contoso'."""
    parsed = urlparse(organization_url.rstrip("/"))
    host = parsed.hostname or ""
    path = parsed.path.strip("/")
    if host.endswith(".visualstudio.com"):
        return host.split(".", 1)[0]
    if path:
        return path.split("/")[0]
    raise InfraError(
        f"azure_devops.organization_url is {organization_url!r}: expected 'https://dev.azure.com/<organization>'",
        hint="set azure_devops.organization_url in mlops.yaml",
    )


def config_parameters(config: Config, account: AccountName) -> dict[str, str]:
    """The template parameters mlops.yaml decides: the names the build, deploy and bridge code use, and the
    service connections and roles of mlops/core/identities.py (so trust policies name what the YAML uses)."""
    build = config.build
    accounts = config.accounts
    ado = config.azure_devops
    who = identities(config)
    common = {
        "AzureDevOpsOrganizationName": organization_name(ado.organization_url),
        "AzureDevOpsProject": ado.project,
        "OidcIssuer": ado.oidc_issuer,
        "RegistryReadRoleName": REGISTRY_READ_ROLE,
        "StagingPassRoleName": STAGING_PASS_ROLE,
    }
    if ado.entra_tenant_id:
        common["EntraTenantId"] = ado.entra_tenant_id
    if account == "automation":
        parameters = {
            **common,
            # Every use case's group: the bridge's MODEL_PACKAGE_GROUPS and the approval rule's pattern.
            "ModelPackageGroups": ",".join(UseCaseNames(name).model_package_group for name in use_case_names(config)),
            "PipelineExecutionRoleName": build.execution_role_name,
            "DeployRoleName": who.connection("build").role_name,
            "BuildServiceConnectionName": who.connection("build").name,
            "RegistryReadServiceConnectionName": who.connection("registry-read").name,
            "StagingAccountId": accounts.staging.id,
            "StagingDeployRoleName": stage_role_name(config, "staging"),
            "ProdAccountId": accounts.prod.id,
            "ProdDeployRoleName": stage_role_name(config, "prod"),
            "AdoOrgUrl": ado.organization_url.rstrip("/"),
            "AdoDeployPipelineId": str(ado.pipelines.deploy),
            "AdoBuildPipelineId": str(ado.pipelines.build),
            "ArtifactBucketName": build.artifact_bucket,
            # The stages' drift alarms of every use case (model_deploy/desired.py render_drift_alarm) start a retrain.
            "RetrainAlarmNames": ",".join(
                name for stage in ("staging", "prod") for name in drift_alarm_names(config, stage)
            ),
        }
        # The key is created here; an alias in mlops.yaml names it (null, as in the twin, keeps the default).
        if build.kms_key_id and build.kms_key_id.startswith("alias/"):
            parameters["ArtifactKeyAlias"] = build.kms_key_id
        return parameters
    stage = config.deploy.stage(account)
    return {
        **common,
        "Stage": account,
        "AutomationAccountId": accounts.automation.id,
        "StageServiceConnectionName": who.connection(f"deploy-{account}").name,
        # the role model_deploy runs as there: deploy.<stage>.role_name, else the account's deploy role
        "DeployRoleName": stage_role_name(config, account),
        "EndpointRoleName": stage.execution_role_name,
        # The drift alarms whose state changes go to the automation account's bus (retraining), if any.
        "DriftAlarmNames": ",".join(drift_alarm_names(config, account)),
    }


def use_case_parameters(
    config: Config, account: AccountName, use_case: str, shared_outputs: Mapping[str, str]
) -> dict[str, str]:
    """use-case.yaml's parameters: the use case, the account's shared role names (the same values the shared
    stack was given) and, in automation, what the shared stack created (its outputs: the artifact key the
    approvers decrypt reports with, and whether it has the bridge)."""
    names = UseCaseNames(use_case)
    shared = config_parameters(config, account)
    parameters = {
        "UseCase": use_case,
        "Account": account,
        "ArtifactBucketName": config.build.artifact_bucket,
        "RecordParameterPrefix": config.deploy.record_parameter_prefix,
    }
    if account == "automation":
        key = shared_outputs.get("ArtifactKeyArn", "")
        if ":key/" not in key:
            raise InfraError(
                f"the {stack_name(account)} stack has no ArtifactKeyArn output: the use case {use_case!r} needs it "
                "for its approver policy",
                hint=f"deploy the shared stack first: `mlops infra deploy --account {account}`",
            )
        return {
            **parameters,
            "ArtifactKeyId": key.rsplit(":key/", 1)[1],
            "BuildRoleName": shared["DeployRoleName"],
            "RegistryReadRoleName": shared["RegistryReadRoleName"],
            "StagingPassRoleName": shared["StagingPassRoleName"],
            "PipelineExecutionRoleName": shared["PipelineExecutionRoleName"],
            # The bridge exists when the shared stack got its code (BridgeFunctionName is then an output).
            "BridgeRoleName": BRIDGE_ROLE if "BridgeFunctionName" in shared_outputs else "",
        }
    return {
        **parameters,
        "EndpointName": names.endpoint(account),
        "DeployRoleName": shared["DeployRoleName"],
        "EndpointRoleName": shared["EndpointRoleName"],
    }


def use_case_stack_spec(
    config: Config, account: AccountName, use_case: str, shared_outputs: Mapping[str, str]
) -> StackSpec:
    """The stack of one use case in one account (use-case.yaml); `shared_outputs`: the account's shared stack's.
    Its parameters all come from mlops.yaml (`mlops infra deploy` refuses --parameter with --use-case)."""
    known = use_case_names(config)
    if use_case not in known:
        raise InfraError(
            f"--use-case {use_case!r}: no such use case; expected one of {', '.join(known)}",
            hint="use cases are the folders of model_build/use_cases (`mlops new use-case NAME` adds one)",
        )
    path = TEMPLATES_DIR / USE_CASE_TEMPLATE
    parameters = _checked(path, use_case_parameters(config, account, use_case, shared_outputs), None)
    account_id: str = getattr(config.accounts, account).id
    return StackSpec(account, account_id, use_case_stack_name(use_case, account), path, parameters)


def attached_policy_counts(config: Config, account: AccountName) -> tuple[dict[str, int], dict[str, int]]:
    """Per role name of the account: managed policies the shared template attaches, and those each use case's
    stack attaches (the templates as deployed for these parameters, conditions evaluated)."""
    shared_template = load_template(template_path(account))
    shared_parameters = config_parameters(config, account)
    shared: dict[str, int] = {}
    resources = shared_template["Resources"]
    for logical_id in active_resources(shared_template, shared_parameters):
        properties = resources[logical_id].get("Properties") or {}
        if resources[logical_id]["Type"] == "AWS::IAM::Role":
            role = _parameter_value(properties.get("RoleName"), shared_parameters, shared_template)
            shared[role] = shared.get(role, 0) + len(properties.get("ManagedPolicyArns") or [])
        elif resources[logical_id]["Type"] == "AWS::IAM::ManagedPolicy":
            for ref in properties.get("Roles") or []:
                role = _parameter_value(ref, shared_parameters, shared_template)
                shared[role] = shared.get(role, 0) + 1
    template = load_template(TEMPLATES_DIR / USE_CASE_TEMPLATE)
    # The most a use case attaches: with the bridge (its policy counts too); the key's value changes no count.
    outputs = {"ArtifactKeyArn": "arn:aws:kms:us-east-1:000000000000:key/0", "BridgeFunctionName": "mlops-bridge"}
    parameters = use_case_parameters(config, account, config.use_case.name, outputs)
    per_use_case: dict[str, int] = {}
    for logical_id, kind in active_resources(template, parameters).items():
        if kind == "AWS::IAM::ManagedPolicy":
            for ref in template["Resources"][logical_id]["Properties"].get("Roles") or []:
                role = _parameter_value(ref, parameters, template)
                per_use_case[role] = per_use_case.get(role, 0) + 1
    return shared, per_use_case


def check_policy_quota(config: Config, quota: int = DEFAULT_POLICIES_PER_ROLE) -> dict[str, int]:
    """Raise InfraError when the use cases would attach more managed policies to a shared role than IAM allows.

    Returns the most any role of any account carries (for the report). `quota`: the account's "Managed policies
    per role" (10 by default, at most 20 after a Service Quotas increase)."""
    if not 1 <= quota <= MAX_POLICIES_PER_ROLE:
        raise InfraError(
            f"managed-policy quota {quota}: expected 1..{MAX_POLICIES_PER_ROLE} (IAM's managed policies per role)"
        )
    count = len(use_case_names(config))
    totals: dict[str, int] = {}
    for account in ACCOUNTS:
        shared, per_use_case = attached_policy_counts(config, account)
        for role in sorted(set(shared) | set(per_use_case)):
            total = shared.get(role, 0) + count * per_use_case.get(role, 0)
            totals[f"{account}:{role}"] = total
            if total > quota:
                room = (quota - shared.get(role, 0)) // max(per_use_case.get(role, 0), 1)
                raise InfraError(
                    f"{count} use cases need {total} managed policies attached to the {account} account's role "
                    f"{role} ({shared.get(role, 0)} from {template_path(account).name}, "
                    f"{per_use_case.get(role, 0)} per use case from {USE_CASE_TEMPLATE}); IAM allows {quota} per role, "
                    f"so at most {room} use cases fit",
                    hint="raise 'Managed policies per role' in Service Quotas (at most 20) and pass the new quota "
                    "(--policy-quota), or split the use cases across sets of accounts (docs/security.md)",
                )
    return totals


def _parameter_value(node: Any, parameters: Mapping[str, str], template: Mapping[str, Any]) -> str:
    """A role name in a template: a literal, or a Ref to a parameter (given, else its default)."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and set(node) == {"Ref"}:
        name = node["Ref"]
        declared = (template.get("Parameters") or {}).get(name) or {}
        return str(parameters.get(name, declared.get("Default", name)))
    raise InfraError(f"unsupported role name form {node!r}: extend _parameter_value in mlops/infra/templates.py")


def parse_overrides(pairs: tuple[str, ...] | list[str]) -> dict[str, str]:
    overrides: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InfraError(
                f"--parameter {pair!r}: expected KEY=VALUE, e.g. --parameter AzureDevOpsOrganizationId=<guid>"
            )
        overrides[key.strip()] = value
    return overrides


def stack_spec(
    config: Config, account: AccountName, overrides: Mapping[str, str] | None = None, *, access: bool = False
) -> StackSpec:
    path = template_path(account, access=access)
    parameters = access_parameters(config, account) if access else config_parameters(config, account)
    parameters = _checked(path, parameters, overrides)
    account_id: str = getattr(config.accounts, account).id
    return StackSpec(account, account_id, stack_name(account, access=access), path, parameters)


def _checked(path: Path, parameters: dict[str, str], overrides: Mapping[str, str] | None) -> dict[str, str]:
    """The parameters with the overrides applied, each checked against the template's declared parameters."""
    declared = load_template(path).get("Parameters") or {}
    parameters = dict(parameters)
    for key, value in (overrides or {}).items():
        if key not in declared:
            raise InfraError(
                f"--parameter {key}: {path.name} has no such parameter; expected one of {', '.join(sorted(declared))}",
                hint="check the spelling against the template's Parameters section",
            )
        parameters[key] = value
    unknown = sorted(set(parameters) - set(declared))
    if unknown:  # a template and this module out of step: a bug here, not a user error
        raise InfraError(f"{path.name} lacks parameter(s) {', '.join(unknown)} that mlops.yaml fills in")
    return parameters


def parameter_list(
    spec: StackSpec, declared: Mapping[str, Any], previous: frozenset[str]
) -> tuple[list[dict[str, Any]], list[str]]:
    """CloudFormation's Parameters list, and the required parameters nobody supplied.

    A parameter not given here keeps the stack's previous value (UsePreviousValue) or the template default.
    """
    entries: list[dict[str, Any]] = []
    missing: list[str] = []
    for key in sorted(declared):
        if key in spec.parameters:
            entries.append({"ParameterKey": key, "ParameterValue": spec.parameters[key]})
        elif key in previous:
            entries.append({"ParameterKey": key, "UsePreviousValue": True})
        elif "Default" not in (declared[key] or {}):
            missing.append(key)
    return entries, missing


@dataclass(frozen=True)
class Change:
    action: str
    logical_id: str
    resource_type: str
    replacement: str

    def describe(self) -> str:
        replace = {"True": "  (REPLACES the resource)", "Conditional": "  (may replace the resource)"}
        return f"  {self.action:<8}{self.logical_id:<34}{self.resource_type}{replace.get(self.replacement, '')}"


def changes_of(described: Mapping[str, Any]) -> list[Change]:
    found = []
    for entry in described.get("Changes", []):
        change = entry.get("ResourceChange") or {}
        found.append(
            Change(
                action=str(change.get("Action", "?")),
                logical_id=str(change.get("LogicalResourceId", "?")),
                resource_type=str(change.get("ResourceType", "?")),
                replacement=str(change.get("Replacement", "")),
            )
        )
    return found


def active_resources(template: Mapping[str, Any], parameters: Mapping[str, str]) -> dict[str, str]:
    """Logical id -> type of the resources the stack holds for these parameters (conditions evaluated).

    Understands the condition forms the templates use (Equals/Not/And/Or over Ref and literals).
    """
    declared = template.get("Parameters") or {}
    values = {k: str((v or {}).get("Default", "")) for k, v in declared.items()} | dict(parameters)
    conditions = template.get("Conditions") or {}

    def value(node: Any) -> Any:
        if isinstance(node, dict) and "Ref" in node:
            return values.get(node["Ref"], "")
        return node

    def holds(node: Any) -> bool:
        if isinstance(node, dict) and len(node) == 1:
            ((name, args),) = node.items()
            if name == "Fn::Equals":
                return str(value(args[0])) == str(value(args[1]))
            if name == "Fn::Not":
                return not holds(args[0])
            if name == "Fn::And":
                return all(holds(a) for a in args)
            if name == "Fn::Or":
                return any(holds(a) for a in args)
            if name == "Condition":
                return holds(conditions[args])
        raise InfraError(
            f"unsupported condition form {node!r}: extend active_resources() in scripts/mlops/infra/templates.py"
        )

    return {
        logical_id: resource["Type"]
        for logical_id, resource in template["Resources"].items()
        if "Condition" not in resource or holds(conditions[resource["Condition"]])
    }
