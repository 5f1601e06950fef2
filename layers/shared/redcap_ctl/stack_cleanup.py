"""Custom::DevStackCleanup: what a dev stack holds that CloudFormation did not create, removed on Delete.

CloudFormation cannot delete a bucket that holds objects, nor an IAM user that holds access
keys. In a dev stack both happen: REDCap stores files (and the first rotation's S3 probe writes
one), and the key rotation function (not CloudFormation) creates the users' keys. The resource
exists only in dev (prod retains its buckets) and references the buckets and users, so
CloudFormation deletes it first; its Delete then:

1. stops server access logging of each ``LoggedBuckets`` bucket (the template passes none since
   issue 17: dev has no access logging, because S3 delivers access logs best effort and hours
   late, so a log bucket emptied here could receive objects again before CloudFormation deletes it);
2. deletes every object version and delete marker of each bucket (unversioned objects are
   the ``null`` version);
3. deletes every access key of each user.

Each step treats "already gone" as done, so a repeated Delete, or a Delete after a failed
Create, succeeds. Create and Update change nothing.

CloudFormation also sends Delete when the resource merely leaves the template -- for example a
dev stack updated to ``Environment=prod``, which must keep every file. So Delete cleans only while
the stack itself is going: ``DELETE_IN_PROGRESS``, or ``ROLLBACK_IN_PROGRESS`` (a first create
being undone). In any other state it changes nothing and says so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from redcap_ctl.budget import Budget
from redcap_ctl.errors import ControlPlaneError, InputError

if TYPE_CHECKING:
    from mypy_boto3_cloudformation import CloudFormationClient
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_s3 import S3Client

logger = Logger(child=True)

# Seconds kept back for each S3/IAM call and the answer to CloudFormation.
CALL_RESERVE_S = 10.0
_BATCH = 1000  # DeleteObjects takes at most 1000 keys
_KNOWN = {"ServiceToken", "Buckets", "LoggedBuckets", "Users"}
# The stack states in which the stack itself is going away (everything in it will be deleted).
STACK_GOING = frozenset({"DELETE_IN_PROGRESS", "ROLLBACK_IN_PROGRESS"})


@dataclass(frozen=True)
class Settings:
    buckets: tuple[str, ...]
    logged_buckets: tuple[str, ...]
    users: tuple[str, ...]


@dataclass(frozen=True)
class Removed:
    objects: int
    keys: int


def _names(props: Mapping[str, Any], field: str) -> tuple[str, ...]:
    value = props.get(field, [])
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise InputError(field, "must be a list of names")
    return tuple(value)


def parse_settings(props: Mapping[str, Any]) -> Settings:
    unknown = sorted(set(props) - _KNOWN)
    if unknown:
        raise InputError(unknown[0], "unknown property")
    settings = Settings(_names(props, "Buckets"), _names(props, "LoggedBuckets"), _names(props, "Users"))
    stray = sorted(set(settings.logged_buckets) - set(settings.buckets))
    if stray:
        raise InputError("LoggedBuckets", f"{stray[0]} is not one of Buckets")
    return settings


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def stop_access_logging(s3: S3Client, bucket: str) -> None:
    try:
        s3.put_bucket_logging(Bucket=bucket, BucketLoggingStatus={})
    except ClientError as err:
        if _code(err) != "NoSuchBucket":
            raise ControlPlaneError(f"stopping access logging of {bucket}: {_code(err)}") from err


def empty_bucket(s3: S3Client, bucket: str, budget: Budget) -> int:
    """Delete every version and delete marker in ``bucket``; the number deleted (0 if it is gone)."""
    deleted = 0
    try:
        # Always list from the start: what was just deleted is gone, so no marker can go stale.
        while True:
            page = s3.list_object_versions(Bucket=bucket, MaxKeys=_BATCH)
            batch = [
                {"Key": item["Key"], "VersionId": item["VersionId"]}
                for item in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
            ]
            if not batch:
                return deleted
            budget.check(f"empty bucket {bucket}")
            answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": batch[:_BATCH], "Quiet": True})  # type: ignore[typeddict-item]
            errors = answer.get("Errors", [])
            if errors:
                raise ControlPlaneError(
                    f"emptying {bucket}: {len(errors)} object(s) not deleted, first {errors[0].get('Code')}"
                )
            deleted += len(batch[:_BATCH])
    except ClientError as err:
        if _code(err) == "NoSuchBucket":
            return deleted
        raise ControlPlaneError(f"emptying {bucket}: {_code(err)}") from err


def delete_access_keys(iam: IAMClient, user: str, budget: Budget) -> int:
    """Delete every access key of ``user``; the number deleted (0 if the user is gone)."""
    deleted = 0
    try:
        keys = [k["AccessKeyId"] for k in iam.list_access_keys(UserName=user)["AccessKeyMetadata"]]
        for key_id in keys:
            budget.check(f"delete the access keys of {user}")
            try:
                iam.delete_access_key(UserName=user, AccessKeyId=key_id)
            except ClientError as err:
                if _code(err) != "NoSuchEntity":
                    raise
                continue  # deleted in between: nothing left to do
            deleted += 1
            logger.info("Access key deleted", extra={"user": user, "key_id_suffix": key_id[-4:]})
    except ClientError as err:
        if _code(err) == "NoSuchEntity":
            return deleted
        raise ControlPlaneError(f"deleting the access keys of {user}: {_code(err)}") from err
    return deleted


def stack_is_going(cloudformation: CloudFormationClient, stack_id: str) -> tuple[bool, str]:
    """Whether the stack is being deleted (or its first create rolled back), and its status."""
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_id)["Stacks"]
    except ClientError as err:
        raise ControlPlaneError(f"reading the stack's status: {_code(err)}") from err
    status = str(stacks[0]["StackStatus"]) if stacks else "UNKNOWN"
    return status in STACK_GOING, status


def clean(s3: S3Client, iam: IAMClient, settings: Settings, budget: Budget) -> Removed:
    for bucket in settings.logged_buckets:
        stop_access_logging(s3, bucket)
    # Logged buckets first: their last operations may still deliver logs to the others.
    ordered = [*settings.logged_buckets, *[b for b in settings.buckets if b not in settings.logged_buckets]]
    objects = sum(empty_bucket(s3, bucket, budget) for bucket in ordered)
    keys = sum(delete_access_keys(iam, user, budget) for user in settings.users)
    return Removed(objects=objects, keys=keys)
