"""The project side of the fake Azure DevOps: pipelines, environments and checks, service connections,
pipeline permissions, variable groups, identities, Build ACLs and approvals, with Azure DevOps's shapes.

Shapes follow Microsoft's REST spec (vsts-rest-api-specs, 7.1): CheckConfiguration, ResourcePipelinePermissions,
ServiceEndpoint, VariableGroup, EnvironmentInstance, Approval, AccessControlEntry. State is one JSON document,
written to `store` (when given) after every change, so a twin's Azure DevOps survives a restart.

The same state is what the local runner enforces (`ProjectChecks` in mlops.local.ado_checks): a connection or
environment a pipeline is not authorised for, branch control, approvals that wait for the approvals API, and
environments auto-created without checks when a pipeline names one that does not exist.
"""

from __future__ import annotations

import fnmatch
import json
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

Answer = tuple[int, dict[str, str], bytes]

# (location id, area, resource name, route template, max version): what OPTIONS {org}/_apis lists for them.
LOCATIONS: tuple[tuple[str, str, str, str], ...] = (
    ("e81700f7-3be2-46de-8624-2eb35882fcaa", "Location", "ResourceAreas", "_apis/{resource}/{areaId}"),
    ("603fe2ac-9723-48b9-88ad-09305aa6c6e1", "core", "projects", "_apis/{resource}/{*projectId}"),
    ("225f7195-f9c7-4d14-ab28-a83f7ff77e1f", "git", "repositories", "{project}/_apis/{area}/{resource}/{repositoryId}"),
    (
        "8572b1fc-2482-47fa-8f74-7e3ed53ee54b",
        "distributedtask",
        "environments",
        "{project}/_apis/{area}/{resource}/{environmentId}",
    ),
    (
        "86c8381e-5aee-4cde-8ae4-25c0c7f5eaea",
        "PipelinesChecks",
        "configurations",
        "{project}/_apis/pipelines/checks/{resource}/{id}",
    ),
    (
        "b5b9a4a4-e6cd-4096-853c-ab7d8b0c4eb2",
        "pipelinePermissions",
        "pipelinePermissions",
        "{project}/_apis/pipelines/{resource}/{resourceType}/{resourceId}",
    ),
    ("14e48fdc-2c8b-41ce-a0c3-e26f6cc55bd0", "serviceendpoint", "endpoints", "_apis/{area}/{resource}/{endpointId}"),
    (
        "e85f1c62-adfc-4b74-b618-11a150fb195e",
        "serviceendpoint",
        "endpoints",
        "{project}/_apis/{area}/{resource}/{endpointId}",
    ),
    ("ef5b7057-ffc3-4c77-bbad-c10b4a4abcc7", "distributedtask", "variablegroups", "_apis/{area}/{resource}/{groupId}"),
    (
        "f5b09dd5-9d54-45a1-8b5a-1c8287d634cc",
        "distributedtask",
        "variablegroups",
        "{project}/_apis/{area}/{resource}/{groupId}",
    ),
    ("28010c54-d0c0-4c89-a5b0-1c9e188b9fb7", "IMS", "Identities", "_apis/{resource}/{identityId}"),
    ("dbeaf647-6167-421a-bda9-c9327b25e2e6", "build", "definitions", "{project}/_apis/build/{resource}/{definitionId}"),
    (
        "ac08c8ff-4323-4b08-af90-bcd018d380ce",
        "Security",
        "AccessControlEntries",
        "_apis/{resource}/{securityNamespaceId}",
    ),
    (
        "18a2ad18-7571-46ae-bec7-0c7da1495885",
        "Security",
        "AccessControlLists",
        "_apis/{resource}/{securityNamespaceId}",
    ),
)

# What a write needs; `deny` in the store takes these keys and answers 403 naming the permission.
PERMISSION_NAMES = {
    "pipeline": "'Edit build pipeline' (Build) on the project's pipelines",
    "environment": "the Creator role on environments",
    "check": "the Administrator role on the environment",
    "endpoint": "the Creator role on service connections",
    "permission": "the Administrator role on the resource",
    "variablegroup": "the Creator role on the library",
    "security": "'Administer build permissions' (Build)",
}
BUILD_NAMESPACE = "33344d9c-fc72-4d6f-aba5-fa317101a7e9"
APPROVAL_TYPE_ID = "8c6f20a7-a545-4486-9777-f762fafe0d4d"
TASK_CHECK_TYPE_ID = "fe1de3ee-a436-41b4-bb20-f6eb4cb879a7"
EXCLUSIVE_LOCK_TYPE_ID = "2ef31ad6-baa0-403a-8b45-2cbc9b4e5563"
BRANCH_CONTROL_ID = "86b05a0c-73e6-4f7d-b3cf-e38f3b39a75b"
EXTENDS_CHECK_TYPE_ID = "4020e66e-b0f3-47e1-bc88-48f3cc59b5f3"  # "Required template"
CALLER = {"displayName": "mlops (fake caller)", "id": "00000000-0000-0000-0000-00000000c0de"}


def _json(status: int, payload: Any) -> Answer:
    return status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(payload).encode()


def _error(status: int, message: str, type_key: str = "InvalidRequestException") -> Answer:
    payload = {
        "$id": "1",
        "innerException": None,
        "message": message,
        "typeName": f"{type_key}, Fake",
        "typeKey": type_key,
        "errorCode": 0,
        "eventId": 3000,
    }
    return _json(status, payload)


def _collection(items: list[Any]) -> Answer:
    return _json(200, {"count": len(items), "value": items})


@dataclass(frozen=True)
class Gate:
    """What the project says about one deployment job entering an environment."""

    environment: dict[str, Any]
    refusal: str | None
    created: bool
    approval: dict[str, Any] | None  # the approval check's configuration, when there is one


class ProjectStore:
    def __init__(
        self,
        project: str,
        *,
        store: Path | None = None,
        identities: tuple[str, ...] = (),
        repositories: tuple[str, ...] = (),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.project = project
        self.store = store
        self.deny: set[str] = set()
        self._clock = clock
        self._lock = threading.Condition()
        if store is not None and store.is_file():
            self.state: dict[str, Any] = json.loads(store.read_text())
        else:
            self.state = {
                "project": {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"fake-ado/{project}")), "name": project},
                "next_id": 1,
                "repositories": [],
                "identities": [],
                "pipelines": [],
                "environments": [],
                "checks": [],
                "endpoints": [],
                "variablegroups": [],
                "permissions": {},
                "acls": {},
                "approvals": [],
            }
            for name in (project, *repositories):
                self.add_repository(name)
            for name in identities:
                self.add_identity(name)

    # ------------------------------------------------------------------------------------ state
    def _id(self) -> int:
        value = int(self.state["next_id"])
        self.state["next_id"] = value + 1
        return value

    def _now(self) -> str:
        return self._clock().strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def _save(self) -> None:
        if self.store is not None:
            self.store.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.store.with_suffix(".tmp")
            temporary.write_text(json.dumps(self.state, indent=1, sort_keys=True))
            temporary.replace(self.store)

    def add_repository(self, name: str) -> dict[str, Any]:
        with self._lock:
            if any(r["name"].lower() == name.lower() for r in self.state["repositories"]):
                return next(r for r in self.state["repositories"] if r["name"].lower() == name.lower())
            repository = {
                "id": str(uuid.uuid4()),
                "name": name,
                "defaultBranch": "refs/heads/main",
                "project": dict(self.state["project"]),
            }
            self.state["repositories"].append(repository)
            self._save()
            return repository

    def add_identity(self, name: str) -> dict[str, Any]:
        with self._lock:
            identity = {
                "id": str(uuid.uuid4()),
                "providerDisplayName": name,
                "descriptor": f"Microsoft.TeamFoundation.Identity;S-1-9-{abs(hash(name)) % 10**10}",
                "isContainer": name.startswith("["),
                "isActive": True,
            }
            self.state["identities"].append(identity)
            self._save()
            return identity

    def add_environment(self, name: str, description: str = "", created_by: str = "user") -> dict[str, Any]:
        with self._lock:
            environment = {
                "id": self._id(),
                "name": name,
                "description": description,
                "createdBy": {**CALLER, "displayName": created_by},
                "createdOn": self._now(),
                "project": dict(self.state["project"]),
            }
            self.state["environments"].append(environment)
            self._save()
            return environment

    def environment(self, name: str) -> dict[str, Any] | None:
        return next((e for e in self.state["environments"] if e["name"].lower() == name.lower()), None)

    def pipeline_for_file(self, path: str) -> dict[str, Any] | None:
        wanted = path.lstrip("/").replace("\\", "/")
        return next((p for p in self.state["pipelines"] if p["configuration"]["path"].lstrip("/") == wanted), None)

    def _permission(self, resource_type: str, resource_id: Any) -> dict[str, Any]:
        key = f"{resource_type}/{resource_id}"
        permission: dict[str, Any] = self.state["permissions"].setdefault(
            key, {"resource": {"type": resource_type, "id": str(resource_id)}, "pipelines": [], "allPipelines": None}
        )
        return permission

    def authorized(self, resource_type: str, resource_id: Any, pipeline_id: int) -> bool:
        permission = self.state["permissions"].get(f"{resource_type}/{resource_id}")
        if permission is None:
            return False
        if (permission.get("allPipelines") or {}).get("authorized"):
            return True
        return any(p["id"] == pipeline_id and p["authorized"] for p in permission["pipelines"])

    def checks_on(self, resource_type: str, resource_id: Any) -> list[dict[str, Any]]:
        return [
            c
            for c in self.state["checks"]
            if c["resource"]["type"] == resource_type and str(c["resource"]["id"]) == str(resource_id)
        ]

    # ------------------------------------------------------------------------------------ enforcement
    def connection_refusal(self, pipeline_id: int, job: str, step: str, name: str) -> str | None:
        """Azure DevOps's message when a job's step names a connection the pipeline may not use, else None."""
        endpoint = next((e for e in self.state["endpoints"] if e["name"].lower() == name.lower()), None)
        if endpoint is not None and self.authorized("endpoint", endpoint["id"], pipeline_id):
            return None
        return (
            f"Job {job}: Step {step} input awsCredentials references service connection {name} which could not be "
            "found. The service connection does not exist, has been disabled or has not been authorized for use. "
            "For authorization details, refer to https://aka.ms/yamlauthz."
        )

    def variable_group_values(self, pipeline_id: int, name: str) -> dict[str, str] | str:
        group = next((g for g in self.state["variablegroups"] if g["name"] == name), None)
        if group is None or not self.authorized("variablegroup", group["id"], pipeline_id):
            return (
                f"Variable group {name} could not be found. The variable group does not exist or has not been "
                "authorized for use. For authorization details, refer to https://aka.ms/yamlauthz."
            )
        return {key: str((value or {}).get("value") or "") for key, value in (group.get("variables") or {}).items()}

    def environment_gate(
        self, pipeline_id: int, job: str, name: str, branch: str, extends: tuple[str, str] | None = None
    ) -> Gate:
        with self._lock:
            environment = self.environment(name)
            created = False
            if environment is None:
                # Azure DevOps creates a missing environment on first use, with no checks, and authorises it
                # for the pipeline that created it.
                environment = self.add_environment(name, "", created_by="pipeline (auto-created on first use)")
                permission = self._permission("environment", environment["id"])
                permission["pipelines"].append(
                    {"id": pipeline_id, "authorized": True, "authorizedBy": CALLER, "authorizedOn": self._now()}
                )
                self._save()
                created = True
        if not self.authorized("environment", environment["id"], pipeline_id):
            refusal = (
                f"Job {job}: Environment {name} could not be found. The environment does not exist or has not been "
                "authorized for use. For authorization details, refer to https://aka.ms/yamlauthz."
            )
            return Gate(environment, refusal, created, None)
        approval = None
        for check in self.checks_on("environment", environment["id"]):
            type_id = check["type"]["id"].lower()
            settings = check.get("settings") or {}
            if type_id == TASK_CHECK_TYPE_ID and (settings.get("definitionRef") or {}).get("id") == BRANCH_CONTROL_ID:
                allowed = [b.strip() for b in str((settings.get("inputs") or {}).get("allowedBranches", "")).split(",")]
                if not any(fnmatch.fnmatchcase(branch, pattern) for pattern in allowed if pattern):
                    refusal = (
                        f"Branch control check on environment {name} failed: the run's branch {branch} is not one of "
                        f"the allowed branches {', '.join(allowed)}"
                    )
                    return Gate(environment, refusal, created, None)
            elif type_id == EXTENDS_CHECK_TYPE_ID:
                required = [
                    (str(r.get("repositoryName", "")), str(r.get("templatePath", "")).lstrip("/"))
                    for r in settings.get("extendsChecks") or []
                ]
                if extends is None or extends not in required:
                    shown = ", ".join(f"{path}@{repository}" for repository, path in required)
                    found = f"{extends[1]}@{extends[0]}" if extends else "no template"
                    refusal = (
                        f"Required template check on environment {name} failed: the pipeline extends {found}, "
                        f"it must extend {shown}"
                    )
                    return Gate(environment, refusal, created, None)
            elif type_id == APPROVAL_TYPE_ID:
                approval = check
        return Gate(environment, None, created, approval)

    def open_approval(self, run_id: int, stage: str, environment: str, check: dict[str, Any]) -> dict[str, Any]:
        settings = check.get("settings") or {}
        with self._lock:
            approval = {
                "id": str(uuid.uuid4()),
                "status": "pending",
                "createdOn": self._now(),
                "lastModifiedOn": self._now(),
                "executionOrder": settings.get("executionOrder", "anyOrder"),
                "minRequiredApprovers": settings.get("minRequiredApprovers", 1),
                "instructions": settings.get("instructions", ""),
                "blockedApprovers": settings.get("blockedApprovers", []),
                "steps": [
                    {"assignedApprover": a, "status": "pending", "order": i + 1, "initiatedOn": self._now()}
                    for i, a in enumerate(settings.get("approvers") or [])
                ],
                "pipeline": {"id": run_id, "name": stage, "environment": environment},
                "timeoutMinutes": check.get("timeout"),
            }
            self.state["approvals"].append(approval)
            self._save()
            self._lock.notify_all()
            return approval

    def wait_approval(self, approval_id: str, timeout_seconds: float | None) -> str:
        """Block until the approval is no longer pending (approved, rejected, or timedOut after the timeout)."""
        with self._lock:
            approval = next(a for a in self.state["approvals"] if a["id"] == approval_id)
            decided = self._lock.wait_for(lambda: approval["status"] != "pending", timeout=timeout_seconds)
            if not decided:
                approval["status"] = "timedOut"
                self._save()
            return str(approval["status"])

    def pending_approvals(self) -> list[dict[str, Any]]:
        return [a for a in self.state["approvals"] if a["status"] == "pending"]

    # ------------------------------------------------------------------------------------ REST
    def handle(self, method: str, path: str, query: dict[str, list[str]], body: Any, org: str) -> Answer | None:
        """The answer for a project API request, or None when the path is not one of these APIs."""
        rest = path.strip("/").split("/", 1)[1] if "/" in path.strip("/") else ""
        for pattern, handler in self._routes():
            match = re.fullmatch(pattern, rest, flags=re.IGNORECASE)
            if match is not None:
                groups = match.groupdict()
                project = groups.pop("project", None)
                if project is not None and project.lower() not in (self.project.lower(), self.state["project"]["id"]):
                    return _error(
                        404,
                        f"TF200016: The following project does not exist: {project}.",
                        "ProjectDoesNotExistWithNameException",
                    )
                with self._lock:
                    answer = handler(method, groups, {k: v[0] for k, v in query.items()}, body)
                    self._lock.notify_all()
                return answer
        return None

    def _routes(self) -> list[tuple[str, Callable[..., Answer]]]:
        p = r"(?P<project>[^/]+)/_apis"
        return [
            (r"_apis/ResourceAreas(?:/[^/]+)?", lambda *a: _collection([])),  # on-premises style: all on this URL
            (r"_apis/projects/(?P<name>[^/]+)", self._project),
            (p + r"/git/repositories/(?P<name>[^/]+)", self._repository),
            (p + r"/pipelines/checks/configurations(?:/(?P<id>\d+))?", self._checks),
            (p + r"/pipelines/pipelinePermissions/(?P<type>[^/]+)/(?P<id>[^/]+)", self._permissions),
            (p + r"/pipelines/approvals(?:/(?P<id>[^/]+))?", self._approvals),
            (p + r"/pipelines(?:/(?P<id>\d+))?", self._pipelines),
            (p + r"/build/definitions/(?P<id>\d+)", self._definitions),
            (p + r"/distributedtask/environments(?:/(?P<id>\d+))?", self._environments),
            (r"(?:(?P<project>[^/]+)/)?_apis/serviceendpoint/endpoints(?:/(?P<id>[^/]+))?", self._endpoints),
            (r"(?:(?P<project>[^/]+)/)?_apis/distributedtask/variablegroups(?:/(?P<id>\d+))?", self._variable_groups),
            (r"_apis/identities(?:/(?P<id>[^/]+))?", self._identities),
            (r"_apis/AccessControlEntries/(?P<ns>[^/]+)", self._aces),
            (r"_apis/AccessControlLists/(?P<ns>[^/]+)", self._acls),
        ]

    def _denied(self, kind: str, target: str) -> Answer | None:
        if kind not in self.deny:
            return None
        return _error(
            403,
            f"Access denied. {CALLER['displayName']} needs {PERMISSION_NAMES[kind]} to perform this action on "
            f"{target}. For more information, contact the Azure DevOps Server administrator.",
            "AccessCheckException",
        )

    def _project(self, method: str, g: dict[str, str], q: dict[str, str], body: Any) -> Answer:
        if g["name"].lower() not in (self.project.lower(), self.state["project"]["id"]):
            return _error(
                404,
                f"TF200016: The following project does not exist: {g['name']}.",
                "ProjectDoesNotExistWithNameException",
            )
        return _json(200, {**self.state["project"], "state": "wellFormed", "visibility": "private", "revision": 1})

    def _repository(self, method: str, g: dict[str, str], q: dict[str, str], body: Any) -> Answer:
        found = next((r for r in self.state["repositories"] if g["name"].lower() in (r["name"].lower(), r["id"])), None)
        if found is None:
            return _error(
                404,
                f"TF401019: The Git repository with name or identifier {g['name']} does not exist or "
                "you do not have permissions for the operation you are attempting.",
                "GitRepositoryNotFoundException",
            )
        return _json(200, found)

    def _pipelines(self, method: str, g: dict[str, str], q: dict[str, str], body: Any) -> Answer:
        if method == "GET" and g.get("id"):
            found = next((p for p in self.state["pipelines"] if p["id"] == int(g["id"])), None)
            if found is None:
                return _error(404, f"Pipeline with id {g['id']} does not exist.", "PipelineNotFoundException")
            return _json(200, found)
        if method == "GET":
            return _collection([{k: v for k, v in p.items() if k != "configuration"} for p in self.state["pipelines"]])
        if method != "POST":
            return _error(405, f"{method} is not supported on pipelines")
        denied = self._denied("pipeline", f"pipeline {body.get('name')}")
        if denied:
            return denied
        configuration = body.get("configuration") or {}
        repository = (configuration.get("repository") or {}).get("id")
        missing = [k for k in ("name",) if not body.get(k)] + [
            k for k in ("type", "path", "repository") if not configuration.get(k)
        ]
        if missing:
            return _error(400, f"The pipeline definition is missing {', '.join(missing)}.", "ArgumentException")
        if not any(r["id"] == repository for r in self.state["repositories"]):
            return _error(400, f"Repository {repository} does not exist.", "ArgumentException")
        folder = body.get("folder") or "\\"
        if any(p["name"].lower() == body["name"].lower() and p["folder"] == folder for p in self.state["pipelines"]):
            return _error(
                409, f"A pipeline named {body['name']} already exists in folder {folder}.", "DefinitionExistsException"
            )
        pipeline = {
            "id": self._id(),
            "name": body["name"],
            "folder": folder,
            "revision": 1,
            "configuration": {
                "type": configuration["type"],
                "path": configuration["path"],
                "repository": {"id": repository, "type": configuration["repository"].get("type")},
            },
            "url": f"/{self.project}/_apis/pipelines/{len(self.state['pipelines']) + 1}",
        }
        self.state["pipelines"].append(pipeline)
        self._save()
        return _json(200, pipeline)

    def _definition(self, pipeline: dict[str, Any]) -> dict[str, Any]:
        """A YAML pipeline as the Build API shows it (BuildDefinition, build 7.1)."""
        configuration = pipeline["configuration"]
        repository = next(r for r in self.state["repositories"] if r["id"] == configuration["repository"]["id"])
        return {
            "id": pipeline["id"],
            "name": pipeline["name"],
            "path": pipeline["folder"],
            "revision": pipeline["revision"],
            "type": "build",
            "queueStatus": "enabled",
            "project": dict(self.state["project"]),
            "process": {"type": 2, "yamlFilename": configuration["path"]},
            "repository": {
                "id": repository["id"],
                "type": "TfsGit",
                "name": repository["name"],
                "defaultBranch": pipeline.get("defaultBranch") or repository["defaultBranch"],
            },
        }

    def _definitions(self, method: str, g: dict[str, str], q: dict[str, str], body: Any) -> Answer:
        pipeline = next((p for p in self.state["pipelines"] if p["id"] == int(g["id"])), None)
        if pipeline is None:
            return _error(
                404, f"The requested build definition {g['id']} could not be found.", "DefinitionNotFoundException"
            )
        if method == "GET":
            return _json(200, self._definition(pipeline))
        if method != "PUT":
            return _error(405, f"{method} is not supported on build definitions by the fake (GET, PUT)")
        denied = self._denied("pipeline", f"pipeline {pipeline['name']}")
        if denied:
            return denied
        if not isinstance(body, dict) or body.get("revision") != pipeline["revision"]:
            return _error(
                409,
                f"TF215032: The definition {pipeline['name']} was updated by another client "
                f"(revision {pipeline['revision']}, the request has {(body or {}).get('revision')}).",
                "DefinitionNotMatchedException",
            )
        branch = ((body.get("repository") or {}).get("defaultBranch")) or None
        if branch is not None and not str(branch).startswith("refs/heads/"):
            return _error(400, f"defaultBranch must be a full ref such as refs/heads/main, got {branch!r}")
        pipeline["defaultBranch"] = branch
        pipeline["revision"] += 1
        self._save()
        return _json(200, self._definition(pipeline))

    def _environments(self, method: str, g: dict[str, str], q: dict[str, str], body: Any) -> Answer:
        if method == "GET":
            if g.get("id"):
                found = next((e for e in self.state["environments"] if e["id"] == int(g["id"])), None)
                return (
                    _json(200, found)
                    if found
                    else _error(404, f"Environment {g['id']} not found.", "EnvironmentNotFoundException")
                )
            name = q.get("name")
            listed = [e for e in self.state["environments"] if name is None or e["name"].lower() == name.lower()]
            return _collection(listed)
        if method != "POST":
            return _error(405, f"{method} is not supported on environments")
        denied = self._denied("environment", f"environment {body.get('name')}")
        if denied:
            return denied
        name = str(body.get("name") or "")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._ -]{0,79}", name):
            return _error(400, f"Environment name {name!r} is not valid.", "ArgumentException")
        if self.environment(name) is not None:
            return _error(409, f"Environment with name {name} already exists.", "EnvironmentExistsException")
        return _json(200, self.add_environment(name, str(body.get("description") or ""), CALLER["displayName"]))

    def _checks(self, method: str, g: dict[str, str], q: dict[str, str], body: Any) -> Answer:
        if method == "GET" and not g.get("id"):
            listed = self.checks_on(q.get("resourceType", ""), q.get("resourceId", ""))
            expand = q.get("$expand", "") == "settings"
            return _collection([c if expand else {k: v for k, v in c.items() if k != "settings"} for c in listed])
        if method == "GET":
            found = next((c for c in self.state["checks"] if c["id"] == int(g["id"])), None)
            return _json(200, found) if found else _error(404, f"Check configuration {g['id']} not found.")
        if method not in ("POST", "PATCH"):
            return _error(405, f"{method} is not supported on check configurations")
        resource = body.get("resource") or {}
        denied = self._denied("check", f"{resource.get('type')} {resource.get('name') or resource.get('id')}")
        if denied:
            return denied
        missing = [k for k in ("type", "resource", "settings", "timeout") if body.get(k) in (None, "")]
        if missing or not (body["type"] or {}).get("id") or not resource.get("id"):
            return _error(
                400,
                f"The check configuration is missing {', '.join(missing) or 'type.id/resource.id'}.",
                "ArgumentException",
            )
        if resource.get("type") == "environment" and not any(
            str(e["id"]) == str(resource["id"]) for e in self.state["environments"]
        ):
            return _error(404, f"Environment {resource['id']} not found.", "EnvironmentNotFoundException")
        check = {
            "id": 0,
            "type": body["type"],
            "settings": body["settings"],
            "timeout": int(body["timeout"]),
            "resource": {"type": resource["type"], "id": str(resource["id"]), "name": resource.get("name")},
            "createdBy": CALLER,
            "createdOn": self._now(),
            "modifiedBy": CALLER,
            "modifiedOn": self._now(),
        }
        if method == "PATCH":
            found = next((c for c in self.state["checks"] if c["id"] == int(g.get("id") or 0)), None)
            if found is None:
                return _error(404, f"Check configuration {g.get('id')} not found.")
            found.update({k: v for k, v in check.items() if k not in ("id", "createdBy", "createdOn")})
            self._save()
            return _json(200, found)
        check["id"] = self._id()
        self.state["checks"].append(check)
        self._save()
        return _json(200, check)

    def _permissions(self, method: str, g: dict[str, str], q: dict[str, str], body: Any) -> Answer:
        if method == "GET":  # a read creates nothing
            empty: dict[str, Any] = {
                "resource": {"type": g["type"], "id": g["id"]},
                "pipelines": [],
                "allPipelines": None,
            }
            return _json(200, self.state["permissions"].get(f"{g['type']}/{g['id']}", empty))
        permission = self._permission(g["type"], g["id"])
        if method == "PATCH":
            denied = self._denied("permission", f"{g['type']} {g['id']}")
            if denied:
                return denied
            for entry in (body or {}).get("pipelines") or []:
                existing = next((p for p in permission["pipelines"] if p["id"] == int(entry["id"])), None)
                if existing is None:
                    existing = {"id": int(entry["id"])}
                    permission["pipelines"].append(existing)
                existing.update(
                    {"authorized": bool(entry.get("authorized")), "authorizedBy": CALLER, "authorizedOn": self._now()}
                )
            if (body or {}).get("allPipelines") is not None:
                permission["allPipelines"] = {
                    "authorized": bool(body["allPipelines"].get("authorized")),
                    "authorizedBy": CALLER,
                    "authorizedOn": self._now(),
                }
            self._save()
        elif method != "GET":
            return _error(405, f"{method} is not supported on pipeline permissions")
        return _json(200, permission)

    def _endpoints(self, method: str, g: dict[str, str], q: dict[str, str], body: Any) -> Answer:
        if method == "GET":
            names = [n.lower() for n in q.get("endpointNames", "").split(",") if n]
            listed = [e for e in self.state["endpoints"] if not names or e["name"].lower() in names]
            return _collection(listed)
        if method not in ("POST", "PUT"):
            return _error(405, f"{method} is not supported on service endpoints")
        denied = self._denied("endpoint", f"service connection {body.get('name')}")
        if denied:
            return denied
        missing = [
            k for k in ("name", "type", "url", "authorization", "serviceEndpointProjectReferences") if not body.get(k)
        ]
        if missing:
            return _error(400, f"The service endpoint is missing {', '.join(missing)}.", "ArgumentException")
        if method == "POST":
            if any(e["name"].lower() == body["name"].lower() for e in self.state["endpoints"]):
                return _error(
                    409,
                    f"Service connection with name {body['name']} already exists.",
                    "DuplicateServiceConnectionException",
                )
            endpoint: dict[str, Any] = {**body, "id": str(uuid.uuid4()), "isReady": True, "createdBy": CALLER}
            self.state["endpoints"].append(endpoint)
            self._save()
            return _json(200, endpoint)
        found = next((e for e in self.state["endpoints"] if e["id"] == g.get("id")), None)
        if found is None:
            return _error(404, f"Service connection {g.get('id')} not found.")
        found.update({k: v for k, v in body.items() if k != "id"})
        self._save()
        return _json(200, found)

    def _variable_groups(self, method: str, g: dict[str, str], q: dict[str, str], body: Any) -> Answer:
        if method == "GET":
            name = q.get("groupName")
            return _collection([v for v in self.state["variablegroups"] if name is None or v["name"] == name])
        if method not in ("POST", "PUT"):
            return _error(405, f"{method} is not supported on variable groups")
        denied = self._denied("variablegroup", f"variable group {body.get('name')}")
        if denied:
            return denied
        if not body.get("name") or not body.get("variableGroupProjectReferences"):
            return _error(400, "A variable group needs a name and variableGroupProjectReferences.", "ArgumentException")
        if method == "POST":
            if any(v["name"] == body["name"] for v in self.state["variablegroups"]):
                return _error(
                    409, f"Variable group with name {body['name']} already exists.", "VariableGroupExistsException"
                )
            group: dict[str, Any] = {**body, "id": self._id(), "createdBy": CALLER, "createdOn": self._now()}
            self.state["variablegroups"].append(group)
            self._save()
            return _json(200, group)
        found = next((v for v in self.state["variablegroups"] if v["id"] == int(g.get("id") or 0)), None)
        if found is None:
            return _error(404, f"Variable group {g.get('id')} not found.")
        found.update({k: v for k, v in body.items() if k != "id"})
        self._save()
        return _json(200, found)

    def _identities(self, method: str, g: dict[str, str], q: dict[str, str], body: Any) -> Answer:
        value = q.get("filterValue", "")
        return _collection([i for i in self.state["identities"] if i["providerDisplayName"].lower() == value.lower()])

    def _aces(self, method: str, g: dict[str, str], q: dict[str, str], body: Any) -> Answer:
        if method != "POST":
            return _error(405, f"{method} is not supported on access control entries")
        denied = self._denied("security", f"token {(body or {}).get('token')}")
        if denied:
            return denied
        acl = self.state["acls"].setdefault(f"{g['ns']}/{body['token']}", {})
        for ace in body.get("accessControlEntries") or []:
            existing = acl.get(ace["descriptor"]) if body.get("merge") else None
            allow = int(ace.get("allow", 0)) | (int(existing["allow"]) if existing else 0)
            acl[ace["descriptor"]] = {
                "descriptor": ace["descriptor"],
                "allow": allow,
                "deny": int(ace.get("deny", 0)),
                "extendedInfo": {},
            }
        self._save()
        return _collection(list(acl.values()))

    def _acls(self, method: str, g: dict[str, str], q: dict[str, str], body: Any) -> Answer:
        token = q.get("token")
        acls = []
        for key, aces in self.state["acls"].items():
            namespace, _, acl_token = key.partition("/")
            if namespace == g["ns"] and (token is None or acl_token == token):
                descriptors = set(filter(None, q.get("descriptors", "").split(",")))
                chosen = {d: a for d, a in aces.items() if not descriptors or d in descriptors}
                acls.append({"token": acl_token, "inheritPermissions": True, "acesDictionary": chosen})
        return _collection(acls)

    def _approvals(self, method: str, g: dict[str, str], q: dict[str, str], body: Any) -> Answer:
        approvals = self.state["approvals"]
        if method == "GET":
            if g.get("id"):
                found = next((a for a in approvals if a["id"] == g["id"]), None)
                return _json(200, found) if found else _error(404, f"Approval {g['id']} not found.")
            state = q.get("state")
            return _collection([a for a in approvals if state in (None, "all") or a["status"] == state])
        if method != "PATCH" or not isinstance(body, list):
            return _error(400, "Update approvals takes PATCH with a JSON array of {approvalId, status, comment}.")
        updated = []
        for entry in body:
            found = next((a for a in approvals if a["id"] == entry.get("approvalId")), None)
            if found is None:
                return _error(404, f"Approval {entry.get('approvalId')} not found.")
            if entry.get("status") not in ("approved", "rejected"):
                return _error(400, f"status must be approved or rejected, got {entry.get('status')!r}")
            if found["status"] != "pending":
                return _error(409, f"Approval {found['id']} is already {found['status']}.")
            found.update({"status": entry["status"], "lastModifiedOn": self._now()})
            for step in found["steps"]:
                step.update({"status": entry["status"], "comment": entry.get("comment", ""), "actualApprover": CALLER})
            updated.append(found)
        self._save()
        return _collection(updated)
