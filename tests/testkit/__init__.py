"""Test support shared by every suite: events, handlers, Lambda context, CFN responses."""

from __future__ import annotations

import importlib.util
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
EVENTS = ROOT / "events"
FUNCTIONS = ROOT / "functions"
TEMPLATE = ROOT / "template.yaml"


def load_event(*parts: str) -> dict[str, Any]:
    """Load ``events/<parts>`` (the same files ``sam local invoke -e`` uses)."""
    path = EVENTS.joinpath(*parts)
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def load_handler(function: str, module: str = "app") -> ModuleType:
    """Import ``functions/<function>/<module>.py`` under a unique module name.

    Every function has an ``app.py``; importing them as plain ``app`` would make
    them collide. A fresh import also re-runs module-level setup (clients,
    configuration), as a Lambda cold start does.
    """
    path = FUNCTIONS / function / f"{module}.py"
    name = f"fn_{function}_{module}"
    sys.modules.pop(name, None)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None, path
    assert spec.loader is not None, path
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


@dataclass
class LambdaContext:
    """Enough of the Lambda context object for Powertools and crhelper."""

    function_name: str = "test-function"
    memory_limit_in_mb: int = 128
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    log_group_name: str = "/aws/lambda/test-function"
    log_stream_name: str = "2026/11/27/[$LATEST]0000"
    remaining_ms: int = 300_000
    extra: dict[str, Any] = field(default_factory=dict)

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms
