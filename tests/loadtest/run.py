"""``make load URL=https://... [USERS=10] [MINUTES=5]`` and ``make load-local``: REDCap under load.

Runs Locust headless with the journeys of ``loadtest/locustfile.py`` and writes, into ``--out``:
``results.md`` (requests per second, p50/p95/p99 latency and errors per journey, as a table),
``results.png`` (requests per second and latency over time) and Locust's CSV files.

WAF: the stack's web ACL blocks a client address that sends more than ``WafRateLimit`` requests in
the rule's evaluation window (template.yaml, rule RateLimitPerIp; 2000 per 300 s by default). A
load test from one machine is one address, so against a live stack the visitors together are
paced at 90 % of that rate, and the report says so when the rate reached is the pacing rather than
the stack. ``--waf-limit`` gives the stack's own value; ``--no-waf-pacing`` is for a client whose
address the web ACL does not rate-limit.

``--local`` builds the image from the stand-in release (tests/testkit), starts the test MariaDB
(TLS) and one container on 127.0.0.1, and runs against it unpaced (no WAF there). ``--record``
then keeps the result in ``tests/loadtest/local-results.md`` and the README's quote of it.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import ipaddress
import os
import secrets
import subprocess
import sys
import tempfile
import urllib.parse
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = Path(__file__).with_name("locustfile.py")
RECORDED = Path(__file__).with_name("local-results.md")
README = ROOT / "README.md"
README_START = "<!-- load-local:start (make load-local RECORD=1 rewrites this block) -->"
README_END = "<!-- load-local:end -->"
# The share of WAF's rate a paced run uses: headroom for the visitor's own browsing and for
# WAF's approximate counting.
WAF_HEADROOM = 0.9
JOURNEYS = ("login page", "survey page", "static asset", "API (unknown token)")


@dataclass(frozen=True)
class WafRule:
    limit: int
    window_seconds: int

    @property
    def max_rps(self) -> float:
        return self.limit / self.window_seconds


def waf_rule(limit: int | None = None) -> WafRule:
    """The rate-based rule of the template's web ACL; ``limit`` overrides WafRateLimit's default."""
    from testkit.template import defaults, load

    template = load()
    for resource in template["Resources"].values():
        if resource.get("Type") != "AWS::WAFv2::WebACL":
            continue
        for rule in resource["Properties"]["Rules"]:
            statement = rule.get("Statement", {}).get("RateBasedStatement") if isinstance(rule, dict) else None
            if statement and statement.get("Limit") == {"Ref": "WafRateLimit"}:
                default = int(defaults()["WafRateLimit"])
                return WafRule(limit if limit is not None else default, int(statement.get("EvaluationWindowSec", 300)))
    raise LookupError("template.yaml: no rate-based rule on WafRateLimit in the web ACL")


def pace_per_user(rule: WafRule, users: int) -> float:
    """Requests per second per visitor so that all visitors together stay below WAF's rate."""
    return rule.max_rps * WAF_HEADROOM / users


def check_url(url: str) -> str:
    """https for a live stack; plain http only on loopback (the local image)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SystemExit(f"URL={url!r}: give the stack's address, e.g. URL=https://redcap.example.org")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise SystemExit(f"URL={url!r}: a live stack is served over https; plain http is for 127.0.0.1 only")
    return f"{parts.scheme}://{parts.netloc}"


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@dataclass(frozen=True)
class Row:
    name: str
    requests: int
    failures: int
    rps: float
    p50: float
    p95: float
    p99: float


def read_stats(path: Path) -> list[Row]:
    rows: list[Row] = []
    with path.open(newline="") as f:
        for r in csv.DictReader(f):
            if r["Name"] == "(version probe)":
                continue
            rows.append(
                Row(
                    name="Total" if r["Name"] == "Aggregated" else r["Name"],
                    requests=int(r["Request Count"]),
                    failures=int(r["Failure Count"]),
                    rps=float(r["Requests/s"]),
                    p50=float(r["50%"] or 0),
                    p95=float(r["95%"] or 0),
                    p99=float(r["99%"] or 0),
                )
            )
    return rows


def read_history(path: Path) -> list[dict[str, float]]:
    """Locust's per-second aggregate history: seconds since start, rps, failures/s, p50, p95, p99."""
    points: list[dict[str, float]] = []
    with path.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["Name"] == "Aggregated"]
    if not rows:
        return points
    start = int(rows[0]["Timestamp"])
    for r in rows:
        points.append(
            {
                "t": float(int(r["Timestamp"]) - start),
                "rps": float(r["Requests/s"] or 0),
                "fails": float(r["Failures/s"] or 0),
                "p50": float(r["50%"] or 0) if r["50%"] != "N/A" else 0.0,
                "p95": float(r["95%"] or 0) if r["95%"] != "N/A" else 0.0,
                "p99": float(r["99%"] or 0) if r["99%"] != "N/A" else 0.0,
            }
        )
    return points


def markdown(
    rows: list[Row], *, target: str, users: int, seconds: float, pace_rps: float | None, rule: WafRule | None
) -> str:
    total = next(r for r in rows if r.name == "Total")
    lines = [
        f"Load test of {target}: {users} visitors for {seconds:g} s (Locust, `loadtest/locustfile.py`).",
        "",
    ]
    if pace_rps is not None and rule is not None:
        limited = total.rps >= 0.9 * pace_rps
        lines += [
            f"Paced to {pace_rps:.2f} requests/s in all: {WAF_HEADROOM:.0%} of WAF's rate limit "
            f"({rule.limit} requests per {rule.window_seconds} s per client address)."
            + (
                " **The rate reached is that pacing: this run measures WAF's rate limit, not the stack's capacity.**"
                if limited
                else " The stack answered below the pacing: the rate reached is the stack's."
            ),
            "",
        ]
    else:
        lines += ["Unpaced (no WAF in front, or an address its rate limit exempts): visitors send back to back.", ""]
    lines += [
        "Total also counts each visitor's one version probe (the redirect that finds the version folder).",
        "",
        "| Journey | Requests | Requests/s | p50 ms | p95 ms | p99 ms | Errors |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    order = {name: i for i, name in enumerate((*JOURNEYS, "Total"))}
    for r in sorted(rows, key=lambda r: order.get(r.name, len(order))):
        name = f"**{r.name}**" if r.name == "Total" else r.name
        lines.append(
            f"| {name} | {r.requests} | {r.rps:.1f} | {r.p50:.0f} | {r.p95:.0f} | {r.p99:.0f} | {r.failures} |"
        )
    return "\n".join(lines) + "\n"


def quote(rows: list[Row]) -> str:
    """The README's one-line quote of a recorded local result."""
    total = next(r for r in rows if r.name == "Total")
    return (
        f"Local image (stand-in release, MariaDB over TLS, one container and one Locust process on one 2-core"
        f" machine): "
        f"{total.rps:.0f} requests/s, p50 {total.p50:.0f} ms, p95 {total.p95:.0f} ms, p99 {total.p99:.0f} ms, "
        f"{total.failures} errors in {total.requests} requests."
    )


def rows_from_markdown(text: str) -> list[Row]:
    rows: list[Row] = []
    for line in text.splitlines():
        cells = [c.strip().strip("*") for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[1].isdigit():
            rows.append(Row(cells[0], int(cells[1]), int(cells[6]), float(cells[2]), *map(float, cells[3:6])))
    return rows


def plot(points: list[dict[str, float]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 6), sharex=True)
    t = [p["t"] for p in points]
    top.plot(t, [p["rps"] for p in points], label="requests/s")
    top.plot(t, [p["fails"] for p in points], label="errors/s", color="tab:red")
    top.set_ylabel("per second")
    top.legend(loc="upper left")
    top.set_title(title)
    for key in ("p50", "p95", "p99"):
        bottom.plot(t, [p[key] for p in points], label=key)
    bottom.set_ylabel("latency (ms)")
    bottom.set_xlabel("seconds since start")
    bottom.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def run_locust(host: str, users: int, seconds: float, out: Path, pace: float | None, survey: str | None) -> None:
    env = dict(os.environ)
    env["LOAD_RPS_PER_USER"] = f"{pace:.6f}" if pace else ""
    env["LOAD_SURVEY_HASH"] = survey or ""
    spawn_rate = max(1, users // 2)
    cmd = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", host,
        "--users", str(users), "--spawn-rate", str(spawn_rate), "--run-time", f"{max(1, round(seconds))}s",
        "--csv", str(out / "locust"), "--csv-full-history", "--only-summary", "--exit-code-on-error", "0",
        "--stop-timeout", "5",
    ]  # fmt: skip
    done = subprocess.run(  # noqa: S603 -- this interpreter's locust, fixed argv, no shell
        cmd, env=env, capture_output=True, text=True, timeout=seconds + 120, check=False
    )
    (out / "locust.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"locust failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


@contextmanager
def local_stack(work: Path) -> Iterator[str]:
    """The image from the stand-in release, MariaDB with TLS, one container: its base URL."""
    from testkit.image_harness import (
        MariaDB,
        Pki,
        RedcapContainer,
        build_mariadb_image,
        build_standin_image,
        contract_env,
    )

    pki = Pki.create(work / "pki")
    info = build_standin_image(work, pki)
    build_mariadb_image()
    db = MariaDB(pki).start()
    try:
        suffix = uuid.uuid4().hex[:8]
        name, user, password = f"load_{suffix}", f"load_{suffix}", secrets.token_urlsafe(16)
        db.create_schema_and_user(name, user, password)
        env = contract_env(
            db_name=name, db_user=user, db_password=password, db_port=db.port,
            smtp_port=None, smtp_credentials=None, admin_password=secrets.token_urlsafe(16),
        )  # fmt: skip
        container = RedcapContainer(info["IMAGE"], env, work)
        container.start()
        try:
            container.wait_for("/healthz", 200, timeout=120, need='"ready":true')
            yield container.base
        finally:
            container.remove()
    finally:
        db.stop()


def _write_record(report: str, rows: list[Row]) -> None:
    RECORDED.write_text(report)
    text = README.read_text()
    start, end = text.index(README_START), text.index(README_END)
    README.write_text(text[: start + len(README_START)] + "\n" + quote(rows) + "\n" + text[end:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--url", help="the stack's address, e.g. https://redcap.example.org")
    target.add_argument("--local", action="store_true", help="the local image on 127.0.0.1 (stand-in release)")
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--minutes", type=float, default=None)
    parser.add_argument("--seconds", type=float, default=None, help="duration in seconds (instead of --minutes)")
    parser.add_argument("--survey", default=None, help="the hash (s=...) of a public test survey")
    parser.add_argument("--waf-limit", type=int, default=None, help="the stack's WafRateLimit (default: template's)")
    parser.add_argument("--no-waf-pacing", action="store_true", help="this client's address is not rate-limited")
    parser.add_argument("--out", type=Path, default=None, help="where to write (default .cache/load/<time>)")
    parser.add_argument("--record", action="store_true", help="--local only: keep the result and the README quote")
    args = parser.parse_args(argv)
    if args.users < 1:
        parser.error("--users must be at least 1")
    if args.record and not args.local:
        parser.error("--record is for --local runs")
    seconds = args.seconds if args.seconds is not None else 60 * (args.minutes if args.minutes is not None else 5)
    out: Path = args.out or ROOT / ".cache" / "load" / dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    out.mkdir(parents=True, exist_ok=True)

    rule: WafRule | None = None
    pace: float | None = None
    machine = ""
    if args.local:
        with tempfile.TemporaryDirectory() as tmp, local_stack(Path(tmp)) as host:
            # Load test, container and database share this machine: say how busy it was.
            load_before = os.getloadavg()[0]
            run_locust(host, args.users, seconds, out, None, args.survey)
        machine = (
            f"Run {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {os.cpu_count()} CPUs shared by Locust, the"
            f" container and MariaDB; load average {load_before:.1f} at the start.\n\n"
        )
        label = "the local image"
    else:
        host = check_url(args.url)
        if not args.no_waf_pacing:
            rule = waf_rule(args.waf_limit)
            pace = rule.max_rps * WAF_HEADROOM
        run_locust(host, args.users, seconds, out, pace / args.users if pace else None, args.survey)
        label = host

    rows = read_stats(out / "locust_stats.csv")
    report = markdown(rows, target=label, users=args.users, seconds=seconds, pace_rps=pace, rule=rule)
    report = report.replace("\n\n", "\n\n" + machine, 1) if machine else report
    points = read_history(out / "locust_stats_history.csv")
    if points:
        plot(points, out / "results.png", f"REDCap load test: {label}")
    report += "\n![Requests per second and latency over time](results.png)\n" if points else ""
    (out / "results.md").write_text(report)
    print(report)
    print(f"Written to {out}/results.md and results.png")
    total = next(r for r in rows if r.name == "Total")
    if args.local:
        # The local image must serve every journey without an error: CI fails otherwise.
        served = {r.name for r in rows if r.requests > 0}
        missing = [j for j in JOURNEYS if j not in served]
        if total.failures or missing:
            print(f"FAILED: {total.failures} errors; journeys never run: {missing}", file=sys.stderr)
            return 1
        if args.record:
            _write_record(report.split("\n![")[0].rstrip() + "\n", rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
