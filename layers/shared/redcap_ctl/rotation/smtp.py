"""SES SMTP credentials: password derivation and an AUTH-only check.

The SMTP password is not the secret access key: SES derives it with a
SigV4-style HMAC-SHA256 chain over fixed inputs, per region
(https://docs.aws.amazon.com/ses/latest/dg/smtp-credentials.html). The check
logs in over STARTTLS and quits: it proves the credentials without sending mail.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import smtplib
import ssl
from dataclasses import dataclass

from redcap_ctl.errors import ControlPlaneError

# Fixed by SES's documented algorithm: these are not a real date/request.
_DATE = "11111111"
_SERVICE = "ses"
_TERMINAL = "aws4_request"
_MESSAGE = "SendRawEmail"
_VERSION = b"\x04"


def _sign(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


def derive_smtp_password(secret_access_key: str, region: str) -> str:
    """The SES SMTP password for ``secret_access_key`` in ``region`` (version 4)."""
    if not secret_access_key or not region:
        raise ControlPlaneError("SMTP password derivation needs a secret access key and a region")
    signature = _sign(("AWS4" + secret_access_key).encode("utf-8"), _DATE)
    for part in (region, _SERVICE, _TERMINAL, _MESSAGE):
        signature = _sign(signature, part)
    return base64.b64encode(_VERSION + signature).decode("ascii")


class SmtpAuthRejected(ControlPlaneError):
    """The server answered the login with a failure (a new key may not have propagated yet)."""


@dataclass(frozen=True)
class SmtpTarget:
    host: str
    port: int
    timeout: float = 10.0
    # A private CA bundle for local emulators; None means the system trust store.
    ca_file: str | None = None

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_file)


def check_smtp_auth(target: SmtpTarget, username: str, password: str) -> None:
    """Log in with STARTTLS and quit. Raises ControlPlaneError without echoing credentials."""
    try:
        with smtplib.SMTP(target.host, target.port, timeout=target.timeout) as smtp:
            smtp.ehlo()
            smtp.starttls(context=target.tls_context())
            smtp.ehlo()
            smtp.login(username, password)
    except smtplib.SMTPAuthenticationError as err:
        raise SmtpAuthRejected(
            f"SMTP AUTH was rejected by {target.host}:{target.port} (code {err.smtp_code})"
        ) from None
    except smtplib.SMTPNotSupportedError:
        raise ControlPlaneError(f"SMTP server {target.host}:{target.port} offers no STARTTLS or AUTH") from None
    except (TimeoutError, smtplib.SMTPException, OSError, ssl.SSLError) as err:
        # The class name is enough to diagnose; the message can quote server text.
        raise ControlPlaneError(
            f"SMTP check against {target.host}:{target.port} failed: {type(err).__name__}"
        ) from None
