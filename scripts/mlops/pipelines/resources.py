"""A pipeline's `resources:` (repositories, pipelines, webhooks), as Azure Pipelines declares them. Pure.

Repositories give templates from another repository (`template: path@alias`); locally each alias maps to a
checkout (`repositories={"alias": Path}` / `--repository alias=PATH`). Pipeline resources are declared and
exposed as `resources.pipeline.<alias>.*` variables (locally a run is not triggered by another pipeline's
completion; the values come from the caller's variables, else empty). Webhooks make their payload a
compile-time parameter `${{ parameters.<alias>.<path> }}`, and their `filters` decide whether a delivery
triggers the pipeline. Containers and packages are a `file:line` error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.core.errors import PipelineError
from mlops.pipelines.expressions import to_str
from mlops.pipelines.loader import LDict, LList
from mlops.pipelines.template import fail

UNSUPPORTED_HINT = "remove it, or extend the local runner (scripts/mlops/pipelines/) and its tests"
REPOSITORY_KEYS = {"repository", "type", "name", "ref", "endpoint", "trigger"}
REPOSITORY_TYPES = {"git", "github", "githubenterprise", "bitbucket"}
PIPELINE_KEYS = {"pipeline", "source", "project", "version", "branch", "tags", "trigger"}
WEBHOOK_KEYS = {"webhook", "connection", "type", "filters"}
PIPELINE_VARIABLES = (
    "pipelineName",
    "pipelineID",
    "runName",
    "runID",
    "runURI",
    "sourceBranch",
    "sourceCommit",
    "sourceProvider",
    "requestedFor",
    "requestedForID",
    "projectName",
    "projectID",
)


@dataclass(frozen=True)
class Repository:
    alias: str
    type: str
    name: str
    ref: str
    where: str


@dataclass(frozen=True)
class PipelineResource:
    alias: str
    source: str
    project: str
    branch: str
    where: str


@dataclass(frozen=True)
class Webhook:
    alias: str
    connection: str
    filters: tuple[tuple[str, str], ...]  # (JSON path, value) pairs a payload must match
    where: str

    def matches(self, payload: Any) -> bool:
        return all(to_str(_at(payload, path)) == value for path, value in self.filters)


@dataclass
class Resources:
    repositories: dict[str, Repository] = field(default_factory=dict)
    pipelines: dict[str, PipelineResource] = field(default_factory=dict)
    webhooks: dict[str, Webhook] = field(default_factory=dict)

    def predefined(self, given: Mapping[str, Any]) -> dict[str, str]:
        """`resources.pipeline.<alias>.*` and `resources.repositories.<alias>.*` variables."""
        values: dict[str, str] = {}
        for alias, pipeline in self.pipelines.items():
            for name in PIPELINE_VARIABLES:
                key = f"resources.pipeline.{alias}.{name}"
                default = pipeline.source if name == "pipelineName" else ""
                values[key] = to_str(given.get(key, default))
        for alias, repository in self.repositories.items():
            for name, value in (("name", repository.name), ("ref", repository.ref), ("type", repository.type)):
                values[f"resources.repositories.{alias}.{name}"] = value
        return values


def _at(payload: Any, path: str) -> Any:
    value = payload
    for part in path.strip().removeprefix("$.").split("."):
        if not isinstance(value, Mapping) or part not in value:
            return None
        value = value[part]
    return value


def _entries(node: Any, section: str, key: str, allowed: set[str], container: LDict) -> list[LDict]:
    if node is None:
        return []
    if not isinstance(node, LList):
        raise fail(node, f"`resources.{section}:` must be a list", container=container)
    entries = []
    for index, entry in enumerate(node):
        if not isinstance(entry, LDict) or key not in entry:
            raise PipelineError(
                f"{node.file}:{node.item_line(index)}: an entry of `resources.{section}:` needs `{key}:` (its alias)"
            )
        for name in entry:
            if name not in allowed:
                raise fail(
                    name,
                    f"unsupported key {name!r} in resources.{section} entry {to_str(entry[key])!r}; the local runner "
                    f"understands {', '.join(sorted(allowed))}",
                    hint=UNSUPPORTED_HINT,
                    container=entry,
                )
        entries.append(entry)
    return entries


def parse_resources(document: LDict) -> Resources:
    node = document.get("resources")
    resources = Resources()
    if node is None:
        return resources
    if not isinstance(node, LDict):
        raise fail(node, "`resources:` must be a mapping", container=document)
    for section in node:
        if section not in ("repositories", "pipelines", "webhooks"):
            raise fail(
                section,
                f"`resources.{section}` is not supported by the local runner (supported: repositories, pipelines, "
                "webhooks)",
                hint=UNSUPPORTED_HINT,
                container=node,
            )
    for entry in _entries(node.get("repositories"), "repositories", "repository", REPOSITORY_KEYS, node):
        alias = to_str(entry["repository"])
        kind = to_str(entry.get("type", "git"))
        if kind not in REPOSITORY_TYPES:
            raise fail(
                entry, f"repository {alias!r} has unknown type {kind!r}; expected one of {sorted(REPOSITORY_TYPES)}"
            )
        if alias != "self" and not entry.get("name"):
            raise fail(entry, f"repository {alias!r} needs `name:` (project/repository or owner/repository)")
        resources.repositories[alias] = Repository(
            alias, kind, to_str(entry.get("name", "")), to_str(entry.get("ref", "refs/heads/main")), entry.where()
        )
    for entry in _entries(node.get("pipelines"), "pipelines", "pipeline", PIPELINE_KEYS, node):
        alias = to_str(entry["pipeline"])
        if not entry.get("source"):
            raise fail(entry, f"pipeline resource {alias!r} needs `source:` (the name of the pipeline)")
        resources.pipelines[alias] = PipelineResource(
            alias,
            to_str(entry["source"]),
            to_str(entry.get("project", "")),
            to_str(entry.get("branch", "")),
            entry.where(),
        )
    for entry in _entries(node.get("webhooks"), "webhooks", "webhook", WEBHOOK_KEYS, node):
        alias = to_str(entry["webhook"])
        if not entry.get("connection"):
            raise fail(entry, f"webhook {alias!r} needs `connection:` (the incoming webhook service connection)")
        filters = entry.get("filters") or []
        if not isinstance(filters, list) or not all(
            isinstance(f, dict) and set(f) == {"path", "value"} for f in filters
        ):
            raise fail(entry, f"webhook {alias!r}: `filters:` must be a list of {{path, value}}")
        resources.webhooks[alias] = Webhook(
            alias,
            to_str(entry["connection"]),
            tuple((to_str(f["path"]), to_str(f["value"])) for f in filters),
            entry.where(),
        )
    return resources


def checkout_for(resources: Resources, alias: str, repositories: Mapping[str, Path], at: Any) -> Path:
    """The local checkout of repository resource `alias` (templates `path@alias`)."""
    if alias not in resources.repositories:
        raise fail(
            at,
            f"template repository {alias!r} is not declared under resources.repositories "
            f"(declared: {sorted(resources.repositories) or 'none'})",
            hint="declare it: resources: repositories: - repository: ALIAS, type: git, name: PROJECT/REPO",
        )
    repository = resources.repositories[alias]
    checkout = repositories.get(alias) or repositories.get(repository.name)
    if checkout is None:
        raise fail(
            at,
            f"repository {alias!r} ({repository.name}) has no local checkout",
            hint=f"clone it and map it: --repository {alias}=PATH (run_pipeline(repositories={{{alias!r}: PATH}}))",
        )
    if not Path(checkout).is_dir():
        raise fail(at, f"the checkout of repository {alias!r} is not a directory: {checkout}")
    return Path(checkout).resolve()
