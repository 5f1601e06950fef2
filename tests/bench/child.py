"""One cold start, in a fresh interpreter (run by ``bench.run`` as a subprocess).

Usage: python child.py launch floor
       python child.py launch invoke <spec.json>

``floor`` imports boto3 and builds one client: the least any function here can
cost. ``invoke`` does what Lambda does on a cold start: put the function's
folder first on the path (the layer comes from PYTHONPATH, like /opt/python),
import ``app``, and serve one event. The parent measures the wall time and the
peak RSS of this process. Standard library only besides what is measured.

``launch`` is the measuring parent: Linux carries a process's peak RSS across
``fork``+``exec``, so a child of the big benchmark process (moto, Powertools
loaded) would report at least that process's size. The launcher is a small
interpreter; it spawns the measured interpreter and reports its wall time, CPU
time and peak RSS from ``wait4``.
"""

from __future__ import annotations

import json
import sys
import time

START = time.perf_counter()


def floor() -> dict[str, float]:
    import boto3

    boto3.client("sts")
    return {"total_ms": (time.perf_counter() - START) * 1000}


def invoke(spec_path: str) -> dict[str, float]:
    with open(spec_path) as fh:
        spec = json.load(fh)
    sys.path.insert(0, spec["function_path"])
    # __import__, not importlib.import_module: only the former goes through the import
    # machinery that ``-X importtime`` instruments, so app's own line (its clients) shows.
    app = __import__("app")

    imported = time.perf_counter()
    if spec.get("cfn_response"):
        # crhelper always answers CloudFormation over HTTPS; the parent captures
        # the PUT on 127.0.0.1 over plain HTTP.
        import http.client

        import crhelper.utils

        def plain(host: str, **_kw: object) -> http.client.HTTPConnection:
            return http.client.HTTPConnection(host, timeout=10)

        crhelper.utils.HTTPSConnection = plain  # type: ignore[attr-defined]

    class Context:
        function_name = spec["function_name"]
        memory_limit_in_mb = 128
        invoked_function_arn = f"arn:aws:lambda:us-east-1:123456789012:function:{spec['function_name']}"
        aws_request_id = "00000000-0000-0000-0000-000000000001"
        log_group_name = f"/aws/lambda/{spec['function_name']}"
        log_stream_name = "bench"

        @staticmethod
        def get_remaining_time_in_millis() -> int:
            return 60_000

    app.handler(spec["event"], Context())
    done = time.perf_counter()
    return {
        "import_ms": (imported - START) * 1000,
        "invoke_ms": (done - imported) * 1000,
        "total_ms": (done - START) * 1000,
    }


def launch(args: list[str]) -> dict[str, object]:
    import os
    import subprocess

    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, __file__, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert proc.stdout is not None
    output = proc.stdout.read().decode(errors="replace")
    _pid, status, usage = os.wait4(proc.pid, 0)
    wall_ms = (time.perf_counter() - start) * 1000
    code = os.waitstatus_to_exitcode(status)
    if code != 0 or "\nBENCH " not in output:
        tail = "\n".join(output.strip().splitlines()[-15:])
        raise SystemExit(f"measured interpreter failed (exit {code}):\n{tail}")
    return {
        "wall_ms": wall_ms,
        "cpu_ms": (usage.ru_utime + usage.ru_stime) * 1000,
        "rss_kb": usage.ru_maxrss,  # kilobytes on Linux
        "child": json.loads(output.rsplit("\nBENCH ", 1)[1]),
    }


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "launch":
        result: dict[str, object] = launch(sys.argv[2:])
    elif mode == "floor":
        result = dict(floor())
    else:
        result = dict(invoke(sys.argv[2]))
    # The last line of stdout is the result; handlers print logs and metrics before it.
    print("\nBENCH " + json.dumps(result), flush=True)
