"""Restore in the stack (issue 18 item 6): DbSnapshotIdentifier, DbSaltSecretArn and their rule.

The cluster properties follow CloudFormation's AWS::RDS::DBCluster reference (SnapshotIdentifier: leave
MasterUsername, MasterUserPassword and, for an encrypted snapshot, StorageEncrypted out); the salt the
service reads is the retained one of the deployment that made the snapshot.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from testkit.template import Rendered, load

from .test_foundation_rules import violations

SNAPSHOT = "redcap-prod-final-2026-12-01"
SALT_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:DbSaltSecret-AbCdEf0123-xYz123"
BASE = {"DomainName": "redcap.example.org", "ImageUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/redcap:15.5.1"}
RESTORE = {**BASE, "DbSnapshotIdentifier": SNAPSHOT, "DbSaltSecretArn": SALT_ARN}


def _param(name: str) -> dict[str, Any]:
    return load()["Parameters"][name]


@pytest.mark.parametrize(
    ("name", "good", "bad"),
    [
        (
            "DbSnapshotIdentifier",
            ["", SNAPSHOT, "arn:aws:rds:us-east-1:123456789012:cluster-snapshot:rds:redcap-2026-12-01-03-10"],
            [
                "1starts-with-a-digit",
                "has space",
                "a" * 64,
                "arn:aws:rds:us-east-1:123456789012:snapshot:instance-snap",
            ],
        ),
        (
            "DbSaltSecretArn",
            ["", SALT_ARN],
            [
                "DbSaltSecret",
                "arn:aws:kms:us-east-1:123456789012:key/abc",
                "arn:aws:secretsmanager:us-east-1:1:secret:x",
            ],
        ),
    ],
)
def test_parameters_default_to_no_restore_and_refuse_typos(name: str, good: list[str], bad: list[str]) -> None:
    param = _param(name)
    assert param["Default"] == ""
    for value in good:
        assert re.fullmatch(param["AllowedPattern"], value), value
    for value in bad:
        assert not re.fullmatch(param["AllowedPattern"], value), value


def test_a_restore_without_the_old_salt_is_refused_before_anything_is_made() -> None:
    failed = violations(DbSnapshotIdentifier=SNAPSHOT)
    assert list(failed) == ["RestoreNeedsTheOldSalt"]
    assert "set DbSaltSecretArn" in failed["RestoreNeedsTheOldSalt"][0]
    assert violations(DbSnapshotIdentifier=SNAPSHOT, DbSaltSecretArn=SALT_ARN) == {}
    # The old salt alone (no snapshot) is allowed: REDCap then only needs it to match its database.
    assert violations(DbSaltSecretArn=SALT_ARN) == {}


def test_a_new_cluster_is_made_as_before() -> None:
    props = Rendered(**BASE).props("DbCluster")
    assert "SnapshotIdentifier" not in props
    assert (props["DatabaseName"], props["MasterUsername"], props["StorageEncrypted"]) == (
        "redcap",
        "redcap_admin",
        True,
    )


def test_a_restore_leaves_out_what_the_snapshot_decides_and_keeps_the_stack_key() -> None:
    rendered = Rendered(**RESTORE)
    props = rendered.props("DbCluster")
    assert props["SnapshotIdentifier"] == SNAPSHOT
    for inherited in ("MasterUsername", "MasterUserPassword", "StorageEncrypted", "DatabaseName"):
        assert inherited not in props, inherited
    assert props["KmsKeyId"] == {"Fn::GetAtt": ["KmsKey", "Arn"]}
    # Prod still snapshots the cluster it would lose on a replacement.
    res = load()["Resources"]["DbCluster"]
    assert res["UpdateReplacePolicy"] == {"Fn::If": ["IsProd", "Snapshot", "Delete"]}


@pytest.mark.parametrize("compute", ["AppRunner", "EcsExpress"])
def test_the_service_reads_the_restored_salt_and_may_decrypt_only_that_secret(compute: str) -> None:
    rendered = Rendered(**RESTORE, ComputeType=compute)
    assert "DbSaltSecret" not in rendered.resources
    if compute == "AppRunner":
        config = rendered.props("AppRunnerService")["SourceConfiguration"]["ImageRepository"]["ImageConfiguration"]
        salt = {s["Name"]: s["Value"] for s in config["RuntimeEnvironmentSecrets"]}["DB_SALT"]
        roles = ["AppRunnerInstanceRole"]
    else:
        container = rendered.props("ExpressService")["PrimaryContainer"]
        salt = {s["Name"]: s["ValueFrom"] for s in container["Secrets"]}["DB_SALT"]
        roles = ["ExpressExecutionRole", "ExpressTaskRole"]
    assert salt == SALT_ARN
    for role in roles:
        statements = rendered.props(role)["Policies"][0]["PolicyDocument"]["Statement"]
        assert any(
            SALT_ARN in json.dumps(s["Resource"]) for s in statements if s["Action"] == "secretsmanager:GetSecretValue"
        )
        (decrypt,) = [s for s in statements if s.get("Sid") == "DecryptTheRestoredSalt"]
        assert decrypt["Action"] == "kms:Decrypt"
        assert decrypt["Condition"]["StringEquals"]["kms:EncryptionContext:SecretARN"] == SALT_ARN
        assert "kms:ViaService" in decrypt["Condition"]["StringEquals"]


def test_without_a_restore_the_stack_makes_its_own_salt_and_no_extra_grant() -> None:
    rendered = Rendered(**BASE)
    assert "DbSaltSecret" in rendered.resources
    text = json.dumps(rendered.props("AppRunnerInstanceRole"))
    assert "DecryptTheRestoredSalt" not in text
    assert rendered.outputs["DbSaltSecretArn"]["Value"] == {"Ref": "DbSaltSecret"}


def test_the_database_resource_sees_the_snapshot_to_refuse_a_change() -> None:
    props = Rendered(**RESTORE).props("RedcapDatabase")
    assert props["SnapshotIdentifier"] == SNAPSHOT
    statements = Rendered(**RESTORE).props("DatabaseSetupFunctionRole")["Policies"][0]["PolicyDocument"]["Statement"]
    (status,) = [s for s in statements if s.get("Sid") == "ReadThisStacksStatus"]
    assert (status["Action"], status["Resource"]) == ("cloudformation:DescribeStacks", {"Ref": "AWS::StackId"})


def test_the_runbook_walks_the_restore_with_the_messages_the_code_prints() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    runbook = (root / "docs" / "runbook.md").read_text(encoding="utf-8")
    section = runbook[runbook.index("## 11. Restore") : runbook.index("## 12. Delete")]
    unfolded = " ".join(section.split())
    install = (root / "containers/redcap/rootfs/opt/redcap-image/lib/install.php").read_text(encoding="utf-8")
    database = (root / "layers/shared/redcap_ctl/database.py").read_text(encoding="utf-8")
    # The boot's error and the custom resource's refusal, as the code words them.
    assert "DB_SALT is not the salt this database was written with" in install
    assert "RcWrongSalt: DB_SALT is not the salt this database was written with" in unfolded
    assert "const RC_SALT_FINGERPRINT_ROW = 'salt_fingerprint';" in install
    assert "(row `salt_fingerprint`)" in unfolded
    assert "DbSnapshotIdentifier may not change (that replaces the Aurora cluster); set it back to" in database
    assert (
        "SnapshotIdentifier: DbSnapshotIdentifier may not change (that replaces the Aurora cluster); set it back to"
        in unfolded
    )
    assert "RestoreNeedsTheOldSalt" in unfolded
    assert "RestoreNeedsTheOldSalt" in load()["Rules"]
    assert "DecryptTheRestoredSalt" in unfolded
    assert "python -m redcap_ctl.file_restore" in unfolded
    assert "--dry-run" in unfolded
    assert (root / "layers/shared/redcap_ctl/file_restore.py").exists()
    assert "make local ONLY=restore" in unfolded
