"""moto's GuardDuty, corrected where it differs from AWS in ways our function depends on.

moto 5.2.5 allows a second detector per account and Region, leaves unlisted
features out at CreateDetector (AWS enables every feature except the
runtime-monitoring pair) and replaces the whole feature list on UpdateDetector
(AWS merges by name). These wrappers restore AWS's behaviour; the GuardDuty
tests install them with ``monkeypatch``, ``make local`` for its whole run.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from moto.core.exceptions import JsonRESTError

# What AWS's CreateDetector turns on when the request does not mention it.
ALL_AT_CREATE = frozenset(
    {"S3_DATA_EVENTS", "EKS_AUDIT_LOGS", "EBS_MALWARE_PROTECTION", "RDS_LOGIN_EVENTS", "LAMBDA_NETWORK_LOGS"}
)


def aws_create_detector(original: Callable[..., str]) -> Callable[..., str]:
    def create_detector(self: Any, enable: Any, freq: Any, data_sources: Any, tags: Any, features: Any) -> str:
        if self.detectors:
            raise JsonRESTError(
                "BadRequestException",
                "The request is rejected because a detector already exists for the current account.",
            )
        given = {f["name"] for f in features or []}
        filled = list(features or []) + [{"name": n, "status": "ENABLED"} for n in sorted(ALL_AT_CREATE - given)]
        return original(self, enable, freq, data_sources, tags, filled)

    return create_detector


def aws_update_detector(original: Callable[..., None]) -> Callable[..., None]:
    def update(self: Any, enable: Any, freq: Any, data_sources: Any, features: Any) -> None:
        if features is not None:
            merged = {f["name"]: f for f in copy.deepcopy(self.features)}
            for f in features:
                merged[f["name"]] = {**merged.get(f["name"], {}), **f}
            features = list(merged.values())
        original(self, enable, freq, data_sources, features)

    return update
