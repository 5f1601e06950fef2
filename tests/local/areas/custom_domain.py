"""Custom domain: Create writes the validation and alias records into Route 53, Delete removes them."""

from __future__ import annotations

from typing import Any

from local import platform
from local.bench_case import BenchCase
from local.runner import Run, StepFailed, cfn_success, exists, invoke
from local.scenarios import DOMAIN, Local
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


# ----- ComputeType=EcsExpress: Custom::ExpressHostHeader on the Express listener rule
EXPRESS_FUNCTION_ID = "ExpressHostHeaderFunction"
EXPRESS_RESOURCE_ID = "ExpressHostHeader"


def express_event(local: Local, request: str, capture: ResponseCapture) -> dict[str, Any]:
    ev = local.stack.cfn_event("express_domain", f"{request.lower()}.json", EXPRESS_RESOURCE_ID)
    ev["ResponseURL"] = capture.url(f"express-domain-{request.lower()}")
    return ev


def express_scenario(local: Local, run: Run) -> None:
    missing = exists(
        "functions/express_domain/app.py", "events/express_domain/create.json", "tests/testkit/emulators/express.py"
    )
    if missing:
        run.unavailable(RESOURCE, "Create / Delete (ECS Express)", missing)
        return

    def provision_express() -> str:
        platform.compute(local)
        platform.function_arns(local)
        if "ExpressCertificate" not in local.stack.physical:
            cert = local.client("acm").request_certificate(DomainName=DOMAIN, ValidationMethod="DNS")
            local.stack.physical["ExpressCertificate"] = cert["CertificateArn"]
        return f"Express service, ALB rule and certificate for {DOMAIN} in moto"

    if not run.step(RESOURCE, "provision ECS Express service + certificate", provision_express):
        return
    service = local.services["express"]
    env = local.stack.function_env(EXPRESS_FUNCTION_ID)
    state: dict[str, Any] = {}

    with capture_cfn_responses() as capture:

        def create() -> str:
            invoke("express_domain", express_event(local, "Create", capture), env)
            answer = cfn_success(capture)
            state["physical_id"] = answer["PhysicalResourceId"]
            hosts = service.hosts()
            if DOMAIN not in hosts:
                raise StepFailed(f"{DOMAIN} is not on the Express listener rule: {hosts}")
            if answer["Data"]["DNSName"] != service.load_balancer_dns:
                raise StepFailed(f"alias target {answer['Data']['DNSName']} is not the Express ALB")
            return f"rule hosts {hosts}; alias target {answer['Data']['DNSName']}"

        created = run.step(RESOURCE, "Create: domain on the Express listener rule", create)

        def delete_twice() -> str:
            for _ in range(2):
                ev = express_event(local, "Delete", capture)
                ev["PhysicalResourceId"] = state["physical_id"]
                invoke("express_domain", ev, env)
                cfn_success(capture)
            hosts = service.hosts()
            if hosts != [service.endpoint]:
                raise StepFailed(f"the rule still has {hosts}; expected only {service.endpoint}")
            return f"rule back to {hosts} (Delete run twice)"

        if created:
            run.step(RESOURCE, "Delete: domain removed from the rule", delete_twice)
        else:
            run.unavailable(RESOURCE, "Delete: domain removed from the rule", "skipped: Create failed")


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
