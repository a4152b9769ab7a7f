"""Running one step of a local pipeline job: scripts, the tasks we use, and the `##vso` logging commands.

A script runs as Azure's Linux agent runs it: `bash --noprofile --norc <file>` (no implicit `set -e`),
stdout and stderr streamed, variables exported as environment variables (`Build.BuildId` →
`BUILD_BUILDID`). A task that is not in `TASKS` or an input a task does not know is an error with
file and line: the runner never pretends to have run something.
"""

from __future__ import annotations

import fnmatch
import os
import queue
import re
import shlex
import shutil
import subprocess
import sys
import threading
import uuid
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.core.errors import PipelineError, PipelineRunError
from mlops.pipelines.expressions import CaseInsensitive, substitute_macros, to_str
from mlops.pipelines.model import Step
from mlops.pipelines.results import (
    FAILED,
    SUCCEEDED,
    WITH_ISSUES,
    CoverageRecord,
    Issue,
    RunEvent,
    Summary,
    TestRecord,
)
from mlops.pipelines.tasks import TASKS

ServiceConnections = Callable[[str], Mapping[str, str]]
"""Maps a service connection name to the environment its AWS tasks get (credentials, region, endpoint)."""

_VSO = re.compile(r"##vso\[(?P<command>[\w.]+)(?P<properties>[^\]]*)\](?P<data>.*)$")


@dataclass
class JobRuntime:
    """The state one job's steps share: variables, output variables, paths and what gets recorded."""

    stage: str
    job: str
    deployment: bool
    variables: CaseInsensitive
    base_env: dict[str, str]
    sources_dir: Path
    workspace: Path
    artifacts_dir: Path
    artifacts: dict[str, Path]
    service_connections: ServiceConnections
    emit: Callable[[RunEvent], None]
    issues: list[Issue]
    summaries: list[Summary]
    test_results: list[TestRecord]
    coverage: list[CoverageRecord]
    outputs: dict[str, str] = field(default_factory=dict)
    prepend_path: list[str] = field(default_factory=list)
    readonly: set[str] = field(default_factory=set)


@dataclass
class StepOutcome:
    status: str
    exit_code: int | None = None
    reason: str | None = None


def variable_env_name(name: str) -> str:
    return re.sub(r"[.\s]", "_", name).upper()


class StepRunner:
    def __init__(self, runtime: JobRuntime, step: Step) -> None:
        self.rt = runtime
        self.step = step
        self.label = step.name or step.display_name
        self.result: str | None = None  # set by ##vso[task.complete]
        self.pending_variables: list[tuple[str, str, bool, bool]] = []
        self.errors = 0

    # ----------------------------------------------------------------------- helpers
    def macro(self, value: Any) -> str:
        return substitute_macros(to_str(value), self.rt.variables)

    def emit(self, kind: str, text: str, status: str | None = None) -> None:
        self.rt.emit(RunEvent(kind, text, self.rt.stage, self.rt.job, self.label, status))

    def fail(self, message: str, hint: str | None = None) -> PipelineRunError:
        return PipelineRunError(f"{self.step.where}: {message}", hint=hint)

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = dict(self.rt.base_env)
        for name, value in self.rt.variables.items():
            env[variable_env_name(name)] = to_str(value)
        env["TF_BUILD"] = "True"
        for name, value in self.step.env.items():
            env[str(name)] = self.macro(value)
        env.update(extra or {})
        if self.rt.prepend_path:
            env["PATH"] = os.pathsep.join([*reversed(self.rt.prepend_path), env.get("PATH", "")])
        return env

    def path(self, value: Any, default: Path) -> Path:
        text = self.macro(value) if value not in (None, "") else ""
        if not text:
            return default
        candidate = Path(text)
        return candidate if candidate.is_absolute() else self.rt.sources_dir / candidate

    # ----------------------------------------------------------------------- dispatch
    def run(self) -> StepOutcome:
        kind = self.step.kind
        if kind in ("script", "bash"):
            return self.script(
                self.macro(self.step.body[kind]),
                self.step.body.get("workingDirectory"),
                fail_on_stderr=_true(self.step.body.get("failOnStderr")),
            )
        if kind == "checkout":
            return self.checkout()
        if kind == "publish":
            return self.publish(self.step.body["publish"], self.step.body.get("artifact"))
        if kind == "download":
            return self.download_shortcut()
        return self.task()

    def task(self) -> StepOutcome:
        task = self.step.task or ""
        known = next(name for name in TASKS if name.casefold() == task.casefold())  # checked at compile time
        inputs = self.step.inputs
        get = inputs.get
        if known == "AWSShellScript@1":
            env = self.aws_env(get("awsCredentials"), get("regionName"))
            if to_str(get("scriptType", "inline")) == "filePath":
                script_path = self.path(get("filePath"), Path())
                text = f"{shlex.quote(str(script_path))} {self.macro(get('arguments', ''))}"
            else:
                text = self.macro(get("inlineScript", ""))
            return self.script(text, get("workingDirectory"), env=env, fail_on_stderr=_true(get("failOnStandardError")))
        if known == "AWSCLI@1":
            env = self.aws_env(get("awsCredentials"), get("regionName"))
            command = " ".join(self.macro(get(key, "")) for key in ("awsCommand", "awsSubCommand", "awsArguments"))
            return self.script(f"aws {command}", None, env=env, fail_on_stderr=_true(get("failOnStandardError")))
        if known in ("Bash@3", "CmdLine@2"):
            if to_str(get("targetType", "inline")) == "filePath":
                text = f"{shlex.quote(str(self.path(get('filePath'), Path())))} {self.macro(get('arguments', ''))}"
            else:
                text = self.macro(get("script", ""))
            return self.script(text, get("workingDirectory"), fail_on_stderr=_true(get("failOnStderr")))
        if known == "PublishPipelineArtifact@1":
            return self.publish(
                get("targetPath", get("path", "$(Pipeline.Workspace)")), get("artifact", get("artifactName"))
            )
        if known == "DownloadPipelineArtifact@2":
            return self.download_task()
        if known == "PublishTestResults@2":
            return self.test_results()
        if known == "PublishCodeCoverageResults@2":
            return self.coverage()
        return self.use_python()

    # ----------------------------------------------------------------------- scripts
    def aws_env(self, connection: Any, region: Any) -> dict[str, str]:
        name = self.macro(connection)
        try:
            env = dict(self.rt.service_connections(name))
        except PipelineError as exc:
            raise self.fail(exc.message, hint=exc.hint) from exc
        if region not in (None, ""):
            env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = self.macro(region)
        return env

    def script(
        self, text: str, working_dir: Any, *, env: Mapping[str, str] | None = None, fail_on_stderr: bool = False
    ) -> StepOutcome:
        temp = self.rt.workspace / "_temp"
        temp.mkdir(parents=True, exist_ok=True)
        script = temp / f"{uuid.uuid4().hex}.sh"
        script.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        cwd = self.path(working_dir, self.rt.sources_dir)
        if not cwd.is_dir():
            raise self.fail(f"working directory {cwd} does not exist")
        timeout = self.step.timeout_minutes * 60 if self.step.timeout_minutes else None
        process = subprocess.Popen(
            ["bash", "--noprofile", "--norc", str(script)],
            cwd=cwd,
            env=self.env(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            errors="replace",
        )
        lines: queue.Queue[tuple[str, str | None]] = queue.Queue()

        def pump(stream: Any, name: str) -> None:
            for line in stream:
                lines.put((name, line.rstrip("\n")))
            lines.put((name, None))

        readers = [
            threading.Thread(target=pump, args=(process.stdout, "out"), daemon=True),
            threading.Thread(target=pump, args=(process.stderr, "err"), daemon=True),
        ]
        for reader in readers:
            reader.start()
        timed_out = threading.Event()

        def kill() -> None:
            timed_out.set()
            process.kill()

        timer = threading.Timer(timeout, kill) if timeout else None
        if timer:
            timer.start()
        stderr_seen = False
        try:
            open_streams = 2
            while open_streams:
                name, line = lines.get()
                if line is None:
                    open_streams -= 1
                    continue
                stderr_seen = stderr_seen or (name == "err" and line.strip() != "")
                self.handle_line(line)
            code = process.wait()
        finally:
            if timer:
                timer.cancel()
            script.unlink(missing_ok=True)
        self.apply_variables()
        if timed_out.is_set():
            return StepOutcome(FAILED, code, f"timed out after {self.step.timeout_minutes:g} minute(s)")
        if code != 0:
            return StepOutcome(FAILED, code, f"bash exited with code {code}")
        if fail_on_stderr and stderr_seen:
            return StepOutcome(FAILED, code, "wrote to stderr and failOnStderr is true")
        return self.outcome(code)

    def outcome(self, code: int | None = 0) -> StepOutcome:
        if self.result == "failed":
            return StepOutcome(FAILED, code, "##vso[task.complete result=Failed]")
        if self.result == "succeededwithissues" or self.errors:
            return StepOutcome(WITH_ISSUES, code)
        return StepOutcome(SUCCEEDED, code)

    # ----------------------------------------------------------------------- logging commands
    def handle_line(self, line: str) -> None:
        match = _VSO.search(line)
        if match is None:
            self.emit("output", line)
            return
        command = match.group("command").lower()
        properties = _properties(match.group("properties"))
        data = match.group("data")
        if command == "task.setvariable":
            name = properties.get("variable", "")
            if not name:
                self.issue("warning", f"##vso[task.setvariable] without variable= ignored: {line}")
                return
            output = properties.get("isoutput", "false").lower() == "true"
            readonly = properties.get("isreadonly", "false").lower() == "true"
            self.pending_variables.append((name, data, output, readonly))
            shown = "***" if properties.get("issecret", "false").lower() == "true" else data
            self.emit("output", f"set variable {name}={shown}" + (" (output)" if output else ""))
        elif command == "task.logissue":
            kind = properties.get("type", "warning").lower()
            source = properties.get("sourcepath")
            if source and properties.get("linenumber"):
                source = f"{source}:{properties['linenumber']}"
            self.issue("error" if kind == "error" else "warning", data, source)
        elif command == "task.complete":
            self.result = properties.get("result", "succeeded").lower()
            if data:
                self.emit("output", data)
        elif command == "task.uploadsummary" or (
            command == "task.addattachment" and properties.get("type") == "Distributedtask.Core.Summary"
        ):
            self.summary(data.strip())
        elif command == "task.prependpath":
            self.rt.prepend_path.append(data.strip())
        elif command == "build.updatebuildnumber":
            self.rt.variables["Build.BuildNumber"] = data.strip()
        else:
            self.issue("warning", f"logging command ##vso[{match.group('command')}] is not supported locally; ignored")

    def issue(self, kind: str, message: str, source: str | None = None) -> None:
        if kind == "error":
            self.errors += 1
        self.rt.issues.append(Issue(kind, message, self.rt.stage, self.rt.job, self.label, source))
        self.emit("issue", f"##[{kind}]{message}" + (f" ({source})" if source else ""))

    def summary(self, path_text: str) -> None:
        path = Path(path_text)
        if not path.is_absolute():
            path = self.rt.sources_dir / path
        if not path.is_file():
            self.issue("warning", f"summary file {path} not found (##vso[task.uploadsummary])")
            return
        self.rt.summaries.append(
            Summary(self.rt.stage, self.rt.job, self.label, str(path), path.read_text(encoding="utf-8"))
        )
        self.emit("output", f"summary uploaded: {path}")

    def apply_variables(self) -> None:
        """Variables set by a step are visible from the next step on, as in Azure."""
        for name, value, output, readonly in self.pending_variables:
            if name.casefold() in self.rt.readonly:
                self.issue("warning", f"variable {name} is read-only; ##vso[task.setvariable] ignored")
                continue
            self.rt.variables[name] = value
            if readonly:
                self.rt.readonly.add(name.casefold())
            if output:
                if not self.step.name:
                    self.issue(
                        "warning",
                        f"output variable {name} set by a step without `name:`; other jobs "
                        "cannot read it (give the step a name)",
                    )
                    continue
                self.rt.variables[f"{self.step.name}.{name}"] = value
                key = f"{self.step.name}.{name}"
                self.rt.outputs[f"{self.rt.job}.{key}" if self.rt.deployment else key] = value
        self.pending_variables.clear()

    # ----------------------------------------------------------------------- artifacts
    def checkout(self) -> StepOutcome:
        target = to_str(self.step.body["checkout"])
        if target not in ("self", "none"):
            raise self.fail(f"checkout of {target!r} is not supported locally; only `self` and `none`")
        self.emit("output", "checkout: the local runner uses the working tree as Build.SourcesDirectory")
        return StepOutcome(SUCCEEDED)

    def publish(self, target: Any, artifact: Any) -> StepOutcome:
        name = self.macro(artifact) if artifact not in (None, "") else ""
        if not name:
            raise self.fail("publishing an artifact needs a name (`artifact:`)")
        source = self.path(target, self.rt.workspace)
        if not source.exists():
            return StepOutcome(FAILED, None, f"path to publish not found: {source}")
        if name in self.rt.artifacts:
            return StepOutcome(FAILED, None, f"artifact {name!r} was already published in this run")
        destination = self.rt.artifacts_dir / name
        if destination.exists():
            shutil.rmtree(destination)
        if source.is_dir():
            shutil.copytree(source, destination)
        else:
            destination.mkdir(parents=True)
            shutil.copy2(source, destination / source.name)
        self.rt.artifacts[name] = destination
        self.emit("output", f"published artifact {name} from {source}")
        return StepOutcome(SUCCEEDED)

    def download(self, name: str | None, target: Path, patterns: str = "**") -> StepOutcome:
        names = [name] if name else sorted(self.rt.artifacts)
        for artifact in names:
            if artifact not in self.rt.artifacts:
                return StepOutcome(
                    FAILED,
                    None,
                    f"artifact {artifact!r} was not published by an earlier job; "
                    f"published: {sorted(self.rt.artifacts) or 'none'}",
                )
            source = self.rt.artifacts[artifact]
            destination = target if name else target / artifact
            for file in sorted(source.rglob("*")):
                relative = file.relative_to(source)
                if file.is_file() and _matches(relative.as_posix(), patterns):
                    (destination / relative).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(file, destination / relative)
            self.emit("output", f"downloaded artifact {artifact} to {destination}")
        return StepOutcome(SUCCEEDED)

    def download_shortcut(self) -> StepOutcome:
        source = to_str(self.step.body["download"])
        if source == "none":
            return StepOutcome(SUCCEEDED)
        if source != "current":
            raise self.fail(f"download from {source!r} is not supported locally; only `current` and `none`")
        artifact = self.step.body.get("artifact")
        name = self.macro(artifact) if artifact else None
        target = self.rt.workspace / name if name else self.rt.workspace
        return self.download(name, target, to_str(self.step.body.get("patterns", "**")))

    def download_task(self) -> StepOutcome:
        get = self.step.inputs.get
        source = to_str(get("buildType", get("source", "current")))
        if source != "current":
            raise self.fail(f"DownloadPipelineArtifact@2 buildType {source!r} is not supported locally; only `current`")
        artifact = get("artifact", get("artifactName"))
        target = self.path(get("targetPath", get("path", get("downloadPath"))), self.rt.workspace)
        patterns = to_str(get("patterns", get("itemPattern", "**")))
        return self.download(self.macro(artifact) if artifact else None, target, patterns)

    # ----------------------------------------------------------------------- reports
    def test_results(self) -> StepOutcome:
        get = self.step.inputs.get
        fmt = to_str(get("testResultsFormat", get("testRunner", "JUnit")))
        folder = self.path(get("searchFolder"), self.rt.sources_dir)
        patterns = [p.strip() for p in self.macro(get("testResultsFiles", "**/TEST-*.xml")).splitlines() if p.strip()]
        files = sorted({str(f) for p in patterns for f in folder.glob(p) if f.is_file()})
        total = failed = 0
        for file in files:
            if fmt.lower() == "junit":
                counted = _junit_counts(Path(file))
                total, failed = total + counted[0], failed + counted[1]
        if not files:
            self.issue("warning", f"no test result files matched {patterns} in {folder}")
            if _true(get("failTaskOnMissingResultsFile")):
                return StepOutcome(FAILED, None, "no test result files found")
        title = self.macro(get("testRunTitle")) if get("testRunTitle") else None
        self.rt.test_results.append(TestRecord(self.rt.stage, self.rt.job, fmt, files, total, failed, title))
        self.emit("output", f"test results recorded: {total} test(s), {failed} failed, from {len(files)} file(s)")
        if failed and _true(get("failTaskOnFailedTests")):
            return StepOutcome(FAILED, None, f"{failed} test(s) failed and failTaskOnFailedTests is true")
        return self.outcome()

    def coverage(self) -> StepOutcome:
        get = self.step.inputs.get
        pattern = self.macro(get("summaryFileLocation"))
        base = self.rt.sources_dir
        files = sorted(base.glob(pattern)) if not Path(pattern).is_absolute() else [Path(pattern)]
        files = [f for f in files if f.is_file()]
        if not files:
            self.issue("warning", f"no coverage file matched {pattern}")
            if _true(get("failIfCoverageEmpty")):
                return StepOutcome(FAILED, None, "no coverage data and failIfCoverageEmpty is true")
            return self.outcome()
        for file in files:
            rate = _cobertura_rate(file)
            self.rt.coverage.append(CoverageRecord(self.rt.stage, self.rt.job, str(file), rate))
            shown = f"{rate:.1%}" if rate is not None else "unknown"
            self.emit("output", f"coverage recorded from {file}: line rate {shown}")
        return self.outcome()

    def use_python(self) -> StepOutcome:
        spec = to_str(self.step.inputs.get("versionSpec", "3.x"))
        current = f"{sys.version_info.major}.{sys.version_info.minor}"
        if spec not in ("3.x", current) and not current.startswith(spec.rstrip(".x")):
            self.issue("warning", f"UsePythonVersion asks for Python {spec}; the local runner uses {current}")
        self.emit("output", f"UsePythonVersion {spec}: using the local Python {current}")
        return self.outcome()


def _properties(text: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for part in text.strip().split(";"):
        if "=" in part:
            key, value = part.split("=", 1)
            result[key.strip().lower()] = value.strip()
    return result


def _true(value: Any) -> bool:
    return value is True or to_str(value).strip().lower() == "true"


def _matches(path: str, patterns: str) -> bool:
    rules = [p.strip() for p in patterns.splitlines() if p.strip()] or ["**"]
    included = False
    for rule in rules:
        negate = rule.startswith("!")
        rule = rule[1:] if negate else rule
        if rule in ("**", "**/*") or fnmatch.fnmatch(path, rule) or fnmatch.fnmatch(path, rule.replace("**/", "")):
            included = not negate
    return included


def _junit_counts(path: Path) -> tuple[int, int]:
    try:
        root = ElementTree.parse(path).getroot()  # noqa: S314 - our own pytest/endpoint-test reports
    except ElementTree.ParseError:
        return 0, 0
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    total = sum(int(s.get("tests", 0)) for s in suites)
    failed = sum(int(s.get("failures", 0)) + int(s.get("errors", 0)) for s in suites)
    return total, failed


def _cobertura_rate(path: Path) -> float | None:
    try:
        rate = ElementTree.parse(path).getroot().get("line-rate")  # noqa: S314 - our own coverage.xml
        return float(rate) if rate is not None else None
    except (ElementTree.ParseError, ValueError):
        return None
