"""Per-stage model deployment (plan/apply) and the endpoint test suites."""
