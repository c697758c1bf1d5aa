"""Face tracking of a video, cached by the video's content hash, so that training and benchmarks
track each video once and every later change to capture's calibration (capture_blendshapes.py)
re-runs only the cheap part.

The cache folder is $NPCFACE_CACHE/landmarks, else ~/.cache/npcface/landmarks; entries are
``<sha256 of the file>-v<TRACKER_VERSION>.npz`` holding the TrackedLandmarks fields (no pickle).
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from ..formats.video import read_video, video_info
from .video import CaptureResult, TrackedLandmarks, capture_from_landmarks, track_frames

TRACKER_VERSION = 1  # bump when track_frames changes what it stores


def cache_root() -> Path:
    base = os.environ.get("NPCFACE_CACHE")
    return Path(base) if base else Path.home() / ".cache" / "npcface"


def file_digest(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def tracked_landmarks(video: str | Path, cache: Path | None = None) -> TrackedLandmarks:
    """The video's tracked landmarks, from the cache when this exact file was tracked before."""
    folder = (cache or cache_root()) / "landmarks"
    entry = folder / f"{file_digest(video)}-v{TRACKER_VERSION}.npz"
    if entry.exists():
        with np.load(entry, allow_pickle=False) as stored:
            return TrackedLandmarks(fps=float(stored["fps"]), times=stored["times"], found=stored["found"],
                                    points=stored["points"], width=int(stored["width"]),
                                    height=int(stored["height"]), seconds=float(stored["seconds"]))
    tracked = track_frames(read_video(video), video_info(video).fps)
    folder.mkdir(parents=True, exist_ok=True)
    partial = entry.with_suffix(".partial.npz")  # written whole, then renamed: a kill leaves no half entry
    np.savez(partial, fps=tracked.fps, times=tracked.times, found=tracked.found, points=tracked.points,
             width=tracked.width, height=tracked.height, seconds=tracked.seconds)
    partial.replace(entry)
    return tracked


def capture_cached(video: str | Path, cache: Path | None = None) -> CaptureResult:
    """capture_video_result with the face tracking cached (the calibration always runs anew)."""
    return capture_from_landmarks(tracked_landmarks(video, cache))
