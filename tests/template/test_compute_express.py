"""ComputeType: App Runner or ECS Express, rendered across DNS modes and environments."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

from testkit import load_event
from testkit.template import Rendered

IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/redcap:1"
DOMAIN = "redcap.example.org"
DNS = {
    "no-domain": {"DnsMode": "External", "SesEmailIdentity": "admin@example.org"},
    "external": {"DnsMode": "External", "DomainName": DOMAIN},
    "create-zone": {"DnsMode": "CreateZone", "DomainName": DOMAIN},
    "existing-zone": {"DnsMode": "ExistingZone", "DomainName": DOMAIN, "HostedZoneId": "Z0123456789ABC"},
}
APP_RUNNER_ONLY = {
    "AppRunnerEcrAccessRole",
    "AppRunnerInstanceRole",
    "AppRunnerSecurityGroup",
    "DbIngressFromAppRunner",
    "AppRunnerVpcConnector",
    "AppRunnerAutoScaling",
    "AppRunnerService",
    "AppRunnerDeploymentEventsRule",
    "AppRunner5xxRateAlarm",
    # NAT carries only App Runner's egress; Express tasks use the internet gateway.
}
EXPRESS_ONLY = {
    "EcsExpressCluster",
    "ExpressInfrastructureRole",
    "ExpressExecutionRole",
    "ExpressTaskRole",
    "ExpressLogGroup",
    "ExpressTaskSecurityGroup",
    "DbIngressFromExpress",
    "ExpressService",
    "ExpressDeploymentEventsRule",
    "ExpressRollbackEventsRule",
    "Express5xxRateAlarm",
    "ExpressLogGroups",
    "ServiceLogGroupsExpressPolicy",
    # With CanaryRollbackRule=RedcapRule (the renderings below opt in; the default is ExpressDefault).
    "ExpressCanaryAlarmFunction",
    "ExpressCanaryAlarmLogGroup",
    "ExpressCanaryAlarm",
    "ExpressCanaryAlarmFunctionErrorsAlarm",
}
CANARY = {name for name in EXPRESS_ONLY if name.startswith("ExpressCanaryAlarm")}
CASES = list(itertools.product(["AppRunner", "EcsExpress"], DNS, ["dev", "prod"]))
PSEUDO = {
    "AWS::Region",
    "AWS::AccountId",
    "AWS::Partition",
    "AWS::StackName",
    "AWS::NoValue",
    "AWS::URLSuffix",
    "AWS::StackId",
}
_SUB_RE = re.compile(r"\$\{([^}!][^}]*)\}")


def render(compute: str, dns: str = "no-domain", env: str = "dev") -> Rendered:
    return Rendered(ComputeType=compute, ImageUri=IMAGE, Environment=env, CanaryRollbackRule="RedcapRule", **DNS[dns])


def _names(node: Any, local: frozenset[str] = frozenset()) -> set[str]:
    """Every resource or parameter name a (resolved) node refers to."""
    found: set[str] = set()
    if isinstance(node, dict):
        if "Ref" in node and len(node) == 1:
            return {node["Ref"]}
        if "Fn::GetAtt" in node and len(node) == 1:
            return {node["Fn::GetAtt"][0]}
        if "Fn::Sub" in node and len(node) == 1:
            sub = node["Fn::Sub"]
            text, variables = (sub, {}) if isinstance(sub, str) else (sub[0], sub[1])
            found |= {m.split(".")[0] for m in _SUB_RE.findall(text)} - set(variables)
            for value in variables.values():
                found |= _names(value)
            return found
        for value in node.values():
            found |= _names(value)
    elif isinstance(node, list):
        for value in node:
            found |= _names(value)
    return found


@pytest.mark.parametrize(("compute", "dns", "env"), CASES)
def test_each_compute_type_has_exactly_its_resources_and_no_dangling_reference(
    compute: str, dns: str, env: str
) -> None:
    rendered = render(compute, dns, env)
    resources = rendered.resources
    ours, theirs = (APP_RUNNER_ONLY, EXPRESS_ONLY) if compute == "AppRunner" else (EXPRESS_ONLY, APP_RUNNER_ONLY)
    assert ours <= set(resources)
    assert not theirs & set(resources)
    # App Runner's NAT gateway: always in prod, in dev only with DevNatGateway=true (issue 19); never on Express.
    nat = {"NatEip1", "NatGateway1", "PrivateDefaultRoute1", "PrivateDefaultRoute2"}
    assert (nat <= set(resources)) is (compute == "AppRunner" and env == "prod")
    assert not (nat & set(resources)) or compute == "AppRunner"
    known = set(resources) | set(rendered.params) | PSEUDO
    for name, resource in resources.items():
        depends = resource.get("DependsOn", [])
        refs = _names(resource.get("Properties", {})) | set([depends] if isinstance(depends, str) else depends)
        assert refs <= known, (name, refs - known)
    for name, output in rendered.outputs.items():
        assert _names(output["Value"]) <= known, name
    # Each compute type has its own custom-domain resources; the outputs are the same on both.
    domain = dns != "no-domain"
    assert ("AppRunnerCustomDomain" in resources) is (domain and compute == "AppRunner")
    express_domain = {
        "ExpressHostHeader",
        "ExpressCertificateIssuedRule",
        "ExpressCertificateReconcileRule",
        "ExpressCertificateIssuedPermission",
        "ExpressCertificateReconcilePermission",
    }
    assert (express_domain <= set(resources)) is (domain and compute == "EcsExpress")
    assert not (express_domain & set(resources)) or compute == "EcsExpress"
    assert ("ExpressDomainRecords" in resources) is (
        compute == "EcsExpress" and dns in {"create-zone", "existing-zone"}
    )
    outputs = {"CustomUrl", "CustomDomainTarget", "CustomDomainStatus", "CustomDomainValidationRecords"}
    assert (outputs <= set(rendered.outputs)) is domain
    assert not (outputs & set(rendered.outputs)) or domain
    assert "ServiceUrl" in rendered.outputs


def test_the_container_contract_is_identical_on_both_compute_types() -> None:
    app_runner = render("AppRunner").props("AppRunnerService")["SourceConfiguration"]["ImageRepository"]
    image = app_runner["ImageConfiguration"]
    container = render("EcsExpress").props("ExpressService")["PrimaryContainer"]
    assert container["Image"] == app_runner["ImageIdentifier"] == IMAGE
    assert container["ContainerPort"] == image["Port"]
    assert container["Environment"] == image["RuntimeEnvironmentVariables"]
    secrets = [{"Name": s["Name"], "Value": s["ValueFrom"]} for s in container["Secrets"]]
    assert secrets == image["RuntimeEnvironmentSecrets"]
    names = [e["Name"] for e in container["Environment"]] + [s["Name"] for s in container["Secrets"]]
    assert len(names) == len(set(names))


def test_infrastructure_role_trusts_ecs_in_the_form_aws_documents() -> None:
    """Issue 17 item 4(c): no condition AWS does not document for this role (docs/compute.md)."""
    role = render("EcsExpress").props("ExpressInfrastructureRole")
    assert role["AssumeRolePolicyDocument"]["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "ecs.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ]
    assert role["ManagedPolicyArns"] == [
        {
            "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/"
            "AmazonECSInfrastructureRoleforExpressGatewayServices"
        }
    ]


def test_tasks_reach_every_aws_service_they_need_without_a_public_ip() -> None:
    """Issue 17 item 4(a): ECR (API and layers), CloudWatch Logs, S3, Secrets Manager and SES SMTP."""
    express = render("EcsExpress")
    endpoints = {
        r["Properties"]["ServiceName"]["Fn::Sub"]: r["Properties"]
        for r in express.of_type("AWS::EC2::VPCEndpoint").values()
    }
    interface = {
        name.rsplit(".", 1)[-1] if "ecr" not in name else name.split("}.", 1)[1]: props
        for name, props in endpoints.items()
        if props["VpcEndpointType"] == "Interface"
    }
    assert set(interface) == {"secretsmanager", "ecr.api", "ecr.dkr", "logs", "email-smtp"}
    prod = render("EcsExpress", env="prod")
    prod_subnets = {
        r["Properties"]["ServiceName"]["Fn::Sub"]: r["Properties"]["SubnetIds"]
        for r in prod.of_type("AWS::EC2::VPCEndpoint").values()
        if r["Properties"]["VpcEndpointType"] == "Interface"
    }
    assert len(prod_subnets) == 5
    for name, props in interface.items():
        assert props["PrivateDnsEnabled"] is True, name
        # Issue 19: one AZ in dev, both in prod.
        assert props["SubnetIds"] == [{"Ref": "PrivateSubnet1"}], name
    for name, subnets in prod_subnets.items():
        assert subnets == [{"Ref": "PrivateSubnet1"}, {"Ref": "PrivateSubnet2"}], name
    https = express.props("EndpointSecurityGroup")["SecurityGroupIngress"]
    assert [(r["FromPort"], r["CidrIp"]) for r in https] == [(443, {"Fn::GetAtt": ["Vpc", "CidrBlock"]})]
    for name in ("ecr.api", "ecr.dkr", "logs", "secretsmanager"):
        assert interface[name]["SecurityGroupIds"] == [{"Ref": "EndpointSecurityGroup"}], name
    assert interface["email-smtp"]["SecurityGroupIds"] == [{"Ref": "ExpressSmtpEndpointSecurityGroup"}]
    smtp = express.props("ExpressSmtpEndpointSecurityGroup")["SecurityGroupIngress"]
    assert [(r["FromPort"], r["ToPort"], r["CidrIp"]) for r in smtp] == [
        (587, 587, {"Fn::GetAtt": ["Vpc", "CidrBlock"]})
    ]
    # The container's SMTP host is the name the endpoint's private DNS answers for.
    container = {e["Name"]: e.get("Value") for e in express.props("ExpressService")["PrimaryContainer"]["Environment"]}
    assert container["SES_SMTP_HOST"] == {"Fn::Sub": "email-smtp.${AWS::Region}.amazonaws.com"}
    assert container["SES_SMTP_PORT"] == "587"
    # S3 (and ECR's image layers in S3) through the gateway endpoint on the tasks' route table.
    gateway = next(p for p in endpoints.values() if p["VpcEndpointType"] == "Gateway")
    assert {"Ref": "PublicRouteTable"} in gateway["RouteTableIds"]
    # The tasks' own egress admits HTTPS and SMTP to those endpoints.
    egress = express.props("ExpressTaskSecurityGroup")["SecurityGroupEgress"]
    assert {(r["FromPort"], r["ToPort"]) for r in egress} >= {(443, 443), (587, 587)}
    # App Runner with a NAT gateway keeps its endpoints as they were (its other egress is the NAT gateways).
    app_runner = Rendered(ComputeType="AppRunner", ImageUri=IMAGE, Environment="dev", DevNatGateway="true")
    names = {r["Properties"]["ServiceName"]["Fn::Sub"] for r in app_runner.of_type("AWS::EC2::VPCEndpoint").values()}
    assert names == {"com.amazonaws.${AWS::Region}.s3", "com.amazonaws.${AWS::Region}.secretsmanager"}
    gateway = next(
        iter(
            r
            for r in app_runner.of_type("AWS::EC2::VPCEndpoint").values()
            if r["Properties"]["VpcEndpointType"] == "Gateway"
        )
    )
    assert {"Ref": "PublicRouteTable"} not in gateway["Properties"]["RouteTableIds"]


def test_the_load_balancer_reaches_the_tasks_whatever_group_express_adds() -> None:
    """Issue 17 item 4(b): the tasks' own group admits the container port from the ALB's subnets."""
    express = render("EcsExpress")
    to_tasks = [
        r["Properties"]
        for r in express.of_type("AWS::EC2::SecurityGroupIngress").values()
        if r["Properties"]["GroupId"] == {"Ref": "ExpressTaskSecurityGroup"}
    ]
    port = express.props("ExpressService")["PrimaryContainer"]["ContainerPort"]
    assert sorted((str(r["CidrIp"]), r["FromPort"], r["ToPort"]) for r in to_tasks) == sorted(
        (str({"Fn::GetAtt": [subnet, "CidrBlock"]}), port, port) for subnet in ("PublicSubnet1", "PublicSubnet2")
    )
    # The service's subnets are those two: the ALB Express creates sits in them.
    network = express.props("ExpressService")["NetworkConfiguration"]
    assert network["Subnets"] == [{"Ref": "PublicSubnet1"}, {"Ref": "PublicSubnet2"}]


def test_task_role_carries_exactly_the_app_runner_runtime_grants() -> None:
    instance = render("AppRunner").props("AppRunnerInstanceRole")["Policies"]
    task = render("EcsExpress").props("ExpressTaskRole")["Policies"]
    assert task == instance
    for role in ("ExpressTaskRole", "ExpressExecutionRole"):
        trust = render("EcsExpress").props(role)["AssumeRolePolicyDocument"]["Statement"]
        assert trust == [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecs-tasks.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}},
            }
        ], role


def test_execution_role_reads_exactly_the_secrets_the_container_names() -> None:
    rendered = render("EcsExpress")
    statements = rendered.props("ExpressExecutionRole")["Policies"][0]["PolicyDocument"]["Statement"]
    secret_reads = [s for s in statements if s["Action"] == "secretsmanager:GetSecretValue"]
    assert len(secret_reads) == 1
    container = rendered.props("ExpressService")["PrimaryContainer"]
    assert secret_reads[0]["Resource"] == [s["ValueFrom"] for s in container["Secrets"]]
    wildcard = [s for s in statements if s["Resource"] == "*"]
    assert [s["Action"] for s in wildcard] == ["ecr:GetAuthorizationToken"]
    logs = [s for s in statements if "logs:PutLogEvents" in s["Action"]]
    assert logs == [
        {
            "Effect": "Allow",
            "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
            "Resource": {"Fn::GetAtt": ["ExpressLogGroup", "Arn"]},
        }
    ]
    infra = rendered.props("ExpressInfrastructureRole")
    assert infra["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "ecs.amazonaws.com"}
    assert [a["Fn::Sub"] for a in infra["ManagedPolicyArns"]] == [
        "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonECSInfrastructureRoleforExpressGatewayServices"
    ]


def test_express_service_is_sized_scaled_and_probed_like_app_runner() -> None:
    rendered = render("EcsExpress")
    props = rendered.props("ExpressService")
    assert props["Cluster"] == {"Ref": "EcsExpressCluster"}  # a name: an ARN fails ("Invalid identifier")
    assert props["HealthCheckPath"] == rendered.params["HealthCheckPath"]
    assert props["ScalingTarget"]["MinTaskCount"] == rendered.params["MinSize"]
    assert props["ScalingTarget"]["MaxTaskCount"] == rendered.params["MaxSize"]
    assert props["ScalingTarget"]["AutoScalingMetric"] == "AVERAGE_CPU"
    log = props["PrimaryContainer"]["AwsLogsConfiguration"]
    assert log["LogGroup"] == {"Ref": "ExpressLogGroup"}
    assert rendered.props("ExpressLogGroup")["KmsKeyId"] == {"Fn::GetAtt": ["KmsKey", "Arn"]}
    # REDCap's first start must find a key in S3_USER_SECRET, as on App Runner.
    assert rendered.resource("ExpressService")["DependsOn"] == ["S3UserSecretRotationSchedule", "ExpressLogGroups"]


def _map_key(expression: dict[str, Any], value: str) -> str:
    """Evaluate the template's Join(Split(".", Select(0, Split(" ", value)))) key expression."""
    join = expression["Fn::Join"]
    assert join[0] == ""
    split_dot = join[1]["Fn::Split"]
    assert split_dot[0] == "."
    select = split_dot[1]["Fn::Select"]
    assert select[0] == 0
    assert select[1]["Fn::Split"][0] == " "
    return "".join(value.split(" ")[0].split("."))


# The CpuMemoryPair rule's pairs (App Runner) and Fargate's valid memory per CPU (MiB).
PAIRS = {
    "0.25 vCPU": ["0.5 GB", "1 GB"],
    "0.5 vCPU": ["1 GB"],
    "1 vCPU": ["2 GB", "3 GB", "4 GB"],
    "2 vCPU": ["4 GB", "6 GB"],
    "4 vCPU": ["8 GB", "10 GB", "12 GB"],
}
FARGATE = {
    256: {512, 1024, 2048},
    512: set(range(1024, 4097, 1024)),
    1024: set(range(2048, 8193, 1024)),
    2048: set(range(4096, 16385, 1024)),
    4096: set(range(8192, 30721, 1024)),
}


@pytest.mark.parametrize(("cpu", "memory"), [(c, m) for c, ms in PAIRS.items() for m in ms])
def test_every_app_runner_size_maps_to_the_same_fargate_size(cpu: str, memory: str) -> None:
    rendered = render("EcsExpress")
    rendered.params.update(Cpu=cpu, Memory=memory)
    raw = rendered.template["Resources"]["ExpressService"]["Properties"]
    mappings = rendered.template["Mappings"]
    cpu_map, cpu_key_expr, cpu_field = raw["Cpu"]["Fn::FindInMap"]
    mem_map, mem_key_expr, mem_field = raw["Memory"]["Fn::FindInMap"]
    units = int(mappings[cpu_map][_map_key(cpu_key_expr, cpu)][cpu_field])
    mib = int(mappings[mem_map][_map_key(mem_key_expr, memory)][mem_field])
    assert units == int(float(cpu.split()[0]) * 1024)
    assert mib == int(float(memory.split()[0]) * 1024)
    assert mib in FARGATE[units]
    # Every allowed parameter value has a key (a value without one would fail the deploy).
    params = rendered.template["Parameters"]
    assert {_map_key(cpu_key_expr, v) for v in params["Cpu"]["AllowedValues"]} == set(mappings[cpu_map])
    assert {_map_key(mem_key_expr, v) for v in params["Memory"]["AllowedValues"]} == set(mappings[mem_map])


def test_express_entry_is_public_and_the_database_admits_only_the_tasks() -> None:
    rendered = render("EcsExpress")
    network = rendered.props("ExpressService")["NetworkConfiguration"]
    assert network["Subnets"] == [{"Ref": "PublicSubnet1"}, {"Ref": "PublicSubnet2"}]
    assert network["SecurityGroups"] == [{"Ref": "ExpressTaskSecurityGroup"}]
    # Its ingress rules are separate resources (test_the_load_balancer_reaches_the_tasks_...).
    assert "SecurityGroupIngress" not in rendered.props("ExpressTaskSecurityGroup")
    ingress = list(rendered.of_type("AWS::EC2::SecurityGroupIngress").values())
    to_db = [i["Properties"] for i in ingress if i["Properties"]["GroupId"] == {"Ref": "DbSecurityGroup"}]
    assert [i["SourceSecurityGroupId"] for i in to_db] == [{"Ref": "ExpressTaskSecurityGroup"}]
    assert [(i["FromPort"], i["ToPort"]) for i in to_db] == [(3306, 3306)]
    assert "SecurityGroupIngress" not in rendered.props("DbSecurityGroup")


@pytest.mark.parametrize("compute", ["AppRunner", "EcsExpress"])
def test_waf_cron_and_rotation_follow_the_compute(compute: str) -> None:
    rendered = render(compute)
    association = rendered.props("WebAclAssociation")["ResourceArn"]
    cron_url = rendered.props("CronCallerFunction")["Environment"]["Variables"]["CRON_URL"]
    ses = rendered.props("SesKeyRotationFunction")
    service_arn = ses["Environment"]["Variables"]["COMPUTE_SERVICE_ARN"]
    statements = rendered.props("SesKeyRotationFunctionRole")["Policies"][0]["PolicyDocument"]["Statement"]
    redeploy = [s for s in statements if s.get("Sid", "").startswith("Redeploy")]
    if compute == "AppRunner":
        assert association == {"Fn::GetAtt": ["AppRunnerService", "ServiceArn"]}
        assert cron_url == {"Fn::Sub": "https://${AppRunnerService.ServiceUrl}/cron.php"}
        assert service_arn == {"Fn::GetAtt": ["AppRunnerService", "ServiceArn"]}
        assert [(s["Action"], s["Resource"]) for s in redeploy] == [("apprunner:StartDeployment", service_arn)]
    else:
        assert association == {"Fn::GetAtt": ["ExpressService", "ECSManagedResourceArns.IngressPath.LoadBalancerArn"]}
        assert cron_url == {"Fn::Sub": "https://${ExpressService.Endpoint}/cron.php"}
        assert service_arn == {"Fn::GetAtt": ["ExpressService", "ServiceArn"]}
        # Scoped to this one service: no other service of the account can be redeployed.
        assert [(s["Action"], s["Resource"]) for s in redeploy] == [
            (["ecs:UpdateService", "ecs:DescribeServices"], service_arn)
        ]
    # The same web ACL (same rules) protects either entry.
    assert rendered.props("WebAclAssociation")["WebACLArn"] == {"Fn::GetAtt": ["WebAcl", "Arn"]}
    assert rendered.props("WebAcl")["Scope"] == "REGIONAL"


@pytest.mark.parametrize("dns", ["external", "create-zone", "existing-zone"])
@pytest.mark.parametrize("www", ["false", "true"])
def test_express_custom_domain_never_waits_for_acm_and_activates_on_events(dns: str, www: str) -> None:
    """Issue 17 item 2: nothing in the stack waits for DNS validation (a created zone is not delegated yet)."""
    rendered = Rendered(ComputeType="EcsExpress", ImageUri=IMAGE, EnableWwwSubdomain=www, **DNS[dns])
    hosts = [DOMAIN, f"www.{DOMAIN}"] if www == "true" else [DOMAIN]
    # CloudFormation's certificate resource stays CREATE_IN_PROGRESS until ACM issues it.
    assert not rendered.of_type("AWS::CertificateManager::Certificate")
    assert not rendered.of_type("AWS::ElasticLoadBalancingV2::ListenerCertificate")
    header = rendered.resource("ExpressHostHeader")
    props = header["Properties"]
    assert header["Type"] == "Custom::ExpressHostHeader"
    ingress = "ECSManagedResourceArns.IngressPath"
    assert props["ListenerRuleArn"] == {"Fn::GetAtt": ["ExpressService", f"{ingress}.ListenerRuleArn"]}
    assert props["ListenerArn"] == {"Fn::GetAtt": ["ExpressService", f"{ingress}.ListenerArn"]}
    assert props["HostNames"] == [h if h == DOMAIN else {"Fn::Sub": "www.${DomainName}"} for h in hosts]
    managed = dns != "external"
    zone = {"Ref": "HostedZone"} if dns == "create-zone" else ("Z0123456789ABC" if managed else "")
    # The zone the validation records go into; referencing it orders this resource's Delete first.
    assert props["HostedZoneId"] == zone
    assert props["ZoneCreatedByStack"] == ("true" if dns == "create-zone" else "false")
    # Re-applied after every Express update.
    assert props["ServiceRevision"] == {"Fn::GetAtt": ["ExpressService", "UpdatedAt"]}
    assert header["DependsOn"] == "ExpressHostHeaderLogGroup"
    # Activation: ACM's event and a schedule, both with the resource's properties as input.
    issued = rendered.props("ExpressCertificateIssuedRule")
    assert issued["EventPattern"] == {"source": ["aws.acm"], "detail-type": ["ACM Certificate Available"]}
    schedule = rendered.props("ExpressCertificateReconcileRule")
    assert schedule["ScheduleExpression"] == "rate(15 minutes)"
    for rule_id in ("ExpressCertificateIssuedRule", "ExpressCertificateReconcileRule"):
        rule = rendered.resource(rule_id)
        # Deleted before the custom resource: nothing re-attaches the certificate during its Delete.
        assert rule["DependsOn"] == "ExpressHostHeader"
        (target,) = rule["Properties"]["Targets"]
        assert target["Arn"] == {"Fn::GetAtt": ["ExpressHostHeaderFunction", "Arn"]}
        text, variables = target["Input"]["Fn::Sub"]
        for key in ("StackId", "ListenerRuleArn", "ListenerArn", "LoadBalancerArn", "HostNames", "HostedZoneId"):
            assert f'"{key}": ' in text, (rule_id, key)
        assert variables["Zone"] == (zone if managed else "")
        assert variables["Rule"] == props["ListenerRuleArn"]
    outputs = rendered.outputs
    assert outputs["CustomDomainTarget"]["Value"] == {"Fn::GetAtt": ["ExpressHostHeader", "DNSName"]}
    assert outputs["CustomDomainValidationRecords"]["Value"] == {
        "Fn::GetAtt": ["ExpressHostHeader", "ValidationRecords"]
    }
    if managed:
        records = rendered.props("ExpressDomainRecords")["RecordSets"]
        assert len(records) == len(hosts)
        for record in records:
            assert record["Type"] == "A"
            assert record["AliasTarget"]["DNSName"] == {"Fn::GetAtt": ["ExpressHostHeader", "DNSName"]}
            assert record["AliasTarget"]["HostedZoneId"] == {
                "Fn::GetAtt": ["ExpressHostHeader", "CanonicalHostedZoneId"]
            }


def test_the_outputs_tell_the_administrator_what_to_delegate() -> None:
    rendered = Rendered(ComputeType="EcsExpress", ImageUri=IMAGE, **DNS["create-zone"])
    outputs = rendered.outputs
    assert outputs["NameServers"]["Value"] == {"Fn::Join": [",", {"Fn::GetAtt": ["HostedZone", "NameServers"]}]}
    assert "delegate" in outputs["NameServers"]["Description"].lower()
    assert "ISSUED" in outputs["CustomDomainStatus"]["Description"]


def _actions(statement: dict[str, Any]) -> tuple[str, ...]:
    action = statement["Action"]
    return tuple(action) if isinstance(action, list) else (action,)


def test_express_domain_function_may_change_only_this_stacks_rule_listener_certificates_and_records() -> None:
    rendered = Rendered(ComputeType="EcsExpress", ImageUri=IMAGE, **DNS["create-zone"])
    statements = {s["Sid"]: s for s in rendered.function_statements("ExpressHostHeaderFunction")}
    ingress = "ECSManagedResourceArns.IngressPath"
    assert statements["HostNamesOnThisServicesRuleOnly"]["Resource"] == {
        "Fn::GetAtt": ["ExpressService", f"{ingress}.ListenerRuleArn"]
    }
    assert statements["CertificatesOnThisServicesListenerOnly"]["Resource"] == {
        "Fn::GetAtt": ["ExpressService", f"{ingress}.ListenerArn"]
    }
    # "*" only where the action has no resource type (Describe*, RequestCertificate, tagging a request).
    on_star = {a for s in statements.values() if s["Resource"] == "*" for a in _actions(s)}
    assert on_star == {
        "elasticloadbalancing:DescribeRules",
        "elasticloadbalancing:DescribeTags",
        "elasticloadbalancing:DescribeLoadBalancers",
        "elasticloadbalancing:DescribeListenerCertificates",
        "acm:RequestCertificate",
        "acm:AddTagsToCertificate",
    }
    stack_tag = {"aws:RequestTag/redcap-ctl:stack": {"Ref": "AWS::StackId"}}
    request = statements["RequestOnlyThisStacksDnsValidatedCertificate"]["Condition"]
    assert request["StringEquals"] == {**stack_tag, "acm:ValidationMethod": "DNS"}
    assert request["ForAllValues:StringEquals"]["acm:DomainNames"] == [DOMAIN]
    assert statements["TagTheRequestWithThisStack"]["Condition"]["StringEquals"] == stack_tag
    own = statements["OnlyThisStacksCertificates"]
    assert set(_actions(own)) == {"acm:DescribeCertificate", "acm:DeleteCertificate"}
    assert own["Condition"] == {"StringEquals": {"aws:ResourceTag/redcap-ctl:stack": {"Ref": "AWS::StackId"}}}
    write = statements["WriteOnlyValidationCnames"]
    assert write["Condition"]["ForAllValues:StringEquals"] == {
        "route53:ChangeResourceRecordSetsRecordTypes": ["CNAME"],
        "route53:ChangeResourceRecordSetsActions": ["CREATE", "DELETE"],
    }
    assert write["Condition"]["ForAllValues:StringLike"] == {
        "route53:ChangeResourceRecordSetsNormalizedRecordNames": [{"Fn::Sub": "_*.${DomainName}"}]
    }
    external = Rendered(ComputeType="EcsExpress", ImageUri=IMAGE, **DNS["external"])
    sids = {s["Sid"] for s in external.function_statements("ExpressHostHeaderFunction")}
    assert not {"WriteOnlyValidationCnames", "ReadTheZonesValidationRecords"} & sids
    log_group = rendered.props("ExpressHostHeaderLogGroup")
    assert log_group["KmsKeyId"] == {"Fn::GetAtt": ["KmsKey", "Arn"]}
    assert log_group["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${AWS::StackName}/ExpressHostHeaderFunction"}


@pytest.mark.parametrize("choice", ["RedcapRule", "ExpressDefault"])
def test_the_canary_rule_exists_only_on_express_when_asked(choice: str) -> None:
    express = Rendered(ComputeType="EcsExpress", ImageUri=IMAGE, CanaryRollbackRule=choice)
    assert (set(express.resources) >= CANARY) is (choice == "RedcapRule")
    assert not CANARY & set(express.resources) or choice == "RedcapRule"
    assert ("ExpressCanaryAlarms" in express.outputs) is (choice == "RedcapRule")
    app_runner = Rendered(ComputeType="AppRunner", ImageUri=IMAGE, CanaryRollbackRule=choice)
    assert not CANARY & set(app_runner.resources)
    assert "ExpressCanaryAlarms" not in app_runner.outputs


def test_the_canary_rule_is_the_same_on_both_paths_and_follows_every_express_update() -> None:
    from redcap_ctl import express_canary, express_events

    rendered = Rendered(
        ComputeType="EcsExpress", ImageUri=IMAGE, CanaryRollbackRule="RedcapRule", CanaryClientErrorPercent=12.5
    )
    props = rendered.props("ExpressCanaryAlarm")
    env = rendered.props("ExpressCanaryAlarmFunction")["Environment"]["Variables"]
    # The custom resource and the deployment-start path read one rule, each from its own source.
    assert {field: props[field] for field in express_canary.ENV_FIELDS} == {
        field: env[name] for field, name in express_canary.ENV_FIELDS.items()
    }
    parsed = express_canary.parse_props(
        {k: str(v) for k, v in props.items() if not isinstance(v, dict)}
        | {
            "Cluster": "redcap-express",
            "ServiceArn": "arn:aws:ecs:us-east-1:123456789012:service/redcap-express/redcap",
            "ManagedAlarmArns": ["arn:aws:cloudwatch:us-east-1:123456789012:alarm:redcap-rollback"],
        }
    )
    assert parsed.managed_alarms == {"redcap-rollback"}
    assert parsed.rule == express_canary.Rule(server_error_percent=1, client_error_percent=12.5, min_client_errors=5)
    assert props["ServiceRevision"] == {"Fn::GetAtt": ["ExpressService", "UpdatedAt"]}
    assert props["ServiceArn"] == {"Fn::GetAtt": ["ExpressService", "ServiceArn"]}
    # The rule's pattern admits exactly what the function acts on: this service's deployment starts.
    pattern = rendered.props("ExpressCanaryAlarmFunction")["Events"]["DeploymentStarts"]["Properties"]["Pattern"]
    event = load_event("express_canary", "deployment_started.json")
    assert pattern["source"] == [event["source"]]
    assert pattern["detail-type"] == [event["detail-type"]]
    assert pattern["detail"] == {"eventName": [event["detail"]["eventName"]]}
    assert pattern["resources"] == [{"Fn::GetAtt": ["ExpressService", "ServiceArn"]}]
    assert express_events.is_deployment_start(event, event["resources"][0])


def test_the_canary_function_reads_this_service_and_writes_only_alarms() -> None:
    rendered = Rendered(ComputeType="EcsExpress", ImageUri=IMAGE, CanaryRollbackRule="RedcapRule")
    statements = rendered.function_statements("ExpressCanaryAlarmFunction")
    by_action = {
        tuple(s["Action"]) if isinstance(s["Action"], list) else (s["Action"],): s["Resource"] for s in statements
    }
    managed = {"Fn::GetAtt": ["ExpressService", "ECSManagedResourceArns.MetricAlarms"]}
    assert by_action == {
        ("ecs:DescribeServices",): {"Fn::GetAtt": ["ExpressService", "ServiceArn"]},
        # Issue 17 item 5: only the alarms Express manages for this service, never alarm:*.
        ("cloudwatch:DescribeAlarms", "cloudwatch:PutMetricAlarm"): managed,
    }
    # The code checks the same list, from the resource's properties and from its environment.
    assert rendered.props("ExpressCanaryAlarm")["ManagedAlarmArns"] == managed
    env = rendered.props("ExpressCanaryAlarmFunction")["Environment"]["Variables"]
    assert env["EXPRESS_MANAGED_ALARMS"] == {"Fn::Join": [",", managed]}
    log_group = rendered.props("ExpressCanaryAlarmLogGroup")
    assert log_group["KmsKeyId"] == {"Fn::GetAtt": ["KmsKey", "Arn"]}
    assert log_group["LogGroupName"] == {"Fn::Sub": "/aws/lambda/${AWS::StackName}/ExpressCanaryAlarmFunction"}
    assert rendered.resource("ExpressCanaryAlarm")["DependsOn"] == "ExpressCanaryAlarmLogGroup"


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_express_pays_for_no_nat_and_names_no_egress_address(env: str) -> None:
    express = render("EcsExpress", env=env)
    assert not express.of_type("AWS::EC2::NatGateway")
    assert not express.of_type("AWS::EC2::EIP")
    assert express.props("WafRedcapEgressIpSet")["Addresses"] == []
    # The tasks sit in the public subnets (internet gateway route); the database stays private.
    subnets = express.props("ExpressService")["NetworkConfiguration"]["Subnets"]
    assert subnets == [{"Ref": "PublicSubnet1"}, {"Ref": "PublicSubnet2"}]
    app_runner = render("AppRunner", env=env)
    # dev on App Runner has no NAT gateway by default (issue 19): no egress address either.
    assert len(app_runner.props("WafRedcapEgressIpSet")["Addresses"]) == (2 if env == "prod" else 0)
    with_nat = Rendered(ComputeType="AppRunner", ImageUri=IMAGE, Environment=env, DevNatGateway="true")
    assert len(with_nat.props("WafRedcapEgressIpSet")["Addresses"]) == (2 if env == "prod" else 1)


def test_compute_md_cites_every_express_behaviour_the_template_relies_on() -> None:
    """Issue 17 item 4: each behaviour in docs/compute.md's table is cited, and what it names exists."""
    from testkit import ROOT

    text = (ROOT / "docs" / "compute.md").read_text(encoding="utf-8")
    table = text[text.index("### What the template relies on from Express") : text.index("## Custom domain on Express")]
    rows = [line for line in table.splitlines() if line.startswith("| (") or line.startswith("| Which alarms")]
    assert len(rows) == 5
    for row in rows:
        assert "](https://" in row, row  # every behaviour has a source
    express = render("EcsExpress")
    named = set(re.findall(r"`(Express[A-Za-z0-9]+)(?:/\d)?`", table))
    assert named >= {
        "ExpressEcrApiEndpoint",
        "ExpressEcrDkrEndpoint",
        "ExpressLogsEndpoint",
        "ExpressSmtpEndpoint",
        "ExpressSmtpEndpointSecurityGroup",
        "ExpressTaskSecurityGroup",
        "ExpressIngressFromPublicSubnet1",
    }
    for name in named:
        assert name in express.resources, name
    for claim in ("ecr.api", "ecr.dkr", "logs", "email-smtp", "AmazonECSInfrastructureRoleforExpressGatewayServices"):
        assert claim in table, claim
    assert "ECSManagedResourceArns.MetricAlarms" in table
