"""HTTPS GETs for the smoke checks: certificate and host name verified, short timeouts, nothing sent but GET.

The trust store is the system's (Python's default context), as a visitor's browser would use. Two
variables exist **for the test suite only** and are never needed against a real stack:

- ``SMOKE_TEST_CA_BUNDLE``: a PEM file of CA certificates to trust instead (the tests' own CA);
- ``SMOKE_TEST_RESOLVE``: ``host=port,host=port``: connect to ``127.0.0.1:port`` for that host name
  (TLS still verifies the host name, as ``curl --resolve`` does). When it is set, a host name it
  does not list is refused, so a test run can never send a request off the loopback interface.
"""

from __future__ import annotations

import http.client
import socket
import ssl
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

TEST_CA_ENV = "SMOKE_TEST_CA_BUNDLE"
TEST_RESOLVE_ENV = "SMOKE_TEST_RESOLVE"
LOOPBACK = "127.0.0.1"
USER_AGENT = "redcap-smoke/1 (read-only check)"
MAX_BODY = 512 * 1024
MAX_REDIRECTS = 3


class FetchError(Exception):
    """The request got no HTTP answer; the message says why in words an administrator can act on."""


@dataclass(frozen=True)
class Page:
    url: str
    status: int
    headers: Mapping[str, str]
    body: str
    certificate_expires: datetime | None = None
    redirects: tuple[str, ...] = field(default=())


class _Connection(http.client.HTTPSConnection):
    """HTTPS to ``host`` that may dial another address, still verifying the certificate for ``host``."""

    def __init__(self, host: str, *, dial: tuple[str, int] | None, context: ssl.SSLContext, timeout: float) -> None:
        super().__init__(host, 443, timeout=timeout, context=context)
        self._dial = dial
        self._tls = context

    def connect(self) -> None:
        if self._dial is None:
            super().connect()
            return
        raw = socket.create_connection(self._dial, self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self.host)


class Web:
    def __init__(
        self, *, ca_bundle: str | None = None, resolve: Mapping[str, int] | None = None, timeout: float = 10.0
    ) -> None:
        self.context = ssl.create_default_context(cafile=ca_bundle)
        self.resolve = dict(resolve) if resolve is not None else None
        self.timeout = timeout

    @classmethod
    def from_env(cls, environ: Mapping[str, str], timeout: float = 10.0) -> Web:
        ca = environ.get(TEST_CA_ENV) or None
        raw = environ.get(TEST_RESOLVE_ENV, "").strip()
        resolve: dict[str, int] | None = None
        if raw:
            resolve = {}
            for item in raw.split(","):
                host, sep, port = item.strip().partition("=")
                if not sep or not port.isdigit():
                    raise ValueError(f"{TEST_RESOLVE_ENV}: {item!r} is not host=port")
                resolve[host.lower()] = int(port)
        return cls(ca_bundle=ca, resolve=resolve, timeout=timeout)

    def _dial(self, host: str) -> tuple[str, int] | None:
        if self.resolve is None:
            return None
        if host.lower() not in self.resolve:
            raise FetchError(f"test mode: {host} is not in {TEST_RESOLVE_ENV}, refused (loopback only)")
        return (LOOPBACK, self.resolve[host.lower()])

    def get(self, url: str, headers: Mapping[str, str] | None = None, *, follow: bool = False) -> Page:
        """GET ``url`` (https only); with ``follow``, up to 3 redirects on the same host."""
        seen: list[str] = []
        current = url
        while True:
            page = self._get_once(current, headers or {})
            location = page.headers.get("location")
            if not follow or page.status not in (301, 302, 303, 307, 308) or not location:
                return Page(page.url, page.status, page.headers, page.body, page.certificate_expires, tuple(seen))
            target = urljoin(current, location)
            if urlsplit(target).scheme != "https" or urlsplit(target).hostname != urlsplit(url).hostname:
                raise FetchError(f"{current} redirects to {target}: not https on the same host")
            if len(seen) >= MAX_REDIRECTS:
                raise FetchError(f"{url}: more than {MAX_REDIRECTS} redirects")
            seen.append(current)
            current = target

    def _get_once(self, url: str, headers: Mapping[str, str]) -> Page:
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise FetchError(f"{url}: only https URLs are checked")
        host = parts.hostname
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connection = _Connection(host, dial=self._dial(host), context=self.context, timeout=self.timeout)
        try:
            connection.connect()
            # Read now: the socket is gone once a response that closes the connection was read.
            expires = _not_after(connection.sock)
            connection.request("GET", path, headers={"User-Agent": USER_AGENT, "Accept": "*/*", **headers})
            response = connection.getresponse()
            body = response.read(MAX_BODY).decode("utf-8", "replace")
            return Page(url, response.status, {k.lower(): v for k, v in response.getheaders()}, body, expires)
        except ssl.SSLCertVerificationError as err:
            raise FetchError(f"{host}: the certificate is not valid: {err.verify_message or err.reason}") from None
        except ssl.SSLError as err:
            raise FetchError(f"{host}: TLS failed: {err.reason or err}") from None
        except socket.gaierror:
            raise FetchError(f"{host} does not resolve (DNS)") from None
        except TimeoutError:
            raise FetchError(f"{host}: no answer within {self.timeout:g} s") from None
        except ConnectionRefusedError:
            raise FetchError(f"{host}: connection refused on port 443") from None
        except (OSError, http.client.HTTPException) as err:
            raise FetchError(f"{host}: {type(err).__name__}: {err}") from None
        finally:
            connection.close()


def _not_after(sock: object) -> datetime | None:
    if not isinstance(sock, ssl.SSLSocket):
        return None
    cert = sock.getpeercert()
    value = cert.get("notAfter") if cert else None
    if not isinstance(value, str):
        return None
    return datetime.fromtimestamp(ssl.cert_time_to_seconds(value), UTC)
