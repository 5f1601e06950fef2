"""Custom-domain Create overhead: time to SUCCESS minus App Runner's record-publication delay.

The handler waits for App Runner to publish the certificate validation records
and nothing else, so what it adds on top of that delay is its own work (the
existence check, the association, Route 53's batch, the response) plus the
slack of its polling: records that appear just after a describe are seen at the
next one. The figure must stay under one poll interval.

Each run drives the real handler (warm, as in a Lambda container that already
started; ``make bench`` measures cold starts separately) through the
CloudFormation protocol against the App Runner emulator, which publishes the
records ``publish_delay`` seconds after the association, and moto's Route 53.
The delays are spread over one steady-state poll interval so the polling slack
is sampled at every phase, the worst included.

    PYTHONPATH=layers/shared:tests .venv/bin/python -m bench.custom_domain_overhead
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Any

from redcap_ctl import clients
from testkit import LambdaContext, load_event, load_handler
from testkit.cfn import capture_cfn_responses
from testkit.emulators.apprunner import AppRunnerEmulator

# Scaled down from the template's 1 s / 5 s so a run takes seconds, not minutes;
# the overhead scales with the interval, so the ratio is what carries over.
POLL_INITIAL = 0.05
POLL_MAX = 0.4
# Long enough for the backoff to reach POLL_MAX before the records appear.
BASE_DELAY = 1.0
SANDBOX = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_CONFIG_FILE": "/dev/null",
    "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
    "POWERTOOLS_SERVICE_NAME": "custom-domain-bench",
    # INFO lines to a terminal would be measured too; CloudWatch takes them asynchronously.
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_METRICS_NAMESPACE": "REDCap/bench",
    "CUSTOM_DOMAIN_POLL_INITIAL_SECONDS": str(POLL_INITIAL),
    "CUSTOM_DOMAIN_POLL_MAX_SECONDS": str(POLL_MAX),
    "CUSTOM_DOMAIN_TIME_MARGIN_SECONDS": "1",
}


def _overheads(runs: int) -> list[float]:
    import boto3
    from moto import mock_aws

    saved = {k: os.environ.get(k) for k in [*SANDBOX, "AWS_ENDPOINT_URL_APPRUNNER", "AWS_PROFILE"]}
    emulator = AppRunnerEmulator(records_after=1)
    out: list[float] = []
    try:
        os.environ.pop("AWS_PROFILE", None)
        os.environ.update(SANDBOX)
        with emulator.serve() as url, capture_cfn_responses() as capture, mock_aws():
            os.environ["AWS_ENDPOINT_URL_APPRUNNER"] = url
            clients.reset()  # a cached client would still point at an earlier emulator's port
            app = load_handler("custom_domain")
            arn = emulator.add_service("bench")
            route53 = boto3.client("route53")
            zone = route53.create_hosted_zone(Name="example.org", CallerReference="bench")["HostedZone"]["Id"]
            for n in range(runs):
                emulator.publish_delay = BASE_DELAY + POLL_MAX * n / max(runs, 1)
                create = load_event("custom_domain", "create.json")
                create["ResponseURL"] = capture.url()
                create["ResourceProperties"].update(ServiceArn=arn, HostedZoneId=zone.split("/")[-1])
                capture.clear()
                start = time.perf_counter()
                app.handler(create, LambdaContext())
                elapsed = time.perf_counter() - start
                answer: dict[str, Any] = capture.last
                if answer["Status"] != "SUCCESS":
                    raise RuntimeError(f"Create failed: {answer['Reason']}")
                out.append(elapsed - emulator.publish_delay)
                delete = load_event("custom_domain", "delete.json")
                delete["ResponseURL"] = capture.url()
                delete["PhysicalResourceId"] = answer["PhysicalResourceId"]
                delete["ResourceProperties"] = create["ResourceProperties"]
                capture.clear()
                app.handler(delete, LambdaContext())
                if capture.last["Status"] != "SUCCESS":
                    raise RuntimeError(f"Delete failed: {capture.last['Reason']}")
    finally:
        clients.reset()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return out


def measure(runs: int = 8) -> dict[str, float]:
    """Seconds: mean, median and worst Create overhead over ``runs`` publication phases, and the poll interval.

    The mean over evenly spread phases is the expected overhead for records that
    appear at a random moment; that is the figure held under one poll interval.
    The worst case is one interval of polling slack plus the handler's own work.
    """
    samples = _overheads(runs)
    return {
        "overhead_mean_s": statistics.fmean(samples),
        "overhead_median_s": statistics.median(samples),
        "overhead_max_s": max(samples),
        "poll_interval_s": POLL_MAX,
        "publish_delay_s": BASE_DELAY,
        "runs": float(runs),
    }


def rows(runs: int = 8) -> list[tuple[str, list[float], str]]:
    """The same figures as (label, samples in ms, note) rows for ``make bench``'s table."""
    samples = [s * 1000 for s in _overheads(runs)]
    note = f"Create to SUCCESS minus the emulator's record delay; poll interval {POLL_MAX * 1000:.0f} ms"
    return [("custom-domain Create overhead (warm)", samples, note)]


def main() -> None:
    figures = measure()
    verdict = "PASS" if figures["overhead_mean_s"] < figures["poll_interval_s"] else "FAIL"
    print(
        f"custom-domain Create overhead: mean {figures['overhead_mean_s'] * 1000:.0f} ms, "
        f"median {figures['overhead_median_s'] * 1000:.0f} ms, "
        f"worst {figures['overhead_max_s'] * 1000:.0f} ms over {figures['runs']:.0f} runs; "
        f"poll interval {figures['poll_interval_s'] * 1000:.0f} ms -> {verdict} (mean under one interval)"
    )
    if verdict == "FAIL":
        raise SystemExit(1)


if __name__ == "__main__":
    main()
