"""The `mlops` command line: the composition root. Thin click commands that call the feature packages.

`root` holds the top-level group, the build and demo commands and the error reporting; each other
module here is one command group (`mlops bridge`, `deploy`/`test`, `infra`, `local`, `pipelines`,
`registry`). Only this package (and the twin itself) may import the twin, `mlops.local`.
"""

import sys

from mlops.core import gc_policy, quick_exit

# Before the command's imports (boto3, pydantic, the SageMaker SDK), so that its atexit callback runs after theirs.
quick_exit.install()
# Before the command's imports too: fewer collections over what they leave alive.
gc_policy.tune()

from mlops.cli.root import cli, main  # noqa: E402


def run() -> None:
    """The `mlops` console script and `python -m mlops.cli`: `main`, then an exit without the interpreter's
    teardown (mlops.core.quick_exit). In-process callers (tests) call `main` and exit normally."""
    code = main()
    quick_exit.arm(code)
    sys.exit(code)


__all__ = ["cli", "main", "run"]
