"""The EventBridge -> Azure DevOps bridge Lambda (deployed as the `mlops_bridge` package)."""
