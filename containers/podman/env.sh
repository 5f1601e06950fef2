# Sourced by the image scripts: podman settings that work on machines without systemd.
# shellcheck shell=bash
_podman_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-$_podman_dir/containers.conf}"
unset _podman_dir
