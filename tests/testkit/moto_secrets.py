"""One AWS-faithful correction of moto 5.2.5's Secrets Manager, for the tests and ``make local``.

AWS's ListSecretVersionIds reports each version's own ``CreatedDate``; moto reports the time of
the call for every version. The key-hygiene check reads a secret's age from that date (instead
of reading the secret's value), so moto is corrected to answer with the version's creation time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from moto.secretsmanager import models as sm_models


def aws_list_secret_version_ids(original: Callable[..., str]) -> Callable[..., str]:
    def list_secret_version_ids(self: Any, secret_id: str) -> str:
        answer = json.loads(original(self, secret_id))
        versions = self.secrets[secret_id].versions
        for entry in answer["Versions"]:
            entry["CreatedDate"] = versions[entry["VersionId"]]["createdate"]
        return json.dumps(answer)

    return list_secret_version_ids


def apply(monkeypatch: Any | None = None) -> None:
    """Install the correction (through ``monkeypatch`` when given, so a test undoes it)."""
    backend = sm_models.SecretsManagerBackend
    patched = aws_list_secret_version_ids(backend.list_secret_version_ids)
    if monkeypatch is not None:
        monkeypatch.setattr(backend, "list_secret_version_ids", patched)
    else:
        backend.list_secret_version_ids = patched  # type: ignore[method-assign]
