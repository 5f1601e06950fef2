"""The load test's pieces that need no stack: WAF pacing, URL rules, Locust CSV parsing, the report,
and the README's quote of the recorded local result (make load-local RECORD=1 writes both)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from loadtest import run

from testkit.template import load

STATS_HEADER = (
    "Type,Name,Request Count,Failure Count,Median Response Time,Average Response Time,Min Response Time,"
    "Max Response Time,Average Content Size,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%"
)
HISTORY_HEADER = (
    "Timestamp,User Count,Type,Name,Requests/s,Failures/s,50%,66%,75%,80%,90%,95%,98%,99%,99.9%,99.99%,100%,"
    "Total Request Count,Total Failure Count,Total Median Response Time,Total Average Response Time,"
    "Total Min Response Time,Total Max Response Time,Total Average Content Size"
)


def _stats_line(kind: str, name: str, count: int, fails: int, rps: float, p50: int, p95: int, p99: int) -> str:
    return f"{kind},{name},{count},{fails},{p50},1.0,1.0,9.0,10.0,{rps},0.0,{p50},1,1,1,1,{p95},1,{p99},1,1,1"


def test_pacing_follows_the_template_rate_based_rule() -> None:
    rule = run.waf_rule()
    params = load()["Parameters"]
    assert rule.limit == params["WafRateLimit"]["Default"] == 2000
    assert rule.window_seconds == 300
    # All visitors together: 90 % of 2000 requests per 300 s, i.e. 6 requests per second.
    assert run.pace_per_user(rule, 10) * 10 == pytest.approx(6.0)
    assert run.waf_rule(50000).max_rps == pytest.approx(50000 / 300)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://redcap.example.org/", "https://redcap.example.org"),
        ("https://abc.us-east-1.awsapprunner.com/redcap/", "https://abc.us-east-1.awsapprunner.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://localhost:8080/", "http://localhost:8080"),
    ],
)
def test_url_accepted(url: str, expected: str) -> None:
    assert run.check_url(url) == expected


@pytest.mark.parametrize("url", ["http://redcap.example.org", "ftp://127.0.0.1", "redcap.example.org", "https://"])
def test_url_refused(url: str) -> None:
    with pytest.raises(SystemExit):
        run.check_url(url)


def test_stats_and_history_are_read_from_locust_csv(tmp_path: Path) -> None:
    stats = tmp_path / "locust_stats.csv"
    stats.write_text(
        "\n".join(
            [
                STATS_HEADER,
                _stats_line("GET", "(version probe)", 10, 0, 0.5, 20, 30, 40),
                _stats_line("GET", "login page", 100, 1, 5.0, 40, 90, 120),
                _stats_line("POST", "API (unknown token)", 30, 0, 1.5, 30, 60, 70),
                _stats_line("", "Aggregated", 140, 1, 7.0, 38, 85, 110),
            ]
        )
        + "\n"
    )
    rows = run.read_stats(stats)
    assert [r.name for r in rows] == ["login page", "API (unknown token)", "Total"]
    assert rows[0] == run.Row("login page", 100, 1, 5.0, 40.0, 90.0, 120.0)
    history = tmp_path / "locust_stats_history.csv"
    history.write_text(
        HISTORY_HEADER
        + "\n1000,0,,Aggregated,0.0,0.0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,0,0,0,0.0,0,0,0\n"
        + "1003,10,,Aggregated,7.5,0.5,40,1,1,1,1,90,1,120,1,1,1,20,1,40,1.0,1,9,10\n"
        + "1003,10,GET,login page,5.0,0.0,40,1,1,1,1,90,1,120,1,1,1,20,1,40,1.0,1,9,10\n"
    )
    points = run.read_history(history)
    assert points == [
        {"t": 0.0, "rps": 0.0, "fails": 0.0, "p50": 0.0, "p95": 0.0, "p99": 0.0},
        {"t": 3.0, "rps": 7.5, "fails": 0.5, "p50": 40.0, "p95": 90.0, "p99": 120.0},
    ]
    run.plot(points, tmp_path / "plot.png", "test")
    assert (tmp_path / "plot.png").read_bytes().startswith(b"\x89PNG")


def _rows(total_rps: float) -> list[run.Row]:
    return [
        run.Row("login page", 100, 0, total_rps / 2, 40, 90, 120),
        run.Row("Total", 200, 2, total_rps, 38, 85, 110),
    ]


def test_report_says_when_waf_pacing_is_what_was_measured() -> None:
    rule = run.WafRule(2000, 300)
    pace = rule.max_rps * run.WAF_HEADROOM
    at_pace = run.markdown(_rows(5.9), target="https://x", users=10, seconds=60, pace_rps=pace, rule=rule)
    assert "this run measures WAF's rate limit, not the stack's capacity" in at_pace
    assert "2000 requests per 300 s per client address" in at_pace
    below = run.markdown(_rows(2.0), target="https://x", users=10, seconds=60, pace_rps=pace, rule=rule)
    assert "WAF's rate limit, not" not in below
    assert "the rate reached is the stack's" in below
    unpaced = run.markdown(_rows(80.0), target="the local image", users=10, seconds=20, pace_rps=None, rule=None)
    assert "Unpaced" in unpaced
    table = [line for line in unpaced.splitlines() if line.startswith("| **Total**")]
    assert table == ["| **Total** | 200 | 80.0 | 38 | 85 | 110 | 2 |"]
    assert run.rows_from_markdown(unpaced)[-1] == run.Row("Total", 200, 2, 80.0, 38.0, 85.0, 110.0)


def test_readme_quotes_the_recorded_local_result() -> None:
    recorded = run.RECORDED.read_text()
    rows = run.rows_from_markdown(recorded)
    names = [r.name for r in rows]
    assert set(run.JOURNEYS) <= set(names)
    assert "Total" in names
    assert all(r.failures == 0 for r in rows), "the recorded local run had errors"
    readme = run.README.read_text()
    block = readme.split(run.README_START, 1)[1].split(run.README_END, 1)[0].strip()
    assert block == run.quote(rows)


def test_locust_journeys() -> None:
    # Read, not imported: importing locust monkey-patches the test process with gevent.
    source = run.LOCUSTFILE.read_text()
    token = re.search(r'BOGUS_API_TOKEN = "0" \* 31 \+ "B"', source)
    assert token, "the API journey's token must stay 32 hexadecimal characters that belong to nobody"
    tree = ast.parse(source)
    tasks = {
        node.name
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef)
        and any(isinstance(d, ast.Call) and getattr(d.func, "id", "") == "task" for d in node.decorator_list)
    }
    assert tasks == {"login_page", "survey_page", "static_asset", "api"}
    names = set(re.findall(r'name="([^"(][^"]*)"', source))
    assert set(run.JOURNEYS) <= names
