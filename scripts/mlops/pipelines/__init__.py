"""Azure Pipelines YAML, read as Azure DevOps reads it: `loader` (YAML with file:line), `template`
and `expressions` (templates, `${{ }}` and runtime expressions), `model` (the pipeline object model),
`schema` and `validate` (`mlops pipelines validate`), `commands` (every `mlops` call parsed against the
real CLI), and the local runner: `runner`, `steps`, `tasks` (AWS Toolkit tasks), `results`."""
