"""build.sh bakes the extensions into the build context the Dockerfile copies to /var/www/redcap/.

A stand-in builder (a script in place of podman/docker) keeps the context build.sh hands it, so the
test sees exactly what ``COPY redcap/ /var/www/redcap/`` would copy, without building an image.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from testkit import ROOT
from testkit.redcap_extensions import LANGUAGE_INI, module_zip
from testkit.redcap_release import write_release_zip

BUILD_SH = ROOT / "containers" / "redcap" / "build.sh"
PREFIX = "s3://bucket/extensions-2026-12/"
pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")


@pytest.fixture
def inputs(tmp_path: Path) -> dict[str, Path]:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\nstand-in\n-----END CERTIFICATE-----\n")
    builder = tmp_path / "builder"
    # The last argument is the context folder: keep a copy of it.
    builder.write_text('#!/usr/bin/env bash\nrm -rf "$KEEP"; cp -a "${@: -1}" "$KEEP"\n')
    builder.chmod(0o755)
    (tmp_path / "release").mkdir()
    extensions = tmp_path / "extensions"
    extensions.mkdir()
    (extensions / "demo.zip").write_bytes(module_zip())
    (extensions / "French.ini").write_text(LANGUAGE_INI)
    return {"ca": ca, "builder": builder, "zip": write_release_zip(tmp_path / "release"), "ext": extensions}


def _build(inputs: dict[str, Path], keep: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    argv = ["bash", str(BUILD_SH), "--zip", str(inputs["zip"]), "--ca-bundle", str(inputs["ca"])]
    return subprocess.run(  # noqa: S603 -- bash from PATH, the repository's build script
        [*argv, "--builder", str(inputs["builder"]), *extra],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/local/bin:/usr/bin:/bin", "KEEP": str(keep)},
        timeout=120,
    )


def _context_hash(out: str) -> str:
    (line,) = [x for x in out.splitlines() if x.startswith("CONTEXT_HASH=")]
    return line.removeprefix("CONTEXT_HASH=")


def test_modules_and_languages_land_in_the_web_root_and_the_hash(inputs: dict[str, Path], tmp_path: Path) -> None:
    plain = _build(inputs, tmp_path / "plain")
    assert plain.returncode == 0, plain.stderr
    assert not (tmp_path / "plain" / "redcap" / "modules" / "demo_module_v1.0.0").exists()

    baked = _build(inputs, tmp_path / "baked", "--extensions", str(inputs["ext"]), "--extensions-prefix", PREFIX)
    assert baked.returncode == 0, baked.stderr
    webroot = tmp_path / "baked" / "redcap"
    assert (webroot / "modules" / "demo_module_v1.0.0" / "config.json").is_file()
    assert (webroot / "languages" / "French.ini").read_text() == LANGUAGE_INI
    assert "baked 1 module(s) ['demo_module_v1.0.0'] and 1 language file(s) ['French.ini']" in baked.stderr
    # The tag's hash covers them: a module is part of the image's identity.
    assert _context_hash(baked.stdout) != _context_hash(plain.stdout)
    # The Dockerfile copies that web root into the image.
    assert "COPY redcap/ /var/www/redcap/" in (ROOT / "containers" / "redcap" / "Dockerfile").read_text()


def test_a_bad_module_stops_the_build_before_the_builder_runs(inputs: dict[str, Path], tmp_path: Path) -> None:
    (inputs["ext"] / "bad.zip").write_bytes(module_zip("no-version-folder"))
    done = _build(inputs, tmp_path / "kept", "--extensions", str(inputs["ext"]), "--extensions-prefix", PREFIX)
    assert done.returncode != 0
    assert f"extensions: {PREFIX}bad.zip: the folder 'no-version-folder' is not name_vX.Y.Z" in done.stderr
    assert not (tmp_path / "kept").exists()


def test_extensions_without_a_prefix_are_refused(inputs: dict[str, Path], tmp_path: Path) -> None:
    done = _build(inputs, tmp_path / "kept", "--extensions", str(inputs["ext"]))
    assert done.returncode == 64
    assert "--extensions needs --extensions-prefix" in done.stderr
