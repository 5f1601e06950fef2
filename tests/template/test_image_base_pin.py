"""Issue 18 item 1: the image builds on Debian 13 (trixie) with PHP 8.4, and the stack's build pins
the base by digest in one place (the Dockerfile's BASE_IMAGE default), never by a moving tag."""

from __future__ import annotations

import re

from testkit import ROOT
from testkit.template import load

CONTAINERS = ROOT / "containers"
DOCKERFILE = CONTAINERS / "redcap" / "Dockerfile"
DIGEST_REF = re.compile(r"^public\.ecr\.aws/docker/library/debian:trixie-slim@sha256:[0-9a-f]{64}$")


def _base_image_default() -> str:
    args = re.findall(r"^ARG BASE_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert len(args) == 1, "exactly one ARG BASE_IMAGE with a default"
    return args[0]


def test_the_default_base_is_trixie_slim_pinned_by_digest() -> None:
    assert DIGEST_REF.fullmatch(_base_image_default())
    froms = re.findall(r"^FROM (.+)$", DOCKERFILE.read_text(), re.MULTILINE)
    assert froms == ["${BASE_IMAGE}"]


def test_a_tag_without_a_digest_would_fail_the_pin_check() -> None:
    # The check above can fail: the old tag-only reference and a digest-less trixie tag do not match.
    for ref in (
        "public.ecr.aws/docker/library/debian:bookworm-slim",
        "public.ecr.aws/docker/library/debian:trixie-slim",
        "public.ecr.aws/docker/library/debian:trixie-slim@sha256:abc",
    ):
        assert not DIGEST_REF.fullmatch(ref)


def test_the_digest_is_one_variable() -> None:
    digest = _base_image_default().split("@", 1)[1]
    holders = [
        path.relative_to(ROOT).as_posix()
        for path in [*CONTAINERS.rglob("*"), ROOT / "template.yaml", ROOT / "Makefile"]
        if path.is_file() and digest in path.read_text(errors="ignore")
    ]
    assert holders == ["containers/redcap/Dockerfile"]


def test_the_stack_build_uses_the_dockerfile_default() -> None:
    """CodeBuild runs build.sh without --base-image and sets no BASE_IMAGE: the pinned default applies.
    build.sh hashes the Dockerfile into CONTEXT_HASH, so a new digest is a new image tag and a rebuild."""
    project = load()["Resources"]["RedcapImageBuildProject"]["Properties"]
    spec = project["Source"]["BuildSpec"]
    build_lines = [line for line in spec.splitlines() if "build.sh" in line and "bash " in line]
    assert len(build_lines) == 1
    assert "--base-image" not in build_lines[0]
    assert "BASE_IMAGE" not in spec
    names = {v["Name"] for v in project["Environment"]["EnvironmentVariables"]}
    assert "BASE_IMAGE" not in names
    build_sh = (CONTAINERS / "redcap" / "build.sh").read_text()
    assert 'cp -a "$here/Dockerfile"' in build_sh
    assert "context_hash=" in build_sh


def test_php_84_everywhere_and_no_trace_of_82() -> None:
    dockerfile = DOCKERFILE.read_text()
    for package in ("libapache2-mod-php8.4", "php8.4-mysql", "php8.4-imagick", "php8.4-apcu", "tzdata"):
        assert package in dockerfile
    assert (CONTAINERS / "redcap" / "rootfs" / "etc" / "php" / "8.4" / "mods-available" / "redcap.ini").is_file()
    stale = [
        path.relative_to(ROOT).as_posix()
        for path in CONTAINERS.rglob("*")
        if path.is_file() and re.search(r"php8\.2|php/8\.2|-v 8\.2|ImageMagick-6", path.read_text(errors="ignore"))
    ]
    assert stale == []
    prepare = (CONTAINERS / "redcap" / "rootfs" / "opt" / "redcap-image" / "bin" / "prepare-image").read_text()
    assert "phpenmod -v 8.4 redcap" in prepare
    assert "policy=/etc/ImageMagick-7/policy.xml" in prepare


def test_local_builds_use_a_trixie_base() -> None:
    harness = (ROOT / "tests" / "testkit" / "image_harness.py").read_text()
    assert 'BASE_IMAGE = "localhost/debian-base:trixie"' in harness
    assert "--base-image localhost/debian-base:trixie" in (ROOT / "Makefile").read_text()
    assert 'IMAGE="${1:-localhost/debian-base:trixie}"' in (CONTAINERS / "podman" / "base-image.sh").read_text()
