"""From MediaPipe face-mesh landmarks to head rotation, eye gaze and the ARKit channels that the
landmarks can honestly estimate. Two steps:

1. ``measure_face(points)`` per frame: a head frame from rigid landmarks only (a symmetric face:
   the left-right axis from mirrored pairs of eye corners, temples and nose wings; the up axis
   from the nose base to the forehead) gives yaw, pitch, roll; nothing on the jaw, lips or chin
   enters it, since an up axis through the chin read every jaw opening as a nod (captured pitch
   followed JawOpen at r -0.3 to -0.8 on GRID); the landmarks are then expressed in that head frame and divided by the face size
   (the 3D distance between the outer eye corners, "IOD", about 9 cm on an adult), so every
   measurement is independent of head pose and distance to the camera.
2. ``channels_from_measurements(m)`` per take: each measurement is referred to its neutral value
   in this take (a low percentile for the mouth opening, which is closed part of the time; the
   median for the rest, which sit at rest most of the time) and divided by a fixed anatomical
   range, so a closed mouth reads ~0 and a wide open mouth ~1 whatever the take holds.

Mapping (distances in IOD, neutral subtracted; weights clipped to [0, 1]):
- Jaw and lips split as ARKit does (JawOpen = the jaw drop, MouthClose = lips held together while
  the jaw is open, so the lip gap a camera sees is JawOpen - MouthClose):
  lip opening = inner-lip gap / 0.40; jaw drop = how far the lower lip's outer edge sits below
  the nose bridge along the head's up axis / 0.35 (the vertical drop only: the 3D distance took
  in MediaPipe's noisy depth and lip protrusion; the chin landmark sits on the face contour,
  which MediaPipe places far less steadily: it followed the lip gap at r 0.3-0.75 on real clips);
  JawOpen = the larger of the two (the lips cannot part further than the jaw lets them), so
  MouthClose = JawOpen - lip opening >= 0 is the jaw drop the closed lips hide (bilabials).
  On the 15 real clips in video/ this took JawOpen's r with the lip gap from 0.79 to 0.90 on average (an
  iPhone's own JawOpen follows its lip gap at r 0.91-0.97 in the Live Link takes we have).
- MouthPucker = mouth narrowing / 0.12 with the lips together; MouthFunnel the same with the lips
  apart (an "oo" funnel). MouthSmile L/R = corner rise / 0.08; MouthFrown L/R = corner drop / 0.06,
  the rise measured from the inner-lip midpoint, less the part the lip gap explains in this take;
  MouthStretch L/R = corner moving outward / 0.08, less what a smile explains.
- EyeBlink L/R = 1 - eyelid opening / neutral opening, rescaled so 20% open is a full blink;
  EyeWide L/R = opening above neutral / 40% of it.
- BrowInnerUp = inner brow rise / 0.06 (both sides); BrowOuterUp L/R = outer brow rise / 0.06;
  BrowDown L/R = brow drop / 0.04.
- Gaze: the iris centre's offset from the eye-corner midpoint, over the eye width, relative to
  the take's median (the performer mostly looks at the camera), as an angle on a 12 mm eyeball;
  EyeLook In/Out/Up/Down = that angle / 30 degrees.
Not estimated (left at 0): CheekPuff, CheekSquint, NoseSneer, TongueOut, MouthRoll/Shrug/Press,
Jaw left/right/forward, MouthLeft/Right, EyeSquint, MouthDimple, MouthUpperUp/LowerDown: the
mesh hardly moves for them, so any number would be noise.

Pitch, per take: MediaPipe's mesh itself tilts chin-up as the mouth opens, even where nothing
but the jaw moved (a still portrait with only its jaw warped open reads +1 to +5 degrees of pitch
in every rigid frame we tried: tests/test_capture.py), so ``pitch_without_jaw`` removes from the
take's pitch the part that the lip opening explains linearly. Real nods are slower than
syllables and mostly uncorrelated with the opening, so they stay; a head that really tilts back
as the jaw opens loses that part too (the tracker cannot tell the two apart).

Conventions (as core/formats/livelink.py): yaw + = turned to its own left, pitch + = chin up,
roll + = tilted toward its own left shoulder; eye yaw + = to its left, eye pitch + = up; degrees.
"""
from __future__ import annotations

import numpy as np

from ..arkit import ARKIT_INDEX, ARKIT_NAMES

# MediaPipe face-mesh landmark indices ("left" = the subject's left, on the image right).
RIGHT_EYE_OUTER, RIGHT_EYE_INNER, LEFT_EYE_INNER, LEFT_EYE_OUTER = 33, 133, 362, 263
RIGHT_LID_UP, RIGHT_LID_DOWN, LEFT_LID_UP, LEFT_LID_DOWN = 159, 145, 386, 374
RIGHT_IRIS, LEFT_IRIS = 468, 473  # iris centres (refine_landmarks=True)
MOUTH_RIGHT, MOUTH_LEFT, UPPER_LIP_INNER, LOWER_LIP_INNER = 61, 291, 13, 14
NOSE_BRIDGE, LOWER_LIP_BOTTOM = 168, 17
RIGHT_BROW_INNER, RIGHT_BROW_OUTER, LEFT_BROW_INNER, LEFT_BROW_OUTER = 107, 70, 336, 300
# The head frame's landmarks: rigid points only (none on the jaw, lips, cheeks or brows).
# Mirrored pairs (right, left) for the left-right axis: eye corners, temples, nose wings.
SYMMETRIC_PAIRS = ((33, 263), (133, 362), (127, 356), (21, 251), (129, 358), (98, 327))
FOREHEAD_POINTS, NOSE_BASE_POINTS = (10, 151, 9), (2, 98, 327)  # the up axis runs from the second to the first

# Per-frame measurement columns.
MEASUREMENTS = (
    "lip_gap", "jaw_drop", "mouth_width",
    "corner_up_left", "corner_up_right", "corner_out_left", "corner_out_right",
    "eye_open_left", "eye_open_right",
    "brow_inner_left", "brow_inner_right", "brow_outer_left", "brow_outer_right",
    "iris_x_left", "iris_y_left", "iris_x_right", "iris_y_right",
)
M = {name: i for i, name in enumerate(MEASUREMENTS)}
EYEBALL_OVER_EYE_WIDTH = 12.0 / 30.0  # eyeball radius over eye-opening width, roughly


def head_frame(points: np.ndarray) -> np.ndarray:
    """3x3 rotation whose columns are the face's left, up and forward (toward the camera) axes,
    in camera coordinates (x image right, y up, z toward the camera)."""
    left = np.mean([points[l] - points[r] for r, l in SYMMETRIC_PAIRS], axis=0)
    left /= np.linalg.norm(left)
    up = points[list(FOREHEAD_POINTS)].mean(axis=0) - points[list(NOSE_BASE_POINTS)].mean(axis=0)
    up -= left * np.dot(up, left)
    up /= np.linalg.norm(up)
    forward = np.cross(left, up)
    return np.stack([left, up, forward], axis=1)


def euler_from_frame(rotation: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) degrees, npcface conventions, for rotation = Ry(yaw) Rx(-pitch) Rz(-roll)."""
    forward = rotation[:, 2]
    yaw = np.degrees(np.arctan2(forward[0], forward[2]))
    pitch = np.degrees(np.arcsin(np.clip(forward[1], -1.0, 1.0)))
    roll = -np.degrees(np.arctan2(rotation[1, 0], rotation[1, 1]))
    return float(yaw), float(pitch), float(roll)


def pitch_without_jaw(pitch: np.ndarray, lip_gap: np.ndarray) -> np.ndarray:
    """Per take: (T,) pitch degrees less the part the (T,) lip gap explains linearly (see the
    module notes: the tracker tilts its mesh as the mouth opens). The mouth at rest (the gap's
    5th percentile) keeps its pitch."""
    gap = lip_gap - np.percentile(lip_gap, 5) if len(lip_gap) else lip_gap
    spread = float(np.var(gap)) if len(gap) >= 3 else 0.0
    if spread < 1e-8:
        return pitch
    slope = float(np.cov(gap, pitch)[0, 1]) / spread
    return pitch - slope * gap


def to_camera_coordinates(landmarks: np.ndarray, width: int, height: int) -> np.ndarray:
    """MediaPipe's normalized (x right, y down, z away, z scaled like x) to pixels, y up, z toward us."""
    points = np.empty_like(landmarks, dtype=np.float64)
    points[:, 0] = landmarks[:, 0] * width
    points[:, 1] = -landmarks[:, 1] * height
    points[:, 2] = -landmarks[:, 2] * width
    return points


def measure_face(points: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
    """(head rotation matrix, face size in pixels (IOD), measurements (len(MEASUREMENTS),))."""
    rotation = head_frame(points)
    iod = float(np.linalg.norm(points[LEFT_EYE_OUTER] - points[RIGHT_EYE_OUTER]))
    eye_centre = (points[LEFT_EYE_OUTER] + points[RIGHT_EYE_OUTER]) / 2
    local = (points - eye_centre) @ rotation / iod  # (x left, y up, z forward), IOD units

    def distance(a: int, b: int) -> float:
        return float(np.linalg.norm(local[a] - local[b]))

    lip_middle = (local[UPPER_LIP_INNER] + local[LOWER_LIP_INNER]) / 2
    m = np.zeros(len(MEASUREMENTS))
    m[M["lip_gap"]] = distance(UPPER_LIP_INNER, LOWER_LIP_INNER)
    m[M["jaw_drop"]] = local[NOSE_BRIDGE, 1] - local[LOWER_LIP_BOTTOM, 1]  # along the head's up axis
    m[M["mouth_width"]] = distance(MOUTH_LEFT, MOUTH_RIGHT)
    m[M["corner_up_left"]] = local[MOUTH_LEFT, 1] - lip_middle[1]
    m[M["corner_up_right"]] = local[MOUTH_RIGHT, 1] - lip_middle[1]
    m[M["corner_out_left"]] = local[MOUTH_LEFT, 0] - lip_middle[0]
    m[M["corner_out_right"]] = lip_middle[0] - local[MOUTH_RIGHT, 0]
    m[M["eye_open_left"]] = distance(LEFT_LID_UP, LEFT_LID_DOWN) / distance(LEFT_EYE_INNER, LEFT_EYE_OUTER)
    m[M["eye_open_right"]] = distance(RIGHT_LID_UP, RIGHT_LID_DOWN) / distance(RIGHT_EYE_INNER, RIGHT_EYE_OUTER)
    m[M["brow_inner_left"]] = local[LEFT_BROW_INNER, 1]
    m[M["brow_inner_right"]] = local[RIGHT_BROW_INNER, 1]
    m[M["brow_outer_left"]] = local[LEFT_BROW_OUTER, 1]
    m[M["brow_outer_right"]] = local[RIGHT_BROW_OUTER, 1]
    for side, (iris, inner, outer) in {"left": (LEFT_IRIS, LEFT_EYE_INNER, LEFT_EYE_OUTER),
                                       "right": (RIGHT_IRIS, RIGHT_EYE_INNER, RIGHT_EYE_OUTER)}.items():
        centre = (local[inner] + local[outer]) / 2
        width = distance(inner, outer)
        m[M[f"iris_x_{side}"]] = (local[iris, 0] - centre[0]) / width
        m[M[f"iris_y_{side}"]] = (local[iris, 1] - centre[1]) / width
    return rotation, iod, m


def _ramp(values: np.ndarray, full: float) -> np.ndarray:
    return np.clip(values / full, 0.0, 1.0)


def _without_opening(values: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """Remove the part of a mouth-corner measurement that the lip gap explains linearly in this
    take: corners sit above the gap's midpoint whenever the lower lip drops, which is not a smile."""
    spread = float(np.var(gap))
    if len(gap) < 3 or spread < 1e-8:
        return values
    slope = float(np.cov(gap, values)[0, 1]) / spread
    return values - slope * (gap - np.median(gap))


def channels_from_measurements(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-take calibration: measurements (T, len(MEASUREMENTS)) -> blendshapes (T, 52) float32,
    gaze (T, 2, 2) degrees [eye (left, right), (yaw, pitch)]."""
    def column(name: str) -> np.ndarray:
        return m[:, M[name]]

    def from_rest(name: str, percentile: float = 50.0) -> np.ndarray:
        values = column(name)
        return values - np.percentile(values, percentile)

    weights = np.zeros((len(m), len(ARKIT_NAMES)), dtype=np.float64)

    def put(name: str, values: np.ndarray) -> None:
        weights[:, ARKIT_INDEX[name]] = values

    lips_apart = _ramp(from_rest("lip_gap", 5), 0.40)
    jaw = np.maximum(_ramp(from_rest("jaw_drop", 5), 0.35), lips_apart)
    put("JawOpen", jaw)
    put("MouthClose", jaw - lips_apart)
    narrowing = _ramp(-from_rest("mouth_width"), 0.12)
    apart = np.clip(lips_apart / 0.15, 0.0, 1.0)  # lips count as apart from ~15% of full opening
    put("MouthPucker", narrowing * (1 - apart))
    put("MouthFunnel", narrowing * apart)
    gap = column("lip_gap")
    for side, suffix in (("left", "Left"), ("right", "Right")):
        rise = _without_opening(from_rest(f"corner_up_{side}"), gap)
        smile = _ramp(rise, 0.08)
        put(f"MouthSmile{suffix}", smile)
        put(f"MouthFrown{suffix}", _ramp(-rise, 0.06))
        put(f"MouthStretch{suffix}", np.clip(_ramp(from_rest(f"corner_out_{side}"), 0.08) - smile, 0.0, 1.0))
        opening = column(f"eye_open_{side}")
        relative = opening / max(float(np.median(opening)), 1e-6)
        put(f"EyeBlink{suffix}", np.clip((1.0 - relative) / 0.8, 0.0, 1.0))
        put(f"EyeWide{suffix}", _ramp(relative - 1.0, 0.4))
        brow_outer = from_rest(f"brow_outer_{side}")
        put(f"BrowOuterUp{suffix}", _ramp(brow_outer, 0.06))
        brow_mean = (from_rest(f"brow_inner_{side}") + brow_outer) / 2
        put(f"BrowDown{suffix}", _ramp(-brow_mean, 0.04))
    put("BrowInnerUp", _ramp((from_rest("brow_inner_left") + from_rest("brow_inner_right")) / 2, 0.06))

    gaze = np.zeros((len(m), 2, 2))
    for eye, side in enumerate(("left", "right")):
        for axis, name in enumerate((f"iris_x_{side}", f"iris_y_{side}")):
            offset = from_rest(name) / EYEBALL_OVER_EYE_WIDTH
            gaze[:, eye, axis] = np.degrees(np.arcsin(np.clip(offset, -1.0, 1.0)))
    _gaze_channels(weights, gaze)
    return weights.astype(np.float32), gaze


def _gaze_channels(weights: np.ndarray, gaze: np.ndarray) -> None:
    """EyeLook* from eye angles: 'out' is toward the eye's own side (left eye looking left)."""
    full = 30.0
    for eye, suffix, out_sign in ((0, "Left", 1.0), (1, "Right", -1.0)):
        yaw, pitch = gaze[:, eye, 0], gaze[:, eye, 1]
        weights[:, ARKIT_INDEX[f"EyeLookOut{suffix}"]] = _ramp(out_sign * yaw, full)
        weights[:, ARKIT_INDEX[f"EyeLookIn{suffix}"]] = _ramp(-out_sign * yaw, full)
        weights[:, ARKIT_INDEX[f"EyeLookUp{suffix}"]] = _ramp(pitch, full)
        weights[:, ARKIT_INDEX[f"EyeLookDown{suffix}"]] = _ramp(-pitch, full)
