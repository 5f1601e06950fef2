"""make load against a stand-in stack on 127.0.0.1: the journeys run, and a paced run stays below
WAF's rate (plus each visitor's start) and says that the rate limit is what it measured."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from loadtest import run

ROOT = Path(__file__).resolve().parents[2]


class _Stack(BaseHTTPRequestHandler):
    """Answers the journeys as the image does: the version redirect, pages, the asset, 403 on the API."""

    protocol_version = "HTTP/1.1"
    hits: ClassVar[list[str]] = []
    lock: ClassVar[threading.Lock] = threading.Lock()

    def _answer(self, status: int, headers: dict[str, str] | None = None) -> None:
        with self.lock:
            self.hits.append(f"{self.command} {self.path}")
        body = b"ok"
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.startswith("/redcap_v0.0.0/"):
            self._answer(302, {"Location": "https://127.0.0.1/redcap_v15.5.1/Resources/css/style.css"})
        elif self.path in ("/", "/redcap_v15.5.1/Resources/css/style.css") or self.path.startswith("/surveys/"):
            self._answer(200)
        else:
            self._answer(404)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(length)
        self._answer(403 if self.path == "/api/" else 404)

    def log_message(self, *_args: Any) -> None:
        return


@pytest.fixture
def stack() -> Iterator[str]:
    _Stack.hits.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Stack)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_paced_run_stays_below_the_waf_rate_and_says_so(stack: str, tmp_path: Path) -> None:
    users, seconds, limit = 3, 8, 300  # 300 per 300 s: 0.9 requests/s in all at 90 %
    assert run.main(["--url", stack, "--users", str(users), "--seconds", str(seconds), "--waf-limit", str(limit),
                     "--out", str(tmp_path)]) == 0  # fmt: skip
    journeys = [h for h in _Stack.hits if not h.startswith("GET /redcap_v0.0.0/")]
    # Every visitor starts at once (one request each), then keeps to its share of the pace.
    assert len(journeys) <= 0.9 * seconds + users + 1
    assert len(_Stack.hits) - len(journeys) == users  # one version probe per visitor
    report = (tmp_path / "results.md").read_text()
    assert "this run measures WAF's rate limit, not the stack's capacity" in report
    assert (tmp_path / "results.png").read_bytes().startswith(b"\x89PNG")


def test_unpaced_run_serves_every_journey(stack: str, tmp_path: Path) -> None:
    assert run.main(["--url", stack, "--users", "2", "--seconds", "3", "--no-waf-pacing", "--out", str(tmp_path)]) == 0
    rows = {r.name: r for r in run.read_stats(tmp_path / "locust_stats.csv")}
    for journey in run.JOURNEYS:
        assert rows[journey].requests > 0, journey
        assert rows[journey].failures == 0, journey
    assert any(h.startswith("POST /api/") for h in _Stack.hits)
    assert any(h == "GET /redcap_v15.5.1/Resources/css/style.css" for h in _Stack.hits)
    assert "Unpaced" in (tmp_path / "results.md").read_text()


def test_make_load_needs_a_url() -> None:
    done = subprocess.run(
        ["make", "-n", "load"],  # noqa: S607
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0
    assert "make load needs URL=https://" in done.stderr
