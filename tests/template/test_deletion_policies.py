"""Issue 17, item 3: what stays after a delete is chosen, per environment, and docs/deploy.md lists exactly it."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

from testkit import ROOT
from testkit.template import Rendered

ZIP = "s3://releases-bucket/redcap15.5.1.zip"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/redcap:15.5.1"
# Every compute type and image mode, so that conditional resources are all seen.
VARIANTS: list[dict[str, Any]] = [
    {"ComputeType": compute, **image}
    for compute, image in itertools.product(
        ["AppRunner", "EcsExpress"], [{"ImageUri": IMAGE}, {"ImageUri": "", "RedcapSourceZip": ZIP}]
    )
]
AUDIT_LOG_GROUPS = ["FlowLogGroup", "WafLogGroup", "ExpressLogGroup", "RedcapImageBuildLogGroup"]
DEPLOY_MD = ROOT / "docs" / "deploy.md"


def _kept(env: str) -> set[str]:
    """Logical ids a delete of ``env`` leaves (DeletionPolicy Retain, or Snapshot: a final snapshot)."""
    kept: set[str] = set()
    for variant in VARIANTS:
        rendered = Rendered(Environment=env, **variant)
        for name, resource in rendered.resources.items():
            if resource.get("DeletionPolicy", "Delete") in ("Retain", "Snapshot"):
                kept.add(name)
    return kept


def _resource(env: str, name: str) -> dict[str, Any]:
    for variant in VARIANTS:
        rendered = Rendered(Environment=env, **variant)
        if name in rendered.resources:
            return rendered.resource(name)
    raise AssertionError(f"{name} is in no {env} rendering")


@pytest.mark.parametrize(("env", "policy", "empty_on_delete"), [("dev", "Delete", True), ("prod", "Retain", False)])
def test_ecr_repository_goes_with_its_images_in_dev_and_stays_in_prod(
    env: str, policy: str, empty_on_delete: bool
) -> None:
    repository = _resource(env, "RedcapImageRepository")
    assert repository["DeletionPolicy"] == policy
    assert repository["UpdateReplacePolicy"] == policy
    assert repository["Properties"]["EmptyOnDelete"] is empty_on_delete


@pytest.mark.parametrize(("env", "policy"), [("dev", "Delete"), ("prod", "Retain")])
@pytest.mark.parametrize("name", AUDIT_LOG_GROUPS)
def test_audit_log_groups_are_retained_in_prod_only(env: str, policy: str, name: str) -> None:
    group = _resource(env, name)
    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["DeletionPolicy"] == policy
    assert group["UpdateReplacePolicy"] == policy


def test_dev_has_no_access_logging_to_race_its_delete() -> None:
    for variant in VARIANTS:
        dev = Rendered(Environment="dev", **variant)
        assert not {"LogBucket", "LogBucketPolicy"} & set(dev.resources)
        assert "LoggingConfiguration" not in dev.props("FileBucket")
        assert dev.props("DevStackCleanup")["Buckets"] == [{"Ref": "FileBucket"}]
        cleanup_grants = str(dev.props("DevStackCleanupFunctionRole")["Policies"])
        assert "LogBucket" not in cleanup_grants
        assert "PutBucketLogging" not in cleanup_grants
    prod = Rendered(Environment="prod")
    assert prod.props("FileBucket")["LoggingConfiguration"]["DestinationBucketName"] == {"Ref": "LogBucket"}
    assert prod.resource("LogBucket")["DeletionPolicy"] == "Retain"


def test_what_dev_keeps_is_only_the_key_and_the_salt() -> None:
    assert _kept("dev") == {"KmsKey", "DbSaltSecret"}


def _documented() -> dict[str, set[str]]:
    """The logical ids in the first column of the two tables under "What a delete leaves"."""
    text = DEPLOY_MD.read_text(encoding="utf-8")
    section = text.split("\n## What a delete leaves\n", 1)[1].split("\n## ", 1)[0]
    dev_part, prod_part = section.split("\n### After deleting prod\n", 1)
    dev_part = dev_part.split("\n### After deleting dev\n", 1)[1]

    def ids(part: str) -> set[str]:
        found = set()
        for line in part.splitlines():
            match = re.match(r"^\| `([A-Za-z0-9]+)`", line)
            if match:
                found.add(match.group(1))
        return found

    dev = ids(dev_part)
    return {"dev": dev, "prod": dev | ids(prod_part)}


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_deploy_md_lists_exactly_what_the_template_keeps(env: str) -> None:
    assert _documented()[env] == _kept(env)


def test_deploy_md_names_the_leftovers_no_stack_delete_removes() -> None:
    text = DEPLOY_MD.read_text(encoding="utf-8")
    section = text.split("\n## What a delete leaves\n", 1)[1]
    # Created outside CloudFormation's delete: pre-upgrade snapshots and the services' own log groups.
    for leftover in ("-redcap-<old>-to-<new>-", "/aws/rds/cluster/<cluster>/", "/aws/apprunner/", "EmptyOnDelete"):
        assert leftover in section, leftover
    # Every row says what it costs and how to remove it.
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| Left")]
    rows = [row for row in rows if not set(row) <= set("|- ")]
    assert rows
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 4, row
        assert "USD" in cells[2] or "pricing" in cells[2], row
        assert "aws " in cells[3] or "see [" in cells[3] or "console" in cells[3], row
