"""crhelper configured once for every custom resource in this stack.

- ``sleep_on_delete=0``: crhelper's default 120 s pause on Delete only delays
  stack deletion; our Deletes wait for the real condition instead.
- ``json_logging=False`` and explicit levels: crhelper otherwise rewrites the
  root logger on every call and fights Powertools' structured logging.
- crhelper itself answers FAILED shortly before the Lambda times out, so a
  stack never waits for CloudFormation's one-hour timeout.
"""

from __future__ import annotations

import os

from crhelper import CfnResource


def make_helper() -> CfnResource:
    return CfnResource(
        json_logging=False,
        log_level=os.environ.get("POWERTOOLS_LOG_LEVEL", "INFO"),
        boto_level="WARNING",
        sleep_on_delete=0,
    )
