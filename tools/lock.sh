#!/usr/bin/env bash
# Regenerates requirements.lock: the exact version of every Python package npcface installs
# (direct, transitive and every extra: test, ray), resolved by pip from the ranges in pyproject.toml.
#
#   bash tools/lock.sh            # then run the tests and commit requirements.lock
#
# How: pip resolves the project for the oldest Python we support (3.10, Linux x86_64 wheels only),
# so every locked release also has wheels for 3.10; the lock is then installed with --no-deps into
# a clean venv of this machine's Python and must import and pass `pip check` there. Why pip rather
# than pip-tools or uv: pip honours this machine's local wheel mirrors and pip config, needs
# nothing more installed, and the loading check is the one that matters (a torchaudio built
# against another torch only fails when imported).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OLDEST_PYTHON=3.10
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python3 -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install -q --upgrade pip
# The requirements as pyproject.toml states them (test extras included). pocketsphinx ships only
# as source, which a resolve for another Python cannot build: its own dependency is listed instead
# and its version is resolved on this Python (it builds on 3.10 from the same source).
"$py" - "$ROOT/pyproject.toml" "$work" <<'PY'
import sys, tomllib
from pathlib import Path
project = tomllib.loads(Path(sys.argv[1]).read_text())["project"]
wanted = project["dependencies"] + [r for group in project["optional-dependencies"].values() for r in group]
# pip evaluates markers for the Python it runs on, not the target: name pytest's 3.10-only needs.
PYTEST_ON_310 = ["exceptiongroup", "tomli"]
source_only = [r for r in wanted if r.startswith("pocketsphinx")]
Path(sys.argv[2], "wheels.txt").write_text("\n".join([r for r in wanted if r not in source_only] + ["sounddevice"] + PYTEST_ON_310) + "\n")
Path(sys.argv[2], "source.txt").write_text("\n".join(source_only) + "\n")
PY
"$py" -m pip install -q --dry-run --ignore-installed --only-binary=:all: --python-version "$OLDEST_PYTHON" \
    --report "$work/wheels.json" -r "$work/wheels.txt" pip setuptools wheel
"$py" -m pip install -q --dry-run --ignore-installed --no-deps --report "$work/source.json" -r "$work/source.txt"
"$py" - "$work/wheels.json" "$work/source.json" > "$work/lock" <<'PY'
import json, sys
pins = {}
for report in sys.argv[1:]:
    for item in json.load(open(report))["install"]:
        pins[item["metadata"]["name"]] = item["metadata"]["version"]
for name in sorted(pins, key=str.lower):
    print(f"{name}=={pins[name]}")
PY
"$py" -m pip install -q --no-deps -r "$work/lock"
# Loading is the test that matters: a torchaudio built against another torch fails here.
"$py" -c 'import torch, torchaudio, mediapipe, pocketsphinx, av, cv2, zmq; torchaudio.functional.melscale_fbanks(201, 0.0, 8000.0, 40, 16000)'
"$py" -m pip check
{
    echo "# Exact versions of every package npcface installs. Made by: bash tools/lock.sh"
    echo "# Resolved by pip from pyproject.toml for Python $OLDEST_PYTHON+ on Linux $(uname -m). Do not edit by hand."
    cat "$work/lock"
} > "$ROOT/requirements.lock"
echo "wrote $ROOT/requirements.lock ($(grep -vc '^#' "$ROOT/requirements.lock") packages)" >&2
