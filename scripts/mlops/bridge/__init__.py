"""Operations on the bridge Lambda (`mlops_bridge`, infra/bridge/mlops_bridge/): replay its dead-letter
queue through the Lambda's own code (`replay`), and build its deployment zip (`package`)."""
