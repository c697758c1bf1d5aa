"""The emotion layer: a timed blend of emotion poses (face channels), plus what emotion does to
the head (pitch offset, livelier or calmer motion) and to blinking.

Everything here is a pure function of time and the event list, so streaming and offline agree
and an event may arrive mid-line.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..arkit import ARKIT_INDEX, ARKIT_NAMES, EMOTIONS
from ..errors import ControlError
from ..types import EmotionEvent


def _sym(stem: str, value: float) -> dict[str, float]:
    return {stem + "Left": value, stem + "Right": value}


# Face at intensity 1 (mouth-opening channels are kept small: the lips belong to speech).
_EMOTION_POSES: dict[str, dict[str, float]] = {
    "neutral": {},
    "happy": {**_sym("MouthSmile", 0.75), **_sym("CheekSquint", 0.40), **_sym("EyeSquint", 0.25),
              **_sym("MouthDimple", 0.20), "BrowInnerUp": 0.05},
    "sad": {**_sym("MouthFrown", 0.55), "BrowInnerUp": 0.65, **_sym("EyeSquint", 0.10),
            "MouthShrugLower": 0.25, **_sym("EyeLookDown", 0.15)},
    "angry": {**_sym("BrowDown", 0.75), **_sym("EyeSquint", 0.30), **_sym("NoseSneer", 0.30),
              **_sym("MouthPress", 0.20), **_sym("MouthFrown", 0.20), "JawForward": 0.10},
    "surprised": {"BrowInnerUp": 0.70, **_sym("BrowOuterUp", 0.75), **_sym("EyeWide", 0.65),
                  "JawOpen": 0.12, "MouthFunnel": 0.08},
    "afraid": {"BrowInnerUp": 0.75, **_sym("BrowOuterUp", 0.30), **_sym("EyeWide", 0.55),
               **_sym("MouthStretch", 0.40), **_sym("MouthFrown", 0.10), "JawOpen": 0.05},
    "disgusted": {**_sym("NoseSneer", 0.60), **_sym("MouthUpperUp", 0.35), **_sym("BrowDown", 0.40),
                  **_sym("CheekSquint", 0.30), **_sym("MouthFrown", 0.30), **_sym("EyeSquint", 0.20),
                  "MouthShrugUpper": 0.20},
}
assert tuple(_EMOTION_POSES) == EMOTIONS

EMOTION_POSES = np.zeros((len(EMOTIONS), len(ARKIT_NAMES)), dtype=np.float32)  # (7, 52)
for _row, _name in enumerate(EMOTIONS):
    for _channel, _value in _EMOTION_POSES[_name].items():
        EMOTION_POSES[_row, ARKIT_INDEX[_channel]] = _value

# Head: pitch offset in degrees (+ = chin up), motion gain, blink-rate gain, per emotion.
_HEAD_PITCH = np.array([0.0, 1.5, -6.0, -2.5, 3.0, -2.0, -1.5])
_MOTION_GAIN = np.array([1.0, 1.25, 0.55, 1.35, 1.15, 0.8, 1.0])
_BLINK_GAIN = np.array([1.0, 1.0, 0.8, 0.7, 0.6, 1.6, 1.0])
_JAW_GAIN = np.array([1.0, 1.0, 0.8, 1.15, 1.1, 0.9, 0.95])  # sad speech is slack, angry speech emphatic


def parse_emotion(spec: str) -> tuple[str, float]:
    """``"happy:0.8"`` or ``"happy"`` -> ("happy", 0.8 / 1.0). Unknown names or bad intensities
    raise ControlError."""
    name, _, level = str(spec).strip().partition(":")
    name = name.strip().lower()
    if name not in EMOTIONS:
        raise ControlError(f"unknown emotion {name!r}; expected one of {', '.join(EMOTIONS)}")
    if not level.strip():
        return name, 1.0
    try:
        intensity = float(level)
    except ValueError:
        raise ControlError(f"emotion intensity must be a number in [0, 1], got {level!r}") from None
    if not 0.0 <= intensity <= 1.0:  # also rejects NaN
        raise ControlError(f"emotion intensity must be in [0, 1], got {level!r}")
    return name, intensity


def parse_emotion_change(spec: str, what: str) -> EmotionEvent:
    """``"1.5=angry:0.6"`` -> EmotionEvent(1.5, "angry", 0.6). ``what`` names where the spec came
    from in the error (``--emotion-at``, a manifest's emotion change)."""
    when, sep, emotion = str(spec).partition("=")
    if not sep:
        raise ControlError(f"{what} needs TIME=NAME[:INTENSITY], got {spec!r}")
    try:
        time = float(when)
    except ValueError:
        raise ControlError(f"{what} time must be seconds, got {when!r}") from None
    if not math.isfinite(time) or time < 0:
        raise ControlError(f"{what} time must be >= 0 seconds, got {when!r}")
    name, intensity = parse_emotion(emotion)
    return EmotionEvent(time=time, emotion=name, intensity=intensity)


def validate_emotion_event(event: EmotionEvent) -> EmotionEvent:
    parse_emotion(f"{event.emotion}:{event.intensity}")
    if not np.isfinite(event.time) or event.time < 0:
        raise ControlError(f"emotion event time must be a finite time >= 0, got {event.time!r}")
    if not np.isfinite(event.ramp) or event.ramp < 0:
        raise ControlError(f"emotion ramp must be finite and >= 0, got {event.ramp!r}")
    return event


def _smoothstep(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3 - 2 * u)


def ramped_timeline(times: np.ndarray, initial: np.ndarray,
                    events: Sequence[tuple[float, np.ndarray, float]]) -> np.ndarray:
    """Value of a piecewise-eased vector signal at ``times``: (T,) -> (T, D).

    Starting at ``initial``, each event (time, target, ramp) eases from wherever the signal is at
    its time to ``target`` over ``ramp`` seconds (smoothstep). Events are applied in time order;
    a later event takes over mid-ramp without a jump.
    """
    times = np.asarray(times, dtype=np.float64)
    out = np.tile(np.asarray(initial, dtype=np.float64), (len(times), 1))
    seg_start, seg_from, seg_to, seg_ramp = 0.0, np.asarray(initial, np.float64), np.asarray(initial, np.float64), 0.0
    for ev_time, target, ramp in sorted(events, key=lambda e: e[0]):
        progress = _smoothstep((ev_time - seg_start) / seg_ramp) if seg_ramp > 0 else 1.0
        here = seg_from + (seg_to - seg_from) * progress
        seg_start, seg_from, seg_to, seg_ramp = ev_time, here, np.asarray(target, np.float64), float(ramp)
        mask = times >= ev_time
        if mask.any():
            s = _smoothstep((times[mask] - ev_time) / ramp)[:, None] if ramp > 0 else 1.0
            out[mask] = here + (seg_to - here) * s
    return out


@dataclass(frozen=True)
class EmotionLayer:
    """The emotion layer's output for a run of frames."""

    weights: np.ndarray  # (T, 7) emotion intensities in EMOTIONS order
    face: np.ndarray  # (T, 52) blendshape contribution
    head_pitch: np.ndarray  # (T,) degrees
    motion_gain: np.ndarray  # (T,) multiplies head motion
    blink_gain: np.ndarray  # (T,) multiplies the blink rate
    jaw_gain: np.ndarray  # (T,) multiplies how far speech opens the mouth


def emotion_weights(times: np.ndarray, events: Sequence[EmotionEvent]) -> np.ndarray:
    """(T,) -> (T, 7): how much of each emotion is on at each time (neutral at the start)."""
    initial = np.zeros(len(EMOTIONS))
    steps = []
    for event in events:
        target = np.zeros(len(EMOTIONS))
        target[EMOTIONS.index(event.emotion)] = event.intensity
        steps.append((event.time, target, event.ramp))
    return ramped_timeline(times, initial, steps)


def emotion_layer(times: np.ndarray, events: Sequence[EmotionEvent]) -> EmotionLayer:
    if not events:  # neutral throughout: the numbers below give exactly this
        return _neutral_layer(len(times))
    weights = emotion_weights(times, events)  # (T, 7)
    face = np.clip(weights @ EMOTION_POSES, 0.0, 1.0).astype(np.float32)  # (T, 52)
    neutral_share = 1.0 - np.clip(weights.sum(1), 0.0, 1.0)
    return EmotionLayer(
        weights=weights,
        face=face,
        head_pitch=weights @ _HEAD_PITCH,
        motion_gain=neutral_share + weights @ _MOTION_GAIN,
        blink_gain=neutral_share + weights @ _BLINK_GAIN,
        jaw_gain=neutral_share + weights @ _JAW_GAIN,
    )


@lru_cache(maxsize=16)
def _neutral_layer(frames: int) -> EmotionLayer:
    """The layer of ``frames`` frames without emotion events (a stream steps a frame or two at a
    time: made once per count, read-only, as every reader joins or copies it)."""
    zeros, ones = np.zeros(frames), np.ones(frames)
    layer = EmotionLayer(weights=np.zeros((frames, len(EMOTIONS))), face=np.zeros((frames, len(ARKIT_NAMES)), np.float32),
                         head_pitch=zeros, motion_gain=ones, blink_gain=ones, jaw_gain=ones)
    for array in (layer.weights, layer.face, zeros, ones):
        array.flags.writeable = False
    return layer
