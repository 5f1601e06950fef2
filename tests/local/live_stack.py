"""A deployed stack as ``make smoke`` reads it, laid out in make local's emulators (both compute types).

What ``make local`` creates for the Lambdas (``local.platform``, ``local.areas.cron``) plus what a
deployed stack has and smoke reads: the stack itself (parameters as rendered from template.yaml,
outputs resolved from the template's Outputs against what was created, resources with their
physical ids), the cron caller's metrics (the real handler's tick against the REDCap stand-in, its
EMF lines published the way CloudWatch extracts them), a GuardDuty detector, the SES identity, the
alarms, the running image, and REDCap itself over HTTPS behind the template's web ACL
(``testkit.emulators.redcap_site``).

Faults are set on the returned :class:`LiveStack` by the tests, one per smoke check.
"""

from __future__ import annotations

import io
import json
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

from local import platform
from local.areas import cron
from local.env import ACCOUNT_ID, HOST, REGION, LocalMotoServer, QuietHandler, patched_environ, sandbox_environ
from local.runner import Run, emitted_metrics, install_routers, uninstall_routers
from local.scenarios import DOMAIN, STACK_PARAMS, Local
from local.stack import STACK_NAME, Stack, Unresolved
from redcap_ctl.guardduty import DEFAULT_FEATURES
from testkit.emulators.redcap_site import LocalCa, RedcapSite
from testkit.emulators.stack_reads import DeployedStack, StackReads
from testkit.waf_eval import WebAclEvaluator

PINNED = f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com/redcap@sha256:{'ab' * 32}"
OTHER_DIGEST = f"sha256:{'cd' * 32}"
# Example addresses (RFC 5737) for the NAT gateways the WAF egress set names on App Runner.
NAT_ADDRESSES = {"NatEip1": "198.51.100.1", "NatEip2": "198.51.100.2"}
ALARMS = ("CronFailureAlarm", "CronDeadLetterAlarm", "AuroraCapacityAtMaxAlarm")
# Express tasks in moto get no public IP, so the healthy Express stack reaches AWS through these.
ENDPOINT_TYPES = {"Interface", "Gateway"}


class SmokeMotoServer(LocalMotoServer):
    """make local's moto server with the stack-reads layer in front.

    ``moto_gaps`` is left out: smoke needs none of its GuardDuty or rotation fixes, and they patch
    moto for the whole process.
    """

    def __init__(self, reads: StackReads) -> None:
        super().__init__()
        self.reads = reads

    def _server_entry(self) -> None:
        app = self.reads.wrap(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(HOST, 0, app, True, request_handler=QuietHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


def _moto_eni_gap() -> None:
    """moto 5.2.5's RunTask for awsvpc reads ``privateDnsName`` from an ENI that has none."""
    from moto.ec2.models.elastic_network_interfaces import NetworkInterface

    if not hasattr(NetworkInterface, "private_dns_name"):
        # EC2's private DNS name form in us-east-1: ip-<address with dashes>.ec2.internal.
        NetworkInterface.private_dns_name = property(  # type: ignore[assignment]
            lambda self: f"ip-{str(self.private_ip_address).replace('.', '-')}.ec2.internal"
        )


def publish_emf(cloudwatch: Any, output: str, environment: Mapping[str, str]) -> int:
    """Put the metrics of Powertools' EMF lines into CloudWatch, as CloudWatch Logs extracts them.

    Embedded metric format specification (CloudWatch User Guide): each ``_aws.CloudWatchMetrics``
    directive names a namespace, dimension sets (keys whose values are members of the line) and
    metrics (members of the line).

    Namespace and ``service`` are the function's own, from ``environment`` (the template's
    POWERTOOLS_METRICS_NAMESPACE and POWERTOOLS_SERVICE_NAME): Lambda sets them before the first
    import, while a test process may have imported Powertools' Metrics earlier with the suite's values.
    """
    count = 0
    for line in output.splitlines():
        line = line.strip()
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        blob = json.loads(line)
        if "service" in blob:
            blob["service"] = environment["POWERTOOLS_SERVICE_NAME"]
        for directive in blob["_aws"]["CloudWatchMetrics"]:
            directive["Namespace"] = environment["POWERTOOLS_METRICS_NAMESPACE"]
            for dimension_set in directive.get("Dimensions", [[]]):
                dims = [{"Name": k, "Value": str(blob[k])} for k in dimension_set]
                data = []
                for metric in directive["Metrics"]:
                    values = blob[metric["Name"]]
                    for value in values if isinstance(values, list) else [values]:
                        data.append(
                            {
                                "MetricName": metric["Name"],
                                "Dimensions": dims,
                                "Value": float(value),
                                "Unit": metric.get("Unit", "None"),
                            }
                        )
                cloudwatch.put_metric_data(Namespace=directive["Namespace"], MetricData=data)
                count += len(data)
    return count


@dataclass
class LiveStack:
    compute: str
    local: Local
    reads: StackReads
    deployed: DeployedStack
    site: RedcapSite
    smoke_env: dict[str, str]
    service_host: str
    tick_output: str = ""  # the real cron caller's output of its tick (EMF lines included)
    tick_env: dict[str, str] = field(default_factory=dict)  # the cron caller's environment
    ticking: bool = True  # the schedule calls the cron caller every minute: a tick lands before each run

    @property
    def stack(self) -> Stack:
        return self.local.stack

    def client(self, service: str) -> Any:
        # The environment again: a test's own fixtures (tests/conftest.py) reset AWS_ENDPOINT_URL per test.
        with patched_environ(self.smoke_env):
            return boto3.session.Session().client(service, region_name=REGION)  # type: ignore[call-overload]

    def run_smoke(self, *args: str, session: Any = None) -> tuple[int, str]:
        from smoke.__main__ import main

        out = io.StringIO()
        if self.ticking:
            # As on a live stack, the latest tick is recent whatever time the tests took so far.
            publish_emf(self.client("cloudwatch"), self.tick_output, self.tick_env)
        with patched_environ(self.smoke_env):
            code = main(
                ["--stack", self.deployed.name, "--region", REGION, *args],
                session=session,
                environ=self.smoke_env,
                out=out,
            )
        return code, out.getvalue()

    # ----- handles the fault injections need (moto runs in this process)
    def express_tasks(self) -> list[Any]:
        return moto_tasks()

    def cloudwatch_backend(self) -> Any:
        from moto.cloudwatch.models import cloudwatch_backends

        return cloudwatch_backends[ACCOUNT_ID][REGION]

    def ses_identity(self) -> Any:
        from moto.sesv2.models import sesv2_backends

        return sesv2_backends[ACCOUNT_ID][REGION].get_email_identity(DOMAIN)


def _reset_moto(url: str) -> None:
    """moto server's documented reset endpoint (POST /moto-api/reset): every backend emptied."""
    request = urllib.request.Request(f"{url}/moto-api/reset", method="POST", data=b"")
    with urllib.request.urlopen(request, timeout=10) as response:
        response.read()


def moto_tasks() -> list[Any]:
    from moto.ecs.models import ecs_backends

    backend = ecs_backends[ACCOUNT_ID][REGION]
    return [task for tasks in backend.tasks.values() for task in tasks.values()]


def _outputs(stack: Stack) -> dict[str, str]:
    """The template's Outputs (their Conditions applied), resolved against what the run created."""
    found: dict[str, str] = {}
    for name, output in stack.rendered.outputs.items():
        try:
            found[name] = stack.value(output["Value"], f"Outputs.{name}")
        except (Unresolved, KeyError, TypeError, IndexError):
            continue  # something make local does not create (the database endpoints, the image build)
    return found


def _resources(stack: Stack) -> dict[str, tuple[str, str]]:
    return {
        logical: (stack.resources[logical]["Type"], physical)
        for logical, physical in stack.physical.items()
        if "." not in logical and stack.has(logical)
    }


def _express_running_image(live_local: Local) -> None:
    """The service's task definition runs the pinned image, one task runs, and the endpoints exist."""
    _moto_eni_gap()
    service = live_local.services["express"]
    ecs = live_local.client("ecs")
    definition = ecs.register_task_definition(
        family=service.name,
        containerDefinitions=[{"name": "redcap", "image": PINNED, "memory": 4096}],
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="2048",
        memory="4096",
    )["taskDefinition"]["taskDefinitionArn"]
    ecs.update_service(cluster=service.cluster, service=service.service_arn, taskDefinition=definition)
    ec2 = live_local.client("ec2")
    lb = live_local.client("elbv2").describe_load_balancers(LoadBalancerArns=[service.load_balancer_arn])
    vpc = lb["LoadBalancers"][0]["VpcId"]
    subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]]
    ecs.run_task(
        cluster=service.cluster,
        taskDefinition=definition,
        launchType="FARGATE",
        startedBy=f"ecs-svc/{service.name}",
        networkConfiguration={"awsvpcConfiguration": {"subnets": subnets[:1], "securityGroups": []}},
    )
    from smoke.checks import EXPRESS_TASK_ENDPOINTS

    for name, kind in EXPRESS_TASK_ENDPOINTS.items():
        ec2.create_vpc_endpoint(
            VpcId=vpc,
            ServiceName=f"com.amazonaws.{REGION}.{name}",
            VpcEndpointType=kind,
            **({"SubnetIds": subnets} if kind == "Interface" else {}),
        )
    live_local.services["express-vpc"] = vpc
    live_local.services["express-subnets"] = subnets


@contextmanager
def live_stack(compute: str, directory: Path, **params: Any) -> Iterator[LiveStack]:
    """Build the deployed stack in fresh emulators; everything stops when the block ends."""
    with ExitStack() as exits:
        reads = StackReads()
        server = SmokeMotoServer(reads)
        server.start()
        exits.callback(server.stop)
        # moto's backends live in the process, not in the server: start empty, leave nothing behind.
        _reset_moto(server.url)
        exits.callback(_reset_moto, server.url)
        env = sandbox_environ(server.url)
        exits.enter_context(patched_environ(env, scrub=True))
        stack = Stack(**{**STACK_PARAMS, "ImageUri": PINNED, **params}, ComputeType=compute)
        local = Local(stack=stack, run=Run(out=io.StringIO()), moto_url=server.url, env=env, exit_stack=exits)

        cron.provision(local)  # the compute (App Runner emulator or Express in moto), CronSecret, WAF set
        platform.rotation_targets(local)
        if compute == "AppRunner":
            emulator = local.services["apprunner"]
            emulator.services[stack.physical["AppRunnerService"]].image_identifier = PINNED
            service_host = stack.physical["AppRunnerService.ServiceUrl"]
        else:
            _express_running_image(local)
            # ECS reports the digest a task's container runs (DescribeTasks containers[].imageDigest); moto does not.
            for task in moto_tasks():
                task.containers[0].image_digest = PINNED.split("@", 1)[1]
            service_host = stack.physical["ExpressService.Endpoint"]

        # The cron caller's real handler, one tick against the REDCap stand-in; its metrics go to CloudWatch.
        install_routers()
        try:
            tick = cron.tick(local)
        finally:
            uninstall_routers()
        if tick.metrics.get("CronSuccess") != 1:
            raise RuntimeError(f"the cron tick did not succeed: {tick.result} {tick.metrics}")
        tick_env = cron.function_env(local)
        publish_emf(local.client("cloudwatch"), tick.output, tick_env)
        if not emitted_metrics(tick.output):
            raise RuntimeError("the cron tick printed no EMF metrics")

        schedule = f"{STACK_NAME}-CronSchedule"
        local.client("scheduler").create_schedule(
            Name=schedule,
            ScheduleExpression="rate(1 minute)",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={
                "Arn": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:cron",
                "RoleArn": f"arn:aws:iam::{ACCOUNT_ID}:role/cron",
            },
            State="ENABLED",
        )
        stack.physical["CronSchedule"] = schedule

        detector = local.client("guardduty").create_detector(
            Enable=True, Features=[{"Name": f, "Status": "ENABLED"} for f in DEFAULT_FEATURES]
        )["DetectorId"]
        stack.physical["GuardDutyProtection.DetectorId"] = detector

        local.client("sesv2").create_email_identity(EmailIdentity=DOMAIN)
        # SES verifies a domain once it finds the DKIM records; moto never does, so it is set here.
        from moto.sesv2.models import sesv2_backends

        sesv2_backends[ACCOUNT_ID][REGION].get_email_identity(DOMAIN).verified_for_sending_status = True

        cloudwatch = local.client("cloudwatch")
        for logical in ALARMS:
            name = f"{STACK_NAME}-{logical}-LOCAL"
            cloudwatch.put_metric_alarm(
                AlarmName=name,
                Namespace="AWS/Lambda",
                MetricName="Errors",
                Statistic="Sum",
                Period=60,
                EvaluationPeriods=1,
                Threshold=1.0,
                ComparisonOperator="GreaterThanOrEqualToThreshold",
            )
            cloudwatch.set_alarm_state(AlarmName=name, StateValue="OK", StateReason="healthy")
            stack.physical[logical] = name

        cron_value = local.client("secretsmanager").get_secret_value(SecretId=stack.physical["CronSecret"])[
            "SecretString"
        ]
        evaluator = WebAclEvaluator(stack.rendered, secrets={"CronSecret": cron_value}, addresses=NAT_ADDRESSES)
        ca = LocalCa.create(directory / "pki")
        health = str(stack.rendered.params["HealthCheckPath"])
        site = RedcapSite(evaluator=evaluator, health_path=health, ca=ca, hosts=(service_host, DOMAIN))
        port = exits.enter_context(site.serve())

        deployed = DeployedStack(
            name=STACK_NAME,
            stack_id=stack.pseudo["AWS::StackId"],
            parameters={k: ",".join(v) if isinstance(v, list) else str(v) for k, v in stack.rendered.params.items()},
            outputs=_outputs(stack),
            resources=_resources(stack),
        )
        reads.add(deployed)
        smoke_env = {
            **env,
            "SMOKE_TEST_CA_BUNDLE": str(ca.bundle),
            "SMOKE_TEST_RESOLVE": f"{service_host}={port},{DOMAIN}={port}",
        }
        yield LiveStack(compute, local, reads, deployed, site, smoke_env, service_host, tick.output, tick_env)
