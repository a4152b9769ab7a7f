"""Read an Azure Pipelines file into stages → jobs → steps, templates and parameters resolved.

This is the compile step: the result is what the runner executes, and what the validator's policy
checks look at. Keys the runner does not understand are errors with file and line, never skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.core.errors import PipelineError
from mlops.pipelines.expressions import RUNTIME, to_str
from mlops.pipelines.loader import LDict, LList, Located, LStr, load_yaml, plain
from mlops.pipelines.resources import Resources, checkout_for, parse_resources
from mlops.pipelines.tasks import REQUIRED_INPUTS, TASKS
from mlops.pipelines.template import bind_parameters, compile_scope, expand, fail

PIPELINE_KEYS = {
    "name",
    "trigger",
    "pr",
    "schedules",  # like trigger and pr: when Azure DevOps starts a run, nothing a run executes
    "parameters",
    "variables",
    "stages",
    "jobs",
    "steps",
    "pool",
    "appendCommitMessageToRunName",
    "lockBehavior",
    "resources",
    "extends",
}
# What a template that a pipeline `extends:` may hold (its parameters, and the pipeline's body).
EXTENDS_TEMPLATE_KEYS = {"parameters", "variables", "stages", "jobs", "steps", "pool", "lockBehavior"}
STAGE_KEYS = {"stage", "displayName", "dependsOn", "condition", "variables", "jobs", "pool", "lockBehavior"}
JOB_KEYS = {
    "job",
    "displayName",
    "dependsOn",
    "condition",
    "continueOnError",
    "timeoutInMinutes",
    "cancelTimeoutInMinutes",
    "variables",
    "steps",
    "pool",
    "workspace",
}
# A deployment job has a job's keys, but `environment` and `strategy` where a job has `steps`.
DEPLOYMENT_KEYS = (JOB_KEYS - {"job", "steps"}) | {"deployment", "environment", "strategy"}
STEP_COMMON = {"displayName", "name", "condition", "continueOnError", "enabled", "env", "timeoutInMinutes"}
STEP_KINDS: dict[str, set[str]] = {
    "script": STEP_COMMON | {"workingDirectory", "failOnStderr"},
    "bash": STEP_COMMON | {"workingDirectory", "failOnStderr"},
    "task": STEP_COMMON | {"inputs"},
    "checkout": STEP_COMMON | {"clean", "fetchDepth", "fetchTags", "lfs", "persistCredentials", "path", "submodules"},
    "download": STEP_COMMON | {"artifact", "patterns"},
    "publish": STEP_COMMON | {"artifact"},
}
UNSUPPORTED_HINT = "remove it, or extend the local runner (scripts/mlops/pipelines/) and its tests"


@dataclass(frozen=True)
class Variable:
    name: str
    value: Any  # a string, or an LStr `$[ ... ]` runtime expression
    where: str
    group: str | None = None  # `- group: NAME`: a variable group of the project's library, read at run time


@dataclass
class Step:
    kind: str  # script | bash | task | checkout | download | publish
    body: LDict
    display_name: str
    name: str | None
    condition: str | None
    continue_on_error: bool
    enabled: bool
    env: dict[str, Any]
    timeout_minutes: float | None
    task: str | None = None
    inputs: dict[str, Any] = field(default_factory=dict)

    @property
    def where(self) -> str:
        return self.body.where()


@dataclass
class Job:
    name: str
    display_name: str
    deployment: bool
    depends_on: list[str]
    condition: str | None
    variables: list[Variable]
    steps: list[Step]
    environment: str | None
    timeout_minutes: float | None
    continue_on_error: bool
    where: str


@dataclass
class Stage:
    name: str
    display_name: str
    depends_on: list[str]
    condition: str | None
    variables: list[Variable]
    jobs: list[Job]
    where: str


@dataclass(frozen=True)
class Extends:
    """The template a pipeline extends: what a "required template" check compares."""

    repository: str  # the repository resource's name, or "self"
    path: str
    where: str


@dataclass
class Pipeline:
    file: str
    parameters: dict[str, Any]
    variables: list[Variable]
    stages: list[Stage]
    implicit_stage: bool
    resources: Resources = field(default_factory=Resources)
    extends: Extends | None = None


class _Builder:
    def __init__(
        self, root: Path, resources: Resources | None = None, repositories: Mapping[str, Path] | None = None
    ) -> None:
        self.root = root
        self.compile_variables: dict[str, Any] = {}
        self.resources = resources or Resources()
        self.repositories = dict(repositories or {})
        # display name -> (absolute path, root of its repository): where a template's own references resolve.
        self.files: dict[str, tuple[Path, Path]] = {}

    def display(self, path: Path) -> str:
        try:
            return str(path.resolve().relative_to(self.root))
        except ValueError:
            return str(path)

    def register(self, display: str, path: Path, repository_root: Path) -> None:
        self.files[display] = (path.resolve(), repository_root)

    def locate(self, raw: LStr | str, reference_file: str) -> tuple[Path, str, Path]:
        """(path, display name, repository root) of a template reference `path` or `path@alias`."""
        path_text, sep, alias = str(raw).partition("@")
        if sep and alias != "self":
            checkout = checkout_for(self.resources, alias, self.repositories, raw)
            relative = path_text.lstrip("/")
            return checkout / relative, f"{relative}@{alias}", checkout
        if sep:  # path@self: this repository, from its root
            path = self.root / path_text.lstrip("/")
            return path, self.display(path), self.root
        source, repository_root = self.files.get(reference_file, (self.root / reference_file, self.root))
        path = repository_root / path_text.lstrip("/") if path_text.startswith("/") else source.parent / path_text
        if repository_root == self.root:
            return path, self.display(path), repository_root
        alias_of = reference_file.rsplit("@", 1)[-1]
        return path, f"{path.resolve().relative_to(repository_root)}@{alias_of}", repository_root

    # -------------------------------------------------------------------- templates
    def template(self, reference: LDict, section: str, *, predefined: Mapping[str, Any]) -> Any:
        raw = reference["template"]
        if not isinstance(raw, str):
            raise fail(raw, f"unsupported template reference {to_str(raw)!r}", container=reference)
        unknown = set(reference) - {"template", "parameters"}
        if unknown:
            raise fail(
                sorted(unknown)[0],
                f"unsupported key {sorted(unknown)[0]!r} beside `template:`",
                hint=UNSUPPORTED_HINT,
                container=reference,
            )
        path, name, repository_root = self.locate(raw, reference.file)
        if not path.is_file():
            raise fail(
                raw,
                f"template {raw!r} not found (looked for {path if '@' in name else self.display(path)})",
                hint="fix the path; it is relative to the file that references it (to the repository's root "
                "for path@alias)",
                container=reference,
            )
        self.register(name, path, repository_root)
        document = load_yaml(path, display=name)
        if not isinstance(document, LDict):
            raise PipelineError(f"{name}:1: a template must be a mapping with `{section}:`")
        allowed = {"parameters", section}
        unknown = set(document) - allowed
        if unknown or section not in document:
            key = sorted(unknown)[0] if unknown else None
            raise fail(
                key or document,
                f"template {name} is used as a {section} template, so it must hold "
                f"`parameters:` and `{section}:` only" + (f"; found {key!r}" if key else ""),
                hint=UNSUPPORTED_HINT,
                container=document,
            )
        given = reference.get("parameters") or {}
        if not isinstance(given, dict):
            raise fail(given, "template `parameters:` must be a mapping", container=reference)
        bound = bind_parameters(document, given, file=name, at=reference)
        scope = compile_scope(bound, {**predefined, **self.compile_variables}, name)
        return expand(document[section], scope)

    def extended(self, root: LDict, predefined: Mapping[str, Any]) -> tuple[LDict, Extends]:
        """The body of the template `root` extends, expanded with the parameters `extends:` passes."""
        extends = root["extends"]
        if not isinstance(extends, LDict) or "template" not in extends:
            raise fail(extends, "`extends:` needs `template:` (and optionally `parameters:`)", container=root)
        self.check_keys(extends, {"template", "parameters"}, "`extends:`")
        present = [key for key in ("stages", "jobs", "steps") if key in root]
        if present:
            raise fail(
                present[0],
                f"a pipeline that uses `extends:` cannot also have `{present[0]}:`; the template provides them",
                container=root,
            )
        raw = extends["template"]
        path, name, repository_root = self.locate(raw, root.file)
        if not path.is_file():
            raise fail(raw, f"extended template {raw!r} not found (looked for {path})", container=extends)
        self.register(name, path, repository_root)
        document = load_yaml(path, display=name)
        if not isinstance(document, LDict):
            raise PipelineError(f"{name}:1: an extended template must be a mapping")
        self.check_keys(document, EXTENDS_TEMPLATE_KEYS, f"the extended template {name}")
        given = extends.get("parameters") or {}
        if not isinstance(given, dict):
            raise fail(given, "`extends.parameters:` must be a mapping", container=extends)
        bound = bind_parameters(document, given, file=name, at=extends)
        body = expand(document, compile_scope(bound, {**predefined, **self.compile_variables}, name))
        path_text, _, alias = str(raw).partition("@")
        repository = "self" if alias in ("", "self") else self.resources.repositories[alias].name
        return body, Extends(repository, path_text.lstrip("/"), extends.where())

    # -------------------------------------------------------------------- elements
    def check_keys(self, node: LDict, allowed: set[str], what: str) -> None:
        for key in node:
            if key not in allowed:
                raise fail(
                    key,
                    f"unsupported key {key!r} in {what}; the local runner understands {', '.join(sorted(allowed))}",
                    hint=UNSUPPORTED_HINT,
                    container=node,
                )

    def variables(self, node: Any, predefined: Mapping[str, Any], container: Located) -> list[Variable]:
        if node is None:
            return []
        result: list[Variable] = []
        if isinstance(node, LDict):
            for name, value in node.items():
                result.append(Variable(str(name), value, f"{node.file}:{node.value_line(name)}"))
            return result
        if not isinstance(node, LList):
            raise fail(node, "`variables:` must be a mapping or a list", container=container)
        for index, item in enumerate(node):
            at = f"{node.file}:{node.item_line(index)}"
            if isinstance(item, LDict) and "template" in item:
                result.extend(self.variables(self.template(item, "variables", predefined=predefined), predefined, item))
            elif isinstance(item, LDict) and "group" in item:
                self.check_keys(item, {"group"}, "a variable group reference")
                result.append(Variable("", None, at, group=to_str(item["group"])))
            elif isinstance(item, LDict) and "name" in item:
                self.check_keys(item, {"name", "value", "readonly"}, "a variable")
                result.append(Variable(str(item["name"]), item.get("value", ""), at))
            else:
                raise PipelineError(f"{at}: a variable entry needs `name:` and `value:`", hint=UNSUPPORTED_HINT)
        return result

    def items(self, node: Any, section: str, predefined: Mapping[str, Any], container: Located) -> list[LDict]:
        """The entries of a stages/jobs/steps list, templates spliced in."""
        if node is None:
            return []
        if not isinstance(node, LList):
            raise fail(node, f"`{section}:` must be a list", container=container)
        result: list[LDict] = []
        for index, item in enumerate(node):
            if not isinstance(item, LDict):
                raise PipelineError(
                    f"{node.file}:{node.item_line(index)}: an entry of `{section}:` must be a mapping, "
                    f"found {to_str(item)!r}"
                )
            if "template" in item:
                result.extend(
                    self.items(self.template(item, section, predefined=predefined), section, predefined, item)
                )
            else:
                result.append(item)
        return result

    def stage(self, node: LDict, predefined: Mapping[str, Any], previous: str | None) -> Stage:
        self.check_keys(node, STAGE_KEYS, "a stage")
        name = _identifier(node, "stage")
        depends = _depends_on(node, [previous] if previous else [])
        jobs = [self.job(job, predefined) for job in self.items(node.get("jobs"), "jobs", predefined, node)]
        if not jobs:
            raise fail(node, f"stage {name!r} has no jobs", container=node)
        _unique([job.name for job in jobs], node, "job")
        return Stage(
            name,
            to_str(node.get("displayName", name)),
            depends,
            _opt_str(node.get("condition")),
            self.variables(node.get("variables"), predefined, node),
            jobs,
            node.where(),
        )

    def job(self, node: LDict, predefined: Mapping[str, Any]) -> Job:
        deployment = "deployment" in node
        if deployment:
            self.check_keys(node, DEPLOYMENT_KEYS, "a deployment job")
            name = _identifier(node, "deployment")
            environment = node.get("environment")
            if isinstance(environment, LDict):
                self.check_keys(environment, {"name"}, "a deployment environment")
                environment = environment.get("name")
            if not isinstance(environment, str) or not environment:
                raise fail(node, f"deployment job {name!r} needs `environment:`", container=node)
            steps_node = _run_once_steps(node, self)
        else:
            if "job" not in node:
                first = next(iter(node), node)
                raise fail(
                    first,
                    f"unsupported job entry (found keys {sorted(node)}); expected `job:` or `deployment:`",
                    hint=UNSUPPORTED_HINT,
                    container=node,
                )
            self.check_keys(node, JOB_KEYS, "a job")
            name = _identifier(node, "job")
            environment = None
            steps_node = node.get("steps")
        steps = [self.step(step) for step in self.items(steps_node, "steps", predefined, node)]
        _unique([step.name for step in steps if step.name], node, "step name")
        return Job(
            name,
            to_str(node.get("displayName", name)),
            deployment,
            _depends_on(node, []),
            _opt_str(node.get("condition")),
            self.variables(node.get("variables"), predefined, node),
            steps,
            str(environment) if environment else None,
            _opt_number(node, "timeoutInMinutes"),
            _flag(node, "continueOnError"),
            node.where(),
        )

    def step(self, node: LDict) -> Step:
        kind = next((k for k in STEP_KINDS if k in node), None)
        if kind is None:
            first = next(iter(node), node)
            raise fail(
                first,
                f"unsupported step (keys {sorted(node)}); expected one of {sorted(STEP_KINDS)}",
                hint=UNSUPPORTED_HINT,
                container=node,
            )
        self.check_keys(node, STEP_KINDS[kind] | {kind}, f"a `{kind}` step")
        env = node.get("env") or {}
        if not isinstance(env, dict):
            raise fail(env, "`env:` must be a mapping", container=node)
        inputs: dict[str, Any] = {}
        task = None
        if kind == "task":
            task = to_str(node["task"])
            inputs = dict(node.get("inputs") or {})
            _check_task(node, task, inputs)
        elif kind in ("checkout", "download"):
            target = to_str(node[kind])
            allowed = ("self", "none") if kind == "checkout" else ("current", "none")
            if target not in allowed:
                raise fail(
                    node[kind],
                    f"`{kind}: {target}` is not supported locally; expected one of {list(allowed)}",
                    hint=UNSUPPORTED_HINT,
                    container=node,
                )
        name = node.get("name")
        display = node.get("displayName") or (
            task
            if task
            else f"{kind}: {to_str(node[kind]).strip().splitlines()[0] if to_str(node[kind]).strip() else ''}"
        )
        return Step(
            kind,
            node,
            to_str(display)[:80],
            to_str(name) if name else None,
            _opt_str(node.get("condition")),
            _flag(node, "continueOnError"),
            _flag(node, "enabled", default=True),
            dict(env),
            _opt_number(node, "timeoutInMinutes"),
            task,
            inputs,
        )


def _check_task(node: LDict, task: str, inputs: dict[str, Any]) -> None:
    known = next((name for name in TASKS if name.casefold() == task.casefold()), None)
    if known is None:
        raise fail(
            node["task"],
            f"task {task!r} is not supported by the local runner; supported: {', '.join(sorted(TASKS))}",
            hint="use a script step, or add the task to mlops.pipelines.tasks and mlops.pipelines.steps with a test",
            container=node,
        )
    inputs_node = node.get("inputs")
    unknown = sorted(set(inputs) - TASKS[known])
    if unknown:
        at = next((k for k in inputs_node if k == unknown[0]), node) if isinstance(inputs_node, LDict) else node
        raise fail(
            at,
            f"task {known} has no input {unknown[0]!r}; expected one of {sorted(TASKS[known])}",
            hint="fix the input name",
            container=node,
        )
    missing = sorted(REQUIRED_INPUTS.get(known, set()) - set(inputs))
    if missing:
        raise fail(node, f"task {known} needs input {missing[0]!r}", container=node)
    if (
        known == "DownloadPipelineArtifact@2"
        and to_str(inputs.get("buildType", inputs.get("source", "current"))) != "current"
    ):
        raise fail(
            node,
            "DownloadPipelineArtifact@2 from another pipeline is not supported locally; use buildType current",
            hint=UNSUPPORTED_HINT,
            container=node,
        )


def _run_once_steps(node: LDict, builder: _Builder) -> Any:
    strategy = node.get("strategy")
    if not isinstance(strategy, LDict) or "runOnce" not in strategy:
        raise fail(
            strategy if strategy is not None else node,
            "a deployment job needs `strategy: runOnce: deploy:`; "
            "rolling and canary strategies are not supported locally",
            hint=UNSUPPORTED_HINT,
            container=node,
        )
    builder.check_keys(strategy, {"runOnce"}, "a deployment strategy")
    run_once = strategy["runOnce"]
    if not isinstance(run_once, LDict):
        raise fail(run_once, "`runOnce:` must be a mapping", container=strategy)
    builder.check_keys(run_once, {"deploy"}, "runOnce (only the deploy hook is supported locally)")
    deploy = run_once["deploy"]
    if not isinstance(deploy, LDict):
        raise fail(deploy, "`deploy:` must be a mapping with `steps:`", container=run_once)
    builder.check_keys(deploy, {"steps", "pool"}, "the deploy hook")
    return deploy.get("steps")


def _identifier(node: LDict, key: str) -> str:
    value = node.get(key)
    if value is None or value == "":
        return "__default" if key != "stage" else _raise_missing(node, key)
    text = to_str(value)
    if not text.replace("_", "a").isalnum() or text[0].isdigit():
        raise fail(
            value,
            f"{key} name {text!r} must be letters, digits and underscores, not starting with a digit",
            container=node,
        )
    return text


def _raise_missing(node: LDict, key: str) -> str:
    raise fail(node, f"`{key}:` needs a name", container=node)


def _depends_on(node: LDict, default: list[str]) -> list[str]:
    if "dependsOn" not in node:
        return default
    value = node["dependsOn"]
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [str(value)]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return [str(v) for v in value]
    raise fail(value, "`dependsOn:` must be a name or a list of names", container=node)


def _unique(names: list[str], node: LDict, what: str) -> None:
    seen: set[str] = set()
    for name in names:
        if name.casefold() in seen:
            raise fail(node, f"duplicate {what} {name!r}", hint="names must be unique", container=node)
        seen.add(name.casefold())


def _opt_str(value: Any) -> str | None:
    return None if value is None else value if isinstance(value, LStr) else to_str(value)


def _opt_number(node: LDict, key: str) -> float | None:
    value = node.get(key)
    if value is None:
        return None
    try:
        return float(to_str(value))
    except ValueError:
        raise fail(value, f"`{key}` must be a number, found {to_str(value)!r}", container=node) from None


def _flag(node: LDict, key: str, default: bool = False) -> bool:
    value = node.get(key, default)
    if isinstance(value, bool):
        return value
    text = to_str(value).strip().lower()
    if text in ("true", "false"):
        return text == "true"
    raise fail(value, f"`{key}` must be true or false, found {to_str(value)!r}", container=node)


def load_pipeline(
    path: Path,
    parameters: Mapping[str, Any] | None = None,
    *,
    root: Path | None = None,
    predefined: Mapping[str, Any] | None = None,
    parameters_as_text: bool = True,
    repositories: Mapping[str, Path] | None = None,
    webhook_payloads: Mapping[str, Any] | None = None,
) -> Pipeline:
    """Compile one pipeline file: parameters bound, templates and `${{ }}` expanded, structure checked.

    repositories: local checkouts of repository resources (alias or repository name -> folder), for
        templates `path@alias` and `extends: template: path@alias`.
    webhook_payloads: the payload of each webhook resource that triggered the run (alias -> JSON), visible
        as `${{ parameters.<alias>.<field> }}`.
    """
    root = (root or Path.cwd()).resolve()
    probe = _Builder(root)
    name = probe.display(path)
    document = load_yaml(path, display=name)
    if not isinstance(document, LDict):
        raise PipelineError(f"{name}:1: a pipeline must be a mapping", hint="start with `stages:`, `jobs:` or `steps:`")
    probe.check_keys(document, PIPELINE_KEYS, "a pipeline")
    resources = parse_resources(document)
    builder = _Builder(root, resources, repositories)
    builder.register(name, path, root)
    predefined = {**resources.predefined(predefined or {}), **dict(predefined or {})}
    bound = bind_parameters(document, dict(parameters or {}), file=name, from_text=parameters_as_text)
    payloads = dict(webhook_payloads or {})
    unknown_hooks = sorted(set(payloads) - set(resources.webhooks))
    if unknown_hooks:
        raise PipelineError(
            f"{name}: no webhook resource {unknown_hooks[0]!r}; declared: {sorted(resources.webhooks) or 'none'}",
            hint="declare it under resources.webhooks or fix the alias",
        )
    for alias in resources.webhooks:
        if alias in bound:
            raise PipelineError(f"{resources.webhooks[alias].where}: webhook alias {alias!r} is also a parameter name")
        bound[alias] = plain(payloads.get(alias, {}))
    # Compile-time `variables.x` sees the pipeline's literal variables, as in Azure.
    raw_variables = document.get("variables")
    scope = compile_scope(bound, predefined, name)
    expanded = expand(document, scope)
    variables = builder.variables(expanded.get("variables"), predefined, expanded)
    builder.compile_variables = {v.name: v.value for v in variables if v.group is None and not _is_runtime(v.value)}
    if raw_variables is not None:
        # Re-expand with the variables visible, so `${{ variables.x }}` resolves everywhere below.
        scope = compile_scope(bound, {**predefined, **builder.compile_variables}, name)
        expanded = expand(document, scope)
    extends = None
    if "extends" in expanded:
        expanded, extends = builder.extended(expanded, predefined)
        extra = builder.variables(expanded.get("variables"), predefined, expanded)
        variables = [*variables, *extra]
    sections = [key for key in ("stages", "jobs", "steps") if key in expanded]
    if len(sections) != 1:
        raise fail(
            expanded,
            f"a pipeline needs exactly one of `stages:`, `jobs:` or `steps:`, found {sections or 'none'}",
            container=expanded,
        )
    section = sections[0]
    if section == "stages":
        stage_nodes = builder.items(expanded["stages"], "stages", predefined, expanded)
        implicit = False
    else:
        stage_node = LDict(expanded.file, expanded.line)
        stage_node["stage"] = "__default"
        if section == "jobs":
            stage_node["jobs"] = expanded["jobs"]
        else:
            job = LDict(expanded.file, expanded.line)
            job.update({"job": "Job", "steps": expanded["steps"]})
            jobs = LList(expanded.file, expanded.line)
            jobs.append(job)
            jobs.lines.append(expanded.line)
            stage_node["jobs"] = jobs
        stage_nodes = [stage_node]
        implicit = True
    stages: list[Stage] = []
    previous: str | None = None
    for node in stage_nodes:
        stage = builder.stage(node, predefined, previous)
        stages.append(stage)
        previous = stage.name
    if not stages:
        raise fail(expanded, "the pipeline has no stages", container=expanded)
    _unique([stage.name for stage in stages], expanded, "stage")
    _check_dependencies(stages)
    parameters_only = {k: v for k, v in bound.items() if k not in resources.webhooks}
    return Pipeline(name, parameters_only, variables, stages, implicit, resources, extends)


def _is_runtime(value: Any) -> bool:
    return isinstance(value, str) and bool(RUNTIME.match(value))


def _check_dependencies(stages: list[Stage]) -> None:
    names = {stage.name for stage in stages}
    for stage in stages:
        for dependency in stage.depends_on:
            if dependency not in names:
                raise PipelineError(
                    f"{stage.where}: stage {stage.name!r} depends on unknown stage {dependency!r}",
                    hint=f"expected one of {sorted(names)}",
                )
        jobs = {job.name for job in stage.jobs}
        for job in stage.jobs:
            for dependency in job.depends_on:
                if dependency not in jobs:
                    raise PipelineError(
                        f"{job.where}: job {job.name!r} depends on unknown job {dependency!r}",
                        hint=f"expected one of {sorted(jobs)} (jobs of stage {stage.name})",
                    )
    _check_acyclic({s.name: s.depends_on for s in stages}, stages[0].where, "stage")
    for stage in stages:
        _check_acyclic({j.name: j.depends_on for j in stage.jobs}, stage.where, "job")


def _check_acyclic(graph: dict[str, list[str]], where: str, what: str) -> None:
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        if state.get(node) == 1:
            raise PipelineError(f"{where}: {what} dependencies form a cycle: {' -> '.join([*path, node])}")
        if state.get(node) == 2:
            return
        state[node] = 1
        for dependency in graph.get(node, []):
            visit(dependency, [*path, node])
        state[node] = 2

    for node in graph:
        visit(node, [])
