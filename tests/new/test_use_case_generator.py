"""`mlops new use-case`'s generator: every template combination renders a valid use case, bad input is refused
before anything is written, and --force keeps what the generator did not write."""

from __future__ import annotations

import itertools
import os
import shutil
from pathlib import Path

import pytest
import yaml

from mlops.core.use_cases import (
    FRAMEWORKS,
    HYPERPARAMETER_MODELS,
    TASKS,
    UseCase,
    check_collisions,
    default_directory,
    discover,
    load_use_case,
)
from mlops.new import use_case as generator
from mlops.new.use_case import NewUseCaseError, UseCaseRequest, plan_use_case, write_use_case

PLACEHOLDERS = ("{{", "}}", "{%", "%}", "${", "$name", "StrictUndefined")


def write_csv(path: Path, task: str, *, rows: int = 60, header: list[str] | None = None) -> Path:
    """A small CSV whose label suits the task: binary 0/1, multiclass 0..2, regression a number."""
    columns = header or ["f1", "f2", "f3", "label"]
    lines = [",".join(f'"{c}"' if "," in c else c for c in columns)]
    for i in range(rows):
        label = {"binary": str(i % 2), "multiclass": str(i % 3), "regression": f"{i * 1.5:.2f}"}[task]
        features = [f"{(i * (k + 3)) % 17 / 4:.3f}" for k in range(len(columns) - 1)]
        lines.append(",".join([*features, label]))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A use case folder holding copies of the shipped use cases, so collisions are checked against them."""
    target = tmp_path / "use_cases"
    for name, source in discover(default_directory()).items():
        shutil.copytree(source, target / name)
    return target


def snapshot(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def data_for(kind: str, task: str, tmp_path: Path) -> tuple[str | None, tuple[str, ...] | None, int | None]:
    if kind == "bundled":
        return None, None, None
    if kind == "file":
        return f"file:{write_csv(tmp_path / 'in' / f'{task}.csv', task)}", None, None
    return "s3://team-data-bucket/churn/train.csv", ("f1", "f2", "f3"), (4 if task == "multiclass" else None)


@pytest.mark.parametrize(
    ("task", "framework", "kind"), list(itertools.product(TASKS, FRAMEWORKS, ("bundled", "file", "s3")))
)
def test_every_combination_renders_a_use_case_that_loads(
    task: str, framework: str, kind: str, folder: Path, tmp_path: Path
) -> None:
    name = f"gen-{task}-{framework}-{kind}"
    data, features, num_classes = data_for(kind, task, tmp_path)
    request = UseCaseRequest(name, task, framework, data=data, features=features, num_classes=num_classes)

    report = write_use_case(plan_use_case(request, folder))

    files = snapshot(report.target)
    for relative in ("use_case.yaml", "README.md"):
        text = files[relative].decode("utf-8")
        leftovers = [p for p in PLACEHOLDERS if p in text]
        assert not leftovers, f"{relative} keeps template syntax {leftovers}"
    found = discover(folder)
    check_collisions(found)  # the generated name sits beside the shipped use cases
    loaded = load_use_case(folder, name)
    assert (loaded.task, loaded.framework) == (task, framework)
    assert set(loaded.hyperparameters) == set(HYPERPARAMETER_MODELS[framework].model_fields)
    metric, threshold = generator.DEFAULT_QUALITY[task]
    assert (loaded.quality.metric, loaded.quality.threshold) == (metric, threshold)
    if "card" in UseCase.model_fields:  # the model card section follows the schema, key by key
        assert yaml.safe_load(files["use_case.yaml"])["card"] == {key: v for key, v, _ in generator.card_fields()}
    readme = files["README.md"].decode("utf-8")
    assert f"make demo USE_CASE={name}" in readme
    assert f"mlops --use-case {name} build run" in readme
    if kind == "bundled":
        source = generator.DEFAULT_DATA[task]
        assert loaded.data.source == source
        assert loaded.features == list(generator.BUNDLED[source.removeprefix("sklearn:")].features)
    elif kind == "file":
        assert loaded.data.source == f"file:data/{task}.csv"
        assert files[f"data/{task}.csv"] == (tmp_path / "in" / f"{task}.csv").read_bytes()
        assert loaded.features == ["f1", "f2", "f3"]
    else:
        assert loaded.data.source == data
        assert loaded.features == ["f1", "f2", "f3"]
    expected_classes = {"binary": [0, 1], "multiclass": [0, 1, 2] if kind != "s3" else [0, 1, 2, 3]}.get(task)
    assert loaded.classes == expected_classes
    assert sorted(files) == sorted(["use_case.yaml", "README.md", *([f"data/{task}.csv"] if kind == "file" else [])])
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []  # no staging folder left


def test_bundled_feature_table_matches_scikit_learn() -> None:
    """The generator's table of bundled columns must be the names scikit-learn's loaders give."""
    from sklearn import datasets

    for key, dataset in generator.BUNDLED.items():
        bunch = getattr(datasets, f"load_{key}")()
        assert list(dataset.features) == list(bunch.feature_names), key
        assert dataset.rows == len(bunch.target), key
        if dataset.classes is not None:
            assert sorted({int(v) for v in bunch.target}) == list(dataset.classes), key


def test_every_hyperparameter_key_has_a_note() -> None:
    for framework, model in HYPERPARAMETER_MODELS.items():
        assert set(generator.HYPERPARAMETER_NOTES[framework]) == set(model.model_fields), framework


def test_column_names_that_need_yaml_quoting_survive(folder: Path, tmp_path: Path) -> None:
    header = ["yes", "1.5", "a: b", "# note", "- dash", "size, cm", "café", "[x]", "label"]
    csv_file = write_csv(tmp_path / "odd.csv", "binary", header=header)

    write_use_case(plan_use_case(UseCaseRequest("odd-names", "binary", "xgboost", data=f"file:{csv_file}"), folder))

    loaded = load_use_case(folder, "odd-names")
    assert loaded.features == header[:-1]
    assert loaded.monitor.drift_features == header[:-1]


def test_a_description_and_a_feature_subset_are_kept(folder: Path) -> None:
    request = UseCaseRequest(
        "cultivar",
        "multiclass",
        "sklearn",
        data="sklearn:iris",
        features=("petal width (cm)", "sepal length (cm)"),
        description="Which 'iris': species, from  two\nmeasurements.",
    )
    write_use_case(plan_use_case(request, folder))
    loaded = load_use_case(folder, "cultivar")
    assert loaded.features == ["petal width (cm)", "sepal length (cm)"]
    assert loaded.description == "Which 'iris': species, from two measurements."


# ------------------------------------------------------------------------------------------- refusals


def refused(folder: Path, request: UseCaseRequest, match: str, *, force: bool = False) -> NewUseCaseError:
    before = snapshot(folder.parent)
    with pytest.raises(NewUseCaseError, match=match) as caught:
        write_use_case(plan_use_case(request, folder, force=force))
    assert snapshot(folder.parent) == before, "a refusal wrote something"
    assert caught.value.hint, "every refusal says what to do"
    return caught.value


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("Churn", "invalid"),
        ("churn--model", "invalid"),
        ("1churn", "invalid"),
        ("churn_model", "invalid"),
        ("c" * 33, "33 characters"),
    ],
)
def test_invalid_names_are_refused(folder: Path, name: str, match: str) -> None:
    refused(folder, UseCaseRequest(name, "binary", "xgboost"), match)


def test_an_existing_use_case_is_refused_without_force(folder: Path) -> None:
    error = refused(folder, UseCaseRequest("wine", "multiclass", "xgboost"), "already exists")
    assert "--force" in str(error)


@pytest.mark.parametrize(
    ("name", "other"),
    [("wine-red", "wine"), ("breast", "breast-cancer")],
)
def test_names_whose_resource_patterns_overlap_a_use_case_are_refused(folder: Path, name: str, other: str) -> None:
    error = refused(folder, UseCaseRequest(name, "binary", "xgboost"), "collide")
    assert repr(other) in str(error)


def test_a_bundled_set_of_another_task_is_refused(folder: Path) -> None:
    error = refused(
        folder, UseCaseRequest("sugar", "binary", "xgboost", data="sklearn:diabetes"), "regression data set"
    )
    assert "sklearn:breast_cancer" in str(error)


def test_a_csv_without_the_label_column_is_refused(folder: Path, tmp_path: Path) -> None:
    csv_file = write_csv(tmp_path / "x.csv", "binary", header=["f1", "f2", "target"])
    error = refused(folder, UseCaseRequest("churn", "binary", "xgboost", data=f"file:{csv_file}"), "no label column")
    assert "--label" in str(error)


def test_a_label_named_by_option_is_used(folder: Path, tmp_path: Path) -> None:
    csv_file = write_csv(tmp_path / "x.csv", "binary", header=["f1", "f2", "target"])
    write_use_case(
        plan_use_case(UseCaseRequest("churn", "binary", "xgboost", data=f"file:{csv_file}", label="target"), folder)
    )
    loaded = load_use_case(folder, "churn")
    assert (loaded.data.label, loaded.features) == ("target", ["f1", "f2"])


def test_a_non_numeric_feature_is_refused_with_its_line_and_column(folder: Path, tmp_path: Path) -> None:
    csv_file = write_csv(tmp_path / "x.csv", "binary")
    lines = csv_file.read_text().splitlines()
    lines[7] = "0.1,red,0.3,1"
    csv_file.write_text("\n".join(lines) + "\n")
    refused(
        folder,
        UseCaseRequest("churn", "binary", "xgboost", data=f"file:{csv_file}"),
        r"line 8 \(row 7\), column 'f2': expected a number, found 'red'",
    )


def test_a_missing_feature_value_is_accepted_as_imputed(folder: Path, tmp_path: Path) -> None:
    csv_file = write_csv(tmp_path / "x.csv", "binary")
    lines = csv_file.read_text().splitlines()
    lines[3] = "0.1,,0.3,1"
    csv_file.write_text("\n".join(lines) + "\n")
    write_use_case(plan_use_case(UseCaseRequest("churn", "binary", "xgboost", data=f"file:{csv_file}"), folder))
    assert load_use_case(folder, "churn").features == ["f1", "f2", "f3"]


@pytest.mark.parametrize(
    ("task", "bad_row", "match"),
    [
        ("binary", "0.1,0.2,0.3,2", r"line 11 \(row 10\), label column 'label': a binary label is 0 or 1, found '2'"),
        ("binary", "0.1,0.2,0.3,", r"line 11 \(row 10\), label column 'label': expected a number, found ''"),
        ("multiclass", "0.1,0.2,0.3,1.5", r"line 11 \(row 10\).*a multiclass label is 0..K-1, found '1.5'"),
    ],
)
def test_a_classifier_label_with_a_wrong_value_is_refused_with_its_row(
    folder: Path, tmp_path: Path, task: str, bad_row: str, match: str
) -> None:
    csv_file = write_csv(tmp_path / "x.csv", task)
    lines = csv_file.read_text().splitlines()
    lines[10] = bad_row
    csv_file.write_text("\n".join(lines) + "\n")
    refused(folder, UseCaseRequest("churn", task, "sklearn", data=f"file:{csv_file}"), match)


def test_multiclass_labels_with_a_gap_are_refused(folder: Path, tmp_path: Path) -> None:
    csv_file = write_csv(tmp_path / "x.csv", "multiclass")
    csv_file.write_text(csv_file.read_text().replace(",2\n", ",3\n"))
    refused(
        folder,
        UseCaseRequest("churn", "multiclass", "xgboost", data=f"file:{csv_file}"),
        r"has the values \[0, 1, 3\]; expected \[0, 1, 2, 3\]",
    )


def test_too_few_rows_are_refused(folder: Path, tmp_path: Path) -> None:
    csv_file = write_csv(tmp_path / "x.csv", "regression", rows=20)
    refused(folder, UseCaseRequest("churn", "regression", "xgboost", data=f"file:{csv_file}"), "needs at least 50")


def test_an_s3_source_needs_features_and_a_multiclass_one_its_classes(folder: Path) -> None:
    source = "s3://team-data-bucket/churn/train.csv"
    refused(folder, UseCaseRequest("churn", "binary", "xgboost", data=source), "--features is required")
    refused(
        folder,
        UseCaseRequest("churn", "multiclass", "xgboost", data=source, features=("a", "b")),
        "--num-classes is required",
    )
    refused(
        folder, UseCaseRequest("churn", "binary", "xgboost", data="s3://Bad_Bucket/x.csv", features=("a",)), "invalid"
    )


def test_a_feature_that_is_not_a_column_is_refused(folder: Path) -> None:
    refused(
        folder,
        UseCaseRequest("grapes", "multiclass", "xgboost", data="sklearn:wine", features=("alcohol", "colour")),
        r"\['colour'\] are not columns",
    )


# ---------------------------------------------------------------------------------------------- writing


def test_force_rewrites_the_generated_files_and_keeps_the_rest(folder: Path, tmp_path: Path) -> None:
    first = write_csv(tmp_path / "v1" / "train.csv", "binary")
    write_use_case(plan_use_case(UseCaseRequest("churn", "binary", "xgboost", data=f"file:{first}"), folder))
    target = folder / "churn"
    (target / "steps").mkdir()
    (target / "steps" / "preprocess.py").write_text("# mine\n")
    (target / "data" / "extra.csv").write_text("a,label\n")
    second = write_csv(tmp_path / "v2" / "train.csv", "binary", rows=80)

    report = write_use_case(
        plan_use_case(UseCaseRequest("churn", "binary", "sklearn", data=f"file:{second}"), folder, force=True)
    )

    assert (target / "steps" / "preprocess.py").read_text() == "# mine\n"
    assert (target / "data" / "extra.csv").read_text() == "a,label\n"
    assert (target / "data" / "train.csv").read_bytes() == second.read_bytes()
    assert load_use_case(folder, "churn").framework == "sklearn"
    assert sorted(report.kept) == [target / "data" / "extra.csv", target / "steps" / "preprocess.py"]
    assert sorted(report.replaced) == sorted(report.written)


def test_a_failed_write_leaves_nothing(folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = plan_use_case(UseCaseRequest("churn", "binary", "xgboost"), folder)
    before = snapshot(folder)

    def broken_rename(src: object, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "rename", broken_rename)
    with pytest.raises(OSError, match="No space left"):
        write_use_case(plan)
    assert snapshot(folder) == before
    assert sorted(p.name for p in folder.iterdir()) == sorted(discover(default_directory()))


def test_a_rendered_file_that_drifts_from_the_plan_is_refused(folder: Path) -> None:
    plan = plan_use_case(UseCaseRequest("churn", "binary", "xgboost"), folder)
    drifted = yaml.safe_load(plan.files["use_case.yaml"])
    drifted["quality"]["threshold"] = 0.5
    with pytest.raises(NewUseCaseError, match="does not state what was planned"):
        generator._check_rendered(plan.use_case, yaml.safe_dump(drifted).encode())


def test_a_file_where_the_folder_would_go_is_refused_even_with_force(folder: Path) -> None:
    (folder / "churn").write_text("not a folder\n")
    refused(folder, UseCaseRequest("churn", "binary", "xgboost"), "is not a folder", force=True)


def test_an_empty_feature_list_is_refused(folder: Path) -> None:
    refused(folder, UseCaseRequest("grapes", "multiclass", "xgboost", features=()), "--features is empty")
