"""Harness for the key-rotation tests: moto, a local SES SMTP stand-in, Stubbers.

Secrets Manager is driven the way the real service drives a rotation
function: ``start_rotation`` adds an *empty* version staged AWSPENDING (what
RotateSecret does before it invokes createSecret; moto's own rotate_secret
leaves secrets inconsistent), then each step goes through the real handler.

The SMTP stand-in speaks STARTTLS with a certificate made at test time and
accepts AUTH only for an Active IAM key in moto whose SES SMTP password,
derived independently here, matches -- that is what SES checks.

The tests at the bottom check the harness itself.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import json
import smtplib
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import botocore.loaders
import botocore.session
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.iam.models import AccessKeyLastUsed
from moto.secretsmanager.models import secretsmanager_backends

from redcap_ctl import waf
from testkit import LambdaContext, load_event, load_handler, moto_secrets
from testkit.emulators.ses_smtp import LocalSes as FakeSes
from testkit.emulators.ses_smtp import moto_key, self_signed_cert, serve, ses_smtp_password_reference

REGION = "us-east-1"
BUCKET = "redcap-files-test"
DB_CLUSTER_ARN = "arn:aws:rds:us-east-1:123456789012:cluster:redcap-db"
DB_SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:rds-master-AbCdEf"
SERVICE_ARN = "arn:aws:apprunner:us-east-1:123456789012:service/redcap/0123456789abcdef0123456789abcdef"
OPERATION_ID = "0f6b1e2c-3d4e-4f50-8a6b-7c8d9e0f1a2b"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


# --------------------------------------------------------------------------- moto helpers
def backdate_key(key_id: str, *, created_hours_ago: float, last_used_hours_ago: float | None) -> None:
    key = moto_key(key_id)
    now = dt.datetime.now(dt.UTC)
    key.create_date = now - dt.timedelta(hours=created_hours_ago)
    key.last_used = (
        None
        if last_used_hours_ago is None
        else AccessKeyLastUsed(timestamp=now - dt.timedelta(hours=last_used_hours_ago), service="s3", region=REGION)
    )


def start_rotation(secret_id: str, token: str | None = None) -> str:
    """What RotateSecret does before createSecret: an empty version staged AWSPENDING."""
    token = token or str(uuid.uuid4())
    secret = secretsmanager_backends[DEFAULT_ACCOUNT_ID][REGION].secrets[secret_id]
    secret.remove_version_stages_from_old_versions(["AWSPENDING"])
    secret.versions[token] = {"createdate": int(time.time()), "version_id": token, "version_stages": ["AWSPENDING"]}
    return token


def inject(client: Any, operation: str, code: str, times: int | None = None) -> list[int]:
    """Make ``client.<operation>`` fail with ``code`` (always, or ``times`` times). Returns a call counter."""
    calls = [0]
    service = client.meta.service_model.service_id.hyphenize()

    def fail(**_kw: Any) -> None:
        calls[0] += 1
        if times is None or calls[0] <= times:
            raise ClientError({"Error": {"Code": code, "Message": "injected by the test"}}, operation)

    client.meta.events.register(f"before-call.{service}.{operation}", fail)
    return calls


# --------------------------------------------------------------------------- local SES SMTP endpoint
@pytest.fixture(scope="session")
def smtp_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path_factory.mktemp("smtp-tls"))


@pytest.fixture
def fake_ses(smtp_cert: tuple[Path, Path]) -> Iterator[FakeSes]:
    with serve(smtp_cert, REGION) as ses:
        yield ses


# --------------------------------------------------------------------------- one rotation environment
@dataclass
class Rotation:
    """A secret of one kind in moto plus the real handler configured for it."""

    kind: str
    secret_id: str
    app: ModuleType
    user: str | None = None
    pattern_set_arn: str | None = None
    fake_ses: FakeSes | None = None
    sleeps: list[float] = field(default_factory=list)
    user_errors: dict[str, str] = field(default_factory=dict)
    # The SES kind's redeploy target: App Runner (stubbed) or an ECS service served by moto.
    service_arn: str = SERVICE_ARN

    # ----- AWS clients as the test (not the function) sees them
    @functools.cached_property
    def sm(self) -> Any:
        return boto3.client("secretsmanager", region_name=REGION)

    @functools.cached_property
    def iam(self) -> Any:
        return boto3.client("iam", region_name=REGION)

    @functools.cached_property
    def wafv2(self) -> Any:
        return boto3.client("wafv2", region_name=REGION)

    def pattern_ref(self) -> waf.PatternSetRef:
        assert self.pattern_set_arn
        return waf.PatternSetRef.from_arn(self.pattern_set_arn)

    # ----- driving
    def step(self, step: str, token: str) -> dict[str, Any]:
        event = {**load_event("key_rotation", f"{step}.json"), "SecretId": self.secret_id, "ClientRequestToken": token}
        result: dict[str, Any] = self.app.handler(event, LambdaContext())
        return result

    def rotate(self, token: str | None = None, *, until: str = "finishSecret") -> str:
        token = start_rotation(self.secret_id, token)
        for step in STEPS:
            self.prepare(step, token)
            self.step(step, token)
            if step == until:
                break
        return token

    def prepare(self, step: str, token: str) -> None:
        """Queue the Stubber answers a successful finishSecret needs."""
        if step != "finishSecret" or self.kind == "cron-header":
            return
        pending = json.loads(self.sm.get_secret_value(SecretId=self.secret_id, VersionId=token)["SecretString"])
        self.expect_consumer(pending)

    def expect_consumer(self, value: dict[str, Any], error: str | None = None, message: str = "") -> None:
        if self.kind == "s3-access-key":
            stub = self.stubber("rds_data")
            params = {
                "resourceArn": DB_CLUSTER_ARN,
                "secretArn": DB_SECRET_ARN,
                "database": "redcap",
                "sql": self.app_sql(),
                "parameters": [
                    {"name": "key_id", "value": {"stringValue": value["AccessKeyId"]}},
                    {"name": "secret", "value": {"stringValue": value["SecretAccessKey"]}},
                ],
            }
            if error:
                stub.add_client_error("execute_statement", error, message, expected_params=params)
            else:
                stub.add_response("execute_statement", {"numberOfRecordsUpdated": 2}, params)
        elif self.kind == "ses-smtp" and self.service_arn == SERVICE_ARN:
            stub = self.stubber("apprunner")
            if error:
                stub.add_client_error("start_deployment", error, message, expected_params={"ServiceArn": SERVICE_ARN})
            else:
                stub.add_response(
                    "start_deployment",
                    {"OperationId": OPERATION_ID},
                    {"ServiceArn": SERVICE_ARN},
                )

    def app_sql(self) -> str:
        from redcap_ctl.rotation.consumers import UPDATE_S3_KEYS

        return UPDATE_S3_KEYS

    def stubber(self, attr: str) -> Stubber:
        client = getattr(self.app.CLIENTS, attr)
        stub: Stubber | None = getattr(client, "_test_stubber", None)
        if stub is None:
            stub = Stubber(client)
            stub.activate()
            client._test_stubber = stub
        return stub

    def assert_stubs_used(self) -> None:
        for attr in ("rds_data", "apprunner"):
            client = getattr(self.app.CLIENTS, attr)
            stub = getattr(client, "_test_stubber", None) if client is not None else None
            if stub is not None:
                stub.assert_no_pending_responses()

    # ----- reading the outcome
    def versions(self) -> dict[str, list[str]]:
        stages: dict[str, list[str]] = self.sm.describe_secret(SecretId=self.secret_id)["VersionIdsToStages"]
        return stages

    def current_text(self) -> str:
        text: str = self.sm.get_secret_value(SecretId=self.secret_id, VersionStage="AWSCURRENT")["SecretString"]
        return text

    def current(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.current_text())
        return value

    def key_ids(self) -> list[str]:
        assert self.user
        return [k["AccessKeyId"] for k in self.iam.list_access_keys(UserName=self.user)["AccessKeyMetadata"]]

    def assert_current_works(self) -> None:
        """AWSCURRENT holds a working credential (moto's STS accepts unknown keys, so check IAM too)."""
        if self.kind == "cron-header":
            assert waf.accepted(self.wafv2, self.pattern_ref(), self.current_text())
            return
        value = self.current()
        assert value["UserName"] == self.user
        meta = {k["AccessKeyId"]: k for k in self.iam.list_access_keys(UserName=self.user)["AccessKeyMetadata"]}
        assert value["AccessKeyId"] in meta, "AWSCURRENT's key does not belong to the user"
        assert meta[value["AccessKeyId"]]["Status"] == "Active"
        sts = boto3.client(
            "sts",
            region_name=REGION,
            aws_access_key_id=value["AccessKeyId"],
            aws_secret_access_key=value["SecretAccessKey"],
        )
        assert sts.get_caller_identity()["Arn"].endswith(f":user/{self.user}")
        if self.kind == "ses-smtp":
            assert value["SmtpUsername"] == value["AccessKeyId"]
            assert value["SmtpPassword"] == ses_smtp_password_reference(value["SecretAccessKey"], REGION)


def _user_factory(rot: Rotation) -> Callable[[str, str, str, str], Any]:
    """Clients as the rotated user, through moto, with optional injected failures."""
    from redcap_ctl.rotation.clients import user_client

    def make(service: str, key_id: str, secret: str, region: str) -> Any:
        client = user_client(service, key_id, secret, region)
        for operation, code in rot.user_errors.items():
            if operation.startswith(service + ":"):
                inject(client, operation.split(":", 1)[1], code)
        return client

    return make


def _env(monkeypatch: pytest.MonkeyPatch, kind: str, extra: dict[str, str]) -> None:
    monkeypatch.setenv("SECRET_KIND", kind)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "key-rotation-test")
    for name, value in extra.items():
        monkeypatch.setenv(name, value)


def make_rotation(
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    *,
    fake_ses: FakeSes | None = None,
    initial: str | None = None,
    rotation_enabled: bool = True,
    service_arn: str = SERVICE_ARN,
) -> Rotation:
    """Create the user/bucket/pattern set and the secret as the foundation does, then load the handler."""
    sm = boto3.client("secretsmanager", region_name=REGION)
    iam = boto3.client("iam", region_name=REGION)
    name = f"redcap-{kind}"
    user: str | None = None
    pattern_arn: str | None = None
    if kind == "cron-header":
        value = initial or "initial-cron-header-value-0123456789abcdef"
        pattern_arn = boto3.client("wafv2", region_name=REGION).create_regex_pattern_set(
            Name="cron-header",
            Scope="REGIONAL",
            RegularExpressionList=[{"RegexString": waf.pattern_for(value)}],
        )["Summary"]["ARN"]
        _env(monkeypatch, kind, {"CRON_PATTERN_SET_ARN": pattern_arn})
    else:
        user = f"redcap-{kind}-user"
        iam.create_user(UserName=user)
        value = initial or json.dumps({"UserName": user})
        if kind == "s3-access-key":
            boto3.client("s3", region_name=REGION).create_bucket(Bucket=BUCKET)
            _env(
                monkeypatch,
                kind,
                {
                    "FILE_BUCKET": BUCKET,
                    "DB_CLUSTER_ARN": DB_CLUSTER_ARN,
                    "DB_SECRET_ARN": DB_SECRET_ARN,
                    "DB_NAME": "redcap",
                },
            )
        else:
            assert fake_ses is not None
            _env(
                monkeypatch,
                kind,
                {
                    "SMTP_HOST": fake_ses.host,
                    "SMTP_PORT": str(fake_ses.port),
                    "SMTP_CA_FILE": fake_ses.ca_file,
                    "SMTP_TIMEOUT": "5",
                    "COMPUTE_SERVICE_ARN": service_arn,
                },
            )
    sm.create_secret(Name=name, SecretString=value)
    if rotation_enabled:
        # Without a rotation function ARN moto only records the rules (and re-stages the same value).
        sm.rotate_secret(SecretId=name, RotationRules={"AutomaticallyAfterDays": 90}, RotateImmediately=False)
    app = load_handler("key_rotation")
    rot = Rotation(
        kind=kind,
        secret_id=name,
        app=app,
        user=user,
        pattern_set_arn=pattern_arn,
        fake_ses=fake_ses,
        service_arn=service_arn,
    )
    monkeypatch.setattr(
        app, "CLIENTS", dataclasses.replace(app.CLIENTS, sleep=rot.sleeps.append, as_user=_user_factory(rot))
    )
    return rot


_LOADER = functools.cache(botocore.loaders.create_loader)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Every boto3 Session (the handler builds one per client, as in Lambda) would parse the same
    # service-model JSON again; one shared loader keeps these tests fast and changes nothing else.
    monkeypatch.setattr(botocore.session, "create_loader", _LOADER)
    moto_secrets.apply(monkeypatch)  # version dates as AWS reports them (key hygiene reads them)
    with mock_aws():
        yield


# --------------------------------------------------------------------------- the harness checks itself
def test_reference_password_matches_the_aws_sdk_published_vector() -> None:
    # aws/aws-sdk-php tests/Ses/SesClientTest.php: generateSmtpPasswordV4 for us-east-2.
    assert (
        ses_smtp_password_reference("wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "us-east-2")
        == "BMPPgbAHoFVbze1Ud0oA5uNdXRwUXUZ+qOwphGJbl/cS"
    )


def test_fake_ses_requires_starttls_and_a_derived_password(aws: None, fake_ses: FakeSes) -> None:
    iam = boto3.client("iam", region_name=REGION)
    iam.create_user(UserName="u")
    key = iam.create_access_key(UserName="u")["AccessKey"]
    good = ses_smtp_password_reference(key["SecretAccessKey"], REGION)
    ctx = ssl.create_default_context(cafile=fake_ses.ca_file)
    with smtplib.SMTP(fake_ses.host, fake_ses.port, timeout=5) as smtp:
        smtp.ehlo()
        assert not smtp.has_extn("auth"), "AUTH must not be offered before STARTTLS"
        smtp.starttls(context=ctx)
        smtp.ehlo()
        with pytest.raises(smtplib.SMTPAuthenticationError):
            smtp.login(key["AccessKeyId"], key["SecretAccessKey"])  # the raw secret key is not the password
    with smtplib.SMTP(fake_ses.host, fake_ses.port, timeout=5) as smtp:
        smtp.starttls(context=ctx)
        smtp.login(key["AccessKeyId"], good)
    assert fake_ses.logins == [key["AccessKeyId"]]


def test_start_rotation_stages_an_empty_pending_version(aws: None, monkeypatch: pytest.MonkeyPatch) -> None:
    rot = make_rotation(monkeypatch, "s3-access-key")
    assert rot.sm.describe_secret(SecretId=rot.secret_id)["RotationEnabled"] is True
    token = start_rotation(rot.secret_id)
    assert rot.versions()[token] == ["AWSPENDING"]
    # As on AWS: the staged version has no value until createSecret puts one.
    with pytest.raises(rot.sm.exceptions.ResourceNotFoundException):
        rot.sm.get_secret_value(SecretId=rot.secret_id, VersionId=token, VersionStage="AWSPENDING")
