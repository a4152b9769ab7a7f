"""Benchmark of the build half: model quality against baselines, and the cost of rendering.

    .venv/bin/python bench/bench_build.py [--renders N]

1. Test-split AUC and F1 of the pipeline's model (preprocess -> train -> evaluate, the step scripts
   themselves) against two baselines fitted on the same split in the same run: the majority class,
   and a logistic regression on the same standardised features.
2. Time to render the definition: `mlops build definition` in a fresh process (SDK import included),
   median of N, and an in-process breakdown (SDK import, building the step objects, definition()).
Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("AWS_EC2_METADATA_DISABLED", "true")


def model_quality(work: Path) -> list[tuple[str, float, float]]:
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score, roc_auc_score

    from mlops.core.use_cases import default_directory, load_use_case
    from model_build import data
    from model_build.steps import evaluate, preprocess, train

    data.write_dataset(work / "input")
    # What the build puts in every step's code bundle: the use case's step spec.
    spec_file = work / "use_case.json"
    spec_file.write_text(json.dumps(load_use_case(default_directory(), "breast-cancer").step_spec()))
    use_case = ["--use-case-file", str(spec_file)]
    preprocess.main(["--input-dir", str(work / "input"), "--output-dir", str(work), *use_case])
    os.environ.update(
        {
            "SM_CHANNEL_TRAIN": str(work / "train"),
            "SM_CHANNEL_VALIDATION": str(work / "validation"),
            "SM_CHANNEL_PREPROCESSOR": str(work / "preprocessor"),
            "SM_MODEL_DIR": str(work / "model"),
            "SM_OUTPUT_DIR": str(work / "output"),
            "SM_HPS": "{}",
        }
    )
    if train.main(use_case) != 0:
        raise SystemExit("training failed")
    (work / "artifact").mkdir()
    with tarfile.open(work / "artifact" / "model.tar.gz", "w:gz") as archive:
        archive.add(work / "model", arcname=".")
    evaluate.main(
        [
            "--model-dir", str(work / "artifact"), "--test-dir", str(work / "test"),
            "--output-dir", str(work / "eval"), *use_case,
        ]
    )  # fmt: skip
    ours = json.loads((work / "eval" / "evaluation.json").read_text())["binary_classification_metrics"]

    train_rows = np.loadtxt(work / "train" / "train.csv", delimiter=",")
    test = pd.read_csv(work / "test" / "test.csv")
    y_test = test["label"].to_numpy()
    pre = json.loads((work / "preprocessor" / "preprocessor.json").read_text())
    x_test = preprocess.transform(test, pre)

    majority = int(train_rows[:, 0].mean() >= 0.5)
    majority_scores = np.full(len(y_test), float(majority))
    logistic = LogisticRegression(max_iter=5000).fit(train_rows[:, 1:], train_rows[:, 0])
    logistic_scores = logistic.predict_proba(x_test)[:, 1]
    return [
        ("XGBoost (the pipeline's model)", ours["auc"]["value"], ours["f1"]["value"]),
        (
            "majority class",
            roc_auc_score(y_test, majority_scores),
            f1_score(y_test, majority_scores.astype(int), zero_division=0),
        ),
        (
            "logistic regression",
            roc_auc_score(y_test, logistic_scores),
            f1_score(y_test, (logistic_scores >= 0.5).astype(int)),
        ),
    ]


def render_times(renders: int) -> tuple[list[float], dict[str, float]]:
    command = [
        str(REPO_ROOT / ".venv" / "bin" / "mlops"),
        "--profile",
        "local",
        "build",
        "definition",
        "--branch",
        "main",
    ]
    walls = []
    for _ in range(renders):
        started = time.perf_counter()
        subprocess.run(command, cwd=REPO_ROOT, check=True, capture_output=True)
        walls.append(time.perf_counter() - started)
    probe = (
        "import time,json;t0=time.perf_counter();import model_build.pipeline as p;t1=time.perf_counter();"
        "from mlops.core.config import load_config;from model_build import build;c=load_config(profile='local');"
        "t2=time.perf_counter();r=build.render(c,'main');t3=time.perf_counter();"
        "print(json.dumps({'sdk_import':t1-t0,'render_after_import':t3-t2}))"
    )
    done = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, check=True, capture_output=True, text=True)
    return walls, json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--renders", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = model_quality(Path(tmp))
    print("model quality on the test split (114 rows, same split and run for all):")
    print(f"  {'model':<32}{'AUC':>8}{'F1':>8}")
    for name, auc, f1 in rows:
        print(f"  {name:<32}{auc:>8.4f}{f1:>8.4f}")
    ours, majority, logistic = rows
    print(f"  AUC ratio vs logistic regression: {ours[1] / logistic[1]:.4f}; F1 ratio: {ours[2] / logistic[2]:.4f}")
    print(f"  AUC gain over majority class: {ours[1] - majority[1]:+.4f}; F1 gain: {ours[2] - majority[2]:+.4f}")
    walls, split = render_times(args.renders)
    print(f"render `mlops build definition` in a fresh process, {args.renders} runs:")
    print(f"  median {statistics.median(walls):.2f} s (min {min(walls):.2f}, max {max(walls):.2f})")
    sdk, after = split["sdk_import"], split["render_after_import"]
    print(f"  in-process: SDK import {sdk:.2f} s, render after import {after:.2f} s")


if __name__ == "__main__":
    main()
