"""``python -m preflight ENV``: refuse, before ``sam deploy``, what CloudFormation's parameter patterns let through.

Runs with only the SAM CLI's Python (standard library): ``make deploy`` calls it first.

- Every ``*Cidrs`` parameter must list network addresses: a pattern cannot see host bits, and AWS WAF
  refuses an IP set address with host bits set (``WAFInvalidParameterException`` for
  ``195.178.188.66/29``, aws/aws-cdk#20003), which would fail the deploy when the IP set is created.
- No ``CHANGE_ME`` may be left.
"""

from __future__ import annotations

import ipaddress
import shlex
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def overrides(samconfig: Path, env: str) -> dict[str, str]:
    config = tomllib.loads(samconfig.read_text(encoding="utf-8"))
    if env not in config:
        raise ValueError(f"samconfig.toml has no environment {env!r}")
    text = config[env].get("deploy", {}).get("parameters", {}).get("parameter_overrides", "")
    if isinstance(text, list):
        text = " ".join(text)
    return dict(item.split("=", 1) for item in shlex.split(str(text)))


def problems(params: dict[str, str]) -> list[str]:
    found = []
    for name, value in sorted(params.items()):
        if value == "CHANGE_ME":
            found.append(f"{name}: still CHANGE_ME (docs/runbook.md, step 3)")
        elif name.endswith("Cidrs") and value:
            for cidr in value.split(","):
                try:
                    ipaddress.IPv4Network(cidr, strict=True)
                except ValueError as err:
                    hint = ""
                    if "host bits set" in str(err):
                        hint = f": write the network address, {ipaddress.IPv4Network(cidr, strict=False)}"
                    found.append(f"{name}: {cidr} is not an IPv4 network address{hint}")
    return found


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m preflight ENV", file=sys.stderr)
        return 2
    try:
        found = problems(overrides(ROOT / "samconfig.toml", argv[0]))
    except ValueError as err:
        print(f"make deploy: {err}", file=sys.stderr)
        return 2
    for line in found:
        print(f"make deploy: samconfig.toml [{argv[0]}] {line}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
