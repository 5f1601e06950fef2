"""CloudFormation Guard over the rendered template: this repo's HIPAA Security rules in ``guard/``.

The template is rendered for dev and prod (conditions and ``Fn::If`` resolved by
``testkit.template.Rendered``) and written as JSON with a top-level ``RenderedFor`` that the
environment-specific rules read. ``cfn-guard`` comes from the npm package
``@cdklabs/cdk-validator-cfnguard`` (pinned in requirements/cfn-guard/package-lock.json,
installed by ``make install`` under ``.tools/cfn-guard``).

Run ``PYTHONPATH=layers/shared:tests .venv/bin/python -m testkit.guard`` (``make guard``).
A rule a resource may fail carries the reason in that resource's Metadata::

    Metadata:
      guard:
        SuppressedRules: [REDCAP_S3_DEFAULT_ENCRYPTION_KMS]
        Reasons:
          REDCAP_S3_DEFAULT_ENCRYPTION_KMS: S3 server access logging delivers only to SSE-S3 buckets.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from testkit import ROOT
from testkit.template import Rendered

RULES = ROOT / "guard"
PACKAGE = ROOT / ".tools" / "cfn-guard" / "node_modules" / "@cdklabs" / "cdk-validator-cfnguard"
SAMPLE = {
    "ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/redcap:14.5.1",
    "DomainName": "redcap.example.org",
    "DnsMode": "CreateZone",
}
# Both compute types; ECS Express with the image built from a release zip (the other image mode).
EXPRESS = {
    "ComputeType": "EcsExpress",
    "CanaryRollbackRule": "RedcapRule",
    "ImageUri": "",
    "RedcapSourceZip": "s3://releases-bucket/redcap15.5.1.zip",
}
ENVIRONMENTS: dict[str, dict[str, Any]] = {
    "dev": {**SAMPLE, "Environment": "dev"},
    "prod": {**SAMPLE, "Environment": "prod", "DbReaderCount": 1},
    "express-dev": {**SAMPLE, **EXPRESS, "Environment": "dev"},
    "express-prod": {**SAMPLE, **EXPRESS, "Environment": "prod", "DbReaderCount": 1},
}


def binary() -> Path:
    """The cfn-guard binary shipped in the npm package for this machine (or $CFN_GUARD)."""
    if os.environ.get("CFN_GUARD"):
        return Path(os.environ["CFN_GUARD"])
    system = {"Linux": "ubuntu", "Darwin": "macos"}[platform.system()]
    machine = {"arm64": "aarch64", "aarch64": "aarch64", "x86_64": "x86_64", "AMD64": "x86_64"}[platform.machine()]
    return PACKAGE / "bin" / system / machine / "cfn-guard"


def rendered_document(rendered: Rendered) -> dict[str, Any]:
    return {
        "RenderedFor": {"Environment": rendered.params["Environment"]},
        "Resources": rendered.resources,
    }


def validate(documents: dict[str, dict[str, Any]], rules: Path = RULES) -> tuple[int, str]:
    """Run cfn-guard on each document; (exit status, combined output). Status 0 = every rule passed."""
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name, document in documents.items():
            path = Path(tmp) / f"{name}.json"
            path.write_text(json.dumps(document, indent=1), encoding="utf-8")
            paths.append(path)
        status, output = 0, []
        for path in paths:
            result = subprocess.run(  # noqa: S603 -- the pinned cfn-guard binary, fixed argv, no shell
                [str(binary()), "validate", "--rules", str(rules), "--data", str(path), "--show-summary", "fail"],
                capture_output=True,
                text=True,
                check=False,
                timeout=120,
            )
            output.append(result.stdout + result.stderr)
            status = max(status, result.returncode)
        return status, "\n".join(output)


def main() -> int:
    documents = {name: rendered_document(Rendered(**params)) for name, params in ENVIRONMENTS.items()}
    status, output = validate(documents)
    print(output)
    rules = sorted(p.name for p in RULES.glob("*.guard"))
    verdict = "passed" if status == 0 else f"FAILED (cfn-guard exit {status})"
    print(f"cfn-guard {', '.join(rules)} over {', '.join(documents)}: {verdict}")
    return 0 if status == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
