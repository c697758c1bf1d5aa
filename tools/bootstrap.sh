#!/usr/bin/env bash
# Set-up shared by the README's two commands: system packages, a virtual environment made from
# requirements.lock (exact versions, nothing resolved at install time), the project itself.
# Idempotent and quiet when the venv already matches the lock. Sourced, not run.
#   NPCFACE_VENV=DIR        where the venv lives (default .venv in the checkout)
#   NPCFACE_SETUP=test      also the system tools only the tests need (espeak-ng, sox, mono, node)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${NPCFACE_VENV:-$ROOT/.venv}"
LOCK="$ROOT/requirements.lock"

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# The main job needs only Python's venv. The tests also make speech (espeak-ng, sox), compile the
# Unity sample's C# client (mono) and run the independent Node.js protocol client.
need_apt=()
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if [ "${NPCFACE_SETUP:-}" = test ]; then
    command -v espeak-ng >/dev/null || need_apt+=(espeak-ng)
    command -v sox >/dev/null || need_apt+=(sox)
    command -v mcs >/dev/null || need_apt+=(mono-devel)
    command -v node >/dev/null || need_apt+=(nodejs npm)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
    echo "npcface setup: installing system packages: ${need_apt[*]}" >&2
    as_root apt-get update -q >&2
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q --no-install-recommends "${need_apt[@]}" >&2
fi

# The venv records the hash of the lock (and of pyproject.toml, for the project's own entry
# points) it was built from; any other hash brings it up to date, whatever the files' mtimes say.
stamp="$VENV/.npcface-lock"
want="$(cat "$LOCK" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ]; then
    echo "npcface setup: creating $VENV" >&2
    python3 -m venv "$VENV"
fi
# The stamp says which lock the venv was built from; the package check catches a venv changed by
# hand since (a `pip install -U` that brought in a release the lock does not name).
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ] || ! "$VENV/bin/python" "$ROOT/tools/lock_check.py" --venv "$LOCK" >/dev/null; then
    echo "npcface setup: installing the locked Python packages into $VENV (first run takes a few minutes)" >&2
    rm -f "$stamp"
    # Exact versions, no resolver: --no-deps keeps pip from pulling anything the lock lacks.
    "$VENV/bin/python" -m pip install -q --no-deps --disable-pip-version-check -r "$LOCK" >&2
    # Packages an older lock had and this one does not are removed, so the venv equals the lock.
    "$VENV/bin/python" "$ROOT/tools/lock_check.py" --extras "$LOCK" | xargs -r "$VENV/bin/python" -m pip uninstall -q -y >&2
    "$VENV/bin/python" -m pip install -q --no-deps --no-build-isolation --disable-pip-version-check -e "$ROOT" >&2
    "$VENV/bin/python" -m pip check >&2
    echo "$want" > "$stamp"
fi
if [ "${NPCFACE_SETUP:-}" = test ] && [ -f "$ROOT/tests/node_client/package.json" ] \
        && [ ! -d "$ROOT/tests/node_client/node_modules" ]; then
    echo "npcface setup: installing the Node.js test client's packages" >&2
    (cd "$ROOT/tests/node_client" && npm ci --silent --no-audit --no-fund >&2)
fi
export PATH="$VENV/bin:$PATH"
