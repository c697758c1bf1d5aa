#!/usr/bin/env bash
# The test command: sets everything up on a fresh machine (the tests' system tools included),
# then runs the whole test suite.
set -euo pipefail
export NPCFACE_SETUP=test
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
exec python -m pytest -q "$@"
