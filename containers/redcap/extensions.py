#!/usr/bin/env python3
"""Validate and stage REDCap external modules and language files into the build context.

The one place that decides what may be baked into the image from ``ExtensionsS3Prefix``
(docs/image-build.md, "External modules and language files"): ``build.sh`` runs it in the
CodeBuild project (and in ``make image``), the CodeBuild emulator and the unit tests import it.
Standard library only: it runs on CodeBuild's ``aws/codebuild/standard:7.0`` python3 and in the
tests.

Facts from REDCap's External Module framework (``ExternalModules/classes/ExternalModules.php``,
read in the public copy ucsf-research-tech/paper_trail, commit 4a2bb63):

- modules live in ``dirname(APP_PATH_DOCROOT)/modules/``, i.e. the web root's ``modules/``
  (``getModuleDirectories``), one folder per module version; ``downloadModule`` extracts a
  downloaded module there too;
- a folder name is ``<prefix>_v<version>``: the text after the last ``_`` must be ``v``
  followed by one to three numeric parts, otherwise REDCap does not list the folder
  (``getParseModuleDirectoryPrefixAndVersion``);
- the module's settings come from ``<folder>/config.json`` (``getConfig``).

Language files are REDCap's ``languages/<Language>.ini`` files (the release's ``languages/``
folder, ../shared/reference/redcap-image-facts.md).

Usage: ``extensions.py --source DIR --prefix s3://BUCKET/PREFIX/ --webroot CTX/redcap``.
``DIR`` holds the objects under the prefix as ``aws s3 cp --recursive`` wrote them; every
error names the S3 key (``PREFIX`` + the file's path under ``DIR``) and exits 1.
"""

from __future__ import annotations

import argparse
import json
import re
import stat
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

# What REDCap lists: <prefix>_v<1 to 3 numeric parts>. The prefix part is kept to the characters
# module folder names use (letters, digits, _ and -), which also keeps it a safe path segment.
MODULE_FOLDER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*_v\d+(\.\d+){0,2}$")
# A language file name as REDCap shows it in its language list: a plain file name ending in .ini.
LANGUAGE_FILE = re.compile(r"^[A-Za-z][A-Za-z0-9_ ()-]{0,63}\.ini$")
MAX_MODULE_ZIP_BYTES = 200 * 1024 * 1024
MAX_MODULE_UNPACKED_BYTES = 500 * 1024 * 1024
MAX_LANGUAGE_BYTES = 5 * 1024 * 1024


class ExtensionError(Exception):
    """A file under the prefix that cannot be baked; the message starts with its S3 key."""


@dataclass
class Staged:
    modules: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)


def module_folder(zip_path: Path, key: str) -> str:
    """The one ``name_vX.Y.Z`` folder the zip holds, after checking every entry; else ExtensionError."""
    if zip_path.stat().st_size > MAX_MODULE_ZIP_BYTES:
        raise ExtensionError(f"{key}: larger than {MAX_MODULE_ZIP_BYTES // (1024 * 1024)} MB")
    try:
        with zipfile.ZipFile(zip_path) as zf:
            infos = zf.infolist()
    except zipfile.BadZipFile:
        raise ExtensionError(f"{key}: not a zip file") from None
    if not infos:
        raise ExtensionError(f"{key}: the zip is empty")
    tops: set[str] = set()
    unpacked = 0
    for info in infos:
        name = info.filename
        parts = PurePosixPath(name).parts
        if name.startswith("/") or "\\" in name or re.match(r"^[A-Za-z]:", name) or ".." in parts:
            raise ExtensionError(f"{key}: refusing the absolute or .. path {name!r}")
        # Unix mode bits live in the high 16 bits of external_attr (zipfile's own convention).
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ExtensionError(f"{key}: refusing the symbolic link {name!r}")
        tops.add(parts[0])
        unpacked += info.file_size
    if unpacked > MAX_MODULE_UNPACKED_BYTES:
        raise ExtensionError(f"{key}: unpacks to more than {MAX_MODULE_UNPACKED_BYTES // (1024 * 1024)} MB")
    if len(tops) != 1 or all(len(PurePosixPath(i.filename).parts) == 1 and not i.is_dir() for i in infos):
        raise ExtensionError(
            f"{key}: a module zip holds exactly one top-level folder name_vX.Y.Z/, found {sorted(tops)[:5]}"
        )
    (top,) = tops
    if not MODULE_FOLDER.fullmatch(top):
        raise ExtensionError(
            f"{key}: the folder {top!r} is not name_vX.Y.Z (REDCap lists only <prefix>_v<version> folders)"
        )
    names = {info.filename for info in infos}
    config = f"{top}/config.json"
    if config not in names:
        raise ExtensionError(f"{key}: {top}/ has no config.json (REDCap reads a module's settings from it)")
    with zipfile.ZipFile(zip_path) as zf:
        try:
            parsed = json.loads(zf.read(config))
        except ValueError:
            raise ExtensionError(f"{key}: {config} is not valid JSON") from None
    if not isinstance(parsed, dict):
        raise ExtensionError(f"{key}: {config} is not a JSON object")
    return top


def check_language(path: Path, key: str) -> None:
    name = path.name
    if not LANGUAGE_FILE.fullmatch(name):
        raise ExtensionError(f"{key}: a language file name is letters, digits, space, _ ( ) - and ends in .ini")
    size = path.stat().st_size
    if size == 0 or size > MAX_LANGUAGE_BYTES:
        raise ExtensionError(f"{key}: a language file holds 1 byte to {MAX_LANGUAGE_BYTES // (1024 * 1024)} MB")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ExtensionError(f"{key}: a language file must be UTF-8 text") from None
    if "\x00" in text:
        raise ExtensionError(f"{key}: a language file must be text (it holds a NUL byte)")


def stage(source: Path, prefix: str, webroot: Path) -> Staged:
    """Check every file under ``source`` and copy it into ``webroot``'s modules/ or languages/."""
    staged = Staged()
    files = sorted(p for p in source.rglob("*") if not p.is_dir()) if source.is_dir() else []
    for path in files:
        key = prefix + path.relative_to(source).as_posix()
        if path.is_symlink():
            raise ExtensionError(f"{key}: refusing a symbolic link")
        if path.parent != source:
            raise ExtensionError(f"{key}: put module zips and language files directly under {prefix}, not in folders")
        if path.suffix == ".zip":
            top = module_folder(path, key)
            if (webroot / "modules" / top).exists():
                raise ExtensionError(f"{key}: modules/{top} is already in the image (twice under the prefix?)")
            with zipfile.ZipFile(path) as zf:
                zf.extractall(webroot / "modules")
            staged.modules.append(top)
        elif path.suffix == ".ini":
            check_language(path, key)
            (webroot / "languages").mkdir(parents=True, exist_ok=True)
            (webroot / "languages" / path.name).write_bytes(path.read_bytes())
            staged.languages.append(path.name)
        else:
            raise ExtensionError(f"{key}: neither a module zip (.zip) nor a language file (.ini)")
    return staged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--source", type=Path, required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--webroot", type=Path, required=True)
    args = parser.parse_args(argv)
    try:
        staged = stage(args.source, args.prefix, args.webroot)
    except ExtensionError as err:
        print(f"extensions: {err}", file=sys.stderr)
        return 1
    print(
        f"extensions: baked {len(staged.modules)} module(s) {staged.modules} and "
        f"{len(staged.languages)} language file(s) {staged.languages} from {args.prefix}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
