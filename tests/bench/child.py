"""One cold start, in a fresh interpreter (run by ``bench.run`` as a subprocess).

Usage: python child.py floor
       python child.py invoke <spec.json>

``floor`` imports boto3 and builds one client: the least any function here can
cost. ``invoke`` does what Lambda does on a cold start: put the function's
folder first on the path (the layer comes from PYTHONPATH, like /opt/python),
import ``app``, and serve one event. The parent measures the wall time and the
peak RSS of this process. Standard library only besides what is measured.
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
    import importlib

    app = importlib.import_module("app")

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


if __name__ == "__main__":
    result = floor() if sys.argv[1] == "floor" else invoke(sys.argv[2])
    # The last line of stdout is the result; handlers print logs and metrics before it.
    print("\nBENCH " + json.dumps(result), flush=True)
