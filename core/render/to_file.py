"""A rig and a MotionTrack -> a video file (H.264 + AAC mp4) or a folder of PNG frames.

The one rendering loop behind ``npcface render`` and ``npcface prerender``: both call
``render_track_to_file``, so whatever the renderer and the writers add (watermarks, provenance)
reaches every rendered file.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..errors import NpcfaceError

if TYPE_CHECKING:
    from ..types import Audio, MotionTrack
    from .renderer import Renderer
    from .rig import Rig


def render_frames(new_renderer: Callable[[], Renderer], track: MotionTrack,
                  on_frame: Callable[[int], None] | None = None, keep: Sequence[int] = (),
                  workers: int = 2) -> tuple[Iterator[np.ndarray], dict[int, np.ndarray]]:
    """Frames of a MotionTrack as RGBA arrays (a generator), rendered ahead on ``workers`` threads
    (each with its own renderer from ``new_renderer``), and a dict that fills with the frames whose
    indices are in ``keep`` as they are taken. ``on_frame(count)`` is called after each frame."""
    from ..background import ordered_map

    kept: dict[int, np.ndarray] = {}
    wanted = set(keep)
    local = threading.local()

    def render(index: int) -> np.ndarray:
        if not hasattr(local, "renderer"):
            local.renderer = new_renderer()
        return local.renderer.render(track.frame(index)).rgba

    def frames() -> Iterator[np.ndarray]:
        for index, rgba in enumerate(ordered_map(render, range(len(track)), workers)):
            if index in wanted:
                kept[index] = rgba
            if on_frame is not None:
                on_frame(index + 1)
            yield rgba

    return frames(), kept


def line_id_of(audio: Audio | None, text: str | None, drive: str | None = None) -> str:
    """What the watermark's content id says about a line: its sound and text (or the take), so
    `npcface render` and `npcface prerender` mark the same line alike."""
    import hashlib

    digest = hashlib.sha256((text or "").encode() + (drive or "").encode())
    if audio is not None:
        digest.update(audio.samples.tobytes())
    return digest.hexdigest()[:16]


def render_track_to_file(rig: Rig, track: MotionTrack, audio: Audio | None, output: str | Path, kind: str, *,
                         size: tuple[int, int] = (512, 512), framing: str = "picture", cutout: bool = False,
                         keep: Sequence[int] = (), on_frame: Callable[[int], None] | None = None,
                         workers: int = 2, line_id: str = "", credentials=None) -> dict[int, np.ndarray]:
    """Render every frame of ``track`` on ``rig`` into ``output``: ``kind`` "mp4" (with ``audio``
    muxed and signed with ``credentials``, or a self-made test signer when None) or "frames" (a folder
    of PNGs). Every frame carries the watermark, whose content id covers the rig and ``line_id``.
    Returns the frames whose indices are in ``keep``."""
    from ..formats.video import write_mp4, write_png_sequence
    from .renderer import Renderer

    frames, kept = render_frames(lambda: Renderer(rig, size, cutout=cutout, framing=framing, line_id=line_id), track,
                                 on_frame, keep, workers=workers)
    try:
        if kind == "mp4":
            write_mp4(output, frames, track.fps, audio=audio, credentials=credentials)
        else:
            write_png_sequence(output, frames)
    except OSError as error:
        raise NpcfaceError(f"cannot write {output}: {error.strerror or error}") from None
    return kept
