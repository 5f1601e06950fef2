"""A local SES SMTP endpoint: STARTTLS with a throwaway certificate, AUTH against moto's IAM keys.

SES accepts SMTP AUTH for an Active IAM access key whose SMTP password is the
documented HMAC chain over the secret access key. The check here derives that
password itself (a transcription of the docs, kept apart from the production
code) and looks the key up in the moto backend of this process. Used by the
rotation tests (a pytest fixture) and by ``make local``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import logging
import socket
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from moto.core.models import DEFAULT_ACCOUNT_ID
from moto.iam.models import iam_backends

HOST = "127.0.0.1"


def ses_smtp_password_reference(secret_access_key: str, region: str) -> str:
    """https://docs.aws.amazon.com/ses/latest/dg/smtp-credentials.html (version 4 password)."""
    key = ("AWS4" + secret_access_key).encode()
    for message in ("11111111", region, "ses", "aws4_request", "SendRawEmail"):
        key = hmac.new(key, message.encode(), hashlib.sha256).digest()
    return base64.b64encode(b"\x04" + key).decode()


def moto_key(key_id: str, account_id: str = DEFAULT_ACCOUNT_ID) -> Any:
    """The moto IAM access key with this id (any user), or None."""
    for user in iam_backends[account_id]["aws"].users.values():
        for key in user.access_keys:
            if key.access_key_id == key_id:
                return key
    return None


@dataclass
class LocalSes:
    host: str
    port: int
    ca_file: str
    region: str
    reject_all: bool = False
    logins: list[str] = field(default_factory=list)
    refused: int = 0
    messages: list[bytes] = field(default_factory=list)

    def authenticate(self, _server: Any, _session: Any, _envelope: Any, _mechanism: str, auth_data: Any) -> AuthResult:
        if self.reject_all or not isinstance(auth_data, LoginPassword):
            self.refused += 1
            return AuthResult(success=False, handled=False)
        username, password = auth_data.login.decode(), auth_data.password.decode()
        key = moto_key(username)
        ok = (
            key is not None
            and key.status == "Active"
            and hmac.compare_digest(password, ses_smtp_password_reference(key.secret_access_key, self.region))
        )
        if ok:
            self.logins.append(username)
        else:
            self.refused += 1
        return AuthResult(success=ok, handled=False)

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        self.messages.append(envelope.content)
        return "250 OK"


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that is its own CA (clients trust it via ``SMTP_CA_FILE``)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@contextmanager
def serve(cert: tuple[Path, Path], region: str) -> Iterator[LocalSes]:
    """Run the endpoint on a free loopback port until the block exits."""
    # aiosmtpd warns about its own legacy Session.login_data on every AUTH.
    logging.getLogger("mail.log").setLevel(logging.ERROR)
    cert_path, key_path = cert
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_path, key_path)
    ses = LocalSes(host=HOST, port=_free_port(), ca_file=str(cert_path), region=region)
    controller = Controller(
        ses,
        hostname=ses.host,
        port=ses.port,
        tls_context=tls,
        require_starttls=True,
        auth_require_tls=True,
        authenticator=ses.authenticate,
        ready_timeout=5,
    )
    controller.start()
    try:
        yield ses
    finally:
        controller.stop()
