"""Cron: a scheduled tick reaches cron.php through the emulated WAF; a request without the header is refused.

The REDCap stand-in answers 200 only for a header value that the emulated WAF
regex pattern set (``CronHeaderPatternSet``) accepts right now, so the cron
caller, the rotation function and WAF meet exactly as deployed.
"""

from __future__ import annotations

import secrets
import urllib.error
import urllib.request
from typing import Any

from local import platform
from local.bench_case import BenchCase
from local.runner import Invocation, Run, StepFailed, exists, invoke
from local.scenarios import Local
from redcap_ctl import waf
from testkit import load_event
from testkit.cfn import ResponseCapture

RESOURCE = "cron"
FUNCTION_ID = "CronCallerFunction"


def provision(local: Local) -> None:
    """CronSecret and CronHeaderPatternSet as CloudFormation creates them, and the REDCap stand-in."""
    stack = local.stack
    platform.compute(local)
    if "CronSecret" not in stack.physical:
        # GenerateSecretString: 48 letters and digits; the pattern set starts as ^AWSCURRENT$.
        alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
        value = "".join(secrets.choice(alphabet) for _ in range(48))
        secret = local.client("secretsmanager").create_secret(
            Name=f"{stack.pseudo['AWS::StackName']}-CronSecret", SecretString=value
        )
        stack.physical["CronSecret"] = secret["ARN"]
        props = stack.props("CronHeaderPatternSet")
        created = local.client("wafv2").create_regex_pattern_set(
            Name=stack.value(props["Name"], "CronHeaderPatternSet.Name"),
            Scope=props["Scope"],
            RegularExpressionList=[{"RegexString": waf.pattern_for(value)}],
        )["Summary"]
        stack.physical["CronHeaderPatternSet.Arn"] = created["ARN"]
        stack.physical["CronHeaderPatternSet.Id"] = created["Id"]
        stack.physical["CronHeaderPatternSet"] = f"{created['Name']}|{created['Id']}|{props['Scope']}"
    if "redcap" not in local.services:
        module = local.emulator("redcap")
        ref = waf.PatternSetRef.from_arn(stack.physical["CronHeaderPatternSet.Arn"])
        redcap = module.RedcapEmulator(header_name=header_name(local), pattern_set=ref)
        local.exit_stack.enter_context(redcap)
        local.services["redcap"] = redcap


def header_name(local: Local) -> str:
    return local.stack.value({"Ref": "CronHeaderName"}, "CronHeaderName")


def function_env(local: Local) -> dict[str, str]:
    env = local.stack.function_env(FUNCTION_ID)
    # The template points at the App Runner URL over https; locally REDCap is the stand-in on 127.0.0.1
    # (the cron module accepts plain http only for loopback addresses).
    env["CRON_URL"] = local.services["redcap"].cron_url
    return env


def tick(local: Local, warm: Any = None) -> Invocation:
    return invoke("cron_caller", load_event("cron_caller", "scheduled.json"), function_env(local), warm=warm)


def check_tick(call: Invocation, expect_attempts: int | None = None) -> str:
    result = call.result
    if result.get("outcome") != "success" or result.get("status") != 200:
        raise StepFailed(f"cron caller returned {result}")
    if call.metrics.get("CronSuccess") != 1:
        raise StepFailed(f"expected metric CronSuccess=1, emitted {call.metrics}")
    if expect_attempts is not None and result.get("attempts") != expect_attempts:
        raise StepFailed(f"expected {expect_attempts} attempt(s), got {result.get('attempts')}")
    return f"cron.php 200 in {result['latency_ms']} ms, attempts={result['attempts']}, CronSuccess=1"


def get_status(url: str, headers: dict[str, str]) -> int:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as err:
        return int(err.code)


def scenario(local: Local, run: Run) -> None:
    missing = exists(
        "functions/cron_caller/app.py", "events/cron_caller/scheduled.json", "tests/testkit/emulators/redcap.py"
    )
    if missing:
        run.unavailable(RESOURCE, "tick / rejected request", missing)
        return

    def setup() -> str:
        provision(local)
        return f"secret + WAF pattern set; REDCap stand-in on {local.services['redcap'].base_url}"

    if not run.step(RESOURCE, "provision secret, WAF set, REDCap stand-in", setup):
        return

    def ok_tick() -> str:
        call = tick(local)
        local.services["cron-warm"] = call.module
        return check_tick(call, expect_attempts=1)

    run.step(RESOURCE, "scheduled tick succeeds", ok_tick)

    def no_header() -> str:
        url = local.services["redcap"].cron_url
        status = get_status(url, {})
        if status != 403:
            raise StepFailed(f"cron.php without the header answered {status}, expected 403")
        wrong = get_status(url, {header_name(local): "x" * 48})
        if wrong != 403:
            raise StepFailed(f"cron.php with a wrong header value answered {wrong}, expected 403")
        return "403 without the header, 403 with a wrong value"

    run.step(RESOURCE, "request without the header is rejected (403)", no_header)


def bench_cases(local: Local, capture: ResponseCapture) -> list[BenchCase]:
    provision(local)
    return [
        BenchCase(
            name="cron caller (tick)",
            logical_id=FUNCTION_ID,
            function="cron_caller",
            env=function_env(local),
            event=load_event("cron_caller", "scheduled.json"),
        )
    ]
