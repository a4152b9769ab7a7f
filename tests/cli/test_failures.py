"""One actionable line, always (issue 19, item 5): every command of the click tree, run without AWS
credentials and against an unreachable endpoint, ends with `error:` + `fix:` on stderr (or succeeds),
never with a traceback; `--debug` adds the traceback.

The commands are collected from the click tree, so a new command is covered automatically: it runs with no
arguments unless it needs some, and then this test fails until `ARGUMENTS` says which.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import click
import pytest

from mlops.cli import main
from mlops.cli.root import cli

REPO_ROOT = Path(__file__).resolve().parents[2]
ARN = "arn:aws:sagemaker:eu-west-1:111111111111:model-package/breast-cancer/1"

# Required arguments of the commands that have some (a valid value each: the failure under test is AWS's).
ARGUMENTS: dict[tuple[str, ...], list[str]] = {
    ("build", "cleanup"): ["--branch", "feature/x"],
    ("build", "track"): [
        "--execution",
        "arn:aws:sagemaker:eu-west-1:111111111111:pipeline/breast-cancer-build/execution/x",
    ],
    ("bridge", "replay"): ["--queue-url", "https://sqs.eu-west-1.amazonaws.com/111111111111/mlops-bridge-dlq"],
    ("deploy",): ["--stage", "staging", "--model-package-arn", ARN],
    ("deploy", "rollback"): ["--stage", "staging"],
    ("infra", "deploy"): ["--account", "staging", "--dry-run"],
    ("lineage",): ["1"],
    # An invalid name: refused before anything is written (never into the package's use case folder).
    ("new", "use-case"): ["Not_A_Name", "--task", "binary", "--framework", "xgboost"],
    ("pipelines", "run"): ["{pipeline}"],
    ("registry", "approve"): ["--version", "1", "--reason", "reviewed"],
    ("registry", "reject"): ["--version", "1", "--reason", "failed review"],
    ("registry", "show"): ["1"],
    ("test",): ["--stage", "staging"],
}
# Commands not run here, and why (each is covered where it can run).
NOT_RUN: dict[tuple[str, ...], str] = {
    ("demo",): "starts its own twin and runs the whole flow (tests/e2e); it uses the twin's credentials only",
    ("local", "up"): "starts a twin server with its own credentials (tests/local)",
    ("bridge", "package"): "downloads wheels from the package registry (tests/bridge/test_package.py)",
    ("infra", "lint"): "cfn-lint on the templates: no AWS call at all, and 10-20 s a run (tests/infra)",
}
# Commands that answer a question with a non-zero exit code and their answer on stdout.
STATUS_COMMANDS = {("local", "status")}


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            if command.invoke_without_command:
                yield (*path, name)
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name)


COMMANDS = [c for c in _commands(cli) if c not in NOT_RUN]


def test_every_command_is_classified() -> None:
    for path in COMMANDS:
        command = cli
        for name in path:
            assert isinstance(command, click.Group)
            command = command.commands[name]
        required = [p.name for p in command.params if p.required]
        assert not required or path in ARGUMENTS, f"add the required {required} of `mlops {' '.join(path)}`"
    assert set(NOT_RUN) <= set(_commands(cli)), "NOT_RUN names a command that no longer exists"


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in (
        "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
        "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN", "MLOPS_PROFILE",
        "MLOPS_DEBUG", "TF_BUILD", "MOTO_ACCOUNT_ID",
    ):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    import boto3

    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # it caches the credentials of earlier tests
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("MLOPS_CONFIG", str(REPO_ROOT / "mlops.yaml"))
    monkeypatch.setenv("MLOPS_TWIN_DIR", str(tmp_path / "twin"))
    monkeypatch.setenv("BUILD_SOURCEVERSION", "0123456789abcdef0123456789abcdef01234567")
    monkeypatch.setenv("BUILD_SOURCEBRANCH", "refs/heads/main")
    # The bridge Lambda's environment, so `bridge replay` gets as far as its first AWS call.
    for name, value in {
        "ADO_ORG_URL": "https://dev.azure.com/contoso",
        "ADO_PROJECT": "mlops",
        "ADO_PIPELINE_ID": "2",
        "ADO_AUTH_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:111111111111:secret:ado-AbCdEf",
        "IDEMPOTENCY_TABLE": "mlops-bridge-idempotency",
        "MODEL_PACKAGE_GROUPS": "breast-cancer",
    }.items():
        monkeypatch.setenv(name, value)
    pipeline = tmp_path / "pipeline.yml"
    pipeline.write_text("steps:\n  - script: echo hello\n    displayName: Hello\n", encoding="utf-8")
    return pipeline


@pytest.fixture
def unreachable(no_credentials: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")  # botocore would retry a refused connection with real sleeps
    return no_credentials


def _run(path: tuple[str, ...], pipeline: Path) -> list[str]:
    return [*path, *(arg.format(pipeline=pipeline) for arg in ARGUMENTS.get(path, []))]


def _assert_one_actionable_line(path: tuple[str, ...], code: int, out: str, err: str) -> None:
    assert "Traceback" not in out + err, f"`mlops {' '.join(path)}` printed a traceback:\n{err}"
    if code != 0 and path not in STATUS_COMMANDS:
        lines = err.splitlines()
        assert code == 1 and lines, f"`mlops {' '.join(path)}` exited {code} with stderr {err!r}"
        assert lines[0].startswith("error: "), f"`mlops {' '.join(path)}`: first line {lines[0]!r}"
        assert any(line.strip().startswith("fix: ") for line in lines), f"`mlops {' '.join(path)}`: no fix line"


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: "-".join(p) or "root")
def test_without_credentials_every_command_says_what_to_do(
    path: tuple[str, ...], no_credentials: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(_run(path, no_credentials))
    out, err = capsys.readouterr()
    _assert_one_actionable_line(path, code, out, err)
    if path[:1] == ("ado",):  # Azure DevOps, not AWS: a PAT or an Entra token
        assert err.startswith("error: no Azure DevOps credential: no PAT in AZURE_DEVOPS_EXT_PAT"), err
    elif code == 1 and "credentials" in err:
        assert err.startswith("error: no AWS credentials were found"), err


@pytest.mark.parametrize("path", COMMANDS, ids=lambda p: "-".join(p) or "root")
def test_against_an_unreachable_endpoint_every_command_says_what_to_do(
    path: tuple[str, ...], unreachable: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(_run(path, unreachable))
    out, err = capsys.readouterr()
    _assert_one_actionable_line(path, code, out, err)
    if code == 1 and "could not be reached" in err:
        assert err.startswith("error: the AWS endpoint http://127.0.0.1:"), err


def test_the_aws_commands_do_fail_on_missing_credentials(
    no_credentials: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The parametrised tests accept success; these must reach AWS and fail there, with the mapped message.
    for path in [("registry", "list"), ("build", "upsert"), ("deploy",), ("infra", "deploy"), ("bridge", "replay")]:
        assert main(_run(path, no_credentials)) == 1, path
        assert capsys.readouterr().err.startswith("error: no AWS credentials were found"), path


def test_the_aws_commands_do_fail_on_an_unreachable_endpoint(
    unreachable: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for path in [("registry", "list"), ("build", "cleanup"), ("deploy", "rollback"), ("test",)]:
        assert main(_run(path, unreachable)) == 1, path
        err = capsys.readouterr().err
        assert err.startswith("error: the AWS endpoint http://127.0.0.1:"), (path, err)
        assert "fix: check the network" in err


def test_debug_adds_the_traceback(no_credentials: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--debug", "registry", "list"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "NoCredentialsError" in err
    assert err.splitlines()[-2].startswith("error: no AWS credentials were found")
    # --debug is for that one call: the next one is back to one line.
    assert main(["registry", "list"]) == 1
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("branch", ["", "*", "../", "///"])
def test_a_branch_that_names_nothing_is_one_line(
    branch: str, no_credentials: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["build", "cleanup", "--branch", branch]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: expected a git branch name with letters or digits, found {branch!r}")
    assert "fix: pass the branch's name" in err


def test_an_unexpected_error_is_one_line_with_a_fix(
    no_credentials: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import model_build.build

    def broken(*_: object, **__: object) -> None:
        raise KeyError("Steps")

    monkeypatch.setattr(model_build.build, "render", broken)
    assert main(["build", "definition"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: unexpected KeyError: 'Steps'") and "fix: run the command again with --debug" in err
    assert "Traceback" not in err
