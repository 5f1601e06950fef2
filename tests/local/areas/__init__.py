"""One module per Lambda area: provision what it acts on, run its handler, check the effect.

Each module has ``scenario(local, run)`` (the ``make local`` steps) and
``bench_cases(local, capture)`` (the first event each function serves in the
cold-start benchmark); ``bench_extras(local, runs)`` is optional.
"""

from __future__ import annotations

from types import ModuleType

from local.areas import (
    cron,
    custom_domain,
    database,
    express_canary,
    express_idle_timeout,
    guardduty,
    redcap_image,
    rotation,
)

# Order matters: rotation rotates the cron secret and then runs the next tick.
AREAS: dict[str, ModuleType] = {
    "database": database,
    "custom-domain": custom_domain,
    "express-canary": express_canary,
    "express-idle-timeout": express_idle_timeout,
    "guardduty": guardduty,
    "cron": cron,
    "rotation": rotation,
    "redcap-image": redcap_image,
}
