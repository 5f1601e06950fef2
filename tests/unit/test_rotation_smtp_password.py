"""SES SMTP password derivation against AWS's published algorithm, region by region."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from redcap_ctl.errors import ControlPlaneError
from redcap_ctl.rotation.smtp import derive_smtp_password

SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"  # AWS's documentation example key


def documented(secret_access_key: str, region: str) -> str:
    """Written from the SES developer guide's steps, independently of the production code:
    kDate = HMAC("AWS4" + key, "11111111"); kRegion = HMAC(kDate, region); kService = HMAC(kRegion, "ses");
    kTerminal = HMAC(kService, "aws4_request"); kMessage = HMAC(kTerminal, "SendRawEmail");
    password = base64(0x04 || kMessage)."""
    k_date = hmac.digest(("AWS4" + secret_access_key).encode("utf-8"), b"11111111", "sha256")
    k_region = hmac.digest(k_date, region.encode("utf-8"), "sha256")
    k_service = hmac.digest(k_region, b"ses", "sha256")
    k_terminal = hmac.digest(k_service, b"aws4_request", "sha256")
    k_message = hmac.new(k_terminal, b"SendRawEmail", hashlib.sha256).digest()
    return base64.standard_b64encode(b"\x04" + k_message).decode("ascii")


def test_published_vector_from_the_aws_sdk_for_php() -> None:
    # aws/aws-sdk-php tests/Ses/SesClientTest.php, testCanGenerateSmtpPasswordV4FromCredentials.
    assert derive_smtp_password(SECRET, "us-east-2") == "BMPPgbAHoFVbze1Ud0oA5uNdXRwUXUZ+qOwphGJbl/cS"


@pytest.mark.parametrize(
    "region",
    [
        "us-east-1",
        "us-east-2",
        "us-west-2",
        "eu-west-1",
        "eu-central-1",
        "ap-southeast-2",
        "ap-northeast-1",
        "ca-central-1",
        "sa-east-1",
        "us-gov-west-1",
    ],
)
@pytest.mark.parametrize("secret", [SECRET, "abc/DEF+ghi0123456789abcdefghijklmnopqrst", "x"])
def test_matches_the_documented_algorithm(region: str, secret: str) -> None:
    password = derive_smtp_password(secret, region)
    assert password == documented(secret, region)
    raw = base64.b64decode(password)
    assert len(raw) == 33
    assert raw[0] == 0x04
    assert len(password) == 44


def test_the_password_is_per_region_and_never_the_secret_key() -> None:
    passwords = {derive_smtp_password(SECRET, r) for r in ("us-east-1", "eu-west-1", "ap-south-1")}
    assert len(passwords) == 3
    assert SECRET not in passwords


def test_missing_inputs_are_refused_without_echoing_them() -> None:
    with pytest.raises(ControlPlaneError) as info:
        derive_smtp_password("", "us-east-1")
    assert "us-east-1" not in str(info.value)
    with pytest.raises(ControlPlaneError):
        derive_smtp_password(SECRET, "")
