"""GuardDuty protection that coexists with whatever the account already has.

GuardDuty allows one detector per account and Region, so this module never owns
"the" detector outright. It adopts the existing one (or creates one when there
is none), turns on only the listed features that are off, and keeps a ledger of
what it changed on the detector itself, as one tag per stack:

    redcap:guardduty:<owner> = "v1 d=<C|E|-> n=<needed> t=<turned on> f=<prior frequency|->"

- ``d``: ``C`` this stack created the detector, ``E`` it enabled a disabled one.
- ``n``: the features this stack needs (so another stack never turns them off).
- ``t``: the features this stack turned on (the only ones it may ever turn off).
- ``f``: the finding frequency before this stack changed it.

Tags live with the detector, so the ledger survives Lambda container loss and
stack updates, and every stack sharing the detector can read every other
stack's needs. Feature names are abbreviated in the tag because tag values are
limited to 256 characters.

Only the features that change are sent to UpdateDetector: AWS merges a partial
feature list into the detector's configuration, which leaves every other
feature and its additional configuration (for example EKS/ECS agent
management) exactly as it was.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from redcap_ctl.budget import Budget
from redcap_ctl.config import parse_bool
from redcap_ctl.errors import ControlPlaneError, InputError

if TYPE_CHECKING:
    from mypy_boto3_guardduty import GuardDutyClient
    from mypy_boto3_guardduty.type_defs import DetectorFeatureConfigurationTypeDef
else:
    GuardDutyClient = Any
    DetectorFeatureConfigurationTypeDef = dict

logger = Logger(child=True)

# DetectorFeatureConfiguration.Name in the GuardDuty API reference (checked November 2026).
# The short codes are what the ledger tag stores.
FEATURE_CODES: dict[str, str] = {
    "S3_DATA_EVENTS": "S3",
    "EKS_AUDIT_LOGS": "EKSAUDIT",
    "EBS_MALWARE_PROTECTION": "EBS",
    "RDS_LOGIN_EVENTS": "RDS",
    "EKS_RUNTIME_MONITORING": "EKSRT",
    "LAMBDA_NETWORK_LOGS": "LAMBDA",
    "RUNTIME_MONITORING": "RT",
}
CODE_FEATURES = {code: name for name, code in FEATURE_CODES.items()}
# CreateDetector enables every feature it is not told about except the runtime monitoring pair,
# so a detector created here lists these explicitly as DISABLED unless asked for. The runtime
# pair is never sent unasked: naming both in one call is an error even when one is DISABLED.
DEFAULT_ON_AT_CREATE = (
    "S3_DATA_EVENTS",
    "EKS_AUDIT_LOGS",
    "EBS_MALWARE_PROTECTION",
    "RDS_LOGIN_EVENTS",
    "LAMBDA_NETWORK_LOGS",
)
DEFAULT_FEATURES = ("S3_DATA_EVENTS", "RDS_LOGIN_EVENTS", "LAMBDA_NETWORK_LOGS")
FREQUENCIES = ("FIFTEEN_MINUTES", "ONE_HOUR", "SIX_HOURS")
CREATE_FREQUENCY = "FIFTEEN_MINUTES"

TAG_PREFIX = "redcap:guardduty:"
_OWNER_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/=+@-]{0,99}$")
# ServiceTimeout is CloudFormation's own custom-resource property (how long it waits for an answer).
KNOWN_PROPERTIES = frozenset(
    {"ServiceToken", "ServiceTimeout", "Features", "FindingPublishingFrequency", "RevertOnDelete", "OwnerId"}
)
# Seconds kept in reserve before each call so CloudFormation always gets an answer.
CALL_RESERVE_S = 8.0

ManagedBy = Literal["account", "administrator"]


# --------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class Settings:
    features: tuple[str, ...]
    frequency: str | None
    revert_on_delete: bool
    owner: str

    @property
    def tag_key(self) -> str:
        return tag_key(self.owner)


def tag_key(owner: str) -> str:
    key = TAG_PREFIX + owner
    if len(key) <= 128:
        return key
    # Tag keys are limited to 128 characters; the owner pattern already keeps it shorter,
    # this only guards against a future change of that pattern.
    return TAG_PREFIX + hashlib.sha256(owner.encode()).hexdigest()[:32]  # pragma: no cover


def stack_name_from_id(stack_id: str) -> str:
    # arn:aws:cloudformation:region:account:stack/<name>/<uuid>
    parts = stack_id.split(":")[-1].split("/")
    return parts[1] if len(parts) >= 2 else ""


def parse_settings(props: Mapping[str, Any], stack_id: str) -> Settings:
    """Validate the custom resource's properties; nothing is called before this succeeds."""
    unknown = sorted(set(props) - KNOWN_PROPERTIES)
    if unknown:
        raise InputError(
            unknown[0], f"is not a property of Custom::GuardDutyProtection (known: {sorted(KNOWN_PROPERTIES)})"
        )
    return Settings(
        features=parse_features(props.get("Features")),
        frequency=parse_frequency(props.get("FindingPublishingFrequency")),
        revert_on_delete=parse_bool(props.get("RevertOnDelete"), "RevertOnDelete", default=False),
        owner=parse_owner(props.get("OwnerId"), stack_id),
    )


def parse_features(value: Any) -> tuple[str, ...]:
    if value is None:
        return DEFAULT_FEATURES
    if isinstance(value, str):
        # A CommaDelimitedList parameter arrives as a list; a plain string is accepted too.
        value = [v for v in (s.strip() for s in value.split(",")) if v]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InputError("Features", "must be a list of GuardDuty feature names")
    names: list[str] = []
    for raw in value:
        name = raw.strip().upper()
        if name not in FEATURE_CODES:
            raise InputError("Features", f"unknown feature {raw[:60]!r}; valid: {', '.join(FEATURE_CODES)}")
        if name not in names:
            names.append(name)
    if "EKS_RUNTIME_MONITORING" in names and "RUNTIME_MONITORING" in names:
        raise InputError(
            "Features",
            "EKS_RUNTIME_MONITORING and RUNTIME_MONITORING cannot both be listed (RUNTIME_MONITORING includes EKS)",
        )
    return tuple(names)


def parse_frequency(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or value.strip().upper() not in FREQUENCIES:
        raise InputError(
            "FindingPublishingFrequency", f"must be one of {', '.join(FREQUENCIES)}, got {str(value)[:40]!r}"
        )
    return value.strip().upper()


def parse_owner(value: Any, stack_id: str) -> str:
    owner = stack_name_from_id(stack_id) if value is None or value == "" else value
    if not isinstance(owner, str) or not _OWNER_RE.match(owner):
        raise InputError(
            "OwnerId", "must be 1-100 characters of letters, digits and _.:/=+@- (for example the stack name)"
        )
    return owner


# --------------------------------------------------------------------------- ledger
@dataclass(frozen=True)
class Ledger:
    """What one stack needs from, and has changed on, the shared detector."""

    detector: Literal["C", "E", "-"] = "-"
    needs: frozenset[str] = field(default_factory=frozenset)
    turned_on: frozenset[str] = field(default_factory=frozenset)
    prior_frequency: str | None = None

    def encode(self) -> str:
        return " ".join(
            (
                "v1",
                f"d={self.detector}",
                f"n={_codes(self.needs)}",
                f"t={_codes(self.turned_on)}",
                f"f={self.prior_frequency or '-'}",
            )
        )

    @classmethod
    def decode(cls, text: str) -> Ledger | None:
        parts = dict(p.split("=", 1) for p in text.split() if "=" in p)
        if not text.startswith("v1 ") or parts.get("d") not in ("C", "E", "-"):
            return None
        try:
            needs = _names(parts.get("n", "-"))
            turned_on = _names(parts.get("t", "-"))
        except KeyError:
            return None
        freq = parts.get("f", "-")
        detector: Literal["C", "E", "-"] = parts["d"]  # type: ignore[assignment]
        return cls(detector, needs, turned_on, freq if freq in FREQUENCIES else None)


def _codes(names: Iterable[str]) -> str:
    codes = sorted(FEATURE_CODES[n] for n in names)
    return "+".join(codes) if codes else "-"


def _names(codes: str) -> frozenset[str]:
    if codes == "-":
        return frozenset()
    return frozenset(CODE_FEATURES[c] for c in codes.split("+"))


def ledgers_on(tags: Mapping[str, str]) -> dict[str, Ledger]:
    out: dict[str, Ledger] = {}
    for key, value in tags.items():
        if key.startswith(TAG_PREFIX):
            ledger = Ledger.decode(value)
            if ledger is None:
                # Someone edited the tag by hand: treat it as a stack that needs nothing and changed nothing.
                logger.warning("Ignoring an unreadable GuardDuty ledger tag", extra={"tag_key": key})
                continue
            out[key] = ledger
    return out


# --------------------------------------------------------------------------- plumbing
def unlimited() -> Budget:
    return Budget(lambda: 10**9, CALL_RESERVE_S)


@dataclass(frozen=True)
class Outcome:
    detector_id: str
    created_detector: bool
    managed_by: ManagedBy

    def data(self) -> dict[str, str]:
        return {
            "DetectorId": self.detector_id,
            "CreatedDetector": "true" if self.created_detector else "false",
            "ManagedBy": self.managed_by,
        }


def api_error(err: ClientError, action: str) -> ControlPlaneError:
    error = err.response.get("Error", {})
    code = error.get("Code", "Error")
    message = error.get("Message", "") or str(err)
    return ControlPlaneError(f"GuardDuty {action} failed: {code}: {message}")


def _is_member_refusal(err: ClientError) -> bool:
    """UpdateDetector's answer when an administrator account manages this member's GuardDuty.

    IAM's own denials ("... is not authorized to perform ...") name the caller's role, which may well
    contain "member" or "administrator"; they are this stack's problem and must fail loudly.
    """
    error = err.response.get("Error", {})
    code = error.get("Code", "")
    message = error.get("Message", "").lower()
    if code not in ("BadRequestException", "AccessDeniedException") or "not authorized to perform" in message:
        return False
    return any(phrase in message for phrase in ("member account", "administrator account", "delegated administrator"))


def detector_arn(service_token: str, detector_id: str) -> str:
    # The ServiceToken is this function's ARN: arn:<partition>:lambda:<region>:<account>:function:<name>
    parts = service_token.split(":")
    if len(parts) < 5 or not parts[4]:
        raise InputError("ServiceToken", "must be the GuardDuty function's ARN")
    return f"arn:{parts[1]}:guardduty:{parts[3]}:{parts[4]}:detector/{detector_id}"


def _call(budget: Budget, action: str, fn: Callable[..., Any], **kwargs: Any) -> Any:
    budget.check(action)
    try:
        return fn(**kwargs)
    except ClientError as err:
        raise api_error(err, action) from err


def find_detector(gd: GuardDutyClient, budget: Budget) -> str | None:
    ids: list[str] = []
    budget.check("ListDetectors")
    try:
        for page in gd.get_paginator("list_detectors").paginate():
            ids.extend(page.get("DetectorIds", []))
    except ClientError as err:
        raise api_error(err, "ListDetectors") from err
    if len(ids) > 1:
        # AWS allows one per account and Region; guard anyway rather than guess.
        raise ControlPlaneError(f"found {len(ids)} GuardDuty detectors in this Region; expected at most one")
    return ids[0] if ids else None


def feature_status(detector: Mapping[str, Any]) -> dict[str, str]:
    return {
        f["Name"]: f.get("Status", "DISABLED") for f in detector.get("Features", []) if f.get("Name") in FEATURE_CODES
    }


def _administrator(gd: GuardDutyClient, detector_id: str, budget: Budget) -> str | None:
    answer = _call(budget, "GetAdministratorAccount", gd.get_administrator_account, DetectorId=detector_id)
    admin = answer.get("Administrator") or {}
    account = admin.get("AccountId")
    return str(account) if account else None


def _features(names: Iterable[str], status: str) -> list[DetectorFeatureConfigurationTypeDef]:
    return [{"Name": n, "Status": status} for n in sorted(names)]  # type: ignore[typeddict-item]


# --------------------------------------------------------------------------- create / update
def ensure(
    gd: GuardDutyClient,
    settings: Settings,
    service_token: str,
    *,
    budget: Budget | None = None,
    previous_owner: str | None = None,
) -> Outcome:
    """Create/Update: make the detector protect ``settings.features`` and record what changed."""
    budget = budget or unlimited()
    key = settings.tag_key
    detector_id = find_detector(gd, budget)

    if detector_id is None:
        ledger = Ledger(detector="C", needs=frozenset(settings.features), turned_on=frozenset(settings.features))
        off = [n for n in DEFAULT_ON_AT_CREATE if n not in settings.features]
        answer = _call(
            budget,
            "CreateDetector",
            gd.create_detector,
            Enable=True,
            FindingPublishingFrequency=settings.frequency or CREATE_FREQUENCY,
            Features=_features(settings.features, "ENABLED") + _features(off, "DISABLED"),
            Tags={key: ledger.encode()},
        )
        detector_id = str(answer["DetectorId"])
        logger.info("Created a GuardDuty detector", extra={"detector_id": detector_id, "features": settings.features})
        return Outcome(detector_id, True, "account")

    admin = _administrator(gd, detector_id, budget)
    if admin:
        logger.warning(
            "GuardDuty here is managed by an administrator account; making no change",
            extra={"detector_id": detector_id, "administrator": admin},
        )
        return Outcome(detector_id, False, "administrator")

    detector = _call(budget, "GetDetector", gd.get_detector, DetectorId=detector_id)
    tags: dict[str, str] = dict(detector.get("Tags") or {})
    ledgers = ledgers_on(tags)
    old_key = tag_key(previous_owner) if previous_owner and tag_key(previous_owner) != key else None
    prior = ledgers.pop(key, None) or (ledgers.pop(old_key, None) if old_key else None) or Ledger()
    if old_key:
        ledgers.pop(old_key, None)
    others_need = frozenset().union(*(lg.needs for lg in ledgers.values()))
    status = feature_status(detector)
    wanted = frozenset(settings.features)

    to_enable = sorted(n for n in wanted if status.get(n) != "ENABLED")
    # A feature dropped from the list is turned off only if this stack turned it on and no other stack
    # needs it: the update asked for it to go, and it was off before this stack came.
    dropped = prior.turned_on - wanted
    to_disable = sorted(n for n in dropped if n not in others_need and status.get(n) == "ENABLED")
    handed_over = dropped - frozenset(to_disable)

    enable_detector = detector.get("Status") != "ENABLED"
    current_freq = detector.get("FindingPublishingFrequency")
    new_freq = settings.frequency if settings.frequency and settings.frequency != current_freq else None

    ledger = Ledger(
        detector=prior.detector if prior.detector != "-" else ("E" if enable_detector else "-"),
        needs=wanted,
        turned_on=(prior.turned_on & wanted) | frozenset(to_enable),
        prior_frequency=prior.prior_frequency or (current_freq if new_freq else None),
    )

    request: dict[str, Any] = {}
    if enable_detector:
        request["Enable"] = True
    if new_freq:
        request["FindingPublishingFrequency"] = new_freq
    if to_enable or to_disable:
        request["Features"] = _features(to_enable, "ENABLED") + _features(to_disable, "DISABLED")
    if request:
        budget.check("UpdateDetector")
        try:
            gd.update_detector(DetectorId=detector_id, **request)
        except ClientError as err:
            if _is_member_refusal(err):
                logger.warning(
                    "GuardDuty refused the change because an administrator account manages it; making no change",
                    extra={"detector_id": detector_id, "reason": err.response.get("Error", {}).get("Message", "")},
                )
                return Outcome(detector_id, False, "administrator")
            raise api_error(err, "UpdateDetector") from err
        logger.info(
            "Updated the existing GuardDuty detector",
            extra={"detector_id": detector_id, "enabled": to_enable, "disabled": to_disable, **request},
        )

    arn = detector_arn(service_token, detector_id)
    new_tags = {key: ledger.encode()}
    # Hand features this stack turned on, and that another stack still needs, over to that stack.
    new_tags.update(_hand_over(ledgers, Ledger(turned_on=handed_over)))
    if any(tags.get(k) != v for k, v in new_tags.items()):
        _call(budget, "TagResource", gd.tag_resource, ResourceArn=arn, Tags=new_tags)
    if old_key and old_key in tags:
        _call(budget, "UntagResource", gd.untag_resource, ResourceArn=arn, TagKeys=[old_key])
    return Outcome(detector_id, ledger.detector == "C", "account")


def _hand_over(others: Mapping[str, Ledger], leaving: Ledger) -> dict[str, str]:
    """Give what a leaving stack changed to the remaining stacks that still rely on it.

    Features go to the first stack (by tag key) that needs them; the created/enabled mark and the
    prior frequency go to the first stack, so the last stack to revert restores the account.
    """
    if not others:
        return {}
    updated = dict(others)
    keys = sorted(updated)
    for name in leaving.turned_on:
        for k in keys:
            if name in updated[k].needs:
                updated[k] = replace(updated[k], turned_on=updated[k].turned_on | {name})
                break
    first = keys[0]
    if leaving.detector != "-" and updated[first].detector in ("-", "E"):
        mark: Literal["C", "E", "-"] = "C" if "C" in (leaving.detector, updated[first].detector) else "E"
        updated[first] = replace(updated[first], detector=mark)
    if leaving.prior_frequency and not updated[first].prior_frequency:
        updated[first] = replace(updated[first], prior_frequency=leaving.prior_frequency)
    return {k: v.encode() for k, v in updated.items() if v != others[k]}


# --------------------------------------------------------------------------- delete
def release(
    gd: GuardDutyClient,
    owner: str,
    revert: bool,
    service_token: str,
    *,
    budget: Budget | None = None,
) -> str:
    """Delete: forget this stack's ledger; with ``revert``, undo exactly what it changed.

    Returns a short description of what was done (for the log).
    """
    budget = budget or unlimited()
    key = tag_key(owner)
    detector_id = find_detector(gd, budget)
    if detector_id is None:
        return "no detector; nothing to do"
    detector = _call(budget, "GetDetector", gd.get_detector, DetectorId=detector_id)
    tags: dict[str, str] = dict(detector.get("Tags") or {})
    ledgers = ledgers_on(tags)
    mine = ledgers.pop(key, None)
    if mine is None:
        # Never recorded a change here (administrator-managed, or a Create that failed early).
        return "this stack changed nothing on the detector"
    arn = detector_arn(service_token, detector_id)

    if not revert:
        _call(budget, "UntagResource", gd.untag_resource, ResourceArn=arn, TagKeys=[key])
        return "left protection on (RevertOnDelete is false)"

    if mine.detector == "C" and not ledgers:
        if _refused_as_member(budget, "DeleteDetector", gd.delete_detector, DetectorId=detector_id):
            return _forget(gd, budget, arn, key, "an administrator account manages the detector now; left it as is")
        return "deleted the detector this stack created"

    others_need = frozenset().union(*(lg.needs for lg in ledgers.values()))
    status = feature_status(detector)
    to_disable = sorted(n for n in mine.turned_on if n not in others_need and status.get(n) == "ENABLED")
    request: dict[str, Any] = {}
    if to_disable:
        request["Features"] = _features(to_disable, "DISABLED")
    if not ledgers:
        if mine.detector == "E" and detector.get("Status") == "ENABLED":
            request["Enable"] = False
        if mine.prior_frequency and mine.prior_frequency != detector.get("FindingPublishingFrequency"):
            request["FindingPublishingFrequency"] = mine.prior_frequency
    if request and _refused_as_member(budget, "UpdateDetector", gd.update_detector, DetectorId=detector_id, **request):
        return _forget(gd, budget, arn, key, "an administrator account manages the detector now; left it as is")
    handed = _hand_over(ledgers, replace(mine, turned_on=mine.turned_on & others_need))
    if handed:
        _call(budget, "TagResource", gd.tag_resource, ResourceArn=arn, Tags=handed)
    _call(budget, "UntagResource", gd.untag_resource, ResourceArn=arn, TagKeys=[key])
    disabled_detector = ", disabled the detector" if request.get("Enable") is False else ""
    return f"reverted: disabled {to_disable or 'no features'}{disabled_detector}"


def _refused_as_member(budget: Budget, action: str, fn: Callable[..., Any], **kwargs: Any) -> bool:
    """Run a Delete-time change; True if an administrator account refused it (the account joined one later).

    A stack must stay deletable: a member account cannot change what its administrator manages, so
    Delete leaves the detector as it is and succeeds instead of failing the stack forever.
    """
    budget.check(action)
    try:
        fn(**kwargs)
    except ClientError as err:
        if _is_member_refusal(err):
            logger.warning(
                "An administrator account manages GuardDuty now; leaving the detector as it is",
                extra={"action": action, "reason": err.response.get("Error", {}).get("Message", "")},
            )
            return True
        raise api_error(err, action) from err
    return False


def _forget(gd: GuardDutyClient, budget: Budget, arn: str, key: str, result: str) -> str:
    try:
        budget.check("UntagResource")
        gd.untag_resource(ResourceArn=arn, TagKeys=[key])
    except (ClientError, ControlPlaneError) as err:
        # Best effort: a stale ledger only keeps features on, which is the safe direction.
        logger.warning("Could not remove this stack's GuardDuty ledger tag", extra={"error": str(err)})
    return result
