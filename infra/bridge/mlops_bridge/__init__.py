"""The EventBridge -> Azure DevOps bridge Lambda (deployed as the `mlops_bridge` package).

It ships as its own zip (`mlops bridge package`), so it imports nothing from the rest of the repository:
only this package, the standard library and the pins of `requirements.txt`. Entry points:
`mlops_bridge.handler.handler` (the approval event) and `mlops_bridge.reminders.handler` (the schedule).
"""
