"""Runs the Godot sample's GDScript headless through tools/godot.sh (Debian's Godot 4 in a sid
chroot), for tests/test_godot_*.py."""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "godot_sample"
GODOT_SH = ROOT / "tools" / "godot.sh"
CHROOT = Path(os.environ.get("NPCFACE_GODOT_ROOT", Path.home() / ".cache" / "npcface" / "godot-sid"))


def godot_reason() -> str | None:
    """Why the Godot tests cannot run here (None: they can). tools/test.sh builds the chroot."""
    if (CHROOT / ".npcface-ready").is_file():
        return None
    if os.geteuid() != 0 and shutil.which("sudo") is None:
        return "the Godot chroot needs root or sudo to build (bash tools/godot.sh --version)"
    return None  # buildable: the first run builds it (~3 min)


needs_godot = pytest.mark.skipif(godot_reason() is not None, reason=godot_reason() or "")


@functools.cache
def imported_project() -> Path:
    """The sample project with its global class cache built (Godot's --import), once a session."""
    result = subprocess.run(["bash", str(GODOT_SH), "--path", str(SAMPLE), "--import"],
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return SAMPLE


def run_godot(script: str, *args: str, binds: tuple[Path, ...] = (), timeout: float = 300) -> subprocess.CompletedProcess:
    """Runs res://`script` in the sample project; `binds`: host folders the script reads or writes."""
    project = imported_project()
    env = {**os.environ, "NPCFACE_GODOT_BINDS": ":".join(str(b) for b in binds)}
    command = ["bash", str(GODOT_SH), "--path", str(project), "-s", script]
    if args:
        command += ["--", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
