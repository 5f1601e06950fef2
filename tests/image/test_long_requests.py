"""The image seeds REDCap's background-job switches on at the first install and never again (issue 18 item 2)."""

from __future__ import annotations

from .test_image import config, wait_ready

# REDCap 15.7.6: Classes/BulkRecordDelete.php offers the background delete only when this is '1'.
SWITCH = "bulk_record_delete_enable_global"


def test_background_job_switches_are_seeded_on_once_and_the_control_center_keeps_its_choice(
    make_container, mariadb, database
):
    c = make_container()
    wait_ready(c)
    assert config(mariadb, database)[SWITCH] == "1"
    c.remove()
    # An administrator turns it off in the Control Center; later boots leave it off.
    mariadb.sql(
        "UPDATE redcap_config SET value = '0' WHERE field_name = 'bulk_record_delete_enable_global';", database.name
    )
    again = make_container()
    wait_ready(again)
    assert '"outcome":"already-configured"' in again.logs()
    assert config(mariadb, database)[SWITCH] == "0"
