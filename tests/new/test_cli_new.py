"""`mlops new use-case` end to end in-process: options to files, the default folder from mlops.yaml, refusals."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from mlops.cli import cli, main
from mlops.core.use_cases import default_directory, discover, load_use_case
from tests.conftest import REPO_ROOT


def shipped_copy(target: Path) -> Path:
    for name, source in discover(default_directory()).items():
        shutil.copytree(source, target / name)
    return target


def test_writes_the_use_case_and_prints_the_files_and_next_commands(tmp_path: Path) -> None:
    folder = shipped_copy(tmp_path / "use_cases")
    result = CliRunner().invoke(
        cli,
        [
            "new", "use-case", "churn", "--task", "multiclass", "--framework", "sklearn",
            "--data", "s3://team-data-bucket/churn/train.csv", "--features", '"size, cm",tenure,spend',
            "--label", "plan", "--num-classes", "4", "--dir", str(folder),
        ],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    loaded = load_use_case(folder, "churn")
    assert loaded.features == ["size, cm", "tenure", "spend"]
    assert (loaded.data.label, loaded.classes) == ("plan", [0, 1, 2, 3])
    assert f"wrote {folder / 'churn' / 'use_case.yaml'}" in result.output
    assert f"wrote {folder / 'churn' / 'README.md'}" in result.output
    assert "make demo USE_CASE=churn" in result.output
    assert "mlops --use-case churn build run" in result.output


def test_the_default_folder_is_use_cases_path_of_mlops_yaml(tmp_path: Path) -> None:
    shipped_copy(tmp_path / "models")
    text = (REPO_ROOT / "mlops.yaml").read_text(encoding="utf-8")
    assert "use_cases:\n  default: breast-cancer\n" in text
    config = tmp_path / "mlops.yaml"
    config.write_text(text.replace("use_cases:\n", "use_cases:\n  path: models\n", 1), encoding="utf-8")

    code = main(["--config", str(config), "new", "use-case", "sugar", "--task", "regression", "--framework", "xgboost"])

    assert code == 0
    assert load_use_case(tmp_path / "models", "sugar").data.source == "sklearn:diabetes"


def test_a_refusal_exits_1_with_the_conflict_and_the_fix_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = shipped_copy(tmp_path / "use_cases")
    before = sorted(p for p in tmp_path.rglob("*"))

    code = main(["new", "use-case", "wine-red", "--task", "multiclass", "--framework", "xgboost", "--dir", str(folder)])

    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: use case 'wine-red' would collide")
    assert "fix: " in err
    assert sorted(p for p in tmp_path.rglob("*")) == before


def test_an_unknown_task_is_refused_by_the_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["new", "use-case", "churn", "--task", "ranking", "--framework", "xgboost", "--dir", str(tmp_path)])
    assert code == 2
    assert "'ranking' is not one of 'binary', 'multiclass', 'regression'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
