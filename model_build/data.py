"""The use case's input data: the Wisconsin breast-cancer data set that ships inside scikit-learn.

Nothing is downloaded: the CSV is read from the installed scikit-learn wheel (without importing
scikit-learn, which costs seconds). The label is 1 for a malignant tumour (the class a screening
model must find) and 0 for benign; the file codes malignant as 0, so it is flipped here, once.
Values are copied as text, so the snapshot's bytes (and its sha256) are stable.
"""

from __future__ import annotations

import csv
import hashlib
import importlib.util
import io
from pathlib import Path

LABEL_COLUMN = "label"
DATASET_FILE_NAME = "breast_cancer.csv"
_MEASURES = (
    "radius", "texture", "perimeter", "area", "smoothness",
    "compactness", "concavity", "concave points", "symmetry", "fractal dimension",
)  # fmt: skip
FEATURE_NAMES = [f"mean {m}" for m in _MEASURES] + [f"{m} error" for m in _MEASURES] + [f"worst {m}" for m in _MEASURES]


class DatasetError(RuntimeError):
    pass


def _source_path() -> Path:
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise DatasetError("scikit-learn is not installed; it ships the data set (run `make install`)")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "breast_cancer.csv"
    if not path.is_file():
        raise DatasetError(f"expected the breast-cancer data at {path}; reinstall scikit-learn")
    return path


def dataset_csv_bytes() -> bytes:
    rows = list(csv.reader(_source_path().read_text(encoding="utf-8").splitlines()))
    header, body = rows[0], rows[1:]
    n_samples, n_features = int(header[0]), int(header[1])
    if n_features != len(FEATURE_NAMES) or len(body) != n_samples:
        raise DatasetError(
            f"expected {len(FEATURE_NAMES)} features, found {n_features}; expected {n_samples} rows, found {len(body)}"
        )
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*FEATURE_NAMES, LABEL_COLUMN])
    for row in body:
        # Column 31 is the target: 0 malignant, 1 benign in the file; 1 malignant here.
        writer.writerow([*row[:n_features], str(1 - int(row[n_features]))])
    return out.getvalue().encode("utf-8")


def write_dataset(directory: Path) -> tuple[Path, str]:
    """Write the raw data set as CSV; return its path and sha256 (its snapshot identity)."""
    payload = dataset_csv_bytes()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / DATASET_FILE_NAME
    path.write_bytes(payload)
    return path, hashlib.sha256(payload).hexdigest()
