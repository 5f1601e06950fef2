"""docs/performance.md quotes `make bench-image`'s last results (tests/bench/image-results.md) as they
are, with the trixie figures beside the recorded bookworm ones (issue 18 item 1)."""

from __future__ import annotations

from bench.image import BOOKWORM, RESULTS

from testkit import ROOT


def test_performance_page_quotes_the_image_results_verbatim() -> None:
    # The image table; the database connection section after it is quoted by its own block
    # (tests/unit/test_connection_bench.py).
    results = RESULTS.read_text().split("\n## Database connections")[0].strip()
    assert results in (ROOT / "docs" / "performance.md").read_text()


def test_every_row_has_a_trixie_figure_and_the_recorded_bookworm_one() -> None:
    lines = RESULTS.read_text().splitlines()
    header = "| Measure | Debian 13 trixie, PHP 8.4 (now) | Debian 12 bookworm, PHP 8.2 (recorded) |"
    assert header in lines
    rows = [line.split(" | ") for line in lines[lines.index(header) + 2 :] if line.startswith("| ")]
    by_name = {cells[0].lstrip("| "): cells for cells in rows if cells[0].lstrip("| ") in BOOKWORM}
    assert set(by_name) == set(BOOKWORM)
    for name, cells in by_name.items():
        assert cells[2].rstrip(" |") == BOOKWORM[name]
        assert cells[1].strip()
    # The two columns the issue asks for: size and start-to-healthy.
    assert by_name["Image size (stand-in release, uncompressed)"][1].endswith("MB")
    assert by_name["Start to healthy (health check answers 200)"][1].endswith(" s")
