#!/usr/bin/env bash
# The main job on bundled defaults: sets everything up on a fresh machine, then animates the
# bundled portrait speaking the bundled dialogue line. Outputs land in ./out/.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
cd "$ROOT"
exec npcface demo --out out "$@"
