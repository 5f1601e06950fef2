"""Bring REDCap's files in the versioned file bucket back to how they were at a point in time.

For every key under a prefix, the version that was current at ``--at`` becomes current again by
CopyObject of that version onto the same key (S3 documents copying a specific version with
``versionId`` in x-amz-copy-source: docs.aws.amazon.com/AmazonS3/latest/userguide/
RestoringPreviousVersions.html, "Restoring previous versions"). Nothing is ever deleted: every
version and delete marker stays, so a restore can itself be undone the same way. A key that did not
exist at ``--at`` (created later) is listed and left alone, since "restoring" it would mean deleting it.

    PYTHONPATH=layers/shared python -m redcap_ctl.file_restore --bucket BUCKET \
        --at 2026-12-01T08:00:00Z [--prefix edocs/] [--dry-run]

The administrator's credentials need s3:ListBucketVersions, s3:GetObjectVersion and s3:PutObject on
the bucket, and the stack's KMS key through S3 (docs/runbook.md "Restore").
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# CopyObject copies at most 5 GB in one request (docs.aws.amazon.com/AmazonS3/latest/API/
# API_CopyObject.html: "You create a copy of your object up to 5 GB in size in a single atomic action").
MAX_COPY_BYTES = 5 * 1024**3

Action = Literal["restore", "created-later", "too-large"]


@dataclass(frozen=True)
class Entry:
    """One version or delete marker of a key, as ListObjectVersions returns it."""

    key: str
    version_id: str
    modified: datetime
    latest: bool
    deleted: bool
    size: int = 0


@dataclass(frozen=True)
class Step:
    action: Action
    key: str
    version_id: str | None
    reason: str


def parse_time(text: str) -> datetime:
    """An ISO-8601 time WITH its zone (a bare time would be read in the machine's zone)."""
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"--at: {text!r} is not an ISO-8601 time such as 2026-12-01T08:00:00Z") from None
    if when.tzinfo is None:
        raise ValueError(f"--at: {text!r} has no time zone; add Z (UTC) or an offset such as +02:00")
    return when.astimezone(UTC)


def list_entries(s3: S3Client, bucket: str, prefix: str) -> list[Entry]:
    entries: list[Entry] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket, Prefix=prefix):
        for v in page.get("Versions", []):
            entries.append(
                Entry(v["Key"], v["VersionId"], v["LastModified"], v["IsLatest"], False, int(v.get("Size", 0)))
            )
        for m in page.get("DeleteMarkers", []):
            entries.append(Entry(m["Key"], m["VersionId"], m["LastModified"], m["IsLatest"], True))
    return entries


def plan(entries: Iterable[Entry], at: datetime) -> list[Step]:
    """What to do so that every key changed after ``at`` reads as it did at ``at``."""
    by_key: dict[str, list[Entry]] = {}
    for e in entries:
        by_key.setdefault(e.key, []).append(e)
    steps: list[Step] = []
    for key in sorted(by_key):
        history = by_key[key]
        latest = next((e for e in history if e.latest), max(history, key=lambda e: e.modified))
        if latest.modified <= at:
            continue  # unchanged since then
        before = [e for e in history if e.modified <= at]
        then = max(before, key=lambda e: e.modified) if before else None
        if then is None or then.deleted:
            steps.append(Step("created-later", key, None, "did not exist then; left in place (never deleted)"))
        elif then.size > MAX_COPY_BYTES:
            steps.append(Step("too-large", key, then.version_id, "over CopyObject's 5 GB; copy this version by hand"))
        else:
            what = "deleted" if latest.deleted else "changed"
            steps.append(Step("restore", key, then.version_id, f"{what} at {latest.modified.isoformat()}"))
    return steps


def apply(s3: S3Client, bucket: str, steps: Sequence[Step]) -> int:
    """Copy each planned version onto its key; returns how many were restored."""
    done = 0
    for step in steps:
        if step.action != "restore" or step.version_id is None:
            continue
        s3.copy_object(
            Bucket=bucket, Key=step.key, CopySource={"Bucket": bucket, "Key": step.key, "VersionId": step.version_id}
        )
        done += 1
    return done


def main(argv: Sequence[str] | None = None, s3: Any = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m redcap_ctl.file_restore", description=__doc__.split("\n")[0])
    parser.add_argument("--bucket", required=True, help="the stack's FileBucketName output")
    parser.add_argument("--at", required=True, help="ISO-8601 time with zone, e.g. 2026-12-01T08:00:00Z")
    parser.add_argument("--prefix", default="", help="only keys under this prefix")
    parser.add_argument("--dry-run", action="store_true", help="list what would be restored; change nothing")
    args = parser.parse_args(argv)
    try:
        at = parse_time(args.at)
    except ValueError as err:
        parser.error(str(err))
    if s3 is None:
        import boto3  # only the CLI needs a real client

        s3 = boto3.client("s3")
    steps = plan(list_entries(s3, args.bucket, args.prefix), at)
    for step in steps:
        version = step.version_id or "-"
        print(f"{step.action:13} {step.key}  version {version}  ({step.reason})")
    wanted = sum(1 for s in steps if s.action == "restore")
    if args.dry_run:
        print(f"dry run: {wanted} object(s) would be restored to their version of {at.isoformat()}")
        return 0
    done = apply(s3, args.bucket, steps)
    print(f"restored {done} object(s) to their version of {at.isoformat()}; nothing was deleted")
    return 1 if any(s.action == "too-large" for s in steps) else 0


if __name__ == "__main__":
    sys.exit(main())
