"""A stand-in for the container credentials endpoint (ECS / App Runner) on 127.0.0.1.

Serves one set of role credentials as JSON at ``/creds`` when the request carries the
expected Authorization token, and counts requests so tests can see the image's cache work.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from testkit.emulators import serving


@dataclass
class CredentialsEndpoint:
    access_key_id: str = "ASIAEXAMPLEIMAGETEST"
    secret_access_key: str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    token: str = "IQoJb3JpZ2luX2VjEXAMPLETOKEN"
    authorization: str = "local-test-authorization"
    lifetime: dt.timedelta = dt.timedelta(hours=6)
    requests: int = 0
    refused: int = 0
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def body(self) -> bytes:
        expires = dt.datetime.now(dt.UTC) + self.lifetime
        return json.dumps(
            {
                "AccessKeyId": self.access_key_id,
                "SecretAccessKey": self.secret_access_key,
                "Token": self.token,
                "Expiration": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "RoleArn": "arn:aws:iam::123456789012:role/redcap-task",
            }
        ).encode()


@contextmanager
def serve() -> Iterator[CredentialsEndpoint]:
    endpoint = CredentialsEndpoint()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            with endpoint._lock:
                if self.path != "/creds" or self.headers.get("Authorization") != endpoint.authorization:
                    endpoint.refused += 1
                    self.send_response(403)
                    self.end_headers()
                    return
                endpoint.requests += 1
            body = endpoint.body()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: Any) -> None:
            return

    with serving(ThreadingHTTPServer(("127.0.0.1", 0), Handler)) as base:
        endpoint.url = f"{base}/creds"
        yield endpoint
