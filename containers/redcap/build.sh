#!/usr/bin/env bash
# Builds the REDCap image from a licensed release zip. The one build script: make image,
# the image tests and the stack's CodeBuild project all call it.
#
#   build.sh --zip redcap15.5.1.zip --ca-bundle global-bundle.pem [--tag REF] [--base-image REF]
#            [--builder podman|docker] [--platform linux/arm64]
#            [--extensions DIR --extensions-prefix s3://BUCKET/PREFIX/]
#
# --extensions: module zips and language .ini files (the objects under ExtensionsS3Prefix),
# checked by extensions.py and baked into the web root's modules/ and languages/ (docs/image-build.md).
#
# Prints "IMAGE=<ref>", "VERSION=<x.y.z>" and "CONTEXT_HASH=<12 hex>" on stdout.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
zip="" ca="" tag="" base="" builder="${BUILDER:-podman}" platform="" extensions="" extensions_prefix=""
while (( $# )); do
  case "$1" in
    --zip) zip="$2"; shift 2 ;;
    --ca-bundle) ca="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    --base-image) base="$2"; shift 2 ;;
    --builder) builder="$2"; shift 2 ;;
    --platform) platform="$2"; shift 2 ;;
    --extensions) extensions="$2"; shift 2 ;;
    --extensions-prefix) extensions_prefix="$2"; shift 2 ;;
    *) echo "build.sh: unknown argument $1" >&2; exit 64 ;;
  esac
done
[[ -f "$zip" ]] || { echo "build.sh: --zip: no such file: ${zip:-<unset>}" >&2; exit 64; }
[[ -s "$ca" ]] || { echo "build.sh: --ca-bundle: no such file: ${ca:-<unset>}" >&2; exit 64; }
grep -q "BEGIN CERTIFICATE" "$ca" || { echo "build.sh: --ca-bundle: not a PEM certificate bundle" >&2; exit 64; }
if [[ -n "$extensions" ]]; then
  [[ -d "$extensions" ]] || { echo "build.sh: --extensions: no such folder: $extensions" >&2; exit 64; }
  [[ -n "$extensions_prefix" ]] || { echo "build.sh: --extensions needs --extensions-prefix (names the S3 keys in errors)" >&2; exit 64; }
fi

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
# The release must unpack to exactly one redcap/ folder holding one redcap_vX.Y.Z folder.
python3 - "$zip" "$ctx" <<'PY'
import re, sys, zipfile
zip_path, ctx = sys.argv[1], sys.argv[2]
try:
    zf = zipfile.ZipFile(zip_path)
except zipfile.BadZipFile:
    sys.exit("build.sh: --zip: not a zip file")
names = zf.namelist()
if not names or any(not n.startswith("redcap/") for n in names):
    sys.exit("build.sh: --zip: a REDCap release unpacks to one folder, redcap/")
if any(n.startswith("/") or ".." in n.split("/") for n in names):
    sys.exit("build.sh: --zip: refusing absolute or .. paths")
versions = {m.group(1) for n in names if (m := re.match(r"redcap/redcap_v(\d+\.\d+\.\d+)/", n))}
if len(versions) != 1:
    sys.exit(f"build.sh: --zip: expected one redcap_vX.Y.Z folder, found {len(versions)}")
if "redcap/database.php" not in names or "redcap/install.php" not in names:
    sys.exit("build.sh: --zip: this looks like an upgrade zip; the image needs the full release (database.php, install.php)")
zf.extractall(ctx)
PY
version="$(basename "$(ls -d "$ctx"/redcap/redcap_v*)")"; version="${version#redcap_v}"
# External modules and language files go into the release's web root before the context hash,
# so they are part of the image's identity (a changed module is a new tag).
if [[ -n "$extensions" ]]; then
  python3 "$here/extensions.py" --source "$extensions" --prefix "$extensions_prefix" --webroot "$ctx/redcap"
fi
cp -a "$here/Dockerfile" "$here/.dockerignore" "$here/rootfs" "$ctx/"
cp "$ca" "$ctx/rds-ca-bundle.pem"
# A hash of everything that goes into the image: same inputs, same tag.
context_hash="$(cd "$ctx" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-12)"
tag="${tag:-localhost/redcap:$version}"

args=(build --pull=never --format docker -t "$tag" --label "org.opencontainers.image.version=$version"
      --label "redcap.context-hash=$context_hash")
[[ "$builder" == docker ]] && args=(build -t "$tag" --label "org.opencontainers.image.version=$version" --label "redcap.context-hash=$context_hash")
[[ -n "$base" ]] && args+=(--build-arg "BASE_IMAGE=$base")
[[ -n "$platform" ]] && args+=(--platform "$platform")
if [[ "$builder" == podman ]]; then
  # shellcheck source=../podman/env.sh
  source "$here/../podman/env.sh"
fi
"$builder" "${args[@]}" "$ctx" >&2
echo "IMAGE=$tag"
echo "VERSION=$version"
echo "CONTEXT_HASH=$context_hash"
