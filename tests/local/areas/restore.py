"""Restore (docs/runbook.md "11. Restore"), walked against moto: a new stack from an old one's snapshot.

The old deployment (its cluster, snapshot, retained salt secret and versioned file bucket) is made in
moto; the stack is rendered again with DbSnapshotIdentifier and DbSaltSecretArn, its cluster restored
with moto's RestoreDBClusterFromSnapshot from the rendered properties (CloudFormation's part), and the
real Custom::RedcapDatabase handler runs against it, then refuses a changed snapshot. The image's salt
check itself runs for real in tests/image/test_restore_salt.py; files come back with
``python -m redcap_ctl.file_restore``.
"""

from __future__ import annotations

import contextlib
import io
import time
from datetime import UTC, datetime
from typing import Any

from local.areas import database
from local.bench_case import BenchCase
from local.runner import Run, StepFailed, cfn_success, exists, invoke
from local.scenarios import STACK_PARAMS, Local
from local.stack import Stack
from redcap_ctl import file_restore
from testkit.cfn import ResponseCapture, capture_cfn_responses

RESOURCE = "Restore"
OLD_STACK = "redcap-old"
OLD_CLUSTER = "redcap-old-dbcluster"
SNAPSHOT = "redcap-old-final"
OLD_SALT = "old-deployment-salt-" + "0123456789abcdef"
BUCKET = "redcap-old-filebucket"


def _old_deployment(local: Local) -> dict[str, str]:
    """What a deleted prod stack leaves (docs/deploy.md "What a delete leaves"): snapshot, salt, bucket."""
    rds = local.client("rds")
    key = local.client("kms").create_key(Description=f"REDCap prod ({OLD_STACK})")["KeyMetadata"]["Arn"]
    rds.create_db_cluster(
        DBClusterIdentifier=OLD_CLUSTER,
        Engine="aurora-mysql",
        EngineVersion="8.0.mysql_aurora.3.08.2",
        DatabaseName="redcap",
        MasterUsername="redcap_admin",
        # Not ManageMasterUserPassword as the stack has it: moto 5.2.5's RestoreDBClusterFromSnapshot copies
        # the source cluster's config and fails on a managed one (KeyError '_master_user_password' in
        # moto/rds/models.py DBCluster.get_cfg). The restore itself does not depend on it.
        MasterUserPassword="local-only-password",
        StorageEncrypted=True,
        KmsKeyId=key,
    )
    rds.create_db_cluster_snapshot(DBClusterIdentifier=OLD_CLUSTER, DBClusterSnapshotIdentifier=SNAPSHOT)
    salt = local.client("secretsmanager").create_secret(
        Name=f"DbSaltSecret-{OLD_STACK}",
        Description=f"REDCap salt of {OLD_STACK} (never rotated)",
        SecretString=OLD_SALT,
    )["ARN"]
    return {"key": key, "salt": salt}


def _restored_stack(local: Local, salt_arn: str) -> Stack:
    compute = str(local.stack.rendered.params.get("ComputeType", "AppRunner"))
    restored = Stack(**STACK_PARAMS, ComputeType=compute, DbSnapshotIdentifier=SNAPSHOT, DbSaltSecretArn=salt_arn)
    # Everything else as the local stack made it; the cluster is the restored one (below).
    restored.physical.update(local.stack.physical)
    return restored


def scenario(local: Local, run: Run) -> None:
    missing = exists("layers/shared/redcap_ctl/file_restore.py", "functions/database_setup/app.py")
    if missing:
        run.unavailable(RESOURCE, "old deployment", missing)
        return
    state: dict[str, Any] = {}

    def old_deployment() -> str:
        state.update(_old_deployment(local))
        return f"cluster {OLD_CLUSTER}, snapshot {SNAPSHOT}, retained salt secret, KMS key"

    if not run.step(RESOURCE, "old deployment: snapshot and retained salt", old_deployment):
        return

    def find_the_salt() -> str:
        # Runbook step 2, the old stack deleted: its salt secret's description names it.
        found = local.client("secretsmanager").list_secrets(
            Filters=[{"Key": "description", "Values": [f"REDCap salt of {OLD_STACK}"]}]
        )["SecretList"]
        arns = [s["ARN"] for s in found]
        if arns != [state["salt"]]:
            raise StepFailed(f"list-secrets by description found {arns}, not the retained salt")
        return "aws secretsmanager list-secrets --filters Key=description,... -> DbSaltSecretArn"

    run.step(RESOURCE, "runbook step 2: find the old salt", find_the_salt)

    def restore_cluster() -> str:
        database.provision(local)  # the local stack's shared pieces (compute, secrets, function ARNs)
        restored = _restored_stack(local, state["salt"])
        props = restored.props("DbCluster")
        inherited = {"MasterUsername", "MasterUserPassword", "StorageEncrypted", "DatabaseName"} & set(props)
        if props.get("SnapshotIdentifier") != SNAPSHOT or inherited:
            raise StepFailed(
                f"DbCluster: SnapshotIdentifier {props.get('SnapshotIdentifier')!r}, inherited {inherited}"
            )
        # CloudFormation's part: restore with the rendered properties, the new stack's key included.
        new_key = restored.value(props["KmsKeyId"], "DbCluster.KmsKeyId")
        cluster = local.client("rds").restore_db_cluster_from_snapshot(
            DBClusterIdentifier="redcap-local-restored",
            SnapshotIdentifier=props["SnapshotIdentifier"],
            Engine=props["Engine"],
            EngineVersion=restored.value(props["EngineVersion"], "DbCluster.EngineVersion"),
            KmsKeyId=new_key,
            EnableIAMDatabaseAuthentication=True,
        )["DBCluster"]
        if cluster["MasterUsername"] != "redcap_admin":
            raise StepFailed(f"restored master user {cluster['MasterUsername']!r}, not the snapshot's redcap_admin")
        restored.physical["DbCluster"] = cluster["DBClusterIdentifier"]
        restored.physical["DbCluster.DBClusterArn"] = cluster["DBClusterArn"]
        state["restored"] = restored
        return f"{cluster['DBClusterIdentifier']} from {SNAPSHOT}: master user {cluster['MasterUsername']} (inherited)"

    if not run.step(RESOURCE, "runbook step 4: new stack restores the cluster", restore_cluster):
        return
    restored: Stack = state["restored"]

    def service_reads_the_old_salt() -> str:
        if restored.has("AppRunnerService"):
            config = restored.props("AppRunnerService")["SourceConfiguration"]["ImageRepository"]
            secrets = {s["Name"]: s["Value"] for s in config["ImageConfiguration"]["RuntimeEnvironmentSecrets"]}
        else:
            secrets = {
                s["Name"]: s["ValueFrom"] for s in restored.props("ExpressService")["PrimaryContainer"]["Secrets"]
            }
        arn = restored.value(secrets["DB_SALT"], "DB_SALT")
        value = local.client("secretsmanager").get_secret_value(SecretId=arn)["SecretString"]
        if restored.has("DbSaltSecret") or value != OLD_SALT:
            raise StepFailed("the restored service does not read the old deployment's salt")
        return "DB_SALT = the retained secret of the old deployment; no new DbSaltSecret"

    run.step(RESOURCE, "runbook step 4: the service reads the old salt", service_reads_the_old_salt)

    env = restored.function_env(database.FUNCTION_ID)
    with capture_cfn_responses() as capture:

        def event(request: str, old: dict[str, Any] | None = None) -> dict[str, Any]:
            ev = restored.cfn_event("database_setup", "create_database.json", "RedcapDatabase")
            ev |= {"RequestType": request, "ResponseURL": capture.url(f"restore-{request.lower()}")}
            ev["StackId"] = restored.pseudo["AWS::StackId"]
            if old is not None:
                ev |= {"PhysicalResourceId": "redcap/redcap_iam", "OldResourceProperties": old}
            return ev

        def database_on_the_restored_cluster() -> str:
            invoke("database_setup", event("Create"), env)
            data = cfn_success(capture).get("Data", {})
            return f"schema {data.get('DatabaseName')} and users, idempotently, on the restored cluster"

        run.step(RESOURCE, "Custom::RedcapDatabase on the restored cluster", database_on_the_restored_cluster)

        def snapshot_change_refused() -> str:
            current = event("Create")["ResourceProperties"]
            changed = event("Update", old=current)
            changed["ResourceProperties"]["SnapshotIdentifier"] = "redcap-other-snapshot"
            invoke("database_setup", changed, env)
            answer = capture.last
            if answer["Status"] != "FAILED" or "DbSnapshotIdentifier may not change" not in answer.get("Reason", ""):
                raise StepFailed(f"a changed DbSnapshotIdentifier was not refused: {answer}")
            return f"refused as expected: {answer['Reason'][:80]}..."

        run.step(RESOURCE, "a later DbSnapshotIdentifier change is refused", snapshot_change_refused)

    def files_come_back() -> str:
        s3 = local.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        s3.put_object(Bucket=BUCKET, Key="edocs/consent.pdf", Body=b"signed")
        s3.put_object(Bucket=BUCKET, Key="edocs/photo.jpg", Body=b"photo")
        time.sleep(1.1)  # S3's LastModified has one-second resolution
        point = datetime.now(UTC).replace(microsecond=0).isoformat()
        time.sleep(1.1)
        s3.put_object(Bucket=BUCKET, Key="edocs/consent.pdf", Body=b"overwritten")
        s3.delete_object(Bucket=BUCKET, Key="edocs/photo.jpg")
        argv = ["--bucket", BUCKET, "--at", point]
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            if file_restore.main([*argv, "--dry-run"], s3=s3) != 0:
                raise StepFailed(f"dry run failed: {out.getvalue()}")
            if s3.get_object(Bucket=BUCKET, Key="edocs/consent.pdf")["Body"].read() != b"overwritten":
                raise StepFailed("the dry run changed a file")
            if file_restore.main(argv, s3=s3) != 0:
                raise StepFailed(f"restore failed: {out.getvalue()}")
        got = {k: s3.get_object(Bucket=BUCKET, Key=k)["Body"].read() for k in ("edocs/consent.pdf", "edocs/photo.jpg")}
        if got != {"edocs/consent.pdf": b"signed", "edocs/photo.jpg": b"photo"}:
            raise StepFailed(f"files after the restore: {got}")
        return "dry run listed 2, restore copied 2 versions back, nothing deleted"

    run.step(RESOURCE, "file restore: --dry-run, then restore", files_come_back)


def bench_cases(local: Local, capture: ResponseCapture) -> list[BenchCase]:
    # No function of its own: Custom::RedcapDatabase's cold start is in the database area.
    del local, capture
    return []
