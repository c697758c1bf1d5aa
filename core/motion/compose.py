"""Composing frames: the layers of many streams' frame runs (lips, emotion, head inputs) ->
MotionFrames, the head maths and the face of every frame computed in one batch. A frame's numbers
depend on its own stream only, so a stream gets the same frames whichever streams it is composed with.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from ..arkit import ARKIT_INDEX
from ..numeric import clip as _clip
from ..types import MotionFrame
from .head_frames import HeadSource, decide_events_many, head_inputs_many, head_layers
from .lips import LipLayer


@dataclass(frozen=True)
class FrameLayers:
    """One stream's layers for a run of frames, before the head maths and the face composition
    (compose_frames runs those for the frames of many streams at once)."""

    times: np.ndarray  # (T,)
    lips: LipLayer | object  # the lip layer, or what a backend's ``layers_many`` makes it from (learned.py)
    jaw_gain: np.ndarray  # (T,) emotion's gain on how far speech opens the mouth
    emotion_face: np.ndarray  # (T, 52)
    head: HeadSource
    tongue_tip: np.ndarray  # (T,)


def compose_frames(layers: Sequence[FrameLayers]) -> list[list[MotionFrame]]:
    """The frames of several streams' layers: every frame's numbers on their own, so a stream
    gets the same frames whichever streams it is composed with."""
    if not layers:
        return []
    decide_events_many([part.head for part in layers])  # blinks, saccades and shifts up to each stream's last frame
    head = head_layers(head_inputs_many([part.head for part in layers]))

    def joined(name: str) -> np.ndarray:
        return np.concatenate([getattr(part, name) for part in layers])

    lips = _lip_layers([part.lips for part in layers])
    mouth = np.concatenate([layer.mouth for layer in lips])
    mouth[:, _SPEECH_OPENING] *= joined("jaw_gain")[:, None]
    closure = np.concatenate([layer.closure for layer in lips])
    blendshapes = compose_face(mouth, closure, joined("emotion_face"), head.blink, head.gaze, head.brow_raise)
    rotation, translation = head.rotation.tolist(), head.translation.tolist()
    gaze_left, gaze_right = head.gaze[:, 0].tolist(), head.gaze[:, 1].tolist()
    frames = [MotionFrame(time=t, head_rotation=tuple(rotation[i]), head_translation=tuple(translation[i]),
                          gaze_left=tuple(gaze_left[i]), gaze_right=tuple(gaze_right[i]), blendshapes=blendshapes[i],
                          tongue_tip=tip) for i, (t, tip) in enumerate(zip(joined("times").tolist(), joined("tongue_tip").tolist()))]
    ends = np.cumsum([len(part.times) for part in layers]).tolist()
    return [frames[start:end] for start, end in zip([0] + ends[:-1], ends)]


def _lip_layers(parts: list) -> list[LipLayer]:
    """LipLayers as they are; a backend's rows (e.g. learned.LearnedLipRows) by their own
    ``layers_many``, every stream's frames in one pass."""
    out = list(parts)
    by_kind: dict[Callable, list[int]] = {}
    for k, part in enumerate(parts):
        if not isinstance(part, LipLayer):
            by_kind.setdefault(type(part).layers_many, []).append(k)
    for layers_many, group in by_kind.items():
        for k, layer in zip(group, layers_many([parts[k] for k in group])):
            out[k] = layer
    return out


def _i(*names: str) -> np.ndarray:
    return np.array([ARKIT_INDEX[n] for n in names])


_EMOTION_PARTING = _i("JawOpen", "MouthFunnel", "MouthUpperUpLeft", "MouthUpperUpRight", "MouthLowerDownLeft",
                      "MouthLowerDownRight", "MouthStretchLeft", "MouthStretchRight")
_SPEECH_OPENING = _i("JawOpen", "MouthLowerDownLeft", "MouthLowerDownRight")
_BLINK = _i("EyeBlinkLeft", "EyeBlinkRight")
_WIDE_SQUINT = _i("EyeWideLeft", "EyeWideRight", "EyeSquintLeft", "EyeSquintRight")
_LOOK_LEFT_EYE = _i("EyeLookOutLeft", "EyeLookInLeft", "EyeLookUpLeft", "EyeLookDownLeft")
_LOOK_RIGHT_EYE = _i("EyeLookInRight", "EyeLookOutRight", "EyeLookUpRight", "EyeLookDownRight")
_LOOK_CHANNELS = np.concatenate([_LOOK_LEFT_EYE, _LOOK_RIGHT_EYE])
_BROWS_UP = _i("BrowInnerUp", "BrowOuterUpLeft", "BrowOuterUpRight")
_BROW_RAISE_WEIGHTS = np.array([0.25, 0.15, 0.15])
_EYE_RANGE_DEG = 30.0  # gaze angle at which an EyeLook channel reaches 1


def compose_face(mouth: np.ndarray, closure: np.ndarray, emotion_face: np.ndarray, blink: np.ndarray,
                 gaze: np.ndarray, brow_raise: np.ndarray) -> np.ndarray:
    """Stack the layers into (T, 52) ARKit weights. Lip closures win over emotion (a smile stays,
    but nothing the emotion does may part closed lips); a blink wins over wide / squinting eyes."""
    emotion = emotion_face.astype(np.float64)  # a copy (astype copies)
    emotion[:, _EMOTION_PARTING] *= (1.0 - closure)[:, None]
    face = mouth + emotion
    face[:, _BROWS_UP] += _BROW_RAISE_WEIGHTS * brow_raise[:, None]
    face[:, _WIDE_SQUINT] *= (1.0 - blink)[:, None]
    face[:, _BLINK] = np.maximum(face[:, _BLINK], blink[:, None])
    # yaw + = toward the character's left: out for the left eye, in for the right eye. Both eyes'
    # (yaw+, yaw-, pitch+, pitch-) at once, in _LOOK_CHANNELS' order.
    ahead = np.maximum(gaze, 0)  # (T, eye, (yaw, pitch))
    back = np.maximum(-gaze, 0)
    look = np.stack([ahead[:, :, 0], back[:, :, 0], ahead[:, :, 1], back[:, :, 1]], axis=2).reshape(len(gaze), 8)
    face[:, _LOOK_CHANNELS] += look / _EYE_RANGE_DEG
    jaw, close = ARKIT_INDEX["JawOpen"], ARKIT_INDEX["MouthClose"]
    face[:, close] = np.maximum(face[:, close], closure * face[:, jaw])  # lips meet at closures
    return _clip(face, 0.0, 1.0).astype(np.float32)
