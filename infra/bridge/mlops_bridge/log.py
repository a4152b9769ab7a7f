"""The bridge's structured logger (Powertools, JSON lines), correlated by the event id."""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "mlops-bridge")
