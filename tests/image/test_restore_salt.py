"""Restore: a database restored with another deployment's salt is refused at boot (issue 18 item 6).

The image keeps an HMAC of a fixed text keyed with DB_SALT in its state table (rc_image_state);
a boot with a different salt exits with one log line naming the problem and the fix, never the salt.
"""

from __future__ import annotations

import json
import secrets

from testkit.image_harness import MariaDB

from .conftest import Database
from .test_image import wait_ready

FINGERPRINT = "SELECT value FROM rc_image_state WHERE name = 'salt_fingerprint'"


def test_a_restored_database_with_the_wrong_salt_stops_the_boot_with_the_fix(
    make_container, mariadb: MariaDB, database: Database
):
    first = make_container()
    wait_ready(first)
    salt = first.env["DB_SALT"]
    ((stored,),) = mariadb.sql(FINGERPRINT, database.name)
    assert stored.startswith("hmac-sha256:")
    assert salt not in stored
    first.remove()

    # The same database under a new deployment that generated its own salt.
    other_salt = "s4lt" + secrets.token_hex(16)
    wrong = make_container(env={"DB_SALT": other_salt})
    assert wrong.wait_exit(timeout=60) == 69
    logs = wrong.logs()
    errors = [json.loads(line) for line in logs.splitlines() if line.startswith("{") and '"level":"error"' in line]
    assert len(errors) == 1, logs
    message = errors[0]["error"]
    assert message.startswith("RcWrongSalt: DB_SALT is not the salt this database was written with")
    assert "DbSaltSecretArn" in message
    assert 'docs/runbook.md "Restore"' in message
    assert other_salt not in logs
    assert salt not in logs
    # Nothing was changed: the fingerprint is still the first deployment's.
    assert mariadb.sql(FINGERPRINT, database.name) == [[stored]]

    # With the right salt (DbSaltSecretArn) the restored REDCap starts.
    right = make_container(env={"DB_SALT": salt})
    wait_ready(right)
    assert '"outcome":"already-configured"' in right.logs()


def test_a_database_from_before_the_fingerprint_gets_one(make_container, mariadb: MariaDB, database: Database):
    first = make_container()
    wait_ready(first)
    ((stored,),) = mariadb.sql(FINGERPRINT, database.name)
    first.remove()
    mariadb.sql("DELETE FROM rc_image_state WHERE name = 'salt_fingerprint'", database.name)

    again = make_container(env={"DB_SALT": first.env["DB_SALT"]})
    wait_ready(again)
    assert "salt fingerprint recorded in rc_image_state" in again.logs()
    assert mariadb.sql(FINGERPRINT, database.name) == [[stored]]
