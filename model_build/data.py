"""The use case's input data: scikit-learn's bundled Wisconsin breast-cancer data set.

It ships inside the scikit-learn wheel, so nothing is downloaded. The label is 1 for a malignant
tumour (the class a screening model must find) and 0 for benign; scikit-learn codes it the other
way round, so it is flipped here, once.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

LABEL_COLUMN = "label"
DATASET_FILE_NAME = "breast_cancer.csv"


def dataset_csv_bytes() -> bytes:
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    frame = bunch.frame.rename(columns={"target": LABEL_COLUMN})
    frame[LABEL_COLUMN] = 1 - frame[LABEL_COLUMN]
    return frame.to_csv(index=False, float_format="%.10g").encode("utf-8")


def write_dataset(directory: Path) -> tuple[Path, str]:
    """Write the raw data set as CSV; return its path and sha256 (its snapshot identity)."""
    payload = dataset_csv_bytes()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / DATASET_FILE_NAME
    path.write_bytes(payload)
    return path, hashlib.sha256(payload).hexdigest()
