from __future__ import annotations

import boto3
import crhelper.resource_helper as resource_helper
import pytest

from redcap_ctl import clients
from redcap_ctl.custom_resource import make_helper


def test_helper_builds_no_polling_clients_and_restores_boto3(monkeypatch: pytest.MonkeyPatch):
    built: list[str] = []
    real_client = boto3.client

    def counting_client(name: str, *args, **kwargs):
        built.append(name)
        return real_client(name, *args, **kwargs)

    monkeypatch.setattr(boto3, "client", counting_client)
    helper = make_helper()
    assert built == []
    assert resource_helper.boto3 is boto3
    assert helper._sleep_on_delete == 0
    assert helper._json_logging is False


def test_clients_share_one_session_until_reset():
    first = clients.client("sts")
    assert clients.client("sts") is first
    session = clients.session()
    assert clients.session() is session
    clients.reset()
    assert clients.session() is not session
    assert clients.client("sts") is not first


def test_polling_helper_builds_its_three_clients_from_the_shared_session(monkeypatch: pytest.MonkeyPatch):
    from redcap_ctl.custom_resource import make_polling_helper

    helper = make_polling_helper()
    assert resource_helper.boto3 is boto3
    assert helper._polling_interval == 1
    assert helper._sleep_on_delete == 0
    assert helper._lambda_client is clients.client("lambda")
    assert helper._events_client is clients.client("events")
    assert helper._logs_client is clients.client("logs")


def test_delete_props_only_for_a_delete_that_may_have_changed_something() -> None:
    from redcap_ctl.custom_resource import delete_props
    from redcap_ctl.errors import InputError

    def parse(props):
        if "ServiceArn" not in props:
            raise InputError("ServiceArn", "required")
        return props["ServiceArn"]

    arn = "arn:aws:ecs:us-east-1:123456789012:service/c/s"
    assert delete_props({"ResourceProperties": {"ServiceArn": arn}, "PhysicalResourceId": arn}, parse) == arn
    # Properties that never parsed, and crhelper's generated id after a failed Create: nothing to undo.
    assert delete_props({"ResourceProperties": {}, "PhysicalResourceId": arn}, parse) is None
    assert (
        delete_props({"ResourceProperties": {"ServiceArn": arn}, "PhysicalResourceId": "stack_Res_ABC"}, parse) is None
    )
