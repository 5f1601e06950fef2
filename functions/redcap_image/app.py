"""Custom::RedcapImage: thin crhelper handler (polling mode) over redcap_ctl.image_build.

Create/Update check the release zip and start at most one CodeBuild build (none when the image
already exists); crhelper then re-invokes this function every minute through an EventBridge
rule until a poll returns the digest-pinned image (after the pre-upgrade snapshot) or raises.
"""

from __future__ import annotations

from typing import Any

from redcap_ctl.custom_resource import make_polling_helper
from redcap_ctl.observability import logger

helper = make_polling_helper()

try:
    from redcap_ctl import clients, image_build

    aws = image_build.Clients(
        s3=clients.client("s3"),
        ecr=clients.client("ecr"),
        codebuild=clients.client("codebuild"),
        lambda_=clients.client("lambda"),
        rds=clients.client("rds"),
        cloudformation=clients.client("cloudformation"),
    )
except Exception as err:  # noqa: BLE001 -- any import-time failure must reach CloudFormation as FAILED, not a hang
    helper.init_failure(err)


@helper.create
@helper.update
def on_create_or_update(event: dict[str, Any], _context: Any) -> str:
    props = image_build.parse_props(event["ResourceProperties"])
    # An Update may be CloudFormation undoing a failed update: then no snapshot (see image_build).
    rolling_back = event["RequestType"] == "Update" and image_build.stack_rolling_back(
        aws.cloudformation, str(event["StackId"])
    )
    state = image_build.begin(
        aws, props, str(event["RequestId"]), event.get("PhysicalResourceId"), rolling_back=rolling_back
    )
    logger.info("image build begun", extra={k: v for k, v in state.items() if k != "PreviousVersion"})
    helper.Data.update(state)
    # crhelper keeps this id aside and starts polling; the final id comes from the last poll.
    return str(event.get("PhysicalResourceId") or f"{props.repository_uri}:pending")


@helper.poll_create
@helper.poll_update
def on_poll(event: dict[str, Any], _context: Any) -> str | None:
    props = image_build.parse_props(event["ResourceProperties"])
    # crhelper writes the rule's input once: every poll starts again from the state that
    # Create/Update returned, and advance() re-derives the rest (build status, image, snapshot).
    state = {k: str(v) for k, v in helper.Data.items() if k != "PhysicalResourceId"}
    done = image_build.advance(aws, props, state)
    if done is None:
        logger.info("image not ready yet", extra={"stage": state.get("Stage"), "build_id": state.get("BuildId")})
        return None
    helper.Data.clear()
    helper.Data.update(done.data)
    logger.info("image ready", extra=done.data)
    return done.physical_id


@helper.delete
def on_delete(event: dict[str, Any], _context: Any) -> None:
    # Images are the history a rollback (one parameter change back) reuses: this resource never deletes
    # them. The repository's DeletionPolicy decides when the stack goes (prod retains it; dev deletes it
    # with its images, EmptyOnDelete).
    logger.info("leaving the images in ECR", extra={"physical_resource_id": event.get("PhysicalResourceId")})


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> None:
    logger.append_keys(
        request_type=event.get("RequestType"),
        logical_resource_id=event.get("LogicalResourceId"),
        poll=bool(event.get("CrHelperPoll")),
    )
    helper(event, context)
