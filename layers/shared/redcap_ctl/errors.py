"""Errors with messages that are safe to show to CloudFormation and in logs."""

from __future__ import annotations


class ControlPlaneError(Exception):
    """Base class: the message is safe to log and to return to CloudFormation."""


class InputError(ControlPlaneError, ValueError):
    """A property or environment variable is missing or malformed.

    The message always names the field, never echoes a secret value.
    """

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}")
