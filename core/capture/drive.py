"""Drive a portrait from a performance: a Live Link Face CSV, an npcface motion JSON, or a talking
video captured on the fly (core/capture) become the curves a portrait is rendered with.

    line = driven_line("take.mp4", fps=30)          # the video's own sound comes with it
    line = driven_line("take.csv", "line.wav", fps=30)
    renderer.render(line.track.frame(i))

Retargeting: the portrait at rest is the picture, so the take is made relative to its own neutral
(a frame given by index, or per channel a resting value: the low percentile of each blendshape,
the median head pose and gaze). Blendshapes are rescaled so a channel still spans [0, 1] above its
neutral (a jaw closing past it lifts the closed lips instead); head angles and translation are kept
within what a warped picture can show.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..arkit import ARKIT_INDEX
from ..errors import ControlError, FormatError, NoFaceError
from ..types import Audio, MotionTrack

CSV_SUFFIXES = (".csv",)
JSON_SUFFIXES = (".json",)
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi")
REST_PERCENTILE = 10.0  # a blendshape's resting value in a take: most of a take is near rest
HEAD_LIMITS_DEG = np.array([30.0, 25.0, 25.0])  # yaw, pitch, roll a warped picture still carries
SWAY_LIMIT_M = 0.08  # sideways and vertical head travel
DEPTH_LIMITS_M = (-0.25, 0.12)  # back (smaller) and forward (bigger) from the portrait's distance
# Where the eyes' midpoint sits from the point the renderer turns the head about (x right, y down, z
# toward the camera, metres). Fitted on the reenactment tuning clips (bench/bench_reenact.py: rendered
# vs real landmarks, 0.068 -> 0.061 mouth widths); a head's geometry alone says ~7 cm, which overshoots.
EYES_FROM_PIVOT_M = np.array([0.0, -0.015, 0.04])
JAW = ARKIT_INDEX["JawOpen"]
SHRUGS = (ARKIT_INDEX["MouthShrugLower"], ARKIT_INDEX["MouthShrugUpper"])
# A captured JawOpen of 1 is the lower lip dropping 0.35 outer-eye-corner distances (core/capture/blendshapes),
# about 0.6 mouth widths; the rig's shrugs lift closed lips about 0.06 mouth widths at 1 (core/render/rig_shapes).
CLOSED_JAW_TO_SHRUG = 10.0


@dataclass(frozen=True)
class DrivenLine:
    """A take retargeted onto a portrait, at a constant frame rate, with the sound to mux (or None)."""

    track: MotionTrack
    audio: Audio | None
    frames_without_face: int = 0  # video takes: frames interpolated over


def driven_line(drive: str | Path, audio: str | Path | None = None, fps: float = 30.0,
                neutral: int | None = None) -> DrivenLine:
    """Read a take (CSV, JSON or video), retarget it and resample it to ``fps``.

    ``audio`` is a sound file to mux; a video's own sound is used when it is not given (a given
    ``audio`` replaces it). ``neutral`` is the take's frame that matches the portrait (the frame it
    was made from), else each channel's resting value is estimated from the whole take.
    """
    from ..audio.decode import load_audio

    if not np.isfinite(fps) or fps <= 0:
        raise ControlError(f"fps must be a positive number, got {fps}")
    track, sound, missing = read_take(drive)
    if audio is not None:
        sound = load_audio(audio)
    return DrivenLine(track=resample(retarget(track, neutral), fps), audio=sound, frames_without_face=missing)


def read_take(drive: str | Path) -> tuple[MotionTrack, Audio | None, int]:
    """(the take's curves, a video's own sound or None, frames without a face) from any take file."""
    path = Path(drive)
    suffix = path.suffix.lower()
    if suffix not in CSV_SUFFIXES + JSON_SUFFIXES + VIDEO_SUFFIXES:
        raise FormatError(f"--drive {path} must be a Live Link Face CSV (.csv), an npcface motion JSON (.json) "
                          f"or a video ({' '.join(VIDEO_SUFFIXES)})")
    if not path.is_file():
        raise FormatError(f"--drive take not found: {path}")
    if suffix in CSV_SUFFIXES:
        from ..formats.livelink import read_livelink_csv

        return _checked(path, read_livelink_csv(path)), None, 0
    if suffix in JSON_SUFFIXES:
        from ..formats.livelink import read_motion_json

        return _checked(path, read_motion_json(path)), None, 0
    return _captured(path)


def _captured(path: Path) -> tuple[MotionTrack, Audio | None, int]:
    from ..audio.decode import load_audio
    from ..formats.video import video_info
    from .video import capture_video_result

    info = video_info(path)
    try:
        result = capture_video_result(path)
    except NoFaceError as error:
        raise NoFaceError(f"{path}: {error}") from None
    sound = load_audio(path) if info.has_audio else None
    return _checked(path, from_capture(result.track)), sound, result.frames_without_face


def from_capture(track: MotionTrack) -> MotionTrack:
    """A captured take's head translation as the renderer means it. Capture places the head by its
    eyes' midpoint, which a turn or nod also swings; the renderer moves the head's pivot and swings
    the eyes itself, so the swing is taken out here (else it shows twice)."""
    from ..render.renderer import rotation_matrix

    swing = np.stack([rotation_matrix(*angles).astype(np.float64) @ EYES_FROM_PIVOT_M for angles in track.head_rotation])
    swing[:, 1] *= -1  # the renderer's y is down, a take's y is up
    return replace(track, head_translation=track.head_translation - swing)


def _checked(path: Path, track: MotionTrack) -> MotionTrack:
    if len(track) == 0:
        raise FormatError(f"{path}: the take has no frames")
    return track


def retarget(track: MotionTrack, neutral: int | None = None) -> MotionTrack:
    """The take relative to its neutral (see the module notes), within the renderer's ranges."""
    if neutral is not None and not 0 <= neutral < len(track):
        raise ControlError(f"neutral frame {neutral} is outside the take's {len(track)} frames")
    weights = track.blendshapes.astype(np.float64)
    if neutral is None:
        rest = np.percentile(weights, REST_PERCENTILE, axis=0)
        pose, sway, gaze = (np.median(a, axis=0) for a in (track.head_rotation, track.head_translation, track.gaze))
    else:
        rest = weights[neutral]
        pose, sway, gaze = track.head_rotation[neutral], track.head_translation[neutral], track.gaze[neutral]
    rest = np.clip(rest, 0.0, 1.0)
    blendshapes = np.clip((weights - rest) / np.maximum(1.0 - rest, 1e-3), 0.0, 1.0)
    _jaw_closing_past_rest(blendshapes, weights[:, JAW] - rest[JAW])
    blendshapes = blendshapes.astype(np.float32)
    rotation = np.clip(_turned_back(track.head_rotation, pose), -HEAD_LIMITS_DEG, HEAD_LIMITS_DEG)
    translation = track.head_translation - sway
    translation[:, :2] = np.clip(translation[:, :2], -SWAY_LIMIT_M, SWAY_LIMIT_M)
    translation[:, 2] = np.clip(translation[:, 2], *DEPTH_LIMITS_M)
    return replace(track, head_rotation=rotation, head_translation=translation, gaze=track.gaze - gaze,
                   blendshapes=blendshapes)


def _turned_back(angles: np.ndarray, neutral: np.ndarray) -> np.ndarray:
    """(T, 3) head angles relative to the neutral pose, as the renderer turns the picture: each pose's
    rotation composed with the neutral's inverse. Angles do not subtract once the neutral is not
    frontal: a head held rolled turns about its own tilted axis, which subtracted angles made a turn
    about the camera's (reenactment, held-out clips: lips 2.64 -> 2.46 px from the real ones)."""
    from ..render.renderer import rotation_angles, rotation_matrix

    back = rotation_matrix(*neutral, dtype=np.float64).T
    return np.array([rotation_angles(rotation_matrix(*pose, dtype=np.float64) @ back) for pose in angles]).reshape(-1, 3)


def _jaw_closing_past_rest(retargeted: np.ndarray, jaw_change: np.ndarray) -> None:
    """Closed lips lifted by a jaw that closes past the portrait's rest (in place). A portrait caught
    with the jaw dropped behind closed lips (a bilabial: JawOpen = MouthClose = 0.12-0.18 on GRID's
    closed-mouth frames, 0.01-0.03 on the rest of the take) would otherwise show every later closed
    mouth with its lips that low (reenactment: 0.026 mouth widths below the real lips on closed frames).
    Weights cannot go below 0, so MouthShrugLower/Upper, the shapes that push closed lips up, carry it."""
    lift = np.clip(-jaw_change * CLOSED_JAW_TO_SHRUG, 0.0, 1.0)
    for shape in SHRUGS:
        retargeted[:, shape] = np.maximum(retargeted[:, shape], lift)


def resample(track: MotionTrack, fps: float) -> MotionTrack:
    """The take at a constant ``fps`` on its own clock (frame i at i / fps, so a video's sound stays in
    step), for dropped frames and 60 fps takes alike; the first frame is held before it starts."""
    count = int(np.floor(max(float(track.times[-1]), 0.0) * fps + 1e-6)) + 1
    times = np.arange(count) / fps

    def at(values: np.ndarray) -> np.ndarray:
        flat = values.reshape(len(track), -1)
        out = np.stack([np.interp(times, track.times, flat[:, j]) for j in range(flat.shape[1])], axis=1)
        return out.reshape((count,) + values.shape[1:])

    return MotionTrack(fps=float(fps), times=times, head_rotation=at(track.head_rotation),
                       head_translation=at(track.head_translation), gaze=at(track.gaze),
                       blendshapes=at(track.blendshapes).astype(np.float32), phones=track.phones,
                       tongue_tip=None if track.tongue_tip is None else at(track.tongue_tip).astype(np.float32))
