"""``make smoke`` end to end against make local's emulators, for both compute types.

The healthy stack passes every check; each check is then shown to FAIL, with its next step and a
non-zero exit code, when its own fault is injected (``FAULTS``: one per check). Every AWS call
smoke makes is recorded by an event hook and must be a read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

import boto3
import pytest
from local.env import patched_environ
from local.live_stack import OTHER_DIGEST, LiveStack, live_stack
from local.scenarios import DOMAIN
from smoke.aws import READ_PREFIXES, WriteRefused, read_only_session
from smoke.checks import CHECKS
from unit.test_smoke_docs import documented_actions

pytestmark = pytest.mark.slow

COMPUTES = ("AppRunner", "EcsExpress")


@pytest.fixture(scope="module", params=COMPUTES)
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveStack]:
    with live_stack(request.param, tmp_path_factory.mktemp(request.param)) as built:
        yield built


def rows(out: str) -> dict[str, tuple[str, str]]:
    """check name -> (result, rest of the line) from smoke's table."""
    found: dict[str, tuple[str, str]] = {}
    names = "|".join(re.escape(c.name) for c in CHECKS)
    for line in out.splitlines():
        match = re.match(rf"^({names})\s+(PASS|FAIL|WARN|SKIP)\s+(.*)$", line)
        if match:
            found[match.group(1)] = (match.group(2), match.group(3))
    return found


# ----- one fault per check


@contextmanager
def stack_rolled_back(live: LiveStack) -> Iterator[str]:
    live.deployed.status, live.deployed.reason = "UPDATE_ROLLBACK_COMPLETE", "Resource update cancelled"
    try:
        yield "describe-stack-events"
    finally:
        live.deployed.status, live.deployed.reason = "CREATE_COMPLETE", ""


@contextmanager
def redcap_not_installed(live: LiveStack) -> Iterator[str]:
    live.site.installed = False
    try:
        yield "log group"
    finally:
        live.site.installed = True


@contextmanager
def domain_certificate_wrong(live: LiveStack) -> Iterator[str]:
    live.site.wrong_certificate = {DOMAIN}
    try:
        yield "NameServers"
    finally:
        live.site.wrong_certificate = set()


@contextmanager
def not_ready(live: LiveStack) -> Iterator[str]:
    live.site.ready = False
    try:
        yield "log group"
    finally:
        live.site.ready = True


@contextmanager
def rule_removed(live: LiveStack, rule: str) -> Iterator[str]:
    live.site.disabled_rules = {rule}
    try:
        yield "get-web-acl-for-resource"
    finally:
        live.site.disabled_rules = set()


@contextmanager
def cron_failing(live: LiveStack) -> Iterator[str]:
    """The last success is older than the window (its data removed) and the latest tick failed."""
    backend = live.cloudwatch_backend()
    saved = list(backend.metric_data)
    backend.metric_data = []
    live.ticking = False
    live.client("cloudwatch").put_metric_data(
        Namespace=f"REDCap/{live.deployed.name}",
        MetricData=[
            {"MetricName": "CronFailure", "Dimensions": [{"Name": "service", "Value": "cron-caller"}], "Value": 1.0}
        ],
    )
    try:
        yield "CronCallerFunction"
    finally:
        backend.metric_data = saved
        live.ticking = True


@contextmanager
def other_image(live: LiveStack) -> Iterator[str]:
    if live.compute == "AppRunner":
        service = live.local.services["apprunner"].services[live.stack.physical["AppRunnerService"]]
        saved = service.image_identifier
        service.image_identifier = saved.split("@")[0] + "@" + OTHER_DIGEST
        try:
            yield "sam deploy"
        finally:
            service.image_identifier = saved
        return
    container = live.express_tasks()[0].containers[0]
    saved = container.image_digest
    container.image_digest = OTHER_DIGEST
    try:
        yield "sam deploy"
    finally:
        container.image_digest = saved


@contextmanager
def rotation_stuck(live: LiveStack) -> Iterator[str]:
    secrets = live.client("secretsmanager")
    arn = live.stack.physical["S3UserSecret"]
    version = secrets.put_secret_value(SecretId=arn, SecretString="{}", VersionStages=["AWSPENDING"])["VersionId"]
    try:
        yield "rotate-secret"
    finally:
        secrets.update_secret_version_stage(SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=version)


@contextmanager
def feature_off(live: LiveStack) -> Iterator[str]:
    guardduty = live.client("guardduty")
    detector = live.deployed.outputs["GuardDutyDetectorId"]
    before = guardduty.get_detector(DetectorId=detector)["Features"]
    off = [
        {"Name": f["Name"], "Status": "DISABLED" if f["Name"] == "RDS_LOGIN_EVENTS" else f["Status"]} for f in before
    ]
    guardduty.update_detector(DetectorId=detector, Features=off)
    try:
        yield "docs/guardduty.md"
    finally:
        guardduty.update_detector(
            DetectorId=detector, Features=[{"Name": f["Name"], "Status": f["Status"]} for f in before]
        )


@contextmanager
def identity_unverified(live: LiveStack) -> Iterator[str]:
    identity = live.ses_identity()
    identity.verified_for_sending_status = False
    try:
        yield "DKIM"
    finally:
        identity.verified_for_sending_status = True


@contextmanager
def prod_in_sandbox(live: LiveStack) -> Iterator[str]:
    live.reads.ses.production_access = False
    live.deployed.parameters["Environment"] = "prod"
    try:
        yield "production access"
    finally:
        live.reads.ses.production_access = True
        live.deployed.parameters["Environment"] = "dev"


@contextmanager
def alarm_firing(live: LiveStack) -> Iterator[str]:
    name = live.stack.physical["CronFailureAlarm"]
    cloudwatch = live.client("cloudwatch")
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="injected")
    try:
        yield "docs/operations.md"
    finally:
        cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="healthy")


@contextmanager
def endpoint_missing(live: LiveStack) -> Iterator[str]:
    ec2 = live.client("ec2")
    vpc = live.local.services["express-vpc"]
    found = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["VpcEndpoints"]
    logs = next(e for e in found if e["ServiceName"].endswith(".logs"))
    ec2.delete_vpc_endpoints(VpcEndpointIds=[logs["VpcEndpointId"]])
    try:
        yield "creates the endpoints"
    finally:
        ec2.create_vpc_endpoint(
            VpcId=vpc,
            ServiceName=logs["ServiceName"],
            VpcEndpointType="Interface",
            SubnetIds=live.local.services["express-subnets"],
        )


Fault = Callable[[LiveStack], AbstractContextManager[str]]
FAULTS: dict[str, Fault] = {
    "stack-status": stack_rolled_back,
    "login-service-url": redcap_not_installed,
    "login-custom-domain": domain_certificate_wrong,
    "health": not_ready,
    "waf-internal-paths": lambda live: rule_removed(live, "BlockInternalDirectories"),
    "waf-admin-endpoints": lambda live: rule_removed(live, "BlockInstallUpgrade"),
    "cron": cron_failing,
    "image-digest": other_image,
    "secret-rotation": rotation_stuck,
    "guardduty": feature_off,
    "ses-identity": identity_unverified,
    "ses-sandbox": prod_in_sandbox,
    "alarms": alarm_firing,
    "express-networking": endpoint_missing,
}


def test_every_check_has_a_fault() -> None:
    assert set(FAULTS) == {c.name for c in CHECKS}


def recording_session(calls: list[str]) -> Any:
    session = boto3.session.Session(region_name="us-east-1")

    def record(model: Any, **_: Any) -> None:
        calls.append(f"{model.service_model.service_name}:{model.name}")

    session.events.register("before-call", record)
    return session


def test_the_healthy_stack_passes_with_read_calls_only(live: LiveStack) -> None:
    calls: list[str] = []
    code, out = live.run_smoke(session=recording_session(calls))
    assert code == 0, out
    table = rows(out)
    assert set(table) == {c.name for c in CHECKS}, out
    expected_skip = {"express-networking"} if live.compute == "AppRunner" else set()
    assert {n for n, (r, _) in table.items() if r != "PASS"} == expected_skip, out
    # Every AWS call smoke made was a read, and it did reach AWS for each kind of check.
    assert calls, "no AWS call recorded"
    assert [c for c in calls if not c.split(":")[1].startswith(READ_PREFIXES)] == []
    for call in ("cloudformation:DescribeStacks", "cloudwatch:GetMetricStatistics", "secretsmanager:DescribeSecret"):
        assert call in calls
    assert ("apprunner:DescribeService" in calls) == (live.compute == "AppRunner")
    assert ("ecs:DescribeTasks" in calls) == (live.compute == "EcsExpress")
    # docs/smoke.md's permission list covers every call (IAM names SES v2's actions ses:*).
    iam = {c.replace("sesv2:", "ses:") for c in calls}
    assert iam <= documented_actions(), sorted(iam - documented_actions())
    # Only GETs reached REDCap, on the service URL's host and the domain.
    assert {host for host, _, _ in live.site.requests} == {live.service_host, DOMAIN}


@pytest.mark.parametrize("check", list(FAULTS))
def test_each_check_fails_when_its_fault_is_injected(live: LiveStack, check: str) -> None:
    if check == "express-networking" and live.compute == "AppRunner":
        pytest.skip("App Runner has no Express task networking (the check reports SKIP: see the healthy test)")
    with FAULTS[check](live) as next_step:
        code, out = live.run_smoke()
    assert code == 1, out
    result, rest = rows(out)[check]
    assert result == "FAIL", out
    assert next_step in rest, f"{check}: next step should mention {next_step!r}:\n{out}"
    assert "FAILED" in out.splitlines()[-1]
    # The fault was undone: the next run is healthy again (faults do not leak into other tests).
    assert live.run_smoke()[0] == 0


def test_smoke_cannot_write() -> None:
    session = read_only_session("us-east-1")
    client = session.client("secretsmanager", endpoint_url="http://127.0.0.1:9")  # nothing listens: never sent
    with pytest.raises(WriteRefused, match="secretsmanager:DeleteSecret"):
        client.delete_secret(SecretId="anything")
    with pytest.raises(WriteRefused, match="cloudwatch:SetAlarmState"):
        session.client("cloudwatch", endpoint_url="http://127.0.0.1:9").set_alarm_state(
            AlarmName="a", StateValue="OK", StateReason="r"
        )


def test_an_unknown_stack_is_a_clear_error(live: LiveStack, capsys: pytest.CaptureFixture[str]) -> None:
    from smoke.__main__ import main

    with patched_environ(live.smoke_env):
        code = main(["--stack", "no-such-stack", "--region", "us-east-1"], environ=live.smoke_env)
    err = capsys.readouterr().err
    assert code == 2
    assert "stack no-such-stack does not exist in us-east-1" in err
    assert "Traceback" not in err


def test_admin_endpoints_open_to_a_caller_inside_admin_cidrs(live: LiveStack) -> None:
    """AdminCidrs set and the caller inside it: WAF lets install.php through, and smoke says why."""
    from testkit.waf_eval import WebAclEvaluator

    if live.compute == "EcsExpress":
        pytest.skip("the WAF rules are the same for both compute types; once is enough")
    rendered = type(live.stack.rendered)(**{**live.stack.rendered.params, "AdminCidrs": "192.0.2.0/24"})
    saved_eval, saved_param = live.site.evaluator, live.deployed.parameters["AdminCidrs"]
    live.site.evaluator = WebAclEvaluator(rendered, secrets=saved_eval.secrets, addresses=saved_eval.addresses)
    live.site.__post_init__()
    live.deployed.parameters["AdminCidrs"] = "192.0.2.0/24"
    try:
        code, out = live.run_smoke("--caller-ip", live.site.caller_ip)
        result, rest = rows(out)["waf-admin-endpoints"]
        assert (code, result) == (0, "PASS"), out
        assert f"your address {live.site.caller_ip} is inside AdminCidrs=192.0.2.0/24" in rest
        code, out = live.run_smoke()
        assert rows(out)["waf-admin-endpoints"][0] == "WARN", out
        assert code == 0
        code, out = live.run_smoke("--caller-ip", "203.0.113.9")
        assert (code, rows(out)["waf-admin-endpoints"][0]) == (1, "FAIL"), out
    finally:
        live.site.evaluator = saved_eval
        live.site.__post_init__()
        live.deployed.parameters["AdminCidrs"] = saved_param


def test_express_tasks_with_public_ips_need_no_endpoints(live: LiveStack) -> None:
    """The other way out of the VPC: every task interface has a public IP, so no endpoint is needed."""
    if live.compute == "AppRunner":
        pytest.skip("Express only")
    ec2 = live.client("ec2")
    vpc = live.local.services["express-vpc"]
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["VpcEndpoints"]
    enis = [
        d["value"]
        for t in live.client("ecs").describe_tasks(
            cluster=live.stack.physical["EcsExpressCluster"],
            tasks=[t.task_arn for t in live.express_tasks()],
        )["tasks"]
        for a in t["attachments"]
        for d in a["details"]
        if d["name"] == "networkInterfaceId"
    ]
    ec2.delete_vpc_endpoints(VpcEndpointIds=[e["VpcEndpointId"] for e in endpoints])
    allocations = []
    try:
        for eni in enis:
            allocation = ec2.allocate_address(Domain="vpc")["AllocationId"]
            ec2.associate_address(AllocationId=allocation, NetworkInterfaceId=eni)
            allocations.append(allocation)
        code, out = live.run_smoke()
        result, rest = rows(out)["express-networking"]
        assert (code, result) == (0, "PASS"), out
        assert "each with a public IP" in rest
    finally:
        for allocation in allocations:
            ec2.release_address(AllocationId=allocation)
        subnets = live.local.services["express-subnets"]
        for e in endpoints:
            interface = e["VpcEndpointType"] == "Interface"
            ec2.create_vpc_endpoint(
                VpcId=vpc,
                ServiceName=e["ServiceName"],
                VpcEndpointType=e["VpcEndpointType"],
                **({"SubnetIds": subnets} if interface else {}),
            )
    assert live.run_smoke()[0] == 0
