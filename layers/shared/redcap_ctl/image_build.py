"""Custom::RedcapImage: build the REDCap image in CodeBuild, pin it by digest, snapshot before upgrades.

Snapshot only for an upgrade (a newer REDCap version than the running one) and never while CloudFormation
rolls an update back (``is_upgrade``, ``stack_rolling_back``; docs/image-build.md, "Rollback").

Plain functions over boto3 clients; ``functions/redcap_image/app.py`` wires them to crhelper's
polling mode. The state that must survive between polls lives in a small JSON-safe dict
(crhelper carries it from one invocation to the next in the EventBridge rule's input).

How an image is found again without building: the build context reaches CodeBuild as a Lambda
layer version (``containers/``, published by ``sam deploy``), the release zip is an S3 object.
The *source tag* ``src-<hash>`` is a hash of the layer's ``CodeSha256``, the zip's location and
ETag, and the target platform: everything that decides what ``build.sh`` builds, except the RDS
CA bundle that the build downloads. Every build pushes two immutable tags on one image: the
human tag ``<REDCap version>-<CONTEXT_HASH>`` that ``build.sh`` prints, and the source tag. A
Create or Update whose source tag already exists in ECR reuses that image (a rollback, a stack
update that did not touch the image) and starts no build.

External modules and language files (``ExtensionsS3Prefix``, optional): the build bakes every
object under that prefix into the image (``containers/redcap/extensions.py`` checks them), so the
source tag also covers a fingerprint of the prefix's listing (each key with its ETag and size): a
changed, added or removed module is a new source tag and a new build; an unchanged prefix reuses
the image. Without the parameter the source tag is what it always was.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError

from redcap_ctl.config import require_match, require_str
from redcap_ctl.errors import ControlPlaneError, InputError

if TYPE_CHECKING:
    from mypy_boto3_lambda import LambdaClient
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_s3 import S3Client

logger = Logger(child=True)

# No mypy_boto3 stubs for CodeBuild and ECR in the pinned test environment: typed as Any.
CodeBuildClient = Any
ECRClient = Any

SOURCE_PARAMETER = "RedcapSourceZip"
EXTENSIONS_PARAMETER = "ExtensionsS3Prefix"
# One folder level under the bucket: the build role's s3:prefix condition is derived from it in the
# template, and CloudFormation can only split off a fixed number of path segments.
_EXTENSIONS_URL = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/([A-Za-z0-9_-][A-Za-z0-9._-]*/)$")
_S3_URL = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.+)$")
_REPO_URI = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?/([a-z0-9._/-]+)$")
_LAYER_ARN = re.compile(r"^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:layer:[A-Za-z0-9_-]+:\d+$")
_PROJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,254}$")
_PLATFORM = re.compile(r"^linux/(amd64|arm64)$")
_CLUSTER_ID = re.compile(r"^[a-zA-Z][a-zA-Z0-9-]{0,62}$")
VERSION_TAG = re.compile(r"^(\d+\.\d+\.\d+)-([0-9a-f]{12})$")
_PHYSICAL_VERSION = re.compile(r":(\d+\.\d+\.\d+)-[0-9a-f]{12}$")

# CodeBuild's terminal build statuses; anything else is still running.
_FAILED = {"FAILED", "FAULT", "TIMED_OUT", "STOPPED"}
_RUNNING = {"IN_PROGRESS"}
# crhelper keeps only the last 240 characters of a longer reason.
REASON_LIMIT = 250


class ImageBuildError(ControlPlaneError):
    """The build (or the snapshot before the rollout) failed; the message says where."""


@dataclass(frozen=True)
class S3Location:
    bucket: str
    key: str

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class ImageProps:
    source_zip: S3Location
    repository_uri: str
    project_name: str
    context_layer_arn: str
    platform: str
    build_timeout_minutes: int
    cluster_id: str | None
    extensions: S3Location | None = None

    @property
    def repository_name(self) -> str:
        return self.repository_uri.split("/", 1)[1]


@dataclass(frozen=True)
class Image:
    digest: str
    tag: str
    version: str


def parse_props(props: Mapping[str, Any]) -> ImageProps:
    zip_url = require_str(props, SOURCE_PARAMETER)
    match = _S3_URL.fullmatch(zip_url)
    if not match or not zip_url.endswith(".zip"):
        raise InputError(SOURCE_PARAMETER, "must be s3://BUCKET/KEY.zip, the REDCap release zip you uploaded")
    repo = require_match(props, "RepositoryUri", _REPO_URI, "must be ACCOUNT.dkr.ecr.REGION.amazonaws.com/NAME")
    project = require_match(props, "ProjectName", _PROJECT, "must be a CodeBuild project name")
    layer = require_match(props, "ContextLayerArn", _LAYER_ARN, "must be a Lambda layer version ARN")
    platform = require_match(props, "Platform", _PLATFORM, "must be linux/amd64 or linux/arm64")
    try:
        timeout = int(str(props.get("BuildTimeoutMinutes", "")))
    except ValueError:
        raise InputError("BuildTimeoutMinutes", "must be a whole number of minutes") from None
    if not 5 <= timeout <= 480:
        raise InputError("BuildTimeoutMinutes", "must be between 5 and 480")
    cluster = props.get("DbClusterIdentifier") or None
    if cluster is not None and (not isinstance(cluster, str) or not _CLUSTER_ID.fullmatch(cluster)):
        raise InputError("DbClusterIdentifier", "must be an Aurora cluster identifier")
    extensions = None
    prefix_url = props.get(EXTENSIONS_PARAMETER) or ""
    if prefix_url:
        found = _EXTENSIONS_URL.fullmatch(str(prefix_url))
        if not found:
            raise InputError(EXTENSIONS_PARAMETER, "must be empty or s3://BUCKET/PREFIX/ (one folder, ending in /)")
        extensions = S3Location(found.group(1), found.group(2))
    return ImageProps(
        S3Location(match.group(1), match.group(2)), repo, project, layer, platform, timeout, cluster, extensions
    )


# ----- Inputs ---------------------------------------------------------------------------


def check_source_zip(s3: S3Client, location: S3Location) -> str:
    """The zip's ETag; a missing or unreadable object fails naming the parameter, before any build."""
    try:
        head = s3.head_object(Bucket=location.bucket, Key=location.key)
    except ClientError as err:
        code = str(err.response.get("Error", {}).get("Code", ""))
        status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in ("404", "NoSuchKey", "NoSuchBucket", "NotFound"):
            problem = "no such object"
        elif code in ("403", "AccessDenied", "Forbidden") or status == 403:
            problem = "not readable by the stack (access denied: is it in this account, without a foreign KMS key?)"
        else:
            problem = f"cannot be read ({code or status})"
        raise InputError(SOURCE_PARAMETER, f"{location.url}: {problem}") from None
    return str(head["ETag"]).strip('"')


def context_sha256(lambda_client: LambdaClient, layer_arn: str) -> str:
    """The build context's content hash, as Lambda recorded it for the layer version."""
    name, _, number = layer_arn.rpartition(":")
    try:
        return str(lambda_client.get_layer_version(LayerName=name, VersionNumber=int(number))["Content"]["CodeSha256"])
    except ClientError as err:
        code = str(err.response.get("Error", {}).get("Code", ""))
        raise InputError("ContextLayerArn", f"cannot read the build context layer ({code})") from None


def extensions_fingerprint(s3: S3Client, prefix: S3Location) -> str:
    """A hash of what the build will bake from the prefix: every key under it with its ETag and size.

    ListObjectsV2 pages through the keys (1,000 a page); a missing or unreadable prefix fails naming
    the parameter, before any build. Folder markers (keys ending in ``/``, which the S3 console
    creates) hold nothing and are left out, as ``aws s3 cp --recursive`` leaves them out.
    """
    lines = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=prefix.bucket, Prefix=prefix.key):
            for item in page.get("Contents", []):
                key = str(item["Key"])
                if not key.endswith("/"):
                    lines.append(f"{key}\t{str(item.get('ETag', '')).strip(chr(34))}\t{item.get('Size', 0)}")
    except ClientError as err:
        code = str(err.response.get("Error", {}).get("Code", ""))
        problem = {"NoSuchBucket": "no such bucket", "AccessDenied": "not readable by the stack (access denied)"}
        raise InputError(
            EXTENSIONS_PARAMETER, f"{prefix.url}: {problem.get(code, f'cannot be listed ({code})')}"
        ) from None
    material = "\n".join(sorted(lines))
    return hashlib.sha256(material.encode()).hexdigest()


def source_tag(etag: str, context_sha: str, location: S3Location, platform: str, extensions: str = "") -> str:
    parts = ["redcap-image/1", location.url, etag, context_sha, platform]
    if extensions:
        # Only with ExtensionsS3Prefix: images built without it keep their source tag (and are reused).
        parts.append(f"extensions {extensions}")
    material = "\n".join(parts)
    return "src-" + hashlib.sha256(material.encode()).hexdigest()[:24]


def find_image(ecr: ECRClient, repository: str, tag: str) -> Image | None:
    """The image that carries ``tag``, with its version tag; None when no image has that tag."""
    try:
        found = ecr.describe_images(repositoryName=repository, imageIds=[{"imageTag": tag}])["imageDetails"]
    except ClientError as err:
        if str(err.response.get("Error", {}).get("Code", "")) == "ImageNotFoundException":
            return None
        raise
    if not found:
        return None
    detail = found[0]
    for candidate in detail.get("imageTags", []):
        match = VERSION_TAG.fullmatch(candidate)
        if match:
            return Image(str(detail["imageDigest"]), candidate, match.group(1))
    raise ImageBuildError(f"image {tag} in {repository} has no <version>-<context hash> tag")


# ----- CodeBuild ------------------------------------------------------------------------


def start_build(codebuild: CodeBuildClient, props: ImageProps, tag: str, token: str) -> str:
    env = [
        {"name": "REDCAP_SOURCE_ZIP", "value": props.source_zip.url, "type": "PLAINTEXT"},
        {"name": "SOURCE_TAG", "value": tag, "type": "PLAINTEXT"},
        {"name": "CONTEXT_LAYER_ARN", "value": props.context_layer_arn, "type": "PLAINTEXT"},
        {"name": "IMAGE_PLATFORM", "value": props.platform, "type": "PLAINTEXT"},
    ]
    if props.extensions is not None:
        env.append({"name": "EXTENSIONS_S3_PREFIX", "value": props.extensions.url, "type": "PLAINTEXT"})
    build = codebuild.start_build(
        projectName=props.project_name, idempotencyToken=token[:64], environmentVariablesOverride=env
    )["build"]
    return str(build["id"])


@dataclass(frozen=True)
class BuildStatus:
    status: str
    phase: str | None
    detail: str
    log_link: str

    @property
    def running(self) -> bool:
        return self.status in _RUNNING

    def failure(self, build_id: str) -> str:
        """One line for CloudFormation: the status, the failing phase, why, and the log."""
        head = f"image build {self.status} in phase {self.phase or 'unknown'}"
        link = f"; log: {self.log_link}" if self.log_link else f"; build {build_id}"
        room = REASON_LIMIT - len(head) - len(link) - 2
        detail = f": {self.detail[:room]}" if self.detail and room > 10 else ""
        return f"{head}{detail}{link}"


def build_status(codebuild: CodeBuildClient, build_id: str) -> BuildStatus:
    builds = codebuild.batch_get_builds(ids=[build_id]).get("builds", [])
    if not builds:
        raise ImageBuildError(f"CodeBuild no longer knows build {build_id}")
    build = builds[0]
    status = str(build.get("buildStatus", "IN_PROGRESS"))
    phase, detail = None, ""
    for item in build.get("phases", []):
        if item.get("phaseStatus") in _FAILED:
            phase = str(item.get("phaseType"))
            contexts = item.get("contexts", [])
            detail = "; ".join(str(c.get("message", "")) for c in contexts if c.get("message"))
            break
    if phase is None and status not in ("SUCCEEDED",):
        phase = str(build.get("currentPhase") or "unknown")
    return BuildStatus(status, phase, detail, str(build.get("logs", {}).get("deepLink", "")))


# ----- The snapshot before an upgrade ----------------------------------------------------


def previous_version(physical_id: str | None) -> str | None:
    """The version an Update replaces, from the physical id ``<repository uri>:<version>-<hash>``."""
    match = _PHYSICAL_VERSION.search(physical_id or "")
    return match.group(1) if match else None


def version_key(version: str) -> tuple[int, ...]:
    """``15.6.0`` -> ``(15, 6, 0)``: REDCap versions compare by their numbers, not as text."""
    return tuple(int(part) for part in version.split("."))


def is_upgrade(old: str, new: str) -> bool:
    """Whether going from REDCap ``old`` to ``new`` moves forward (only that needs a snapshot).

    A CloudFormation update rollback sends an Update with the previous properties while the physical id
    still names the newer image, so it goes back (new < old) and takes none; so does a same-version rebuild.
    """
    return version_key(new) > version_key(old)


# The stack states in which CloudFormation sends Update requests to undo an update (the "previous
# properties" come back): a snapshot then could only make the rollback fail (UPDATE_ROLLBACK_FAILED).
ROLLING_BACK = frozenset({"UPDATE_ROLLBACK_IN_PROGRESS"})


def stack_rolling_back(cloudformation: Any, stack_id: str) -> bool:
    """Whether the stack is undoing an update. Unknown (no client, an error) counts as no.

    Only a second guard: ``is_upgrade`` alone keeps a rollback from an upgrade snapshot-free; this
    catches the rollback of a failed downgrade, which goes forward again.
    """
    if cloudformation is None:
        return False
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_id)["Stacks"]
    except ClientError as err:
        logger.warning(
            "could not read the stack's status; the version rule alone decides the snapshot",
            extra={"error_code": str(err.response.get("Error", {}).get("Code", ""))},
        )
        return False
    status = str(stacks[0].get("StackStatus", "")) if stacks else ""
    return status in ROLLING_BACK


def snapshot_identifier(cluster_id: str, old: str, new: str, tag: str) -> str:
    """``<cluster>-redcap-15-5-1-to-15-6-0-<8 hex>``: both versions, unique per build input."""
    ident = f"{cluster_id}-redcap-{old.replace('.', '-')}-to-{new.replace('.', '-')}-{tag[-8:]}"
    return re.sub(r"-{2,}", "-", ident).strip("-")[:255]


def ensure_snapshot(rds: RDSClient, cluster_id: str, ident: str) -> str:
    """Start the cluster snapshot unless it exists (a retried poll); return its status."""
    try:
        snaps = rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=ident)["DBClusterSnapshots"]
    except ClientError as err:
        if str(err.response.get("Error", {}).get("Code", "")) != "DBClusterSnapshotNotFoundFault":
            raise
        snaps = []
    if snaps:
        if snaps[0].get("DBClusterIdentifier") != cluster_id:
            raise ImageBuildError(f"snapshot {ident} exists but belongs to another cluster")
        return str(snaps[0].get("Status", "creating"))
    created = rds.create_db_cluster_snapshot(
        DBClusterSnapshotIdentifier=ident,
        DBClusterIdentifier=cluster_id,
        Tags=[{"Key": "redcap:purpose", "Value": "before-upgrade"}],
    )
    return str(created["DBClusterSnapshot"].get("Status", "creating"))


# ----- The state machine that crhelper's polls drive --------------------------------------


@dataclass(frozen=True)
class Clients:
    s3: Any
    ecr: Any
    codebuild: Any
    lambda_: Any
    rds: Any
    # Reads the stack's status on Update (stack_rolling_back); None = never rolling back.
    cloudformation: Any = None


def begin(
    clients: Clients,
    props: ImageProps,
    request_id: str,
    physical_id: str | None,
    now: Callable[[], float] = time.time,
    rolling_back: bool = False,
) -> dict[str, str]:
    """Create/Update: check the inputs, then reuse the image or start its one build.

    ``rolling_back``: CloudFormation is undoing an update (``stack_rolling_back``); no snapshot then.
    Returns the state for the polls (strings only: it travels in the EventBridge input).
    """
    etag = check_source_zip(clients.s3, props.source_zip)
    extensions = extensions_fingerprint(clients.s3, props.extensions) if props.extensions else ""
    context = context_sha256(clients.lambda_, props.context_layer_arn)
    tag = source_tag(etag, context, props.source_zip, props.platform, extensions)
    state = {
        "SourceTag": tag,
        "PreviousVersion": previous_version(physical_id) or "",
        "RollingBack": "true" if rolling_back else "false",
    }
    if find_image(clients.ecr, props.repository_name, tag) is not None:
        state["Stage"] = "built"
        state["Reused"] = "true"
        return state
    state["BuildId"] = start_build(clients.codebuild, props, tag, f"{request_id}-{tag}")
    state["StartedAt"] = str(int(now()))
    state["Stage"] = "build"
    state["Reused"] = "false"
    return state


@dataclass(frozen=True)
class Done:
    physical_id: str
    data: dict[str, str]


def advance(
    clients: Clients, props: ImageProps, state: dict[str, str], now: Callable[[], float] = time.time
) -> Done | None:
    """One poll: move the state forward; ``Done`` when the image is ready to roll out, else None."""
    if state.get("Stage") == "build":
        build_id = state["BuildId"]
        status = build_status(clients.codebuild, build_id)
        if status.running:
            # CodeBuild ends the build at its own timeout; this guard covers a build CodeBuild lost.
            waited = now() - float(state.get("StartedAt", "0"))
            if waited > (props.build_timeout_minutes + 15) * 60:
                clients.codebuild.stop_build(id=build_id)
                raise ImageBuildError(
                    BuildStatus("TIMED_OUT", status.phase or "unknown", "no result in time", status.log_link).failure(
                        build_id
                    )
                )
            return None
        if status.status != "SUCCEEDED":
            # CloudFormation gets 250 characters; the log line keeps the whole story.
            logger.error(
                "image build did not succeed",
                extra={"build_id": build_id, "status": status.status, "phase": status.phase, "detail": status.detail},
            )
            raise ImageBuildError(status.failure(build_id))
        state["Stage"] = "built"
    if state.get("Stage") == "built":
        image = find_image(clients.ecr, props.repository_name, state["SourceTag"])
        if image is None:
            raise ImageBuildError(f"the build succeeded but pushed no image tagged {state['SourceTag']}")
        state.update({"ImageDigest": image.digest, "ImageTag": image.tag, "Version": image.version})
        old = state.get("PreviousVersion") or ""
        # Snapshots are for upgrades only: never while CloudFormation rolls an update back (a snapshot
        # that fails or outlasts the wait would leave the stack in UPDATE_ROLLBACK_FAILED), never for a
        # move to an older or the same version (the database was not upgraded by it).
        rolling_back = state.get("RollingBack") == "true"
        if props.cluster_id and old and is_upgrade(old, image.version) and not rolling_back:
            state["Snapshot"] = snapshot_identifier(props.cluster_id, old, image.version, state["SourceTag"])
            state["Stage"] = "snapshot"
        else:
            if old and old != image.version:
                logger.info(
                    "no snapshot: not an upgrade",
                    extra={"from": old, "to": image.version, "rolling_back": rolling_back},
                )
            state["Stage"] = "done"
    if state.get("Stage") == "snapshot":
        if not props.cluster_id:
            raise ImageBuildError("a snapshot is due but DbClusterIdentifier is not set")
        status_ = ensure_snapshot(clients.rds, props.cluster_id, state["Snapshot"])
        if status_ != "available":
            if status_ in ("failed", "incompatible-restore", "deleting"):
                raise ImageBuildError(f"cluster snapshot {state['Snapshot']} before the upgrade is {status_}")
            return None
        state["Stage"] = "done"
    if state.get("Stage") != "done":
        raise ImageBuildError(f"unknown stage {state.get('Stage')!r} in the polling state")
    data = {
        "ImageUri": f"{props.repository_uri}@{state['ImageDigest']}",
        "Version": state["Version"],
        "ImageTag": state["ImageTag"],
        "SourceTag": state["SourceTag"],
        "Reused": state.get("Reused", "false"),
        "Snapshot": state.get("Snapshot", ""),
    }
    return Done(f"{props.repository_uri}:{state['ImageTag']}", data)
