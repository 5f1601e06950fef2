"""REDCap image: Custom::RedcapImage drives a build through the CodeBuild emulator, then an upgrade.

The stack is rendered a second time with ``RedcapSourceZip`` (the rest of ``make local`` runs the
``ImageUri`` override). In moto: the release zips in S3, the build context layer (the real
``containers/`` folder, zipped as ``sam deploy`` does), the ECR repository, the Aurora cluster,
crhelper's EventBridge rule and Lambda permission. CodeBuild is the emulator, which "pushes" to
moto's ECR. Each poll is what EventBridge does: the handler gets the rule target's input.
"""

from __future__ import annotations

import io
import json
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

from local.bench_case import BenchCase
from local.runner import Run, StepFailed, cfn_success, exists, invoke
from local.scenarios import STACK_PARAMS, Local
from local.stack import Stack
from testkit import ROOT, LambdaContext
from testkit.cfn import ResponseCapture, capture_cfn_responses

RESOURCE = "REDCap image"
FUNCTION_ID = "RedcapImageFunction"
CUSTOM_RESOURCE_ID = "RedcapImage"
BUCKET = "redcap-local-releases"
MAX_POLLS = 6


EXTENSIONS = f"s3://{BUCKET}/extensions-local/"


def zip_stack(zip_key: str, extensions: str = "") -> Stack:
    params = {"ImageUri": "", "RedcapSourceZip": f"s3://{BUCKET}/{zip_key}", "ExtensionsS3Prefix": extensions}
    return Stack(**{**STACK_PARAMS, **params})


def _context_zip() -> bytes:
    """``containers/`` zipped as ``sam deploy`` uploads the layer's ContentUri."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        base = ROOT / "containers"
        for path in sorted(base.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(base).as_posix())
    return out.getvalue()


class ImageWorld:
    def __init__(self, local: Local, tmp: Path) -> None:
        self.local, self.tmp = local, tmp
        self.s3, self.ecr = local.client("s3"), local.client("ecr")
        self.events, self.rds = local.client("events"), local.client("rds")
        self.stack = zip_stack("redcap15.5.1.zip")
        self.physical: dict[str, str] = {}
        self.emulator: Any = None
        self.timings: list[float] = []  # milliseconds per invocation, for make bench

    def provision(self) -> str:
        from testkit.redcap_release import write_release_zip

        stack = self.stack
        self.s3.create_bucket(Bucket=BUCKET)
        for version in ("15.5.1", "15.6.0"):
            folder = self.tmp / version
            folder.mkdir()
            self.s3.upload_file(str(write_release_zip(folder, version)), BUCKET, f"redcap{version}.zip")
        # The repository name the template derives from the stack id.
        name = "redcap-" + stack.pseudo["AWS::StackId"].split("/")[2]
        repo = self.ecr.create_repository(repositoryName=name, imageTagMutability="IMMUTABLE")["repository"]
        layer = self.local.client("lambda").publish_layer_version(
            LayerName=f"{stack.pseudo['AWS::StackName']}-RedcapBuildContextLayer", Content={"ZipFile": _context_zip()}
        )
        iam = self.local.client("iam")
        role = iam.create_role(RoleName="redcap-image-fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        function_name = f"{stack.pseudo['AWS::StackName']}-{FUNCTION_ID}"
        self.local.client("lambda").create_function(
            FunctionName=function_name,
            Runtime="python3.13",
            Role=role,
            Handler="app.handler",
            Code={"ZipFile": _context_zip()},
        )
        cluster = "redcap-local-dbcluster"
        self.rds.create_db_cluster(
            DBClusterIdentifier=cluster, Engine="aurora-mysql", MasterUsername="admin", MasterUserPassword="x" * 16
        )
        project = f"{stack.pseudo['AWS::StackName']}-RedcapImageBuildProject"
        self.physical = {
            "RedcapImageRepository": name,
            "RedcapImageRepository.RepositoryUri": repo["repositoryUri"],
            "RedcapImageRepository.Arn": repo["repositoryArn"],
            "RedcapBuildContextLayer": layer["LayerVersionArn"],
            "RedcapImageBuildProject": project,
            "DbCluster": cluster,
            f"{FUNCTION_ID}.Arn": f"arn:aws:lambda:{stack.pseudo['AWS::Region']}:{stack.pseudo['AWS::AccountId']}"
            f":function:{function_name}",
            FUNCTION_ID: function_name,
        }
        module = self.local.emulator("codebuild")
        self.emulator = module.CodeBuildEmulator(
            projects={project}, default=module.Outcome(polls=2), on_success=module.EcrPush(self.s3, self.ecr, name)
        )
        url = self.local.exit_stack.enter_context(self.emulator.serve())
        self.local.set_env("AWS_ENDPOINT_URL_CODEBUILD", url)
        return f"zips in s3://{BUCKET}, layer {layer['LayerVersionArn'].rsplit(':', 2)[1]}, repository {name}"

    def event(self, request: str, zip_key: str, capture: ResponseCapture, extensions: str = "") -> dict[str, Any]:
        stack = zip_stack(zip_key, extensions)
        stack.physical.update(self.physical)
        ev = stack.cfn_event("redcap_image", f"{request.lower()}.json", CUSTOM_RESOURCE_ID)
        ev["ResponseURL"] = capture.url(f"redcap-image-{request.lower()}")
        return ev

    def env(self) -> dict[str, str]:
        stack = self.stack
        stack.physical.update(self.physical)
        env = stack.function_env(FUNCTION_ID)
        env["AWS_ENDPOINT_URL_CODEBUILD"] = self.local.env["AWS_ENDPOINT_URL_CODEBUILD"]
        return env

    def call(self, event: dict[str, Any]) -> None:
        start = time.perf_counter()
        invoke("redcap_image", event, self.env(), context=LambdaContext(function_name=self.physical[FUNCTION_ID]))
        self.timings.append((time.perf_counter() - start) * 1000)

    def drive(self, event: dict[str, Any], capture: ResponseCapture) -> tuple[dict[str, Any], int]:
        """The request, then EventBridge's polls until CloudFormation gets its answer."""
        before = len(capture.responses)
        self.call(event)
        if len(capture.responses) > before:
            raise StepFailed(f"answered before any poll: {capture.last.get('Reason')}")
        for polls in range(1, MAX_POLLS + 1):
            rules = self.events.list_rules(NamePrefix=CUSTOM_RESOURCE_ID)["Rules"]
            if len(rules) != 1:
                raise StepFailed(f"expected crhelper's one polling rule, found {len(rules)}")
            (target,) = self.events.list_targets_by_rule(Rule=rules[0]["Name"])["Targets"]
            self.call(json.loads(target["Input"]))
            if len(capture.responses) > before:
                answer = cfn_success(capture)
                if self.events.list_rules(NamePrefix=CUSTOM_RESOURCE_ID)["Rules"]:
                    raise StepFailed("crhelper left its polling rule behind")
                return answer, polls
        raise StepFailed(f"no answer after {MAX_POLLS} polls")

    def digest(self, tag: str) -> str:
        name = self.physical["RedcapImageRepository"]
        (detail,) = self.ecr.describe_images(repositoryName=name, imageIds=[{"imageTag": tag}])["imageDetails"]
        return str(detail["imageDigest"])


def scenario(local: Local, run: Run) -> None:
    missing = exists(
        "functions/redcap_image/app.py", "events/redcap_image/create.json", "tests/testkit/emulators/codebuild.py"
    )
    if missing:
        run.unavailable(RESOURCE, "Create / Update / Delete", missing)
        return
    tmp = Path(local.exit_stack.enter_context(tempfile.TemporaryDirectory(prefix="make-local-image-")))
    world = ImageWorld(local, tmp)
    if not run.step(RESOURCE, "provision zips, context layer, ECR, cluster, CodeBuild emulator", world.provision):
        return
    state: dict[str, Any] = {}

    with capture_cfn_responses() as capture:

        def create() -> str:
            answer, polls = world.drive(world.event("Create", "redcap15.5.1.zip", capture), capture)
            data = answer["Data"]
            if (
                data["ImageUri"]
                != f"{world.physical['RedcapImageRepository.RepositoryUri']}@{world.digest(data['ImageTag'])}"
            ):
                raise StepFailed(f"ImageUri {data['ImageUri']} is not the digest of {data['ImageTag']} in ECR")
            if len(world.emulator.started) != 1:
                raise StepFailed(f"{len(world.emulator.started)} builds started, expected 1")
            state["create"] = answer
            return f"1 build, {polls} polls: {data['Version']} at {data['ImageUri'].split('@')[1][:19]}..."

        created = run.step(RESOURCE, "Create: build through CodeBuild, digest-pinned ImageUri", create)

        def upgrade() -> str:
            ev = world.event("Update", "redcap15.6.0.zip", capture)
            ev["PhysicalResourceId"] = state["create"]["PhysicalResourceId"]
            answer, polls = world.drive(ev, capture)
            data = answer["Data"]
            snaps = world.rds.describe_db_cluster_snapshots(DBClusterSnapshotIdentifier=data["Snapshot"])
            if data["Version"] != "15.6.0" or not snaps["DBClusterSnapshots"]:
                raise StepFailed(f"expected 15.6.0 and a snapshot, got {data}")
            state["upgrade"] = answer
            return f"{polls} polls: snapshot {data['Snapshot']}"

        upgraded = created and run.step(RESOURCE, "Update: upgrade snapshots the cluster first", upgrade)

        def rollback() -> str:
            ev = world.event("Update", "redcap15.5.1.zip", capture)
            ev["PhysicalResourceId"] = state["upgrade"]["PhysicalResourceId"]
            answer, _ = world.drive(ev, capture)
            if answer["Data"]["ImageUri"] != state["create"]["Data"]["ImageUri"] or len(world.emulator.started) != 2:
                raise StepFailed("the rollback did not reuse the first image without a build")
            if answer["Data"]["Snapshot"]:
                # Issue 17, item 6: snapshots are for upgrades only.
                raise StepFailed(f"the rollback took snapshot {answer['Data']['Snapshot']}")
            return "old image reused, no build, no snapshot"

        if upgraded:
            run.step(RESOURCE, "Update: rollback reuses the image, takes no snapshot", rollback)

        def extensions() -> str:
            # Issue 18 item 4: a module zip and a language file under ExtensionsS3Prefix, baked by the
            # build's own check (containers/redcap/extensions.py, run by the emulator's build).
            from testkit.redcap_extensions import LANGUAGE_INI, module_zip

            key = EXTENSIONS.removeprefix(f"s3://{BUCKET}/")
            world.s3.put_object(Bucket=BUCKET, Key=f"{key}demo_module_v1.0.0.zip", Body=module_zip())
            world.s3.put_object(Bucket=BUCKET, Key=f"{key}French.ini", Body=LANGUAGE_INI)
            builds = len(world.emulator.started)
            ev = world.event("Update", "redcap15.5.1.zip", capture, EXTENSIONS)
            ev["PhysicalResourceId"] = state["create"]["PhysicalResourceId"]
            answer, polls = world.drive(ev, capture)
            data = answer["Data"]
            baked = world.emulator.on_success.baked[data["ImageTag"]]
            if len(world.emulator.started) != builds + 1 or data["ImageUri"] == state["create"]["Data"]["ImageUri"]:
                raise StepFailed("a new prefix did not build a new image")
            if baked["modules"] != ["demo_module_v1.0.0"] or baked["languages"] != ["French.ini"]:
                raise StepFailed(f"baked {baked}")
            return f"1 build, {polls} polls: modules/demo_module_v1.0.0 and languages/French.ini in {data['ImageTag']}"

        if created:
            run.step(RESOURCE, "Update: ExtensionsS3Prefix bakes a module and a language file", extensions)

        def delete() -> str:
            ev = world.event("Delete", "redcap15.5.1.zip", capture)
            ev["PhysicalResourceId"] = state["create"]["PhysicalResourceId"]
            world.call(ev)
            cfn_success(capture)
            world.digest(state["create"]["Data"]["ImageTag"])
            return "images left in ECR"

        if created:
            run.step(RESOURCE, "Delete: images stay", delete)


def bench_cases(local: Local, capture: ResponseCapture) -> list[BenchCase]:
    # Its Create starts a build and polls; bench_extras measures that whole path instead.
    return []


def bench_extras(local: Local, runs: int) -> list[tuple[str, list[float], str]]:
    """The custom resource's own time per image, beyond the build (the emulator's build takes none).

    Per run: a new release object (so a new source tag and one build), the Create invocation
    and every poll until CloudFormation's answer, each a fresh handler import as a cold Lambda
    would do. EventBridge's one-minute wait between polls is not ours and not counted.
    """
    tmp = Path(local.exit_stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-image-")))
    world = ImageWorld(local, tmp)
    world.provision()
    world.emulator.default = local.emulator("codebuild").Outcome(polls=0)
    totals: list[float] = []
    per_call: list[float] = []
    data = world.s3.get_object(Bucket=BUCKET, Key="redcap15.5.1.zip")["Body"].read()
    with capture_cfn_responses() as capture:
        for n in range(runs):
            key = f"bench/{n}/redcap15.5.1.zip"
            world.s3.put_object(Bucket=BUCKET, Key=key, Body=data + b"\0" * (n + 1))
            event = world.event("Create", key, capture)
            world.timings = []
            world.drive(event, capture)
            calls = world.timings
            totals.append(sum(calls))
            per_call.extend(calls)
    return [
        (
            "image Create overhead beyond the build (cold, request + polls)",
            totals,
            "fresh handler import per invocation: check zip, fingerprint, start build, then polls until the "
            "digest-pinned answer; the build itself and EventBridge's 1-minute poll interval excluded",
        ),
        ("image custom resource, one invocation (cold)", per_call, "request or poll, against moto and the emulator"),
    ]
