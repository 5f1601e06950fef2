"""The database connection path, measured (part of ``make bench-image``; docs/performance.md).

Every REDCap request opens its own database connection: REDCap's db_connect()
(redcap_vX/Config/init_functions.php) includes database.php, which in IAM mode makes a fresh IAM
token (lib/aws.php ``rc_rds_auth_token``), and connects over TLS. This module measures, against
the test MariaDB with TLS (server certificate verified, ``require_secure_transport``):

1. one connection's parts, inside the container with the image's own PHP: the token (SigV4,
   ``rc_rds_auth_token``) and the TLS connect (TCP + TLS handshake + authentication);
2. requests per second through Apache and PHP with the container limited to ``--cpus`` (podman),
   and requests per CPU-second of the container (its cgroup's CPU time), for:

   - the stand-in REDCap page (``/``: db_connect() through the image's database.php, one
     connection per request, as REDCap does), in password mode;
   - a bench page that does what IAM mode does per request: a token, then a TLS connection,
     one query. MariaDB has no IAM plugin, so the token is made (its CPU cost is real) and the
     password authenticates;
   - the same with the token reused from APCu (the reuse this project recommends: AWS does not
     throttle connections that present the same token; docs/performance.md);
   - the same with mysqli persistent connections (``p:`` host): connection reuse, measured only
     as an upper bound. It is not safe for REDCap (docs/performance.md says why);
   - the health check (Apache + PHP, no database): the ceiling.

The load driver is a thread pool of keep-alive HTTP clients on this machine, outside the
container's CPU limit.
"""

from __future__ import annotations

import http.client
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from testkit.image_harness import HOST, RedcapContainer, podman

# Not a REDCap page: mounted read-only into the container for the benchmark only.
BENCH_PAGE = r"""<?php
// Benchmark page (tests/bench/connections.py), not part of REDCap or of the image.
declare(strict_types=1);
require_once '/opt/redcap-image/lib/db.php';
$mode = (string) ($_GET['mode'] ?? 'fresh');
$host = (string) rc_env('DB_HOSTNAME');
$port = (int) rc_env('DB_PORT');
$user = (string) rc_env('DB_IAM_USER');
// Role credentials as rc_role_credentials() returns them from APCu; a session token is ~1 KB.
$creds = [
    'AccessKeyId' => 'ASIABENCHMARK0000000', 'SecretAccessKey' => str_repeat('k', 40), 'Token' => str_repeat('t', 1000),
];
if ($mode === 'fresh') {
    $token = rc_rds_auth_token($host, $port, $user, 'us-east-1', $creds);
} else {
    $token = apcu_fetch('bench:rds-token');
    if (!is_string($token)) {
        $token = rc_rds_auth_token($host, $port, $user, 'us-east-1', $creds);
        apcu_store('bench:rds-token', $token, 600);
    }
}
$link = mysqli_init();
mysqli_options($link, MYSQLI_OPT_SSL_VERIFY_SERVER_CERT, true);
mysqli_ssl_set($link, null, null, RC_DB_CA_BUNDLE, null, null);
$prefix = $mode === 'persistent' ? 'p:' : '';
$password = (string) rc_env('DB_PASSWORD');
$name = (string) rc_env('DB_NAME');
mysqli_real_connect($link, $prefix . $host, $user, $password, $name, $port, null, MYSQLI_CLIENT_SSL);
$row = mysqli_fetch_row(mysqli_query($link, "SELECT value FROM redcap_config WHERE field_name = 'auth_meth_global'"));
mysqli_close($link);
echo strlen($token), ' ', $row[0];
"""

# Run with the image's PHP CLI inside the container: the token and the TLS connect, apart.
CLI_SCRIPT = r"""<?php
declare(strict_types=1);
require_once '/opt/redcap-image/lib/db.php';
$host = (string) rc_env('DB_HOSTNAME');
$port = (int) rc_env('DB_PORT');
$user = (string) rc_env('DB_IAM_USER');
$creds = [
    'AccessKeyId' => 'ASIABENCHMARK0000000', 'SecretAccessKey' => str_repeat('k', 40), 'Token' => str_repeat('t', 1000),
];
$tokens = [];
for ($i = 0; $i < @TOKENS@; $i++) {
    $t0 = hrtime(true);
    rc_rds_auth_token($host, $port, $user, 'us-east-1', $creds);
    $tokens[] = (hrtime(true) - $t0) / 1e3;
}
$connects = [];
$queries = [];
$version = '';
for ($i = 0; $i < @CONNECTS@; $i++) {
    $t0 = hrtime(true);
    $link = mysqli_init();
    mysqli_options($link, MYSQLI_OPT_SSL_VERIFY_SERVER_CERT, true);
    mysqli_ssl_set($link, null, null, RC_DB_CA_BUNDLE, null, null);
    $password = (string) rc_env('DB_PASSWORD');
    mysqli_real_connect($link, $host, $user, $password, (string) rc_env('DB_NAME'), $port, null, MYSQLI_CLIENT_SSL);
    $connects[] = (hrtime(true) - $t0) / 1e3;
    $t0 = hrtime(true);
    $row = mysqli_fetch_row(mysqli_query($link, "SHOW SESSION STATUS LIKE 'Ssl_version'"));
    $queries[] = (hrtime(true) - $t0) / 1e3;
    $version = (string) $row[1];
    mysqli_close($link);
}
echo json_encode(['token_us' => $tokens, 'connect_us' => $connects, 'query_us' => $queries, 'tls' => $version]);
"""

MODES = ("fresh", "cached", "persistent")


@dataclass(frozen=True)
class Throughput:
    label: str
    requests: int
    errors: int
    seconds: float
    cpu_seconds: float
    latencies_ms: list[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def per_cpu_second(self) -> float:
        return self.requests / self.cpu_seconds if self.cpu_seconds > 0 else 0.0


def percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def container_cpu_seconds(name: str) -> float:
    """CPU time the container's cgroup has used (cgroup v2 cpu.stat, else v1 cpuacct.usage)."""
    script = (
        "if [ -f /sys/fs/cgroup/cpu.stat ]; then awk '/^usage_usec/ {print $2 * 1000}' /sys/fs/cgroup/cpu.stat; "
        "else cat /sys/fs/cgroup/cpuacct/cpuacct.usage 2>/dev/null || cat /sys/fs/cgroup/cpu,cpuacct/cpuacct.usage; fi"
    )
    return int(float(podman("exec", name, "sh", "-c", script).strip())) / 1e9


def drive(port: int, path: str, seconds: float, concurrency: int) -> tuple[int, int, list[float]]:
    """Keep-alive clients hitting ``path`` on 127.0.0.1 for ``seconds``: (ok, errors, latencies ms)."""
    deadline = time.monotonic() + seconds
    lock = threading.Lock()
    latencies: list[float] = []
    counts = {"ok": 0, "errors": 0}

    def worker() -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=10)
        mine: list[float] = []
        ok = errors = 0
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
                if resp.status == 200:
                    ok += 1
                    mine.append((time.perf_counter() - t0) * 1000)
                else:
                    errors += 1
            except (OSError, http.client.HTTPException):
                errors += 1
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=10)
        conn.close()
        with lock:
            latencies.extend(mine)
            counts["ok"] += ok
            counts["errors"] += errors

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts["ok"], counts["errors"], latencies


def measure(container: RedcapContainer, label: str, path: str, seconds: float, concurrency: int) -> Throughput:
    drive(container.port, path, 1.0, concurrency)  # warm: opcache, Apache children, APCu
    cpu0 = container_cpu_seconds(container.name)
    t0 = time.monotonic()
    ok, errors, latencies = drive(container.port, path, seconds, concurrency)
    elapsed = time.monotonic() - t0
    cpu = container_cpu_seconds(container.name) - cpu0
    return Throughput(label, ok, errors, elapsed, cpu, latencies)


def connection_parts(container: RedcapContainer, tokens: int, connects: int) -> dict[str, object]:
    import json

    script = CLI_SCRIPT.replace("@TOKENS@", str(tokens)).replace("@CONNECTS@", str(connects))
    out = container.exec("php", input_text=script)
    return dict(json.loads(out))


def write_bench_page(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "connection.php").write_text(BENCH_PAGE)
    directory.chmod(0o755)
    (directory / "connection.php").chmod(0o644)
    return directory


def table(parts: dict[str, object], runs: list[Throughput], cpus: float, concurrency: int) -> str:
    med = statistics.median
    token_us = list(parts["token_us"])  # type: ignore[call-overload]
    connect_us = list(parts["connect_us"])  # type: ignore[call-overload]
    query_us = list(parts["query_us"])  # type: ignore[call-overload]
    lines = [
        "## Database connections",
        "",
        f"One connection's parts, with the image's PHP CLI against MariaDB over TLS ({parts['tls']},"
        " server certificate verified):",
        "",
        "| Measure | Median | p95 |",
        "| --- | --- | --- |",
        f"| IAM token (rc_rds_auth_token, SigV4) | {med(token_us):.0f} µs | {percentile(token_us, 95):.0f} µs |",
        f"| TLS connect (TCP + TLS handshake + authentication) | {med(connect_us) / 1000:.2f} ms "
        f"| {percentile(connect_us, 95) / 1000:.2f} ms |",
        f"| One query on the open connection | {med(query_us) / 1000:.2f} ms "
        f"| {percentile(query_us, 95) / 1000:.2f} ms |",
        "",
        f"Through Apache and PHP, the container limited to `--cpus {cpus:g}`, {concurrency} keep-alive clients,"
        " requests per second and per CPU-second of the container:",
        "",
        "| Page | Requests/s | Requests per CPU-second | Median / p95 latency | Errors |",
        "| --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        lat = f"{med(run.latencies_ms):.1f} / {percentile(run.latencies_ms, 95):.1f} ms" if run.latencies_ms else "-"
        lines.append(f"| {run.label} | {run.rps:.0f} | {run.per_cpu_second:.0f} | {lat} | {run.errors} |")
    # The capacity math uses the figure as shown, so a reader can redo it from the table.
    per_vcpu = float(round(runs[0].per_cpu_second))
    lines += [
        "",
        f"Capacity: the stand-in REDCap page costs {1000 / per_vcpu:.1f} ms of CPU per request, so one fully busy"
        f" vCPU opens {per_vcpu:.0f} connections per second. New connections per second at full CPU, per"
        f" `Cpu` and task count (bold: at or above AWS's {IAM_CEILING} per second for IAM authentication):",
        "",
        capacity_table(per_vcpu),
    ]
    return "\n".join(lines)


# The template's Cpu values and task counts up to MaxSize's maximum (25).
CPU_SIZES = (0.25, 0.5, 1.0, 2.0, 4.0)
TASK_COUNTS = (1, 2, 5, 10, 25)
# AWS: "consider using IAM database authentication when your applications create fewer than 200
# connections per second"; it throttles above that unless connections share a token.
IAM_CEILING = 200


def capacity_table(per_vcpu: float) -> str:
    """New connections per second at full CPU, per compute size and task count, at ``per_vcpu``
    requests (one connection each) per vCPU-second; bold where the IAM ceiling is reached."""
    header = "| vCPU per task | " + " | ".join(f"{n} task{'s' if n > 1 else ''}" for n in TASK_COUNTS) + " |"
    lines = [header, "| --- |" + " --- |" * len(TASK_COUNTS)]
    for cpu in CPU_SIZES:
        cells = []
        for n in TASK_COUNTS:
            rate = cpu * n * per_vcpu
            cells.append(f"**{rate:,.0f}**" if rate >= IAM_CEILING else f"{rate:,.0f}")
        lines.append(f"| {cpu:g} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


DOCS = Path(__file__).resolve().parents[2] / "docs" / "performance.md"
DOCS_START = "<!-- connections:start (make bench-image rewrites this block) -->"
DOCS_END = "<!-- connections:end -->"


def docs_block(section: str) -> str:
    """What docs/performance.md shows of the results' connection section: all but its heading."""
    return section.split("\n", 1)[1].strip()


def write_docs(section: str) -> None:
    text = DOCS.read_text()
    start, end = text.index(DOCS_START), text.index(DOCS_END)
    DOCS.write_text(text[: start + len(DOCS_START)] + "\n" + docs_block(section) + "\n" + text[end:])


PAGES: tuple[tuple[str, str], ...] = (
    ("Stand-in REDCap page: db_connect() via database.php, a connection per request", "/"),
    ("IAM path: a fresh token + a TLS connection per request", "/bench/connection.php?mode=fresh"),
    ("Token reused from APCu + a TLS connection per request", "/bench/connection.php?mode=cached"),
    ("Persistent connection (p:), upper bound only: unsafe for REDCap", "/bench/connection.php?mode=persistent"),
    ("Health check (no database)", "/healthz"),
)


def run_all(
    start: Callable[[list[str]], RedcapContainer], *, cpus: float, seconds: float, concurrency: int
) -> tuple[dict[str, object], list[Throughput]]:
    """``start(extra_podman_args)`` returns a started, ready container with the bench page mounted."""
    container = start(["--cpus", f"{cpus:g}"])
    try:
        parts = connection_parts(container, tokens=2000, connects=200)
        runs = [measure(container, label, path, seconds, concurrency) for label, path in PAGES]
    finally:
        container.remove()
    return parts, runs
