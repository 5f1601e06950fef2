"""App Runner custom domain: associate, publish DNS, and clean up exactly what we wrote.

CloudFormation has no App Runner custom-domain resource, so ``Custom::AppRunnerCustomDomain``
does the whole job: it associates the domain, waits (with backoff, never a fixed
sleep) until App Runner has published every certificate validation record,
writes those records and the alias records into the hosted zone when one is
given, and on Delete removes only what it wrote, only while it still holds what
it wrote, before it disassociates the domain.

It never waits for ``active``: certificate validation can take up to 48 hours
and a custom resource has at most an hour, so ``Status`` is reported as it is.
Every wait is bounded by the Lambda's remaining time (:class:`Budget`), so
CloudFormation always gets an answer.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from botocore.exceptions import ClientError

from redcap_ctl import apprunner_regions
from redcap_ctl.budget import Budget, BudgetExhausted
from redcap_ctl.config import parse_bool
from redcap_ctl.errors import ControlPlaneError, InputError
from redcap_ctl.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_apprunner import AppRunnerClient
    from mypy_boto3_route53 import Route53Client
    from mypy_boto3_route53.literals import RRTypeType
    from mypy_boto3_route53.type_defs import ChangeTypeDef, ResourceRecordSetTypeDef

# Validation CNAMEs need a TTL, and a Route 53 DELETE must repeat it exactly.
VALIDATION_TTL = 300
# CloudFormation caps the whole response at 4 KB; keep the attributes well below.
MAX_DATA_BYTES = 3_000
# Statuses at which App Runner has published the validation records (the same
# targets the Terraform provider waits for).
_RECORDS_READY = {"pending_certificate_dns_validation", "binding_certificate", "active"}
# Route 53 rejects a DELETE whose record is missing or holds other values with
# InvalidChangeBatch; moto answers the mismatched case with InvalidInput.
_NOT_OURS_CODES = {"InvalidChangeBatch", "InvalidInput"}
# Ownership record: a TXT record next to the domain listing what this resource
# wrote, so Delete finds its records in Route 53 itself, even after App Runner
# forgot them (association removed by hand, service deleted).
OWNER_PREFIX = "_redcap-custom-domain"
OWNER_TAG = "redcap-custom-domain/1"
TXT_STRING_MAX = 255  # Route 53: each TXT character-string holds at most 255 characters

_SERVICE_ARN_RE = re.compile(
    r"^arn:aws[a-z-]*:apprunner:(?P<region>[a-z]{2}(?:-[a-z]+)+-\d):\d{12}:"
    r"service/[A-Za-z0-9][A-Za-z0-9_-]{3,39}/[0-9a-f]{32}$"
)
_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_ZONE_RE = re.compile(r"^(?:/hostedzone/)?(?P<id>[A-Z0-9]{1,32})$")
_ID_RE = re.compile(r"^(?P<domain>[a-z0-9*.-]+)\|www=(?P<www>true|false)\|(?P<arn>arn:\S+)$")


# --- configuration -----------------------------------------------------------
@dataclass(frozen=True)
class PollPolicy:
    """Exponential backoff for every wait: ``initial`` doubling up to ``maximum`` seconds."""

    initial: float = 1.0
    maximum: float = 5.0
    factor: float = 2.0
    margin: float = 10.0  # seconds kept back from the Lambda's remaining time

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> PollPolicy:
        env = os.environ if environ is None else environ
        values: dict[str, float] = {}
        for attr, var in (
            ("initial", "CUSTOM_DOMAIN_POLL_INITIAL_SECONDS"),
            ("maximum", "CUSTOM_DOMAIN_POLL_MAX_SECONDS"),
            ("margin", "CUSTOM_DOMAIN_TIME_MARGIN_SECONDS"),
        ):
            raw = env.get(var, "").strip()
            if raw:
                try:
                    values[attr] = float(raw)
                except ValueError:
                    raise InputError(var, f"must be a number of seconds, got {raw[:20]!r}") from None
                if values[attr] < 0:
                    raise InputError(var, "must not be negative")
        policy = cls(**values)
        if policy.initial <= 0 or policy.maximum < policy.initial:
            raise InputError("CUSTOM_DOMAIN_POLL_MAX_SECONDS", "must be at least the (positive) initial interval")
        return policy

    def delays(self) -> Iterator[float]:
        delay = self.initial
        while True:
            yield delay
            delay = min(delay * self.factor, self.maximum)


@dataclass(frozen=True)
class Props:
    """Validated ``ResourceProperties`` of ``Custom::AppRunnerCustomDomain``."""

    service_arn: str
    domain_name: str
    enable_www: bool
    hosted_zone_id: str | None = None

    @property
    def region(self) -> str:
        return self.service_arn.split(":")[3]

    @property
    def physical_id(self) -> str:
        # Readable and stable for (ServiceArn, DomainName, EnableWWWSubdomain);
        # HostedZoneId is deliberately absent so a zone change is an in-place update.
        return f"{self.domain_name}|www={str(self.enable_www).lower()}|{self.service_arn}"

    @property
    def names(self) -> list[str]:
        """The names that get alias records (and serve traffic)."""
        return [self.domain_name, *([f"www.{self.domain_name}"] if self.enable_www else [])]


def parse_props(props: Mapping[str, Any]) -> Props:
    """Validate the properties before any AWS call; errors name the property."""
    service_arn = props.get("ServiceArn")
    if not isinstance(service_arn, str) or not service_arn.strip():
        raise InputError("ServiceArn", "is required")
    service_arn = service_arn.strip()
    match = _SERVICE_ARN_RE.match(service_arn)
    if not match:
        raise InputError(
            "ServiceArn", "must be an App Runner service ARN (arn:aws:apprunner:<region>:<account>:service/<name>/<id>)"
        )
    domain = _parse_domain(props.get("DomainName"))
    www = parse_bool(props.get("EnableWWWSubdomain"), "EnableWWWSubdomain", default=False)
    if www and domain.startswith("*."):
        raise InputError("EnableWWWSubdomain", "cannot be true for a wildcard DomainName")
    zone = props.get("HostedZoneId")
    zone_id: str | None = None
    if zone is not None and zone != "":
        zmatch = _ZONE_RE.match(zone.strip()) if isinstance(zone, str) else None
        if not zmatch:
            raise InputError("HostedZoneId", "must be a Route 53 hosted zone id such as Z0123456789ABCDEFGHIJ")
        zone_id = zmatch["id"]
        if len(ownership_name(domain)) > 253:
            raise InputError("DomainName", f"is too long for its ownership record {OWNER_PREFIX}.<DomainName>")
        # Only a managed zone needs App Runner's alias zone: fail now, not after associating.
        apprunner_regions.hosted_zone_id(match["region"])
    return Props(service_arn=service_arn, domain_name=domain, enable_www=www, hosted_zone_id=zone_id)


def _parse_domain(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError("DomainName", "is required")
    domain = value.strip().lower().removesuffix(".")
    labels = domain.split(".")
    if len(domain) > 253 or len(labels) < 2:
        raise InputError("DomainName", "must be a fully qualified domain name such as redcap.example.org")
    first = 1 if labels[0] == "*" else 0
    if not all(_LABEL_RE.match(label) for label in labels[first:]):
        raise InputError("DomainName", "must be a fully qualified domain name such as redcap.example.org")
    return domain


def parse_physical_id(physical_id: str | None) -> tuple[str, bool, str] | None:
    """(domain, www, service ARN) if this id is one we returned; None otherwise.

    When Create fails, crhelper invents an id of its own; that id never parses,
    which is how Delete knows nothing was created.
    """
    match = _ID_RE.match(physical_id or "")
    if not match or not _SERVICE_ARN_RE.match(match["arn"]):
        return None
    return match["domain"], match["www"] == "true", match["arn"]


# --- App Runner ----------------------------------------------------------------
@dataclass(frozen=True)
class Association:
    dns_target: str
    domain: Mapping[str, Any] | None  # the CustomDomain as App Runner describes it

    @property
    def status(self) -> str:
        return str(self.domain["Status"]).lower() if self.domain else "gone"

    @property
    def validation_records(self) -> list[dict[str, str]]:
        if not self.domain:
            return []
        return [
            {"Name": str(r["Name"]), "Type": str(r.get("Type", "CNAME")), "Value": str(r["Value"])}
            for r in self.domain.get("CertificateValidationRecords") or []
            if r.get("Name") and r.get("Value")
        ]


def _code(err: ClientError) -> str:
    response: Any = err.response
    return str(response.get("Error", {}).get("Code", ""))


def _norm(name: str) -> str:
    return name.strip().lower().removesuffix(".")


def describe(apprunner: AppRunnerClient, service_arn: str, domain_name: str) -> Association:
    """Read every page of DescribeCustomDomains and pick out ``domain_name``."""
    found: Mapping[str, Any] | None = None
    dns_target = ""
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"ServiceArn": service_arn, "MaxResults": 5}
        if token:
            kwargs["NextToken"] = token
        page = apprunner.describe_custom_domains(**kwargs)
        dns_target = page.get("DNSTarget") or dns_target
        for domain in page.get("CustomDomains", []):
            if _norm(domain["DomainName"]) == domain_name:
                found = domain
        token = page.get("NextToken")
        if not token:
            return Association(dns_target=dns_target, domain=found)


def _retry_busy[T](call: Callable[[], T], budget: Budget, poll: PollPolicy, what: str) -> T:
    """Retry App Runner's InvalidStateException (an operation in progress) with backoff."""
    delays = poll.delays()
    while True:
        try:
            return call()
        except ClientError as err:
            if _code(err) != "InvalidStateException":
                raise
            delay = next(delays)
            logger.info("App Runner service busy; retrying", extra={"operation": what, "delay_s": delay})
            try:
                budget.sleep(delay, what)
            except BudgetExhausted:
                raise ControlPlaneError(f"{what}: service stayed busy: {err}") from err


def _failure_reason(props: Props, assoc: Association) -> str:
    failed = [
        r["Name"] for r in (assoc.domain or {}).get("CertificateValidationRecords") or [] if r.get("Status") == "FAILED"
    ]
    detail = f"; failed validation records: {', '.join(failed)}" if failed else ""
    return f"App Runner reports custom domain {props.domain_name} as {assoc.status}{detail}"


def _records_ready(props: Props, assoc: Association) -> bool:
    if assoc.status not in _RECORDS_READY:
        return False
    names = {_norm(r["Name"]) for r in assoc.validation_records}
    if not names:
        return False
    # With www, App Runner's certificate also covers www.<domain>; its record must be there too.
    return not props.enable_www or any(n.endswith(f".www.{props.domain_name}") for n in names)


def ensure_associated(apprunner: AppRunnerClient, props: Props, budget: Budget, poll: PollPolicy) -> bool:
    """Associate the domain; True if this call created the association.

    Associating first and looking only when App Runner refuses is as safe as
    looking first (a repeated Create adopts what is there) and saves a call on
    the path every stack takes. Whatever App Runner answers for an existing
    association (a bad request, or a busy service), a look decides.
    """
    delays = poll.delays()
    while True:
        try:
            apprunner.associate_custom_domain(
                ServiceArn=props.service_arn,
                DomainName=props.domain_name,
                # The API's default is true: always say what we mean.
                EnableWWWSubdomain=props.enable_www,
            )
            return True
        except ClientError as err:
            code = _code(err)
            if code not in ("InvalidRequestException", "InvalidStateException"):
                raise
            current = describe(apprunner, props.service_arn, props.domain_name)
            if current.domain is not None:
                _check_adoptable(props, current)
                # An earlier or concurrent associate of the same domain with this service counts as success.
                logger.info(
                    "Domain already associated with this service; adopting it", extra={"status": current.status}
                )
                return False
            if code == "InvalidRequestException":
                raise  # refused for another reason (CAA, limit, another service): the API's reason stands
            delay = next(delays)
            logger.info("App Runner service busy; retrying", extra={"operation": "AssociateCustomDomain"})
            try:
                budget.sleep(delay, "AssociateCustomDomain")
            except BudgetExhausted:
                raise ControlPlaneError(f"AssociateCustomDomain: service stayed busy: {err}") from err


def _check_adoptable(props: Props, current: Association) -> None:
    www = bool((current.domain or {}).get("EnableWWWSubdomain"))
    if www != props.enable_www:
        raise ControlPlaneError(
            f"{props.domain_name} is already associated with this service with EnableWWWSubdomain="
            f"{str(www).lower()}; remove that association first"
        )
    if current.status in ("deleting", "delete_failed", "create_failed"):
        raise ControlPlaneError(_failure_reason(props, current) + "; remove that association first")


def wait_for_records(apprunner: AppRunnerClient, props: Props, budget: Budget, poll: PollPolicy) -> Association:
    delays = poll.delays()
    while True:
        assoc = describe(apprunner, props.service_arn, props.domain_name)
        if assoc.domain is None:
            raise ControlPlaneError(f"custom domain {props.domain_name} disappeared while waiting for its records")
        if assoc.status in ("create_failed", "delete_failed", "deleting"):
            raise ControlPlaneError(_failure_reason(props, assoc))
        if _records_ready(props, assoc):
            return assoc
        budget.sleep(next(delays), f"the validation records of {props.domain_name}")


def wait_until_gone(apprunner: AppRunnerClient, props: Props, budget: Budget, poll: PollPolicy) -> None:
    delays = poll.delays()
    while True:
        try:
            assoc = describe(apprunner, props.service_arn, props.domain_name)
        except ClientError as err:
            if _code(err) == "ResourceNotFoundException":
                return
            raise
        if assoc.domain is None:
            return
        if assoc.status == "delete_failed":
            raise ControlPlaneError(_failure_reason(props, assoc))
        budget.sleep(next(delays), f"{props.domain_name} to be disassociated")


def is_dual_stack(apprunner: AppRunnerClient, service_arn: str) -> bool:
    service: Any = apprunner.describe_service(ServiceArn=service_arn)["Service"]
    return str(service.get("NetworkConfiguration", {}).get("IpAddressType", "")).upper() == "DUAL_STACK"


# --- Route 53 -----------------------------------------------------------------
@dataclass(frozen=True)
class Record:
    """One record set exactly as this resource writes it."""

    name: str  # no trailing dot: moto's DELETE check compares names as sent
    type: str
    value: str | None = None  # CNAME target, as App Runner gave it
    alias_dns: str | None = None
    alias_zone: str | None = None

    @property
    def rr_type(self) -> RRTypeType:
        return cast("RRTypeType", self.type)

    def record_set(self) -> ResourceRecordSetTypeDef:
        if self.alias_dns is not None and self.alias_zone is not None:
            return {
                "Name": self.name,
                "Type": self.rr_type,
                "AliasTarget": {
                    "HostedZoneId": self.alias_zone,
                    "DNSName": self.alias_dns,
                    "EvaluateTargetHealth": False,
                },
            }
        return {
            "Name": self.name,
            "Type": self.rr_type,
            "TTL": VALIDATION_TTL,
            "ResourceRecords": [{"Value": self.value or ""}],
        }

    def held_by(self, rrset: Mapping[str, Any]) -> bool:
        """True if ``rrset`` (as Route 53 lists it) still holds exactly what we wrote."""
        if _norm(str(rrset.get("Name", ""))) != _norm(self.name) or rrset.get("Type") != self.type:
            return False
        if rrset.get("SetIdentifier"):
            return False
        if self.alias_dns is not None:
            alias = rrset.get("AliasTarget") or {}
            return (
                _norm(str(alias.get("DNSName", ""))) == _norm(self.alias_dns)
                and str(alias.get("HostedZoneId", "")).removeprefix("/hostedzone/") == self.alias_zone
            )
        values = [_norm(str(r.get("Value", ""))) for r in rrset.get("ResourceRecords") or []]
        return rrset.get("TTL") == VALIDATION_TTL and values == [_norm(self.value or "")]


def records_for(props: Props, assoc: Association, *, ipv4: bool = True, ipv6: bool = False) -> list[Record]:
    """Validation CNAMEs plus alias records for the domain (and www) at ``DNSTarget``."""
    out = [Record(name=_norm(r["Name"]), type=r["Type"].upper(), value=r["Value"]) for r in assoc.validation_records]
    if assoc.dns_target:
        alias_zone = apprunner_regions.hosted_zone_id(props.region)
        types = [t for t, wanted in (("A", ipv4), ("AAAA", ipv6)) if wanted]
        out += [
            Record(name=name, type=t, alias_dns=assoc.dns_target, alias_zone=alias_zone)
            for name in props.names
            for t in types
        ]
    return out


def delete_owned_records(route53: Route53Client, zone_id: str, records: list[Record]) -> list[Record]:
    """Delete each record that still holds exactly what we wrote; returns the ones deleted.

    The listing skips records someone else has since changed; the DELETE repeats
    the exact values, so Route 53 itself refuses it if the record changed in the
    meantime. Each record is its own batch so one foreign record cannot block
    the removal of ours.
    """
    deleted: list[Record] = []
    for record in records:
        listing = route53.list_resource_record_sets(
            HostedZoneId=zone_id,
            StartRecordName=record.name,
            StartRecordType=record.rr_type,
            MaxItems="1",
        )
        current = listing.get("ResourceRecordSets", [])
        if not current or not record.held_by(current[0]):
            logger.info(
                "Record absent or changed by someone else; leaving it",
                extra={"record": record.name, "type": record.type},
            )
            continue
        try:
            route53.change_resource_record_sets(
                HostedZoneId=zone_id,
                ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": record.record_set()}]},
            )
        except ClientError as err:
            if _code(err) not in _NOT_OURS_CODES:
                raise
            logger.info(
                "Record changed before our DELETE; leaving it", extra={"record": record.name, "code": _code(err)}
            )
            continue
        deleted.append(record)
    return deleted


# --- ownership record ---------------------------------------------------------
def ownership_name(domain: str) -> str:
    """Where the ownership record lives (a '*' is only valid as the leftmost label)."""
    if domain.startswith("*."):
        return f"{OWNER_PREFIX}-wildcard.{domain[2:]}"
    return f"{OWNER_PREFIX}.{domain}"


def owner_token(physical_id: str) -> str:
    """Short, stable stand-in for the physical id: who wrote the ownership record."""
    return hashlib.sha256(physical_id.encode()).hexdigest()[:16]


def _dns_norm(name: str) -> str:
    # Route 53 lists names fully qualified and escapes '*' as \052.
    return _norm(name).replace("\\052", "*")


def fingerprint(rrset: Mapping[str, Any]) -> str:
    """Digest of everything a record set holds, as written or as Route 53 lists it."""
    alias = rrset.get("AliasTarget")
    if alias:
        body = "alias|{}|{}|{}".format(
            str(alias.get("HostedZoneId", "")).removeprefix("/hostedzone/"),
            _dns_norm(str(alias.get("DNSName", ""))),
            bool(alias.get("EvaluateTargetHealth", False)),
        )
    else:
        values = sorted(_norm(str(r.get("Value", ""))) for r in rrset.get("ResourceRecords") or [])
        body = f"{rrset.get('TTL')}|{','.join(values)}"
    if rrset.get("SetIdentifier"):
        body += f"|set={rrset['SetIdentifier']}"
    text = f"{_dns_norm(str(rrset.get('Name', '')))}|{rrset.get('Type')}|{body}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Owned:
    """One entry of the ownership record: a record set we wrote and its fingerprint."""

    name: str
    type: str
    digest: str

    @classmethod
    def of(cls, record: Record) -> Owned:
        return cls(name=_dns_norm(record.name), type=record.type, digest=fingerprint(record.record_set()))


@dataclass(frozen=True)
class Ownership:
    rrset: Mapping[str, Any] | None  # the TXT record set as Route 53 lists it; None if absent
    owner: str | None
    entries: tuple[Owned, ...]


def _txt_value(text: str) -> str:
    # One value may hold several quoted strings of at most 255 characters each.
    chunks = [text[i : i + TXT_STRING_MAX] for i in range(0, len(text), TXT_STRING_MAX)] or [""]
    return " ".join(f'"{chunk}"' for chunk in chunks)


def _txt_text(value: str) -> str:
    return "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', value))


def ownership_record(domain: str, owner: str, entries: list[Owned]) -> ResourceRecordSetTypeDef:
    values = [f"{OWNER_TAG} owner={owner}", *(f"{e.type} {e.name} {e.digest}" for e in entries)]
    return {
        "Name": ownership_name(domain),
        "Type": "TXT",
        "TTL": VALIDATION_TTL,
        "ResourceRecords": [{"Value": _txt_value(v)} for v in values],
    }


def _read_rrset(route53: Route53Client, zone_id: str, name: str, rr_type: str) -> Mapping[str, Any] | None:
    listing = route53.list_resource_record_sets(
        HostedZoneId=zone_id, StartRecordName=name, StartRecordType=cast("RRTypeType", rr_type), MaxItems="1"
    )
    current = listing.get("ResourceRecordSets", [])
    if current and _dns_norm(current[0]["Name"]) == _dns_norm(name) and current[0]["Type"] == rr_type:
        return cast("Mapping[str, Any]", current[0])
    return None


def read_ownership(route53: Route53Client, zone_id: str, domain: str) -> Ownership:
    rrset = _read_rrset(route53, zone_id, ownership_name(domain), "TXT")
    if rrset is None:
        return Ownership(rrset=None, owner=None, entries=())
    owner: str | None = None
    entries: list[Owned] = []
    for rr in rrset.get("ResourceRecords") or []:
        text = _txt_text(str(rr.get("Value", "")))
        if text.startswith(f"{OWNER_TAG} owner="):
            owner = text.removeprefix(f"{OWNER_TAG} owner=")
            continue
        parts = text.split(" ")
        if len(parts) == 3:
            entries.append(Owned(name=parts[1], type=parts[0], digest=parts[2]))
    return Ownership(rrset=rrset, owner=owner, entries=tuple(entries))


def write_owned(
    route53: Route53Client, zone_id: str, domain: str, owner: str, records: list[Record], prior: Ownership
) -> None:
    """UPSERT ``records`` and the ownership record listing them, in one atomic batch.

    Entries an earlier run of this same resource listed and this run does not
    rewrite stay listed, so Delete still removes them.
    """
    entries = [Owned.of(r) for r in records]
    if prior.owner == owner:
        fresh = {(e.name, e.type) for e in entries}
        entries += [e for e in prior.entries if (e.name, e.type) not in fresh]
    changes: list[ChangeTypeDef] = [{"Action": "UPSERT", "ResourceRecordSet": r.record_set()} for r in records]
    changes.append({"Action": "UPSERT", "ResourceRecordSet": ownership_record(domain, owner, entries)})
    route53.change_resource_record_sets(
        HostedZoneId=zone_id,
        ChangeBatch={"Comment": "App Runner custom domain (Custom::AppRunnerCustomDomain)", "Changes": changes},
    )


def _delete_exact(route53: Route53Client, zone_id: str, rrset: Mapping[str, Any]) -> bool:
    """DELETE ``rrset`` with exactly the values just read; False if Route 53 says it changed meanwhile."""
    exact = cast("ResourceRecordSetTypeDef", {**rrset, "Name": _norm(str(rrset["Name"]))})
    try:
        route53.change_resource_record_sets(
            HostedZoneId=zone_id, ChangeBatch={"Changes": [{"Action": "DELETE", "ResourceRecordSet": exact}]}
        )
    except ClientError as err:
        if _code(err) not in _NOT_OURS_CODES:
            raise
        logger.info("Record changed before our DELETE; leaving it", extra={"record": exact["Name"]})
        return False
    return True


def remove_owned(
    route53: Route53Client,
    zone_id: str,
    domain: str,
    owner: str,
    fallback: Callable[[], list[Record]],
) -> list[Owned]:
    """Delete what the ownership record lists, each only while it holds what we wrote; the record itself last.

    Without an ownership record (records written before it existed) the
    records App Runner reports (``fallback``) are removed the old way.
    """
    ownership = read_ownership(route53, zone_id, domain)
    if ownership.rrset is None:
        return [Owned.of(r) for r in delete_owned_records(route53, zone_id, fallback())]
    if ownership.owner != owner:
        logger.info("Ownership record belongs to another resource; leaving its records", extra={"domain": domain})
        return []
    deleted: list[Owned] = []
    for entry in ownership.entries:
        current = _read_rrset(route53, zone_id, entry.name, entry.type)
        if current is None or fingerprint(current) != entry.digest:
            logger.info(
                "Record absent or changed by someone else; leaving it", extra={"record": entry.name, "type": entry.type}
            )
            continue
        if _delete_exact(route53, zone_id, current):
            deleted.append(entry)
    # Last: if anything above failed, the list is still there for the retry.
    _delete_exact(route53, zone_id, ownership.rrset)
    return deleted


# --- the resource's life cycle -----------------------------------------------
# crhelper keeps only the *last* 240 characters of a longer reason, which cuts
# off the error code; keep reasons short and front-loaded instead.
MAX_REASON = 250


def short_reason(err: Exception) -> str:
    if isinstance(err, ClientError):
        response: Any = err.response
        message = str(response.get("Error", {}).get("Message", "")).strip()
        text = f"{err.operation_name} failed: {_code(err)}: {message}"
    else:
        text = str(err)
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def _answerable[**P, R](func: Callable[P, R]) -> Callable[P, R]:
    """Turn every failure into a short ControlPlaneError that CloudFormation can show whole."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except (ClientError, ControlPlaneError) as err:
            if isinstance(err, ControlPlaneError) and len(str(err)) <= MAX_REASON:
                raise
            raise ControlPlaneError(short_reason(err)) from err

    return wrapper


@dataclass(frozen=True)
class Result:
    physical_id: str
    data: dict[str, str]


def _data(props: Props, assoc: Association) -> dict[str, str]:
    data = {
        "DNSTarget": assoc.dns_target,
        "Status": assoc.status,
        "ValidationRecords": json.dumps(assoc.validation_records, separators=(",", ":")),
    }
    if len(json.dumps(data)) > MAX_DATA_BYTES:
        raise ControlPlaneError(f"attributes of {props.domain_name} exceed {MAX_DATA_BYTES} bytes")
    return data


@_answerable
def create(
    apprunner: AppRunnerClient,
    route53: Route53Client,
    props: Props,
    budget: Budget,
    poll: PollPolicy,
    prepare: Callable[[], object] | None = None,
) -> Result:
    """Associate, wait for the records, write them; ``prepare`` runs while App Runner prepares them.

    Everything between the association and the records' appearance is free (the
    handler would only sleep), so work needed afterwards (the DualStack check, the
    ownership read, the caller's ``prepare``) happens there, not after.
    """
    created = ensure_associated(apprunner, props, budget, poll)
    written: list[Record] = []
    try:
        if prepare is not None:
            prepare()
        ipv6 = False
        prior = Ownership(rrset=None, owner=None, entries=())
        if props.hosted_zone_id:
            # Asked while App Runner prepares the records, so neither costs time after they appear.
            ipv6 = is_dual_stack(apprunner, props.service_arn)
            prior = read_ownership(route53, props.hosted_zone_id, props.domain_name)
        assoc = wait_for_records(apprunner, props, budget, poll)
        if props.hosted_zone_id:
            records = records_for(props, assoc, ipv6=ipv6)
            write_owned(
                route53, props.hosted_zone_id, props.domain_name, owner_token(props.physical_id), records, prior
            )
            written = records
        return Result(physical_id=props.physical_id, data=_data(props, assoc))
    except Exception:
        if created:
            # CloudFormation will send Delete with an id we cannot recognise, so
            # undo our own half-done work here (best effort, then report the cause).
            _rollback(apprunner, route53, props, written, budget, poll)
        raise


def _rollback(
    apprunner: AppRunnerClient,
    route53: Route53Client,
    props: Props,
    written: list[Record],
    budget: Budget,
    poll: PollPolicy,
) -> None:
    try:
        if written and props.hosted_zone_id:
            remove_owned(
                route53, props.hosted_zone_id, props.domain_name, owner_token(props.physical_id), lambda: written
            )
        _retry_busy(
            lambda: apprunner.disassociate_custom_domain(ServiceArn=props.service_arn, DomainName=props.domain_name),
            budget,
            poll,
            "DisassociateCustomDomain",
        )
    except (ClientError, ControlPlaneError) as err:
        logger.warning("Could not roll back the failed create", extra={"error": str(err)})


def remove(apprunner: AppRunnerClient, route53: Route53Client, props: Props, budget: Budget, poll: PollPolicy) -> None:
    """Remove the records we wrote (while they hold what we wrote), disassociate, wait until gone."""
    try:
        found: Association | None = describe(apprunner, props.service_arn, props.domain_name)
    except ClientError as err:
        if _code(err) != "ResourceNotFoundException":
            raise
        found = None  # the service is gone, and so is its custom domain; our records may not be
    if (
        found is not None
        and found.domain is not None
        and bool(found.domain.get("EnableWWWSubdomain")) != props.enable_www
    ):
        # Another resource (a replacement that changed EnableWWWSubdomain) owns it now.
        logger.info("Association belongs to a different EnableWWWSubdomain setting; not ours to remove")
        return
    if props.hosted_zone_id:
        # The ownership record says what we wrote, with or without App Runner. Its
        # fallback (records written before it existed) asks for A and AAAA both: the
        # service may have left dual-stack since, and a record we never wrote does not match.
        remove_owned(
            route53,
            props.hosted_zone_id,
            props.domain_name,
            owner_token(props.physical_id),
            lambda: records_for(props, found, ipv6=True) if found is not None else [],
        )
    if found is None:
        logger.info("App Runner service is gone; so is its custom domain")
        return
    assoc = found
    if assoc.domain is None:
        logger.info("Custom domain already disassociated")
        return
    if assoc.status != "deleting":
        try:
            _retry_busy(
                lambda: apprunner.disassociate_custom_domain(
                    ServiceArn=props.service_arn, DomainName=props.domain_name
                ),
                budget,
                poll,
                "DisassociateCustomDomain",
            )
        except ClientError as err:
            if _code(err) == "ResourceNotFoundException":
                return
            raise
    wait_until_gone(apprunner, props, budget, poll)


@_answerable
def update(
    apprunner: AppRunnerClient,
    route53: Route53Client,
    new: Props,
    old: Props | None,
    old_physical_id: str,
    budget: Budget,
    poll: PollPolicy,
    prepare: Callable[[], object] | None = None,
) -> Result:
    if old is None or parse_physical_id(old_physical_id) is None:
        return create(apprunner, route53, new, budget, poll, prepare)
    if new.physical_id == old_physical_id:
        result = create(apprunner, route53, new, budget, poll, prepare)
        if old.hosted_zone_id and old.hosted_zone_id != new.hosted_zone_id:
            # Only the zone moved: take our records out of the old zone.
            old_zone = old.hosted_zone_id
            remove_owned(
                route53,
                old_zone,
                old.domain_name,
                owner_token(old_physical_id),
                lambda: records_for(old, describe(apprunner, old.service_arn, old.domain_name), ipv6=True),
            )
        return result
    if new.domain_name == old.domain_name:
        # Replacement of the same domain (other service or www setting): App Runner
        # holds one association per domain, so the old one must go first. The
        # cleanup Delete that CloudFormation sends later then finds nothing of its own.
        remove(apprunner, route53, old, budget, poll)
    return create(apprunner, route53, new, budget, poll, prepare)


@_answerable
def delete(
    apprunner: AppRunnerClient,
    route53: Route53Client,
    physical_id: str,
    raw_props: Mapping[str, Any],
    budget: Budget,
    poll: PollPolicy,
) -> None:
    identity = parse_physical_id(physical_id)
    if identity is None:
        logger.info("Physical id is not one this resource returned: Create never succeeded; nothing to delete")
        return
    props = parse_props(raw_props)
    domain, www, service_arn = identity
    # The id says what was created; the properties only add the zone.
    remove(
        apprunner,
        route53,
        Props(service_arn=service_arn, domain_name=domain, enable_www=www, hosted_zone_id=props.hosted_zone_id),
        budget,
        poll,
    )
