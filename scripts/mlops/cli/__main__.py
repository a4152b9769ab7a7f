"""`python -m mlops.cli …` runs the command line (the pipelines call `mlops`; tests use both)."""

import sys

from mlops.cli.root import main

sys.exit(main())
