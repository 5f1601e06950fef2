"""Issue 18 item 4 in template.yaml: ExtensionsS3Prefix, its Rule, the build's grants and the buildspec.

The grants are evaluated the way CloudFormation evaluates Fn::Join / Fn::Split / Fn::Select for a
prefix value, so the test checks the ARN and the s3:prefix that IAM will see, not only the shape.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from redcap_ctl import image_build
from testkit import ROOT
from testkit.iam_check import PARAMETER_SETS, Renderer
from testkit.template import Rendered, load

from .test_foundation_rules import violations

ZIP = "s3://redcap-releases-123456789012/releases/redcap15.5.1.zip"
PREFIX = "s3://redcap-releases-123456789012/extensions-2026-12/"
PARAMETER = load()["Parameters"]["ExtensionsS3Prefix"]


@pytest.fixture(scope="module")
def with_prefix() -> Rendered:
    return Rendered(RedcapSourceZip=ZIP, ExtensionsS3Prefix=PREFIX)


@pytest.fixture(scope="module")
def without_prefix() -> Rendered:
    return Rendered(RedcapSourceZip=ZIP)


def test_the_parameter_is_optional_and_sits_with_the_image_build_parameters() -> None:
    assert PARAMETER["Type"] == "String"
    assert PARAMETER["Default"] == ""
    groups = load()["Metadata"]["AWS::CloudFormation::Interface"]["ParameterGroups"]
    (image,) = [g for g in groups if "RedcapSourceZip" in g["Parameters"]]
    assert image["Parameters"][image["Parameters"].index("ImageKeepCount") + 1] == "ExtensionsS3Prefix"


@pytest.mark.parametrize(
    ("value", "allowed"),
    [
        ("", True),
        (PREFIX, True),
        ("s3://my.bucket-1/modules/", True),
        ("s3://bucket/extensions", False),  # no trailing /
        ("s3://bucket/", False),  # the whole bucket
        ("s3://bucket/a/b/", False),  # two folders: the s3:prefix condition takes one
        ("s3://bucket/../", False),
        ("s3://bucket/.hidden/", False),
        ("s3://Bucket/extensions/", False),
        ("https://bucket.s3.amazonaws.com/extensions/", False),
    ],
)
def test_the_pattern_and_the_function_agree(value: str, allowed: bool) -> None:
    pattern = re.compile(PARAMETER["AllowedPattern"])
    assert bool(pattern.fullmatch(value)) is allowed
    props = {
        "RedcapSourceZip": ZIP,
        "RepositoryUri": "123456789012.dkr.ecr.us-east-1.amazonaws.com/redcap-x",
        "ProjectName": "RedcapImageBuild-x",
        "ContextLayerArn": "arn:aws:lambda:us-east-1:123456789012:layer:RedcapBuildContext:1",
        "Platform": "linux/amd64",
        "BuildTimeoutMinutes": "30",
        "ExtensionsS3Prefix": value,
    }
    if allowed:
        image_build.parse_props(props)
    else:
        with pytest.raises(image_build.InputError, match="ExtensionsS3Prefix"):
            image_build.parse_props(props)


def test_the_rule_refuses_a_prefix_without_the_image_build() -> None:
    failed = violations(
        ExtensionsS3Prefix=PREFIX, RedcapSourceZip="", ImageUri="123456789012.dkr.ecr.us-east-1.amazonaws.com/r:1"
    )
    assert list(failed) == ["ExtensionsNeedTheImageBuild"]
    assert "RedcapSourceZip" in failed["ExtensionsNeedTheImageBuild"][0]
    assert violations(ExtensionsS3Prefix=PREFIX, RedcapSourceZip=ZIP, ImageUri="") == {}


def _statements(rendered: Rendered, role: str) -> dict[str, dict[str, Any]]:
    resolved = rendered.resolve(rendered.props(role))
    return {s["Sid"]: s for p in resolved["Policies"] for s in p["PolicyDocument"]["Statement"]}


def test_the_build_reads_and_lists_exactly_that_prefix(with_prefix: Rendered, without_prefix: Rendered) -> None:
    values = Renderer(with_prefix)
    stmts = _statements(with_prefix, "RedcapImageBuildRole")
    read, listing = stmts["ReadTheExtensions"], stmts["ListTheExtensions"]
    assert read["Action"] == "s3:GetObject"
    assert values.value(read["Resource"]) == "arn:aws:s3:::redcap-releases-123456789012/extensions-2026-12/*"
    assert listing["Action"] == "s3:ListBucket"
    assert values.value(listing["Resource"]) == "arn:aws:s3:::redcap-releases-123456789012"
    assert values.value(listing["Condition"]) == {"StringLike": {"s3:prefix": "extensions-2026-12/*"}}
    # The custom resource lists the same prefix (the fingerprint in the source tag), and reads nothing there.
    fn = {s["Sid"]: s for s in with_prefix.function_statements("RedcapImageFunction")}
    assert fn["FingerprintTheExtensions"]["Action"] == "s3:ListBucket"
    assert values.value(fn["FingerprintTheExtensions"]["Resource"]) == "arn:aws:s3:::redcap-releases-123456789012"
    assert values.value(fn["FingerprintTheExtensions"]["Condition"]) == values.value(listing["Condition"])
    assert not [s for s in fn.values() if "s3:GetObject" in s["Action"] and "extensions" in str(values.value(s))]
    # Without the parameter, none of it exists.
    assert not {"ReadTheExtensions", "ListTheExtensions"} & set(_statements(without_prefix, "RedcapImageBuildRole"))
    fn_plain = {s["Sid"] for s in without_prefix.function_statements("RedcapImageFunction")}
    assert "FingerprintTheExtensions" not in fn_plain


def test_the_iam_data_check_renders_the_prefix() -> None:
    assert PARAMETER_SETS["zip-build-extensions"]["ExtensionsS3Prefix"].startswith("s3://")


def _buildspec(rendered: Rendered) -> dict[str, Any]:
    return dict(yaml.safe_load(rendered.props("RedcapImageBuildProject")["Source"]["BuildSpec"]))


def test_the_buildspec_downloads_the_prefix_and_passes_it_to_build_sh(with_prefix: Rendered) -> None:
    spec = _buildspec(with_prefix)
    pre = spec["phases"]["pre_build"]["commands"]
    assert any(
        'aws s3 cp --recursive --only-show-errors "$EXTENSIONS_S3_PREFIX" /tmp/inputs/extensions/' in c for c in pre
    )
    (run,) = [c for c in spec["phases"]["build"]["commands"] if "build.sh" in c]
    assert (
        '${EXTENSIONS_S3_PREFIX:+--extensions /tmp/inputs/extensions --extensions-prefix "$EXTENSIONS_S3_PREFIX"}'
        in run
    )
    script = (ROOT / "containers" / "redcap" / "build.sh").read_text()
    assert "--extensions)" in script
    assert "--extensions-prefix)" in script
    assert with_prefix.props("RedcapImage")["ExtensionsS3Prefix"] == PREFIX


@pytest.mark.parametrize("prefix", ["", PREFIX])
def test_the_build_line_passes_the_options_only_with_a_prefix(
    with_prefix: Rendered, tmp_path: Path, prefix: str
) -> None:
    """Run the buildspec's build line in bash with a stand-in build.sh that prints its arguments."""
    (run,) = [c for c in _buildspec(with_prefix)["phases"]["build"]["commands"] if "build.sh" in c]
    script = tmp_path / "build.sh"
    script.write_text('printf "%s\\n" "$@"\n')
    line = run.replace("/tmp/context/redcap/build.sh", str(script)).replace(
        "/tmp/inputs/build.out", str(tmp_path / "out")
    )
    done = subprocess.run(  # noqa: S603 -- bash from PATH, the buildspec's own line
        ["bash", "-c", line],  # noqa: S607
        env={"PATH": "/usr/bin:/bin", "IMAGE_PLATFORM": "linux/amd64", "EXTENSIONS_S3_PREFIX": prefix},
        capture_output=True,
        text=True,
        check=True,
    )
    args = done.stdout.splitlines()
    if prefix:
        assert args[-4:] == ["--extensions", "/tmp/inputs/extensions", "--extensions-prefix", PREFIX]
    else:
        assert "--extensions" not in args


def test_the_docs_state_what_the_code_does() -> None:
    from testkit.redcap_extensions import load as load_extensions

    ext = load_extensions()
    doc = (ROOT / "docs" / "image-build.md").read_text()
    section = doc.split("## External modules and language files (`ExtensionsS3Prefix`)", 1)[1].split("\n## ", 1)[0]
    mb = 1024 * 1024
    assert f"over {ext.MAX_MODULE_ZIP_BYTES // mb} MB ({ext.MAX_MODULE_UNPACKED_BYTES // mb} MB unpacked)" in section
    assert f"over {ext.MAX_LANGUAGE_BYTES // mb} MB" in section
    assert "`ExtensionsNeedTheImageBuild`" in section
    assert "ExtensionsNeedTheImageBuild" in load()["Rules"]
    assert "`zip-build-extensions`" in section
    # The folder rule the docs quote is the one the check applies.
    assert ext.MODULE_FOLDER.fullmatch("my_module_v1.2.3")
    assert not ext.MODULE_FOLDER.fullmatch("my-module-1.2.3")
    image = (ROOT / "docs" / "image.md").read_text()
    assert "image-build.md#external-modules-and-language-files-extensionss3prefix" in image
    assert "--extensions ext --extensions-prefix" in image
