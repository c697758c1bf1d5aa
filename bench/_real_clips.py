"""The real talking clips the head and timing benches measure on, and their cached captures.

Clips: every ../shared/data/video/v*.mp4 and an evenly spread sample of GRID s1 (word alignment:
its words are the exact text) and s4 (exact sentence in a .txt). A fixed part is held out of
any tuning: whole speakers (GRID s4, and video v13, v17, v21, v22), reported apart.

Captures (MediaPipe, core/capture/video.py) are cached in bench/results/ and redone when the clip or
the capture code changes (from the landmark cache, core/capture/cache.py, so only the calibration reruns).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from _common import REPO, capture_code_version, data_dir

RESULTS = REPO / "bench" / "results"
GRID_CLIPS_PER_SPEAKER = 12
HELD_OUT_VIDEOS = frozenset({"v13", "v17", "v21", "v22"})
HELD_OUT_GRID_SPEAKERS = frozenset({"s4"})
# What ../shared/data/README.md and SOURCES.tsv say about each video: (reliability, language).
VIDEO_NOTES = {
    "v07": ("clear", "en-us"), "v13": ("clear", "en-us"), "v16": ("clear", "en-us"), "v17": ("clear", "fr"),
    "v11": ("ok", "en-us"), "v18": ("ok", "en-us"), "v19": ("ok", "en-us"), "v20": ("ok", "en-us"),
    "v08": ("uncertain", "en-us"), "v09": ("uncertain", "en-us"), "v12": ("uncertain", "en-us"),
    "v15": ("uncertain", "zh"), "v21": ("uncertain", "und"), "v22": ("uncertain", "zh"),
    "v14": ("music", "und"),
}


@dataclass(frozen=True)
class RealClip:
    name: str  # "v07", "s1_bbaf3s"
    path: Path
    group: str  # "video" or "grid"
    language: str  # en-us: pocketsphinx phones; anything else: the acoustic fallback
    text: str | None  # the exact words, when known
    reliability: str  # clear / ok / uncertain (possible A/V offset) / music
    held_out: bool  # never used to tune anything


@dataclass(frozen=True)
class CapturedClip:
    times: np.ndarray  # (T,) seconds
    rotation: np.ndarray  # (T, 3) yaw, pitch, roll degrees
    lip_gap: np.ndarray  # (T,) inner-lip gap over face size
    fps: float


def real_clips(data: Path) -> list[RealClip]:
    clips = []
    for path in sorted((data / "video").glob("v*.mp4")):
        name = path.stem.split("_")[0]
        reliability, language = VIDEO_NOTES.get(name, ("unknown", "und"))
        clips.append(RealClip(name, path, "video", language, None, reliability, name in HELD_OUT_VIDEOS))
    for speaker in ("s1", "s4"):
        videos = sorted((data / "train" / "grid" / speaker).glob("*.mp4"))
        step = max(1, len(videos) // GRID_CLIPS_PER_SPEAKER)
        for path in videos[::step][:GRID_CLIPS_PER_SPEAKER]:
            clips.append(RealClip(f"{speaker}_{path.stem}", path, "grid", "en-us", grid_text(path), "clear",
                                  speaker in HELD_OUT_GRID_SPEAKERS))
    return clips


def grid_text(video: Path) -> str | None:
    """The clip's words: from its .align (silences dropped) or its .txt. Not core/train/data's
    text_beside: the clip list must not depend on the code under measurement (``--before``
    runs it on older trees)."""
    align, txt = video.with_suffix(".align"), video.with_suffix(".txt")
    if align.exists():
        words = [line.split()[2] for line in align.read_text().splitlines() if len(line.split()) == 3]
        return " ".join(w for w in words if w not in ("sil", "sp")) or None
    if txt.exists():
        return txt.read_text().strip() or None
    return None


def captured(clip: RealClip, refresh: bool = False) -> CapturedClip:
    """The clip's captured head rotation and lip gap, from the cache when still valid."""
    from npcface.core.capture.cache import capture_cached

    stat = clip.path.stat()
    key = f"{clip.path.name}:{stat.st_size}:{int(stat.st_mtime)}:{capture_code_version()}"
    cache = RESULTS / f"head_capture_{clip.name}.npz"
    if cache.exists() and not refresh:
        stored = np.load(cache, allow_pickle=False)
        if str(stored["key"]) == key:
            return CapturedClip(stored["times"], stored["rotation"], stored["lip_gap"], float(stored["fps"]))
    result = capture_cached(clip.path)  # face tracking cached by content hash; the calibration runs anew
    out = CapturedClip(result.track.times, result.track.head_rotation, result.mouth_opening.astype(np.float64),
                       float(result.track.fps))
    RESULTS.mkdir(parents=True, exist_ok=True)
    np.savez(cache, key=key, times=out.times, rotation=out.rotation, lip_gap=out.lip_gap, fps=out.fps)
    return out


def chosen_clips(data: str | None, only: str | None = None) -> list[RealClip]:
    """The real clips under --data (or the default folder), those named in ``only`` (comma-separated)
    when given; empty, with a line saying so, when there are none."""
    clips = real_clips(data_dir(data)) if data_dir(data).is_dir() else []
    if only:
        clips = [c for c in clips if c.name in only.split(",")]
    if not clips:
        print(f"no real clips under {data_dir(data)}: nothing to measure (set NPCFACE_DATA or --data)")
    return clips


if __name__ == "__main__":  # capture (and cache) every clip: the slow part, done once
    import sys
    import time

    sys.path.insert(0, str(REPO))
    for clip in real_clips(data_dir(sys.argv[1] if len(sys.argv) > 1 else None)):
        started = time.perf_counter()
        c = captured(clip)
        print(f"{clip.name:16s} {len(c.times):5d} frames {c.fps:5.1f} fps  {time.perf_counter() - started:6.1f} s", flush=True)
