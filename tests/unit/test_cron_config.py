"""CronConfig parsing: fail fast, name the field, never echo what might be a secret."""

from __future__ import annotations

import pytest

from redcap_ctl import cron
from redcap_ctl.errors import InputError

ENV = {
    "CRON_URL": "https://abc123.us-east-1.awsapprunner.com/cron.php",
    "CRON_SECRET_ARN": "arn:aws:secretsmanager:us-east-1:123456789012:secret:cron-AbCdEf",
    "CRON_HEADER_NAME": "x-redcap-cron-secret",
    "CRON_TIMEOUT_SECONDS": "100",
}


def test_parses_the_template_environment():
    config = cron.CronConfig.from_env(ENV)
    assert config.url == ENV["CRON_URL"]
    assert config.timeout_seconds == 100.0


@pytest.mark.parametrize("name", sorted(ENV))
def test_every_variable_is_required(name):
    with pytest.raises(InputError, match=f"^{name}: "):
        cron.CronConfig.from_env({k: v for k, v in ENV.items() if k != name})


@pytest.mark.parametrize(
    "url",
    [
        "https://redcap.example.org/cron.php",
        "http://127.0.0.1:8081/cron.php",
        "http://127.10.0.3/cron.php",
        "http://[::1]:8081/cron.php",
        "http://localhost:8081/cron.php",
        "http://LOCALHOST/cron.php",
    ],
)
def test_accepted_urls(url):
    assert cron.parse_cron_url(url) == url


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://redcap.example.org/cron.php", "must use https"),
        ("http://10.0.0.5/cron.php", "must use https"),
        ("http://[::2]/cron.php", "must use https"),
        ("http://127.0.0.1.evil.example/cron.php", "must use https"),
        ("ftp://127.0.0.1/cron.php", "must be an https URL"),
        ("https://user:SuperSecret123@redcap.example.org/cron.php", "must not carry credentials"),
        ("https://redcap.example.org/cron.php?secret=SuperSecret123", "must not have a query string"),
        ("https:///cron.php", "has no host"),
        ("https://redcap.example.org:99999/cron.php", "is not a valid URL"),
        # The template's https://${ExpressService.Endpoint}/cron.php if Endpoint carried its scheme.
        ("https://https://rc.ecs.us-east-1.on.aws/cron.php", "has a doubled scheme"),
    ],
)
def test_refused_urls_name_the_field_and_do_not_echo_it(url, problem):
    with pytest.raises(InputError, match=f"^CRON_URL: {problem}") as info:
        cron.parse_cron_url(url)
    assert "SuperSecret123" not in str(info.value)
    assert "example" not in str(info.value)


@pytest.mark.parametrize("value", ["0.2", "1", "110"])
def test_timeouts_accepted(value):
    assert cron.parse_timeout(value) == float(value)


@pytest.mark.parametrize("value", ["0", "-1", "111", "120", "abc", "nan"])
def test_timeouts_refused(value):
    with pytest.raises(InputError, match="^CRON_TIMEOUT_SECONDS: "):
        cron.parse_timeout(value)


@pytest.mark.parametrize("name", ["x cron", "x-cron:", "", "-x", "x" * 65])
def test_header_names_refused(name):
    with pytest.raises(InputError, match="^CRON_HEADER_NAME: "):
        cron.parse_header_name(name)


class FakeSecrets:
    def __init__(self, value: object) -> None:
        self.value = value
        self.calls: list[dict[str, object]] = []

    def get(self, name: str, *, max_age: int, force_fetch: bool, VersionStage: str) -> object:
        self.calls.append({"name": name, "max_age": max_age, "force_fetch": force_fetch, "VersionStage": VersionStage})
        return self.value


class FakeResponse:
    def __init__(self, status: int) -> None:
        self.status = status


class FakeHttp:
    """Answers a fixed sequence of statuses and records the header value sent."""

    def __init__(self, *statuses: int) -> None:
        self.statuses = list(statuses)
        self.sent: list[str] = []

    def request(self, method: str, url: str, *, headers: dict[str, str], **kwargs: object) -> FakeResponse:
        self.sent.append(headers[ENV["CRON_HEADER_NAME"]])
        return FakeResponse(self.statuses.pop(0))


VALUE = "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6"


def test_secret_is_read_cached_as_awscurrent_and_forced_only_after_a_403():
    config = cron.CronConfig.from_env(ENV)
    secrets = FakeSecrets(VALUE)

    result = cron.call_cron(config, secrets, FakeHttp(403, 200))  # type: ignore[arg-type]

    assert (result.outcome, result.attempts) == (cron.Outcome.SUCCESS, 2)
    arn = ENV["CRON_SECRET_ARN"]
    expected = {"name": arn, "max_age": cron.SECRET_MAX_AGE_SECONDS, "VersionStage": "AWSCURRENT"}
    assert secrets.calls == [{**expected, "force_fetch": False}, {**expected, "force_fetch": True}]


def test_no_fresh_fetch_without_a_403():
    secrets = FakeSecrets(VALUE)
    cron.call_cron(cron.CronConfig.from_env(ENV), secrets, FakeHttp(200))  # type: ignore[arg-type]
    with pytest.raises(cron.CronFailed, match="HTTP 500"):
        cron.call_cron(cron.CronConfig.from_env(ENV), secrets, FakeHttp(500))  # type: ignore[arg-type]
    assert [c["force_fetch"] for c in secrets.calls] == [False, False]


@pytest.mark.parametrize(
    "value", ["short", "has a space in it and is long enough", "line\r\nX-Injected: 1 long", b"bytes-value-0123456789"]
)
def test_unusable_secret_is_refused_without_showing_it(value):
    config = cron.CronConfig.from_env(ENV)
    with pytest.raises(cron.CronFailed, match="not a usable header value") as info:
        cron.call_cron(config, FakeSecrets(value), http=None)  # type: ignore[arg-type]
    assert str(value) not in str(info.value)
