"""The checks ``make smoke`` runs against a live stack, each read-only, each with a next step on failure.

A check returns a :class:`Row`: PASS, FAIL (exit code 1), WARN (said, not failed) or SKIP (does not
apply to this stack, e.g. the Express task networking on App Runner). ``CHECKS`` is the list
docs/smoke.md documents (a test keeps the two the same).
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from redcap_ctl.guardduty import feature_status, parse_features
from smoke.aws import Stack, chunks
from smoke.web import FetchError, Web


class Result(StrEnum):
    PASS = "PASS"
    FAIL = "FAIL"
    WARN = "WARN"
    SKIP = "SKIP"


@dataclass(frozen=True)
class Row:
    check: str
    result: Result
    detail: str
    next_step: str = ""


@dataclass(frozen=True)
class Outcome:
    result: Result
    detail: str
    next_step: str = ""


def ok(detail: str) -> Outcome:
    return Outcome(Result.PASS, detail)


def fail(detail: str, next_step: str) -> Outcome:
    return Outcome(Result.FAIL, detail, next_step)


def warn(detail: str, next_step: str) -> Outcome:
    return Outcome(Result.WARN, detail, next_step)


def skip(detail: str) -> Outcome:
    return Outcome(Result.SKIP, detail)


class Clients:
    """One client per service, made on first use from the read-only session."""

    def __init__(self, session: Any, region: str) -> None:
        self._session = session
        self._region = region
        self._made: dict[str, Any] = {}

    def __call__(self, service: str) -> Any:
        if service not in self._made:
            self._made[service] = self._session.client(service, region_name=self._region)
        return self._made[service]


@dataclass
class Context:
    stack: Stack
    aws: Clients
    web: Web
    now: datetime
    caller_ip: ipaddress.IPv4Address | None = None


# ----- the stack


# Stable: CloudFormation finished the last create or update as asked.
_SETTLED = ("CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE")


def stack_status(ctx: Context) -> Outcome:
    status, reason = ctx.stack.status, ctx.stack.reason
    events = f"aws cloudformation describe-stack-events --stack-name {ctx.stack.name} --region {ctx.stack.region}"
    if status in _SETTLED:
        return ok(status)
    detail = f"{status}" + (f": {reason}" if reason else "")
    if status.endswith("_IN_PROGRESS"):
        return fail(detail, "a create, update or rollback is still running: wait for it to end, then run again")
    if status == "UPDATE_ROLLBACK_FAILED":
        # CloudFormation API reference, ContinueUpdateRollback: the way back to UPDATE_ROLLBACK_COMPLETE.
        return fail(detail, f"fix the resource `{events}` names, then `aws cloudformation continue-update-rollback`")
    if status == "UPDATE_ROLLBACK_COMPLETE":
        return fail(detail, f"the last update was rolled back: find the first failed resource with `{events}`")
    return fail(detail, f"find the first failed resource with `{events}`; docs/smoke.md#stack-status")


# ----- HTTPS: login page, health, WAF


# REDCap's login form carries this hidden field (redcap_vX/Config/init_functions.php, loginFunction()).
LOGIN_MARKER = "redcap_login_a38us_09i85"


def _base(url: str) -> str:
    return url.rstrip("/")


def _login(ctx: Context, url: str, what: str, next_dns: str) -> Outcome:
    try:
        page = ctx.web.get(_base(url) + "/", follow=True)
    except FetchError as err:
        text = str(err)
        if "redirects" in text:
            return fail(text, "REDCap sends visitors elsewhere: check redcap_base_url in its Control Center")
        if "certificate" in text:
            return fail(text, f"{what}'s certificate is not valid for its name: {next_dns}")
        return fail(text, next_dns)
    expiry = f"; certificate valid until {page.certificate_expires:%Y-%m-%d}" if page.certificate_expires else ""
    if page.status == 200 and LOGIN_MARKER in page.body:
        return ok(f"{page.url} answers REDCap's login page over verified HTTPS{expiry}")
    if page.status == 503:
        return fail(
            f"{page.url} answers 503: REDCap is not installed yet (first boot still running or failed)",
            "read the service's log group (docs/smoke.md#login) for the image's first-boot errors",
        )
    return fail(
        f"{page.url} answers HTTP {page.status} without REDCap's login form",
        "open it in a browser; if it is REDCap, authentication may be off (auth_meth_global=none: docs/image.md)",
    )


def login_service_url(ctx: Context) -> Outcome:
    url = ctx.stack.outputs.get("ServiceUrl", "")
    if not url:
        return fail("the stack has no ServiceUrl output", "deploy the stack to completion first")
    return _login(ctx, url, "the service URL", "the service itself is not serving: check its status in the console")


def login_custom_domain(ctx: Context) -> Outcome:
    domain = ctx.stack.param("DomainName")
    if not domain:
        return skip("no DomainName: the stack serves only its service URL")
    url = ctx.stack.outputs.get("CustomUrl") or f"https://{domain}"
    mode = ctx.stack.param("DnsMode")
    if mode == "CreateZone":
        dns = "delegate DomainName to the NameServers output at your registrar; ACM then validates by itself"
    elif mode == "External":
        dns = "create the CustomDomainTarget and CustomDomainValidationRecords outputs' records at your DNS provider"
    else:
        dns = "check the records in the DnsHostedZoneId zone and the CustomDomainStatus output"
    return _login(ctx, url, domain, dns + " (docs/custom-domain.md)")


def health(ctx: Context) -> Outcome:
    path = ctx.stack.param("HealthCheckPath") or "/healthz"
    url = _base(ctx.stack.outputs.get("ServiceUrl", "")) + path
    try:
        page = ctx.web.get(url)
    except FetchError as err:
        return fail(str(err), "the service is not serving: check its status and log group")
    try:
        answer = json.loads(page.body)
    except ValueError:
        answer = None
    if page.status != 200 or not isinstance(answer, dict) or answer.get("status") != "ok":
        return fail(
            f"{path} answers HTTP {page.status}: {page.body[:80].strip()!r}",
            f"the image answers {path} from Apache and PHP alone: read the service's log group",
        )
    if answer.get("ready") is not True:
        return fail(
            f"{path}: Apache and PHP answer, but REDCap is not ready (first install or upgrade not finished)",
            "read the service's log group for the first-boot or upgrade step that failed",
        )
    return ok(f"{path}: status ok, ready")


# Paths WAF must refuse (template.yaml WebAcl, docs/cron-and-waf.md): internal directories always,
# cron.php without the cron header always.
INTERNAL_PATHS = ("/temp/", "/edocs/", "/webtools2/", "/cron.php")
# install.php and upgrade.php, at the root and in a version folder (rule BlockInstallUpgrade).
ADMIN_PATHS = ("/install.php", "/upgrade.php", "/redcap_v1.0.0/upgrade.php")
_WAF_NEXT = (
    "the web ACL is not in front of the service or its rules were changed: "
    "`aws wafv2 get-web-acl-for-resource` on the service (App Runner) or load balancer (Express) must name the "
    "WebAclArn output; deploy the stack again to restore the rules"
)


_NOT_SERVING = "the service does not answer: see login-service-url and health first"


def _statuses(ctx: Context, paths: Iterable[str]) -> dict[str, str]:
    """HTTP status per path; raises FetchError when the service does not answer at all."""
    base = _base(ctx.stack.outputs.get("ServiceUrl", ""))
    return {path: str(ctx.web.get(base + path).status) for path in paths}


def waf_internal_paths(ctx: Context) -> Outcome:
    try:
        statuses = _statuses(ctx, INTERNAL_PATHS)
    except FetchError as err:
        return fail(str(err), _NOT_SERVING)
    open_ = {p: s for p, s in statuses.items() if s != "403"}
    if open_:
        listed = ", ".join(f"{p} -> {s}" for p, s in open_.items())
        return fail(f"not refused: {listed}", _WAF_NEXT)
    return ok(f"403 from WAF for {', '.join(statuses)}")


def waf_admin_endpoints(ctx: Context) -> Outcome:
    try:
        statuses = _statuses(ctx, ADMIN_PATHS)
    except FetchError as err:
        return fail(str(err), _NOT_SERVING)
    open_ = {p: s for p, s in statuses.items() if s != "403"}
    cidrs_text = ctx.stack.param("AdminCidrs")
    cidrs = [ipaddress.ip_network(c.strip(), strict=False) for c in cidrs_text.split(",") if c.strip()]
    inside = ctx.caller_ip is not None and any(ctx.caller_ip in net for net in cidrs)
    if not open_:
        note = f"; AdminCidrs={cidrs_text} is set (clear it after the upgrade)" if cidrs else ""
        if inside:
            note = f"; your address {ctx.caller_ip} is inside AdminCidrs={cidrs_text}, yet refused (AllowedCidrs?)"
        return ok(f"403 from WAF for {', '.join(statuses)}{note}")
    listed = ", ".join(f"{p} -> {s}" for p, s in open_.items())
    if not cidrs:
        return fail(f"not refused although AdminCidrs is empty: {listed}", _WAF_NEXT)
    if inside:
        return ok(
            f"open to you: your address {ctx.caller_ip} is inside AdminCidrs={cidrs_text} ({listed}); "
            "clear AdminCidrs after the install or upgrade"
        )
    if ctx.caller_ip is not None:
        return fail(f"not refused, and {ctx.caller_ip} is outside AdminCidrs={cidrs_text}: {listed}", _WAF_NEXT)
    return warn(
        f"not refused ({listed}) while AdminCidrs={cidrs_text} is set: expected only if your address is inside it",
        "run again with --caller-ip YOUR.PUBLIC.IP to tell; clear AdminCidrs after the install or upgrade",
    )


# ----- cron


CRON_WINDOW_MINUTES = 3
CRON_SERVICE = "cron-caller"  # POWERTOOLS_SERVICE_NAME of CronCallerFunction: Powertools' "service" dimension


def _metric_sum(ctx: Context, name: str, start: datetime) -> float:
    """Sum of a cron caller metric (namespace REDCap/<stack>) since ``start``, over its dimension sets."""
    cloudwatch = ctx.aws("cloudwatch")
    namespace = f"REDCap/{ctx.stack.name}"
    total = 0.0
    for page in cloudwatch.get_paginator("list_metrics").paginate(Namespace=namespace, MetricName=name):
        for metric in page.get("Metrics", []):
            dims = {d["Name"]: d["Value"] for d in metric.get("Dimensions", [])}
            if dims.get("service", CRON_SERVICE) != CRON_SERVICE:
                continue
            points = cloudwatch.get_metric_statistics(
                Namespace=namespace,
                MetricName=name,
                Dimensions=metric.get("Dimensions", []),
                StartTime=start,
                EndTime=ctx.now,
                Period=60,
                Statistics=["Sum"],
            )["Datapoints"]
            total += sum(float(p.get("Sum", 0)) for p in points)
    return total


def cron(ctx: Context) -> Outcome:
    minutes = int(ctx.stack.param("CronMinutes") or "1")
    log_group = f"/aws/lambda/{ctx.stack.name}/CronCallerFunction"
    if minutes == 0:
        return fail(
            "CronMinutes=0: the schedule is DISABLED, REDCap's scheduled jobs (invitations, alerts) do not run",
            "deploy with CronMinutes=1",
        )
    schedule = ctx.stack.physical("CronSchedule")
    if schedule:
        state = ctx.aws("scheduler").get_schedule(Name=schedule).get("State")
        if state != "ENABLED":
            return fail(f"schedule {schedule} is {state}", "deploy the stack again (CronMinutes > 0 enables it)")
    # A tick every CronMinutes: look back over the last two ticks, at least the last 3 minutes.
    window = max(CRON_WINDOW_MINUTES, 2 * minutes)
    start = ctx.now - timedelta(minutes=window)
    success = _metric_sum(ctx, "CronSuccess", start)
    if success > 0:
        return ok(f"{success:g} successful cron.php call(s) in the last {window} minutes (metric CronSuccess)")
    failures = _metric_sum(ctx, "CronFailure", start)
    timeouts = _metric_sum(ctx, "CronTimeout", start)
    return fail(
        f"no successful cron.php call in the last {window} min (CronFailure {failures:g}, CronTimeout {timeouts:g})",
        f"read {log_group} (status and latency of each call) and the CronDeadLetterQueue; docs/cron-and-waf.md",
    )


# ----- the image


def pinned_image(stack: Stack) -> str:
    return stack.param("ImageUri") or stack.outputs.get("RedcapImageUri", "")


def _digest(image: str) -> str | None:
    _, sep, digest = image.partition("@")
    return digest if sep and digest.startswith("sha256:") else None


def image_digest(ctx: Context) -> Outcome:
    pinned = pinned_image(ctx.stack)
    if not pinned:
        return fail("the stack names no image (no ImageUri parameter, no RedcapImageUri output)", "deploy again")
    redeploy = f"deploy the stack again (sam deploy) so the service runs {pinned}; change images only through the stack"
    if ctx.stack.express:
        return _express_image(ctx, pinned, redeploy)
    arn = ctx.stack.physical("AppRunnerService")
    if not arn:
        return fail("the stack has no AppRunnerService", "deploy the stack to completion first")
    service = ctx.aws("apprunner").describe_service(ServiceArn=arn)["Service"]
    running = service.get("SourceConfiguration", {}).get("ImageRepository", {}).get("ImageIdentifier", "")
    if running != pinned:
        return fail(f"App Runner runs {running or '(none)'}, the stack pinned {pinned}", redeploy)
    note = "" if _digest(pinned) else " (a tag, not a digest: set ImageUri to repo@sha256:... to pin it)"
    return ok(f"App Runner runs the pinned {pinned}{note}")


def _express_service(ctx: Context) -> tuple[str, str] | None:
    arn = ctx.stack.physical("ExpressService")
    cluster = ctx.stack.physical("EcsExpressCluster")
    return (cluster, arn) if arn and cluster else None


def _running_tasks(ctx: Context, cluster: str, service_arn: str) -> list[dict[str, Any]]:
    ecs = ctx.aws("ecs")
    name = service_arn.rsplit("/", 1)[-1]
    arns: list[str] = []
    for page in ecs.get_paginator("list_tasks").paginate(cluster=cluster, serviceName=name, desiredStatus="RUNNING"):
        arns += page.get("taskArns", [])
    tasks: list[dict[str, Any]] = []
    for group in chunks(arns, 100):  # DescribeTasks takes at most 100 tasks
        tasks += ecs.describe_tasks(cluster=cluster, tasks=group).get("tasks", [])
    return tasks


def _express_image(ctx: Context, pinned: str, redeploy: str) -> Outcome:
    found = _express_service(ctx)
    if found is None:
        return fail("the stack has no ExpressService or EcsExpressCluster", "deploy the stack to completion first")
    cluster, arn = found
    ecs = ctx.aws("ecs")
    services = ecs.describe_services(cluster=cluster, services=[arn]).get("services", [])
    if not services:
        return fail(f"service {arn} not found", "deploy the stack again")
    definition = ecs.describe_task_definition(taskDefinition=services[0]["taskDefinition"])["taskDefinition"]
    images = sorted({str(c.get("image", "")) for c in definition.get("containerDefinitions", [])})
    if pinned not in images:
        return fail(f"the service's task definition runs {', '.join(images)}, the stack pinned {pinned}", redeploy)
    tasks = _running_tasks(ctx, cluster, arn)
    if not tasks:
        return fail("no running task", "read the service's events (`aws ecs describe-services`) and its log group")
    want = _digest(pinned)
    digests = {str(c.get("imageDigest")) for t in tasks for c in t.get("containers", []) if c.get("imageDigest")}
    if want and digests - {want}:
        other = ", ".join(sorted(digests - {want}))
        return fail(f"running tasks report image digest(s) {other}, the stack pinned {want}", redeploy)
    note = "" if want else " (a tag, not a digest: set ImageUri to repo@sha256:... to pin it)"
    return ok(f"{len(tasks)} task(s) run the pinned {pinned}{note}")


# ----- secrets


def _stack_secrets(stack: Stack) -> list[str]:
    arns = [r.physical_id for r in stack.of_type("AWS::SecretsManager::Secret")]
    master = stack.outputs.get("DbMasterSecretArn")  # RDS-managed, not a stack resource
    return sorted({*arns, *([master] if master else [])})


def secret_rotation(ctx: Context) -> Outcome:
    manager = ctx.aws("secretsmanager")
    problems: list[str] = []
    arns = _stack_secrets(ctx.stack)
    for arn in arns:
        secret = manager.describe_secret(SecretId=arn)
        name = str(secret.get("Name", arn))
        for version, stages in (secret.get("VersionIdsToStages") or {}).items():
            if "AWSPENDING" in stages and "AWSCURRENT" not in stages:
                problems.append(f"{name}: AWSPENDING on version {version} (a rotation did not finish)")
        if secret.get("RotationEnabled"):
            days = int(secret.get("RotationRules", {}).get("AutomaticallyAfterDays") or 0)
            last = secret.get("LastRotatedDate") or secret.get("CreatedDate")
            # One day of grace: rotation runs within its window, not on the minute.
            if days and isinstance(last, datetime) and ctx.now - last > timedelta(days=days + 1):
                problems.append(f"{name}: last rotated {last:%Y-%m-%d}, due every {days} days (a rotation failed)")
    if problems:
        return fail(
            "; ".join(problems),
            "read the rotation function's log group, fix the cause, then `aws secretsmanager rotate-secret "
            "--secret-id ARN` (docs/key-rotation.md, docs/smoke.md#secret-rotation)",
        )
    return ok(f"{len(arns)} secret(s): none stuck in a rotation")


# ----- GuardDuty


def guardduty(ctx: Context) -> Outcome:
    if ctx.stack.param("EnableGuardDuty") == "false":
        return skip("EnableGuardDuty=false")
    detector = ctx.stack.outputs.get("GuardDutyDetectorId", "")
    if not detector:
        return fail("no GuardDutyDetectorId output", "deploy the stack to completion first")
    wanted = parse_features(ctx.stack.param("GuardDutyFeatures") or None)
    described = ctx.aws("guardduty").get_detector(DetectorId=detector)
    if described.get("Status") != "ENABLED":
        state = described.get("Status")
        return fail(f"detector {detector} is {state}", "enable it: deploy the stack again (docs/guardduty.md)")
    status = feature_status(described)
    off = [f for f in wanted if status.get(f) != "ENABLED"]
    if off:
        managed = ctx.stack.outputs.get("GuardDutyManagedBy") == "administrator"
        who = "ask the GuardDuty administrator account to enable them" if managed else "deploy the stack again"
        return fail(f"detector {detector}: {', '.join(off)} not enabled", f"{who} (docs/guardduty.md)")
    return ok(f"detector {detector} enabled with {', '.join(wanted)}")


# ----- SES


def ses_identity(ctx: Context) -> Outcome:
    identity = ctx.stack.param("SesEmailIdentity") or ctx.stack.param("DomainName")
    if not identity:
        return fail("the stack names no SES identity (SesEmailIdentity or DomainName)", "set one and deploy again")
    found = ctx.aws("sesv2").get_email_identity(EmailIdentity=identity)
    if found.get("VerifiedForSendingStatus") is True:
        return ok(f"{identity} verified for sending")
    if "@" in identity:
        step = f"open the verification mail AWS sent to {identity} and click its link"
    else:
        step = "publish the DKIM CNAMEs of `aws sesv2 get-email-identity --email-identity " + identity + "`"
        step += " (the stack writes them itself when DnsMode is CreateZone or ExistingZone, once DNS is delegated)"
    dkim = found.get("DkimAttributes", {}).get("Status")
    return fail(f"{identity} is not verified for sending" + (f" (DKIM {dkim})" if dkim else ""), step)


def ses_sandbox(ctx: Context) -> Outcome:
    account = ctx.aws("sesv2").get_account()
    if account.get("SendingEnabled") is False:
        status = account.get("EnforcementStatus")
        return fail(f"sending is paused in {ctx.stack.region} ({status})", "read the SES console's reputation page")
    if account.get("ProductionAccessEnabled") is True:
        return ok(f"production access in {ctx.stack.region}")
    detail = f"the account is in the SES sandbox in {ctx.stack.region}: REDCap can mail only verified addresses"
    step = "request production access (SES console, Account dashboard; docs/smoke.md#ses-sandbox)"
    return fail(detail, step) if ctx.stack.prod else warn(detail, step + " before real users need mail")


# ----- alarms


def alarms(ctx: Context) -> Outcome:
    names = {r.physical_id for r in ctx.stack.of_type("AWS::CloudWatch::Alarm")}
    names |= {n.strip() for n in ctx.stack.outputs.get("ExpressCanaryAlarms", "").split(",") if n.strip()}
    cloudwatch = ctx.aws("cloudwatch")
    found: dict[str, str] = {}
    for group in chunks(sorted(names), 100):  # DescribeAlarms takes at most 100 names
        for page in cloudwatch.get_paginator("describe_alarms").paginate(AlarmNames=group):
            for alarm in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
                found[str(alarm["AlarmName"])] = str(alarm.get("StateValue"))
    firing = sorted(n for n, state in found.items() if state == "ALARM")
    missing = sorted(names - set(found))
    if firing or missing:
        parts = [f"in ALARM: {', '.join(firing)}"] if firing else []
        parts += [f"not found: {', '.join(missing)}"] if missing else []
        return fail(
            "; ".join(parts),
            "each alarm's description says what it watches and what to do; docs/operations.md",
        )
    return ok(f"{len(found)} alarm(s), none in ALARM")


# ----- Express task networking


# What an Express task without a public IP needs, as VPC endpoints (docs/compute.md): pulling the
# image (ecr.api, ecr.dkr, and S3 for its layers), its logs, its secrets and SES SMTP.
# The one place this list lives: change it with the network design.
EXPRESS_TASK_ENDPOINTS: dict[str, str] = {
    "ecr.api": "Interface",
    "ecr.dkr": "Interface",
    "logs": "Interface",
    "secretsmanager": "Interface",
    "email-smtp": "Interface",
    "s3": "Gateway",
}


def express_networking(ctx: Context) -> Outcome:
    if not ctx.stack.express:
        return skip("App Runner: its VPC connector egress goes through the stack's NAT gateway")
    found = _express_service(ctx)
    if found is None:
        return fail("the stack has no ExpressService or EcsExpressCluster", "deploy the stack to completion first")
    tasks = _running_tasks(ctx, *found)
    if not tasks:
        return fail("no running task to inspect", "the service has no task: read its events and log group")
    enis = [
        str(d["value"])
        for t in tasks
        for a in t.get("attachments", [])
        if a.get("type") == "ElasticNetworkInterface"
        for d in a.get("details", [])
        if d.get("name") == "networkInterfaceId"
    ]
    if not enis:
        return fail("the running tasks report no network interface", "read the service's events")
    ec2 = ctx.aws("ec2")
    interfaces = ec2.describe_network_interfaces(NetworkInterfaceIds=enis)["NetworkInterfaces"]
    private = [i["NetworkInterfaceId"] for i in interfaces if not i.get("Association", {}).get("PublicIp")]
    if not private:
        return ok(f"{len(interfaces)} task interface(s), each with a public IP")
    vpcs = sorted({str(i["VpcId"]) for i in interfaces})
    region = ctx.stack.region
    have: set[tuple[str, str]] = set()
    for page in ec2.get_paginator("describe_vpc_endpoints").paginate(Filters=[{"Name": "vpc-id", "Values": vpcs}]):
        for endpoint in page.get("VpcEndpoints", []):
            if str(endpoint.get("State", "")).lower() == "available":
                have.add((str(endpoint["ServiceName"]), str(endpoint.get("VpcEndpointType"))))
    missing = [
        f"{name} ({kind})"
        for name, kind in EXPRESS_TASK_ENDPOINTS.items()
        if (f"com.amazonaws.{region}.{name}", kind) not in have
    ]
    if missing:
        return fail(
            f"{len(private)} task interface(s) without a public IP, and VPC {', '.join(vpcs)} lacks endpoint(s) "
            f"{', '.join(missing)}",
            "the tasks cannot pull images, log, read secrets or send mail: deploy the stack again "
            "(it creates the endpoints; docs/compute.md)",
        )
    return ok(f"tasks without public IP reach AWS through VPC endpoints: {', '.join(EXPRESS_TASK_ENDPOINTS)}")


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[Context], Outcome]


CHECKS: tuple[Check, ...] = (
    Check("stack-status", stack_status),
    Check("login-service-url", login_service_url),
    Check("login-custom-domain", login_custom_domain),
    Check("health", health),
    Check("waf-internal-paths", waf_internal_paths),
    Check("waf-admin-endpoints", waf_admin_endpoints),
    Check("cron", cron),
    Check("image-digest", image_digest),
    Check("secret-rotation", secret_rotation),
    Check("guardduty", guardduty),
    Check("ses-identity", ses_identity),
    Check("ses-sandbox", ses_sandbox),
    Check("alarms", alarms),
    Check("express-networking", express_networking),
)
