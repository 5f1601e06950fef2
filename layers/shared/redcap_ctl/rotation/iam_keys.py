"""IAM access-key steps for the ``s3-access-key`` and ``ses-smtp`` kinds.

IAM allows two keys per user: during a rotation that is AWSCURRENT's key and
the new one, so an older key must go first -- but only one that nobody uses.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from redcap_ctl.rotation.clients import RotationClients
from redcap_ctl.rotation.config import Retry, RotationConfig, SecretKind
from redcap_ctl.rotation.values import (
    CURRENT,
    PENDING,
    PREVIOUS,
    KeySecret,
    RotationError,
    error_code,
    get_value,
    mask,
)

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

logger = Logger(child=True)

# Codes that mean "this new key is not visible everywhere yet" (IAM is eventually consistent).
PROPAGATION_CODES = frozenset(
    {"InvalidClientTokenId", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "AuthFailure"}
)


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    status: str
    created: datetime
    last_used: datetime | None


def iam_reason(err: ClientError, action: str) -> RotationError:
    """A clear, secret-free reason for the IAM failures operators actually meet."""
    code = error_code(err)
    if code == "LimitExceeded":
        return RotationError(f"{action}: IAM LimitExceeded (the user already has two access keys)")
    if code in ("Throttling", "ThrottlingException", "RequestLimitExceeded"):
        return RotationError(f"{action}: IAM is throttling requests; the next rotation attempt retries")
    if code in ("AccessDenied", "AccessDeniedException", "UnauthorizedOperation"):
        return RotationError(f"{action}: access denied; check the rotation function's IAM policy")
    if code == "NoSuchEntity":
        return RotationError(f"{action}: the IAM user or key does not exist")
    return RotationError(f"{action}: IAM error {code or type(err).__name__}")


def _iam_call[T](action: str, call: Callable[[], T]) -> T:
    try:
        return call()
    except ClientError as err:
        raise iam_reason(err, action) from None


def list_keys(iam: IAMClient, user: str) -> list[KeyInfo]:
    resp = _iam_call(f"listing access keys of {user}", lambda: iam.list_access_keys(UserName=user))
    out = []
    for meta in resp.get("AccessKeyMetadata", []):
        key_id = meta["AccessKeyId"]
        used = _iam_call("reading when a key was last used", partial(iam.get_access_key_last_used, AccessKeyId=key_id))
        out.append(
            KeyInfo(
                key_id=key_id,
                status=meta["Status"],
                created=meta["CreateDate"],
                last_used=used.get("AccessKeyLastUsed", {}).get("LastUsedDate"),
            )
        )
    return out


def deletable_reason(key: KeyInfo, now: datetime, idle: timedelta) -> str | None:
    """Why a non-current key may be deleted, or None if someone may still use it."""
    if key.status != "Active":
        return "inactive"
    if key.last_used is None:
        # IAM reports use with a delay, so a young never-used key may be in use already.
        return "never used, created over the idle period ago" if now - key.created >= idle else None
    return "unused for the idle period" if now - key.last_used >= idle else None


def _versions(secrets: SecretsManagerClient, secret_id: str) -> list[tuple[str, list[str]]]:
    out: list[tuple[str, list[str]]] = []
    kwargs: dict[str, Any] = {"SecretId": secret_id, "IncludeDeprecated": True}
    while True:
        resp = secrets.list_secret_version_ids(**kwargs)
        out.extend((v["VersionId"], list(v.get("VersionStages", []))) for v in resp.get("Versions", []))
        token = resp.get("NextToken")
        if not token:
            return out
        kwargs["NextToken"] = token


def _key_of(secrets: SecretsManagerClient, secret_id: str, version_id: str) -> str | None:
    text = get_value(secrets, secret_id, version_id=version_id)
    if not text:
        return None
    try:
        return KeySecret.parse(text, "an older version").access_key_id
    except RotationError:
        return None


def create_key(
    secret_id: str,
    token: str,
    config: RotationConfig,
    clients: RotationClients,
) -> str:
    """createSecret for IAM kinds. Returns a secret-free outcome."""
    secrets, iam = clients.secrets, clients.need_iam()
    current_text = get_value(secrets, secret_id, stage=CURRENT)
    if current_text is None:
        raise RotationError('the secret has no AWSCURRENT value (expected at least {"UserName"})')
    current = KeySecret.parse(current_text, "AWSCURRENT value")
    user = current.user_name

    pending_text = get_value(secrets, secret_id, stage=PENDING, version_id=token)
    if pending_text is not None:
        pending = KeySecret.parse(pending_text, "AWSPENDING value")
        if pending.has_key and pending.access_key_id != current.access_key_id:
            existing = {k.key_id: k for k in list_keys(iam, user)}
            found = existing.get(pending.access_key_id or "")
            if found is not None and found.status == "Active":
                logger.info("pending key already created", extra={"key": mask(pending.access_key_id)})
                return "pending-exists"
            raise RotationError(
                "the AWSPENDING version holds a key that is gone or inactive; remove the AWSPENDING label "
                "from it (CancelRotateSecret) and rotate again"
            )
        # A placeholder (UserName only, or a copy of AWSCURRENT): create the key below.

    versions = _versions(secrets, secret_id)
    previous_version = next((v for v, s in versions if PREVIOUS in s), None)
    previous_key = _key_of(secrets, secret_id, previous_version) if previous_version else None
    keys = list_keys(iam, user)
    now = clients.now()
    idle = timedelta(hours=config.previous_key_idle_hours)

    # Plan first, act after: if the plan cannot make room, nothing is touched.
    to_delete: dict[str, str] = {}
    stale_labels: list[str] = []
    user_keys = {k.key_id: k for k in keys}
    for version_id, stages in versions:
        if version_id == token or CURRENT in stages or PREVIOUS in stages:
            continue
        key_id = _key_of(secrets, secret_id, version_id)
        key = user_keys.get(key_id or "")
        if PENDING in stages:
            stale_labels.append(version_id)
        # A version that is neither AWSCURRENT nor AWSPREVIOUS and still has a live key
        # is a failed run's pending version: its key never reached a consumer (only
        # finishSecret hands keys out, after AWSCURRENT moved), so it is safe to delete
        # even though our own testSecret probes may have used it. A former current
        # key cannot be here: its slot was freed before its version lost AWSPREVIOUS.
        if key is not None and key.key_id not in (current.access_key_id, previous_key):
            to_delete[key.key_id] = "stale AWSPENDING key from a failed rotation"

    remaining = [k for k in keys if k.key_id not in to_delete]
    if len(remaining) >= 2:
        candidates = sorted(
            (k for k in remaining if k.key_id != current.access_key_id),
            key=lambda k: (k.status == "Active", k.last_used or k.created),
        )
        for key in candidates:
            reason = deletable_reason(key, now, idle)
            if reason:
                to_delete[key.key_id] = reason
                break
        else:
            raise RotationError(
                f"user {user} already has two access keys and the one that is not AWSCURRENT was used "
                f"(or created) within the last {config.previous_key_idle_hours} h; "
                "refusing to delete it (nothing was changed)"
            )

    for key_id, reason in to_delete.items():
        _iam_call("deleting an old access key", partial(iam.delete_access_key, UserName=user, AccessKeyId=key_id))
        logger.info("deleted access key", extra={"key": mask(key_id), "reason": reason})
    for version_id in stale_labels:
        secrets.update_secret_version_stage(SecretId=secret_id, VersionStage=PENDING, RemoveFromVersionId=version_id)
        logger.info("removed a stale AWSPENDING label", extra={"version": version_id})

    created = _iam_call("creating the new access key", lambda: iam.create_access_key(UserName=user))["AccessKey"]
    new = KeySecret(user, created["AccessKeyId"], created["SecretAccessKey"])
    try:
        secrets.put_secret_value(
            SecretId=secret_id,
            ClientRequestToken=token,
            SecretString=new.to_json(config.kind, config.region),
            VersionStages=[PENDING],
        )
    except Exception:
        # Do not leave an orphan key behind (it would block the next run's slot).
        iam.delete_access_key(UserName=user, AccessKeyId=created["AccessKeyId"])
        raise
    logger.info("created pending key", extra={"key": mask(new.access_key_id), "user": user})
    return "created"


def pending_key(secrets: SecretsManagerClient, secret_id: str, token: str) -> KeySecret:
    text = get_value(secrets, secret_id, stage=PENDING, version_id=token)
    if text is None:
        raise RotationError("the AWSPENDING version has no value; createSecret did not run")
    pending = KeySecret.parse(text, "AWSPENDING value")
    if not pending.has_key:
        raise RotationError("the AWSPENDING version holds no key; createSecret did not run")
    return pending


def require_active(iam: IAMClient, key: KeySecret) -> None:
    """The key exists in IAM, belongs to the secret's user and is Active."""
    keys = _iam_call(f"listing access keys of {key.user_name}", lambda: iam.list_access_keys(UserName=key.user_name))
    for meta in keys.get("AccessKeyMetadata", []):
        if meta["AccessKeyId"] == key.access_key_id:
            if meta["Status"] != "Active":
                raise RotationError(f"key {mask(key.access_key_id)} of {key.user_name} is not Active")
            return
    raise RotationError(f"key {mask(key.access_key_id)} does not belong to IAM user {key.user_name}")


def set_key(secret_id: str, token: str, clients: RotationClients) -> str:
    """setSecret for IAM kinds: IAM already holds the key; confirm it is there and Active."""
    require_active(clients.need_iam(), pending_key(clients.secrets, secret_id, token))
    return "verified"


def with_propagation_retries[T](
    action: str, call: Callable[[], T], retry: Retry, sleep: Callable[[float], None], codes: Iterable[str]
) -> T:
    retry_codes = frozenset(codes)
    delays = retry.delays()
    for attempt in range(retry.attempts):
        try:
            return call()
        except ClientError as err:
            code = error_code(err)
            if code not in retry_codes:
                raise RotationError(f"{action} failed: {code or type(err).__name__}") from None
            if attempt == retry.attempts - 1:
                raise RotationError(f"{action} still failing after {retry.attempts} attempts: {code}") from None
            logger.info("new key not usable yet; retrying", extra={"action": action, "code": code})
            sleep(delays[attempt])
    raise AssertionError("unreachable")  # pragma: no cover


def check_identity(key: KeySecret, config: RotationConfig, clients: RotationClients) -> None:
    """STS GetCallerIdentity with the pending key must name this very user."""
    sts = clients.as_user("sts", *key.credentials(), config.region)
    identity = with_propagation_retries(
        "STS GetCallerIdentity with the pending key",
        sts.get_caller_identity,
        config.propagation,
        clients.sleep,
        PROPAGATION_CODES,
    )
    arn = str(identity.get("Arn", ""))
    if ":user/" not in arn or arn.rsplit("/", 1)[-1] != key.user_name:
        raise RotationError(f"the pending key authenticates as another principal, not IAM user {key.user_name}")


def probe_bucket(key: KeySecret, token: str, config: RotationConfig, clients: RotationClients) -> None:
    """Write and delete a probe object as the rotated user (what REDCap does with the key)."""
    bucket = config.bucket
    if not bucket:
        raise RotationError("s3-access-key rotation needs FILE_BUCKET")
    s3 = clients.as_user("s3", *key.credentials(), config.region)
    probe = f"{config.probe_prefix}{token}"
    with_propagation_retries(
        "S3 PutObject probe as the rotated user",
        lambda: s3.put_object(Bucket=bucket, Key=probe, Body=b"key rotation probe\n"),
        config.propagation,
        clients.sleep,
        PROPAGATION_CODES,
    )
    with_propagation_retries(
        "S3 DeleteObject probe as the rotated user",
        lambda: s3.delete_object(Bucket=bucket, Key=probe),
        config.propagation,
        clients.sleep,
        PROPAGATION_CODES,
    )


def verify_key(secret_id: str, token: str, config: RotationConfig, clients: RotationClients) -> KeySecret:
    """testSecret checks shared by both IAM kinds; returns the pending key for kind-specific checks."""
    key = pending_key(clients.secrets, secret_id, token)
    require_active(clients.need_iam(), key)
    check_identity(key, config, clients)
    if config.kind is SecretKind.S3:
        probe_bucket(key, token, config, clients)
    return key
