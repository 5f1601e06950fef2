"""``python -m smoke --stack NAME [--region R] [--caller-ip IP]``: see ``smoke/__init__.py``."""

from __future__ import annotations

import argparse
import ipaddress
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from smoke.aws import SmokeError, WriteRefused, load_stack, read_only_session
from smoke.checks import CHECKS, Clients, Context, Result, Row
from smoke.web import Web

PROG = "make smoke"
DETAIL_WIDTH = 110


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=PROG, description="Read-only check of a live REDCap stack")
    parser.add_argument("--stack", required=True, help="the stack's name")
    parser.add_argument("--region", help="its Region (default: your AWS configuration's)")
    parser.add_argument(
        "--caller-ip",
        type=ipaddress.IPv4Address,
        help="your public IPv4 address, to tell whether you are inside AdminCidrs",
    )
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds per HTTPS request (default 10)")
    return parser.parse_args(argv)


def _error_text(err: Exception) -> str:
    if isinstance(err, ClientError):
        error = err.response.get("Error", {})
        operation = getattr(err, "operation_name", "")
        return f"{operation}: {error.get('Code', '')}: {error.get('Message', '')}".strip()
    return f"{type(err).__name__}: {err}"


def run_checks(ctx: Context) -> list[Row]:
    rows: list[Row] = []
    for check in CHECKS:
        try:
            outcome = check.run(ctx)
        except WriteRefused as err:
            rows.append(Row(check.name, Result.FAIL, str(err), "a bug in smoke: report it"))
            continue
        except (ClientError, BotoCoreError, ValueError, KeyError) as err:
            text = _error_text(err)
            denied = "AccessDenied" in text
            step = "grant your principal this read-only call" if denied else "run again, then read the error"
            rows.append(Row(check.name, Result.FAIL, f"could not check: {text}", step))
            continue
        rows.append(Row(check.name, outcome.result, outcome.detail, outcome.next_step))
    return rows


def render(stack: str, region: str, rows: Sequence[Row]) -> str:
    header = ("Check", "Result", "Detail", "Next step")
    cells = [header, *((r.check, r.result.value, r.detail, r.next_step) for r in rows)]
    widths = [max(len(c[i]) for c in cells) for i in range(2)]
    detail_width = min(DETAIL_WIDTH, max(len(c[2]) for c in cells))
    lines = [f"make smoke: {stack} in {region}", ""]
    for n, (check, result, detail, step) in enumerate(cells):
        lines.append(f"{check:<{widths[0]}}  {result:<{widths[1]}}  {detail:<{detail_width}}  {step}".rstrip())
        if n == 0:
            lines.append(f"{'-' * widths[0]}  {'-' * widths[1]}  {'-' * detail_width}  {'-' * 9}")
    failed = [r.check for r in rows if r.result is Result.FAIL]
    lines.append("")
    if failed:
        lines.append(f"make smoke: FAILED: {len(failed)} of {len(rows)} checks: {', '.join(failed)}")
    else:
        lines.append(f"make smoke: all {len(rows)} checks passed (or do not apply)")
    return "\n".join(lines)


def main(
    argv: Sequence[str] | None = None,
    *,
    session: Any = None,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
) -> int:
    """Run every check. ``session`` (a boto3 Session) is for tests; the read-only hook is added to it."""
    args = parse_args(argv)
    out = out or sys.stdout
    environ = os.environ if environ is None else environ
    try:
        session = read_only_session(args.region, session)
        region = session.region_name
        if not region:
            raise SmokeError("no Region: pass REGION=... (make) or --region, or set AWS_REGION")
        clients = Clients(session, region)
        stack = load_stack(clients("cloudformation"), args.stack, region)
        web = Web.from_env(environ, timeout=args.timeout)
    except (SmokeError, ValueError) as err:
        print(f"{PROG}: {err}", file=sys.stderr)
        return 2
    except NoCredentialsError:
        print(f"{PROG}: no AWS credentials: sign in first (aws sso login, or AWS_PROFILE=...)", file=sys.stderr)
        return 2
    except NoRegionError:
        print(f"{PROG}: no Region: pass REGION=... (make) or --region", file=sys.stderr)
        return 2
    except (ClientError, BotoCoreError) as err:
        print(f"{PROG}: could not read stack {args.stack}: {_error_text(err)}", file=sys.stderr)
        return 2
    ctx = Context(stack=stack, aws=clients, web=web, now=datetime.now(UTC), caller_ip=args.caller_ip)
    rows = run_checks(ctx)
    print(render(stack.name, region, rows), file=out)
    return 1 if any(r.result is Result.FAIL for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
