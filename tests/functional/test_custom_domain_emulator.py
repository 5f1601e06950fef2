"""The App Runner emulator behaves like the service, as boto3 sees it over 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from testkit import ROOT
from testkit.emulators.apprunner import AppRunnerEmulator


@pytest.fixture
def served(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[AppRunnerEmulator, Any, str]]:
    emu = AppRunnerEmulator(records_after=2, active_after=4, page_size=2)
    with emu.serve() as url:
        monkeypatch.setenv("AWS_ENDPOINT_URL_APPRUNNER", url)
        yield emu, boto3.client("apprunner"), emu.add_service("redcap")


def code(err: pytest.ExceptionInfo[ClientError]) -> str:
    return str(err.value.response["Error"]["Code"])


def test_statuses_move_and_records_appear_after_describes(served: tuple[AppRunnerEmulator, Any, str]) -> None:
    _emu, client, arn = served
    created = client.associate_custom_domain(ServiceArn=arn, DomainName="redcap.example.org", EnableWWWSubdomain=True)
    assert created["CustomDomain"]["Status"] == "creating"

    seen = []
    for _ in range(4):
        (domain,) = client.describe_custom_domains(ServiceArn=arn)["CustomDomains"]
        seen.append((domain["Status"], len(domain.get("CertificateValidationRecords", []))))

    assert seen == [
        ("creating", 0),
        ("pending_certificate_dns_validation", 3),
        ("pending_certificate_dns_validation", 3),
        ("active", 3),
    ]


def test_pagination_and_the_five_domain_limit(served: tuple[AppRunnerEmulator, Any, str]) -> None:
    _emu, client, arn = served
    for n in range(5):
        client.associate_custom_domain(ServiceArn=arn, DomainName=f"d{n}.example.org", EnableWWWSubdomain=False)
    with pytest.raises(ClientError) as caught:
        client.associate_custom_domain(ServiceArn=arn, DomainName="d5.example.org")
    assert code(caught) == "InvalidRequestException"

    names, token, pages = [], None, 0
    while True:
        page = client.describe_custom_domains(ServiceArn=arn, **({"NextToken": token} if token else {}))
        pages += 1
        names += [d["DomainName"] for d in page["CustomDomains"]]
        token = page.get("NextToken")
        if not token:
            break
    assert pages == 3
    assert names == [f"d{n}.example.org" for n in range(5)]
    with pytest.raises(ClientError) as caught:
        client.describe_custom_domains(ServiceArn=arn, MaxResults=6)
    assert code(caught) == "InvalidRequestException"


def test_faults_come_back_as_real_error_codes(served: tuple[AppRunnerEmulator, Any, str]) -> None:
    emu, client, arn = served
    emu.faults.access_denied.add("AssociateCustomDomain")
    with pytest.raises(ClientError) as caught:
        client.associate_custom_domain(ServiceArn=arn, DomainName="a.example.org")
    assert code(caught) == "AccessDeniedException"
    emu.faults.access_denied.clear()

    emu.faults.busy["AssociateCustomDomain"] = 1
    with pytest.raises(ClientError) as caught:
        client.associate_custom_domain(ServiceArn=arn, DomainName="a.example.org")
    assert code(caught) == "InvalidStateException"

    emu.faults.caa_problem.add("caa.example.org")
    with pytest.raises(ClientError) as caught:
        client.associate_custom_domain(ServiceArn=arn, DomainName="caa.example.org")
    assert "CAA" in caught.value.response["Error"]["Message"]


def test_delete_goes_through_deleting_to_gone_or_delete_failed(served: tuple[AppRunnerEmulator, Any, str]) -> None:
    emu, client, arn = served
    client.associate_custom_domain(ServiceArn=arn, DomainName="a.example.org")
    client.associate_custom_domain(ServiceArn=arn, DomainName="b.example.org")
    emu.faults.delete_failed.add("b.example.org")

    assert client.disassociate_custom_domain(ServiceArn=arn, DomainName="a.example.org")["CustomDomain"]["Status"] == (
        "deleting"
    )
    client.disassociate_custom_domain(ServiceArn=arn, DomainName="b.example.org")
    left = {d["DomainName"]: d["Status"] for d in client.describe_custom_domains(ServiceArn=arn)["CustomDomains"]}

    assert left == {"b.example.org": "delete_failed"}
    with pytest.raises(ClientError) as caught:
        client.disassociate_custom_domain(ServiceArn=arn, DomainName="a.example.org")
    assert code(caught) == "ResourceNotFoundException"


def test_describe_service_reports_ip_address_type(served: tuple[AppRunnerEmulator, Any, str]) -> None:
    emu, client, arn = served
    dual = emu.add_service("dual", ip_address_type="DUAL_STACK")

    assert client.describe_service(ServiceArn=arn)["Service"]["NetworkConfiguration"]["IpAddressType"] == "IPV4"
    assert client.describe_service(ServiceArn=dual)["Service"]["NetworkConfiguration"]["IpAddressType"] == (
        "DUAL_STACK"
    )


def test_runs_as_a_local_server_process() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "testkit.emulators.apprunner", "--port", "0", "--records-after", "1"],
        cwd=ROOT,
        env={"PYTHONPATH": f"{ROOT / 'layers/shared'}:{ROOT / 'tests'}", "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        request = urllib.request.Request(
            f"{url}/_emulator/services", data=json.dumps({"Name": "local"}).encode(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            arn = json.loads(resp.read())["ServiceArn"]
        client = boto3.client("apprunner", endpoint_url=url)
        client.associate_custom_domain(ServiceArn=arn, DomainName="local.example.org", EnableWWWSubdomain=False)
        (domain,) = client.describe_custom_domains(ServiceArn=arn)["CustomDomains"]
        status: str = domain["Status"]  # the stubs say upper case; the service answers lower case
        assert status == "pending_certificate_dns_validation"
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_start_deployment_answers_an_operation_id_and_is_recorded(served: tuple[AppRunnerEmulator, Any, str]) -> None:
    emu, client, arn = served

    first = client.start_deployment(ServiceArn=arn)
    second = client.start_deployment(ServiceArn=arn)

    assert len(first["OperationId"]) == 32
    assert first["OperationId"] != second["OperationId"]
    assert emu.deployments == [arn, arn]
    url = client.meta.endpoint_url
    with urllib.request.urlopen(f"{url}/_emulator/deployments", timeout=5) as resp:
        assert json.loads(resp.read())["Deployments"] == [arn, arn]
    emu.remove_service(arn)
    with pytest.raises(ClientError) as err:
        client.start_deployment(ServiceArn=arn)
    assert code(err) == "ResourceNotFoundException"
    emu.reset()
    assert emu.deployments == []
