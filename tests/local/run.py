"""``make local``: every control-plane Lambda's real handler, end to end, on this machine.

Starts AWS on 127.0.0.1 (moto in server mode, the App Runner emulator, the
REDCap stand-in behind the emulated WAF set, a local SMTP server), creates in
them the resources ``template.yaml`` declares that the Lambdas act on, runs
each handler as Lambda would, prints what happened, and exits non-zero if any
step failed. Everything it started is stopped on the way out, also after a
failure or Ctrl-C.

Usage: make local [COMPUTE=EcsExpress] [DNS=CreateZone|External] [BREAK=service[,service]] [ONLY=area[,area]]
  (or: PYTHONPATH=layers/shared:tests .venv/bin/python -m local.run [-v] [--compute EcsExpress]
  [--dns External] [--break SERVICE] [--only AREA]; make itself rejects options such as
  `make local --break x`, hence the variables)
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from contextlib import ExitStack
from types import FrameType

from local.areas import AREAS
from local.env import install_network_guard
from local.runner import Run, install_routers, uninstall_routers
from local.scenarios import Local, Scenario

SCENARIOS: dict[str, Scenario] = {name: area.scenario for name, area in AREAS.items()}

BUDGET_SECONDS = 60.0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    # `make local` passes no arguments; the self-test reaches the same options through
    # MAKE_LOCAL_BREAK / MAKE_LOCAL_ONLY (comma-separated) so it can exercise the real target.
    if argv is None:
        argv = sys.argv[1:]
        for var, flag in (
            ("MAKE_LOCAL_BREAK", "--break"),
            ("MAKE_LOCAL_ONLY", "--only"),
            ("MAKE_LOCAL_COMPUTE", "--compute"),
            ("MAKE_LOCAL_DNS", "--dns"),
        ):
            for value in filter(None, os.environ.get(var, "").split(",")):
                argv += [flag, value.strip()]
    # prog is the module, not "make local": make would take `make local --break x` as its own option.
    parser = argparse.ArgumentParser(prog="python -m local.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="print each step as it finishes")
    parser.add_argument(
        "--break",
        dest="broken",
        action="append",
        default=[],
        metavar="SERVICE",
        help="fault injection for the self-test: every request to this emulated AWS service "
        "(signing name, e.g. route53, secretsmanager, iam) fails with InjectedFault (make local BREAK=SERVICE)",
    )
    parser.add_argument(
        "--compute",
        choices=["AppRunner", "EcsExpress"],
        default="AppRunner",
        help="the template's ComputeType to run against (make local COMPUTE=EcsExpress)",
    )
    parser.add_argument(
        "--dns",
        choices=["CreateZone", "External"],
        default="CreateZone",
        help="the template's DnsMode (make local DNS=External); External runs on ECS Express only",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="AREA",
        help=f"run only these areas ({', '.join(SCENARIOS)}; make local ONLY=AREA)",
    )
    return parser.parse_args(argv)


def _sigterm(_signum: int, _frame: FrameType | None) -> None:
    # Same clean-up path as Ctrl-C: the ExitStack below stops every server.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    unknown = set(args.only) - set(SCENARIOS)
    if unknown:
        print(f"make local: unknown area(s) {sorted(unknown)}; choose from {list(SCENARIOS)}", file=sys.stderr)
        return 2
    if args.dns != "CreateZone" and args.compute != "EcsExpress":
        print("make local: DNS=External runs with COMPUTE=EcsExpress only", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _sigterm)
    install_network_guard()
    out = sys.stdout
    run = Run(out=out, verbose=args.verbose)
    started = time.perf_counter()
    print("make local: starting AWS emulators on 127.0.0.1 and running every handler ...", file=out, flush=True)
    install_routers()
    try:
        with ExitStack() as stack:
            local = Local.start(stack, run, broken=args.broken, compute=args.compute, dns=args.dns)
            if local is not None:
                for name, scenario in SCENARIOS.items():
                    if not args.only or name in args.only:
                        scenario(local, run)
    except KeyboardInterrupt:
        uninstall_routers()
        print("\nmake local: interrupted; every emulator it started has been stopped.", file=out)
        return 130
    finally:
        uninstall_routers()
    elapsed = time.perf_counter() - started
    print(file=out)
    print(run.table(), file=out)
    print(file=out)
    failed = run.failed
    if failed:
        for result, trace in run.failures:
            print(f"--- {result.resource} / {result.step}: {result.outcome}", file=out)
            print(trace.rstrip(), file=out)
        names = "; ".join(f"{r.resource} / {r.step}: {r.detail[:120]}" for r in failed)
        print(
            f"\nmake local: FAILED: {len(failed)} of {len(run.results)} steps failed ({elapsed:.1f}s): {names}",
            file=out,
        )
        return 1
    if elapsed > BUDGET_SECONDS:
        # Speed is the machine's as much as ours (CI runners share CPUs): said plainly, not failed.
        print(f"make local: note: this run took {elapsed:.1f}s, over the {BUDGET_SECONDS:.0f}s budget", file=out)
    print(f"make local: all {len(run.results)} steps passed in {elapsed:.1f}s", file=out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
