#!/usr/bin/env bash
# Runs Debian's Godot 4 headless: `bash tools/godot.sh [godot args...]`, e.g.
#   bash tools/godot.sh --version
#   bash tools/godot.sh --path godot_sample -s res://addons/npcface/tests/run_unit_tests.gd
#
# Why a chroot: Debian's `godot` package (4.6.x) lives in Debian sid and needs a newer libc than
# a Debian 12 host has. The first call builds a minimal sid chroot with it (~3 min, needs root and
# the network); later calls reuse it.
#
# Where things are:
#   NPCFACE_GODOT_ROOT   the chroot (default ~/.cache/npcface/godot-sid; never inside the repo)
#   --path DIR           the project: bind-mounted at the SAME absolute path inside the chroot,
#                        so host paths and chroot paths of the project are identical
#   NPCFACE_GODOT_BINDS  more host directories (colon-separated) bind-mounted the same way, e.g. a
#                        folder a test writes its results to
# The chroot shares the host's network namespace: 127.0.0.1 inside is the host's loopback.
# Safe against concurrent callers (one builds, the others wait on a lock) and against a
# half-built chroot left by a killed run (built in DIR.partial, moved into place when complete).
set -euo pipefail

CHROOT="${NPCFACE_GODOT_ROOT:-$HOME/.cache/npcface/godot-sid}"
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

mkdir -p "$(dirname "$CHROOT")"
exec 9>"$CHROOT.lock"

build_chroot() {
    local partial="$CHROOT.partial"
    command -v debootstrap >/dev/null || {
        echo "npcface godot: installing debootstrap" >&2
        as_root apt-get update -q >&2
        DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q --no-install-recommends debootstrap >&2
    }
    # A killed build leaves DIR.partial, maybe with /proc still mounted: unmount before removing.
    if [ -d "$partial" ]; then
        as_root umount -l "$partial/proc" 2>/dev/null || true
        as_root rm -rf --one-file-system "$partial"
    fi
    echo "npcface godot: building a Debian sid chroot with Godot in $CHROOT (first run, ~3 min)" >&2
    as_root debootstrap --variant=minbase sid "$partial" http://deb.debian.org/debian >&2
    as_root cp /etc/resolv.conf "$partial/etc/resolv.conf"
    as_root mount -t proc proc "$partial/proc"
    as_root chroot "$partial" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends godot >&2
    as_root chroot "$partial" apt-get clean
    as_root umount -l "$partial/proc"
    as_root touch "$partial/.npcface-ready"
    as_root mv "$partial" "$CHROOT"
}

bind_same_path() {  # host dir -> the same absolute path inside the chroot (unmounted on exit)
    local dir
    dir="$(cd "$1" && pwd -P)"
    as_root mkdir -p "$CHROOT$dir"
    as_root mount --bind "$dir" "$CHROOT$dir"
    mounted+=("$CHROOT$dir")
}

flock 9
if [ ! -f "$CHROOT/.npcface-ready" ]; then
    if [ -e "$CHROOT" ]; then  # neither complete nor ours to trust: start over
        as_root umount -l "$CHROOT/proc" 2>/dev/null || true
        as_root rm -rf --one-file-system "$CHROOT"
    fi
    build_chroot
fi
mountpoint -q "$CHROOT/proc" || as_root mount -t proc proc "$CHROOT/proc"

# The project (and any extra folders) must be visible inside the chroot.
mounted=()
trap 'for m in "${mounted[@]}"; do as_root umount -l "$m" 2>/dev/null || true; done' EXIT
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
    case "${args[i]}" in
        --path) bind_same_path "${args[i + 1]}"; args[i + 1]="$(cd "${args[i + 1]}" && pwd -P)" ;;
        --path=*) dir="${args[i]#--path=}"; bind_same_path "$dir"; args[i]="--path=$(cd "$dir" && pwd -P)" ;;
    esac
done
IFS=: read -r -a extra <<< "${NPCFACE_GODOT_BINDS:-}"
for dir in "${extra[@]}"; do [ -n "$dir" ] && bind_same_path "$dir"; done
flock -u 9

# Not exec: the trap must unmount the project after Godot exits.
as_root chroot "$CHROOT" env HOME=/root LANG=C.UTF-8 godot --headless "${args[@]}"
