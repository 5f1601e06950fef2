"""``make bench``: cold start, peak memory, built sizes, custom-domain overhead, rotation time.

Every figure is a median over ``--runs`` fresh interpreters (subprocesses)
against the same local emulators ``make local`` uses (they run in this
process, so a child pays only its own import and request costs):

- floor: a fresh interpreter that imports boto3 and builds one client;
- cold start: a fresh interpreter that imports the function's handler (the
  built layer first on the path, as /opt/python) and serves its first event;
  the ratio to the floor is the figure with a target (<= 1.35x);
- peak memory: ru_maxrss of that child (target < 100 MB for 128 MB Lambdas);
- the same cold start with the layer stripped of its .pyc files, to show what
  shipping bytecode buys (Lambda cannot write __pycache__ under /opt);
- built sizes from ``.aws-sam/build`` (``make build`` runs first if it is
  missing or older than the sources);
- custom-domain Create overhead beyond the emulator's record delay, and the
  duration of a full rotation (four steps) per secret kind.

The Markdown table goes to stdout and to tests/bench/results.md.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.bench_case import BenchCase
from local.env import install_network_guard
from local.runner import Run, install_routers, uninstall_routers
from local.scenarios import Local

from testkit import ROOT
from testkit.cfn import capture_cfn_responses

CHILD = Path(__file__).with_name("child.py")
BUILD = ROOT / ".aws-sam" / "build"
RESULTS = Path(__file__).with_name("results.md")
COLD_START_TARGET = 1.35
MEMORY_TARGET_MB = 100.0
SOURCES = ("template.yaml", "functions", "layers/shared")


@dataclass
class Sample:
    wall_ms: float
    cpu_ms: float
    rss_mb: float
    child: dict[str, float]


def run_child(args: list[str], env: dict[str, str]) -> Sample:
    """One fresh interpreter, measured by a small launcher (see child.py's ``launch``)."""
    proc = subprocess.run(
        [sys.executable, str(CHILD), "launch", *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
        check=False,
    )
    if proc.returncode != 0 or "\nBENCH " not in proc.stdout:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"bench child {' '.join(args)} failed (exit {proc.returncode}):\n{tail}")
    result = json.loads(proc.stdout.rsplit("\nBENCH ", 1)[1])
    return Sample(
        wall_ms=result["wall_ms"], cpu_ms=result["cpu_ms"], rss_mb=result["rss_kb"] / 1024, child=result["child"]
    )


def build_is_stale() -> bool:
    marker = BUILD / "template.yaml"
    if not marker.exists():
        return True
    built = marker.stat().st_mtime
    for name in SOURCES:
        path = ROOT / name
        files = (
            [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
        )
        if any(f.stat().st_mtime > built for f in files):
            return True
    return False


def ensure_build(log: Callable[[str], None]) -> None:
    if not build_is_stale():
        return
    log("bench: .aws-sam/build is missing or older than the sources; running make build ...")
    proc = subprocess.run(["make", "build"], cwd=ROOT, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError("make build failed:\n" + "\n".join((proc.stdout + proc.stderr).splitlines()[-20:]))


def tree_size(path: Path, skip_pyc: bool = False) -> tuple[int, int]:
    """(bytes on disk, bytes zipped with deflate as sam would upload) of a built folder."""
    raw = 0
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(p for p in path.rglob("*") if p.is_file()):
            if skip_pyc and "__pycache__" in file.parts:
                continue
            raw += file.stat().st_size
            zf.write(file, file.relative_to(path))
    return raw, len(buffer.getvalue())


def functions_in_template() -> dict[str, str]:
    """Logical id -> functions/<dir> of every function the template builds."""
    from local.scenarios import STACK_PARAMS

    from testkit.template import Rendered

    out = {}
    for name, res in Rendered(**STACK_PARAMS).resources.items():
        if res["Type"] == "AWS::Serverless::Function":
            out[name] = str(res["Properties"].get("CodeUri", "")).rstrip("/")
    return out


@contextmanager
def layer_variants(tmp: Path) -> Iterator[dict[str, Path]]:
    """The built layer with its .pyc files and a copy without them."""
    with_pyc = BUILD / "SharedLayer" / "python"
    if not with_pyc.is_dir():
        raise RuntimeError(f"{with_pyc} does not exist: the layer was not built")
    without = tmp / "layer-no-pyc" / "python"
    shutil.copytree(with_pyc, without, ignore=shutil.ignore_patterns("__pycache__"))
    yield {"with .pyc": with_pyc, "without .pyc": without}


def function_copy(case: BenchCase, tmp: Path) -> Path:
    """The function as Lambda gets it: the built package if present, never a __pycache__."""
    built = BUILD / case.logical_id
    target = tmp / f"fn-{case.logical_id}"
    if not target.exists():
        source = built if built.is_dir() else ROOT / "functions" / case.function
        shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


def child_env(local: Local, extra: dict[str, str], layer: Path | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "POWERTOOLS_", "PYTHON"))}
    env.update(local.env)
    env.update(extra)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # like /opt and /var/task: nothing can be cached between runs
    env["PYTHONPATH"] = str(layer) if layer else ""
    env["POWERTOOLS_LOG_LEVEL"] = extra.get("POWERTOOLS_LOG_LEVEL", "INFO")
    return env


def median(values: list[float]) -> float:
    return statistics.median(values)


def fmt_mb(n: int) -> str:
    return f"{n / 1_000_000:.2f} MB" if n >= 100_000 else f"{n / 1000:.1f} kB"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh interpreters per figure (median)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-build", action="store_true", help="use .aws-sam/build as it is")
    args = parser.parse_args(argv)
    out = sys.stdout

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    if not args.no_build:
        ensure_build(log)
    sections: list[str] = []
    misses: list[str] = []
    setup = Run(out=sys.stderr)
    # In-process measurements talk only to 127.0.0.1 (the children get emulator endpoints).
    install_network_guard()
    install_routers()
    try:
        with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="redcap-bench-") as tmpdir:
            tmp = Path(tmpdir)
            local = Local.start(stack, setup, broken=[])
            if local is None:
                raise RuntimeError("could not start the emulators:\n" + setup.table())
            capture = stack.enter_context(capture_cfn_responses())
            cases, unavailable = collect_cases(local, capture)
            layers = stack.enter_context(layer_variants(tmp))
            sections.append(cold_start_section(local, cases, unavailable, layers, tmp, args.runs, log, misses))
            sections.append(import_section(local, cases, tmp, layers["with .pyc"]))
            sections.append(size_section())
            sections.append(extras_section(local, args.runs, log, misses))
    finally:
        uninstall_routers()
    header = (
        f"# Benchmarks\n\nProduced by `make bench` (median of {args.runs} fresh interpreters per figure) on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs, local emulators on 127.0.0.1.\n"
    )
    verdict = "\n## Targets\n\n" + ("\n".join(f"- MISSED: {m}" for m in misses) if misses else "- all targets met")
    text = "\n".join([header, *sections, verdict]) + "\n"
    print(text, file=out)
    args.out.write_text(text)
    log(f"bench: written to {args.out}")
    return 0


def collect_cases(local: Local, capture: Any) -> tuple[list[BenchCase], list[str]]:
    from local.areas import AREAS

    cases: list[BenchCase] = []
    unavailable: list[str] = []
    for name, area in AREAS.items():
        try:
            cases.extend(area.bench_cases(local, capture))
        except Exception as exc:
            unavailable.append(f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0][:150]}")
    return cases, unavailable


def cold_start_section(
    local: Local,
    cases: list[BenchCase],
    unavailable: list[str],
    layers: dict[str, Path],
    tmp: Path,
    runs: int,
    log: Callable[[str], None],
    misses: list[str],
) -> str:
    floor_env = child_env(local, {}, None)
    samples: dict[str, list[Sample]] = {"floor": []}
    paths: dict[str, Path] = {}
    for case in cases:
        paths[case.name] = function_copy(case, tmp)
        for variant in layers:
            samples[f"{case.name}|{variant}"] = []

    def spec_for(n: int, case: BenchCase) -> Path:
        event = case.prepare() if case.prepare is not None else case.event
        spec = {
            "function_path": str(paths[case.name]),
            "function_name": case.logical_id,
            "event": event,
            "cfn_response": case.cfn_response,
        }
        path = tmp / f"spec-{n}.json"
        path.write_text(json.dumps(spec))
        return path

    log(f"bench: {runs} rounds of {1 + len(cases) * len(layers)} fresh interpreters ...")
    # Interleaved rounds: a slow moment on the machine hits every row alike.
    for _round in range(runs):
        samples["floor"].append(run_child(["floor"], floor_env))
        for n, case in enumerate(cases):
            for variant, layer in layers.items():
                env = child_env(local, case.env, layer)
                spec = spec_for(n, case)
                samples[f"{case.name}|{variant}"].append(run_child(["invoke", str(spec)], env))
    floor = median([s.wall_ms for s in samples["floor"]])
    floor_cpu = median([s.cpu_ms for s in samples["floor"]])
    floor_rss = max(s.rss_mb for s in samples["floor"])
    lines = [
        "## Cold start and peak memory",
        "",
        "| Function (first event) | Layer | Cold start (wall) | Ratio to floor (target <= 1.35x) | CPU time "
        "| CPU ratio | Import | First event | Peak RSS (target < 100 MB) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        f"| floor: `import boto3` + one client | - | {floor:.0f} ms | 1.00x | {floor_cpu:.0f} ms | 1.00x | - | - "
        f"| {floor_rss:.1f} MB |",
    ]
    for case in cases:
        for variant in layers:
            rows = samples[f"{case.name}|{variant}"]
            wall = median([s.wall_ms for s in rows])
            cpu = median([s.cpu_ms for s in rows])
            ratio = wall / floor
            rss = max(s.rss_mb for s in rows)
            imp = median([s.child["import_ms"] for s in rows])
            inv = median([s.child["invoke_ms"] for s in rows])
            shipped = variant == "with .pyc"
            mark_ratio = " (missed)" if shipped and ratio > COLD_START_TARGET else ""
            mark_rss = " (missed)" if rss >= MEMORY_TARGET_MB else ""
            lines.append(
                f"| {case.name} | {variant} | {wall:.0f} ms | {ratio:.2f}x{mark_ratio} | {cpu:.0f} ms "
                f"| {cpu / floor_cpu:.2f}x | {imp:.0f} ms | {inv:.0f} ms | {rss:.1f} MB{mark_rss} |"
            )
            if shipped and ratio > COLD_START_TARGET:
                misses.append(
                    f"cold start of {case.name}: {ratio:.2f}x the floor ({wall:.0f} ms vs {floor:.0f} ms), "
                    f"{(ratio - COLD_START_TARGET) / COLD_START_TARGET:.0%} over the 1.35x target"
                )
            if shipped and rss >= MEMORY_TARGET_MB:
                misses.append(f"peak memory of {case.name}: {rss:.1f} MB (target < {MEMORY_TARGET_MB:.0f} MB)")
    lines.append("")
    lines.append(
        "Cold start = wall time of a fresh interpreter from spawn to exit (interpreter start, imports, first "
        "event against the emulators on 127.0.0.1); CPU time = its user+system time, which a busy machine "
        "disturbs less than wall time. Import = until `app` is imported; First event = the handler call. "
        "Peak RSS = ru_maxrss of that interpreter. The shipped layer is the one with .pyc; targets are "
        "checked on it."
    )
    for text in unavailable:
        lines.append(f"\n- not measured: {text}")
        misses.append(f"not measured: {text}")
    return "\n".join(lines) + "\n"


def import_breakdown(args: list[str], env: dict[str, str]) -> dict[str, float]:
    """Milliseconds of import work per top-level package, from ``python -X importtime``.

    Sums each module's *self* time under its root package, so a package costs the
    same whoever imports it first. A module's self time includes its top-level code:
    for ``app`` that is building its boto3 clients (the floor builds one too).
    """
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", str(CHILD), *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=tempfile.gettempdir(),
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError("importtime run failed:\n" + "\n".join(proc.stdout.splitlines()[-10:]))
    totals: dict[str, float] = {}
    for line in proc.stderr.splitlines():
        if not line.startswith("import time:") or line.count("|") != 2:
            continue
        own, _cumulative, name = line.split(":", 1)[1].split("|")
        if not own.strip().isdigit():
            continue  # the header line
        root = name.strip().split(".")[0]
        totals[root] = totals.get(root, 0.0) + int(own) / 1000
    return totals


def import_section(local: Local, cases: list[BenchCase], tmp: Path, layer: Path) -> str:
    groups = {
        "AWS SDK (boto3, botocore, s3transfer, dateutil, jmespath)": (
            "boto3",
            "botocore",
            "s3transfer",
            "dateutil",
            "jmespath",
            "six",
        ),
        "urllib3": ("urllib3",),
        "Powertools (+ typing_extensions)": ("aws_lambda_powertools", "typing_extensions"),
        "crhelper": ("crhelper",),
        "redcap_ctl + app (incl. building clients)": ("redcap_ctl", "app"),
    }
    lines = [
        "## Where the import time goes (shipped layer, one run each, `python -X importtime`)",
        "",
        "| Function | " + " | ".join(groups) + " | stdlib and the rest | total |",
        "|---|" + "---:|" * (len(groups) + 2),
    ]
    known = {m for mods in groups.values() for m in mods}

    def row(label: str, totals: dict[str, float]) -> str:
        cells = [f"{sum(totals.get(m, 0.0) for m in mods):.0f} ms" for mods in groups.values()]
        rest = sum(v for k, v in totals.items() if k not in known)
        return f"| {label} | {' | '.join(cells)} | {rest:.0f} ms | {sum(totals.values()):.0f} ms |"

    lines.append(row("floor: `import boto3` + one client", import_breakdown(["floor"], child_env(local, {}, None))))
    for n, case in enumerate(cases):
        event = case.prepare() if case.prepare is not None else case.event
        spec = tmp / f"importtime-{n}.json"
        spec.write_text(
            json.dumps(
                {
                    "function_path": str(function_copy(case, tmp)),
                    "function_name": case.logical_id,
                    "event": event,
                    "cfn_response": case.cfn_response,
                }
            )
        )
        lines.append(row(case.name, import_breakdown(["invoke", str(spec)], child_env(local, case.env, layer))))
    lines.append("")
    lines.append(
        "Self time of every imported module, summed per package (whoever imported it first). The floor's "
        "client is built inside `floor()`, not at import, so it is not in its row; a function's clients are "
        "built at import (module level, once per container), so they are in its `app`/`redcap_ctl` cell."
    )
    return "\n".join(lines) + "\n"


def size_section() -> str:
    lines = [
        "## Built sizes (`.aws-sam/build`)",
        "",
        "| Package | On disk | Zipped |",
        "|---|---:|---:|",
    ]
    for logical_id in functions_in_template():
        path = BUILD / logical_id
        if path.is_dir():
            raw, zipped = tree_size(path)
            lines.append(f"| {logical_id} | {fmt_mb(raw)} | {fmt_mb(zipped)} |")
        else:
            lines.append(f"| {logical_id} | not built | - |")
    layer = BUILD / "SharedLayer"
    if layer.is_dir():
        raw, zipped = tree_size(layer)
        raw_np, zipped_np = tree_size(layer, skip_pyc=True)
        lines.append(f"| SharedLayer (shipped, with .pyc) | {fmt_mb(raw)} | {fmt_mb(zipped)} |")
        lines.append(f"| SharedLayer without .pyc (for comparison) | {fmt_mb(raw_np)} | {fmt_mb(zipped_np)} |")
    return "\n".join(lines) + "\n"


def extras_section(local: Local, runs: int, log: Callable[[str], None], misses: list[str]) -> str:
    from local.areas import AREAS

    lines = [
        "## Custom-domain overhead and rotation duration",
        "",
        "| Measurement | Median | Runs | Notes |",
        "|---|---:|---:|---|",
    ]
    for name, area in AREAS.items():
        measure = getattr(area, "bench_extras", None)
        if measure is None:
            continue
        try:
            for label, values, note in measure(local, runs):
                lines.append(f"| {label} | {median(values):.0f} ms | {len(values)} | {note} |")
        except Exception as exc:
            text = f"{name}: {type(exc).__name__}: {str(exc).splitlines()[0][:150]}"
            lines.append(f"| {name} | not measured | - | {text} |")
            misses.append(f"not measured: {text}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
