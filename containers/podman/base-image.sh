#!/usr/bin/env bash
# Makes localhost/debian-base:<suite> (trixie by default: the REDCap image's base) when no
# registry can be reached: debootstrap a minimal Debian and import it. The tag names the suite
# (localhost/debian-base:bookworm for the test MariaDB). Cached: the image (and its tarball under
# ${BASE_CACHE_DIR:-~/.cache/redcap-image}) is reused on later runs.
set -euo pipefail
source "$(dirname "$0")/env.sh"
IMAGE="${1:-localhost/debian-base:trixie}"
SUITE="${IMAGE##*:}"
case "$SUITE" in
  bookworm|trixie) ;;
  *) echo "base-image.sh: the tag must name a Debian suite (bookworm or trixie), not $SUITE" >&2; exit 64 ;;
esac
if podman image exists "$IMAGE"; then
  echo "$IMAGE: present"
  exit 0
fi
CACHE_DIR="${BASE_CACHE_DIR:-$HOME/.cache/redcap-image}"
TARBALL="$CACHE_DIR/debian-$SUITE-minbase.tar"
mkdir -p "$CACHE_DIR"
if [[ ! -s "$TARBALL" ]]; then
  command -v debootstrap >/dev/null || { echo "debootstrap is not installed (apt-get install debootstrap)" >&2; exit 1; }
  # The mirror this machine's apt uses (the first URIs line), so no other host is contacted.
  MIRROR="$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -n1)"
  MIRROR="${MIRROR:-http://deb.debian.org/debian}"
  ROOTFS="$(mktemp -d)"
  trap 'rm -rf "$ROOTFS"' EXIT
  debootstrap --variant=minbase "$SUITE" "$ROOTFS" "$MIRROR" >/dev/null
  # The image must use the public Debian archive wherever it is rebuilt, not this mirror.
  rm -f "$ROOTFS/etc/apt/sources.list"
  cat > "$ROOTFS/etc/apt/sources.list.d/debian.sources" <<SOURCES
Types: deb
URIs: http://deb.debian.org/debian
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://deb.debian.org/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
  # A name of its own: helpers sharing the cache may make the same suite at once.
  tar -C "$ROOTFS" -cf "$TARBALL.tmp.$$" .
  mv "$TARBALL.tmp.$$" "$TARBALL"
fi
podman import --change 'CMD ["/bin/bash"]' "$TARBALL" "$IMAGE" >/dev/null
echo "$IMAGE: imported from $TARBALL"
