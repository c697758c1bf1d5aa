"""Helpers the bench scripts share: where the real data is, and timing a call."""
from __future__ import annotations

import argparse
import hashlib
import os
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def data_dir(override: str | None = None) -> Path:
    """The shared real-data folder: --data, else $NPCFACE_DATA, else ../shared/data beside the repo."""
    if override:
        return Path(override)
    if os.environ.get("NPCFACE_DATA"):
        return Path(os.environ["NPCFACE_DATA"])
    return REPO.parent / "shared" / "data"


def capture_code_version() -> str:
    """Cached captures are redone whenever the capture code changes."""
    digest = hashlib.sha1()
    for path in sorted((REPO / "core" / "capture").glob("*.py")) + [REPO / "core" / "formats" / "video.py"]:
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0


def timed(fn, *args, **kwargs):
    """(fn's result, seconds it took)."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def use_code_from(tree: str | None) -> None:
    """Import npcface from another source tree (core/, bridge/, models/ at its top)."""
    if tree:
        import sys
        import types

        package = types.ModuleType("npcface")
        package.__path__ = [tree]
        sys.modules["npcface"] = package


def add_revision_options(parser: argparse.ArgumentParser) -> None:
    """The hidden options ``run_at_revision`` runs a bench with: --json (print the measurement as
    JSON) and --code TREE (import npcface from that tree: ``use_code_from``)."""
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--code", help=argparse.SUPPRESS)


def run_at_revision(revision: str, script: str, arguments: list[str]) -> str:
    """Run ``script --json --code TREE *arguments`` on the code at git ``revision``: its stdout.
    Lets a bench compare older code with the current one in the same run, on the same machine."""
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(prefix="npcface-before-") as tree:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", revision, "core", "bridge", "models"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
        command = [sys.executable, script, "--json", "--code", tree, *arguments]
        return subprocess.run(command, check=True, capture_output=True, text=True).stdout
