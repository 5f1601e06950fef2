"""An ECS Express gateway service as CloudFormation leaves it, laid out in moto.

moto has no Express APIs (CreateExpressGatewayService raises NotImplementedError), and the
control plane calls none: it acts on what Express provisions, through APIs moto does serve.
This builds those pieces the way Express does (an ECS service in a cluster, an internet-facing
ALB with an HTTPS listener whose host-header rule admits only the service's own endpoint, a
target group) and returns the values ``!GetAtt ExpressService.<attribute>`` gives the template.

moto starts no tasks: a service created with ``desired=0`` has a COMPLETED rollout (idle), one
with ``desired > 0`` stays IN_PROGRESS (a deployment in flight, as during Express's canary).

The canary's rollback alarm is laid out as AWS documents Express's rule (4xx + 5xx above 1 % of the
target group's requests in 2 of 3 one-minute datapoints), written here independently of the
stack's own alarm code, and named in the service's ``deploymentConfiguration.alarms`` (moto keeps
what UpdateService sets there).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3

REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account


@dataclass
class ExpressService:
    """One Express service in moto, and the GetAtt values CloudFormation would return for it."""

    region: str
    cluster: str
    name: str
    endpoint: str
    service_arn: str
    load_balancer_arn: str
    load_balancer_dns: str
    load_balancer_zone: str
    listener_arn: str
    rule_arn: str
    target_group_arn: str
    alarm_name: str = ""

    @classmethod
    def create(cls, cluster: str = "redcap-express", name: str = "redcap", *, desired: int = 0) -> ExpressService:
        region = REGION
        ec2 = boto3.client("ec2", region_name=region)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{region}{az}")["Subnet"][
                "SubnetId"
            ]
            for i, az in enumerate("ab")
        ]
        elbv2 = boto3.client("elbv2", region_name=region)
        acm = boto3.client("acm", region_name=region)
        ecs = boto3.client("ecs", region_name=region)
        endpoint = f"{name}-1a2b3c.ecs.{region}.on.aws"
        lb = elbv2.create_load_balancer(Name="ecs-express-gateway-alb", Subnets=subnets)["LoadBalancers"][0]
        tg = elbv2.create_target_group(Name=name, Protocol="HTTP", Port=8080, VpcId=vpc, TargetType="ip")
        own_cert = acm.request_certificate(DomainName=endpoint, ValidationMethod="DNS")["CertificateArn"]
        listener = elbv2.create_listener(
            LoadBalancerArn=lb["LoadBalancerArn"],
            Protocol="HTTPS",
            Port=443,
            Certificates=[{"CertificateArn": own_cert}],
            DefaultActions=[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "404"}}],
        )["Listeners"][0]["ListenerArn"]
        tg_arn = tg["TargetGroups"][0]["TargetGroupArn"]
        ecs.create_cluster(clusterName=cluster)
        ecs.register_task_definition(
            family=name,
            containerDefinitions=[{"name": "redcap", "image": "redcap:local", "memory": 4096}],
            requiresCompatibilities=["FARGATE"],
            networkMode="awsvpc",
            cpu="2048",
            memory="4096",
        )
        service_arn = ecs.create_service(
            cluster=cluster, serviceName=name, taskDefinition=name, desiredCount=desired, launchType="FARGATE"
        )["service"]["serviceArn"]
        service = cls(
            region=region,
            cluster=cluster,
            name=name,
            endpoint=endpoint,
            service_arn=service_arn,
            load_balancer_arn=lb["LoadBalancerArn"],
            load_balancer_dns=lb["DNSName"],
            load_balancer_zone=lb["CanonicalHostedZoneId"],
            listener_arn=listener,
            rule_arn="",
            target_group_arn=tg_arn,
        )
        service.rule_arn = service.new_rule(priority=1)
        service.alarm_name = f"ecs-express-{name}-deployment-rollback"
        service.express_resets_alarm()
        ecs.update_service(
            cluster=cluster,
            service=service_arn,
            deploymentConfiguration={
                "strategy": "CANARY",
                "canaryConfiguration": {"canaryPercent": 5.0, "canaryBakeTimeInMinutes": 3},
                "alarms": {"alarmNames": [service.alarm_name], "enable": True, "rollback": True},
            },
        )
        return service

    @property
    def cloudwatch(self) -> Any:
        return boto3.client("cloudwatch", region_name=self.region)

    def express_resets_alarm(self) -> None:
        """The rollback alarm as Express writes it (at create, and maybe again on an update)."""
        dimensions = [
            {"Name": "TargetGroup", "Value": self.target_group_arn.split(":")[-1]},
            {"Name": "LoadBalancer", "Value": self.load_balancer_arn.split("loadbalancer/")[-1]},
        ]

        def stat(metric_id: str, metric: str) -> dict[str, Any]:
            return {
                "Id": metric_id,
                "ReturnData": False,
                "MetricStat": {
                    "Metric": {"Namespace": "AWS/ApplicationELB", "MetricName": metric, "Dimensions": dimensions},
                    "Period": 60,
                    "Stat": "Sum",
                },
            }

        self.cloudwatch.put_metric_alarm(
            AlarmName=self.alarm_name,
            AlarmDescription="Express canary rollback: 4xx and 5xx responses",
            EvaluationPeriods=3,
            DatapointsToAlarm=2,
            Threshold=1.0,
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching",
            Metrics=[
                stat("m4xx", "HTTPCode_Target_4XX_Count"),
                stat("m5xx", "HTTPCode_Target_5XX_Count"),
                stat("requests", "RequestCount"),
                {"Id": "rate", "Expression": "100 * (m4xx + m5xx) / requests", "ReturnData": True},
            ],
        )

    def put_cpu_alarm(self, name: str) -> None:
        """An alarm on a metric that is not the load balancer's (what the canary rule cannot use)."""
        self.cloudwatch.put_metric_alarm(
            AlarmName=name,
            Namespace="AWS/ECS",
            MetricName="CPUUtilization",
            Statistic="Average",
            Period=60,
            EvaluationPeriods=3,
            Threshold=90.0,
            ComparisonOperator="GreaterThanThreshold",
        )

    @property
    def alarm_arn(self) -> str:
        """The rollback alarm's ARN as ECSManagedResourceArns.MetricAlarms lists it (moto's account)."""
        return f"arn:aws:cloudwatch:{self.region}:{ACCOUNT}:alarm:{self.alarm_name}"

    def alarm(self) -> dict[str, Any]:
        alarms: list[dict[str, Any]] = self.cloudwatch.describe_alarms(AlarmNames=[self.alarm_name])["MetricAlarms"]
        return alarms[0]

    # ----- clients as the test (not the code under test) sees them
    @property
    def elbv2(self) -> Any:
        return boto3.client("elbv2", region_name=self.region)

    @property
    def ecs(self) -> Any:
        return boto3.client("ecs", region_name=self.region)

    def new_rule(self, priority: int) -> str:
        """A host-header rule for the service's own endpoint (a replaced service gets a new one)."""
        arn: str = self.elbv2.create_rule(
            ListenerArn=self.listener_arn,
            Priority=priority,
            Conditions=[{"Field": "host-header", "HostHeaderConfig": {"Values": [self.endpoint]}}],
            Actions=[{"Type": "forward", "TargetGroupArn": self.target_group_arn}],
        )["Rules"][0]["RuleArn"]
        return arn

    def hosts(self, rule: str | None = None) -> list[str]:
        conditions = self.elbv2.describe_rules(RuleArns=[rule or self.rule_arn])["Rules"][0]["Conditions"]
        return [v for c in conditions if c["Field"] == "host-header" for v in c["HostHeaderConfig"]["Values"]]

    def set_hosts(self, hosts: list[str]) -> None:
        """A person (or an Express update) rewriting the rule's host names."""
        self.elbv2.modify_rule(
            RuleArn=self.rule_arn, Conditions=[{"Field": "host-header", "HostHeaderConfig": {"Values": hosts}}]
        )

    def listener_certificates(self) -> list[str]:
        """Certificates on the HTTPS listener besides its default (Express's own endpoint certificate)."""
        described = self.elbv2.describe_listener_certificates(ListenerArn=self.listener_arn)["Certificates"]
        return [str(c["CertificateArn"]) for c in described if not c.get("IsDefault")]

    def deployment_ids(self) -> list[str]:
        service = self.ecs.describe_services(cluster=self.cluster, services=[self.service_arn])["services"][0]
        return [str(d["id"]) for d in service["deployments"]]

    def attributes(self) -> dict[str, str]:
        """``ExpressService`` and ``ExpressService.<attribute>`` as local.stack resolves GetAtt."""
        prefix = "ExpressService.ECSManagedResourceArns.IngressPath"
        return {
            "ExpressService": self.service_arn,
            "ExpressService.ServiceArn": self.service_arn,
            "ExpressService.Endpoint": self.endpoint,
            "ExpressService.UpdatedAt": "2026-11-28T00:00:00Z",
            f"{prefix}.LoadBalancerArn": self.load_balancer_arn,
            f"{prefix}.ListenerArn": self.listener_arn,
            f"{prefix}.ListenerRuleArn": self.rule_arn,
            # The alarms Express manages for the service (a list in AWS; one alarm here).
            "ExpressService.ECSManagedResourceArns.MetricAlarms": self.alarm_arn,
            "EcsExpressCluster": self.cluster,
        }
