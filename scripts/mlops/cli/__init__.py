"""The `mlops` command line: the composition root. Thin click commands that call the feature packages.

`root` holds the top-level group, the build and demo commands and the error reporting; each other
module here is one command group (`mlops bridge`, `deploy`/`test`, `infra`, `local`, `pipelines`,
`registry`). Only this package (and the twin itself) may import the twin, `mlops.local`.
"""

from mlops.cli.root import cli, main

__all__ = ["cli", "main"]
