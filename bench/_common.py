"""Helpers the bench scripts share: where the real data is, and timing a call."""
from __future__ import annotations

import os
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def data_dir(override: str | None = None) -> Path:
    """The shared real-data folder: --data, else $NPCFACE_DATA, else ../shared/data beside the repo."""
    if override:
        return Path(override)
    if os.environ.get("NPCFACE_DATA"):
        return Path(os.environ["NPCFACE_DATA"])
    return REPO.parent / "shared" / "data"


def timed(fn, *args, **kwargs):
    """(fn's result, seconds it took)."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start
