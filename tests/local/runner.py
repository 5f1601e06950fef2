"""Run steps, time them, collect outcomes, print the table, invoke handlers as Lambda would."""

from __future__ import annotations

import io
import json
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

from local.env import FAULTS, patched_environ
from redcap_ctl import clients
from testkit import FUNCTIONS, LambdaContext, load_handler
from testkit.cfn import ResponseCapture

PASS = "ok"
FAIL = "FAILED"
MISSING = "FAILED (not available)"


class StepFailed(Exception):
    """A step's check did not hold; the message says what was expected and seen."""


@dataclass
class Result:
    resource: str
    step: str
    outcome: str
    seconds: float
    detail: str = ""

    @property
    def failed(self) -> bool:
        return self.outcome != PASS


class _Router(io.TextIOBase):
    """sys.stdout/sys.stderr stand-in that sends writes to the current capture.

    Powertools' Logger binds ``sys.stdout`` once, when the shared observability
    module is first imported, and Metrics prints its EMF blob at flush: a plain
    ``redirect_stdout`` per invocation would miss the former. Routing at the
    stream keeps handler output out of the results table and lets a failing step
    show its own log tail.
    """

    def __init__(self, real: TextIO) -> None:
        self.real = real
        self.local = threading.local()

    def write(self, text: str) -> int:
        target = getattr(self.local, "buffer", None)
        if target is None:
            return self.real.write(text)
        target.write(text)
        return len(text)

    def flush(self) -> None:
        self.real.flush()


_stdout_router: _Router | None = None
_stderr_router: _Router | None = None


def install_routers() -> None:
    global _stdout_router, _stderr_router
    if _stdout_router is None:
        _stdout_router = _Router(sys.stdout)
        _stderr_router = _Router(sys.stderr)
        sys.stdout = _stdout_router
        sys.stderr = _stderr_router


def uninstall_routers() -> None:
    global _stdout_router, _stderr_router
    if _stdout_router is not None and _stderr_router is not None:
        sys.stdout = _stdout_router.real
        sys.stderr = _stderr_router.real
        _stdout_router = _stderr_router = None


@contextmanager
def captured_output() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    routers = [r for r in (_stdout_router, _stderr_router) if r is not None]
    for router in routers:
        router.local.buffer = buffer
    try:
        yield buffer
    finally:
        for router in routers:
            router.local.buffer = None


@dataclass
class Invocation:
    result: Any
    output: str
    module: ModuleType
    metrics: dict[str, float] = field(default_factory=dict)


def emitted_metrics(output: str) -> dict[str, float]:
    """Metric name -> summed value, from the EMF lines Powertools printed."""
    found: dict[str, float] = {}
    for line in output.splitlines():
        line = line.strip()
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        try:
            blob = json.loads(line)
        except ValueError:
            continue
        for directive in blob.get("_aws", {}).get("CloudWatchMetrics", []):
            for metric in directive.get("Metrics", []):
                name = metric["Name"]
                value = blob.get(name)
                values = value if isinstance(value, list) else [value]
                found[name] = found.get(name, 0.0) + sum(float(v) for v in values if v is not None)
    return found


def invoke(
    function: str,
    event: Mapping[str, Any],
    env: Mapping[str, str],
    *,
    context: LambdaContext | None = None,
    warm: ModuleType | None = None,
) -> Invocation:
    """Cold-start ``functions/<function>/app.py`` with ``env`` and serve one event.

    As Lambda does: the environment is set before the module is imported (so
    module-level configuration and clients see it), the cached clients are
    forgotten, and the handler gets a context with a deadline.
    """
    if not (FUNCTIONS / function / "app.py").is_file():
        raise StepFailed(f"functions/{function}/app.py does not exist")
    ctx = context or LambdaContext(function_name=function)
    with patched_environ(env), captured_output() as out:
        if warm is None:
            clients.reset()
        try:
            with FAULTS.arm():
                module = warm or load_handler(function)
                result = module.handler(dict(event), ctx)
        except BaseException as exc:
            exc.add_note(_tail(out.getvalue()))
            raise
    text = out.getvalue()
    return Invocation(result=result, output=text, module=module, metrics=emitted_metrics(text))


def _tail(text: str, lines: int = 15) -> str:
    kept = text.strip().splitlines()[-lines:]
    return "handler output (last lines):\n  " + "\n  ".join(kept) if kept else "handler printed nothing"


class Run:
    def __init__(self, out: TextIO | None = None, verbose: bool = False) -> None:
        self.results: list[Result] = []
        self.out = out or sys.stdout
        self.verbose = verbose
        self.failures: list[tuple[Result, str]] = []

    def step(self, resource: str, step: str, action: Callable[[], str | None]) -> bool:
        start = time.perf_counter()
        try:
            detail = action() or ""
        except KeyboardInterrupt:
            raise
        except BaseException as exc:
            seconds = time.perf_counter() - start
            summary = f"{type(exc).__name__}: {exc}".splitlines()[0][:160]
            result = Result(resource, step, FAIL, seconds, summary)
            self.failures.append((result, "".join(traceback.format_exception(exc))))
            self._record(result)
            return False
        self._record(Result(resource, step, PASS, time.perf_counter() - start, detail))
        return True

    def unavailable(self, resource: str, step: str, missing: str) -> None:
        result = Result(resource, step, MISSING, 0.0, missing)
        self.failures.append((result, missing))
        self._record(result)

    def _record(self, result: Result) -> None:
        self.results.append(result)
        if self.verbose:
            print(f"  {result.outcome:<6} {result.resource} / {result.step} ({result.seconds:.2f}s)", file=self.out)

    @property
    def failed(self) -> list[Result]:
        return [r for r in self.results if r.failed]

    def table(self) -> str:
        rows = [("Resource", "Step", "Outcome", "Time", "Detail")]
        rows += [(r.resource, r.step, r.outcome, f"{r.seconds:.2f}s", r.detail) for r in self.results]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        lines = []
        for n, row in enumerate(rows):
            cells = [row[i].ljust(widths[i]) for i in range(4)]
            lines.append("  ".join([*cells, row[4]]).rstrip())
            if n == 0:
                lines.append("  ".join("-" * w for w in [*widths, 6]))
        return "\n".join(lines)


def cfn_success(capture: ResponseCapture) -> dict[str, Any]:
    """The last answer a custom resource sent CloudFormation; a step fails unless it is SUCCESS."""
    answer = capture.last
    if answer["Status"] != "SUCCESS":
        raise StepFailed(f"CloudFormation was told {answer['Status']}: {answer.get('Reason', '')}")
    return answer


def exists(*paths: str) -> str | None:
    """None if every path exists under the repository, else what is missing."""
    root = FUNCTIONS.parent
    missing = [p for p in paths if not (root / p).exists()]
    return ", ".join(missing) + " not in the repository yet" if missing else None


def repo_path(*parts: str) -> Path:
    return FUNCTIONS.parent.joinpath(*parts)
