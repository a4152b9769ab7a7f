"""The strict twin's request validation: every AWS request checked against botocore's model.

`patterns` (Java patterns for Python), `requests` (shape + parameters -> violations, pure),
`decode` (an HTTP request -> operation and parameters, through moto's model-driven parser),
`refusal` (AWS's error shapes per protocol) and `gate` (the hook the shim calls).
"""
