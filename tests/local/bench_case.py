"""What the benchmarks need from an area: a function, its environment and a first event."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class BenchCase:
    name: str  # row label in the benchmark table
    logical_id: str  # the function in template.yaml
    function: str  # functions/<function>/
    env: dict[str, str]
    event: dict[str, Any]
    cfn_response: bool = False  # crhelper custom resource: the parent captures its response
    # Called before every run to set the emulators up and return that run's event
    # (a rotation step needs a fresh AWSPENDING version each time); None: ``event`` as is.
    prepare: Callable[[], dict[str, Any]] | None = None
    notes: dict[str, str] = field(default_factory=dict)
