#!/usr/bin/env bash
# Set-up shared by the README's two commands: system packages, a virtual environment, the project.
# Idempotent and quiet when everything is already there. Sourced, not run.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${NPCFACE_VENV:-$ROOT/.venv}"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# espeak-ng and sox make test speech; mono compiles the Unity sample's C# client; node runs the
# independent protocol client. Installed only when missing.
need_apt=()
command -v espeak-ng >/dev/null || need_apt+=(espeak-ng)
command -v sox >/dev/null || need_apt+=(sox)
command -v mcs >/dev/null || need_apt+=(mono-devel)
command -v node >/dev/null || need_apt+=(nodejs npm)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "npcface setup: installing system packages: ${need_apt[*]}" >&2
    as_root apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q --no-install-recommends "${need_apt[@]}" >&2
fi

stamp="$VENV/.npcface-installed"
if [ ! -x "$VENV/bin/python" ]; then
    echo "npcface setup: creating $VENV" >&2
    python3 -m venv "$VENV"
fi
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
    echo "npcface setup: installing Python packages (first run takes a few minutes)" >&2
    "$VENV/bin/pip" install -q --upgrade pip >&2
    # torch first, alone, so the resolver keeps torch and torchaudio on the same release.
    "$VENV/bin/pip" install -q "torch==2.11.*" "torchaudio==2.11.*" "numpy<2" >&2
    "$VENV/bin/pip" install -q -e "$ROOT[test]" >&2
    touch "$stamp"
fi
if [ -f "$ROOT/tests/node_client/package.json" ] && [ ! -d "$ROOT/tests/node_client/node_modules" ]; then
    echo "npcface setup: installing the Node.js test client's packages" >&2
    (cd "$ROOT/tests/node_client" && npm ci --silent --no-audit --no-fund >&2 || npm install --silent --no-audit --no-fund >&2)
fi
export PATH="$VENV/bin:$PATH"
