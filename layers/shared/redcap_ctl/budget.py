"""The time a custom resource may still spend before it must answer CloudFormation.

Every wait and every AWS call of the custom resources is bounded by the
Lambda's remaining time minus a reserve for the response, so a stack never
waits for CloudFormation's one-hour timeout.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from redcap_ctl.errors import ControlPlaneError


class BudgetExhausted(ControlPlaneError):
    """The Lambda's time is nearly up: answer CloudFormation now."""


class Budget:
    """Time left in this invocation, minus ``margin`` seconds kept for the response."""

    def __init__(self, remaining_ms: Callable[[], int], margin: float) -> None:
        self._remaining_ms = remaining_ms
        self._margin = margin

    def left(self) -> float:
        return self._remaining_ms() / 1000.0 - self._margin

    def sleep(self, seconds: float, waiting_for: str) -> None:
        if self.left() < seconds:
            raise BudgetExhausted(f"gave up waiting for {waiting_for}: the Lambda is about to time out")
        time.sleep(seconds)

    def check(self, step: str) -> None:
        """Refuse to start ``step`` when it could not finish before the response is due."""
        if self.left() < 0:
            raise BudgetExhausted(f"not enough time left to {step}; stopped before it (run the update again)")
