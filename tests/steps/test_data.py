"""model_build.data: scikit-learn's bundled data sets read without scikit-learn, and the shape check."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from model_build import data
from tests.steps.pipeline_run import shipped_use_case, use_case


@pytest.mark.parametrize(
    ("name", "loader", "flip"),
    [("wine", "load_wine", False), ("iris", "load_iris", False), ("breast_cancer", "load_breast_cancer", True)],
)
def test_bundled_classification_sets_match_scikit_learn(name: str, loader: str, flip: bool) -> None:
    import sklearn.datasets

    bunch = getattr(sklearn.datasets, loader)()
    frame = pd.read_csv(io.BytesIO(data.bundled_csv_bytes(name)))
    assert list(frame.columns) == [*bunch.feature_names, "label"]
    np.testing.assert_allclose(frame.drop(columns=["label"]).to_numpy(), bunch.data)
    np.testing.assert_array_equal(frame["label"].to_numpy(), 1 - bunch.target if flip else bunch.target)


def test_diabetes_is_the_raw_unscaled_regression_set() -> None:
    from sklearn.datasets import load_diabetes

    bunch = load_diabetes(scaled=False)
    frame = pd.read_csv(io.BytesIO(data.bundled_csv_bytes("diabetes")))
    assert list(frame.columns) == ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6", "label"]
    np.testing.assert_allclose(frame.drop(columns=["label"]).to_numpy(), bunch.data)
    np.testing.assert_allclose(frame["label"].to_numpy(), bunch.target)


def test_the_breast_cancer_snapshot_keeps_its_bytes() -> None:
    # The build's content address of the data: unchanged by the registry (sha256 of the old dataset_csv_bytes).
    payload = data.dataset_csv_bytes()
    assert payload == data.bundled_csv_bytes("breast_cancer")
    assert payload.startswith(b"mean radius,mean texture,") and payload.count(b"\n") == 570


@pytest.mark.parametrize("name", ["breast-cancer", "wine"])
def test_the_shipped_use_cases_sources_pass_their_shape_check(name: str) -> None:
    case = shipped_use_case(name)
    file_name, payload = data.source_csv_bytes(case, Path("unused"))
    assert file_name == f"{case.data.source.removeprefix('sklearn:')}.csv"
    assert pd.read_csv(io.BytesIO(payload)).columns.tolist() == [*case.features, "label"]


def test_file_sources_are_read_from_the_use_case_folder_and_checked(tmp_path: Path) -> None:
    case = use_case("regression", "sklearn", "diabetes", data={"source": "file:data/d.csv", "label": "label"})
    with pytest.raises(data.DatasetError, match=r"expected a CSV file at .*d\.csv, found none"):
        data.source_csv_bytes(case, tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "d.csv").write_bytes(data.bundled_csv_bytes("diabetes"))
    assert data.source_csv_bytes(case, tmp_path) == ("d.csv", data.bundled_csv_bytes("diabetes"))
    outside = use_case("regression", "sklearn", "diabetes", data={"source": "file:../x.csv", "label": "label"})
    with pytest.raises(data.DatasetError, match="points outside its folder"):
        data.source_csv_bytes(outside, tmp_path)
    s3 = use_case("regression", "sklearn", "diabetes", data={"source": "s3://bucket/d.csv", "label": "label"})
    with pytest.raises(data.DatasetError, match="the build reads S3 sources through its S3 client"):
        data.source_csv_bytes(s3, tmp_path)


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def test_shape_check_names_missing_and_extra_columns() -> None:
    case = use_case("multiclass", "xgboost", "wine")
    frame = pd.read_csv(io.BytesIO(data.bundled_csv_bytes("wine")))
    with pytest.raises(data.DatasetError) as caught:
        data.check_shape(case, _csv(frame.drop(columns=["hue"]).rename(columns={"ash": "ashes"})))
    message = str(caught.value)
    assert "use case 'wine-xgboost'" in message
    assert "missing column(s) ['ash', 'hue']" in message and "extra column(s) ['ashes']" in message
    assert "make the CSV's header match `features` and `data.label`" in message


def test_shape_check_names_non_numeric_features() -> None:
    case = use_case("regression", "sklearn", "diabetes")
    frame = pd.read_csv(io.BytesIO(data.bundled_csv_bytes("diabetes")))
    frame["sex"] = frame["sex"].map({1: "f", 2: "m"})
    frame.loc[3, "bmi"] = None  # an empty cell is imputed, not an error
    with pytest.raises(
        data.DatasetError, match=r"non-numeric feature column\(s\) 'sex' \(e\.g\. 'm'\).*encode categories"
    ):
        data.check_shape(case, _csv(frame))


@pytest.mark.parametrize(
    ("task", "dataset", "labels", "message"),
    [
        ("binary", "breast_cancer", lambda y: y.replace(1, 2), r"expected the binary classes \[0, 1\].*found \[0, 2\]"),
        ("binary", "breast_cancer", lambda y: y * 0, r"classes \[1\] never occur"),
        ("multiclass", "wine", lambda y: y + 1, r"values \[3\] are not classes; classes \[0\] never occur"),
        ("multiclass", "wine", lambda y: y.astype(str).replace("2", "two"), r"values \['two'\] are not classes"),
        ("regression", "diabetes", lambda y: y.astype(str).replace("151.0", "high"), r"expected numbers.*\['high'\]"),
    ],
)
def test_shape_check_names_label_values_found_and_expected(
    task: str, dataset: str, labels: Callable[[pd.Series], pd.Series], message: str
) -> None:
    case = use_case(task, "xgboost", dataset)
    frame = pd.read_csv(io.BytesIO(data.bundled_csv_bytes(dataset)))
    frame["label"] = labels(frame["label"])
    with pytest.raises(data.DatasetError, match=message) as caught:
        data.check_shape(case, _csv(frame))
    assert f"use case {case.name!r}" in str(caught.value)


def test_shape_check_refuses_empty_and_ragged_files() -> None:
    case = use_case("multiclass", "sklearn", "iris")
    header = ",".join([*case.features, "label"])
    with pytest.raises(data.DatasetError, match="found an empty file"):
        data.check_shape(case, b"")
    with pytest.raises(data.DatasetError, match="found only the header"):
        data.check_shape(case, (header + "\n").encode())
    with pytest.raises(data.DatasetError, match=r"line\(s\) \[2\] have a number of cells other than the header's 5"):
        data.check_shape(case, (header + "\n1,2,3\n").encode())
    with pytest.raises(data.DatasetError, match="no 'label' value"):
        data.check_shape(case, (header + "\n1,2,3,4,\n").encode())
