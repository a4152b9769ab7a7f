"""The `mlops` command line: the composition root. Thin click commands that call the feature packages.

`root` holds the top-level group, the build and demo commands and the error reporting; each other
module here is one command group (`mlops bridge`, `deploy`/`test`, `infra`, `local`, `pipelines`,
`registry`). Only this package (and the twin itself) may import the twin, `mlops.local`.
"""

from mlops.core import gc_policy

# Before the command's imports (boto3, pydantic, the SageMaker SDK): fewer collections over what they leave alive.
gc_policy.tune()

from mlops.cli.root import cli, main  # noqa: E402

__all__ = ["cli", "main"]
