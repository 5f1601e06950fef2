"""A small stateful CodeBuild emulator (moto's CodeBuild runs no build and has no failure modes).

It speaks CodeBuild's awsJson1_1 protocol (``POST /`` with
``X-Amz-Target: CodeBuild_20161006.<Operation>``): ``StartBuild``, ``BatchGetBuilds`` and
``StopBuild``, with botocore-shaped errors. Reach it through ``AWS_ENDPOINT_URL_CODEBUILD``.

A build answers ``IN_PROGRESS`` for ``polls`` calls of ``BatchGetBuilds``, then ends the way
its :class:`Outcome` says: ``SUCCEEDED``, ``FAILED`` in a phase with CodeBuild's context
message, or ``TIMED_OUT``. On success it does what the buildspec's last steps do, through a
real ECR client (moto's): :class:`EcrPush` reads the release zip the build was given from S3
(``REDCAP_SOURCE_ZIP``), checks and versions it the way ``build.sh`` does, and pushes one image
manifest under ``<version>-<context hash>`` and the build's ``SOURCE_TAG`` (or only adds the
source tag when the version tag exists, as the buildspec does). With ``EXTENSIONS_S3_PREFIX``
it downloads every object under that prefix (the buildspec's ``aws s3 cp --recursive``) and runs
the build's own check, ``containers/redcap/extensions.py``, on them: a bad module zip fails the
build in ``BUILD`` with that script's message; what it would bake is recorded in ``baked`` under
the version tag, and its content is part of the context hash, as in ``build.sh``. No container is
built: the image tests build the real one.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tempfile
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from testkit import redcap_extensions
from testkit.emulators import serving

PHASES = [
    "SUBMITTED",
    "QUEUED",
    "PROVISIONING",
    "DOWNLOAD_SOURCE",
    "INSTALL",
    "PRE_BUILD",
    "BUILD",
    "POST_BUILD",
    "UPLOAD_ARTIFACTS",
    "FINALIZING",
    "COMPLETED",
]


@dataclass
class Outcome:
    status: str = "SUCCEEDED"  # SUCCEEDED | FAILED | TIMED_OUT
    polls: int = 1
    phase: str = "BUILD"
    message: str = "Error while executing command: bash build.sh. Reason: exit status 1"


@dataclass
class Build:
    id: str
    project: str
    env: dict[str, str]
    outcome: Outcome
    started: float
    polls_seen: int = 0
    status: str = "IN_PROGRESS"
    failed_phase: str | None = None
    message: str = ""

    def to_api(self, region: str, account: str) -> dict[str, Any]:
        stream = self.id.split(":", 1)[1]
        group = f"/aws/codebuild/{self.project}"
        end = PHASES.index(self.failed_phase) if self.failed_phase else len(PHASES) - 1
        current = PHASES[end] if self.status != "IN_PROGRESS" else "BUILD"
        phases: list[dict[str, Any]] = []
        for name in PHASES[: end + 1] if self.status != "IN_PROGRESS" else PHASES[:7]:
            item: dict[str, Any] = {"phaseType": name, "startTime": self.started}
            if name == self.failed_phase:
                code = "BUILD_TIMED_OUT" if self.status == "TIMED_OUT" else "COMMAND_EXECUTION_ERROR"
                item.update({"phaseStatus": self.status, "contexts": [{"statusCode": code, "message": self.message}]})
            elif name != "COMPLETED" and not (self.status == "IN_PROGRESS" and name == "BUILD"):
                item["phaseStatus"] = "SUCCEEDED"
            phases.append(item)
        return {
            "id": self.id,
            "arn": f"arn:aws:codebuild:{region}:{account}:build/{self.id}",
            "buildNumber": 1,
            "startTime": self.started,
            "currentPhase": current,
            "buildStatus": self.status,
            "projectName": self.project,
            "phases": phases,
            "buildComplete": self.status != "IN_PROGRESS",
            "environment": {
                "type": "LINUX_CONTAINER",
                "image": "aws/codebuild/standard:7.0",
                "computeType": "BUILD_GENERAL1_MEDIUM",
                "environmentVariables": [{"name": k, "value": v, "type": "PLAINTEXT"} for k, v in self.env.items()],
            },
            "logs": {
                "groupName": group,
                "streamName": stream,
                # The shape CodeBuild returns.
                "deepLink": f"https://console.aws.amazon.com/cloudwatch/home?region={region}"
                f"#logEvent:group={group};stream={stream}",
            },
        }


class BuildFailure(Exception):
    def __init__(self, phase: str, message: str) -> None:
        super().__init__(message)
        self.phase = phase


_VERSION_DIR = re.compile(r"^redcap/redcap_v(\d+\.\d+\.\d+)/")


class EcrPush:
    """The buildspec's inputs and pushes, against (moto's) S3 and ECR; no container is built."""

    def __init__(self, s3: Any, ecr: Any, repository: str) -> None:
        self.s3, self.ecr, self.repository = s3, ecr, repository
        # version tag -> {"modules": [...], "languages": [...], "files": [paths under the web root]}
        self.baked: dict[str, dict[str, list[str]]] = {}

    def _extensions(self, prefix_url: str) -> tuple[bytes, dict[str, list[str]]]:
        """Download the prefix as ``aws s3 cp --recursive`` would and stage it with the build's own check."""
        bucket, _, prefix = prefix_url.removeprefix("s3://").partition("/")
        ext = redcap_extensions.load()
        with tempfile.TemporaryDirectory() as tmp:
            source, webroot = Path(tmp, "source"), Path(tmp, "redcap")
            webroot.mkdir()
            try:
                pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
                for item in (obj for page in pages for obj in page.get("Contents", [])):
                    if str(item["Key"]).endswith("/"):
                        continue
                    target = source / str(item["Key"])[len(prefix) :]
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(self.s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
            except Exception as err:
                raise BuildFailure("PRE_BUILD", f"aws s3 cp --recursive {prefix_url}: {err}") from None
            try:
                staged = ext.stage(source, prefix_url, webroot)
            except ext.ExtensionError as err:
                raise BuildFailure("BUILD", f"extensions: {err}") from None
            files = sorted(p.relative_to(webroot).as_posix() for p in webroot.rglob("*") if p.is_file())
            content = b"".join(f.encode() + (webroot / f).read_bytes() for f in files)
        return content, {"modules": staged.modules, "languages": staged.languages, "files": files}

    def __call__(self, env: dict[str, str]) -> None:
        url = env.get("REDCAP_SOURCE_ZIP", "")
        bucket, _, key = url.removeprefix("s3://").partition("/")
        try:
            data = self.s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as err:
            raise BuildFailure("PRE_BUILD", f"aws s3 cp {url}: {err}") from None
        try:
            names = zipfile.ZipFile(io.BytesIO(data)).namelist()
        except zipfile.BadZipFile:
            raise BuildFailure("BUILD", "build.sh: --zip: not a zip file") from None
        versions = {m.group(1) for n in names if (m := _VERSION_DIR.match(n))}
        if len(versions) != 1:
            raise BuildFailure("BUILD", f"build.sh: --zip: expected one redcap_vX.Y.Z folder, found {len(versions)}")
        baked: dict[str, list[str]] = {"modules": [], "languages": [], "files": []}
        extensions = b""
        if env.get("EXTENSIONS_S3_PREFIX"):
            extensions, baked = self._extensions(env["EXTENSIONS_S3_PREFIX"])
        context_hash = hashlib.sha256(data + extensions + env.get("CONTEXT_LAYER_ARN", "").encode()).hexdigest()[:12]
        version_tag = f"{versions.pop()}-{context_hash}"
        self.baked[version_tag] = baked
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                "config": {
                    "mediaType": "application/vnd.docker.container.image.v1+json",
                    "size": 7023,
                    "digest": "sha256:" + hashlib.sha256(version_tag.encode()).hexdigest(),
                },
                # moto derives the image digest from the layer digests: one layer per build input.
                "layers": [
                    {
                        "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                        "size": len(data),
                        "digest": "sha256:" + hashlib.sha256(data + version_tag.encode()).hexdigest(),
                    }
                ],
            }
        )
        try:
            self.ecr.put_image(repositoryName=self.repository, imageManifest=manifest, imageTag=version_tag)
        except self.ecr.exceptions.ImageTagAlreadyExistsException:
            images = self.ecr.batch_get_image(repositoryName=self.repository, imageIds=[{"imageTag": version_tag}])
            manifest = images["images"][0]["imageManifest"]
        self.ecr.put_image(repositoryName=self.repository, imageManifest=manifest, imageTag=env["SOURCE_TAG"])


@dataclass
class CodeBuildEmulator:
    region: str = "us-east-1"
    account: str = "123456789012"
    projects: set[str] = field(default_factory=set)
    default: Outcome = field(default_factory=Outcome)
    queued: list[Outcome] = field(default_factory=list)
    on_success: Callable[[dict[str, str]], None] | None = None
    builds: dict[str, Build] = field(default_factory=dict)
    started: list[str] = field(default_factory=list)
    stopped: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # --- operations -------------------------------------------------------
    def handle(self, operation: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            method = getattr(self, f"_op_{operation}", None)
            if method is None:
                return 400, {"__type": "InvalidInputException", "message": f"emulator: no {operation}"}
            try:
                return 200, method(body)
            except KeyError as err:
                return 400, {"__type": "ResourceNotFoundException", "message": str(err.args[0])}

    def _op_StartBuild(self, body: dict[str, Any]) -> dict[str, Any]:
        project = str(body.get("projectName", ""))
        if project not in self.projects:
            raise KeyError(f"Project cannot be found: arn:aws:codebuild:{self.region}:{self.account}:project/{project}")
        env = {str(v["name"]): str(v["value"]) for v in body.get("environmentVariablesOverride", [])}
        outcome = self.queued.pop(0) if self.queued else self.default
        build = Build(f"{project}:{uuid.uuid4()}", project, env, outcome, time.time())
        self.builds[build.id] = build
        self.started.append(build.id)
        return {"build": build.to_api(self.region, self.account)}

    def _op_BatchGetBuilds(self, body: dict[str, Any]) -> dict[str, Any]:
        found, missing = [], []
        for build_id in body.get("ids", []):
            build = self.builds.get(build_id)
            if build is None:
                missing.append(build_id)
                continue
            self._advance(build)
            found.append(build.to_api(self.region, self.account))
        return {"builds": found, "buildsNotFound": missing}

    def _op_StopBuild(self, body: dict[str, Any]) -> dict[str, Any]:
        build = self.builds[str(body.get("id"))]
        if build.status == "IN_PROGRESS":
            build.status, build.failed_phase, build.message = "STOPPED", "BUILD", "Build was stopped"
        self.stopped.append(build.id)
        return {"build": build.to_api(self.region, self.account)}

    def _advance(self, build: Build) -> None:
        if build.status != "IN_PROGRESS":
            return
        build.polls_seen += 1
        if build.polls_seen <= build.outcome.polls:
            return
        outcome = build.outcome
        if outcome.status == "SUCCEEDED":
            try:
                if self.on_success is not None:
                    self.on_success(build.env)
                build.status = "SUCCEEDED"
            except BuildFailure as err:
                build.status, build.failed_phase, build.message = "FAILED", err.phase, str(err)
            return
        build.status, build.failed_phase = outcome.status, outcome.phase
        build.message = "Build has timed out. " if outcome.status == "TIMED_OUT" else outcome.message

    # --- HTTP -------------------------------------------------------------
    def make_server(self, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the emulator only listens on the loopback interface")
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}") if length else {}
                prefix, _, operation = self.headers.get("X-Amz-Target", "").partition(".")
                if prefix != "CodeBuild_20161006":
                    status, payload = 400, {"__type": "UnknownOperationException", "message": "bad target"}
                else:
                    status, payload = emulator.handle(operation, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return

        return ThreadingHTTPServer((host, port), Handler)

    @contextmanager
    def serve(self, port: int = 0) -> Iterator[str]:
        """Serve on 127.0.0.1 in a daemon thread; yields the endpoint URL."""
        with serving(self.make_server(port=port)) as url:
            yield url
