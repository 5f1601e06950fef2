"""Capture CloudFormation custom-resource responses on 127.0.0.1.

crhelper always PUTs the response with ``http.client.HTTPSConnection``; the
fixture swaps that for a plain ``HTTPConnection`` aimed at a local server, so
the real handler runs end to end and the test reads exactly what
CloudFormation would have received.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from unittest import mock


class ResponseCapture:
    def __init__(self, port: int) -> None:
        self.port = port
        self.responses: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._event = threading.Event()

    def url(self, name: str = "response") -> str:
        # crhelper parses the URL and connects to host:port with our patched class.
        return f"https://127.0.0.1:{self.port}/{name}?X-Amz-Signature=test"

    def add(self, body: dict[str, Any]) -> None:
        with self._lock:
            self.responses.append(body)
        self._event.set()

    @property
    def last(self) -> dict[str, Any]:
        assert self.responses, "no response was sent to CloudFormation"
        return self.responses[-1]

    def clear(self) -> None:
        with self._lock:
            self.responses.clear()
        self._event.clear()


@contextmanager
def capture_cfn_responses() -> Iterator[ResponseCapture]:
    capture: ResponseCapture

    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            capture.add(json.loads(body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    capture = ResponseCapture(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()

    def plain_connection(host: str, **_kw: Any) -> http.client.HTTPConnection:
        # crhelper passes "host:port" from the ResponseURL and an SSL context.
        assert host.split(":")[0] in ("127.0.0.1", "localhost"), f"refusing to send a CFN response to {host}"
        return http.client.HTTPConnection(host, timeout=10)

    try:
        with mock.patch("crhelper.utils.HTTPSConnection", plain_connection):
            yield capture
    finally:
        server.shutdown()
        server.server_close()
