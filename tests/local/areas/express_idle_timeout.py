"""ECS Express idle timeout: RequestTimeoutSeconds on the ALB at Create and after a reset, 60 s back on Delete.

Runs only when the rendered template has ``ExpressIdleTimeout`` (``make local COMPUTE=EcsExpress``):
the function's real handler against moto's ELBv2, with the Express-managed load balancer laid out
by ``testkit.emulators.express``.
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

RESOURCE = "express idle timeout"
FUNCTION_ID = "ExpressIdleTimeoutFunction"
CUSTOM_RESOURCE_ID = "ExpressIdleTimeout"
ATTRIBUTE = "idle_timeout.timeout_seconds"
# ELB API reference (LoadBalancerAttribute): the default idle timeout is 60 seconds.
ALB_DEFAULT = 60


def event(local: Local, request: str, capture: ResponseCapture) -> dict[str, Any]:
    """The events/ file's envelope with the properties the template gives the custom resource."""
    ev = local.stack.cfn_event("express_idle_timeout", f"{request.lower()}.json", CUSTOM_RESOURCE_ID)
    ev["ResponseURL"] = capture.url(f"express-idle-timeout-{request.lower()}")
    return ev


def seconds(local: Local) -> int:
    service = local.services["express"]
    attributes = service.elbv2.describe_load_balancer_attributes(LoadBalancerArn=service.load_balancer_arn)
    # moto lists the attribute only once it was modified; ELB's default is 60 s.
    return int(next((a["Value"] for a in attributes["Attributes"] if a["Key"] == ATTRIBUTE), ALB_DEFAULT))


def express_resets(local: Local) -> None:
    """An Express update (or a person) putting the ALB default back."""
    service = local.services["express"]
    service.elbv2.modify_load_balancer_attributes(
        LoadBalancerArn=service.load_balancer_arn, Attributes=[{"Key": ATTRIBUTE, "Value": str(ALB_DEFAULT)}]
    )


def deployment_started(local: Local) -> dict[str, Any]:
    ev = copy.deepcopy(load_event("express_idle_timeout", "deployment_started.json"))
    ev["resources"] = [local.services["express"].service_arn]
    return ev


def scenario(local: Local, run: Run) -> None:
    if not local.stack.has(CUSTOM_RESOURCE_ID):
        return  # App Runner: the 120 s request limit is App Runner's and cannot move
    missing = exists("functions/express_idle_timeout/app.py", "events/express_idle_timeout/create.json")
    if missing:
        run.unavailable(RESOURCE, "Create / deployment start / Delete", missing)
        return

    def provision() -> str:
        platform.compute(local)
        platform.function_arns(local)
        return f"Express load balancer in moto, idle timeout {seconds(local)} s"

    if not run.step(RESOURCE, "provision the ECS Express load balancer", provision):
        return
    env = local.stack.function_env(FUNCTION_ID)
    wanted = int(str(local.stack.props(CUSTOM_RESOURCE_ID)["IdleTimeoutSeconds"]))

    with capture_cfn_responses() as capture:

        def create() -> str:
            invoke("express_idle_timeout", event(local, "Create", capture), env)
            answer = cfn_success(capture)
            if seconds(local) != wanted:
                raise StepFailed(f"the load balancer's idle timeout is {seconds(local)} s, not {wanted} s")
            local.services["express-idle-timeout-id"] = answer["PhysicalResourceId"]
            return f"idle_timeout.timeout_seconds = {answer['Data']['IdleTimeoutSeconds']} (RequestTimeoutSeconds)"

        created = run.step(RESOURCE, "Create: RequestTimeoutSeconds as the ALB idle timeout", create)

        def deployment() -> str:
            express_resets(local)
            invoke("express_idle_timeout", deployment_started(local), env)
            if seconds(local) != wanted:
                raise StepFailed(f"after a deployment start the idle timeout is {seconds(local)} s")
            return f"an Express reset to {ALB_DEFAULT} s replaced by {wanted} s within the deployment-start invocation"

        def delete_twice() -> str:
            for _ in range(2):
                ev = event(local, "Delete", capture)
                ev["PhysicalResourceId"] = local.services["express-idle-timeout-id"]
                invoke("express_idle_timeout", ev, env)
                cfn_success(capture)
            if seconds(local) != ALB_DEFAULT:
                raise StepFailed(f"Delete left {seconds(local)} s on the load balancer")
            return f"the ALB default ({ALB_DEFAULT} s) back (Delete run twice)"

        if created:
            run.step(RESOURCE, "deployment start: value put back after an Express reset", deployment)
            run.step(RESOURCE, "Delete: the ALB default back", delete_twice)
        else:
            for step in ("deployment start: value put back after an Express reset", "Delete: the ALB default back"):
                run.unavailable(RESOURCE, step, "skipped: Create failed")


def bench_cases(local: Local, capture: ResponseCapture) -> list[BenchCase]:
    # The benchmarks render the default compute (App Runner), which has no idle-timeout resource.
    if not local.stack.has(CUSTOM_RESOURCE_ID):
        return []
    platform.compute(local)
    platform.function_arns(local)
    return [
        BenchCase(
            name="express idle timeout (Create)",
            logical_id=FUNCTION_ID,
            function="express_idle_timeout",
            env=local.stack.function_env(FUNCTION_ID),
            event=event(local, "Create", capture),
            cfn_response=True,
        )
    ]
