"""``make bench-image``: the REDCap image's size, start-to-healthy time, first-install time
and one request's latency through Apache and PHP, measured here with podman on loopback.

The image is built from the stand-in release (the real REDCap is larger and its installer
runs far more SQL: treat the install figure as the image's own overhead, not REDCap's).
Figures are medians over ``--runs`` containers; latency is over ``--requests`` sequential
requests. The Markdown table goes to stdout and to tests/bench/image-results.md, beside the
figures recorded for the Debian 12 (bookworm, PHP 8.2) image before the move to trixie (issue 18),
which are kept as they were measured and never re-measured, followed by the database connection
figures (tests/bench/connections.py: the token, the TLS connect, and requests per second per vCPU
with a connection per request and with the reuse that is safe). ``--connections-only`` re-measures
only the latter and keeps the first table.
"""

from __future__ import annotations

import argparse
import io
import secrets
import statistics
import subprocess
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

from bench import connections
from testkit import ROOT
from testkit.image_harness import (
    MARIADB_BASE_IMAGE,
    MariaDB,
    Pki,
    RedcapContainer,
    build_mariadb_image,
    build_standin_image,
    contract_env,
    ensure_base_image,
    free_port,
    podman,
    podman_env,
)
from testkit.redcap_release import write_release_zip

RESULTS = Path(__file__).with_name("image-results.md")

# The bookworm image's figures as `make bench-image` recorded them (5 containers, 200 requests;
# podman version 4.3.1), in the same row order as the table below.
BOOKWORM = {
    "Image size (stand-in release, uncompressed)": "497 MB",
    "Build from a warm layer cache": "3.7 s",
    "Start to healthy (health check answers 200)": "0.43 s",
    "Start to ready, empty schema (first install + seeding)": "0.63 s",
    "Start to ready, installed schema (later boot)": "0.43 s",
    "Health check latency, median / p95": "1.0 / 1.3 ms",
    "REDCap page with one DB query (TLS), median / p95": "5.5 / 7.5 ms",
}


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def _fresh_env(db: MariaDB) -> dict[str, str]:
    suffix = uuid.uuid4().hex[:8]
    name, user, password = f"bench_{suffix}", f"bench_{suffix}", secrets.token_urlsafe(16)
    db.create_schema_and_user(name, user, password)
    return contract_env(
        db_name=name,
        db_user=user,
        db_password=password,
        db_port=db.port,
        smtp_port=None,
        smtp_credentials=None,
        admin_password=secrets.token_urlsafe(16),
    )


def _build_from_ref(ref: str, work: Path, pki: Pki) -> str:
    """The image as commit ``ref`` built it (its containers/ folder, on the bookworm base)."""
    tree = work / "ref"
    archive = subprocess.run(["git", "archive", ref, "containers"], cwd=ROOT, capture_output=True, check=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(tree, filter="data")
    ensure_base_image(MARIADB_BASE_IMAGE)
    tag = "localhost/redcap-bench-ref:latest"
    cmd = [str(tree / "containers/redcap/build.sh"), "--zip", str(write_release_zip(work)), "--ca-bundle", str(pki.ca)]
    cmd += ["--base-image", MARIADB_BASE_IMAGE, "--tag", tag]
    subprocess.run(cmd, capture_output=True, check=True, env=podman_env(), timeout=1200)
    return tag


def _same_load(images: dict[str, str], db: MariaDB, work: Path, runs: int) -> dict[str, tuple[float, float]]:
    """Start-to-healthy and start-to-ready (first install) per image, runs interleaved so that other load on
    the machine hits both images alike."""
    healthy: dict[str, list[float]] = {label: [] for label in images}
    ready: dict[str, list[float]] = {label: [] for label in images}
    for _ in range(runs):
        for label, image in images.items():
            c = RedcapContainer(image, _fresh_env(db), work)
            t0 = time.monotonic()
            c.start()
            try:
                c.wait_for("/healthz", 200, timeout=60)
                healthy[label].append(time.monotonic() - t0)
                c.wait_for("/healthz", 200, timeout=120, need='"ready":true')
                ready[label].append(time.monotonic() - t0)
            finally:
                c.remove()
    return {label: (statistics.median(healthy[label]), statistics.median(ready[label])) for label in images}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--cpus", type=float, default=1.0, help="podman --cpus for the throughput runs")
    parser.add_argument("--seconds", type=float, default=8.0, help="seconds per throughput run")
    parser.add_argument("--concurrency", type=int, default=8, help="keep-alive clients per throughput run")
    parser.add_argument("--connections-only", action="store_true", help="keep the image table, re-measure connections")
    parser.add_argument(
        "--against",
        default="34ef546",
        help="git ref whose containers/ built the bookworm image: measured again, interleaved, under the same load",
    )
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pki = Pki.create(work / "pki")
        started = time.monotonic()
        info = build_standin_image(work, pki)
        build_seconds = time.monotonic() - started
        build_mariadb_image()
        size_mb = int(podman("image", "inspect", "-f", "{{.Size}}", info["IMAGE"]).strip()) / 1e6
        reference = _build_from_ref(args.against, work, pki) if args.against else None
        db = MariaDB(pki).start()
        if args.connections_only:
            try:
                section = _connections(args, db, info["IMAGE"], work)
            finally:
                db.stop()
            kept = RESULTS.read_text().split("\n## Database connections")[0].rstrip()
            RESULTS.write_text(kept + "\n\n" + section + "\n")
            connections.write_docs(section)
            print(section)
            return
        healthy: list[float] = []
        first_install: list[float] = []
        later_boot: list[float] = []
        health_ms: list[float] = []
        page_ms: list[float] = []
        try:
            for _ in range(args.runs):
                env = _fresh_env(db)
                c = RedcapContainer(info["IMAGE"], env, work)
                t0 = time.monotonic()
                c.start()
                try:
                    c.wait_for("/healthz", 200, timeout=60)
                    healthy.append(time.monotonic() - t0)
                    c.wait_for("/healthz", 200, timeout=120, need='"ready":true')
                    first_install.append(time.monotonic() - t0)
                finally:
                    c.remove()
                again = RedcapContainer(info["IMAGE"], {**env, "LISTEN_PORT": str(free_port())}, work)
                t0 = time.monotonic()
                again.start()
                try:
                    again.wait_for("/healthz", 200, timeout=120, need='"ready":true')
                    later_boot.append(time.monotonic() - t0)
                    if not health_ms:
                        for _ in range(args.requests):
                            t0 = time.perf_counter()
                            assert again.get("/healthz")[0] == 200
                            health_ms.append((time.perf_counter() - t0) * 1000)
                            t0 = time.perf_counter()
                            assert again.get("/")[0] == 200
                            page_ms.append((time.perf_counter() - t0) * 1000)
                finally:
                    again.remove()
            section = _connections(args, db, info["IMAGE"], work)
            same_load = (
                _same_load({"trixie": info["IMAGE"], "bookworm": reference}, db, work, args.runs) if reference else {}
            )
        finally:
            db.stop()

    version = subprocess.run(["podman", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    med = statistics.median
    rows = [
        ("Image size (stand-in release, uncompressed)", f"{size_mb:.0f} MB"),
        ("Build from a warm layer cache", f"{build_seconds:.1f} s"),
        ("Start to healthy (health check answers 200)", f"{med(healthy):.2f} s"),
        ("Start to ready, empty schema (first install + seeding)", f"{med(first_install):.2f} s"),
        ("Start to ready, installed schema (later boot)", f"{med(later_boot):.2f} s"),
        ("Health check latency, median / p95", f"{med(health_ms):.1f} / {_percentile(health_ms, 95):.1f} ms"),
        (
            "REDCap page with one DB query (TLS), median / p95",
            f"{med(page_ms):.1f} / {_percentile(page_ms, 95):.1f} ms",
        ),
    ]
    assert [name for name, _ in rows] == list(BOOKWORM), "a new row needs its bookworm figure (or 'not measured')"
    table = "\n".join(
        [
            f"Measured with `make bench-image` ({args.runs} containers, {args.requests} requests; {version}).",
            "The bookworm column is the figure recorded before the move to trixie (same machine and method).",
            "",
            "| Measure | Debian 13 trixie, PHP 8.4 (now) | Debian 12 bookworm, PHP 8.2 (recorded) |",
            "| --- | --- | --- |",
            *(f"| {name} | {value} | {BOOKWORM[name]} |" for name, value in rows),
        ]
    )
    if same_load:
        load = Path("/proc/loadavg").read_text().split()[0]
        table += "\n".join(
            [
                "",
                "",
                f"Same load, interleaved: the bookworm image rebuilt from `{args.against}` and the trixie image, "
                f"{args.runs} starts each, alternating (load average {load} at the end; other jobs shared the CPUs).",
                "",
                "| Measure | Debian 13 trixie, PHP 8.4 | Debian 12 bookworm, PHP 8.2 |",
                "| --- | --- | --- |",
                f"| Start to healthy | {same_load['trixie'][0]:.2f} s | {same_load['bookworm'][0]:.2f} s |",
                f"| Start to ready, empty schema | {same_load['trixie'][1]:.2f} s | {same_load['bookworm'][1]:.2f} s |",
            ]
        )
    print(table + "\n\n" + section)
    RESULTS.write_text(table + "\n\n" + section + "\n")
    connections.write_docs(section)


def _connections(args: argparse.Namespace, db: MariaDB, image: str, work: Path) -> str:
    """The connection figures, from one ready container (installed schema) with the bench page mounted."""
    pages = connections.write_bench_page(work / "bench-page")
    env = _fresh_env(db)

    def start(extra: list[str]) -> RedcapContainer:
        # The first boot installs the schema; the measured container then boots on it.
        first = RedcapContainer(image, env, work)
        first.start()
        try:
            first.wait_for("/healthz", 200, timeout=120, need='"ready":true')
        finally:
            first.remove()
        mount = ["-v", f"{pages}:/var/www/redcap/bench:ro"]
        c = RedcapContainer(image, {**env, "LISTEN_PORT": str(free_port())}, work, extra_args=[*extra, *mount])
        c.start()
        try:
            c.wait_for("/healthz", 200, timeout=120, need='"ready":true')
        except BaseException:
            c.remove()
            raise
        return c

    parts, runs = connections.run_all(start, cpus=args.cpus, seconds=args.seconds, concurrency=args.concurrency)
    return connections.table(parts, runs, args.cpus, args.concurrency)


if __name__ == "__main__":
    main()
