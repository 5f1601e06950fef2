"""Custom::RedcapImage through the CloudFormation protocol, polls included.

The real handler (``functions/redcap_image/app.py``) runs with moto's S3, ECR, Lambda (layer
versions, crhelper's permissions), EventBridge (crhelper's polling rule) and RDS (the snapshot),
and the CodeBuild emulator (``testkit.emulators.codebuild``) on 127.0.0.1. A poll is what
EventBridge would do: the test reads the rule's target input back from moto and invokes the
handler with it. Responses are the PUTs captured on 127.0.0.1.
"""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws

from redcap_ctl import image_build
from testkit import LambdaContext, load_event, load_handler
from testkit.cfn import ResponseCapture
from testkit.emulators.codebuild import CodeBuildEmulator, EcrPush, Outcome
from testkit.redcap_extensions import LANGUAGE_INI, module_zip
from testkit.redcap_release import write_release_zip

BUCKET = "redcap-releases-123456789012"
EVENT = load_event("redcap_image", "create.json")
PROPS = EVENT["ResourceProperties"]
REPO_URI = PROPS["RepositoryUri"]
REPO = REPO_URI.split("/", 1)[1]
PROJECT = PROPS["ProjectName"]
CLUSTER = PROPS["DbClusterIdentifier"]


class World:
    def __init__(self, app: ModuleType, capture: ResponseCapture, codebuild: CodeBuildEmulator, tmp: Path) -> None:
        self.app, self.capture, self.codebuild, self.tmp = app, capture, codebuild, tmp
        self.s3 = boto3.client("s3")
        self.ecr = boto3.client("ecr")
        self.events = boto3.client("events")
        self.rds = boto3.client("rds")
        self.lambda_ = boto3.client("lambda")
        self.requests = 0

    def upload_release(self, version: str, key: str | None = None) -> str:
        (self.tmp / version).mkdir(exist_ok=True)
        path = write_release_zip(self.tmp / version, version)
        key = key or f"redcap{version}.zip"
        self.s3.upload_file(str(path), BUCKET, key)
        return f"s3://{BUCKET}/{key}"

    def event(self, request_type: str = "Create", **props: str) -> dict[str, Any]:
        event = copy.deepcopy(EVENT)
        self.requests += 1
        event["RequestType"] = request_type
        event["RequestId"] = f"request-{self.requests}"
        event["ResourceProperties"].update(props)
        return event

    def send(self, event: dict[str, Any]) -> dict[str, Any] | None:
        """One invocation; the response it sent to CloudFormation, if any."""
        before = len(self.capture.responses)
        event = copy.deepcopy(event)
        event["ResponseURL"] = self.capture.url()
        self.app.handler(event, LambdaContext())
        return self.capture.responses[-1] if len(self.capture.responses) > before else None

    def rules(self) -> list[dict[str, Any]]:
        return list(self.events.list_rules(NamePrefix="RedcapImage")["Rules"])

    def poll(self) -> dict[str, Any] | None:
        """What EventBridge does every minute: invoke the function with the rule target's input."""
        (rule,) = self.rules()
        assert rule["ScheduleExpression"] == "rate(1 minute)"
        (target,) = self.events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
        assert target["Arn"].endswith(":function:test-function")
        payload = json.loads(target["Input"])
        assert payload["CrHelperPoll"] is True
        return self.send(payload)

    def until_answer(self, limit: int = 10) -> tuple[dict[str, Any], int]:
        for n in range(1, limit + 1):
            answer = self.poll()
            if answer is not None:
                return answer, n
        raise AssertionError(f"no answer after {limit} polls")

    def image_digest(self, tag: str) -> str:
        (detail,) = self.ecr.describe_images(repositoryName=REPO, imageIds=[{"imageTag": tag}])["imageDetails"]
        return str(detail["imageDigest"])


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, cfn_responses: ResponseCapture, tmp_path: Path) -> Iterator[World]:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "redcap-image-test")
    with mock_aws():
        s3, ecr = boto3.client("s3"), boto3.client("ecr")
        s3.create_bucket(Bucket=BUCKET)
        ecr.create_repository(repositoryName=REPO, imageTagMutability="IMMUTABLE")
        lam, iam = boto3.client("lambda"), boto3.client("iam")
        context = io.BytesIO()
        with zipfile.ZipFile(context, "w") as zf:
            zf.writestr("redcap/build.sh", "#!/usr/bin/env bash\n")
        layer = lam.publish_layer_version(LayerName="RedcapBuildContext", Content={"ZipFile": context.getvalue()})
        assert layer["LayerVersionArn"] == PROPS["ContextLayerArn"]
        role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        lam.create_function(
            FunctionName="test-function",
            Runtime="python3.13",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": context.getvalue()},
        )
        boto3.client("rds").create_db_cluster(
            DBClusterIdentifier=CLUSTER, Engine="aurora-mysql", MasterUsername="admin", MasterUserPassword="x" * 16
        )
        emu = CodeBuildEmulator(projects={PROJECT}, on_success=EcrPush(s3, ecr, REPO))
        with emu.serve() as url:
            monkeypatch.setenv("AWS_ENDPOINT_URL_CODEBUILD", url)
            world = World(load_handler("redcap_image"), cfn_responses, emu, tmp_path)
            world.upload_release("15.5.1")
            yield world


def created(world: World) -> dict[str, Any]:
    assert world.send(world.event()) is None
    answer, _ = world.until_answer()
    assert answer["Status"] == "SUCCESS", answer
    return answer


# --- Create -------------------------------------------------------------------------------
def test_create_starts_one_build_polls_and_answers_the_digest_pinned_image(world: World) -> None:
    world.codebuild.default = Outcome(polls=2)
    assert world.send(world.event()) is None, "Create must not answer before the build ends"
    assert len(world.codebuild.started) == 1
    build = world.codebuild.builds[world.codebuild.started[0]]
    assert build.env["REDCAP_SOURCE_ZIP"] == f"s3://{BUCKET}/redcap15.5.1.zip"
    assert build.env["SOURCE_TAG"].startswith("src-")
    assert build.env["IMAGE_PLATFORM"] == "linux/amd64"

    assert world.poll() is None
    assert world.poll() is None
    answer = world.poll()
    assert answer is not None
    assert answer["Status"] == "SUCCESS", answer
    assert len(world.codebuild.started) == 1, "polls never start another build"

    data = answer["Data"]
    assert data["Version"] == "15.5.1"
    tag = data["ImageTag"]
    assert image_build.VERSION_TAG.fullmatch(tag)
    assert data["ImageUri"] == f"{REPO_URI}@{world.image_digest(tag)}"
    assert data["ImageUri"].split("@")[1].startswith("sha256:")
    assert world.image_digest(data["SourceTag"]) == world.image_digest(tag)
    assert answer["PhysicalResourceId"] == f"{REPO_URI}:{tag}"
    assert data["Reused"] == "false"
    assert not {"BuildId", "Stage", "StartedAt", "PhysicalResourceId"} & set(data)
    # crhelper removed its rule and its permission.
    assert world.rules() == []
    with pytest.raises(world.lambda_.exceptions.ResourceNotFoundException):
        world.lambda_.get_policy(FunctionName="test-function")


def test_existing_tag_is_reused_without_a_build(world: World) -> None:
    first = created(world)
    assert len(world.codebuild.started) == 1
    assert world.send(world.event()) is None
    again, polls = world.until_answer()
    assert polls == 1
    assert again["Status"] == "SUCCESS"
    assert len(world.codebuild.started) == 1, "an image with the same source tag is reused"
    assert again["Data"]["ImageUri"] == first["Data"]["ImageUri"]
    assert again["Data"]["Reused"] == "true"


def test_same_zip_uploaded_again_reuses_the_image(world: World) -> None:
    first = created(world)
    same = world.s3.get_object(Bucket=BUCKET, Key="redcap15.5.1.zip")["Body"].read()
    world.s3.put_object(Bucket=BUCKET, Key="redcap15.5.1.zip", Body=same)  # identical bytes: the same ETag
    assert world.send(world.event()) is None
    again, _ = world.until_answer()
    assert again["Data"]["ImageUri"] == first["Data"]["ImageUri"]
    assert len(world.codebuild.started) == 1


# --- Failures -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (Outcome(status="FAILED", phase="BUILD"), "image build FAILED in phase BUILD"),
        (Outcome(status="FAILED", phase="PRE_BUILD", message="curl: (6)"), "FAILED in phase PRE_BUILD: curl: (6)"),
        (Outcome(status="TIMED_OUT", phase="BUILD"), "image build TIMED_OUT in phase BUILD"),
    ],
)
def test_failed_or_timed_out_build_answers_failed_with_phase_and_log(world: World, outcome, expected) -> None:
    world.codebuild.default = outcome
    assert world.send(world.event()) is None
    answer, polls = world.until_answer()
    assert polls == 2
    assert answer["Status"] == "FAILED"
    assert expected in answer["Reason"]
    console = "https://console.aws.amazon.com/cloudwatch/home?region=us-east-1"
    assert f"log: {console}#logEvent:group=/aws/codebuild/{PROJECT};stream=" in answer["Reason"]
    assert len(answer["Reason"]) <= 256
    assert world.rules() == []


def test_a_zip_that_is_not_a_release_fails_the_build_with_build_sh_message(world: World) -> None:
    world.s3.put_object(Bucket=BUCKET, Key="notredcap.zip", Body=b"PK\x05\x06" + b"\0" * 18)
    event = world.event(RedcapSourceZip=f"s3://{BUCKET}/notredcap.zip")
    assert world.send(event) is None
    answer, _ = world.until_answer()
    assert answer["Status"] == "FAILED"
    assert "FAILED in phase BUILD: build.sh: --zip: expected one redcap_v" in answer["Reason"]


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        (f"s3://{BUCKET}/missing.zip", f"RedcapSourceZip: s3://{BUCKET}/missing.zip: no such object"),
        ("s3://no-such-bucket-here/redcap.zip", "RedcapSourceZip: s3://no-such-bucket-here/redcap.zip: no such object"),
        ("https://example.org/redcap.zip", "RedcapSourceZip: must be s3://BUCKET/KEY.zip"),
        (f"s3://{BUCKET}/redcap15.5.1.tar", "RedcapSourceZip: must be s3://BUCKET/KEY.zip"),
    ],
)
def test_bad_zip_location_fails_before_any_build_naming_the_parameter(world: World, location, reason) -> None:
    answer = world.send(world.event(RedcapSourceZip=location))
    assert answer is not None
    assert answer["Status"] == "FAILED"
    assert reason in answer["Reason"]
    assert world.codebuild.started == []
    assert world.rules() == [], "no polling for a request that already failed"


def test_unreadable_zip_names_the_parameter() -> None:
    from botocore.stub import Stubber

    s3 = boto3.client("s3", region_name="us-east-1")
    with Stubber(s3) as stub:
        stub.add_client_error("head_object", "403", "Forbidden", 403)
        with pytest.raises(image_build.InputError, match="RedcapSourceZip: s3://b/k.zip: not readable by the stack"):
            image_build.check_source_zip(s3, image_build.S3Location("b", "k.zip"))


def test_a_build_codebuild_lost_is_stopped_and_answers_timed_out(world: World) -> None:
    world.codebuild.default = Outcome(polls=10_000)
    props = image_build.parse_props(PROPS)
    state = image_build.begin(world.app.aws, props, "r1", None, now=lambda: 1_000.0)
    assert image_build.advance(world.app.aws, props, dict(state), now=lambda: 1_000.0 + 60) is None
    late = 1_000.0 + (40 + 16) * 60
    with pytest.raises(image_build.ImageBuildError, match="TIMED_OUT in phase BUILD: no result in time"):
        image_build.advance(world.app.aws, props, dict(state), now=lambda: late)
    assert world.codebuild.stopped == [state["BuildId"]]


# --- Update: upgrade, snapshot, rollback --------------------------------------------------------
def test_upgrade_snapshots_the_cluster_named_after_both_versions_before_answering(world: World) -> None:
    first = created(world)
    new_zip = world.upload_release("15.6.0")
    update = world.event("Update", RedcapSourceZip=new_zip)
    update["PhysicalResourceId"] = first["PhysicalResourceId"]
    update["OldResourceProperties"] = dict(PROPS)
    assert world.send(update) is None
    answer, _ = world.until_answer()
    assert answer["Status"] == "SUCCESS", answer
    data = answer["Data"]
    assert data["Version"] == "15.6.0"
    assert data["ImageUri"] != first["Data"]["ImageUri"]
    assert data["Snapshot"].startswith(f"{CLUSTER}-redcap-15-5-1-to-15-6-0-")
    (snap,) = world.rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=data["Snapshot"])[
        "DBClusterSnapshots"
    ]
    assert snap["DBClusterIdentifier"] == CLUSTER
    assert len(world.codebuild.started) == 2

    # Rollback: the old zip again reuses the old image (no build) and takes no snapshot (issue 17: snapshots
    # are for upgrades only; this is what CloudFormation's own update rollback sends too).
    back = world.event("Update", RedcapSourceZip=PROPS["RedcapSourceZip"])
    back["PhysicalResourceId"] = answer["PhysicalResourceId"]
    assert world.send(back) is None
    rolled, _ = world.until_answer()
    assert rolled["Data"]["ImageUri"] == first["Data"]["ImageUri"]
    assert rolled["Data"]["Snapshot"] == ""
    assert len(world.codebuild.started) == 2
    manual = world.rds.describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]
    assert [s["DBClusterSnapshotIdentifier"] for s in manual] == [data["Snapshot"]]


def _stack_status(world: World, status: str) -> Stubber:
    """The handler's CloudFormation client answers DescribeStacks with ``status`` (a botocore Stubber)."""
    client = boto3.client("cloudformation")
    stubber = Stubber(client)
    stack = {"StackName": "redcap", "StackId": EVENT["StackId"], "CreationTime": "2026-01-01T00:00:00Z"}
    stubber.add_response(
        "describe_stacks", {"Stacks": [{**stack, "StackStatus": status}]}, {"StackName": EVENT["StackId"]}
    )
    stubber.activate()
    world.app.aws = dataclasses.replace(world.app.aws, cloudformation=client)
    return stubber


def test_cloudformation_update_rollback_takes_no_snapshot(world: World) -> None:
    """Issue 17, item 6: the Update that CloudFormation sends while UPDATE_ROLLBACK_IN_PROGRESS.

    CloudFormation sends the previous properties (the old zip) with the current physical id (the new
    image). After an upgrade that is a step back (the version rule); here the update being undone was
    a downgrade, so the rollback goes forward, and only the stack's status keeps it snapshot-free.
    """
    newer = world.upload_release("15.6.0")
    first = world.send(world.event(RedcapSourceZip=newer))
    assert first is None
    created_newer, _ = world.until_answer()
    down = world.event("Update", RedcapSourceZip=PROPS["RedcapSourceZip"])
    down["PhysicalResourceId"] = created_newer["PhysicalResourceId"]
    assert world.send(down) is None
    downgraded, _ = world.until_answer()
    assert downgraded["Data"]["Version"] == "15.5.1"
    assert downgraded["Data"]["Snapshot"] == ""  # a downgrade is no upgrade

    stubber = _stack_status(world, "UPDATE_ROLLBACK_IN_PROGRESS")
    rollback = world.event("Update", RedcapSourceZip=newer)
    rollback["PhysicalResourceId"] = downgraded["PhysicalResourceId"]
    rollback["OldResourceProperties"] = dict(down["ResourceProperties"])
    assert world.send(rollback) is None
    stubber.assert_no_pending_responses()
    back, _ = world.until_answer()
    assert back["Status"] == "SUCCESS", back
    assert back["Data"]["Version"] == "15.6.0"
    assert back["Data"]["ImageUri"] == created_newer["Data"]["ImageUri"]
    assert back["Data"]["Snapshot"] == ""
    assert world.rds.describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"] == []
    assert len(world.codebuild.started) == 2


def test_the_same_update_outside_a_rollback_is_an_upgrade_and_snapshots(world: World) -> None:
    # The control for the test above: identical requests, the stack UPDATE_IN_PROGRESS.
    first = created(world)
    newer = world.upload_release("15.6.0")
    stubber = _stack_status(world, "UPDATE_IN_PROGRESS")
    up = world.event("Update", RedcapSourceZip=newer)
    up["PhysicalResourceId"] = first["PhysicalResourceId"]
    assert world.send(up) is None
    stubber.assert_no_pending_responses()
    answer, _ = world.until_answer()
    assert answer["Data"]["Snapshot"].startswith(f"{CLUSTER}-redcap-15-5-1-to-15-6-0-")


def test_update_with_the_same_version_takes_no_snapshot(world: World) -> None:
    first = created(world)
    update = world.event("Update", BuildTimeoutMinutes="45")
    update["PhysicalResourceId"] = first["PhysicalResourceId"]
    assert world.send(update) is None
    answer, _ = world.until_answer()
    assert answer["Data"]["Snapshot"] == ""
    assert world.rds.describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"] == []


# --- Delete -------------------------------------------------------------------------------------
def test_delete_leaves_the_images_and_is_idempotent(world: World) -> None:
    first = created(world)
    delete = world.event("Delete")
    delete["PhysicalResourceId"] = first["PhysicalResourceId"]
    for _ in range(2):
        answer = world.send(delete)
        assert answer is not None
        assert answer["Status"] == "SUCCESS"
        assert answer["PhysicalResourceId"] == first["PhysicalResourceId"]
    assert world.image_digest(first["Data"]["ImageTag"]) == first["Data"]["ImageUri"].split("@")[1]
    assert world.rules() == []


def _snapshot_statuses(world: World, monkeypatch: pytest.MonkeyPatch, statuses: list[str]) -> None:
    """RDS reports these statuses for the snapshot, one per describe, before the real one (moto's is instant)."""
    rds = world.app.aws.rds
    real = rds.describe_db_cluster_snapshots

    def describe(**kwargs: Any) -> dict[str, Any]:
        answer = real(**kwargs)
        if statuses and answer["DBClusterSnapshots"]:
            status = statuses.pop(0)
            answer["DBClusterSnapshots"] = [{**s, "Status": status} for s in answer["DBClusterSnapshots"]]
        return answer

    real_create = rds.create_db_cluster_snapshot

    def create(**kwargs: Any) -> dict[str, Any]:
        # AWS answers CreateDBClusterSnapshot with "creating"; moto with "available".
        answer = real_create(**kwargs)
        answer["DBClusterSnapshot"] = {**answer["DBClusterSnapshot"], "Status": "creating"}
        return answer

    monkeypatch.setattr(rds, "describe_db_cluster_snapshots", describe)
    monkeypatch.setattr(rds, "create_db_cluster_snapshot", create)


def test_the_rollout_waits_while_the_snapshot_is_being_created(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    first = created(world)
    # How many polls an upgrade takes when the snapshot is available at once (moto).
    probe = world.event("Update", RedcapSourceZip=world.upload_release("15.5.9", key="probe/redcap15.5.9.zip"))
    probe["PhysicalResourceId"] = first["PhysicalResourceId"]
    assert world.send(probe) is None
    _, base_polls = world.until_answer()
    update = world.event("Update", RedcapSourceZip=world.upload_release("15.6.0"))
    update["PhysicalResourceId"] = first["PhysicalResourceId"]
    assert world.send(update) is None
    _snapshot_statuses(world, monkeypatch, ["creating", "creating", "creating"])
    answer, polls = world.until_answer()
    assert answer["Status"] == "SUCCESS", answer
    assert answer["Data"]["Snapshot"].startswith(f"{CLUSTER}-redcap-15-5-1-to-15-6-0-")
    # One poll at "creating" after the create, one per further "creating", then "available".
    assert polls == base_polls + 4


def test_a_failed_snapshot_fails_the_upgrade_before_the_rollout(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    first = created(world)
    update = world.event("Update", RedcapSourceZip=world.upload_release("15.6.0"))
    update["PhysicalResourceId"] = first["PhysicalResourceId"]
    assert world.send(update) is None
    _snapshot_statuses(world, monkeypatch, ["creating", "failed", "failed", "failed", "failed"])
    answer, _ = world.until_answer()
    assert answer["Status"] == "FAILED"
    assert "before the upgrade is failed" in answer["Reason"]


# --- External modules and language files (issue 18 item 4) ------------------------------------
# The CodeBuild emulator's build downloads ExtensionsS3Prefix from moto's S3 and runs the build's
# own check, containers/redcap/extensions.py, on it (testkit.emulators.codebuild.EcrPush).
EXT_PREFIX = f"s3://{BUCKET}/extensions-2026-12/"


def _put_extension(world: World, name: str, data: bytes | str) -> None:
    world.s3.put_object(Bucket=BUCKET, Key=f"extensions-2026-12/{name}", Body=data)


def _build_with(world: World, request: str = "Create", physical: str | None = None, **props: str) -> dict[str, Any]:
    event = world.event(request, **props)
    if physical:
        event["PhysicalResourceId"] = physical
        event["OldResourceProperties"] = dict(PROPS)
    first = world.send(event)
    if first is not None:
        return first
    answer, _ = world.until_answer()
    return answer


def _baked_into(world: World, answer: dict[str, Any]) -> dict[str, list[str]]:
    push = world.codebuild.on_success
    assert push is not None
    return push.baked[answer["Data"]["ImageTag"]]  # type: ignore[attr-defined,no-any-return]


def test_modules_and_language_files_are_baked_into_the_image(world: World) -> None:
    _put_extension(world, "demo.zip", module_zip())
    _put_extension(world, "French.ini", LANGUAGE_INI)
    _put_extension(world, "", b"")  # the folder marker the S3 console creates: nothing to bake
    answer = _build_with(world, ExtensionsS3Prefix=EXT_PREFIX)
    assert answer["Status"] == "SUCCESS", answer
    (build_id,) = world.codebuild.started
    assert world.codebuild.builds[build_id].env["EXTENSIONS_S3_PREFIX"] == EXT_PREFIX
    baked = _baked_into(world, answer)
    assert baked["modules"] == ["demo_module_v1.0.0"]
    assert baked["languages"] == ["French.ini"]
    assert "modules/demo_module_v1.0.0/config.json" in baked["files"]
    assert "languages/French.ini" in baked["files"]


def test_a_bad_module_zip_fails_the_build_naming_the_key(world: World) -> None:
    _put_extension(world, "demo.zip", module_zip())
    _put_extension(world, "github-download.zip", module_zip("redcap-demo-module-main"))
    answer = _build_with(world, ExtensionsS3Prefix=EXT_PREFIX)
    assert answer["Status"] == "FAILED"
    assert "image build FAILED in phase BUILD" in answer["Reason"]
    assert "; log: https://console.aws.amazon.com/cloudwatch/" in answer["Reason"]
    # The whole line is in the build's log (CloudFormation's reason keeps 250 characters).
    (build_id,) = world.codebuild.started
    message = world.codebuild.builds[build_id].message
    assert f"extensions: {EXT_PREFIX}github-download.zip: the folder 'redcap-demo-module-main' is not" in message
    assert world.ecr.describe_images(repositoryName=REPO)["imageDetails"] == []


def test_the_identity_changes_when_a_module_changes_and_not_otherwise(world: World) -> None:
    _put_extension(world, "demo.zip", module_zip(body="one"))
    first = _build_with(world, ExtensionsS3Prefix=EXT_PREFIX)
    assert first["Status"] == "SUCCESS"
    # Same prefix, same objects: the image is reused, no second build.
    again = _build_with(world, ExtensionsS3Prefix=EXT_PREFIX)
    assert again["Data"]["SourceTag"] == first["Data"]["SourceTag"]
    assert again["Data"]["Reused"] == "true"
    assert len(world.codebuild.started) == 1
    # A changed module: new source tag, new build, new image (content hash) and digest.
    _put_extension(world, "demo.zip", module_zip(body="two"))
    changed = _build_with(world, "Update", first["PhysicalResourceId"], ExtensionsS3Prefix=EXT_PREFIX)
    assert changed["Status"] == "SUCCESS", changed
    assert changed["Data"]["SourceTag"] != first["Data"]["SourceTag"]
    assert changed["Data"]["ImageTag"] != first["Data"]["ImageTag"]
    assert changed["Data"]["ImageUri"] != first["Data"]["ImageUri"]
    assert len(world.codebuild.started) == 2
    # An added language file is a change too; a prefix without extensions is a third identity.
    _put_extension(world, "French.ini", LANGUAGE_INI)
    added = _build_with(world, ExtensionsS3Prefix=EXT_PREFIX)
    assert added["Data"]["SourceTag"] not in {first["Data"]["SourceTag"], changed["Data"]["SourceTag"]}
    plain = _build_with(world)
    assert plain["Data"]["SourceTag"] not in {
        first["Data"]["SourceTag"],
        changed["Data"]["SourceTag"],
        added["Data"]["SourceTag"],
    }
    assert "EXTENSIONS_S3_PREFIX" not in world.codebuild.builds[world.codebuild.started[-1]].env


def test_extensions_are_baked_again_into_a_redcap_upgrade(world: World) -> None:
    _put_extension(world, "demo.zip", module_zip())
    first = _build_with(world, ExtensionsS3Prefix=EXT_PREFIX)
    new_zip = world.upload_release("15.6.0")
    upgraded = _build_with(
        world, "Update", first["PhysicalResourceId"], ExtensionsS3Prefix=EXT_PREFIX, RedcapSourceZip=new_zip
    )
    assert upgraded["Status"] == "SUCCESS", upgraded
    assert upgraded["Data"]["Version"] == "15.6.0"
    assert _baked_into(world, upgraded)["modules"] == ["demo_module_v1.0.0"]


def test_no_prefix_keeps_the_source_tag_it_always_had() -> None:
    location = image_build.S3Location("b", "redcap15.5.1.zip")
    plain = image_build.source_tag("etag", "sha", location, "linux/amd64")
    assert image_build.source_tag("etag", "sha", location, "linux/amd64", "") == plain
    assert image_build.source_tag("etag", "sha", location, "linux/amd64", "abc") != plain


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("s3://bucket/extensions", "one folder, ending in /"),
        ("s3://bucket/a/b/", "one folder, ending in /"),
        ("s3://bucket/", "one folder, ending in /"),
        ("https://bucket/extensions/", "one folder, ending in /"),
        ("s3://missing-bucket-0000/extensions/", "no such bucket"),
    ],
)
def test_a_bad_prefix_fails_before_any_build_naming_the_parameter(world: World, value: str, reason: str) -> None:
    answer = _build_with(world, ExtensionsS3Prefix=value)
    assert answer["Status"] == "FAILED"
    assert "ExtensionsS3Prefix" in answer["Reason"]
    assert reason in answer["Reason"]
    assert world.codebuild.started == []
