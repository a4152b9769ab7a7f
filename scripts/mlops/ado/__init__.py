"""`mlops ado plan|apply`: the Azure DevOps project as code (pipelines, environments and checks, AWS
service connections, pipeline permissions, the variable group, the bridge's right to queue runs).

`desired` renders what `mlops.yaml` asks for (pure), `plan` compares it with what the project holds
(pure), `project` reads and writes the project through the azure-devops SDK's clients.
"""
