"""Issue 18 item 4 in the real image: a baked module folder and language file land in the web root.

build.sh (the one build script CodeBuild runs) with ``--extensions``: the module's ``name_vX.Y.Z/``
folder must end up under ``/var/www/redcap/modules/`` (where REDCap's External Module framework
looks, ``ExternalModules::getModuleDirectories``) and the language file under ``languages/``,
readable by the runtime user the image runs as.
"""

from __future__ import annotations

from pathlib import Path

from testkit.image_harness import Pki, build_redcap_image, ensure_base_image, podman
from testkit.redcap_extensions import LANGUAGE_INI, module_zip
from testkit.redcap_release import write_release_zip

PREFIX = "s3://redcap-releases/extensions-image-test/"


def test_a_baked_module_and_language_file_land_in_the_web_root(tmp_path: Path) -> None:
    ensure_base_image()
    pki = Pki.create(tmp_path / "pki")
    extensions = tmp_path / "extensions"
    extensions.mkdir()
    (extensions / "demo.zip").write_bytes(module_zip())
    (extensions / "French.ini").write_text(LANGUAGE_INI)
    (tmp_path / "release").mkdir()
    info = build_redcap_image(
        write_release_zip(tmp_path / "release"),
        pki.ca,
        tag="localhost/redcap:extensions-test",
        extensions=(extensions, PREFIX),
    )
    try:
        # As the image's own user (USER 10001), without the entrypoint (no database needed).
        out = podman(
            "run",
            "--rm",
            "--entrypoint",
            "/bin/sh",
            info["IMAGE"],
            "-c",
            "id -u; cat /var/www/redcap/modules/demo_module_v1.0.0/config.json; echo;"
            " cat /var/www/redcap/languages/French.ini; ls /var/www/redcap/modules",
        )
    finally:
        podman("rmi", "-f", info["IMAGE"], check=False)
    lines = out.splitlines()
    assert lines[0] == "10001"
    assert '"name": "demo_module_v1.0.0"' in lines[1]
    assert LANGUAGE_INI.strip() in out
    assert lines[-1] == "demo_module_v1.0.0"
