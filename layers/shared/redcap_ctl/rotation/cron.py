"""The ``cron-header`` kind: the SecretString is the header value WAF checks.

WAF is widened to {AWSCURRENT, AWSPENDING} before the switch (setSecret) and
narrowed to the new value right after (finishSecret). Narrowing at once cannot
fail a tick: the cron caller re-reads the secret and retries when WAF answers
403, and the secret already holds the new value when WAF drops the old one.
"""

from __future__ import annotations

import secrets as pysecrets

from aws_lambda_powertools import Logger

from redcap_ctl import waf
from redcap_ctl.rotation.clients import RotationClients
from redcap_ctl.rotation.config import RotationConfig
from redcap_ctl.rotation.values import CURRENT, PENDING, RotationError, get_value

logger = Logger(child=True)

# token_urlsafe(32) yields 43 characters of [A-Za-z0-9_-]: well above the 32 required.
TOKEN_BYTES = 32
MIN_LENGTH = 32


def new_header_value() -> str:
    return pysecrets.token_urlsafe(TOKEN_BYTES)


def _ref(config: RotationConfig) -> waf.PatternSetRef:
    if config.pattern_set is None:
        raise RotationError("cron-header rotation needs CRON_PATTERN_SET_ARN")
    return config.pattern_set


def _pending(clients: RotationClients, secret_id: str, token: str) -> str:
    value = get_value(clients.secrets, secret_id, stage=PENDING, version_id=token)
    if value is None:
        raise RotationError("the AWSPENDING version has no value; createSecret did not run")
    return value


def create(secret_id: str, token: str, clients: RotationClients) -> str:
    current = get_value(clients.secrets, secret_id, stage=CURRENT)
    pending = get_value(clients.secrets, secret_id, stage=PENDING, version_id=token)
    # A copy of AWSCURRENT is a placeholder (how emulated rotations stage a version), not a new value.
    if pending is not None and pending != current and len(pending) >= MIN_LENGTH:
        return "pending-exists"
    clients.secrets.put_secret_value(
        SecretId=secret_id, ClientRequestToken=token, SecretString=new_header_value(), VersionStages=[PENDING]
    )
    logger.info("staged a new cron header value")
    return "created"


def widen(secret_id: str, token: str, config: RotationConfig, clients: RotationClients) -> str:
    current = get_value(clients.secrets, secret_id, stage=CURRENT)
    values = [v for v in (current, _pending(clients, secret_id, token)) if v]
    waf.accept_only(clients.need_wafv2(), _ref(config), values)
    logger.info("WAF accepts the current and the pending cron header")
    return "waf-widened"


def verify(secret_id: str, token: str, config: RotationConfig, clients: RotationClients) -> str:
    if not waf.accepted(clients.need_wafv2(), _ref(config), _pending(clients, secret_id, token)):
        raise RotationError("WAF does not accept the pending cron header; setSecret did not take effect")
    return "waf-accepts-pending"


def narrow(secret_id: str, config: RotationConfig, clients: RotationClients) -> str:
    current = get_value(clients.secrets, secret_id, stage=CURRENT)
    if current is None:
        raise RotationError("the secret has no AWSCURRENT value")
    waf.accept_only(clients.need_wafv2(), _ref(config), [current])
    logger.info("WAF accepts only the new cron header")
    return "waf-narrowed"
