"""The CloudFormation in infra/templates: `templates` (parameters and stack specs, pure), `lint`
(cfn-lint and checkov), `deploy` (change sets), and `moto_gaps` (what moto's CloudFormation skips,
created for the twin)."""
