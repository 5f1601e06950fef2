"""Powertools Logger and Metrics shared by every function.

Service name, log level and metrics namespace come from the template's
environment (``POWERTOOLS_SERVICE_NAME``, ``POWERTOOLS_LOG_LEVEL``,
``POWERTOOLS_METRICS_NAMESPACE``), not from code. Library modules log through
``Logger(child=True)`` so their records carry the same service keys.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()
