"""ECS Express canary alarm: REDCap's rule set on Create, put back when a deployment starts, Express's back on Delete.

Runs only when the rendered template has ``ExpressCanaryAlarm`` (``make local COMPUTE=EcsExpress``):
the function's real handler against moto's ECS and CloudWatch, with the Express service and its
rollback alarm laid out by ``testkit.emulators.express``.
"""

from __future__ import annotations

import copy
from typing import Any

from local import platform
from local.bench_case import BenchCase
from local.runner import Run, StepFailed, cfn_success, exists, invoke
from local.scenarios import Local
from testkit import load_event
from testkit.cfn import ResponseCapture, capture_cfn_responses

RESOURCE = "express canary"
FUNCTION_ID = "ExpressCanaryAlarmFunction"
CUSTOM_RESOURCE_ID = "ExpressCanaryAlarm"


def event(local: Local, request: str, capture: ResponseCapture) -> dict[str, Any]:
    """The events/ file's envelope with the properties the template gives the custom resource."""
    ev = local.stack.cfn_event("express_canary", f"{request.lower()}.json", CUSTOM_RESOURCE_ID)
    ev["ResponseURL"] = capture.url(f"express-canary-{request.lower()}")
    return ev


def deployment_started(local: Local) -> dict[str, Any]:
    ev = copy.deepcopy(load_event("express_canary", "deployment_started.json"))
    ev["resources"] = [local.services["express"].service_arn]
    return ev


def expression(local: Local) -> str:
    alarm = local.services["express"].alarm()
    return str(next(m["Expression"] for m in alarm["Metrics"] if m.get("ReturnData")))


def scenario(local: Local, run: Run) -> None:
    if not local.stack.has(CUSTOM_RESOURCE_ID):
        return  # App Runner (or CanaryRollbackRule=ExpressDefault): nothing to run
    missing = exists("functions/express_canary/app.py", "events/express_canary/create.json")
    if missing:
        run.unavailable(RESOURCE, "Create / deployment start / Delete", missing)
        return

    def provision() -> str:
        platform.compute(local)
        platform.function_arns(local)
        return f"Express service with its rollback alarm {local.services['express'].alarm_name} in moto"

    if not run.step(RESOURCE, "provision ECS Express service + its canary alarm", provision):
        return
    env = local.stack.function_env(FUNCTION_ID)
    express_rule = expression(local)

    with capture_cfn_responses() as capture:

        def create() -> str:
            invoke("express_canary", event(local, "Create", capture), env)
            answer = cfn_success(capture)
            now = expression(local)
            if now == express_rule or "FILL(c0, 0) >= 5" not in now:
                raise StepFailed(f"the canary alarm does not carry REDCap's rule: {now}")
            return f"{answer['Data']['AlarmNames']}: {answer['Data']['Rule']}"

        created = run.step(RESOURCE, "Create: REDCap's rule on Express's canary alarm", create)

        def deployment() -> str:
            tuned = expression(local)
            local.services["express"].express_resets_alarm()  # an Express update wrote its own rule again
            invoke("express_canary", deployment_started(local), env)
            if expression(local) != tuned:
                raise StepFailed(f"after a deployment start the alarm says {expression(local)}")
            return "Express's rule replaced again within the deployment-start invocation"

        def delete_twice() -> str:
            for _ in range(2):
                ev = event(local, "Delete", capture)
                ev["PhysicalResourceId"] = local.services["express"].service_arn
                invoke("express_canary", ev, env)
                cfn_success(capture)
            back = expression(local)
            if "FILL(e0, 0) + FILL(c0, 0)" not in back:
                raise StepFailed(f"Delete did not put Express's documented rule back: {back}")
            return "Express's documented rule (4xx + 5xx above 1 %) back (Delete run twice)"

        if created:
            run.step(RESOURCE, "deployment start: rule put back after an Express reset", deployment)
            run.step(RESOURCE, "Delete: Express's rule back", delete_twice)
        else:
            for step in ("deployment start: rule put back after an Express reset", "Delete: Express's rule back"):
                run.unavailable(RESOURCE, step, "skipped: Create failed")


def bench_cases(local: Local, capture: ResponseCapture) -> list[BenchCase]:
    # The benchmarks render the default compute (App Runner), which has no canary alarm.
    if not local.stack.has(CUSTOM_RESOURCE_ID):
        return []
    platform.compute(local)
    platform.function_arns(local)
    return [
        BenchCase(
            name="express canary alarm (Create)",
            logical_id=FUNCTION_ID,
            function="express_canary",
            env=local.stack.function_env(FUNCTION_ID),
            event=event(local, "Create", capture),
            cfn_response=True,
        )
    ]
