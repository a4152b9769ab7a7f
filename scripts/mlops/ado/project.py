"""Read and change one Azure DevOps project through the azure-devops SDK (7.1 clients).

Where an SDK model drops fields that the service needs, the request goes through the same client's
`_send` with the method's own location id and version (so path and api-version stay the SDK's):
7.1.0b4's `CheckConfiguration` has no `settings`, and `CreatePipelineConfigurationParameters` and
`PipelineConfiguration` keep only `type` (no YAML path, no repository). Approvals have no client.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from mlops.ado.desired import BUILD_NAMESPACE, QUEUE_BUILDS, Desired
from mlops.ado.errors import AdoConflict, AdoError, AdoPermissionError
from mlops.ado.plan import Action, Current, Plan

# Location ids and versions of the SDK 7.1 methods used through `_send` (see the module docstring).
PIPELINES = ("28e1305e-2afe-47bf-abaf-cbb0e6a91988", "7.1-preview.1")
CHECK_CONFIGURATIONS = ("86c8381e-5aee-4cde-8ae4-25c0c7f5eaea", "7.1-preview.1")
ADO_SCOPE = "499b84ac-1321-427f-aa17-267ca6975798/.default"  # Azure DevOps' Entra resource
PAT_VARIABLES = ("AZURE_DEVOPS_EXT_PAT", "MLOPS_ADO_PAT")
DENIED_TYPES = {"AccessCheckException", "UnauthorizedRequestException", "AccessDeniedException"}
READ_HINT = (
    "use a token that can read and manage the project (scopes: Build, Environment, Service Connections, "
    "Variable Groups, Identity, Security, Code read), e.g. a PAT in AZURE_DEVOPS_EXT_PAT"
)


def credentials_from_environment(credential: Any | None = None) -> Any:
    """A PAT from AZURE_DEVOPS_EXT_PAT / MLOPS_ADO_PAT, else an Entra token through azure-identity."""
    from msrest.authentication import BasicAuthentication, BasicTokenAuthentication

    for name in PAT_VARIABLES:
        if os.environ.get(name):
            return BasicAuthentication("", os.environ[name])
    if credential is None:
        from azure.identity import DefaultAzureCredential

        credential = DefaultAzureCredential()
    try:
        token = credential.get_token(ADO_SCOPE).token
    except Exception as exc:  # azure-identity raises its own types per source; all mean "no token"
        raise AdoError(
            f"no Azure DevOps credential: no PAT in {' or '.join(PAT_VARIABLES)} and azure-identity found no "
            f"Entra token ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})",
            hint="export AZURE_DEVOPS_EXT_PAT=<a PAT>, or `az login` / set AZURE_CLIENT_ID, AZURE_TENANT_ID, "
            "AZURE_CLIENT_SECRET for a service principal",
        ) from exc
    return BasicTokenAuthentication({"access_token": token})


@dataclass
class ApplyReport:
    done: list[Action] = field(default_factory=list)
    created_ids: dict[str, str] = field(default_factory=dict)


class AdoProject:
    """One project of one organization, through the SDK's clients."""

    def __init__(self, organization_url: str, project: str, creds: Any) -> None:
        from azure.devops.connection import Connection

        self.project = project
        self.organization_url = organization_url.rstrip("/")
        self._connection = Connection(base_url=self.organization_url, creds=creds)
        clients = self._connection.clients_v7_1
        # Creating a client looks up the organization's resource areas: the first request of the command.
        self.core = self._call("connect to the organization", clients.get_core_client)
        self.git = self._call("connect to the organization", clients.get_git_client)
        self.pipelines = self._call("connect to the organization", clients.get_pipelines_client)
        self.task_agent = self._call("connect to the organization", clients.get_task_agent_client)
        self.checks = self._call("connect to the organization", clients.get_pipelines_checks_client)
        self.endpoints = self._call("connect to the organization", clients.get_service_endpoint_client)
        self.permissions = self._call("connect to the organization", clients.get_pipeline_permissions_client)
        self.identity = self._call("connect to the organization", clients.get_identity_client)
        self.security = self._call("connect to the organization", clients.get_security_client)
        self.build = self._call("connect to the organization", clients.get_build_client)

    # ------------------------------------------------------------------------------------ read
    def read(self, want: Desired) -> Current:
        project = self._call("read the project", lambda: self.core.get_project(self.project))
        repository = self._call(
            f"read repository {want.repository}",
            lambda: self.git.get_repository(want.repository, project=self.project),
        )
        if repository is None:
            raise AdoError(
                f"repository {want.repository!r} does not exist in project {self.project}",
                hint="import this repository into Azure Repos (docs/setup.md) or set azure_devops.setup.repository",
            )
        current = Current(
            project_id=str(project.id),
            repository_id=str(repository.id),
            repository_default_branch=repository.default_branch,
        )
        for pipeline in self._call("list pipelines", lambda: self.pipelines.list_pipelines(self.project)) or []:
            if pipeline.name in {p.name for p in want.pipelines}:
                raw = self._raw(self.pipelines, "GET", PIPELINES, {"project": self.project, "pipelineId": pipeline.id})
                configuration = raw.get("configuration") or {}
                definition = self._call(
                    f"read pipeline {pipeline.name}", partial(self.build.get_definition, self.project, pipeline.id)
                )
                current.pipelines[pipeline.name] = {
                    "id": raw["id"],
                    "folder": raw.get("folder"),
                    "path": (configuration.get("path") or "").lstrip("/"),
                    "default_branch": definition.repository.default_branch if definition.repository else None,
                }
        for environment in want.environments:
            found = self._call(
                f"read environment {environment.name}",
                partial(self.task_agent.get_environments, self.project, name=environment.name),
            )
            match = next((e for e in found or [] if e.name.lower() == environment.name.lower()), None)
            if match is None:
                continue
            current.environments[environment.name] = {"id": match.id, "description": match.description}
            raw = self._raw(
                self.checks,
                "GET",
                CHECK_CONFIGURATIONS,
                {"project": self.project},
                query={"resourceType": "environment", "resourceId": str(match.id), "$expand": "settings"},
            )
            current.checks[environment.name] = list(raw.get("value") or [])
        names = [c.name for c in want.connections]
        for endpoint in (
            self._call(
                "read service connections", lambda: self.endpoints.get_service_endpoints_by_names(self.project, names)
            )
            or []
        ):
            current.connections[endpoint.name] = {
                "id": endpoint.id,
                "description": endpoint.description,
                "type": endpoint.type,
                "authorization": {
                    "scheme": endpoint.authorization.scheme if endpoint.authorization else None,
                    "parameters": dict((endpoint.authorization.parameters or {}) if endpoint.authorization else {}),
                },
            }
        groups = self._call(
            f"read variable group {want.variable_group.name}",
            lambda: self.task_agent.get_variable_groups(self.project, group_name=want.variable_group.name),
        )
        group = next((g for g in groups or [] if g.name == want.variable_group.name), None)
        if group is not None:
            current.variable_group = {
                "id": group.id,
                "description": group.description,
                "variables": {k: {"value": v.value} for k, v in (group.variables or {}).items()},
            }
        resources = [
            *(("endpoint", n, current.connections[n]["id"]) for n in current.connections),
            *(("environment", n, e["id"]) for n, e in current.environments.items()),
        ]
        if current.variable_group is not None:
            resources.append(("variablegroup", want.variable_group.name, current.variable_group["id"]))
        for resource_type, name, resource_id in resources:
            permissions = self._call(
                f"read pipeline permissions of {resource_type} {name}",
                partial(
                    self.permissions.get_pipeline_permissions_for_resource,
                    self.project,
                    resource_type,
                    str(resource_id),
                ),
            )
            current.permissions[(resource_type, name)] = {
                "pipelines": {str(p.id): bool(p.authorized) for p in permissions.pipelines or []},
                "allPipelines": bool(permissions.all_pipelines and permissions.all_pipelines.authorized),
            }
        for name in filter(None, (want.approvers, want.bridge_identity)):
            found = self._call(
                f"look up identity {name}",
                partial(self.identity.read_identities, search_filter="General", filter_value=name),
            )
            match = next((i for i in found or [] if i.provider_display_name == name), None)
            if match is not None:
                current.identities[name] = str(match.descriptor if name == want.bridge_identity else match.id)
        deploy = current.pipelines.get(want.pipeline("deploy").name)
        if want.bridge_identity in current.identities and deploy is not None:
            current.queue_allowed = self._queue_allowed(current, deploy["id"], current.identities[want.bridge_identity])
        return current

    def _queue_allowed(self, current: Current, pipeline_id: Any, descriptor: str) -> bool:
        acls = self._call(
            "read the deploy pipeline's permissions",
            lambda: self.security.query_access_control_lists(
                BUILD_NAMESPACE, token=f"{current.project_id}/{pipeline_id}", descriptors=descriptor
            ),
        )
        for acl in acls or []:
            for ace in (acl.aces_dictionary or {}).values():
                if ace.descriptor == descriptor and int(ace.allow or 0) & QUEUE_BUILDS:
                    return True
        return False

    # ------------------------------------------------------------------------------------ apply
    def apply(self, want: Desired, plan: Plan, current: Current, progress: Callable[[str], None]) -> ApplyReport:
        """Apply the plan in its order; stop at the first refusal, saying what was done and what was not."""
        report = ApplyReport()
        pipeline_ids = {name: str(p["id"]) for name, p in current.pipelines.items()}
        resource_ids: dict[tuple[str, str], str] = {
            **{("endpoint", n): str(c["id"]) for n, c in current.connections.items()},
            **{("environment", n): str(e["id"]) for n, e in current.environments.items()},
        }
        if current.variable_group is not None:
            resource_ids[("variablegroup", want.variable_group.name)] = str(current.variable_group["id"])
        for index, action in enumerate(plan.actions, 1):
            try:
                self._apply_one(action, want, current, pipeline_ids, resource_ids)
            except AdoError as exc:
                done = ", ".join(a.line()[2:] for a in report.done) or "nothing"
                left = len(plan.actions) - index + 1
                raise type(exc)(
                    f"step {index}/{len(plan.actions)} ({action.line()[2:]}) failed: {exc.message}. Done before it: "
                    f"{done}; the {left} remaining step(s) were not attempted",
                    hint=(f"{exc.hint}; then " if exc.hint else "")
                    + "re-run `mlops ado apply`: it plans from the live state and resumes where this stopped",
                ) from exc
            report.done.append(action)
            progress(f"  done: {action.line()}")
        if plan.conflicts:
            raise AdoConflict(
                "applied everything else, but left alone objects with our names that mlops ado did not create: "
                + "; ".join(f"{c.kind} {c.name} ({c.found})" for c in plan.conflicts),
                hint="rename or delete them in Azure DevOps, or change the names in mlops.yaml "
                "(azure_devops.connections / environments / setup), then re-run `mlops ado apply`",
            )
        return report

    def _apply_one(
        self,
        action: Action,
        want: Desired,
        current: Current,
        pipeline_ids: dict[str, str],
        resource_ids: dict[tuple[str, str], str],
    ) -> None:
        body = dict(action.payload)
        if action.kind == "pipeline" and action.verb == "create":
            created = self._raw(
                self.pipelines, "POST", PIPELINES, {"project": self.project}, content=body, action=action
            )
            pipeline_ids[action.name] = str(created["id"])
        elif action.kind == "pipeline":
            # The default branch lives on the build definition (the Pipelines API has none): read it, change it,
            # write it back with its revision, so that a concurrent edit is refused rather than overwritten.
            definition_id = int(pipeline_ids[action.name])
            definition = self._call(action, partial(self.build.get_definition, self.project, definition_id))
            definition.repository.default_branch = body["default_branch"]
            self._call(action, partial(self.build.update_definition, definition, self.project, definition_id))
        elif action.kind == "variable-group":
            body["variableGroupProjectReferences"] = [
                {
                    "name": body["name"],
                    "description": body["description"],
                    "projectReference": {"id": current.project_id, "name": self.project},
                }
            ]
            if action.verb == "create":
                group = self._call(action, lambda: self.task_agent.add_variable_group(body))
                resource_ids[("variablegroup", action.name)] = str(group.id)
            else:
                group_id = int(resource_ids[("variablegroup", action.name)])
                self._call(action, lambda: self.task_agent.update_variable_group(body, group_id))
        elif action.kind == "environment":
            environment = self._call(action, lambda: self.task_agent.add_environment(body, self.project))
            resource_ids[("environment", action.name)] = str(environment.id)
        elif action.kind == "check":
            resource = {"type": "environment", "id": resource_ids[("environment", action.name)], "name": action.name}
            content = {key: body[key] for key in ("type", "settings", "timeout")} | {"resource": resource}
            if action.verb == "create":
                self._raw(
                    self.checks, "POST", CHECK_CONFIGURATIONS, {"project": self.project}, content=content, action=action
                )
            else:
                route = {"project": self.project, "id": body["id"]}
                self._raw(
                    self.checks,
                    "PATCH",
                    CHECK_CONFIGURATIONS,
                    route,
                    content={**content, "id": body["id"]},
                    action=action,
                )
        elif action.kind == "connection":
            body["serviceEndpointProjectReferences"] = [
                {
                    "name": body["name"],
                    "description": body["description"],
                    "projectReference": {"id": current.project_id, "name": self.project},
                }
            ]
            if action.verb == "create":
                endpoint = self._call(action, lambda: self.endpoints.create_service_endpoint(body))
                resource_ids[("endpoint", action.name)] = str(endpoint.id)
            else:
                endpoint_id = resource_ids[("endpoint", action.name)]
                self._call(
                    action, lambda: self.endpoints.update_service_endpoint({**body, "id": endpoint_id}, endpoint_id)
                )
        elif action.kind == "permission":
            resource_type = str(body["resource_type"])
            name = str(body["resource_name"])
            resource_id = resource_ids[(resource_type, name)]
            pipelines = [{"id": int(pipeline_ids[p]), "authorized": True} for p in body["pipelines"]]
            pipelines += [{"id": int(p), "authorized": False} for p in body["revoke"]]
            authorization = {
                "resource": {"type": resource_type, "id": resource_id},
                "pipelines": pipelines,
                "allPipelines": {"authorized": False},
            }
            self._call(
                action,
                lambda: self.permissions.update_pipeline_permisions_for_resource(
                    authorization, self.project, resource_type, resource_id
                ),
            )
        elif action.kind == "queue-permission":
            descriptor = current.identities[want.bridge_identity]
            token = f"{current.project_id}/{pipeline_ids[action.name]}"
            container = {
                "token": token,
                "merge": True,
                "accessControlEntries": [
                    {"descriptor": descriptor, "allow": QUEUE_BUILDS, "deny": 0, "extendedInfo": {}}
                ],
            }
            self._call(action, lambda: self.security.set_access_control_entries(container, BUILD_NAMESPACE))
        else:  # a kind make_plan does not produce: a programming error, not user input
            raise AdoError(f"no way to apply a {action.kind!r} action", hint="report this as a bug in mlops.ado")

    # ------------------------------------------------------------------------------------ transport
    def _raw(
        self,
        client: Any,
        method: str,
        location: tuple[str, str],
        route_values: dict[str, Any],
        *,
        query: dict[str, str] | None = None,
        content: Any = None,
        action: Action | None = None,
    ) -> dict[str, Any]:
        location_id, version = location

        def send() -> dict[str, Any]:
            response = client._send(
                http_method=method,
                location_id=location_id,
                version=version,
                route_values=route_values,
                query_parameters=query,
                content=content,
            )
            return dict(response.json()) if response.content else {}

        answer: dict[str, Any] = self._call(action or f"{method} {location_id}", send)
        return answer

    def _call(self, what: Action | str, call: Callable[[], Any]) -> Any:
        from azure.devops.exceptions import (
            AzureDevOpsAuthenticationError,
            AzureDevOpsClientRequestError,
            AzureDevOpsServiceError,
        )
        from msrest.exceptions import ClientRequestError

        doing = what if isinstance(what, str) else what.line()[2:]
        try:
            return call()
        except AzureDevOpsServiceError as exc:
            # The SDK keeps Azure DevOps's typeKey but not the HTTP status: refusals are told by their type.
            text = f"Azure DevOps refused it ({exc.type_key}): {exc.message}"
            if exc.type_key in DENIED_TYPES or str(exc.message).startswith("Access denied"):
                if isinstance(what, Action):
                    raise AdoPermissionError(
                        f"permission denied to {what.verb} {what.kind} {what.name}: the token needs "
                        f"{what.permission} ({text})",
                        hint=f"grant {what.permission} to the identity of the token",
                    ) from exc
                raise AdoPermissionError(f"permission denied to {what}: {text}", hint=READ_HINT) from exc
            if exc.type_key == "GitRepositoryNotFoundException":
                return None
            if exc.type_key == "ProjectDoesNotExistWithNameException":
                raise AdoError(
                    f"project {self.project!r} does not exist in {self.organization_url}",
                    hint="create the project (docs/setup.md) or fix azure_devops.project in mlops.yaml",
                ) from exc
            raise AdoError(f"could not {doing}: {text}") from exc
        except AzureDevOpsAuthenticationError as exc:
            raise AdoPermissionError(
                f"Azure DevOps did not accept the credential to {doing}: {str(exc).splitlines()[0]}",
                hint=READ_HINT,
            ) from exc
        except (AzureDevOpsClientRequestError, ClientRequestError) as exc:
            raise AdoError(
                f"could not reach {self.organization_url} to {doing}: "
                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                hint="check azure_devops.organization_url in mlops.yaml and the network",
            ) from exc
