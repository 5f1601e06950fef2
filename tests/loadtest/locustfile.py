"""REDCap journeys for Locust (``make load`` / ``make load-local``; docs/performance.md).

Each simulated visitor runs four journeys, weighted like a survey-heavy site:

- the login page (``/``);
- a survey page (``/surveys/?s=<hash>``: LOAD_SURVEY_HASH, else a made-up hash);
- a static asset of the installed version folder (``Resources/css/style.css``);
- the API (``POST /api/`` with a made-up token: REDCap answers 403 "You do not have permissions
  to use the API", which counts as served; the stand-in release answers the same).

Pacing: LOAD_RPS_PER_USER (set by ``loadtest.run`` from WAF's rate limit) makes every visitor send
at most that many requests per second (Locust's ``constant_throughput``); without it, visitors send
back to back (local runs, where there is no WAF).
"""

from __future__ import annotations

import os
import re

from locust import HttpUser, constant, constant_throughput, task

# A REDCap API token is 32 hexadecimal characters; this one belongs to nobody.
BOGUS_API_TOKEN = "0" * 31 + "B"
# The image redirects any other version folder to the installed one (redcap.conf RewriteRule):
# asking for this one tells the visitor which version is installed.
_PROBE_VERSION = "0.0.0"
_VERSION_FOLDER = re.compile(r"/redcap_v(\d+\.\d+\.\d+)/")

_pace = float(os.environ.get("LOAD_RPS_PER_USER", "0") or 0)


class RedcapVisitor(HttpUser):
    wait_time = constant_throughput(_pace) if _pace > 0 else constant(0)
    version_folder = ""
    survey_hash = os.environ.get("LOAD_SURVEY_HASH", "") or "LOADTEST00"

    def on_start(self) -> None:
        with self.client.get(
            f"/redcap_v{_PROBE_VERSION}/Resources/css/style.css",
            allow_redirects=False,
            name="(version probe)",
            catch_response=True,
        ) as resp:
            match = _VERSION_FOLDER.search(resp.headers.get("Location", ""))
            if resp.status_code == 302 and match:
                self.version_folder = f"/redcap_v{match.group(1)}"
                resp.success()
            else:
                resp.failure(f"no redirect to the installed version folder (HTTP {resp.status_code})")

    @task(3)
    def login_page(self) -> None:
        self.client.get("/", name="login page")

    @task(4)
    def survey_page(self) -> None:
        with self.client.get(f"/surveys/?s={self.survey_hash}", name="survey page", catch_response=True) as resp:
            # A made-up hash: whatever REDCap answers short of a server error is a served page.
            if resp.status_code == 200 or (not os.environ.get("LOAD_SURVEY_HASH") and resp.status_code < 500):
                resp.success()
            else:
                resp.failure(f"HTTP {resp.status_code}")

    @task(4)
    def static_asset(self) -> None:
        if self.version_folder:
            self.client.get(f"{self.version_folder}/Resources/css/style.css", name="static asset")

    @task(1)
    def api(self) -> None:
        data = {"token": BOGUS_API_TOKEN, "content": "version", "format": "json"}
        with self.client.post("/api/", data=data, name="API (unknown token)", catch_response=True) as resp:
            if resp.status_code in (401, 403):
                resp.success()
            else:
                resp.failure(f"expected 401/403 for an unknown token, got HTTP {resp.status_code}")
