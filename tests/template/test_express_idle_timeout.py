"""RequestTimeoutSeconds: the shared parameter, and the Express load balancer's idle timeout that follows it."""

from __future__ import annotations

import re

import pytest

from redcap_ctl import express_events, express_idle_timeout
from testkit import ROOT, TEMPLATE, load_event
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

# The block every wave-2 change that uses the parameter inserts, word for word (BRIEF.md). The
# administrator's parameters of issue 18 item 3 follow it (tests/template/test_admin_parameters.py
# pins that order), so the block is no longer directly followed by Cpu.
CONTRACT = """\
  RequestTimeoutSeconds:
    Type: Number
    Default: 300
    MinValue: 60
    MaxValue: 3600
    Description: >-
      Longest request REDCap serves, in seconds: PHP's max_execution_time and, on ECS Express, the load
      balancer's idle timeout. App Runner always ends a request at 120 s (docs/compute.md).
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
    assert express_events.is_deployment_start(event, event["resources"][0])


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


# ----- docs/compute.md "Long requests" tied to the code -----
COMPUTE_DOC = ROOT / "docs" / "compute.md"
INSTALL_PHP = ROOT / "containers" / "redcap" / "rootfs" / "opt" / "redcap-image" / "lib" / "install.php"


def _long_requests() -> str:
    text = COMPUTE_DOC.read_text(encoding="utf-8") + "\n## "
    section = re.search(r"^## Long requests\n(.*?)(?=^## )", text, re.M | re.S)
    assert section, "docs/compute.md has no '## Long requests' section"
    return section.group(1)


def test_the_doc_cites_the_sources_of_every_aws_behaviour_it_relies_on() -> None:
    text = _long_requests()
    for url in (
        # the 120 s App Runner limit
        "https://docs.aws.amazon.com/apprunner/latest/dg/develop.html",
        # the attribute, its range and default
        "https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_LoadBalancerAttribute.html",
        # Express keeps changes made outside it
        "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/express-service-advanced-customization.html",
        # no load-balancer property on the resource
        "https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-resource-ecs-expressgatewayservice.html",
    ):
        assert url in text, url
    assert f"`{express_idle_timeout.ATTRIBUTE}`" in text
    assert f"1-{express_idle_timeout.ALB_MAX} s, {express_idle_timeout.ALB_DEFAULT} s by default" in text
    assert "120 s" in text
    assert "**The ALB is shared.**" in text


def _background_rows() -> dict[str, str]:
    php = INSTALL_PHP.read_text(encoding="utf-8")
    body = re.search(r"function rc_background_job_rows\(\): array\n\{\n(.*?)\n\}\n", php, re.S)
    assert body, "install.php has no rc_background_job_rows()"
    return dict(re.findall(r"'([a-z0-9_]+)' => '([^']*)'", body.group(1)))


def test_background_job_switches_are_seeded_only_with_the_first_install_and_documented() -> None:
    rows = _background_rows()
    assert rows == {"bulk_record_delete_enable_global": "1"}
    php = INSTALL_PHP.read_text(encoding="utf-8")
    # Called once, inside the first-install seeding transaction (before its marker is written),
    # never on later boots.
    assert php.count("rc_background_job_rows()") == 2  # its definition and one call
    seeding = re.search(r"\$db->begin_transaction\(\);(.*?)rc_write_configured_marker\(\$db, 'seeded'\);", php, re.S)
    assert seeding, "install.php: the seeding transaction moved"
    assert "rc_background_job_rows() + $rows" in seeding.group(1)
    text = _long_requests()
    for field, value in rows.items():
        assert f"`redcap_config.{field} = {value}`" in text, field
    assert "`rc_background_job_rows()`" in text
