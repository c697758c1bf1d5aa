"""Face capture: a talking video becomes a MotionTrack (head rotation and translation, eye gaze,
ARKit blendshapes) with MediaPipe's face mesh (0.10.21, its models ship in the wheel; nothing is
downloaded). The landmark-to-channel mapping and its calibration are in capture_blendshapes.py.

Frames where no face is found are filled by linear interpolation between the nearest frames
with a face (held at the ends) and counted in CaptureResult.frames_without_face; a video with no
face at all raises NoFaceError.

Head translation is a rough estimate from the face's image position and size, assuming a 50
degree horizontal field of view and 9 cm between the outer eye corners, and is given relative to
the take's median position (x to the image right, y up, z toward the camera, metres).
"""
from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ImageError, NoFaceError
from ..formats.video import read_video, video_info
from ..native_quiet import native_stderr_silenced
from ..types import MotionTrack
from .blendshapes import (MEASUREMENTS, channels_from_measurements, euler_from_frame, measure_face, pitch_without_jaw,
                          to_camera_coordinates)

CAMERA_FOV_DEG = 50.0
EYE_CORNERS_M = 0.09  # outer eye corner distance of an adult face


@dataclass(frozen=True)
class CaptureResult:
    track: MotionTrack
    measurements: np.ndarray  # (T, len(MEASUREMENTS)) raw per-frame measurements, IOD units
    frames_without_face: int
    seconds: float  # wall-clock time spent decoding and tracking

    @property
    def capture_fps(self) -> float:
        return len(self.track) / self.seconds if self.seconds > 0 else float("inf")

    @property
    def mouth_opening(self) -> np.ndarray:
        """Inner-lip gap over the face size, per frame (the measuring stick for lip sync)."""
        return self.measurements[:, MEASUREMENTS.index("lip_gap")]


class FaceTracker:
    """MediaPipe face mesh in video mode (tracks from frame to frame, faster than detecting)."""

    def __init__(self, video_mode: bool = True):
        with native_stderr_silenced():
            import mediapipe as mp

            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=not video_mode, max_num_faces=1, refine_landmarks=True,
                min_detection_confidence=0.5, min_tracking_confidence=0.5)
            # The graph sets up (and logs) on background threads; one blank frame waits for that.
            self._mesh.process(np.zeros((64, 64, 3), np.uint8))
        self._seen_face = False  # the landmark stage logs once more on its first face

    def landmarks(self, rgb: np.ndarray) -> np.ndarray | None:
        """(478, 3) normalized landmarks of the most prominent face, or None."""
        if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ImageError(f"face tracking needs RGB uint8 frames, got {rgb.shape} {rgb.dtype}")
        if self._seen_face:
            result = self._mesh.process(np.ascontiguousarray(rgb))
        else:
            with native_stderr_silenced():
                result = self._mesh.process(np.ascontiguousarray(rgb))
            self._seen_face = bool(result.multi_face_landmarks)
        if not result.multi_face_landmarks:
            return None
        return np.array([(p.x, p.y, p.z) for p in result.multi_face_landmarks[0].landmark])

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> "FaceTracker":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _head_position(points: np.ndarray, iod_px: float, width: int, height: int) -> np.ndarray:
    """Camera-space head position in metres (pinhole camera, CAMERA_FOV_DEG wide)."""
    focal = (width / 2) / np.tan(np.radians(CAMERA_FOV_DEG / 2))
    depth = focal * EYE_CORNERS_M / iod_px
    centre = points[[33, 263]].mean(axis=0)  # between the outer eye corners
    return np.array([(centre[0] - width / 2) * depth / focal,
                     (centre[1] + height / 2) * depth / focal,  # y is already up (negated)
                     -depth])


def _fill_gaps(values: np.ndarray, found: np.ndarray) -> np.ndarray:
    """Linear interpolation over frames without a face (held at the ends), column by column."""
    index = np.arange(len(values))
    filled = values.reshape(len(values), -1).copy()
    for column in range(filled.shape[1]):
        filled[:, column] = np.interp(index, index[found], filled[found, column])
    return filled.reshape(values.shape)


@dataclass(frozen=True)
class TrackedLandmarks:
    """What the face tracker saw in a take, before any measurement: the raw material capture's
    calibration works from (and what core/capture/cache.py stores per video)."""

    fps: float
    times: np.ndarray  # (T,) seconds
    found: np.ndarray  # (T,) bool, a face was found in the frame
    points: np.ndarray  # (T, 478, 3) float32 camera coordinates in pixels (x right, y up, z toward us), 0 where not found
    width: int
    height: int
    seconds: float  # wall-clock time spent decoding and tracking


def track_frames(frames: Iterable[tuple[float, np.ndarray]], fps: float) -> TrackedLandmarks:
    """MediaPipe face mesh on every (time, RGB frame)."""
    started = time.perf_counter()
    times, found, points = [], [], []
    width = height = 0
    with FaceTracker() as tracker:
        for time_s, rgb in frames:
            times.append(time_s)
            height, width = rgb.shape[:2]
            landmarks = tracker.landmarks(rgb)
            found.append(landmarks is not None)
            points.append(np.zeros((478, 3)) if landmarks is None else to_camera_coordinates(landmarks, width, height))
    return TrackedLandmarks(fps=float(fps), times=np.array(times, dtype=np.float64), found=np.array(found, dtype=bool),
                            points=np.array(points, dtype=np.float32).reshape(len(times), 478, 3),
                            width=width, height=height, seconds=time.perf_counter() - started)


def capture_from_landmarks(tracked: TrackedLandmarks) -> CaptureResult:
    """Tracked landmarks -> MotionTrack (per-frame measurements, then the per-take calibration)."""
    found = tracked.found
    if not found.any():
        raise NoFaceError(f"no face found in any of the {len(found)} frames")
    count = len(found)
    rotations, positions = np.zeros((count, 3)), np.zeros((count, 3))
    measured = np.zeros((count, len(MEASUREMENTS)))
    for i in np.flatnonzero(found):
        points = tracked.points[i].astype(np.float64)
        rotation, iod, measured[i] = measure_face(points)
        rotations[i] = euler_from_frame(rotation)
        positions[i] = _head_position(points, iod, tracked.width, tracked.height)
    rotations = _fill_gaps(rotations, found)
    positions = _fill_gaps(positions, found)
    measured = _fill_gaps(measured, found)
    rotations[:, 1] = pitch_without_jaw(rotations[:, 1], measured[:, MEASUREMENTS.index("lip_gap")])
    blendshapes, gaze = channels_from_measurements(measured)
    track = MotionTrack(
        fps=tracked.fps, times=tracked.times, head_rotation=rotations,
        head_translation=positions - np.median(positions, axis=0), gaze=gaze, blendshapes=blendshapes)
    return CaptureResult(track=track, measurements=measured, frames_without_face=int((~found).sum()),
                         seconds=tracked.seconds)


def capture_frames(frames: Iterable[tuple[float, np.ndarray]], fps: float) -> CaptureResult:
    """Track every (time, RGB frame) and turn the take into a MotionTrack at ``fps``."""
    return capture_from_landmarks(track_frames(frames, fps))


def capture_video_result(path: str | Path) -> CaptureResult:
    """Capture a video file (any container PyAV reads); see capture_frames."""
    info = video_info(path)
    return capture_frames(read_video(path), info.fps)


def capture_video(path: str | Path) -> MotionTrack:
    """MediaPipe face mesh per frame -> head rotation, gaze and ARKit channels (the contract API)."""
    return capture_video_result(path).track
