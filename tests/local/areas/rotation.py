"""Rotation: all four steps for each secret kind; the next cron tick after the header rotates; key hygiene.

Secrets Manager is played the way the service drives a rotation function:
RotateSecret stages an empty AWSPENDING version (moto's own rotate_secret
cannot, so the runner stages it in the moto server that runs in this process),
then invokes the function once per step. The steps run in one warm container,
as Lambda usually does.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from moto.iam.models import AccessKeyLastUsed, iam_backends
from moto.secretsmanager.models import secretsmanager_backends

from local import platform
from local.areas import cron
from local.bench_case import BenchCase
from local.env import ACCOUNT_ID, REGION
from local.runner import Run, StepFailed, exists, invoke
from local.scenarios import Local
from redcap_ctl import waf
from testkit import load_event
from testkit.cfn import ResponseCapture
from testkit.emulators import ses_smtp

STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
KINDS = {
    # SECRET_KIND -> the secret it rotates
    "s3-access-key": "S3UserSecret",
    "ses-smtp": "SesUserSecret",
    "cron-header": "CronSecret",
}
# IAM keys need seconds to propagate in AWS; moto is immediate, so the first retry comes fast.
FAST_PROPAGATION = {"IAM_PROPAGATION_DELAY_MS": "50"}


def rotation_functions(local: Local) -> dict[str, str]:
    """SECRET_KIND -> logical id of the function the template deploys for it."""
    found: dict[str, str] = {}
    for logical_id in local.stack.functions_using("key_rotation"):
        variables = local.stack.props(logical_id).get("Environment", {}).get("Variables", {})
        kind = variables.get("SECRET_KIND")
        if isinstance(kind, str):
            found[kind] = logical_id
    return found


def provision(local: Local) -> None:
    platform.compute(local)
    platform.function_arns(local)
    platform.rotation_targets(local)
    cron.provision(local)
    if "ses" not in local.services:
        tmp = local.exit_stack.enter_context(tempfile.TemporaryDirectory(prefix="make-local-smtp-"))
        local.services["ses"] = local.exit_stack.enter_context(
            ses_smtp.serve(ses_smtp.self_signed_cert(Path(tmp)), REGION)
        )


def function_env(local: Local, kind: str, logical_id: str) -> dict[str, str]:
    env = local.stack.function_env(logical_id)
    env.update(FAST_PROPAGATION)
    if kind == "ses-smtp":
        ses = local.services["ses"]
        # The template names SES's SMTP endpoint; locally it is the STARTTLS stand-in with its own CA.
        env.update(
            {"SMTP_HOST": ses.host, "SMTP_PORT": str(ses.port), "SMTP_CA_FILE": ses.ca_file, "SMTP_TIMEOUT": "5"}
        )
    return env


def enable_rotation(local: Local, secret_arn: str) -> None:
    days = int(local.stack.value({"Ref": "RotationDays"}, "RotationDays"))
    local.client("secretsmanager").rotate_secret(
        SecretId=secret_arn, RotationRules={"AutomaticallyAfterDays": days}, RotateImmediately=False
    )


def start_rotation(secret_arn: str) -> str:
    """What RotateSecret does before it invokes createSecret: an empty version staged AWSPENDING."""
    token = str(uuid.uuid4())
    secret: Any = secretsmanager_backends[ACCOUNT_ID][REGION].secrets[secret_arn]
    secret.remove_version_stages_from_old_versions(["AWSPENDING"])
    secret.versions[token] = {"createdate": int(time.time()), "version_id": token, "version_stages": ["AWSPENDING"]}
    return token


def current(local: Local, secret_arn: str) -> str:
    text: str = local.client("secretsmanager").get_secret_value(SecretId=secret_arn, VersionStage="AWSCURRENT")[
        "SecretString"
    ]
    return text


def check_current(local: Local, kind: str, secret_arn: str, before: str) -> str:
    text = current(local, secret_arn)
    if text == before:
        raise StepFailed("AWSCURRENT did not change")
    if kind == "cron-header":
        ref = waf.PatternSetRef.from_arn(local.stack.physical["CronHeaderPatternSet.Arn"])
        if not waf.accepted(local.client("wafv2"), ref, text):
            raise StepFailed("WAF does not accept the new AWSCURRENT header value")
        return "WAF accepts only the new value" if not waf.accepted(local.client("wafv2"), ref, before) else "WAF ok"
    value = json.loads(text)
    keys = local.client("iam").list_access_keys(UserName=value["UserName"])["AccessKeyMetadata"]
    status = {k["AccessKeyId"]: k["Status"] for k in keys}
    if status.get(value["AccessKeyId"]) != "Active":
        raise StepFailed(f"AWSCURRENT's key is not an active key of {value['UserName']}")
    detail = f"new key active ({len(keys)} key(s) on the user)"
    if kind == "ses-smtp":
        ses = local.services["ses"]
        if value["AccessKeyId"] not in ses.logins:
            raise StepFailed("testSecret never logged in to SMTP with the new key")
        if "apprunner" in local.services:
            deployments = local.services["apprunner"].deployments
            if not deployments:
                raise StepFailed("App Runner was not redeployed to pick up the new SMTP credentials")
            detail += f"; SMTP AUTH ok; App Runner redeployed ({len(deployments)})"
        else:
            now = local.services["express"].deployment_ids()
            if now == local.services["express-initial-deployments"]:
                raise StepFailed("the ECS Express service was not redeployed to pick up the new SMTP credentials")
            local.services["express-initial-deployments"] = now
            detail += "; SMTP AUTH ok; ECS Express service redeployed (forced new deployment)"
    return detail


def rotate(local: Local, run: Run, kind: str, logical_id: str, label: str = "") -> bool:
    secret_arn = local.stack.physical[KINDS[kind]]
    resource = f"rotation {kind}{label}"
    state: dict[str, Any] = {"before": current(local, secret_arn), "token": start_rotation(secret_arn), "warm": None}
    env = function_env(local, kind, logical_id)
    for step in STEPS:

        def one(step: str = step) -> str:
            event = {
                **load_event("key_rotation", f"{step}.json"),
                "SecretId": secret_arn,
                "ClientRequestToken": state["token"],
            }
            call = invoke("key_rotation", event, env, warm=state["warm"])
            state["warm"] = call.module
            outcome = call.result.get("Outcome", "")
            if step != "finishSecret":
                return f"{outcome}"
            if call.metrics.get("RotationSucceeded") != 1:
                raise StepFailed(f"expected metric RotationSucceeded=1, emitted {call.metrics}")
            return f"{outcome}; {check_current(local, kind, secret_arn, state['before'])}; RotationSucceeded=1"

        if not run.step(resource, step, one):
            return False
    return True


def scenario(local: Local, run: Run) -> None:
    missing = exists("functions/key_rotation/app.py", "events/key_rotation/createSecret.json")
    if missing:
        run.unavailable("rotation", "all four steps", missing)
        return
    functions = rotation_functions(local)
    absent = [k for k in KINDS if k not in functions]
    if absent:
        run.unavailable(
            "rotation", "all four steps", f"template.yaml has no key_rotation function with SECRET_KIND {absent}"
        )
        if len(absent) == len(KINDS):
            return

    def setup() -> str:
        provision(local)
        for logical_id in KINDS.values():
            enable_rotation(local, local.stack.physical[logical_id])
        return f"users, secrets, bucket, DB Data API, SMTP STARTTLS on :{local.services['ses'].port}"

    if not run.step("rotation", "provision users, secrets, SMTP", setup):
        return
    for kind, logical_id in functions.items():
        rotated = rotate(local, run, kind, logical_id)
        if kind == "cron-header" and rotated:
            next_ticks(local, run)
    hygiene(local, run)


def next_ticks(local: Local, run: Run) -> None:
    """After the header rotated: the container that cached the old value, then a new one."""

    def warm() -> str:
        module = local.services.get("cron-warm")
        if module is None:
            raise StepFailed("no warm cron caller container (the first tick did not run)")
        call = cron.tick(local, warm=module)
        # The cached old value gets a 403, the caller re-reads the secret and retries once.
        return "warm container, cached old value: " + cron.check_tick(call, expect_attempts=2)

    run.step("cron", "next tick succeeds after rotation (warm)", warm)
    run.step(
        "cron", "next tick succeeds after rotation (cold)", lambda: cron.check_tick(cron.tick(local), expect_attempts=1)
    )


HYGIENE_ID_DIR = "key_hygiene"


def time_passes(local: Local, hours: float) -> None:
    """Move every timestamp hygiene reads ``hours`` into the past: the secrets' versions and the users' keys.

    The hygiene function compares them with the real clock (its graces are at
    least an hour), so "a day later" is made by ageing the emulated state,
    never by patching the code under test.
    """
    delta = dt.timedelta(hours=hours)
    backend: Any = secretsmanager_backends[ACCOUNT_ID][REGION]
    for logical_id in KINDS.values():
        secret: Any = backend.secrets[local.stack.physical[logical_id]]
        for version in secret.versions.values():
            version["createdate"] = int(version["createdate"] - delta.total_seconds())
    iam: Any = iam_backends[ACCOUNT_ID]["aws"]
    for user in ("S3User", "SesUser"):
        for key in iam.users[local.stack.physical[user]].access_keys:
            key.create_date -= delta
            if key.last_used is not None:
                key.last_used = AccessKeyLastUsed(
                    timestamp=key.last_used.timestamp - delta,
                    service=key.last_used.service,
                    region=key.last_used.region,
                )


def user_keys(local: Local, user: str) -> dict[str, str]:
    keys = local.client("iam").list_access_keys(UserName=local.stack.physical[user])["AccessKeyMetadata"]
    return {k["AccessKeyId"]: k["Status"] for k in keys}


def hygiene(local: Local, run: Run) -> None:
    missing = exists("functions/key_hygiene/app.py", "events/key_hygiene/scheduled.json")
    if missing:
        run.unavailable("key hygiene", "after the grace period", missing)
        return
    functions = local.stack.functions_using(HYGIENE_ID_DIR)
    if not functions:
        run.unavailable("key hygiene", "after the grace period", "template.yaml has no functions/key_hygiene function")
        return
    logical_id = functions[0]
    iam_kinds = {"s3-access-key": "S3User", "ses-smtp": "SesUser"}
    # A second rotation leaves a previous key behind: what hygiene exists to retire.
    for kind in iam_kinds:
        if kind in rotation_functions(local) and not rotate(
            local, run, kind, rotation_functions(local)[kind], " (2nd)"
        ):
            return
    previous: dict[str, str] = {}
    for kind, user in iam_kinds.items():
        current_key = json.loads(current(local, local.stack.physical[KINDS[kind]]))["AccessKeyId"]
        others = [k for k in user_keys(local, user) if k != current_key]
        if len(others) != 1:
            run.unavailable("key hygiene", "after the grace period", f"{kind}: expected one previous key, got {others}")
            return
        previous[user] = others[0]

    def sweep(hours: float, expect: str) -> str:
        time_passes(local, hours)
        env = local.stack.function_env(logical_id)
        call = invoke("key_hygiene", load_event("key_hygiene", "scheduled.json"), env)
        for user, key in previous.items():
            status = user_keys(local, user).get(key, "deleted")
            if status != expect:
                raise StepFailed(f"{user}'s previous key is {status}, expected {expect}")
        if "SecretAgeDays" not in call.metrics:
            raise StepFailed(f"no SecretAgeDays metric emitted ({call.metrics})")
        actions = [a for s in call.result["Secrets"] for a in s["Actions"]]
        return f"previous keys {expect} ({len(actions)} actions); SecretAgeDays + PreviousKeyInUse emitted"

    if run.step("key hygiene", "25 h after rotation: previous keys deactivated", lambda: sweep(25, "Inactive")):
        run.step("key hygiene", "8 days after rotation: previous keys deleted", lambda: sweep(24 * 7, "deleted"))


# Bench runs rotate again and again within seconds: let createSecret retire the previous key at
# once (in production it waits PREVIOUS_KEY_IDLE_HOURS for consumers to follow).
BENCH_ENV = {"PREVIOUS_KEY_IDLE_HOURS": "0"}


def _bench_setup(local: Local) -> dict[str, str]:
    provision(local)
    functions = rotation_functions(local)
    for kind in functions:
        secret_arn = local.stack.physical[KINDS[kind]]
        meta = local.client("secretsmanager").describe_secret(SecretId=secret_arn)
        if not meta.get("RotationEnabled"):
            enable_rotation(local, secret_arn)
    return functions


def step_event(step: str, secret_arn: str, token: str) -> dict[str, Any]:
    return {**load_event("key_rotation", f"{step}.json"), "SecretId": secret_arn, "ClientRequestToken": token}


def bench_cases(local: Local, capture: ResponseCapture) -> list[BenchCase]:
    """createSecret (the first event a rotation serves) per kind, and the daily hygiene run."""
    functions = _bench_setup(local)
    cases = []
    for kind, logical_id in functions.items():
        secret_arn = local.stack.physical[KINDS[kind]]

        def first_event(secret_arn: str = secret_arn) -> dict[str, Any]:
            token = start_rotation(secret_arn)
            return {
                **load_event("key_rotation", "createSecret.json"),
                "SecretId": secret_arn,
                "ClientRequestToken": token,
            }

        cases.append(
            BenchCase(
                name=f"key rotation {kind} (createSecret)",
                logical_id=logical_id,
                function="key_rotation",
                env={**function_env(local, kind, logical_id), **BENCH_ENV},
                event=first_event(),
                prepare=first_event,
            )
        )
    hygiene_functions = local.stack.functions_using(HYGIENE_ID_DIR)
    if hygiene_functions:
        cases.append(
            BenchCase(
                name="key hygiene (daily run)",
                logical_id=hygiene_functions[0],
                function="key_hygiene",
                env=local.stack.function_env(hygiene_functions[0]),
                event=load_event("key_hygiene", "scheduled.json"),
            )
        )
    return cases


def bench_extras(local: Local, runs: int) -> list[tuple[str, list[float], str]]:
    """A full rotation (four steps in one container, its cold start included) per kind."""
    functions = _bench_setup(local)
    rows = []
    for kind, logical_id in functions.items():
        secret_arn = local.stack.physical[KINDS[kind]]
        env = {**function_env(local, kind, logical_id), **BENCH_ENV}
        times = []
        for _ in range(runs):
            token = start_rotation(secret_arn)
            warm = None
            start = time.perf_counter()
            for step in STEPS:
                event = {
                    **load_event("key_rotation", f"{step}.json"),
                    "SecretId": secret_arn,
                    "ClientRequestToken": token,
                }
                warm = invoke("key_rotation", event, env, warm=warm).module
            times.append((time.perf_counter() - start) * 1000)
        note = {
            "s3-access-key": "new IAM key, STS/IAM/S3 probes as the new key, Data API update of redcap_config",
            "ses-smtp": "new IAM key, SMTP AUTH over STARTTLS with the derived password, App Runner redeploy",
            "cron-header": "new value, WAF set widened then narrowed",
        }.get(kind, "")
        rows.append((f"rotation {kind}: four steps", times, note + " (in-process, local emulators)"))
    return rows
