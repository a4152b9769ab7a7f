"""`python -m mlops.cli …` runs the command line (the pipelines call `mlops`; tests use both)."""

from mlops.cli import run

run()
