"""Custom::ExpressIdleTimeout and the deployment-start path through their real handler.

moto serves ELBv2 (the Express-managed ALB with its idle timeout attribute and tags); the Express
layout comes from ``testkit.emulators.express``. Responses to CloudFormation are captured on
127.0.0.1.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

import pytest
from moto import mock_aws

from redcap_ctl import clients
from redcap_ctl.express_idle_timeout import APPLIED_TAG, ATTRIBUTE, owner_tag
from testkit import LambdaContext, load_event, load_handler
from testkit.cfn import ResponseCapture
from testkit.emulators.express import ExpressService

OTHER_SERVICE = "arn:aws:ecs:us-east-1:123456789012:service/redcap-express/redcap-test"


@pytest.fixture
def express(aws_sandbox: None) -> Iterator[ExpressService]:
    with mock_aws():
        clients.reset()
        yield ExpressService.create()
        clients.reset()


@pytest.fixture
def app(express: ExpressService, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("EXPRESS_LOAD_BALANCER_ARN", express.load_balancer_arn)
    monkeypatch.setenv("EXPRESS_SERVICE_ARN", express.service_arn)
    monkeypatch.setenv("REQUEST_TIMEOUT_SECONDS", "300")
    return load_handler("express_idle_timeout")


def _event(name: str, express: ExpressService, capture: ResponseCapture, **props: Any) -> dict[str, Any]:
    event = load_event("express_idle_timeout", name)
    event["ResponseURL"] = capture.url()
    for key in ("ResourceProperties", "OldResourceProperties"):
        if key in event:
            event[key].update(LoadBalancerArn=express.load_balancer_arn, ServiceArn=express.service_arn)
    event["ResourceProperties"].update(props)
    if "PhysicalResourceId" in event:
        event["PhysicalResourceId"] = express.load_balancer_arn + "#0123456789ab"
    return event


def _invoke(app: ModuleType, event: dict[str, Any], capture: ResponseCapture) -> dict[str, Any]:
    capture.clear()
    app.handler(event, LambdaContext())
    return capture.last


def _seconds(express: ExpressService) -> int:
    attributes = express.elbv2.describe_load_balancer_attributes(LoadBalancerArn=express.load_balancer_arn)
    # moto lists the attribute only once it was modified; ELB documents 60 s as the default.
    return int(next((a["Value"] for a in attributes["Attributes"] if a["Key"] == ATTRIBUTE), 60))


def _set_seconds(express: ExpressService, seconds: int) -> None:
    """A person, another tool or an Express update writing the attribute."""
    express.elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=express.load_balancer_arn, Attributes=[{"Key": ATTRIBUTE, "Value": str(seconds)}]
    )


def _tags(express: ExpressService) -> dict[str, str]:
    described = express.elbv2.describe_tags(ResourceArns=[express.load_balancer_arn])["TagDescriptions"]
    return {t["Key"]: t["Value"] for t in described[0].get("Tags", [])}


def _deployment_started(express: ExpressService) -> dict[str, Any]:
    event = load_event("express_idle_timeout", "deployment_started.json")
    event["resources"] = [express.service_arn]
    return event


def test_create_sets_the_idle_timeout_and_marks_it_as_ours(
    app: ModuleType, express: ExpressService, cfn_responses: ResponseCapture
) -> None:
    assert _seconds(express) == 60  # the ALB default, as moto (and ELB) start
    answer = _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    assert answer["Status"] == "SUCCESS", answer
    assert answer["PhysicalResourceId"].startswith(express.load_balancer_arn + "#")
    assert answer["Data"] == {"IdleTimeoutSeconds": "300"}
    assert _seconds(express) == 300
    tags = _tags(express)
    assert tags[owner_tag(express.service_arn)] == "300"
    assert tags[APPLIED_TAG] == "300"
    # CloudFormation retries a Create: the same answer, the same value.
    assert _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)["Status"] == "SUCCESS"
    assert _seconds(express) == 300


def test_update_lowers_a_value_the_stack_wrote_and_puts_back_one_express_reset(
    app: ModuleType, express: ExpressService, cfn_responses: ResponseCapture
) -> None:
    _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    answer = _invoke(app, _event("update.json", express, cfn_responses, IdleTimeoutSeconds="120"), cfn_responses)
    assert answer["Status"] == "SUCCESS", answer
    assert _seconds(express) == 120
    _set_seconds(express, 60)  # an Express update put its default back
    assert _invoke(app, _event("update.json", express, cfn_responses), cfn_responses)["Status"] == "SUCCESS"
    assert _seconds(express) == 300


def test_a_deployment_start_applies_the_value_again(app: ModuleType, express: ExpressService) -> None:
    _set_seconds(express, 60)
    assert app.handler(_deployment_started(express), LambdaContext()) == {"seconds": 300}
    assert _seconds(express) == 300
    other = _deployment_started(express)
    other["resources"] = [OTHER_SERVICE]
    _set_seconds(express, 60)
    assert app.handler(other, LambdaContext()) == {"seconds": None}
    assert _seconds(express) == 60


def test_a_longer_timeout_someone_else_set_is_never_lowered_nor_reset(
    app: ModuleType, express: ExpressService, cfn_responses: ResponseCapture
) -> None:
    _set_seconds(express, 900)  # set by hand for another service on the shared ALB
    answer = _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    assert answer["Status"] == "SUCCESS", answer
    assert answer["Data"] == {"IdleTimeoutSeconds": "900"}
    assert _seconds(express) == 900
    assert _invoke(app, _event("delete.json", express, cfn_responses), cfn_responses)["Status"] == "SUCCESS"
    assert _seconds(express) == 900
    assert owner_tag(express.service_arn) not in _tags(express)


def test_delete_puts_the_alb_default_back_only_when_the_value_is_ours(
    app: ModuleType, express: ExpressService, cfn_responses: ResponseCapture
) -> None:
    _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    for _ in range(2):  # Delete is idempotent
        answer = _invoke(app, _event("delete.json", express, cfn_responses), cfn_responses)
        assert answer["Status"] == "SUCCESS", answer
        assert _seconds(express) == 60
    assert not [k for k in _tags(express) if k.startswith("redcap-ctl:idle-timeout")]
    # Changed by hand after the stack wrote it: Delete leaves the person's value.
    _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    _set_seconds(express, 450)
    assert _invoke(app, _event("delete.json", express, cfn_responses), cfn_responses)["Status"] == "SUCCESS"
    assert _seconds(express) == 450


def test_two_redcap_services_on_one_alb_get_the_longer_and_delete_keeps_the_others(
    app: ModuleType, express: ExpressService, cfn_responses: ResponseCapture
) -> None:
    second = _event("create.json", express, cfn_responses, ServiceArn=OTHER_SERVICE, IdleTimeoutSeconds="600")
    _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    assert _invoke(app, second, cfn_responses)["Data"] == {"IdleTimeoutSeconds": "600"}
    assert _seconds(express) == 600
    gone = _event("delete.json", express, cfn_responses, ServiceArn=OTHER_SERVICE, IdleTimeoutSeconds="600")
    assert _invoke(app, gone, cfn_responses)["Status"] == "SUCCESS"
    assert _seconds(express) == 300  # what the remaining service wants, not the ALB default
    assert _invoke(app, _event("delete.json", express, cfn_responses), cfn_responses)["Status"] == "SUCCESS"
    assert _seconds(express) == 60


@pytest.mark.parametrize(
    ("field", "value"),
    [("IdleTimeoutSeconds", "59"), ("IdleTimeoutSeconds", "3601"), ("IdleTimeoutSeconds", "5m"),
     ("LoadBalancerArn", "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/net/x/1"),
     ("ServiceArn", "redcap")],
)  # fmt: skip
def test_invalid_properties_fail_naming_the_field_and_change_nothing(
    app: ModuleType, express: ExpressService, cfn_responses: ResponseCapture, field: str, value: str
) -> None:
    answer = _invoke(app, _event("create.json", express, cfn_responses, **{field: value}), cfn_responses)
    assert answer["Status"] == "FAILED"
    assert answer["Reason"].startswith(f"{field}:"), answer["Reason"]
    assert _seconds(express) == 60
    # The failed Create's Delete (crhelper's generated id) changes nothing and succeeds.
    delete = _event("delete.json", express, cfn_responses, **{field: value})
    delete["PhysicalResourceId"] = answer["PhysicalResourceId"]
    assert _invoke(app, delete, cfn_responses)["Status"] == "SUCCESS"


def test_a_load_balancer_that_is_gone_fails_create_and_counts_as_released_on_delete(
    app: ModuleType, express: ExpressService, cfn_responses: ResponseCapture
) -> None:
    _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    express.elbv2.delete_load_balancer(LoadBalancerArn=express.load_balancer_arn)
    assert _invoke(app, _event("delete.json", express, cfn_responses), cfn_responses)["Status"] == "SUCCESS"
    answer = _invoke(app, _event("create.json", express, cfn_responses), cfn_responses)
    assert answer["Status"] == "FAILED"
    assert "load balancer does not exist" in answer["Reason"]
