"""Custom domain: Create writes the validation (and, on App Runner, alias) records, Delete removes them.

On ECS Express the area plays a first deploy's whole order: create, delegate later, certificate
issued, domain served, delete (``express_scenario``).
"""

from __future__ import annotations

import json
import time
from typing import Any

from local import platform
from local.bench_case import BenchCase
from local.runner import Run, StepFailed, cfn_success, exists, invoke
from local.scenarios import DOMAIN, Local
from testkit import moto_acm
from testkit.cfn import ResponseCapture, capture_cfn_responses

RESOURCE = "custom domain"
FUNCTION_ID = "AppRunnerCustomDomainFunction"
CUSTOM_RESOURCE_ID = "AppRunnerCustomDomain"
# The function's backoff is configurable; locally the emulator publishes records
# after two describes, so a short first delay keeps the run fast without
# changing what the code does.
FAST_POLL = {"CUSTOM_DOMAIN_POLL_INITIAL_SECONDS": "0.05", "CUSTOM_DOMAIN_POLL_MAX_SECONDS": "0.2"}


def provision(local: Local) -> None:
    """App Runner service (emulator) and the stack's hosted zone (moto)."""
    platform.app_runner(local)
    platform.hosted_zone(local)
    platform.function_arns(local)


def event(local: Local, request: str, capture: ResponseCapture | None) -> dict[str, Any]:
    """The events/ file's envelope with the properties the template gives the custom resource."""
    ev = local.stack.cfn_event("custom_domain", f"{request.lower()}.json", CUSTOM_RESOURCE_ID)
    if capture is not None:
        ev["ResponseURL"] = capture.url(f"custom-domain-{request.lower()}")
    return ev


def function_env(local: Local) -> dict[str, str]:
    env = local.stack.function_env(FUNCTION_ID)
    env.update(FAST_POLL)
    return env


def zone_records(local: Local) -> list[dict[str, Any]]:
    zone = local.stack.physical["HostedZone"]
    sets = local.client("route53").list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    return [r for r in sets if r["Type"] not in ("SOA", "NS")]


def scenario(local: Local, run: Run) -> None:
    if local.stack.has(EXPRESS_RESOURCE_ID):
        express_scenario(local, run)
        return
    missing = exists(
        "functions/custom_domain/app.py", "events/custom_domain/create.json", "tests/testkit/emulators/apprunner.py"
    )
    if missing:
        run.unavailable(RESOURCE, "Create / Delete", missing)
        return
    if not run.step(RESOURCE, "provision App Runner service + hosted zone", lambda: _provision(local)):
        return
    state: dict[str, Any] = {}

    with capture_cfn_responses() as capture:

        def create() -> str:
            ev = event(local, "Create", capture)
            invoke("custom_domain", ev, function_env(local))
            answer = cfn_success(capture)
            state["physical_id"] = answer["PhysicalResourceId"]
            records = zone_records(local)
            names = sorted({r["Name"].rstrip(".") for r in records})
            if not any(r["Type"] == "CNAME" and "acm-validations" in str(r) for r in records):
                raise StepFailed(f"no certificate validation CNAME in the zone; records: {names}")
            if not any(r["Name"].rstrip(".") == DOMAIN and r["Type"] in ("A", "AAAA", "CNAME") for r in records):
                raise StepFailed(f"no alias record for {DOMAIN} in the zone; records: {names}")
            return f"{len(records)} records in Route 53 ({', '.join(sorted({r['Type'] for r in records}))})"

        created = run.step(RESOURCE, "Create: records appear in Route 53", create)

        def delete() -> str:
            ev = event(local, "Delete", capture)
            ev["PhysicalResourceId"] = state.get("physical_id", ev.get("PhysicalResourceId"))
            invoke("custom_domain", ev, function_env(local))
            cfn_success(capture)
            left = zone_records(local)
            if left:
                raise StepFailed(f"{len(left)} records still in the zone: {sorted(r['Name'] for r in left)}")
            emulator = local.services["apprunner"]
            if emulator.domain(local.stack.physical["AppRunnerService.ServiceArn"], DOMAIN) is not None:
                raise StepFailed(f"{DOMAIN} is still associated with the App Runner service")
            return "zone empty again, domain disassociated"

        if created:
            run.step(RESOURCE, "Delete: records gone", delete)
        else:
            run.unavailable(RESOURCE, "Delete: records gone", "skipped: Create failed")


# ----- ComputeType=EcsExpress: Custom::ExpressHostHeader, its activation events, a clean delete
# The whole order of a first deploy with DnsMode=CreateZone (issue 17, item 2): the stack completes
# with the certificate pending, the administrator delegates the zone afterwards (NameServers
# output), ACM validates (testkit.moto_acm: only records that public DNS reaches validate), ACM's
# "ACM Certificate Available" event activates the domain, and the delete leaves a zone that
# Route 53 deletes. With DnsMode=External the administrator creates the CNAME at their DNS
# provider instead (an "external" zone in moto here) and the stack writes no record.
EXPRESS_FUNCTION_ID = "ExpressHostHeaderFunction"
EXPRESS_RESOURCE_ID = "ExpressHostHeader"
ISSUED_RULE_ID = "ExpressCertificateIssuedRule"
RECONCILE_RULE_ID = "ExpressCertificateReconcileRule"


def express_event(local: Local, request: str, capture: ResponseCapture) -> dict[str, Any]:
    ev = local.stack.cfn_event("express_domain", f"{request.lower()}.json", EXPRESS_RESOURCE_ID)
    ev["ResponseURL"] = capture.url(f"express-domain-{request.lower()}")
    ev["StackId"] = local.stack.pseudo["AWS::StackId"]
    return ev


def rule_input(local: Local, rule_id: str) -> dict[str, Any]:
    """The constant input the template gives the rule's target: what EventBridge delivers to the function."""
    (target,) = local.stack.props(rule_id)["Targets"]
    payload: dict[str, Any] = json.loads(local.stack.value(target["Input"], f"{rule_id}.Input"))
    return payload


def _zone_records(local: Local, zone: str) -> list[dict[str, Any]]:
    sets = local.client("route53").list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]
    return [r for r in sets if r["Type"] not in ("SOA", "NS")]


def express_scenario(local: Local, run: Run) -> None:
    missing = exists(
        "functions/express_domain/app.py",
        "events/express_domain/create.json",
        "tests/testkit/emulators/express.py",
        "tests/testkit/moto_acm.py",
    )
    if missing:
        run.unavailable(RESOURCE, "Create / Delete (ECS Express)", missing)
        return
    managed = local.stack.has("HostedZone")
    state: dict[str, Any] = {}

    def provision_express() -> str:
        platform.compute(local)
        platform.function_arns(local)
        if managed:
            platform.hosted_zone(local)
            state["zone"] = local.stack.physical["HostedZone"]
            servers = local.client("route53").get_hosted_zone(Id=state["zone"])["DelegationSet"]["NameServers"]
            state["name_servers"] = servers
            return f"Express service, ALB and the stack's zone {state['zone']} (NameServers {', '.join(servers)})"
        return "Express service and ALB; DnsMode=External: no zone in the stack"

    if not run.step(RESOURCE, "provision ECS Express service (+ the zone the stack creates)", provision_express):
        return
    service = local.services["express"]
    env = local.stack.function_env(EXPRESS_FUNCTION_ID)

    with capture_cfn_responses() as capture:

        def create() -> str:
            started = time.perf_counter()
            invoke("express_domain", express_event(local, "Create", capture), env)
            answer = cfn_success(capture)
            elapsed = time.perf_counter() - started
            state["physical_id"] = answer["PhysicalResourceId"]
            state["certificate"] = answer["Data"]["CertificateArn"]
            state["records"] = json.loads(answer["Data"]["ValidationRecords"])
            if answer["Data"]["CertificateStatus"] != "PENDING_VALIDATION":
                raise StepFailed(f"certificate is {answer['Data']['CertificateStatus']}, expected PENDING_VALIDATION")
            if DOMAIN in service.hosts() or service.listener_certificates():
                raise StepFailed("the domain is routed before its certificate is issued")
            if managed:
                names = {r["Name"] for r in _zone_records(local, state["zone"])}
                if names != {r["Name"] for r in state["records"]}:
                    raise StepFailed(f"validation CNAMEs {state['records']} not (only) in the zone: {sorted(names)}")
                where = f"validation CNAME in zone {state['zone']}"
            else:
                if not state["records"]:
                    raise StepFailed("no validation record in CustomDomainValidationRecords for the administrator")
                where = "CustomDomainValidationRecords lists the CNAME for your DNS provider"
            return f"answered in {elapsed:.1f}s with the certificate PENDING_VALIDATION; {where}"

        if not run.step(RESOURCE, "Create: the stack completes, certificate pending", create):
            run.unavailable(RESOURCE, "delegate / issue / serve / delete", "skipped: Create failed")
            return

        def before_delegation() -> str:
            # ACM checks public DNS: an undelegated zone is not in it (no delegated zone here).
            if moto_acm.validate([]):
                raise StepFailed("ACM issued a certificate whose validation record nobody can resolve")
            result = invoke("express_domain", rule_input(local, RECONCILE_RULE_ID), env)
            if service.hosts() != [service.endpoint]:
                raise StepFailed(f"the rule changed before the certificate was issued: {service.hosts()}")
            return f"schedule run: {result.result}; rule still {service.hosts()}"

        run.step(RESOURCE, "Before delegation: the schedule changes nothing", before_delegation)

        def delegate() -> str:
            if managed:
                zone = state["zone"]
                what = f"delegated {DOMAIN} to {', '.join(state['name_servers'])}"
            else:
                # The administrator's own DNS provider: a zone outside the stack, with the CNAME they create.
                route53 = local.client("route53")
                zone = route53.create_hosted_zone(Name=DOMAIN, CallerReference="external-dns")["HostedZone"]["Id"]
                zone = zone.rsplit("/", 1)[-1]
                changes = [
                    {
                        "Action": "CREATE",
                        "ResourceRecordSet": {
                            "Name": r["Name"],
                            "Type": "CNAME",
                            "TTL": 300,
                            "ResourceRecords": [{"Value": r["Value"]}],
                        },
                    }
                    for r in state["records"]
                ]
                route53.change_resource_record_sets(HostedZoneId=zone, ChangeBatch={"Changes": changes})
                state["external_zone"] = zone
                what = "created the validation CNAME at the external DNS provider"
            issued = moto_acm.validate([zone])
            if state["certificate"] not in issued:
                raise StepFailed(f"ACM did not issue {state['certificate']} after the delegation")
            return f"{what}; ACM issued the certificate"

        if not run.step(RESOURCE, "Later: the administrator delegates, ACM validates", delegate):
            return

        def served() -> str:
            # What ExpressCertificateIssuedRule delivers when ACM sends "ACM Certificate Available".
            result = invoke("express_domain", rule_input(local, ISSUED_RULE_ID), env)
            if service.listener_certificates() != [state["certificate"]]:
                raise StepFailed(f"listener certificates {service.listener_certificates()}")
            if DOMAIN not in service.hosts():
                raise StepFailed(f"{DOMAIN} is not on the Express listener rule: {service.hosts()}")
            return f"{result.result}: certificate on the HTTPS listener, rule hosts {service.hosts()}"

        run.step(RESOURCE, "ACM event: HTTPS on the domain starts by itself", served)

        def delete() -> str:
            route53 = local.client("route53")
            if managed:
                try:
                    route53.delete_hosted_zone(Id=state["zone"])
                except route53.exceptions.HostedZoneNotEmpty:
                    pass
                else:
                    raise StepFailed("the zone deleted with the validation records still in it")
            for _ in range(2):
                ev = express_event(local, "Delete", capture)
                ev["PhysicalResourceId"] = state["physical_id"]
                invoke("express_domain", ev, env)
                cfn_success(capture)
            if service.hosts() != [service.endpoint]:
                raise StepFailed(f"the rule still has {service.hosts()}; expected only {service.endpoint}")
            if service.listener_certificates() or moto_acm.status(state["certificate"]) is not None:
                raise StepFailed("the certificate is still on the listener or in ACM")
            if managed:
                # CloudFormation deletes the zone after the custom resource (it references the zone).
                route53.delete_hosted_zone(Id=state["zone"])
                local.stack.physical.pop("HostedZone", None)
                return "Delete run twice: names, certificate and records gone; the zone deleted (no HostedZoneNotEmpty)"
            return "Delete run twice: names and certificate gone"

        run.step(RESOURCE, "Delete: everything it wrote is gone, the zone deletes", delete)


def _provision(local: Local) -> str:
    provision(local)
    return f"zone {local.stack.physical['HostedZone']} for {DOMAIN}"


def bench_cases(local: Local, capture: ResponseCapture) -> list[BenchCase]:
    provision(local)
    return [
        BenchCase(
            name="custom domain (Create)",
            logical_id=FUNCTION_ID,
            function="custom_domain",
            env=function_env(local),
            event=event(local, "Create", capture),
            cfn_response=True,
        )
    ]


# The emulator publishes the validation records this long after the association:
# the share of a Create that is App Runner's, not ours.
PUBLISH_DELAY = 0.5


def bench_extras(local: Local, runs: int) -> list[tuple[str, list[float], str]]:
    """Create's time beyond the emulator's record delay.

    The custom-domain area's own measurement (``tests/bench/custom_domain_overhead.py``:
    a warm handler, scaled-down polling, every polling phase sampled) runs in its own
    interpreter, away from this process's emulators and environment; next to it, a cold
    Create with the template's polling settings against ``make local``'s emulators.
    """
    import json
    import os
    import subprocess
    import sys
    import time

    from testkit import ROOT

    rows: list[tuple[str, list[float], str]] = []
    if (ROOT / "tests" / "bench" / "custom_domain_overhead.py").is_file():
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_ENDPOINT_URL")}
        env["PYTHONPATH"] = f"{ROOT / 'layers' / 'shared'}:{ROOT / 'tests'}"
        code = (
            "import json, sys; from bench.custom_domain_overhead import rows; print(json.dumps(rows(int(sys.argv[1]))))"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code, str(max(runs, 5))], env=env, capture_output=True, text=True, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError("custom_domain_overhead.rows failed:\n" + proc.stderr[-2000:])
        rows += [
            (label, list(values), note) for label, values, note in json.loads(proc.stdout.strip().splitlines()[-1])
        ]
    provision(local)
    emulator = local.emulator("apprunner").AppRunnerEmulator(records_after=1, publish_delay=PUBLISH_DELAY)
    arn = emulator.add_service("bench")
    overheads = []
    with emulator.serve() as url, capture_cfn_responses() as capture:
        env = {**local.stack.function_env(FUNCTION_ID), "AWS_ENDPOINT_URL_APPRUNNER": url}
        for _ in range(runs):
            create = event(local, "Create", capture)
            create["ResourceProperties"]["ServiceArn"] = arn
            start = time.perf_counter()
            invoke("custom_domain", create, env)
            elapsed = time.perf_counter() - start
            answer = cfn_success(capture)
            overheads.append((elapsed - PUBLISH_DELAY) * 1000)
            delete = event(local, "Delete", capture)
            delete["ResourceProperties"]["ServiceArn"] = arn
            delete["PhysicalResourceId"] = answer["PhysicalResourceId"]
            invoke("custom_domain", delete, env)
            cfn_success(capture)
    rows.append(
        (
            "custom-domain Create overhead (cold, template polling)",
            overheads,
            f"fresh handler import + Create minus the emulator's {PUBLISH_DELAY:.1f} s record delay, with the "
            "template's 1 s first poll: mostly polling slack",
        )
    )
    return rows
