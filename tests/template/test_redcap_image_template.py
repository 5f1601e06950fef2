"""REDCap image build in template.yaml, in both modes: RedcapSourceZip (the stack builds) or ImageUri.

Repository settings, lifecycle, who may pull and push, the build project and its role, the
build script being the one ``make image`` runs, and the digest-pinned image reaching App Runner.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from testkit import ROOT
from testkit.template import Rendered

ZIP = "s3://redcap-releases-123456789012/releases/redcap15.5.1.zip"
OVERRIDE = "210987654321.dkr.ecr.eu-west-1.amazonaws.com/team/redcap@sha256:" + "a" * 64
BUILD_ONLY = {
    "RedcapBuildContextLayer",
    "RedcapImageRepository",
    "RedcapImageBuildLogGroup",
    "RedcapImageBuildRole",
    "RedcapImageBuildProject",
    "RedcapImageFunction",
    "RedcapImagePollingPolicy",
    "RedcapImageLogGroup",
    "RedcapImage",
}
REPO_NAME = {"Fn::Join": ["", ["redcap-", {"Fn::Select": [2, {"Fn::Split": ["/", {"Ref": "AWS::StackId"}]}]}]]}
STACK_REPO_ARN = "arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/redcap-${StackUuid}"
PUSH = {
    "ecr:BatchGetImage",
    "ecr:GetDownloadUrlForLayer",
    "ecr:BatchCheckLayerAvailability",
    "ecr:PutImage",
    "ecr:InitiateLayerUpload",
    "ecr:UploadLayerPart",
    "ecr:CompleteLayerUpload",
    "ecr:DescribeImages",
}


@pytest.fixture(scope="module")
def zip_mode() -> Rendered:
    return Rendered(RedcapSourceZip=ZIP, ImageKeepCount=7)


@pytest.fixture(scope="module")
def override_mode() -> Rendered:
    return Rendered(ImageUri=OVERRIDE)


def _statements(props: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for policy in props["Policies"]:
        for stmt in policy.get("PolicyDocument", policy)["Statement"]:
            out[stmt["Sid"]] = stmt
    return out


def _as_set(value: Any) -> set[str]:
    return {value} if isinstance(value, str) else set(value)


def _eval(node: Any, params: dict[str, str]) -> Any:
    """Fn::Select / Fn::Split / Ref over parameter values, as CloudFormation evaluates them."""
    if isinstance(node, dict) and len(node) == 1:
        ((key, value),) = node.items()
        if key == "Ref":
            return params[value]
        if key == "Fn::Split":
            return str(_eval(value[1], params)).split(value[0])
        if key == "Fn::Select":
            return _eval(value[1], params)[int(value[0])]
    return node


# --- Repository ------------------------------------------------------------------------------
def test_repository_is_immutable_scanned_and_encrypted_with_the_stack_key(zip_mode: Rendered) -> None:
    repo = zip_mode.resource("RedcapImageRepository")
    props = repo["Properties"]
    assert props["ImageTagMutability"] == "IMMUTABLE"
    assert props["ImageScanningConfiguration"] == {"ScanOnPush": True}
    assert props["EncryptionConfiguration"] == {"EncryptionType": "KMS", "KmsKey": {"Fn::GetAtt": ["KmsKey", "Arn"]}}
    assert props["RepositoryName"] == REPO_NAME
    # Issue 17: dev deletes the repository with its images; prod keeps the rollback history.
    assert repo["DeletionPolicy"] == "Delete"
    assert props["EmptyOnDelete"] is True
    prod = Rendered(RedcapSourceZip=ZIP, Environment="prod").resource("RedcapImageRepository")
    assert (prod["DeletionPolicy"], prod["UpdateReplacePolicy"]) == ("Retain", "Retain")
    assert prod["Properties"]["EmptyOnDelete"] is False


def test_lifecycle_keeps_the_newest_image_keep_count_images(zip_mode: Rendered) -> None:
    text = zip_mode.props("RedcapImageRepository")["LifecyclePolicy"]["LifecyclePolicyText"]["Fn::Sub"]
    policy = json.loads(text.replace("${ImageKeepCount}", str(zip_mode.params["ImageKeepCount"])))
    (rule,) = policy["rules"]
    assert rule["selection"] == {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 7}
    assert rule["action"] == {"type": "expire"}


def test_only_the_stacks_roles_pull_and_push(zip_mode: Rendered) -> None:
    stmts = {s["Sid"]: s for s in zip_mode.props("RedcapImageRepository")["RepositoryPolicyText"]["Statement"]}
    roles = [{"Fn::GetAtt": ["AppRunnerEcrAccessRole", "Arn"]}, {"Fn::GetAtt": ["RedcapImageBuildRole", "Arn"]}]
    deny = stmts["OnlyTheStackPullsAndPushes"]
    assert deny["Effect"] == "Deny"
    assert deny["Principal"] == "*"
    assert deny["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": roles}}
    assert {"ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:PutImage"} <= set(deny["Action"])
    assert stmts["AppRunnerPulls"]["Principal"] == {"AWS": roles[0]}
    assert not {"ecr:PutImage", "ecr:InitiateLayerUpload"} & set(stmts["AppRunnerPulls"]["Action"])
    assert stmts["TheBuildPushes"]["Principal"] == {"AWS": roles[1]}
    assert all(s["Effect"] == "Deny" for s in stmts.values() if s.get("Principal") == "*")
    # Issue 17: ECR refuses a repository policy with a Resource element (docs/security-checks.md, E9101).
    assert not any({"Resource", "NotResource"} & set(s) for s in stmts.values())


# --- App Runner's pull scope and image, both modes ---------------------------------------------
def _pull_statement(rendered: Rendered) -> dict[str, Any]:
    role = rendered.props("AppRunnerEcrAccessRole")
    (pull,) = [s for s in role["Policies"][0]["PolicyDocument"]["Statement"] if s["Resource"] != "*"]
    return pull


def test_app_runner_pulls_only_from_the_stack_repository(zip_mode: Rendered) -> None:
    sub = _pull_statement(zip_mode)["Resource"]["Fn::Sub"]
    assert sub[0] == STACK_REPO_ARN
    # The same name the repository gets.
    assert sub[1]["StackUuid"] == REPO_NAME["Fn::Join"][1][1]


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        (OVERRIDE, ("210987654321", "eu-west-1", "team/redcap")),
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/redcap:15.5.1", ("123456789012", "us-east-1", "redcap")),
    ],
)
def test_override_pulls_only_from_the_repository_image_uri_names(uri: str, expected: tuple[str, str, str]) -> None:
    sub = _pull_statement(Rendered(ImageUri=uri))["Resource"]["Fn::Sub"]
    assert sub[0] == "arn:${AWS::Partition}:ecr:${Region}:${Account}:repository/${Repository}"
    params = {"ImageUri": uri}
    assert tuple(_eval(sub[1][k], params) for k in ("Account", "Region", "Repository")) == expected


def test_the_digest_pinned_image_reaches_app_runner(zip_mode: Rendered, override_mode: Rendered) -> None:
    def identifier(r: Rendered) -> Any:
        return r.props("AppRunnerService")["SourceConfiguration"]["ImageRepository"]["ImageIdentifier"]

    assert identifier(zip_mode) == {"Fn::GetAtt": ["RedcapImage", "ImageUri"]}
    assert identifier(override_mode) == OVERRIDE
    assert zip_mode.outputs["RedcapImageUri"]["Value"] == {"Fn::GetAtt": ["RedcapImage", "ImageUri"]}


def test_override_mode_creates_nothing_of_the_build(override_mode: Rendered, zip_mode: Rendered) -> None:
    assert set(override_mode.resources) & BUILD_ONLY == set()
    assert set(zip_mode.resources) >= BUILD_ONLY
    assert not {"RedcapImageUri", "RedcapVersion", "RedcapImageRepositoryUri"} & set(override_mode.outputs)


# --- The build project and its role ----------------------------------------------------------
def test_build_role_is_least_privilege(zip_mode: Rendered) -> None:
    role = zip_mode.props("RedcapImageBuildRole")
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "codebuild.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    stmts = _statements(role)
    assert set(stmts) == {
        "WriteBuildLogs",
        "ReadTheReleaseZip",
        "ReadTheBuildContext",
        "EcrLogin",
        "PushToTheStackRepository",
    }
    assert stmts["WriteBuildLogs"]["Resource"] == {"Fn::GetAtt": ["RedcapImageBuildLogGroup", "Arn"]}
    zip_arn = stmts["ReadTheReleaseZip"]["Resource"]["Fn::Sub"]
    assert zip_arn[0] == "arn:${AWS::Partition}:s3:::${Object}"
    assert (
        _eval(zip_arn[1]["Object"], {"RedcapSourceZip": ZIP})
        == "redcap-releases-123456789012/releases/redcap15.5.1.zip"
    )
    assert stmts["ReadTheReleaseZip"]["Action"] == "s3:GetObject"
    assert stmts["ReadTheBuildContext"] == {
        "Sid": "ReadTheBuildContext",
        "Effect": "Allow",
        "Action": "lambda:GetLayerVersion",
        "Resource": {"Ref": "RedcapBuildContextLayer"},
    }
    assert stmts["PushToTheStackRepository"]["Resource"]["Fn::Sub"][0] == STACK_REPO_ARN
    assert set(stmts["PushToTheStackRepository"]["Action"]) == PUSH
    wildcards = [s for s in stmts.values() if s["Resource"] == "*"]
    assert [s["Action"] for s in wildcards] == ["ecr:GetAuthorizationToken"]


def test_build_project_logs_encrypted_with_retention_and_times_out_like_the_resource(zip_mode: Rendered) -> None:
    project = zip_mode.props("RedcapImageBuildProject")
    assert project["ServiceRole"] == {"Fn::GetAtt": ["RedcapImageBuildRole", "Arn"]}
    assert project["EncryptionKey"] == {"Fn::GetAtt": ["KmsKey", "Arn"]}
    assert project["LogsConfig"] == {
        "CloudWatchLogs": {"Status": "ENABLED", "GroupName": {"Ref": "RedcapImageBuildLogGroup"}}
    }
    logs = zip_mode.props("RedcapImageBuildLogGroup")
    assert logs == {
        "RetentionInDays": zip_mode.params["LogRetentionDays"],
        "KmsKeyId": {"Fn::GetAtt": ["KmsKey", "Arn"]},
    }
    resource = zip_mode.props("RedcapImage")
    assert int(resource["BuildTimeoutMinutes"]) == project["TimeoutInMinutes"]
    # The custom resource's own guard (timeout + 15 min) fits CloudFormation's longest wait.
    assert (project["TimeoutInMinutes"] + project["QueuedTimeoutInMinutes"]) * 60 < resource["ServiceTimeout"] <= 3600
    # ... with 20 minutes left for the cluster snapshot taken before an upgrade rolls out.
    assert (project["TimeoutInMinutes"] + project["QueuedTimeoutInMinutes"] + 20) * 60 <= resource["ServiceTimeout"]


def test_build_runs_for_app_runners_cpu_architecture(zip_mode: Rendered) -> None:
    env = zip_mode.props("RedcapImageBuildProject")["Environment"]
    # App Runner runs x86_64: an x86_64 build host building linux/amd64.
    assert env["Type"] == "LINUX_CONTAINER"
    assert zip_mode.props("RedcapImage")["Platform"] == "linux/amd64"
    assert env["PrivilegedMode"] is True
    variables = {v["Name"]: v["Value"] for v in env["EnvironmentVariables"]}
    assert variables["RDS_CA_BUNDLE_URL"] == "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
    assert variables["IMAGE_REPO_URI"] == {"Fn::GetAtt": ["RedcapImageRepository", "RepositoryUri"]}


def _buildspec(rendered: Rendered) -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(rendered.props("RedcapImageBuildProject")["Source"]["BuildSpec"])
    return spec


def test_codebuild_runs_the_build_script_that_make_image_runs(zip_mode: Rendered) -> None:
    spec = _buildspec(zip_mode)
    pre = spec["phases"]["pre_build"]["commands"]
    build = spec["phases"]["build"]["commands"]
    # The layer's content is containers/, unzipped to /tmp/context: /tmp/context/redcap/build.sh
    # is containers/redcap/build.sh.
    assert zip_mode.props("RedcapBuildContextLayer")["ContentUri"] == "containers/"
    assert "unzip -q /tmp/inputs/context.zip -d /tmp/context" in pre
    (run,) = [c for c in build if "build.sh" in c]
    assert run.startswith(
        'set -o pipefail; bash /tmp/context/redcap/build.sh --builder docker --platform "$IMAGE_PLATFORM" '
    )
    assert "--ca-bundle /tmp/inputs/rds-ca-bundle.pem" in run
    assert any(c == 'curl -fsS --retry 3 -o /tmp/inputs/rds-ca-bundle.pem "$RDS_CA_BUNDLE_URL"' for c in pre)
    makefile = (ROOT / "Makefile").read_text()
    image_recipe = re.search(r"^image:.*?\n((?:\t.*\n)+)", makefile, re.M)
    assert image_recipe
    assert "containers/redcap/build.sh --zip" in image_recipe.group(1)
    script = (ROOT / "containers" / "redcap" / "build.sh").read_text()
    # The options CodeBuild uses exist in the one script, and it prints what the tag is made of.
    for option in ("--builder)", "--platform)", "--zip)", "--ca-bundle)", "--tag)"):
        assert option in script
    assert 'echo "VERSION=$version"' in script
    assert 'echo "CONTEXT_HASH=$context_hash"' in script


def test_buildspec_pushes_version_and_source_tags_and_exports_them(zip_mode: Rendered) -> None:
    spec = _buildspec(zip_mode)
    assert spec["env"]["exported-variables"] == ["IMAGE_TAG", "REDCAP_VERSION"]
    build = "\n".join(spec["phases"]["build"]["commands"])
    assert 'IMAGE_TAG="$REDCAP_VERSION-$CONTEXT_HASH"' in build
    assert 'docker push "$IMAGE_REPO_URI:$IMAGE_TAG"' in build
    assert '--image-tag "$SOURCE_TAG"' in build
    assert "set -euo pipefail" in build
    # No push in post_build: CodeBuild runs post_build after a failed build too.
    assert "post_build" not in spec["phases"]


# --- The custom resource's function ----------------------------------------------------------
def test_custom_resource_function_is_scoped_to_the_stacks_resources(zip_mode: Rendered) -> None:
    stmts = {s["Sid"]: s for s in zip_mode.function_statements("RedcapImageFunction")}
    assert stmts["RunTheBuild"]["Resource"] == {"Fn::GetAtt": ["RedcapImageBuildProject", "Arn"]}
    assert stmts["FindBuiltImages"] == {
        "Sid": "FindBuiltImages",
        "Effect": "Allow",
        "Action": "ecr:DescribeImages",
        "Resource": {"Fn::GetAtt": ["RedcapImageRepository", "Arn"]},
    }
    assert stmts["CheckTheReleaseZip"]["Action"] == "s3:GetObject"
    snapshot = stmts["SnapshotBeforeAnUpgrade"]["Resource"][1]["Fn::Sub"]
    assert snapshot.endswith(":cluster-snapshot:${DbCluster}-redcap-*")
    # Issue 17, item 6: reads only this stack's status (no snapshot during an update rollback).
    assert stmts["ReadThisStacksStatus"]["Action"] == "cloudformation:DescribeStacks"
    assert stmts["ReadThisStacksStatus"]["Resource"] == {"Ref": "AWS::StackId"}
    # crhelper names its polling rule after the logical id of the custom resource.
    assert stmts["CrhelperPollingRule"]["Resource"]["Fn::Sub"].endswith(":rule/RedcapImage*")
    assert "RedcapImage" in zip_mode.resources
    assert all(s["Resource"] != "*" for s in stmts.values())
    polling = zip_mode.props("RedcapImagePollingPolicy")
    assert polling["Roles"] == [{"Ref": "RedcapImageFunctionRole"}]
    (perm,) = polling["PolicyDocument"]["Statement"]
    assert perm["Resource"] == {"Fn::GetAtt": ["RedcapImageFunction", "Arn"]}
    assert set(zip_mode.resource("RedcapImage")["DependsOn"]) == {"RedcapImageLogGroup", "RedcapImagePollingPolicy"}


def test_custom_resource_properties_match_the_event_fixture(zip_mode: Rendered) -> None:
    from testkit import load_event

    fixture = set(load_event("redcap_image", "create.json")["ResourceProperties"])
    assert set(zip_mode.props("RedcapImage")) | {"ServiceToken"} == fixture | {"ServiceTimeout"}


@pytest.mark.parametrize("status", [0, 3])
def test_a_failing_build_script_fails_its_buildspec_line(zip_mode: Rendered, tmp_path: Path, status: int) -> None:
    # CodeBuild fails a phase on the exit status of a command line: piping build.sh into tee must
    # not turn build.sh's failure into tee's success.
    (run,) = [c for c in _buildspec(zip_mode)["phases"]["build"]["commands"] if "build.sh" in c]
    script = tmp_path / "build.sh"
    script.write_text(f"echo VERSION=15.5.1\nexit {status}\n")
    line = run.replace("/tmp/context/redcap/build.sh", str(script)).replace("/tmp/inputs/", f"{tmp_path}/")
    done = subprocess.run(["bash", "-c", line], capture_output=True, text=True, check=False)  # noqa: S603, S607
    assert done.returncode == status
    assert (tmp_path / "build.out").read_text() == "VERSION=15.5.1\n"


def test_on_ecs_express_the_digest_pinned_image_and_the_pull_follow_the_execution_role() -> None:
    express = Rendered(RedcapSourceZip=ZIP, ComputeType="EcsExpress", ImageUri="")
    assert express.props("ExpressService")["PrimaryContainer"]["Image"] == {"Fn::GetAtt": ["RedcapImage", "ImageUri"]}
    policy = express.props("RedcapImageRepository")["RepositoryPolicyText"]["Statement"]
    by_sid = {s["Sid"]: s for s in policy}
    execution = {"Fn::GetAtt": ["ExpressExecutionRole", "Arn"]}
    assert by_sid["AppRunnerPulls"]["Principal"] == {"AWS": execution}
    assert by_sid["OnlyTheStackPullsAndPushes"]["Condition"]["ArnNotEquals"]["aws:PrincipalArn"] == [
        execution,
        {"Fn::GetAtt": ["RedcapImageBuildRole", "Arn"]},
    ]
    assert "AppRunnerEcrAccessRole" not in express.resources
    role = express.props("ExpressExecutionRole")
    statements = [st for p in role["Policies"] for st in p["PolicyDocument"]["Statement"]]
    (pull,) = [st for st in statements if "ecr:BatchGetImage" in st["Action"]]
    assert "repository/redcap-${StackUuid}" in json.dumps(pull["Resource"])
