"""docs/performance.md's database-connection claims, tied to the recorded benchmark
(tests/bench/image-results.md, written by make bench-image) and to the capacity math."""

from __future__ import annotations

import re

from bench import connections
from bench.image import RESULTS


def _section() -> str:
    text = RESULTS.read_text()
    assert "\n## Database connections" in text, "make bench-image has not recorded the connection figures"
    return "## Database connections" + text.split("\n## Database connections", 1)[1].rstrip()


def _row(label_start: str) -> list[str]:
    for line in _section().splitlines():
        if line.startswith(f"| {label_start}"):
            return [c.strip() for c in line.strip().strip("|").split("|")]
    raise AssertionError(f"no row starting {label_start!r}")


def _number(cell: str) -> float:
    match = re.match(r"[\d,.]+", cell)
    assert match, cell
    return float(match.group(0).replace(",", ""))


def test_docs_show_the_recorded_figures() -> None:
    docs = connections.DOCS.read_text()
    block = docs.split(connections.DOCS_START, 1)[1].split(connections.DOCS_END, 1)[0].strip()
    assert block == connections.docs_block(_section())


def test_docs_claims_follow_from_the_figures() -> None:
    token_us = _number(_row("IAM token")[1])
    connect_ms = _number(_row("TLS connect")[1])
    # "Signing a token takes tens of microseconds; the TLS connection takes milliseconds."
    assert token_us < 100
    assert connect_ms >= 1
    per_cpu = {label: _number(_row(label)[2]) for label in ("Stand-in", "IAM path", "Token reused", "Persistent")}
    # "with a persistent connection the same page serves several times more requests per CPU-second"
    assert per_cpu["Persistent"] >= 2 * per_cpu["IAM path"]
    # "Reusing the token costs nothing measurable in CPU": within run-to-run noise of the fresh token.
    assert per_cpu["Token reused"] >= 0.8 * per_cpu["IAM path"]
    for label in ("Stand-in", "IAM path", "Token reused", "Persistent", "Health check"):
        assert _row(label)[4] == "0", f"{label}: errors in the recorded run"


def test_capacity_table_is_the_math_on_the_measured_page() -> None:
    per_vcpu = _number(_row("Stand-in")[2])
    assert connections.capacity_table(per_vcpu) in _section()
    # The template's default Cpu (2 vCPU) at its default MaxSize (10) reaches the ceiling.
    assert 2 * 10 * per_vcpu >= connections.IAM_CEILING


def test_capacity_table_marks_the_ceiling() -> None:
    table = connections.capacity_table(100.0).splitlines()
    assert table[0] == "| vCPU per task | 1 task | 2 tasks | 5 tasks | 10 tasks | 25 tasks |"
    assert table[2] == "| 0.25 | 25 | 50 | 125 | **250** | **625** |"
    assert table[4] == "| 1 | 100 | **200** | **500** | **1,000** | **2,500** |"
