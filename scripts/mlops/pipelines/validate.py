"""`mlops pipelines validate`: schema, policy and `mlops` command checks for Azure Pipelines YAML.

Per file: the Azure Pipelines schema (`mlops.pipelines.schema`), no inline secret, and every
`mlops ...` command in a script parses against the real CLI. Per pipeline (a file outside a
`templates/` folder): it compiles with its defaults (`mlops.pipelines.model`), and whatever changes
prod (`mlops deploy --stage prod`, `mlops deploy rollback --stage prod`, `mlops infra deploy
--account prod`, or a step with a prod service connection) runs only in a deployment job with an
environment, where the approval check lives. With the configuration's identities (mlops/core/identities.py),
every `awsCredentials` and `environment` must name one of its connections and environments, a pipeline may use
only the connections and environments permitted to it, and a connection bound to an environment only in a
deployment job on that environment (`identity_problems`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from mlops.core.errors import PipelineError
from mlops.core.identities import PIPELINE_FILES, PIPELINE_VARIANTS, Identities
from mlops.pipelines.commands import OPAQUE, Invocation, check, invocations
from mlops.pipelines.loader import LDict, LList, LStr, load_yaml
from mlops.pipelines.model import Pipeline, Step, load_pipeline
from mlops.pipelines.schema import Problem, validate_document
from mlops.pipelines.template import declarations

# The prod connection's default name; with mlops.yaml's identities, identity_problems checks the configured one.
PROD_CONNECTIONS = frozenset({"aws-deploy-prod"})
SCRIPT_KEYS = ("script", "bash", "inlineScript")
PLACEHOLDERS = {"string": "placeholder", "number": 0, "boolean": False, "object": []}

_SECRET_PATTERNS = [
    (re.compile(r"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b"), "an AWS access key id"),
    (re.compile(r"(?i)aws_secret_access_key\s*[=:]\s*['\"]?[A-Za-z0-9/+=]{40}\b"), "an AWS secret access key"),
    (re.compile(r"\b[A-Za-z0-9]{76}AZDO[A-Za-z0-9]{4}\b"), "an Azure DevOps personal access token"),
    (re.compile(r"(?<![A-Za-z0-9])[a-z2-7]{52}(?![A-Za-z0-9])"), "an Azure DevOps personal access token"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"), "a GitHub token"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
    (
        re.compile(r"(?i)\b(?:password|passwd|pwd|secret|token|api[_-]?key)\s*[:=]\s*['\"]?(?![$'\"\s])[^\s'\"]{4,}"),
        "a literal password/secret/token",
    ),
]
_SECRET_KEY = re.compile(r"(?i)(password|passwd|^pwd$|secret|token|api[_-]?key|access[_-]?key|private[_-]?key|^pat$)")
_DYNAMIC = re.compile(r"^\s*(\$\(|\$\{\{|\$\[)")


def default_files(root: Path) -> list[Path]:
    folder = root / "azure-pipelines"
    return sorted([*folder.rglob("*.yml"), *folder.rglob("*.yaml")])


def is_template(path: Path) -> bool:
    return "templates" in path.parts


def validate_files(
    files: Iterable[Path],
    *,
    root: Path | None = None,
    identities: Identities | None = None,
    repositories: Mapping[str, Path] | None = None,
    environments: Iterable[str] | None = None,
) -> list[Problem]:
    """identities: mlops.yaml's connections and environments; a pipeline naming others fails (errors).
    repositories: local checkouts of repository resources (templates `path@alias`).
    environments: without identities, the environments the project has; any other environment a pipeline
        names is a warning: Azure DevOps would create it on first use, without checks."""
    root = (root or Path.cwd()).resolve()
    problems: list[Problem] = []
    known = None if environments is None else {e.lower() for e in environments}
    for path in files:
        problems.extend(
            validate_file(path, root=root, identities=identities, repositories=repositories, environments=known)
        )
    return problems


def _display(path: Path, root: Path) -> str:
    try:
        return str(path.resolve().relative_to(root))
    except ValueError:
        return str(path)


def validate_file(
    path: Path,
    *,
    root: Path,
    identities: Identities | None = None,
    repositories: Mapping[str, Path] | None = None,
    environments: set[str] | None = None,
) -> list[Problem]:
    name = _display(path, root)
    try:
        document = load_yaml(path, display=name)
    except PipelineError as exc:
        return [_from_error(exc, name)]
    problems = validate_document(document, name)
    problems.extend(secret_problems(document, name))
    problems.extend(command_problems(document, name))
    if not is_template(path) and not problems:
        problems.extend(pipeline_problems(path, document, root, name, identities, repositories, environments))
    return sorted(set(problems), key=lambda p: (p.file, p.line, p.message))


def _from_error(error: PipelineError, name: str) -> Problem:
    match = re.match(r"^(?P<file>[^:\n]+):(?P<line>\d+): (?P<message>.*)$", error.message, re.DOTALL)
    message = str(error)
    if match:
        hint = f" (fix: {error.hint})" if error.hint else ""
        return Problem(match.group("file"), int(match.group("line")), match.group("message") + hint)
    return Problem(name, 1, message)


# ------------------------------------------------------------------------------------------- walking


def _strings(node: Any, key: str | None = None) -> Iterator[tuple[str | None, LStr]]:
    if isinstance(node, LDict):
        for child_key, value in node.items():
            yield from _strings(value, str(child_key))
    elif isinstance(node, LList):
        for item in node:
            yield from _strings(item, key)
    elif isinstance(node, LStr):
        yield key, node


def _scripts(node: Any) -> Iterator[LStr]:
    for key, text in _strings(node):
        if key in SCRIPT_KEYS:
            yield text


# ------------------------------------------------------------------------------------------- secrets


def secret_problems(document: Any, name: str) -> list[Problem]:
    problems: list[Problem] = []
    for key, text in _strings(document):
        if key and _SECRET_KEY.search(key) and text.strip() and not _DYNAMIC.match(text) and key != "awsCredentials":
            problems.append(
                Problem(
                    name,
                    text.line,
                    f"inline secret: `{key}` has a literal value; "
                    "use a secret variable ($(name)) or a service connection",
                )
            )
            continue
        for offset, line in enumerate(str(text).splitlines() or [str(text)]):
            for pattern, what in _SECRET_PATTERNS:
                if pattern.search(line):
                    problems.append(
                        Problem(
                            name,
                            text.line + _offset(text, offset),
                            f"inline secret: looks like {what}; use a secret variable or a service connection (OIDC)",
                        )
                    )
                    break
    return problems


def _offset(text: LStr, offset: int) -> int:
    """Block scalars (`|`) start on the line after their key."""
    return offset + (1 if "\n" in text else 0)


# ------------------------------------------------------------------------------------------- commands


def command_problems(document: Any, name: str) -> list[Problem]:
    problems: list[Problem] = []
    for script in _scripts(document):
        for invocation in invocations(str(script)):
            message = check(invocation)
            if message:
                line = script.line + _offset(script, invocation.line_offset)
                problems.append(Problem(name, line, f"`{invocation.shown()}` does not parse: {message}"))
    return problems


# ------------------------------------------------------------------------------------------- policy


def pipeline_problems(
    path: Path,
    document: Any,
    root: Path,
    name: str,
    identities: Identities | None = None,
    repositories: Mapping[str, Path] | None = None,
    environments: set[str] | None = None,
) -> list[Problem]:
    """Compile the pipeline with its defaults (placeholders for required parameters) and check the policy."""
    given = {
        str(entry["name"]): PLACEHOLDERS.get(str(entry.get("type", "string")), "placeholder")
        for entry in declarations(document, name)
        if "default" not in entry
    }
    try:
        pipeline = load_pipeline(path, given, root=root, parameters_as_text=False, repositories=repositories)
    except PipelineError as exc:
        return [_from_error(exc, name)]
    identity = identity_problems(pipeline, name, identities) if identities is not None else []
    problems: list[Problem] = []
    if environments is not None and identities is None:
        problems.extend(environment_warnings(pipeline, environments))
    # A stage is gated when a deployment job with an environment (its approval) touches prod there;
    # later stages may use the prod connection (smoke tests), but only deployment jobs change prod.
    gated = {
        stage.name
        for stage in pipeline.stages
        if any(job.deployment and job.environment and any(_prod_reason(s) for s in job.steps) for job in stage.jobs)
    }
    ancestors = _ancestors({stage.name: stage.depends_on for stage in pipeline.stages})
    for stage in pipeline.stages:
        after_gate = bool(ancestors[stage.name] & gated)
        for job in stage.jobs:
            if job.deployment and job.environment:
                continue
            for step in job.steps:
                command = deploys_prod(step)
                connection = uses_prod_connection(step)
                reason = command or (connection if not after_gate else None)
                if reason:
                    file, line = step.where.rsplit(":", 1)
                    problems.append(
                        Problem(
                            file,
                            int(line),
                            f"{reason} in job {job.name!r} of stage {stage.name!r}, "
                            "which is not a deployment job with an environment (nor after one); prod "
                            "needs the environment's approval check first",
                        )
                    )
    return identity + problems


def pipeline_key(name: str) -> str | None:
    """The key of PIPELINE_FILES a pipeline file is (None: not one of ours)."""
    return next((key for key, file in PIPELINE_FILES.items() if Path(file).as_posix() == Path(name).as_posix()), None)


def _split(where: str) -> tuple[str, int]:
    file, _, line = where.rpartition(":")
    return file, int(line) if line.isdigit() else 1


def identity_problems(pipeline: Pipeline, name: str, identities: Identities) -> list[Problem]:
    """Every service connection and environment the compiled pipeline names, against the identities.

    A misnamed one would be auto-created (an environment, without its checks) or fail at queue time (a
    connection); a permitted one in the wrong place would put credentials outside their gate."""
    key = pipeline_key(name)
    key = PIPELINE_VARIANTS.get(key, key) if key is not None else None  # the webhook deploy is a deploy
    problems: list[Problem] = []
    connections = sorted(c.name for c in identities.connections)
    for stage in pipeline.stages:
        for job in stage.jobs:
            if job.environment is not None:
                environment = identities.environment(job.environment)
                file, line = _split(job.where)
                allowed = sorted(e.name for e in identities.environments if key is None or key in e.pipelines)
                if environment is None:
                    problems.append(
                        Problem(
                            file,
                            line,
                            f"environment {job.environment!r} of job {job.name!r} is not one of mlops.yaml's "
                            f"environments; expected one of {allowed} (azure_devops.environments): Azure DevOps "
                            "would create it on first use without any checks",
                        )
                    )
                elif key is not None and key not in environment.pipelines:
                    problems.append(
                        Problem(
                            file,
                            line,
                            f"environment {job.environment!r} is not for the {key} pipeline; it may deploy to "
                            f"{allowed}",
                        )
                    )
            for step in job.steps:
                named = step.inputs.get("awsCredentials")
                if named is None:
                    continue
                file, line = _split(step.where)
                connection = identities.by_name(str(named))
                if connection is None:
                    expected = sorted(c.name for c in identities.connections if key is None or key in c.pipelines)
                    problems.append(
                        Problem(
                            file,
                            line,
                            f"service connection {str(named)!r} is not one of mlops.yaml's connections; expected one "
                            f"of {expected or connections} (azure_devops.connections)",
                        )
                    )
                    continue
                if key is not None and key not in connection.pipelines:
                    permitted = sorted(c.name for c in identities.for_pipeline(key))
                    problems.append(
                        Problem(
                            file,
                            line,
                            f"service connection {connection.name!r} ({connection.purpose}) is not permitted to the "
                            f"{key} pipeline ({name}); it may use {permitted}",
                        )
                    )
                elif connection.environment is not None and not (
                    job.deployment and job.environment == connection.environment
                ):
                    problems.append(
                        Problem(
                            file,
                            line,
                            f"service connection {connection.name!r} works only in a deployment job on environment "
                            f"{connection.environment!r}; job {job.name!r} of stage {stage.name!r} is "
                            + (f"on {job.environment!r}" if job.environment else "not a deployment job"),
                        )
                    )
    return problems


def environment_warnings(pipeline: Pipeline, environments: set[str]) -> list[Problem]:
    """A deployment job on an environment the project does not have: Azure DevOps creates it, without checks."""
    warnings = []
    for stage in pipeline.stages:
        for job in stage.jobs:
            if job.environment and job.environment.split(".")[0].lower() not in environments:
                file, line = job.where.rsplit(":", 1)
                warnings.append(
                    Problem(
                        file,
                        int(line),
                        f"environment {job.environment!r} of job {job.name!r} is not one of the project's environments "
                        f"({', '.join(sorted(environments))}): Azure DevOps would create it on first use without "
                        "any checks (no approval, no branch control)",
                        "warning",
                    )
                )
    return warnings


def _ancestors(graph: dict[str, list[str]]) -> dict[str, set[str]]:
    result: dict[str, set[str]] = {}

    def visit(node: str) -> set[str]:
        if node not in result:
            result[node] = set()
            for parent in graph.get(node, []):
                result[node] |= {parent, *visit(parent)}
        return result[node]

    for node in graph:
        visit(node)
    return result


def _prod_reason(step: Step) -> str | None:
    return deploys_prod(step) or uses_prod_connection(step)


def uses_prod_connection(step: Step, prod_connections: frozenset[str] = PROD_CONNECTIONS) -> str | None:
    connection = step.inputs.get("awsCredentials")
    if connection is not None and str(connection) in prod_connections:
        return f"step uses the prod service connection {str(connection)!r}"
    return None


def deploys_prod(step: Step) -> str | None:
    for key in SCRIPT_KEYS:
        text = step.body.get(key) if key != "inlineScript" else step.inputs.get(key)
        if not isinstance(text, str):
            continue
        for invocation in invocations(text):
            if _deploys_prod(invocation):
                return f"`{invocation.shown()}` changes prod (or its target is unknown at compile time)"
    return None


def _deploys_prod(invocation: Invocation) -> bool:
    args = list(invocation.args)
    if args[:1] == ["deploy"]:
        target = _option(args, "--stage")
    elif args[:2] == ["infra", "deploy"] and "--dry-run" not in args:
        target = _option(args, "--account")
    else:
        return False
    if "--dry-run" in args and args[:1] == ["deploy"]:
        return False
    return target is None or target == "prod" or OPAQUE in target


def _option(args: list[str], option: str) -> str | None:
    for index, arg in enumerate(args):
        if arg == option and index + 1 < len(args):
            return args[index + 1]
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
    return None
