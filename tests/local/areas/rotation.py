"""Placeholder until the rotation area lands."""

from __future__ import annotations

from local.runner import Run
from local.scenarios import Local


def scenario(local: Local, run: Run) -> None:
    run.unavailable("rotation", "all steps", "not integrated yet")
