"""The pieces ``make local`` stands on: template resolution, fault injection, the network guard, metrics."""

from __future__ import annotations

import json
import subprocess
import sys

import boto3
import pytest
from botocore.exceptions import ClientError
from local.env import FAULTS, LocalMotoServer, patched_environ
from local.runner import emitted_metrics
from local.scenarios import STACK_PARAMS
from local.stack import Stack, Unresolved

from testkit import ROOT


@pytest.fixture(scope="module")
def stack() -> Stack:
    s = Stack(**STACK_PARAMS)
    s.physical.update({"CronSecret": "arn:secret", "AppRunnerService.ServiceUrl": "abc.awsapprunner.com"})
    return s


def test_intrinsics_resolve_against_what_the_run_created(stack: Stack) -> None:
    assert stack.value({"Ref": "CronSecret"}, "t") == "arn:secret"
    assert stack.value({"Fn::GetAtt": ["AppRunnerService", "ServiceUrl"]}, "t") == "abc.awsapprunner.com"
    assert stack.value({"Fn::Sub": "https://${AppRunnerService.ServiceUrl}/cron.php"}, "t") == (
        "https://abc.awsapprunner.com/cron.php"
    )
    assert stack.value({"Fn::Sub": "REDCap/${AWS::StackName}"}, "t") == "REDCap/redcap-local"
    assert stack.value({"Ref": "DomainName"}, "t") == STACK_PARAMS["DomainName"]
    assert stack.value({"Fn::Sub": ["${A}-x", {"A": {"Ref": "CronSecret"}}]}, "t") == "arn:secret-x"


def test_an_unknown_reference_is_an_error_naming_it(stack: Stack) -> None:
    with pytest.raises(Unresolved, match=r"Fn\.X: NotCreated was not created by the local run"):
        stack.value({"Ref": "NotCreated"}, "Fn.X")


def test_function_environment_comes_from_the_template(stack: Stack) -> None:
    env = stack.function_env("CronCallerFunction")
    assert env["POWERTOOLS_METRICS_NAMESPACE"] == "REDCap/redcap-local"  # from Globals
    assert env["CRON_SECRET_ARN"] == "arn:secret"
    assert env["CRON_URL"] == "https://abc.awsapprunner.com/cron.php"


def test_faults_hit_only_the_broken_service_and_only_while_armed() -> None:
    server = LocalMotoServer(broken=["sts"])
    server.start()
    try:
        with patched_environ({"AWS_ENDPOINT_URL": server.url}):
            sts = boto3.client("sts", region_name="us-east-1")
            iam = boto3.client("iam", region_name="us-east-1")
            assert sts.get_caller_identity()["Account"]  # not armed: the runner's own calls work
            with FAULTS.arm():
                iam.list_users()  # not broken
                with pytest.raises(ClientError, match="InjectedFault") as err:
                    sts.get_caller_identity()
            assert "broken on purpose" in str(err.value)
            # The advice is a command make accepts (make rejects `make local --break sts`).
            assert "(make local BREAK=sts)" in str(err.value)
    finally:
        server.stop()


def test_network_guard_refuses_anything_but_loopback() -> None:
    code = (
        "import socket; from local.env import install_network_guard; install_network_guard()\n"
        "socket.getaddrinfo('127.0.0.1', 80)\n"
        "try:\n    socket.getaddrinfo('192.0.2.1', 443)  # TEST-NET literal: no lookup even unguarded\n"
        "except PermissionError as e:\n    print('refused', e)\n"
    )
    env = {"PYTHONPATH": f"{ROOT / 'layers' / 'shared'}:{ROOT / 'tests'}", "PATH": "/usr/bin:/bin"}
    proc = subprocess.run(  # noqa: S603 -- this interpreter, a fixed snippet
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert "refused make local talks only to 127.0.0.1" in proc.stdout


def test_emitted_metrics_reads_powertools_emf_lines() -> None:
    emf = {
        "_aws": {"CloudWatchMetrics": [{"Namespace": "n", "Metrics": [{"Name": "CronSuccess"}, {"Name": "X"}]}]},
        "CronSuccess": [1.0],
        "X": 2,
    }
    text = "a log line\n" + json.dumps(emf) + "\n" + json.dumps({"level": "INFO"})
    assert emitted_metrics(text) == {"CronSuccess": 1.0, "X": 2.0}
