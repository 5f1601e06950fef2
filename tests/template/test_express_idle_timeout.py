"""RequestTimeoutSeconds: the shared parameter, and the Express load balancer's idle timeout that follows it."""

from __future__ import annotations

import pytest

from redcap_ctl import express_idle_timeout
from testkit import TEMPLATE, load_event
from testkit.template import Rendered, load

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/redcap:1"
RESOURCES = {
    "ExpressIdleTimeoutFunction",
    "ExpressIdleTimeoutFunctionRole",
    "ExpressIdleTimeoutLogGroup",
    "ExpressIdleTimeout",
    "ExpressIdleTimeoutFunctionErrorsAlarm",
}
LOAD_BALANCER = {"Fn::GetAtt": ["ExpressService", "ECSManagedResourceArns.IngressPath.LoadBalancerArn"]}

# The block every wave-2 change that uses the parameter inserts, word for word (BRIEF.md).
CONTRACT = """\
  RequestTimeoutSeconds:
    Type: Number
    Default: 300
    MinValue: 60
    MaxValue: 3600
    Description: >-
      Longest request REDCap serves, in seconds: PHP's max_execution_time and, on ECS Express, the load
      balancer's idle timeout. App Runner always ends a request at 120 s (docs/compute.md).
  Cpu:
"""


def test_the_parameter_is_the_shared_block_right_after_the_health_check_path() -> None:
    text = TEMPLATE.read_text(encoding="utf-8")
    assert CONTRACT in text
    names = list(load()["Parameters"])
    assert names[names.index("HealthCheckPath") + 1] == "RequestTimeoutSeconds"
    # Inside the range the custom resource accepts, and inside the ALB's own 1-4000 s.
    spec = load()["Parameters"]["RequestTimeoutSeconds"]
    assert (spec["MinValue"], spec["MaxValue"]) == (express_idle_timeout.MIN_SECONDS, express_idle_timeout.MAX_SECONDS)
    assert express_idle_timeout.MIN_SECONDS >= 1
    assert express_idle_timeout.MAX_SECONDS <= express_idle_timeout.ALB_MAX


@pytest.mark.parametrize("compute", ["AppRunner", "EcsExpress"])
def test_the_idle_timeout_resources_exist_only_on_express(compute: str) -> None:
    rendered = Rendered(ComputeType=compute, ImageUri=IMAGE)
    present = RESOURCES & set(rendered.resources)
    assert present == (RESOURCES if compute == "EcsExpress" else set())


@pytest.mark.parametrize("seconds", [60, 900, 3600])
def test_the_custom_resource_and_the_deployment_path_read_the_same_value(seconds: int) -> None:
    rendered = Rendered(ComputeType="EcsExpress", ImageUri=IMAGE, RequestTimeoutSeconds=seconds)
    props = rendered.props("ExpressIdleTimeout")
    env = rendered.props("ExpressIdleTimeoutFunction")["Environment"]["Variables"]
    assert {field: props[field] for field in express_idle_timeout.ENV_FIELDS} == {
        field: env[name] for field, name in express_idle_timeout.ENV_FIELDS.items()
    }
    assert props["IdleTimeoutSeconds"] == seconds
    assert props["LoadBalancerArn"] == LOAD_BALANCER
    assert props["ServiceArn"] == {"Fn::GetAtt": ["ExpressService", "ServiceArn"]}
    # Applied again after every Express update.
    assert props["ServiceRevision"] == {"Fn::GetAtt": ["ExpressService", "UpdatedAt"]}
    parsed = express_idle_timeout.parse_props(
        {
            "LoadBalancerArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/ecs-express/1",
            "ServiceArn": "arn:aws:ecs:us-east-1:123456789012:service/redcap-express/redcap",
            "IdleTimeoutSeconds": str(props["IdleTimeoutSeconds"]),
        }
    )
    assert parsed.seconds == seconds
    # The rule admits exactly what the function acts on: this service's deployment starts.
    pattern = rendered.props("ExpressIdleTimeoutFunction")["Events"]["DeploymentStarts"]["Properties"]["Pattern"]
    event = load_event("express_idle_timeout", "deployment_started.json")
    assert pattern["source"] == [event["source"]]
    assert pattern["detail-type"] == [event["detail-type"]]
    assert pattern["detail"] == {"eventName": [event["detail"]["eventName"]]}
    assert pattern["resources"] == [{"Fn::GetAtt": ["ExpressService", "ServiceArn"]}]
    assert express_idle_timeout.is_deployment_start(event, event["resources"][0])


def test_the_function_may_change_only_this_services_load_balancer() -> None:
    rendered = Rendered(ComputeType="EcsExpress", ImageUri=IMAGE)
    statements = rendered.function_statements("ExpressIdleTimeoutFunction")
    by_action = {
        tuple(s["Action"]) if isinstance(s["Action"], list) else (s["Action"],): s["Resource"] for s in statements
    }
    assert by_action == {
        # Describe* of Elastic Load Balancing has no resource-level permissions.
        ("elasticloadbalancing:DescribeLoadBalancerAttributes", "elasticloadbalancing:DescribeTags"): "*",
        (
            "elasticloadbalancing:ModifyLoadBalancerAttributes",
            "elasticloadbalancing:AddTags",
            "elasticloadbalancing:RemoveTags",
        ): LOAD_BALANCER,
    }
    log_group = rendered.props("ExpressIdleTimeoutLogGroup")
    assert log_group["KmsKeyId"] == {"Fn::GetAtt": ["KmsKey", "Arn"]}
    assert log_group["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${AWS::StackName}/ExpressIdleTimeoutFunction"}
    assert rendered.resource("ExpressIdleTimeout")["DependsOn"] == "ExpressIdleTimeoutLogGroup"
    alarm = rendered.props("ExpressIdleTimeoutFunctionErrorsAlarm")
    assert alarm["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": "ExpressIdleTimeoutFunction"}}]
    assert alarm["AlarmActions"] == [{"Ref": "NotificationTopic"}]
