"""Parsing of environment variables and custom-resource properties.

Everything fails fast with an :class:`~redcap_ctl.errors.InputError` naming the
field: no silent defaults for required values, and CloudFormation booleans are
compared exactly (``"true"``/``"false"``), never with ``in`` or truthiness.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from redcap_ctl.errors import InputError


def parse_from_env[T](environ: Mapping[str, str], fields: Mapping[str, str], parse: Callable[[dict[str, Any]], T]) -> T:
    """Custom-resource properties read from the environment (``fields``: property -> variable), so a
    function invoked outside CloudFormation parses the same way; an error names the variable."""
    try:
        return parse({field: environ.get(name, "") for field, name in fields.items()})
    except InputError as err:
        raise InputError(fields.get(err.field, err.field), err.problem) from None


def require_env(name: str, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    value = env.get(name, "").strip()
    if not value:
        raise InputError(name, "environment variable is required")
    return value


def optional_env(name: str, default: str, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    value = env.get(name, "").strip()
    return value or default


def parse_bool(value: Any, field: str, default: bool | None = None) -> bool:
    """Parse a CloudFormation-style boolean: ``"true"`` or ``"false"`` (any case)."""
    if value is None or value == "":
        if default is None:
            raise InputError(field, 'is required and must be "true" or "false"')
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text == "true":
        return True
    if text == "false":
        return False
    raise InputError(field, f'must be "true" or "false", got {str(value)[:40]!r}')


def parse_int(value: Any, field: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise InputError(field, f"must be an integer, got {str(value)[:40]!r}") from None
    if minimum is not None and number < minimum:
        raise InputError(field, f"must be at least {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise InputError(field, f"must be at most {maximum}, got {number}")
    return number


def require_str(props: Mapping[str, Any], field: str) -> str:
    value = props.get(field)
    if not isinstance(value, str) or not value.strip():
        raise InputError(field, "is required")
    return value.strip()


def require_match(props: Mapping[str, Any], field: str, pattern: re.Pattern[str], problem: str) -> str:
    """``require_str``, then the whole value must match ``pattern``; else ``problem`` names what it must be."""
    value = require_str(props, field)
    if not pattern.fullmatch(value):
        raise InputError(field, problem)
    return value
