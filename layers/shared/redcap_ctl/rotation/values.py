"""Secret values and how to read them: nothing here ever renders a secret."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from redcap_ctl.errors import ControlPlaneError
from redcap_ctl.rotation.config import SecretKind
from redcap_ctl.rotation.smtp import derive_smtp_password

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

CURRENT = "AWSCURRENT"
PENDING = "AWSPENDING"
PREVIOUS = "AWSPREVIOUS"


class RotationError(ControlPlaneError):
    """A rotation step cannot go on; the message is safe to log (no secret material)."""


def error_code(err: ClientError) -> str:
    response: Any = err.response
    return str(response.get("Error", {}).get("Code", ""))


def mask(key_id: str | None) -> str:
    """Enough of an access key id to tell keys apart in logs, not to use one."""
    return "<none>" if not key_id else "..." + key_id[-4:]


@dataclass(frozen=True)
class KeySecret:
    """The JSON value of an IAM-key secret. ``repr`` never shows the secret key."""

    user_name: str
    access_key_id: str | None = None
    secret_access_key: str | None = field(default=None, repr=False)

    @classmethod
    def parse(cls, text: str, what: str) -> KeySecret:
        try:
            data = json.loads(text)
        except ValueError:
            # Never quote the text: it is secret material.
            raise RotationError(f"{what} is not valid JSON") from None
        if not isinstance(data, Mapping):
            raise RotationError(f"{what} must be a JSON object")
        user = data.get("UserName")
        if not isinstance(user, str) or not user:
            raise RotationError(f"{what} has no UserName")
        key_id = data.get("AccessKeyId")
        secret = data.get("SecretAccessKey")
        if (key_id is None) != (secret is None):
            raise RotationError(f"{what} must hold both AccessKeyId and SecretAccessKey, or neither")
        if key_id is not None and (not isinstance(key_id, str) or not isinstance(secret, str)):
            raise RotationError(f"{what} has a malformed AccessKeyId or SecretAccessKey")
        return cls(user_name=user, access_key_id=key_id, secret_access_key=secret)

    def credentials(self) -> tuple[str, str]:
        if not self.access_key_id or not self.secret_access_key:
            raise RotationError("the secret holds no access key")
        return self.access_key_id, self.secret_access_key

    @property
    def has_key(self) -> bool:
        return bool(self.access_key_id and self.secret_access_key)

    def to_json(self, kind: SecretKind, region: str) -> str:
        if not self.access_key_id or not self.secret_access_key:
            raise RotationError("refusing to store a key secret without a key")
        data: dict[str, str] = {
            "UserName": self.user_name,
            "AccessKeyId": self.access_key_id,
            "SecretAccessKey": self.secret_access_key,
        }
        if kind is SecretKind.SES:
            data["SmtpUsername"] = self.access_key_id
            data["SmtpPassword"] = derive_smtp_password(self.secret_access_key, region)
        return json.dumps(data)


def smtp_credentials(text: str, region: str) -> tuple[str, str]:
    """SmtpUsername/SmtpPassword from a ses-smtp value, checked against the key they derive from."""
    data = json.loads(text)
    username, password = data.get("SmtpUsername"), data.get("SmtpPassword")
    if not isinstance(username, str) or not isinstance(password, str):
        raise RotationError("pending ses-smtp value has no SmtpUsername/SmtpPassword")
    if username != data.get("AccessKeyId"):
        raise RotationError("pending ses-smtp value: SmtpUsername differs from AccessKeyId")
    if password != derive_smtp_password(str(data.get("SecretAccessKey", "")), region):
        raise RotationError(f"pending ses-smtp value: SmtpPassword was not derived for {region}")
    return username, password


def get_value(
    secrets: SecretsManagerClient,
    secret_id: str,
    *,
    stage: str | None = None,
    version_id: str | None = None,
) -> str | None:
    """The SecretString of one version, or None if that version has no value yet.

    Secrets Manager answers ResourceNotFoundException for a staged version
    without a value (the AWSPENDING version before createSecret).
    """
    kwargs: dict[str, Any] = {"SecretId": secret_id}
    if stage:
        kwargs["VersionStage"] = stage
    if version_id:
        kwargs["VersionId"] = version_id
    try:
        resp = secrets.get_secret_value(**kwargs)
    except ClientError as err:
        if error_code(err) == "ResourceNotFoundException":
            return None
        raise
    value = resp.get("SecretString")
    return value if value else None


def version_with(versions: Mapping[str, list[str]], stage: str) -> str | None:
    return next((v for v, stages in versions.items() if stage in stages), None)
