"""ACM's DNS validation and DeleteCertificate's in-use check, on moto's in-process backends.

moto 5.2.5 differs from ACM where the Express custom domain depends on it:

- moto issues a DNS-validated certificate a fixed time after the request
  (``MOTO_ACM_VALIDATION_WAIT``, 60 s), whether or not any record exists. ACM issues it only once
  its validation CNAME is found in public DNS, so a record in a zone nobody has delegated
  validates nothing, and a request still pending after 72 hours becomes VALIDATION_TIMED_OUT
  (ACM User Guide, "DNS validation" https://docs.aws.amazon.com/acm/latest/userguide/dns-validation.html
  and "Troubleshoot certificate requests", https://docs.aws.amazon.com/acm/latest/userguide/troubleshooting-cert-requests.html).
- moto deletes a certificate that a load balancer listener still uses. ACM refuses with
  ResourceInUseException (ACM API Reference, DeleteCertificate).

``manual()`` turns moto's clock-based issuing off; ``validate()`` is ACM's check against the
Route 53 zones that public DNS reaches (the ones the caller says were delegated); ``time_out()``
is the 72-hour expiry; ``guard_in_use()`` adds the in-use refusal. All act on moto's backends in
this process (the test suite's ``mock_aws`` or ``make local``'s in-process moto server).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from moto import settings
from moto.acm import models as acm_models
from moto.core.exceptions import AWSError
from moto.elbv2.models import elbv2_backends
from moto.route53.models import route53_backends

ACCOUNT = "123456789012"
REGION = "us-east-1"
_guarded = False


class ResourceInUse(AWSError):
    TYPE = "ResourceInUseException"


def manual() -> None:
    """Certificates stay PENDING_VALIDATION until ``validate`` finds their records (never by the clock)."""
    settings.ACM_VALIDATION_WAIT = 10**9


def _certificates(account: str, region: str) -> dict[str, Any]:
    backend = acm_models.acm_backends[account][region]
    certs: dict[str, Any] = backend._certificates
    return certs


def _public_records(zone_ids: Iterable[str], account: str) -> set[tuple[str, str]]:
    backend = route53_backends[account]["aws"]
    found = set()
    for zone_id in zone_ids:
        zone = backend.zones.get(zone_id.rsplit("/", 1)[-1])
        if zone is None:
            continue
        for rrset in zone.rrsets:
            if rrset.type == "CNAME":
                for value in rrset.records:
                    found.add((rrset.name.rstrip(".").lower(), str(value).rstrip(".").lower()))
    return found


def validate(delegated_zones: Iterable[str], account: str = ACCOUNT, region: str = REGION) -> list[str]:
    """ACM's check: a pending certificate whose every validation CNAME resolves (is in a delegated zone) is issued."""
    public = _public_records(delegated_zones, account)
    issued = []
    for arn, cert in _certificates(account, region).items():
        if cert.type != "AMAZON_ISSUED" or cert.status != "PENDING_VALIDATION":
            continue
        options = cert.describe()["Certificate"].get("DomainValidationOptions", [])
        wanted = {
            (o["ResourceRecord"]["Name"].rstrip(".").lower(), o["ResourceRecord"]["Value"].rstrip(".").lower())
            for o in options
        }
        if wanted and wanted <= public:
            cert.status = "ISSUED"
            issued.append(arn)
    return issued


def issue(arn: str, account: str = ACCOUNT, region: str = REGION) -> None:
    """Issue one certificate regardless of DNS (tests that are not about validation)."""
    _certificates(account, region)[arn].status = "ISSUED"


def time_out(arn: str, account: str = ACCOUNT, region: str = REGION) -> None:
    """What ACM does to a request still pending after 72 hours."""
    _certificates(account, region)[arn].status = "VALIDATION_TIMED_OUT"


def status(arn: str, account: str = ACCOUNT, region: str = REGION) -> str | None:
    cert = _certificates(account, region).get(arn)
    return None if cert is None else str(cert.status)


def in_use(arn: str, account: str = ACCOUNT, region: str = REGION) -> bool:
    backend = elbv2_backends[account][region]
    for lb in backend.load_balancers.values():
        for listener in lb.listeners.values():
            if arn in listener.certificates:
                return True
    return False


def guard_in_use() -> None:
    """DeleteCertificate of a certificate a listener uses fails as in ACM (patched once per process)."""
    global _guarded
    if _guarded:
        return
    _guarded = True
    original = acm_models.AWSCertificateManagerBackend.delete_certificate

    def delete_certificate(self: Any, arn: str) -> None:
        if in_use(arn, self.account_id, self.region_name):
            raise ResourceInUse(f"Certificate {arn} is in use by a load balancer listener")
        original(self, arn)

    acm_models.AWSCertificateManagerBackend.delete_certificate = delete_certificate  # type: ignore[method-assign]
