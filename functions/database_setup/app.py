"""Custom::RedcapDatabase and Custom::RedcapBaseUrl: thin crhelper handler over redcap_ctl.database."""

from __future__ import annotations

from typing import Any

from redcap_ctl.budget import Budget
from redcap_ctl.custom_resource import make_helper
from redcap_ctl.observability import logger

helper = make_helper()

try:
    from redcap_ctl import clients, database
    from redcap_ctl.errors import InputError
    from redcap_ctl.image_build import stack_rolling_back

    rds_data = clients.client("rds-data")
    secretsmanager = clients.client("secretsmanager")
    cloudformation = clients.client("cloudformation")
except Exception as err:  # noqa: BLE001 -- any import-time failure must reach CloudFormation as FAILED, not a hang
    helper.init_failure(err)

# Seconds kept back for answering CloudFormation.
MARGIN = 20.0


def _budget(context: Any) -> Budget:
    return Budget(context.get_remaining_time_in_millis, MARGIN)


def _is_base_url(event: dict[str, Any]) -> bool:
    return str(event.get("ResourceType", "")) == "Custom::RedcapBaseUrl"


@helper.create
@helper.update
def on_create_or_update(event: dict[str, Any], context: Any) -> str:
    props = event["ResourceProperties"]
    if _is_base_url(event):
        new = database.parse_base_url_props(props)
        previous: str | None = None
        if event.get("RequestType") == "Update":
            try:
                previous = database.parse_base_url_props(event.get("OldResourceProperties", {})).base_url
            except InputError:
                previous = None
        outcome = database.set_base_url(rds_data, new, previous, _budget(context))
        logger.info("redcap_base_url", extra={"outcome": outcome, "base_url": new.base_url})
        helper.Data.update({"BaseUrl": new.base_url, "Outcome": outcome})
        return f"{new.target.database}/redcap_base_url"
    if event.get("RequestType") == "Update":
        stack_id = str(event.get("StackId", ""))
        database.refuse_snapshot_change(
            event.get("OldResourceProperties", {}), props, lambda: stack_rolling_back(cloudformation, stack_id)
        )
    parsed = database.parse_database_props(props)
    helper.Data.update(database.ensure_database(rds_data, secretsmanager, parsed, _budget(context)))
    logger.info("database ready for REDCap", extra={"database": parsed.target.database, "user": parsed.iam_user})
    return f"{parsed.target.database}/{parsed.iam_user}"


@helper.delete
def on_delete(event: dict[str, Any], _context: Any) -> None:
    # Deliberately nothing: the schema and its user hold research data. In dev the cluster
    # goes with the stack; in prod it is retained with its users, ready for a restore.
    logger.info("leaving the database and its users in place", extra={"resource": event.get("LogicalResourceId")})


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> None:
    logger.append_keys(request_type=event.get("RequestType"), logical_resource_id=event.get("LogicalResourceId"))
    helper(event, context)
