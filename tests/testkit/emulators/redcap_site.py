"""REDCap as a visitor reaches it: HTTPS with a real certificate chain, behind the template's WAF rules.

For ``make smoke``'s tests. Listens on 127.0.0.1 only; the client dials it for the service URL's and
the custom domain's host names (``SMOKE_TEST_RESOLVE``) and trusts the local CA made here
(``SMOKE_TEST_CA_BUNDLE``), so TLS verifies chain and host name exactly as against AWS.

Every request first goes through the web ACL of ``template.yaml`` as rendered for the stack's
parameters, evaluated by ``testkit.waf_eval`` from the caller's address (``caller_ip``; the socket's
is loopback): a BLOCK answers 403, as WAF does by default. What passes answers like the image:

- ``/``: REDCap's login page, a form with the hidden field ``redcap_login_a38us_09i85``
  (redcap_vX/Config/init_functions.php, loginFunction()), or 503 while REDCap is not installed;
- the health path: ``{"status": "ok", "ready": true|false}`` as
  containers/redcap/rootfs/opt/redcap-image/www/health.php answers;
- anything else: 404.

Faults for the tests: ``installed``, ``ready``, ``disabled_rules`` (web ACL rules taken out, as if
someone edited the ACL), and ``wrong_certificate`` (host names answered with a certificate for
another name, as before ACM has issued one for the domain).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from testkit.waf_eval import Request, WebAclEvaluator

HOST = "127.0.0.1"
OTHER_NAME = "not-this-site.example.net"

LOGIN_PAGE = """<!DOCTYPE html><html><head><title>REDCap</title></head><body>
<form method="post" action="/" id="form" name="form">
<input type="text" name="username" id="username"><input type="password" name="password" id="password">
<button id="login_btn">Log In</button>
<input type="hidden" name="submitted" value="1">
<input type="hidden" id="redcap_login_a38us_09i85" name="redcap_login_a38us_09i85" value="token">
</form></body></html>
"""


@dataclass(frozen=True)
class LocalCa:
    """A CA and leaf certificates for host names, written as PEM files under ``directory``."""

    directory: Path
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def bundle(self) -> Path:
        return self.directory / "ca.pem"

    @classmethod
    def create(cls, directory: Path) -> LocalCa:
        directory.mkdir(parents=True, exist_ok=True)
        now = dt.datetime.now(dt.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "make smoke test CA")])
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        (directory / "ca.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        return cls(directory, key, cert)

    def leaf(self, label: str, names: Iterable[str]) -> tuple[Path, Path]:
        """A server certificate for ``names``; returns (certificate chain, key) paths."""
        now = dt.datetime.now(dt.UTC)
        key = ec.generate_private_key(ec.SECP256R1())
        names = list(names)
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            # Python 3.13 verifies strictly (VERIFY_X509_STRICT): a leaf needs its issuer's key identifier.
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        pem = serialization.Encoding.PEM
        chain, key_path = self.directory / f"{label}.pem", self.directory / f"{label}.key"
        chain.write_bytes(cert.public_bytes(pem) + self.cert.public_bytes(pem))
        key_path.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
        return chain, key_path


@dataclass
class RedcapSite:
    evaluator: WebAclEvaluator
    health_path: str
    ca: LocalCa
    hosts: tuple[str, ...]
    caller_ip: str = "192.0.2.10"  # TEST-NET-1 (RFC 5737): never a real visitor
    installed: bool = True
    ready: bool = True
    disabled_rules: set[str] = field(default_factory=set)
    wrong_certificate: set[str] = field(default_factory=set)
    requests: list[tuple[str, str, int]] = field(default_factory=list)  # (host, path, status)

    def __post_init__(self) -> None:
        ipaddress.IPv4Address(self.caller_ip)
        self._rules = list(self.evaluator.acl["Rules"])
        self._lock = threading.Lock()
        good = self.ca.leaf("site", self.hosts)
        other = self.ca.leaf("other", [OTHER_NAME])
        self._good = self._context(*good)
        self._other = self._context(*other)
        self._good.sni_callback = self._pick

    @staticmethod
    def _context(chain: Path, key: Path) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(chain, key)
        return context

    def _pick(self, sock: ssl.SSLObject | ssl.SSLSocket, name: str | None, _ctx: ssl.SSLContext) -> None:
        if name and name.lower() in self.wrong_certificate:
            sock.context = self._other

    def decide(self, host: str, path: str, query: str, headers: dict[str, str]) -> int | None:
        """403 when the web ACL blocks the request, else None (the site answers)."""
        with self._lock:
            self.evaluator.acl["Rules"] = [r for r in self._rules if r["Name"] not in self.disabled_rules]
            decision = self.evaluator.evaluate(Request(path=path, query=query, headers=headers, ip=self.caller_ip))
        return 403 if decision.action == "BLOCK" else None

    def answer(self, path: str) -> tuple[int, str, str]:
        if path == self.health_path:
            return 200, "application/json", json.dumps({"status": "ok", "ready": self.ready}) + "\n"
        if path in ("/", "/index.php"):
            if not self.installed:
                return 503, "text/plain", "REDCap is not installed yet\n"
            return 200, "text/html; charset=utf-8", LOGIN_PAGE
        return 404, "text/plain", "Not Found\n"

    @contextmanager
    def serve(self) -> Iterator[int]:
        """Serve HTTPS on 127.0.0.1 in a daemon thread; yields the port."""
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                host = (self.headers.get("Host") or "").split(":")[0].lower()
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = site.decide(host, parts.path, parts.query, headers)
                if status is not None:
                    ctype, body = "text/html", "<html><body>403 Forbidden</body></html>\n"
                else:
                    status, ctype, body = site.answer(parts.path)
                site.requests.append((host, parts.path, status))
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        server = ThreadingHTTPServer((HOST, 0), Handler)
        server.daemon_threads = True
        server.socket = self._good.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        thread.start()
        try:
            yield int(server.server_address[1])
        finally:
            server.shutdown()
            server.server_close()
