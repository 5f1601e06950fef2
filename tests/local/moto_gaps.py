"""Make the in-process moto server behave like AWS where the control plane depends on it.

moto 5.2.5 differs from AWS GuardDuty in ways the GuardDuty function relies on
(see the toolchain notes and ``tests/functional/test_guardduty_protection.py``):

- no TagResource/UntagResource: served here against moto's own detector;
- a second CreateDetector succeeds (AWS: one detector per account and Region);
- CreateDetector leaves unlisted features out (AWS enables every feature except
  the runtime-monitoring pair);
- UpdateDetector replaces the whole feature list (AWS merges by name).

and from Secrets Manager, which the rotation function and the cron caller share:

- UpdateSecretVersionStage moves the AWSCURRENT label but not moto's default
  version, so GetSecretValue *without* a stage (what Powertools'
  SecretsProvider sends) keeps answering the old value after a rotation; AWS
  answers AWSCURRENT.
- ListSecretVersionIds reports the call's time as every version's CreatedDate
  (``testkit.moto_secrets``, shared with the tests).

and from ACM, which the ECS Express custom domain relies on (``testkit.moto_acm``, shared with the
tests): moto issues every DNS-validated certificate 60 s after the request whatever the DNS, where
ACM issues it only once its validation CNAME resolves in public DNS (the scenario's "delegate"
step); and moto deletes a certificate a listener still uses, where ACM answers
ResourceInUseException.

Applied once, for the life of the ``make local``/bench process (the moto
server runs in this process). Never used by the test suite's own moto.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs, unquote

from moto.guardduty import models as gd_models
from moto.secretsmanager import models as sm_models

from local.env import ACCOUNT_ID, WsgiApp, signing_service
from testkit import moto_acm, moto_secrets
from testkit.moto_guardduty import aws_create_detector, aws_update_detector

_applied = False


def apply() -> None:
    global _applied
    if _applied:
        return
    _applied = True
    stage = sm_models.SecretsManagerBackend.update_secret_version_stage

    def update_secret_version_stage(
        self: Any, secret_id: str, version_stage: str, remove_from_version_id: str, move_to_version_id: str
    ) -> tuple[str, str]:
        result: tuple[str, str] = stage(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)
        if version_stage == "AWSCURRENT" and move_to_version_id:
            self.secrets[secret_id].default_version_id = move_to_version_id
        return result

    sm_models.SecretsManagerBackend.update_secret_version_stage = update_secret_version_stage  # type: ignore[method-assign]
    gd_models.GuardDutyBackend.create_detector = aws_create_detector(  # type: ignore[method-assign]
        gd_models.GuardDutyBackend.create_detector
    )
    gd_models.Detector.update = aws_update_detector(gd_models.Detector.update)  # type: ignore[method-assign]
    moto_secrets.apply()
    moto_acm.manual()
    moto_acm.guard_in_use()


def _detector(arn: str) -> Any:
    # arn:aws:guardduty:<region>:<account>:detector/<id>
    parts = arn.split(":")
    region, account, resource = parts[3], parts[4], parts[5]
    backend = gd_models.guardduty_backends[account or ACCOUNT_ID][region]
    return backend.get_detector(resource.split("/", 1)[1])


def guardduty_tags(app: WsgiApp) -> WsgiApp:
    """Serve GuardDuty's TagResource (POST /tags/<arn>) and UntagResource (DELETE /tags/<arn>)."""

    def wrapped(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = str(environ.get("PATH_INFO", ""))
        if signing_service(environ) != "guardduty" or not path.startswith("/tags/"):
            return app(environ, start_response)
        arn = unquote(path[len("/tags/") :])
        try:
            detector = _detector(arn)
        except Exception as exc:
            body = json.dumps({"__type": "BadRequestException", "message": str(exc)}).encode()
            start_response("400 Bad Request", [("Content-Type", "application/json")])
            return [body]
        method = environ["REQUEST_METHOD"]
        if method == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            payload = json.loads(environ["wsgi.input"].read(length) or b"{}")
            detector.tags.update(payload.get("tags", {}))
        elif method == "DELETE":
            for key in parse_qs(str(environ.get("QUERY_STRING", ""))).get("tagKeys", []):
                detector.tags.pop(key, None)
        elif method == "GET":
            body = json.dumps({"tags": detector.tags}).encode()
            start_response("200 OK", [("Content-Type", "application/json")])
            return [body]
        start_response("204 No Content", [])
        return [b""]

    return wrapped
