"""Custom::GuardDutyProtection end to end through the CloudFormation protocol.

The real handler (``functions/guardduty/app.py``) gets events from
``events/guardduty/``; its answer is the PUT captured on 127.0.0.1. GuardDuty
is moto's, corrected where moto differs from AWS so no test leans on moto's
leniency:

- AWS allows one detector per account and Region; moto allows more. The
  ``World`` fixture makes a second CreateDetector fail as AWS does.
- AWS merges a partial feature list in UpdateDetector; moto replaces the whole
  list. The fixture merges by name, as AWS does, and every test also asserts on
  the exact requests the handler SENT (``World.sent``), which is where "only
  the changed features" is proven, independent of either behaviour.
- AWS's CreateDetector enables every unlisted feature except runtime
  monitoring; the fixture does the same, so "exactly the listed features" is
  really tested.
- moto has no TagResource/UntagResource for GuardDuty; the fixture answers them
  against moto's detector (the ledger the handler keeps).
Where moto cannot say something at all (a member account refused by its
administrator, access denied, an unsupported Region), botocore's Stubber does.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from datetime import datetime
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from botocore.stub import Stubber
from moto import mock_aws
from moto.guardduty import models as gd_models

from testkit import LambdaContext, load_event, load_handler
from testkit.cfn import ResponseCapture, capture_cfn_responses
from testkit.moto_guardduty import ALL_AT_CREATE, aws_create_detector, aws_update_detector

ACCOUNT = "123456789012"
REGION = "us-east-1"
DEFAULT = {"S3_DATA_EVENTS", "RDS_LOGIN_EVENTS", "LAMBDA_NETWORK_LOGS"}
RUNTIME_WITH_AGENTS: dict[str, Any] = {
    "name": "RUNTIME_MONITORING",
    "status": "ENABLED",
    "additionalConfiguration": [
        {"name": "EKS_ADDON_MANAGEMENT", "status": "ENABLED"},
        {"name": "ECS_FARGATE_AGENT_MANAGEMENT", "status": "DISABLED"},
    ],
}


class World:
    def __init__(self, app: ModuleType, capture: ResponseCapture, monkeypatch: pytest.MonkeyPatch) -> None:
        self.capture = capture
        monkeypatch.setattr(
            gd_models.GuardDutyBackend,
            "create_detector",
            aws_create_detector(gd_models.GuardDutyBackend.create_detector),
        )
        monkeypatch.setattr(gd_models.Detector, "update", aws_update_detector(gd_models.Detector.update))
        gd_models.guardduty_backends[ACCOUNT].reset()
        self.app = app
        self.gd = app.GUARDDUTY
        self.sent: list[tuple[str, dict[str, Any]]] = []
        # moto answers GetAdministratorAccount in a shape botocore cannot read; a member account's
        # answer (documented in the GuardDuty API reference) is given here instead.
        self.administrator: str | None = None
        self._hooks = [
            ("before-parameter-build.guardduty", self._record),
            ("before-call.guardduty.TagResource", self._tag),
            ("before-call.guardduty.UntagResource", self._untag),
            ("before-call.guardduty.GetAdministratorAccount", self._administrator),
        ]
        for name, hook in self._hooks:
            self.gd.meta.events.register(name, hook)

    def close(self) -> None:
        for name, hook in self._hooks:
            self.gd.meta.events.unregister(name, hook)

    # -- the emulation -----------------------------------------------------------------
    @property
    def backend(self) -> Any:
        return gd_models.guardduty_backends[ACCOUNT][REGION]

    def _record(self, params: dict[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        self.sent.append((model.name, copy.deepcopy(params)))
        context["gd_params"] = copy.deepcopy(params)

    def _detector_for(self, arn: str) -> Any:
        prefix = f"arn:aws:guardduty:{REGION}:{ACCOUNT}:detector/"
        assert arn.startswith(prefix), arn
        return self.backend.get_detector(arn[len(prefix) :])

    def _tag(self, context: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        params = context["gd_params"]
        self._detector_for(params["ResourceArn"]).tags.update(params["Tags"])
        return SimpleNamespace(status_code=204, headers={}), {"ResponseMetadata": {"HTTPStatusCode": 204}}

    def _administrator(self, **_: Any) -> tuple[Any, dict[str, Any]] | None:
        if self.administrator is None:
            return None
        answer = {"Administrator": {"AccountId": self.administrator, "RelationshipStatus": "Enabled"}}
        return SimpleNamespace(status_code=200, headers={}), answer

    def _untag(self, context: dict[str, Any], **_: Any) -> tuple[Any, dict[str, Any]]:
        params = context["gd_params"]
        tags = self._detector_for(params["ResourceArn"]).tags
        for key in params["TagKeys"]:
            tags.pop(key, None)
        return SimpleNamespace(status_code=204, headers={}), {"ResponseMetadata": {"HTTPStatusCode": 204}}

    # -- arranging ---------------------------------------------------------------------
    def seed(
        self,
        features: list[dict[str, Any]],
        *,
        enabled: bool = True,
        frequency: str = "SIX_HOURS",
        tags: dict[str, str] | None = None,
    ) -> str:
        """An account's existing detector, exactly as described (no defaults filled in)."""
        detector = gd_models.Detector(
            account_id=ACCOUNT,
            region_name=REGION,
            created_at=datetime.now(),
            finding_publish_freq=frequency,
            enabled=enabled,
            datasources={},
            tags=dict(tags or {}),
            features=copy.deepcopy(features),
        )
        self.backend.detectors[detector.id] = detector
        return str(detector.id)

    # -- acting ------------------------------------------------------------------------
    def event(self, case: str, stack: str = "redcap", **props: Any) -> dict[str, Any]:
        event = load_event("guardduty", f"{case}.json")
        event["ResponseURL"] = self.capture.url()
        event["StackId"] = (
            f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{stack}/11111111-2222-3333-4444-{stack:0>12}"
        )
        rp = event["ResourceProperties"]
        rp["OwnerId"] = stack
        for key, value in props.items():
            if value is None:
                rp.pop(key, None)
            else:
                rp[key] = value
        if "OldResourceProperties" in event:
            event["OldResourceProperties"]["OwnerId"] = stack
        return event

    def invoke(self, event: dict[str, Any], context: LambdaContext | None = None) -> dict[str, Any]:
        self.capture.clear()
        self.sent.clear()
        self.app.handler(event, context or LambdaContext())
        assert len(self.capture.responses) == 1, self.capture.responses
        return self.capture.last

    def create(self, stack: str = "redcap", **props: Any) -> dict[str, Any]:
        return self.invoke(self.event("create", stack, **props))

    def update(self, physical_id: str, old: dict[str, Any], stack: str = "redcap", **props: Any) -> dict[str, Any]:
        # Only what the test names changes from the create event's properties.
        props = {"FindingPublishingFrequency": None, "Features": sorted(DEFAULT), **props}
        event = self.event("update", stack, **props)
        event["OldResourceProperties"] = {**old, "OwnerId": stack}
        event["PhysicalResourceId"] = physical_id
        return self.invoke(event)

    def delete(self, physical_id: str, stack: str = "redcap", **props: Any) -> dict[str, Any]:
        event = self.event("delete", stack, **props)
        event["PhysicalResourceId"] = physical_id
        return self.invoke(event)

    # -- asserting ---------------------------------------------------------------------
    def only(self) -> Any:
        ids = list(self.backend.detectors)
        assert len(ids) == 1, ids
        return self.backend.detectors[ids[0]]

    def state(self) -> dict[str, str]:
        return {f["name"]: f["status"] for f in self.only().features}

    def on(self) -> set[str]:
        return {n for n, s in self.state().items() if s == "ENABLED"}

    def calls(self, name: str) -> list[dict[str, Any]]:
        return [p for op, p in self.sent if op == name]

    def writes(self) -> list[str]:
        reads = {"ListDetectors", "GetDetector", "GetAdministratorAccount"}
        return [op for op, _ in self.sent if op not in reads]


@pytest.fixture(scope="module")
def cfn_responses() -> Iterator[ResponseCapture]:
    # conftest's fixture, widened to the module: its server takes 0.5 s to shut down, which over ~40
    # tests was most of this file's run time. Each invoke clears the capture and expects one answer.
    with capture_cfn_responses() as capture:
        yield capture


@pytest.fixture(scope="module")
def app() -> Iterator[ModuleType]:
    # Imported once per module, as a warm Lambda container keeps it: crhelper and the GuardDuty
    # client cost a second per import on a busy machine. Each test gets fresh moto state.
    # The same environment conftest's aws_sandbox gives each test: this import may be the first of
    # redcap_ctl.observability in the session, and Powertools reads its namespace and service then.
    with pytest.MonkeyPatch.context() as mp, mock_aws():
        for var in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_ENDPOINT_URL"):
            mp.delenv(var, raising=False)
        for var, value in (
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_DEFAULT_REGION", REGION),
            ("AWS_REGION", REGION),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
            ("POWERTOOLS_METRICS_NAMESPACE", "REDCap/test"),
            ("POWERTOOLS_SERVICE_NAME", "redcap-control-plane-test"),
        ):
            mp.setenv(var, value)
        yield load_handler("guardduty")


@pytest.fixture
def world(app: ModuleType, cfn_responses: ResponseCapture, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    w = World(app, cfn_responses, monkeypatch)
    try:
        yield w
    finally:
        w.close()


def sent_features(call: dict[str, Any]) -> dict[str, str]:
    return {f["Name"]: f["Status"] for f in call.get("Features", [])}


def ok(response: dict[str, Any]) -> dict[str, Any]:
    assert response["Status"] == "SUCCESS", response.get("Reason")
    data: dict[str, Any] = response["Data"]
    return data


# ============================================================================ Create
def test_no_detector_creates_one_with_exactly_the_listed_features(world: World) -> None:
    data = ok(world.create())

    detector = world.only()
    assert data == {"DetectorId": detector.id, "CreatedDetector": "true", "ManagedBy": "account"}
    assert world.on() == DEFAULT
    assert detector.enabled is True
    assert detector.finding_publish_freq == "FIFTEEN_MINUTES"
    (call,) = world.calls("CreateDetector")
    assert sent_features(call) == {
        **dict.fromkeys(DEFAULT, "ENABLED"),
        "EKS_AUDIT_LOGS": "DISABLED",
        "EBS_MALWARE_PROTECTION": "DISABLED",
    }
    assert world.capture.last["PhysicalResourceId"] == f"guardduty:{detector.id}:redcap"
    assert detector.tags == {"redcap:guardduty:redcap": "v1 d=C n=LAMBDA+RDS+S3 t=LAMBDA+RDS+S3 f=-"}


def test_created_detector_takes_a_given_frequency(world: World) -> None:
    ok(world.create(FindingPublishingFrequency="ONE_HOUR"))
    assert world.only().finding_publish_freq == "ONE_HOUR"


def test_detector_with_everything_off_gets_only_the_listed_features(world: World) -> None:
    detector_id = world.seed([{"name": n, "status": "DISABLED"} for n in ALL_AT_CREATE])

    data = ok(world.create())

    assert data == {"DetectorId": detector_id, "CreatedDetector": "false", "ManagedBy": "account"}
    assert world.on() == DEFAULT
    (call,) = world.calls("UpdateDetector")
    assert sent_features(call) == dict.fromkeys(DEFAULT, "ENABLED")
    assert "FindingPublishingFrequency" not in call  # not given: the account's frequency stays
    assert world.only().finding_publish_freq == "SIX_HOURS"
    assert world.calls("CreateDetector") == []
    assert world.only().tags["redcap:guardduty:redcap"] == "v1 d=- n=LAMBDA+RDS+S3 t=LAMBDA+RDS+S3 f=-"


def test_detector_with_some_features_on_sends_only_the_missing_ones(world: World) -> None:
    world.seed(
        [
            {"name": "S3_DATA_EVENTS", "status": "ENABLED"},
            {"name": "EKS_AUDIT_LOGS", "status": "ENABLED"},
            {"name": "RDS_LOGIN_EVENTS", "status": "DISABLED"},
            {"name": "LAMBDA_NETWORK_LOGS", "status": "DISABLED"},
            RUNTIME_WITH_AGENTS,
        ],
        tags={"team": "security"},
    )

    ok(world.create())

    (call,) = world.calls("UpdateDetector")
    assert sent_features(call) == {"RDS_LOGIN_EVENTS": "ENABLED", "LAMBDA_NETWORK_LOGS": "ENABLED"}
    assert "Enable" not in call
    assert world.on() == DEFAULT | {"EKS_AUDIT_LOGS", "RUNTIME_MONITORING"}
    runtime = next(f for f in world.only().features if f["name"] == "RUNTIME_MONITORING")
    assert runtime == RUNTIME_WITH_AGENTS  # the agent-management settings were never sent, never changed
    assert world.only().tags["team"] == "security"
    assert world.only().tags["redcap:guardduty:redcap"] == "v1 d=- n=LAMBDA+RDS+S3 t=LAMBDA+RDS f=-"


def test_detector_with_everything_on_changes_nothing_and_only_records_its_needs(world: World) -> None:
    world.seed([{"name": n, "status": "ENABLED"} for n in ALL_AT_CREATE])

    ok(world.create())

    assert world.calls("UpdateDetector") == []
    assert world.writes() == ["TagResource"]
    assert world.only().tags["redcap:guardduty:redcap"] == "v1 d=- n=LAMBDA+RDS+S3 t=- f=-"


def test_disabled_detector_is_enabled_and_remembered(world: World) -> None:
    world.seed([{"name": "S3_DATA_EVENTS", "status": "ENABLED"}], enabled=False)

    ok(world.create())

    (call,) = world.calls("UpdateDetector")
    assert call["Enable"] is True
    assert sent_features(call) == {"RDS_LOGIN_EVENTS": "ENABLED", "LAMBDA_NETWORK_LOGS": "ENABLED"}
    assert world.only().enabled is True
    assert world.only().tags["redcap:guardduty:redcap"].startswith("v1 d=E ")


def test_given_frequency_changes_an_existing_detector_and_is_restored_on_revert(world: World) -> None:
    world.seed([{"name": n, "status": "ENABLED"} for n in DEFAULT])
    response = world.create(FindingPublishingFrequency="fifteen_minutes")
    ok(response)
    assert world.calls("UpdateDetector")[0]["FindingPublishingFrequency"] == "FIFTEEN_MINUTES"
    assert world.only().finding_publish_freq == "FIFTEEN_MINUTES"

    ok(world.delete(response["PhysicalResourceId"], RevertOnDelete="true"))

    assert world.only().finding_publish_freq == "SIX_HOURS"
    assert world.on() == DEFAULT  # they were on before this stack came


def test_repeated_create_is_safe(world: World) -> None:
    first = ok(world.create())
    second = ok(world.create())

    assert first == {**second, "CreatedDetector": "true"}
    assert second["CreatedDetector"] == "true"  # the ledger still says this stack created it
    assert world.calls("UpdateDetector") == []
    assert world.calls("CreateDetector") == []


# ============================================================================ administrator-managed members
def test_member_of_an_administrator_makes_no_change_and_succeeds(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    detector_id = world.seed([{"name": "S3_DATA_EVENTS", "status": "DISABLED"}], enabled=False)
    world.administrator = "999999999999"

    data = ok(world.create())

    assert data == {"DetectorId": detector_id, "CreatedDetector": "false", "ManagedBy": "administrator"}
    assert world.writes() == []
    assert world.only().enabled is False
    assert "managed by an administrator" in caplog.text

    ok(world.delete(world.capture.last["PhysicalResourceId"], RevertOnDelete="true"))
    assert world.writes() == []


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("BadRequestException", "The request is rejected because a member account cannot manage this feature."),
        ("AccessDeniedException", "Only the administrator account can change the features of a member account."),
    ],
)
def test_member_refused_by_update_detector_succeeds_without_change(
    world: World, code: str, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    stub = Stubber(world.gd)
    stub.add_response("list_detectors", {"DetectorIds": ["d1"]})
    stub.add_response("get_administrator_account", {"Administrator": {}}, {"DetectorId": "d1"})
    stub.add_response(
        "get_detector",
        {
            "ServiceRole": "r",
            "Status": "ENABLED",
            "Features": [{"Name": "S3_DATA_EVENTS", "Status": "DISABLED"}],
            "Tags": {},
        },
        {"DetectorId": "d1"},
    )
    stub.add_client_error("update_detector", code, message, 400)
    with stub:
        data = ok(world.create())
    stub.assert_no_pending_responses()  # and no TagResource: the stubber would have refused it
    assert data == {"DetectorId": "d1", "CreatedDetector": "false", "ManagedBy": "administrator"}
    assert "administrator account manages it" in caplog.text


# ============================================================================ Update
def test_update_adds_and_removes_features_keeping_the_physical_id(world: World) -> None:
    world.seed([{"name": n, "status": "DISABLED"} for n in ALL_AT_CREATE] + [RUNTIME_WITH_AGENTS])
    created = world.create()
    physical_id = created["PhysicalResourceId"]
    old = world.event("create")["ResourceProperties"]

    updated = world.update(physical_id, old, Features=["S3_DATA_EVENTS", "EBS_MALWARE_PROTECTION"])

    ok(updated)
    assert updated["PhysicalResourceId"] == physical_id
    (call,) = world.calls("UpdateDetector")
    assert sent_features(call) == {
        "EBS_MALWARE_PROTECTION": "ENABLED",
        "RDS_LOGIN_EVENTS": "DISABLED",
        "LAMBDA_NETWORK_LOGS": "DISABLED",
    }
    assert world.on() == {"S3_DATA_EVENTS", "EBS_MALWARE_PROTECTION", "RUNTIME_MONITORING"}
    assert world.only().tags["redcap:guardduty:redcap"] == "v1 d=- n=EBS+S3 t=EBS+S3 f=-"


def test_update_never_turns_off_a_feature_that_was_on_before(world: World) -> None:
    world.seed([{"name": "S3_DATA_EVENTS", "status": "ENABLED"}])
    created = world.create()
    old = world.event("create")["ResourceProperties"]

    ok(world.update(created["PhysicalResourceId"], old, Features=["RDS_LOGIN_EVENTS"]))

    (call,) = world.calls("UpdateDetector")
    assert sent_features(call) == {"LAMBDA_NETWORK_LOGS": "DISABLED"}  # this stack turned it on; S3 was there before
    assert world.on() == {"S3_DATA_EVENTS", "RDS_LOGIN_EVENTS"}


def test_update_when_the_detector_vanished_recreates_it_under_the_same_physical_id(world: World) -> None:
    created = world.create()
    world.backend.detectors.clear()
    old = world.event("create")["ResourceProperties"]

    updated = world.update(created["PhysicalResourceId"], old)

    assert ok(updated)["CreatedDetector"] == "true"
    assert updated["PhysicalResourceId"] == created["PhysicalResourceId"]
    assert world.on() == DEFAULT


def test_update_with_a_new_owner_moves_the_ledger(world: World) -> None:
    world.seed([{"name": n, "status": "DISABLED"} for n in DEFAULT])
    created = world.create()
    old = world.event("create")["ResourceProperties"]
    event = world.event("update", Features=sorted(DEFAULT), FindingPublishingFrequency=None)
    event["OldResourceProperties"] = old
    event["PhysicalResourceId"] = created["PhysicalResourceId"]
    event["ResourceProperties"]["OwnerId"] = "renamed"

    ok(world.invoke(event))

    tags = world.only().tags
    assert "redcap:guardduty:redcap" not in tags
    assert tags["redcap:guardduty:renamed"] == "v1 d=- n=LAMBDA+RDS+S3 t=LAMBDA+RDS+S3 f=-"


# ============================================================================ Delete
def test_delete_by_default_leaves_protection_on(world: World) -> None:
    created = world.create()

    ok(world.delete(created["PhysicalResourceId"]))

    assert world.on() == DEFAULT
    assert world.only().enabled is True
    assert world.writes() == ["UntagResource"]
    assert world.only().tags == {}


def test_revert_deletes_only_a_detector_this_stack_created(world: World) -> None:
    created = world.create()

    ok(world.delete(created["PhysicalResourceId"], RevertOnDelete="true"))

    assert world.backend.detectors == {}
    assert world.writes() == ["DeleteDetector"]


def test_revert_on_an_adopted_detector_undoes_exactly_what_this_stack_changed(world: World) -> None:
    world.seed(
        [
            {"name": "S3_DATA_EVENTS", "status": "ENABLED"},
            {"name": "RDS_LOGIN_EVENTS", "status": "DISABLED"},
            RUNTIME_WITH_AGENTS,
        ],
        enabled=False,
        tags={"team": "security"},
    )
    created = world.create()

    ok(world.delete(created["PhysicalResourceId"], RevertOnDelete="true"))

    (call,) = world.calls("UpdateDetector")
    assert call["Enable"] is False
    assert sent_features(call) == {"RDS_LOGIN_EVENTS": "DISABLED", "LAMBDA_NETWORK_LOGS": "DISABLED"}
    assert world.calls("DeleteDetector") == []
    assert world.on() == {"S3_DATA_EVENTS", "RUNTIME_MONITORING"}
    assert world.only().enabled is False
    assert world.only().tags == {"team": "security"}


def test_delete_when_nothing_was_recorded_touches_nothing(world: World) -> None:
    world.seed([{"name": "S3_DATA_EVENTS", "status": "ENABLED"}])
    ok(world.delete("some-log-stream-id", RevertOnDelete="true"))
    assert world.writes() == []


def test_delete_without_a_detector_succeeds(world: World) -> None:
    ok(world.delete("guardduty:gone:redcap", RevertOnDelete="true"))
    assert world.writes() == []


def test_delete_after_a_failed_create_with_bad_properties_succeeds(world: World) -> None:
    world.seed([{"name": "S3_DATA_EVENTS", "status": "ENABLED"}])
    response = world.delete("log-stream", Features=["NOPE"])
    ok(response)
    assert world.sent == []


def test_revert_after_the_account_joined_an_administrator_still_lets_the_stack_go(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    world.seed([{"name": n, "status": "DISABLED"} for n in DEFAULT])
    created = world.create(RevertOnDelete="true")

    def refuse(**_: Any) -> None:
        message = "The request is rejected because a member account cannot do it."
        raise ClientError({"Error": {"Code": "BadRequestException", "Message": message}}, "UpdateDetector")

    world.gd.meta.events.register_first("before-call.guardduty.UpdateDetector", refuse)
    try:
        response = world.delete(created["PhysicalResourceId"], RevertOnDelete="true")
    finally:
        world.gd.meta.events.unregister("before-call.guardduty.UpdateDetector", refuse)

    ok(response)
    assert world.on() == DEFAULT  # left as the administrator has it
    assert world.only().tags == {}
    assert "administrator account manages GuardDuty now" in caplog.text


# ============================================================================ cycles
@pytest.mark.parametrize("revert", ["false", "true"])
def test_create_update_delete_cycle_on_an_account_without_guardduty(world: World, revert: str) -> None:
    created = world.create(RevertOnDelete=revert)
    old = world.event("create", RevertOnDelete=revert)["ResourceProperties"]
    updated = world.update(
        created["PhysicalResourceId"], old, Features=["S3_DATA_EVENTS", "RUNTIME_MONITORING"], RevertOnDelete=revert
    )
    assert ok(updated)["CreatedDetector"] == "true"
    assert world.on() == {"S3_DATA_EVENTS", "RUNTIME_MONITORING"}

    ok(world.delete(created["PhysicalResourceId"], RevertOnDelete=revert))

    if revert == "true":
        assert world.backend.detectors == {}
    else:
        assert world.on() == {"S3_DATA_EVENTS", "RUNTIME_MONITORING"}


def test_cycle_on_an_existing_detector_with_revert_restores_it(world: World) -> None:
    before: list[dict[str, Any]] = [
        {"name": "S3_DATA_EVENTS", "status": "DISABLED"},
        {"name": "EKS_AUDIT_LOGS", "status": "ENABLED"},
        {"name": "RDS_LOGIN_EVENTS", "status": "DISABLED"},
        {"name": "LAMBDA_NETWORK_LOGS", "status": "ENABLED"},
        RUNTIME_WITH_AGENTS,
    ]
    world.seed(before, frequency="ONE_HOUR")
    created = world.create(RevertOnDelete="true")
    old = world.event("create", RevertOnDelete="true")["ResourceProperties"]
    ok(
        world.update(
            created["PhysicalResourceId"],
            old,
            Features=["S3_DATA_EVENTS", "EBS_MALWARE_PROTECTION"],
            RevertOnDelete="true",
            FindingPublishingFrequency="FIFTEEN_MINUTES",
        )
    )

    ok(world.delete(created["PhysicalResourceId"], RevertOnDelete="true"))

    assert world.on() == {"EKS_AUDIT_LOGS", "LAMBDA_NETWORK_LOGS", "RUNTIME_MONITORING"}
    assert world.only().finding_publish_freq == "ONE_HOUR"
    assert world.only().tags == {}
    runtime = next(f for f in world.only().features if f["name"] == "RUNTIME_MONITORING")
    assert runtime == RUNTIME_WITH_AGENTS


# ============================================================================ two stacks, one detector
@pytest.mark.parametrize("revert", ["false", "true"])
def test_dev_and_prod_sharing_a_detector_do_not_undo_each_other(world: World, revert: str) -> None:
    dev = world.create("redcap-dev", RevertOnDelete=revert)
    assert ok(dev)["CreatedDetector"] == "true"
    prod = world.create("redcap-prod", RevertOnDelete=revert, Features=["S3_DATA_EVENTS", "EBS_MALWARE_PROTECTION"])
    data = ok(prod)
    assert data["CreatedDetector"] == "false"
    assert data["DetectorId"] == ok(dev)["DetectorId"]
    assert world.calls("CreateDetector") == []  # never a second detector
    assert sent_features(world.calls("UpdateDetector")[0]) == {"EBS_MALWARE_PROTECTION": "ENABLED"}

    # dev goes first: prod still needs S3 (dev turned it on) and its own EBS scanning.
    ok(world.delete(dev["PhysicalResourceId"], "redcap-dev", RevertOnDelete=revert))
    assert len(world.backend.detectors) == 1
    if revert == "true":
        assert sent_features(world.calls("UpdateDetector")[0]) == {
            "RDS_LOGIN_EVENTS": "DISABLED",
            "LAMBDA_NETWORK_LOGS": "DISABLED",
        }
        assert world.on() == {"S3_DATA_EVENTS", "EBS_MALWARE_PROTECTION"}
        # The detector and S3 were dev's doing: prod now answers for them.
        assert world.only().tags == {"redcap:guardduty:redcap-prod": "v1 d=C n=EBS+S3 t=EBS+S3 f=-"}
    else:
        assert world.on() == DEFAULT | {"EBS_MALWARE_PROTECTION"}
        assert "redcap:guardduty:redcap-dev" not in world.only().tags

    ok(world.delete(prod["PhysicalResourceId"], "redcap-prod", RevertOnDelete=revert))
    if revert == "true":
        assert world.backend.detectors == {}  # the account is as it was before either stack
    else:
        assert world.on() == DEFAULT | {"EBS_MALWARE_PROTECTION"}


def test_prod_deleted_first_with_revert_leaves_what_dev_needs(world: World) -> None:
    world.seed([{"name": n, "status": "DISABLED"} for n in ALL_AT_CREATE])
    dev = world.create("redcap-dev", RevertOnDelete="true")
    prod = world.create("redcap-prod", RevertOnDelete="true", Features=["S3_DATA_EVENTS", "EBS_MALWARE_PROTECTION"])

    ok(world.delete(prod["PhysicalResourceId"], "redcap-prod", RevertOnDelete="true"))

    (call,) = world.calls("UpdateDetector")
    assert sent_features(call) == {"EBS_MALWARE_PROTECTION": "DISABLED"}  # S3 is dev's and dev still needs it
    assert world.on() == DEFAULT

    ok(world.delete(dev["PhysicalResourceId"], "redcap-dev", RevertOnDelete="true"))
    assert world.on() == set()
    assert world.only().tags == {}


def test_update_dropping_a_feature_another_stack_needs_keeps_it_on(world: World) -> None:
    world.seed([{"name": n, "status": "DISABLED"} for n in ALL_AT_CREATE])
    dev = world.create("redcap-dev")
    ok(world.create("redcap-prod", Features=["S3_DATA_EVENTS"]))
    old = world.event("create", "redcap-dev")["ResourceProperties"]

    ok(world.update(dev["PhysicalResourceId"], old, "redcap-dev", Features=["RDS_LOGIN_EVENTS"]))

    (call,) = world.calls("UpdateDetector")
    assert sent_features(call) == {"LAMBDA_NETWORK_LOGS": "DISABLED"}
    assert world.on() == {"S3_DATA_EVENTS", "RDS_LOGIN_EVENTS"}
    assert world.only().tags["redcap:guardduty:redcap-prod"] == "v1 d=- n=S3 t=S3 f=-"


# ============================================================================ failures
BAD_INPUTS: list[tuple[dict[str, Any], str]] = [
    ({"Features": ["S3_DATA_EVENTS", "S3_LOGS"]}, "Features"),
    ({"Features": "S3_DATA_EVENTS,NOT_A_FEATURE"}, "Features"),
    ({"Features": [1, 2]}, "Features"),
    ({"Features": {"S3_DATA_EVENTS": True}}, "Features"),
    ({"Features": ["EKS_RUNTIME_MONITORING", "RUNTIME_MONITORING"]}, "Features"),
    ({"FindingPublishingFrequency": "HOURLY"}, "FindingPublishingFrequency"),
    ({"FindingPublishingFrequency": 15}, "FindingPublishingFrequency"),
    ({"RevertOnDelete": "yes"}, "RevertOnDelete"),
    ({"OwnerId": "has spaces and !"}, "OwnerId"),
    ({"Feature": ["S3_DATA_EVENTS"]}, "Feature"),
]


@pytest.mark.parametrize("case", ["create", "update"])
def test_every_bad_input_fails_naming_the_property_before_any_call(world: World, case: str) -> None:
    world.seed([{"name": "S3_DATA_EVENTS", "status": "DISABLED"}])
    for props, field in BAD_INPUTS:
        event = world.event(case, **props)
        if case == "update":
            event["PhysicalResourceId"] = "guardduty:d:redcap"
        response = world.invoke(event)

        assert response["Status"] == "FAILED", props
        assert response["Reason"].startswith(f"{field}: "), (props, response["Reason"])
        assert world.sent == [], props
        if case == "update":
            # A failed update keeps the id, so CloudFormation rolls back with an Update, never a Delete.
            assert response["PhysicalResourceId"] == "guardduty:d:redcap", props
    assert world.state() == {"S3_DATA_EVENTS": "DISABLED"}


def test_more_than_one_detector_fails_instead_of_guessing(world: World) -> None:
    # AWS allows one detector per account and Region; should it ever answer two, pick none.
    stub = Stubber(world.gd)
    stub.add_response("list_detectors", {"DetectorIds": ["d1", "d2"]})
    with stub:
        response = world.create()
    assert response["Status"] == "FAILED"
    assert "found 2 GuardDuty detectors" in response["Reason"]
    assert world.writes() == []


def test_access_denied_fails_with_the_apis_reason(world: World) -> None:
    stub = Stubber(world.gd)
    stub.add_client_error(
        "list_detectors", "AccessDeniedException", "User is not authorized to perform: guardduty:ListDetectors", 403
    )
    with stub:
        response = world.create()
    assert response["Status"] == "FAILED"
    assert "AccessDeniedException" in response["Reason"]
    assert "not authorized to perform: guardduty:ListDetectors" in response["Reason"]


def test_access_denied_on_update_detector_is_not_mistaken_for_a_member(world: World) -> None:
    stub = Stubber(world.gd)
    stub.add_response("list_detectors", {"DetectorIds": ["d1"]})
    stub.add_response("get_administrator_account", {"Administrator": {}}, {"DetectorId": "d1"})
    stub.add_response("get_detector", {"ServiceRole": "r", "Status": "DISABLED", "Tags": {}}, {"DetectorId": "d1"})
    # The role name says "member" and "administrator account": still IAM's denial, not an administrator's.
    message = (
        "User: arn:aws:sts::123456789012:assumed-role/member-administrator-account-Role/fn is not authorized"
        " to perform: guardduty:UpdateDetector"
    )
    stub.add_client_error("update_detector", "AccessDeniedException", message, 403)
    with stub:
        response = world.create()
    assert response["Status"] == "FAILED"
    assert "guardduty:UpdateDetector" in response["Reason"]


def test_feature_unsupported_in_the_region_fails_with_the_apis_reason(world: World) -> None:
    stub = Stubber(world.gd)
    stub.add_response("list_detectors", {"DetectorIds": []})
    stub.add_client_error(
        "create_detector",
        "BadRequestException",
        "The request failed because feature RDS_LOGIN_EVENTS is not available in this region.",
        400,
    )
    with stub:
        response = world.create()
    assert response["Status"] == "FAILED"
    assert "RDS_LOGIN_EVENTS is not available in this region" in response["Reason"]


def test_region_without_a_guardduty_endpoint_fails(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_endpoint(**_: Any) -> None:
        raise EndpointConnectionError(endpoint_url="https://guardduty.xx-nowhere-1.amazonaws.com/detector")

    world.gd.meta.events.register_first("before-call.guardduty.ListDetectors", no_endpoint)
    response = world.create()
    assert response["Status"] == "FAILED"
    assert "Could not connect to the endpoint URL" in response["Reason"]


def test_answers_in_time_when_the_budget_is_spent(world: World) -> None:
    response = world.invoke(world.event("create"), LambdaContext(remaining_ms=3_000))
    assert response["Status"] == "FAILED"
    assert "not enough time left to ListDetectors" in response["Reason"]
    assert world.sent == []
