"""`python -m mlops.local.serve`: the process `mlops local up` starts for the twin's server.

It sets the collector's thresholds (mlops/core/gc_policy.py) before it imports the server: moto's and the SDK's
imports are most of the server's start, which `mlops local up` waits for (1.45 s with Python's default
thresholds, 1.17 s with these, on a 2-core machine).
"""

from __future__ import annotations

import sys

from mlops.core import gc_policy

gc_policy.tune()

from mlops.local.server import main  # noqa: E402  (after the thresholds, on purpose)

if __name__ == "__main__":
    sys.exit(main())
