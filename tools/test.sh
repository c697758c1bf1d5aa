#!/usr/bin/env bash
# The test command: sets everything up on a fresh machine (the tests' system tools included),
# then runs the whole test suite.
set -euo pipefail
export NPCFACE_SETUP=test
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
# The Godot addon's tests (tests/test_godot_*.py) run Debian's Godot 4 in a sid chroot: build it
# now when missing (~3 min, once; cached outside the repo), so a broken build fails loudly here.
if [ "$(id -u)" = 0 ] || command -v sudo >/dev/null; then
    bash "$ROOT/tools/godot.sh" --version >/dev/null
fi
exec python -m pytest -q "$@"
