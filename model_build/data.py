"""A use case's input data: scikit-learn's bundled data sets or a CSV in the use case's folder, and its shape check.

Nothing is downloaded: the bundled data sets are read from the installed scikit-learn wheel (its
`datasets/data` files) without importing scikit-learn, which costs seconds; this runs at render time
in the CLI. Values are copied as text, so a snapshot's bytes (and its sha256) are stable. Every
snapshot is a CSV whose header is the features then the label column.

Bundled data sets (`sklearn:<name>`):
  breast_cancer  binary: 1 = malignant (the class a screening model must find); the file codes malignant
                 as 0, so it is flipped here, once
  wine           multiclass, 3 cultivars (0, 1, 2), 13 chemical measurements
  iris           multiclass, 3 species (0, 1, 2), 4 measurements in cm
  diabetes       regression: disease progression one year after baseline, from the raw (unscaled) files
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import importlib.util
import io
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mlops.core.use_cases import UseCase

LABEL_COLUMN = "label"
_MEASURES = (
    "radius", "texture", "perimeter", "area", "smoothness",
    "compactness", "concavity", "concave points", "symmetry", "fractal dimension",
)  # fmt: skip
BREAST_CANCER_FEATURES = (
    [f"mean {m}" for m in _MEASURES] + [f"{m} error" for m in _MEASURES] + [f"worst {m}" for m in _MEASURES]
)
WINE_FEATURES = [
    "alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols", "flavanoids",
    "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue", "od280/od315_of_diluted_wines", "proline",
]  # fmt: skip
IRIS_FEATURES = ["sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)"]
DIABETES_FEATURES = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]

# The breast-cancer data set's names, kept for callers written before there were several use cases.
FEATURE_NAMES = BREAST_CANCER_FEATURES
DATASET_FILE_NAME = "breast_cancer.csv"


class DatasetError(RuntimeError):
    """The data cannot be read, or is not the shape its use case declares; the message says the fix."""


@dataclass(frozen=True)
class Table:
    header: list[str]
    rows: list[list[str]]


def _sklearn_data_dir() -> Path:
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("scikit-learn is not installed; it ships the bundled data sets (run `make install`)")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


def _read_bundled(file_name: str) -> str:
    path = _sklearn_data_dir() / file_name
    if not path.is_file():
        raise DatasetError(f"expected scikit-learn's bundled data at {path}, found no file; reinstall scikit-learn")
    if file_name.endswith(".gz"):
        return gzip.decompress(path.read_bytes()).decode("utf-8")
    return path.read_text(encoding="utf-8")


def _counted_csv(file_name: str, names: list[str], label: Callable[[str], str]) -> Table:
    """scikit-learn's counted CSV layout: a first line `n_samples,n_features,<class names>`, then rows with
    the target last."""
    rows = list(csv.reader(_read_bundled(file_name).splitlines()))
    header, body = rows[0], rows[1:]
    n_samples, n_features = int(header[0]), int(header[1])
    if n_features != len(names) or len(body) != n_samples:
        raise DatasetError(
            f"{file_name}: expected {len(names)} features and {n_samples} rows, found {n_features} and {len(body)}; "
            "reinstall scikit-learn"
        )
    return Table([*names, LABEL_COLUMN], [[*row[:n_features], label(row[n_features])] for row in body])


def _breast_cancer() -> Table:
    # Column 31 is the target: 0 malignant, 1 benign in the file; 1 malignant here.
    return _counted_csv("breast_cancer.csv", BREAST_CANCER_FEATURES, lambda v: str(1 - int(v)))


def _wine() -> Table:
    return _counted_csv("wine_data.csv", WINE_FEATURES, str)


def _iris() -> Table:
    return _counted_csv("iris.csv", IRIS_FEATURES, str)


def _diabetes() -> Table:
    """The raw files: space-separated unscaled features and a target file with one value per line."""
    features = [line.split() for line in _read_bundled("diabetes_data_raw.csv.gz").splitlines() if line.strip()]
    targets = [line.strip() for line in _read_bundled("diabetes_target.csv.gz").splitlines() if line.strip()]
    if len(features) != len(targets) or any(len(row) != len(DIABETES_FEATURES) for row in features):
        raise DatasetError(
            f"diabetes: expected {len(DIABETES_FEATURES)} features per row and one target per row, found "
            f"{len(features)} rows and {len(targets)} targets; reinstall scikit-learn"
        )
    # The target file writes integers as '1.51e+02'; repr of the float is the same value, readably.
    rows = [[*row, repr(float(t))] for row, t in zip(features, targets, strict=True)]
    return Table([*DIABETES_FEATURES, LABEL_COLUMN], rows)


BUNDLED: dict[str, Callable[[], Table]] = {
    "breast_cancer": _breast_cancer,
    "wine": _wine,
    "iris": _iris,
    "diabetes": _diabetes,
}


def bundled_table(name: str) -> Table:
    if name not in BUNDLED:
        raise DatasetError(f"unknown bundled data set {name!r}; expected one of {', '.join(sorted(BUNDLED))}")
    return BUNDLED[name]()


def _to_csv(table: Table) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.header)
    writer.writerows(table.rows)
    return out.getvalue().encode("utf-8")


def bundled_csv_bytes(name: str) -> bytes:
    return _to_csv(bundled_table(name))


def dataset_csv_bytes() -> bytes:
    """The breast-cancer snapshot (features, then `label`)."""
    return bundled_csv_bytes("breast_cancer")


def write_dataset(directory: Path) -> tuple[Path, str]:
    """Write the breast-cancer data set as CSV; return its path and sha256 (its snapshot identity)."""
    payload = dataset_csv_bytes()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / DATASET_FILE_NAME
    path.write_bytes(payload)
    return path, hashlib.sha256(payload).hexdigest()


def source_csv_bytes(use_case: UseCase, use_case_dir: Path) -> tuple[str, bytes]:
    """(file name, CSV bytes) of a use case's `sklearn:` or `file:` source, checked against its declared shape."""
    source = use_case.data.source
    if source.startswith("sklearn:"):
        name = source.removeprefix("sklearn:")
        file_name, payload = f"{name}.csv", bundled_csv_bytes(name)
    elif source.startswith("file:"):
        relative = source.removeprefix("file:")
        path = (use_case_dir / relative).resolve()
        if not path.is_relative_to(use_case_dir.resolve()):
            # A file source travels with the use case's folder; a path outside it would not.
            raise DatasetError(
                f"use case {use_case.name!r}: data.source {source!r} points outside its folder {use_case_dir}; "
                "copy the CSV into the use case's folder and name it relative to that folder"
            )
        if not path.is_file():
            raise DatasetError(
                f"use case {use_case.name!r}: data.source {source!r}: expected a CSV file at {path}, found none; "
                f"put the CSV in {use_case_dir} or fix the path (relative to the use case's folder)"
            )
        file_name, payload = path.name, path.read_bytes()
    elif source.startswith("s3://"):
        raise DatasetError(
            f"use case {use_case.name!r}: data.source {source!r} is an S3 object; the build reads S3 sources "
            "through its S3 client (and records the object's version), not through model_build.data"
        )
    else:
        raise DatasetError(
            f"use case {use_case.name!r}: data.source {source!r}: expected 'sklearn:<name>', 'file:<csv>' or "
            "'s3://bucket/key.csv'"
        )
    check_shape(use_case, payload)
    return file_name, payload


def _is_number(cell: str) -> bool:
    try:
        return not math.isinf(float(cell))
    except ValueError:
        return False


def _problem(use_case: UseCase, what: str, fix: str) -> DatasetError:
    return DatasetError(f"use case {use_case.name!r} (data.source {use_case.data.source}): {what}; {fix}")


def _parse(use_case: UseCase, payload: bytes) -> Table:
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise _problem(
            use_case, f"expected UTF-8 CSV text, found byte 0x{payload[exc.start]:02x} at {exc.start}",
            "save the file as UTF-8 CSV",
        ) from exc  # fmt: skip
    rows = [row for row in csv.reader(io.StringIO(text)) if row]
    if not rows:
        raise _problem(use_case, "expected a header and rows, found an empty file", "export the data with a header")
    return Table(rows[0], rows[1:])


def check_shape(use_case: UseCase, payload: bytes) -> None:
    """Refuse data that is not the shape the use case declares: columns, numeric features, label values.

    Every problem found is named (the use case, the columns, the values found and expected) with the fix.
    """
    table = _parse(use_case, payload)
    label = use_case.data.label
    header = _check_columns(use_case, table.header)
    if not table.rows:
        raise _problem(use_case, "expected data rows, found only the header", "export the rows too")
    index = {name: i for i, name in enumerate(header)}
    short = [n for n, row in enumerate(table.rows, start=2) if len(row) != len(header)]
    if short:
        raise _problem(
            use_case,
            f"line(s) {short[:5]} have a number of cells other than the header's {len(header)}",
            "fix the rows (quote values that contain commas)",
        )
    non_numeric = []
    for name in use_case.features:
        bad = [row[index[name]] for row in table.rows if row[index[name]].strip() and not _is_number(row[index[name]])]
        if bad:
            non_numeric.append(f"{name!r} (e.g. {bad[0]!r})")
    if non_numeric:
        raise _problem(
            use_case,
            f"non-numeric feature column(s) {', '.join(non_numeric)}; the steps take numbers (empty cells are imputed)",
            "encode categories as numbers (e.g. one column per category) or drop the column from `features`",
        )
    _check_labels(use_case, [row[index[label]].strip() for row in table.rows])


def _check_columns(use_case: UseCase, found: Sequence[str], where: str = "") -> list[str]:
    """The header, stripped; DatasetError naming the missing, extra and duplicated columns."""
    label = use_case.data.label
    header = [name.strip() for name in found]
    problems: list[str] = []
    expected = [*use_case.features, label]
    missing = [name for name in expected if name not in header]
    extra = [name for name in header if name not in expected]
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if missing:
        problems.append(f"missing column(s) {missing}")
    if extra:
        problems.append(f"extra column(s) {extra}")
    if duplicated:
        problems.append(f"duplicated column(s) {duplicated}")
    if problems:
        raise _problem(
            use_case,
            f"{where + ': ' if where else ''}{'; '.join(problems)} "
            f"(expected the features then {label!r}: {expected}; found {header})",
            "make the CSV's header match `features` and `data.label` in use_case.yaml (or the reverse)",
        )
    return header


def check_header(use_case: UseCase, header_line: str, *, where: str) -> None:
    """The columns of data read elsewhere (an S3 object's first line), checked as `check_shape` checks a file's."""
    cells = next(csv.reader([header_line]), [])
    _check_columns(use_case, cells, where)


def _check_labels(use_case: UseCase, cells: Sequence[str]) -> None:
    label = use_case.data.label
    empty = sum(1 for c in cells if not c)
    if empty:
        raise _problem(use_case, f"{empty} row(s) have no {label!r} value", "drop or label those rows")
    if use_case.task == "regression":
        bad = sorted({c for c in cells if not _is_number(c)})
        if bad:
            raise _problem(
                use_case,
                f"label {label!r}: expected numbers for a regression, found {bad[:5]}",
                "use a numeric target, or set task to binary/multiclass for a class label",
            )
        return
    classes = use_case.label_classes or [0, 1]
    found: set[str | int] = set()
    for cell in cells:
        try:
            number = float(cell)
        except ValueError:
            found.add(cell)
            continue
        found.add(int(number) if number.is_integer() else cell)
    kind = "binary" if use_case.task == "binary" else "multiclass"
    shown = sorted(found, key=str)
    if found != set(classes):
        absent = sorted(set(classes) - found, key=str)
        unexpected = sorted(found - set(classes), key=str)
        detail = []
        if unexpected:
            detail.append(f"values {unexpected} are not classes")
        if absent:
            detail.append(f"classes {absent} never occur")
        raise _problem(
            use_case,
            f"label {label!r}: expected the {kind} classes {classes} (each present), found {shown} "
            f"({'; '.join(detail)})",
            "map the label to 0..K-1 integers (binary: 1 the positive class) and list them in `classes`",
        )
