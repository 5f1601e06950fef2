"""The extension check that build.sh runs (containers/redcap/extensions.py): what is baked, what is refused."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from testkit.redcap_extensions import EXTENSIONS_PY, LANGUAGE_INI, load, module_zip, symlink_zip

ext = load()
PREFIX = "s3://bucket/extensions/"


def _source(tmp_path: Path, files: dict[str, bytes | str]) -> Path:
    source = tmp_path / "source"
    for name, data in files.items():
        path = source / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
    return source


def _stage(tmp_path: Path, files: dict[str, bytes | str]) -> tuple[Any, Path]:
    webroot = tmp_path / "redcap"
    webroot.mkdir()
    return ext.stage(_source(tmp_path, files), PREFIX, webroot), webroot


def test_modules_and_language_files_land_in_the_web_root(tmp_path: Path) -> None:
    staged, webroot = _stage(
        tmp_path,
        {"demo.zip": module_zip(), "other.zip": module_zip("site_other_v2.1"), "French.ini": LANGUAGE_INI},
    )
    assert staged.modules == ["demo_module_v1.0.0", "site_other_v2.1"]
    assert staged.languages == ["French.ini"]
    assert (webroot / "modules" / "demo_module_v1.0.0" / "config.json").is_file()
    assert (webroot / "modules" / "site_other_v2.1" / "DemoModule.php").is_file()
    assert (webroot / "languages" / "French.ini").read_text() == LANGUAGE_INI


def test_an_empty_or_missing_source_bakes_nothing(tmp_path: Path) -> None:
    webroot = tmp_path / "redcap"
    webroot.mkdir()
    staged = ext.stage(tmp_path / "absent", PREFIX, webroot)
    assert staged.modules == []
    assert staged.languages == []
    assert not (webroot / "modules").exists()


def _zip(entries: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, text in entries.items():
            zf.writestr(name, text)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"not a zip", "not a zip file"),
        (_zip({}), "empty"),
        (_zip({"a_v1.0.0/config.json": "{}", "b_v1.0.0/config.json": "{}"}), "exactly one top-level folder"),
        (_zip({"a_v1.0.0/config.json": "{}", "README.md": "x"}), "exactly one top-level folder"),
        (_zip({"config.json": "{}"}), "exactly one top-level folder"),
        (_zip({"redcap-module-main/config.json": "{}"}), "is not name_vX.Y.Z"),
        (_zip({"demo_v1.0.0.0/config.json": "{}"}), "is not name_vX.Y.Z"),
        (_zip({"demo_v1.0.0/README.md": "x"}), "has no config.json"),
        (_zip({"demo_v1.0.0/config.json": "{not json"}), "not valid JSON"),
        (_zip({"demo_v1.0.0/config.json": "[]"}), "not a JSON object"),
        (_zip({"demo_v1.0.0/config.json": "{}", "demo_v1.0.0/../../etc/cron.d/x": "x"}), "absolute or .. path"),
        (_zip({"/demo_v1.0.0/config.json": "{}"}), "absolute or .. path"),
        (symlink_zip(), "symbolic link"),
    ],
)
def test_a_bad_module_zip_is_refused_naming_its_key(tmp_path: Path, data: bytes, problem: str) -> None:
    with pytest.raises(ext.ExtensionError, match=problem) as err:
        _stage(tmp_path, {"good.zip": module_zip(), "bad.zip": data})
    assert str(err.value).startswith(f"{PREFIX}bad.zip: ")


@pytest.mark.parametrize(
    ("name", "data", "problem"),
    [
        ("lang/French.ini", LANGUAGE_INI, "not in folders"),
        ("French.txt", LANGUAGE_INI, r"neither a module zip \(.zip\) nor a language file"),
        ("1French.ini", LANGUAGE_INI, "language file name"),
        ("Fr;ench.ini", LANGUAGE_INI, "language file name"),
        ("French.ini", "", "1 byte to"),
        ("French.ini", b"\xff\xfe", "UTF-8"),
        ("French.ini", "a = 1\x00", "NUL"),
    ],
)
def test_a_bad_language_file_is_refused_naming_its_key(tmp_path: Path, name: str, data: str, problem: str) -> None:
    with pytest.raises(ext.ExtensionError, match=problem) as err:
        _stage(tmp_path, {"Good.ini": LANGUAGE_INI, name: data})
    assert str(err.value).startswith(f"{PREFIX}{name}: ")


def test_a_language_file_over_the_size_bound_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ext.ExtensionError, match=f"{PREFIX}Big.ini: .*MB"):
        _stage(tmp_path, {"Big.ini": "a" * (ext.MAX_LANGUAGE_BYTES + 1)})


def test_the_same_module_twice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ext.ExtensionError, match="already in the image"):
        _stage(tmp_path, {"a.zip": module_zip(), "b.zip": module_zip()})


def _run(source: Path, webroot: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 -- this interpreter, the build's own script, fixed argv
        [sys.executable, str(EXTENSIONS_PY), "--source", str(source), "--prefix", PREFIX, "--webroot", str(webroot)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_command_line_exits_1_with_the_key_and_0_with_a_summary(tmp_path: Path) -> None:
    webroot = tmp_path / "redcap"
    webroot.mkdir()
    good = _source(tmp_path, {"demo.zip": module_zip()})
    ok = _run(good, webroot)
    assert ok.returncode == 0, ok.stderr
    assert "baked 1 module(s) ['demo_module_v1.0.0']" in ok.stderr
    (good / "bad.zip").write_bytes(b"junk")
    bad = _run(good, tmp_path / "w2")
    assert bad.returncode == 1
    assert f"extensions: {PREFIX}bad.zip: not a zip file" in bad.stderr
