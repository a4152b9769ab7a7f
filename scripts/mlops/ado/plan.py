"""The diff between what the project holds and what `mlops.yaml` asks for, as an ordered list of actions. Pure.

The order is what makes `apply` safe to stop and re-run: pipelines, the variable group, environments,
then each environment's checks, then service connections, and only then pipeline permissions (an
environment is authorised for a pipeline only after its approval and branch control exist, so an
interrupted apply never leaves prod usable without its checks), and last the bridge's right to queue
the deploy pipeline. Every action is re-derived from the live state, so a re-run skips what is done.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mlops.ado.desired import (
    BUILD_NAMESPACE,
    MARKER,
    QUEUE_BUILDS,
    CheckSpec,
    Desired,
    EnvironmentSpec,
    approval_settings,
)
from mlops.ado.errors import AdoError

ORDER = ("pipeline", "variable-group", "environment", "check", "connection", "permission", "queue-permission")

# What the caller needs for each kind of change: named in the error when Azure DevOps refuses it.
PERMISSIONS = {
    ("pipeline", "create"): "Build: 'Edit build pipeline' on the project's pipelines",
    ("pipeline", "update"): "Build: 'Edit build pipeline' on pipeline {name}",
    ("variable-group", "create"): "Library: the Creator role on the project's library",
    ("variable-group", "update"): "Library: the Administrator role on variable group {name}",
    ("environment", "create"): "Environments: the Creator role on the project's environments",
    ("check", "create"): "Environments: the Administrator role on environment {name}",
    ("check", "update"): "Environments: the Administrator role on environment {name}",
    ("connection", "create"): "Service connections: the Creator role on the project's service connections",
    ("connection", "update"): "Service connections: the Administrator role on service connection {name}",
    ("permission", "authorize"): "the Administrator role on {name} (pipeline permissions)",
    ("queue-permission", "grant"): "Build: 'Administer build permissions' on pipeline {name}",
}


@dataclass(frozen=True)
class Action:
    kind: str  # one of ORDER
    verb: str  # create | update | authorize | grant
    name: str  # the object acted on, as a person reads it
    detail: str
    payload: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def permission(self) -> str:
        return PERMISSIONS[(self.kind, self.verb)].format(name=self.name)

    def line(self) -> str:
        sign = {"create": "+", "update": "~", "authorize": "+", "grant": "+"}[self.verb]
        return f"{sign} {self.verb} {self.kind} {self.name}" + (f": {self.detail}" if self.detail else "")


@dataclass(frozen=True)
class Conflict:
    kind: str
    name: str
    found: str

    def line(self) -> str:
        return f"! conflict: {self.kind} {self.name} exists and was not created by mlops ado ({self.found}); left alone"


@dataclass
class Current:
    """The project's state as read through the SDK (ids as strings; dicts in the REST shapes)."""

    project_id: str
    repository_id: str | None
    repository_default_branch: str | None = None  # what a new pipeline gets as its default branch
    pipelines: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {id, folder, path}
    environments: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {id, description}
    checks: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # environment name -> configurations
    connections: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {id, description, type, data...}
    # (resource type, resource name) -> {"pipelines": {pipeline id: authorized}, "allPipelines": bool}
    permissions: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    variable_group: dict[str, Any] | None = None
    identities: dict[str, str] = field(default_factory=dict)  # display name -> id (or descriptor for the bridge)
    queue_allowed: bool = False  # the bridge identity may queue the deploy pipeline


@dataclass
class Plan:
    actions: list[Action]
    conflicts: list[Conflict]
    unchanged: int

    @property
    def empty(self) -> bool:
        return not self.actions

    def lines(self) -> list[str]:
        lines = [action.line() for action in self.actions] + [c.line() for c in self.conflicts]
        lines.append(f"{len(self.actions)} to change, {self.unchanged} unchanged, {len(self.conflicts)} conflict(s)")
        return lines


def make_plan(want: Desired, have: Current) -> Plan:
    actions: list[Action] = []
    conflicts: list[Conflict] = []
    unchanged = 0
    foreign: set[tuple[str, str]] = set()

    for pipeline in want.pipelines:
        found = have.pipelines.get(pipeline.name)
        body = {
            "name": pipeline.name,
            "folder": pipeline.folder,
            "configuration": {
                "type": "yaml",
                "path": pipeline.yaml_path,
                "repository": {"id": have.repository_id, "type": "azureReposGit"},
            },
        }
        branch = {"default_branch": want.default_branch}
        if found is None:
            actions.append(
                Action("pipeline", "create", pipeline.name, f"{pipeline.yaml_path} in {pipeline.folder}", body)
            )
            if have.repository_default_branch != want.default_branch:  # a new pipeline gets the repository's
                detail = f"default branch {have.repository_default_branch} -> {want.default_branch}"
                actions.append(Action("pipeline", "update", pipeline.name, detail, branch))
        elif found.get("folder") != pipeline.folder or found.get("path") != pipeline.yaml_path:
            conflicts.append(
                Conflict("pipeline", pipeline.name, f"folder {found.get('folder')}, YAML {found.get('path')}")
            )
            foreign.add(("pipeline", pipeline.name))
        elif found.get("default_branch") != want.default_branch:
            detail = f"default branch {found.get('default_branch')} -> {want.default_branch}"
            actions.append(Action("pipeline", "update", pipeline.name, detail, branch))
        else:
            unchanged += 1

    group = want.variable_group
    variables = {name: {"value": value, "isSecret": False} for name, value in group.variables}
    group_body = {"name": group.name, "description": group.description, "type": "Vsts", "variables": variables}
    if have.variable_group is None:
        actions.append(Action("variable-group", "create", group.name, f"{len(variables)} variables", group_body))
    elif MARKER not in str(have.variable_group.get("description") or ""):
        conflicts.append(Conflict("variable-group", group.name, _described(have.variable_group)))
        foreign.add(("variablegroup", group.name))
    else:
        current = {k: (v or {}).get("value") for k, v in (have.variable_group.get("variables") or {}).items()}
        if current != {k: v["value"] for k, v in variables.items()}:
            changed = sorted(
                set(current) ^ set(variables) | {k for k in variables if current.get(k) != variables[k]["value"]}
            )
            actions.append(
                Action("variable-group", "update", group.name, f"variables {', '.join(changed)}", group_body)
            )
        else:
            unchanged += 1

    for environment in want.environments:
        found = have.environments.get(environment.name)
        if found is None:
            body = {"name": environment.name, "description": environment.description}
            actions.append(Action("environment", "create", environment.name, "", body))
        elif MARKER not in str(found.get("description") or ""):
            conflicts.append(Conflict("environment", environment.name, _described(found)))
            foreign.add(("environment", environment.name))
            continue
        else:
            unchanged += 1
        for check in environment.checks:
            action = _check_action(want, environment, check, have.checks.get(environment.name, []), have.identities)
            if action is None:
                unchanged += 1
            else:
                actions.append(action)

    for connection in want.connections:
        found = have.connections.get(connection.name)
        body = _connection_body(
            want, connection.name, connection.description, connection.role_arn, connection.session_name
        )
        if found is None:
            actions.append(Action("connection", "create", connection.name, connection.role_arn, body))
        elif MARKER not in str(found.get("description") or ""):
            conflicts.append(Conflict("service connection", connection.name, _described(found)))
            foreign.add(("endpoint", connection.name))
        elif _connection_differs(found, body):
            actions.append(Action("connection", "update", connection.name, connection.role_arn, body))
        else:
            unchanged += 1

    resources: list[tuple[str, str, tuple[str, ...]]] = [
        *(("endpoint", c.name, c.pipelines) for c in want.connections),
        *(("environment", e.name, e.pipelines) for e in want.environments),
        ("variablegroup", group.name, group.pipelines),
    ]
    for resource_type, name, keys in resources:
        if (resource_type, name) in foreign:
            continue
        pipeline_names = [want.pipeline(key).name for key in keys]
        if any(("pipeline", p) in foreign for p in pipeline_names):
            continue
        current = have.permissions.get((resource_type, name), {"pipelines": {}, "allPipelines": False})
        authorized = {str(pid) for pid, ok in (current.get("pipelines") or {}).items() if ok}
        wanted_ids = {str(have.pipelines[p]["id"]) for p in pipeline_names if p in have.pipelines}
        missing_new = [p for p in pipeline_names if p not in have.pipelines]  # created by this apply
        revoke = sorted(authorized - wanted_ids)
        grant = sorted(wanted_ids - authorized)
        if grant or revoke or missing_new or current.get("allPipelines"):
            detail = (
                f"pipelines {', '.join(pipeline_names)} only"
                + (" (open access to all pipelines removed)" if current.get("allPipelines") else "")
                + (f"; revoke {', '.join(revoke)}" if revoke else "")
            )
            payload = {
                "resource_type": resource_type,
                "resource_name": name,
                "pipelines": pipeline_names,
                "revoke": revoke,
            }
            actions.append(
                Action("permission", "authorize", f"{_resource_word(resource_type)} {name}", detail, payload)
            )
        else:
            unchanged += 1

    if want.bridge_identity:
        if want.bridge_identity not in have.identities:
            raise AdoError(
                f"the bridge identity {want.bridge_identity!r} (azure_devops.setup.bridge_identity) was not found "
                "in the organization",
                hint="add the bridge's user or service principal to the organization, or fix the name in mlops.yaml",
            )
        deploy = want.pipeline("deploy").name
        if ("pipeline", deploy) not in foreign and not have.queue_allowed:
            queue_grant: dict[str, Any] = {
                "namespace": BUILD_NAMESPACE,
                "bit": QUEUE_BUILDS,
                "identity": want.bridge_identity,
            }
            actions.append(
                Action("queue-permission", "grant", deploy, f"'Queue builds' for {want.bridge_identity}", queue_grant)
            )
        elif have.queue_allowed:
            unchanged += 1
    actions.sort(key=lambda a: ORDER.index(a.kind))  # stable: keeps each kind's declared order
    return Plan(actions, conflicts, unchanged)


def _check_action(
    want: Desired,
    environment: EnvironmentSpec,
    check: CheckSpec,
    configured: list[dict[str, Any]],
    identities: dict[str, str],
) -> Action | None:
    settings = dict(check.settings)
    if check.kind == "approval":
        if want.approvers not in identities:
            raise AdoError(
                f"the approver group {want.approvers!r} (azure_devops.setup.approvers) was not found "
                "in the organization",
                hint="create the group in Project settings > Permissions and add the approvers, "
                "or set azure_devops.setup.approvers to an existing group",
            )
        settings = approval_settings(identities[want.approvers], want.approvers, environment.name)
    body = {
        "type": check.type,
        "settings": settings,
        "timeout": check.timeout_minutes,
        "resource": {"type": "environment", "name": environment.name},
    }
    same_type = [c for c in configured if _same_check(c, check)]
    label = {"approval": "approval", "branch-control": "branch control", "exclusive-lock": "exclusive lock"}[check.kind]
    if not same_type:
        return Action("check", "create", environment.name, label, body)
    existing = same_type[0]
    if existing.get("timeout") != check.timeout_minutes or not _settings_match(
        existing.get("settings") or {}, settings
    ):
        return Action("check", "update", environment.name, label, {**body, "id": existing["id"]})
    return None


def _same_check(configured: dict[str, Any], check: CheckSpec) -> bool:
    type_id = str((configured.get("type") or {}).get("id", "")).lower()
    if type_id != check.type["id"]:
        return False
    if check.kind == "branch-control":
        definition = ((configured.get("settings") or {}).get("definitionRef") or {}).get("id")
        return bool(str(definition).lower() == check.settings["definitionRef"]["id"])
    return True


def _settings_match(current: dict[str, Any], wanted: dict[str, Any]) -> bool:
    for key, value in wanted.items():
        if key == "approvers":
            have = sorted(str(a.get("id")) for a in current.get("approvers") or [])
            if have != sorted(str(a["id"]) for a in value):
                return False
        elif current.get(key) != value:
            return False
    return True


def _connection_body(want: Desired, name: str, description: str, role_arn: str, session_name: str) -> dict[str, Any]:
    # The AWS Toolkit's "AWS" endpoint: no keys, the role to assume, and OIDC on (a web identity token
    # for sc://<org>/<project>/<name>).
    return {
        "name": name,
        "description": description,
        "type": "AWS",
        "url": "https://aws.amazon.com/",
        "authorization": {
            "scheme": "UsernamePassword",
            "parameters": {
                "username": "",
                "password": "",
                "assumeRoleArn": role_arn,
                "roleSessionName": session_name,
                "externalId": "",
                "useOIDC": "true",
            },
        },
        "isShared": False,
        "owner": "library",
    }


def _connection_differs(found: dict[str, Any], body: dict[str, Any]) -> bool:
    if found.get("type") != body["type"] or found.get("description") != body["description"]:
        return True
    parameters = (found.get("authorization") or {}).get("parameters") or {}
    wanted = body["authorization"]["parameters"]
    return any(parameters.get(key) != wanted[key] for key in ("assumeRoleArn", "roleSessionName", "useOIDC"))


def _described(found: dict[str, Any]) -> str:
    return f"description {str(found.get('description') or '')!r}"


def _resource_word(resource_type: str) -> str:
    return {"endpoint": "service connection", "environment": "environment", "variablegroup": "variable group"}[
        resource_type
    ]
