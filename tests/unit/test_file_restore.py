"""File restore (redcap_ctl.file_restore): earlier versions of the versioned file bucket come back.

The plan is checked on exact timestamps; the CLI runs against moto's S3 with versioning, where a
second passes between the writes (S3's LastModified has one-second resolution).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from redcap_ctl.file_restore import MAX_COPY_BYTES, Entry, main, parse_time, plan

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def _at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_plan_restores_changed_and_deleted_keys_and_never_deletes_new_ones() -> None:
    entries = [
        # changed after the point in time: v1 comes back
        Entry("edocs/a.pdf", "a2", _at(10), True, False, 5),
        Entry("edocs/a.pdf", "a1", _at(-10), False, False, 4),
        # deleted after it: v1 comes back over the delete marker
        Entry("edocs/b.pdf", "bm", _at(5), True, True),
        Entry("edocs/b.pdf", "b1", _at(-5), False, False, 3),
        # unchanged since: nothing to do
        Entry("edocs/c.pdf", "c1", _at(-1), True, False, 1),
        # created after: left alone
        Entry("edocs/d.pdf", "d1", _at(1), True, False, 1),
        # deleted before, re-created after: it did not exist then; left alone
        Entry("edocs/e.pdf", "e2", _at(3), True, False, 1),
        Entry("edocs/e.pdf", "em", _at(-3), False, True),
        Entry("edocs/e.pdf", "e1", _at(-30), False, False, 1),
    ]
    steps = {s.key: s for s in plan(entries, T0)}
    assert set(steps) == {"edocs/a.pdf", "edocs/b.pdf", "edocs/d.pdf", "edocs/e.pdf"}
    assert (steps["edocs/a.pdf"].action, steps["edocs/a.pdf"].version_id) == ("restore", "a1")
    assert (steps["edocs/b.pdf"].action, steps["edocs/b.pdf"].version_id) == ("restore", "b1")
    assert steps["edocs/b.pdf"].reason.startswith("deleted at")
    assert steps["edocs/d.pdf"].action == steps["edocs/e.pdf"].action == "created-later"


def test_plan_names_a_version_too_large_for_one_copy() -> None:
    entries = [
        Entry("big.zip", "v2", _at(1), True, False, 1),
        Entry("big.zip", "v1", _at(-1), False, False, MAX_COPY_BYTES + 1),
    ]
    (step,) = plan(entries, T0)
    assert (step.action, step.version_id) == ("too-large", "v1")


@pytest.mark.parametrize(
    ("text", "problem"),
    [("2026-12-01T08:00:00", "no time zone"), ("yesterday", "not an ISO-8601 time")],
)
def test_the_time_must_be_exact(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_time(text)


@pytest.fixture
def bucket() -> Iterator[tuple[Any, str]]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="redcap-files")
        s3.put_bucket_versioning(Bucket="redcap-files", VersioningConfiguration={"Status": "Enabled"})
        yield s3, "redcap-files"


def _versions(s3: Any, bucket: str) -> int:
    page = s3.list_object_versions(Bucket=bucket)
    return len(page.get("Versions", [])) + len(page.get("DeleteMarkers", []))


def test_cli_dry_run_lists_then_restore_brings_the_files_back_and_keeps_every_version(
    bucket: tuple[Any, str], capsys: pytest.CaptureFixture[str]
) -> None:
    s3, name = bucket
    s3.put_object(Bucket=name, Key="edocs/consent.pdf", Body=b"signed consent")
    s3.put_object(Bucket=name, Key="edocs/photo.jpg", Body=b"photo")
    s3.put_object(Bucket=name, Key="edocs/kept.txt", Body=b"untouched")
    time.sleep(1.1)
    point = datetime.now(UTC).replace(microsecond=0)
    time.sleep(1.1)
    # The incident: one file overwritten, one deleted, one new file uploaded.
    s3.put_object(Bucket=name, Key="edocs/consent.pdf", Body=b"overwritten by mistake")
    s3.delete_object(Bucket=name, Key="edocs/photo.jpg")
    s3.put_object(Bucket=name, Key="edocs/new.txt", Body=b"uploaded after")
    before = _versions(s3, name)

    argv = ["--bucket", name, "--at", point.isoformat().replace("+00:00", "Z"), "--prefix", "edocs/"]
    assert main([*argv, "--dry-run"], s3=s3) == 0
    out = capsys.readouterr().out
    assert "restore       edocs/consent.pdf" in out
    assert "restore       edocs/photo.jpg" in out
    assert "created-later edocs/new.txt" in out
    assert "kept.txt" not in out
    assert "dry run: 2 object(s) would be restored" in out
    assert _versions(s3, name) == before  # the dry run changed nothing

    assert main(argv, s3=s3) == 0
    assert "restored 2 object(s)" in capsys.readouterr().out
    get = s3.get_object
    assert get(Bucket=name, Key="edocs/consent.pdf")["Body"].read() == b"signed consent"
    assert get(Bucket=name, Key="edocs/photo.jpg")["Body"].read() == b"photo"
    assert get(Bucket=name, Key="edocs/new.txt")["Body"].read() == b"uploaded after"
    # Two new versions on top, nothing removed: the mistake itself can still be read back.
    assert _versions(s3, name) == before + 2
