"""Visemes: the mouth shape of each Oculus viseme as ARKit weights, and the viseme / VRM views.

The lip layer (core/motion/lips.py) builds mouth motion from these poses; the views below go the
other way, from any 52-channel ARKit frame (generated or captured) back to the 15 Oculus visemes
and the VRM presets. The poses are the single source of truth for both directions.

ARKit convention used throughout: lips meet when ``MouthClose`` cancels ``JawOpen`` (MouthClose is
"lip closure independent of the jaw", as in Apple's docs and real Live Link takes), so a
bilabial closure is a slightly open jaw with MouthClose equal to it, plus MouthPress.
"""
from __future__ import annotations

import numpy as np

from ..arkit import ARKIT_INDEX, ARKIT_NAMES, OCULUS_VISEMES, VRM_PRESETS

# Mouth shape of each viseme at a comfortably loud, clear articulation.
_POSES: dict[str, dict[str, float]] = {
    "sil": {},
    "PP": {"JawOpen": 0.08, "MouthClose": 0.08, "MouthPressLeft": 0.45, "MouthPressRight": 0.45,
           "MouthRollLower": 0.12, "MouthRollUpper": 0.08},
    "FF": {"JawOpen": 0.10, "MouthRollLower": 0.55, "MouthUpperUpLeft": 0.22, "MouthUpperUpRight": 0.22,
           "MouthShrugUpper": 0.10},
    "TH": {"JawOpen": 0.16, "TongueOut": 0.35, "MouthUpperUpLeft": 0.10, "MouthUpperUpRight": 0.10},
    "DD": {"JawOpen": 0.18, "MouthStretchLeft": 0.10, "MouthStretchRight": 0.10,
           "MouthUpperUpLeft": 0.10, "MouthUpperUpRight": 0.10,
           "MouthLowerDownLeft": 0.10, "MouthLowerDownRight": 0.10},
    "kk": {"JawOpen": 0.24, "MouthStretchLeft": 0.12, "MouthStretchRight": 0.12,
           "MouthLowerDownLeft": 0.12, "MouthLowerDownRight": 0.12},
    "CH": {"JawOpen": 0.12, "MouthFunnel": 0.45, "MouthPucker": 0.20,
           "MouthUpperUpLeft": 0.25, "MouthUpperUpRight": 0.25,
           "MouthLowerDownLeft": 0.20, "MouthLowerDownRight": 0.20},
    "SS": {"JawOpen": 0.07, "MouthStretchLeft": 0.30, "MouthStretchRight": 0.30,
           "MouthUpperUpLeft": 0.25, "MouthUpperUpRight": 0.25,
           "MouthLowerDownLeft": 0.25, "MouthLowerDownRight": 0.25},
    "nn": {"JawOpen": 0.15, "MouthUpperUpLeft": 0.08, "MouthUpperUpRight": 0.08,
           "MouthLowerDownLeft": 0.10, "MouthLowerDownRight": 0.10},
    "RR": {"JawOpen": 0.16, "MouthFunnel": 0.30, "MouthPucker": 0.35},
    "aa": {"JawOpen": 0.60, "MouthLowerDownLeft": 0.30, "MouthLowerDownRight": 0.30,
           "MouthUpperUpLeft": 0.10, "MouthUpperUpRight": 0.10},
    "E": {"JawOpen": 0.35, "MouthStretchLeft": 0.30, "MouthStretchRight": 0.30,
          "MouthUpperUpLeft": 0.18, "MouthUpperUpRight": 0.18,
          "MouthLowerDownLeft": 0.25, "MouthLowerDownRight": 0.25},
    "ih": {"JawOpen": 0.22, "MouthStretchLeft": 0.45, "MouthStretchRight": 0.45,
           "MouthUpperUpLeft": 0.18, "MouthUpperUpRight": 0.18,
           "MouthLowerDownLeft": 0.18, "MouthLowerDownRight": 0.18},
    "oh": {"JawOpen": 0.42, "MouthFunnel": 0.55, "MouthPucker": 0.25},
    "ou": {"JawOpen": 0.14, "MouthPucker": 0.80, "MouthFunnel": 0.35},
}
assert tuple(_POSES) == OCULUS_VISEMES


def _pose_vector(pose: dict[str, float]) -> np.ndarray:
    vec = np.zeros(len(ARKIT_NAMES), dtype=np.float32)
    for name, value in pose.items():
        vec[ARKIT_INDEX[name]] = value
    return vec


VISEME_POSES: np.ndarray = np.stack([_pose_vector(_POSES[v]) for v in OCULUS_VISEMES])  # (15, 52)
VISEME_INDEX: dict[str, int] = {v: i for i, v in enumerate(OCULUS_VISEMES)}

# The channels that describe the mouth opening itself (not emotion: smiles and frowns are left
# out so that a smiling "aa" is still "aa").
MOUTH_CHANNELS: tuple[str, ...] = (
    "JawOpen", "MouthClose", "MouthFunnel", "MouthPucker", "MouthRollLower", "MouthRollUpper",
    "MouthUpperUpLeft", "MouthUpperUpRight", "MouthLowerDownLeft", "MouthLowerDownRight",
    "MouthStretchLeft", "MouthStretchRight", "MouthPressLeft", "MouthPressRight", "TongueOut",
)
_MOUTH_IDX = np.array([ARKIT_INDEX[n] for n in MOUTH_CHANNELS])
_PROTOS = VISEME_POSES[1:, _MOUTH_IDX].astype(np.float64)  # (14, M), all but "sil"
_UNIT_PROTOS = _PROTOS / np.linalg.norm(_PROTOS, axis=1, keepdims=True)
_SHAPE_TEMPERATURE = 0.03  # cosine-similarity scale of the soft assignment; small = decisive
_SPEAKING_SIZE = 0.15  # a mouth this far from rest (L2 over the mouth channels) is fully a viseme


def _w(bs: np.ndarray, name: str) -> np.ndarray:
    return bs[..., ARKIT_INDEX[name]]


def _pair(bs: np.ndarray, stem: str) -> np.ndarray:
    """Mean of the Left and Right channels of ``stem``."""
    return 0.5 * (_w(bs, stem + "Left") + _w(bs, stem + "Right"))


def lip_gap(bs: np.ndarray) -> np.ndarray:
    """How far apart the lips are, from the blendshapes (0 = lips meet), shape (...,).

    The jaw parts the lips unless MouthClose cancels it; lowering the lower lip / raising the
    upper lip parts them further; pressing and rolling the lips in closes them.
    """
    gap = (np.maximum(_w(bs, "JawOpen") - _w(bs, "MouthClose"), 0.0)
           + 0.5 * _pair(bs, "MouthLowerDown") + 0.5 * _pair(bs, "MouthUpperUp"))
    return np.maximum(gap - 0.25 * _pair(bs, "MouthPress"), 0.0)


def visemes_from_blendshapes(bs: np.ndarray) -> np.ndarray:
    """(..., 52) ARKit weights -> (..., 15) Oculus viseme weights (sum to 1 per frame).

    The mouth's shape picks the viseme (cosine similarity with each viseme pose on the mouth
    channels, so a small "ou" is still "ou"); how far the mouth is from rest decides how much
    is left to "sil".
    """
    bs = np.asarray(bs, dtype=np.float32)
    if bs.shape[-1] != len(ARKIT_NAMES):
        raise ValueError(f"expected (..., {len(ARKIT_NAMES)}) blendshapes, got {bs.shape}")
    mouth = bs[..., _MOUTH_IDX].astype(np.float64)  # (..., M)
    size = np.linalg.norm(mouth, axis=-1, keepdims=True)  # (..., 1)
    cosine = (mouth @ _UNIT_PROTOS.T) / np.maximum(size, 1e-9)  # (..., 14) without "sil"
    logits = cosine / _SHAPE_TEMPERATURE
    logits -= logits.max(-1, keepdims=True)
    shape = np.exp(logits)
    shape /= shape.sum(-1, keepdims=True)
    speaking = np.clip(size / _SPEAKING_SIZE, 0.0, 1.0)
    return np.concatenate([1.0 - speaking, shape * speaking], axis=-1).astype(np.float32)


_VRM_VOWELS = {"aa": "aa", "ih": "ih", "ou": "ou", "ee": "E", "oh": "oh"}


def vrm_from_blendshapes(bs: np.ndarray) -> np.ndarray:
    """(..., 52) ARKit weights -> (..., 11) VRM preset weights in VRM_PRESETS order.

    Vowels: the viseme weight times how far the mouth is along that viseme's pose (so a quiet
    "aa" is a small aa). Emotion presets come from the face channels the emotion layer drives
    (smile, frown, brows, eye widening), so they also work on captured takes.
    """
    bs = np.asarray(bs, dtype=np.float32)
    vis = visemes_from_blendshapes(bs)
    mouth = bs[..., _MOUTH_IDX]
    out = np.zeros(bs.shape[:-1] + (len(VRM_PRESETS),), dtype=np.float32)
    for preset, viseme in _VRM_VOWELS.items():
        proto = VISEME_POSES[VISEME_INDEX[viseme], _MOUTH_IDX]
        extent = np.clip((mouth @ proto) / float(proto @ proto), 0.0, 1.0)
        out[..., VRM_PRESETS.index(preset)] = vis[..., VISEME_INDEX[viseme]] * extent
    def pair(stem: str) -> np.ndarray:
        return _pair(bs, stem)

    def clip(x: np.ndarray) -> np.ndarray:
        return np.clip(x, 0.0, 1.0)

    smile, frown, brow_down = pair("MouthSmile"), pair("MouthFrown"), pair("BrowDown")
    cheek = pair("CheekSquint")
    out[..., VRM_PRESETS.index("blink")] = pair("EyeBlink")
    out[..., VRM_PRESETS.index("happy")] = clip((smile - 0.1) / 0.5) * clip(cheek / 0.15)
    out[..., VRM_PRESETS.index("relaxed")] = clip((smile - 0.1) / 0.4) * (1 - clip(cheek / 0.15))
    out[..., VRM_PRESETS.index("angry")] = clip((brow_down - 0.1) / 0.5) * clip(0.3 + pair("NoseSneer") + pair("EyeSquint"))
    out[..., VRM_PRESETS.index("sad")] = clip((frown - 0.05) / 0.4) * clip(_w(bs, "BrowInnerUp") / 0.3)
    out[..., VRM_PRESETS.index("surprised")] = clip((pair("EyeWide") - 0.1) / 0.4) * clip(pair("BrowOuterUp") / 0.3)
    return out
