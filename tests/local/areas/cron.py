"""Placeholder until the cron area lands."""

from __future__ import annotations

from local.runner import Run
from local.scenarios import Local


def scenario(local: Local, run: Run) -> None:
    run.unavailable("cron", "all steps", "not integrated yet")
