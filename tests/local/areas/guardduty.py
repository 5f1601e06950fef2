"""GuardDuty: Create on an account without a detector, and on one with a partly enabled detector.

moto keeps GuardDuty state per region, so the two accounts are two regions of
the one emulator: no reset between the cases, nothing shared.
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

RESOURCE = "GuardDuty"
FUNCTION_ID = "GuardDutyFunction"
CUSTOM_RESOURCE_ID = "GuardDutyProtection"
FRESH_REGION = "us-east-1"  # no detector at all
PARTIAL_REGION = "eu-west-1"  # a detector someone made, with only some features on
BENCH_REGION = "us-west-2"


def _regional(text: str, region: str) -> str:
    return text.replace(":us-east-1:", f":{region}:")


def event(local: Local, request: str, region: str, capture: ResponseCapture | None) -> dict[str, Any]:
    platform.function_arns(local)
    ev = copy.deepcopy(load_event("guardduty", f"{request.lower()}.json"))
    props = local.stack.props(CUSTOM_RESOURCE_ID)
    ev["ResourceProperties"] = _resolve(local, props)
    token = _regional(ev["ServiceToken"], region)
    ev["ServiceToken"] = ev["ResourceProperties"]["ServiceToken"] = token
    ev["StackId"] = _regional(ev["StackId"], region)
    if capture is not None:
        ev["ResponseURL"] = capture.url(f"guardduty-{region}")
    return ev


def _resolve(local: Local, node: Any) -> Any:
    if isinstance(node, dict) and len(node) == 1 and next(iter(node)).startswith(("Ref", "Fn::")):
        return local.stack.value(node, CUSTOM_RESOURCE_ID)
    if isinstance(node, dict):
        return {k: _resolve(local, v) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(local, v) for v in node]
    return local.stack.value(node, CUSTOM_RESOURCE_ID)


def function_env(local: Local, region: str) -> dict[str, str]:
    env = local.stack.function_env(FUNCTION_ID)
    env.update({"AWS_REGION": region, "AWS_DEFAULT_REGION": region})
    return env


def wanted_features(ev: dict[str, Any]) -> list[str]:
    from redcap_ctl import guardduty

    return list(guardduty.parse_settings(ev["ResourceProperties"], ev["StackId"]).features)


def check_detector(local: Local, region: str, features: list[str]) -> str:
    gd = local.client("guardduty", region)
    ids = gd.list_detectors()["DetectorIds"]
    if len(ids) != 1:
        raise StepFailed(f"expected exactly one detector in {region}, found {len(ids)}")
    detector = gd.get_detector(DetectorId=ids[0])
    status = {f["Name"]: f["Status"] for f in detector.get("Features", [])}
    off = [f for f in features if status.get(f) != "ENABLED"]
    if detector.get("Status") != "ENABLED" or off:
        raise StepFailed(f"detector {detector.get('Status')}, features still off: {off}")
    tags = [k for k in detector.get("Tags", {}) if k.startswith("redcap:guardduty:")]
    if not tags:
        raise StepFailed("no ownership ledger tag on the detector")
    return f"detector {ids[0][:8]}.. enabled: {', '.join(sorted(features))}"


def scenario(local: Local, run: Run) -> None:
    missing = exists("functions/guardduty/app.py", "events/guardduty/create.json")
    if missing:
        run.unavailable(RESOURCE, "Create", missing)
        return
    with capture_cfn_responses() as capture:

        def fresh() -> str:
            ev = event(local, "Create", FRESH_REGION, capture)
            gd = local.client("guardduty", FRESH_REGION)
            if gd.list_detectors()["DetectorIds"]:
                raise StepFailed(f"{FRESH_REGION} already has a detector before Create")
            invoke("guardduty", ev, function_env(local, FRESH_REGION))
            data = cfn_success(capture).get("Data", {})
            if data.get("CreatedDetector") != "true":
                raise StepFailed(f"expected the function to report a created detector, got {data}")
            return check_detector(local, FRESH_REGION, wanted_features(ev)) + " (created)"

        run.step(RESOURCE, "Create: account without a detector", fresh)

        def partial() -> str:
            ev = event(local, "Create", PARTIAL_REGION, capture)
            features = wanted_features(ev)
            gd = local.client("guardduty", PARTIAL_REGION)
            # Someone else's detector: only the first wanted feature on.
            gd.create_detector(
                Enable=True,
                Features=[
                    {"Name": name, "Status": "ENABLED" if n == 0 else "DISABLED"} for n, name in enumerate(features)
                ],
            )
            invoke("guardduty", ev, function_env(local, PARTIAL_REGION))
            data = cfn_success(capture).get("Data", {})
            if data.get("CreatedDetector") != "false":
                raise StepFailed(f"expected the existing detector to be adopted, got {data}")
            return check_detector(local, PARTIAL_REGION, features) + f" (adopted; had only {features[0]})"

        run.step(RESOURCE, "Create: partly enabled detector", partial)


def bench_cases(local: Local, capture: ResponseCapture) -> list[BenchCase]:
    # A repeated Create on the detector it made is the steady state: adopt, find nothing to change.
    return [
        BenchCase(
            name="GuardDuty (Create)",
            logical_id=FUNCTION_ID,
            function="guardduty",
            env=function_env(local, BENCH_REGION),
            event=event(local, "Create", BENCH_REGION, capture),
            cfn_response=True,
        )
    ]
