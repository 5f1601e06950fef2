"""A local stand-in for REDCap behind WAF, on 127.0.0.1, for the cron caller.

``GET /cron.php`` (also ``/redcap_v<version>/cron.php``) answers 200 only when
the configured header carries a value that the cron header regex pattern set
currently accepts -- read with ``wafv2:GetRegexPatternSet`` through
``redcap_ctl.waf``, so a test (or ``make local``) running moto sees exactly
what the rotation function wrote -- and 403 otherwise, as WAF would. Tests can
force a status code or slow the answer down.

Requests are recorded without the header value: only whether it was present,
whether it was accepted, and its SHA-256 (to compare against a known value).

In-process::

    with RedcapEmulator(header_name="x-redcap-cron-secret", pattern_set=ref) as redcap:
        redcap.cron_url  # http://127.0.0.1:<port>/cron.php

Standalone (moto server on AWS_ENDPOINT_URL)::

    python -m testkit.emulators.redcap --port 8081 --header-name x-redcap-cron-secret \
        --pattern-set-arn arn:aws:wafv2:...:regional/regexpatternset/cron/<id>
"""

from __future__ import annotations

import argparse
import hashlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

import boto3

from redcap_ctl import waf

_CRON_PATH = re.compile(r"^/(redcap_v[^/]+/)?cron\.php$")


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    header_present: bool
    header_sha256: str | None
    accepted: bool
    status: int


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class RedcapEmulator:
    def __init__(
        self,
        *,
        header_name: str,
        pattern_set: waf.PatternSetRef | None = None,
        waf_client: Any = None,
        accepts: Callable[[str], bool] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if (pattern_set is None) == (accepts is None):
            raise ValueError("give either pattern_set (read from WAF) or accepts (a predicate)")
        self.header_name = header_name
        self._pattern_set = pattern_set
        self._waf_client = waf_client
        self._accepts = accepts
        self.requests: list[RecordedRequest] = []
        # Test knobs: a forced status (after the header check) and a delay.
        self.force_status: int | None = None
        self.delay_seconds: float = 0.0
        self._release = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------
    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def cron_url(self) -> str:
        return f"{self.base_url}/cron.php"

    def start(self) -> RedcapEmulator:
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="redcap-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()  # wake handlers that are "slow" so nothing lingers
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> RedcapEmulator:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- decisions --------------------------------------------------------
    def is_accepted(self, value: str) -> bool:
        if self._accepts is not None:
            return self._accepts(value)
        assert self._pattern_set is not None
        client = self._waf_client or boto3.client("wafv2")
        return waf.accepted(client, self._pattern_set, value)

    def _record(self, entry: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(entry)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "REDCapEmulator/1"

            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                value = self.headers.get(emulator.header_name)
                accepted = False
                if _CRON_PATH.match(path):
                    accepted = value is not None and emulator.is_accepted(value)
                    status = 200 if accepted else 403
                    body = b"cron ran\n" if accepted else b"Forbidden\n"
                elif path == "/":
                    status, body = 200, b"REDCap stand-in\n"
                else:
                    status, body = 404, b"Not found\n"
                if emulator.force_status is not None and status != 403:
                    status, body = emulator.force_status, b"forced\n"
                emulator._record(
                    RecordedRequest(
                        method="GET",
                        path=self.path,
                        header_present=value is not None,
                        header_sha256=sha256(value) if value is not None else None,
                        accepted=accepted,
                        status=status,
                    )
                )
                if emulator.delay_seconds > 0:
                    emulator._release.wait(emulator.delay_seconds)
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "text/plain")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left: that is the point of a slow test

            def log_message(self, format: str, *args: Any) -> None:
                # Silence the default stderr access log (it would print paths to test output).
                return

        return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="REDCap stand-in for the cron caller (127.0.0.1 only)")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--header-name", required=True)
    parser.add_argument("--pattern-set-arn", required=True)
    args = parser.parse_args(argv)
    emulator = RedcapEmulator(
        header_name=args.header_name, pattern_set=waf.PatternSetRef.from_arn(args.pattern_set_arn), port=args.port
    )
    print(f"REDCap stand-in on {emulator.cron_url}", flush=True)
    try:
        emulator._server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        emulator._server.server_close()


if __name__ == "__main__":
    main()
