"""The typed values that cross npcface's stage boundaries.

audio ─► AudioFeatures ─┐
text  ─► PhoneTimeline ─┼─► motion generator ─► MotionFrame (per tick) / MotionTrack (a line)
controls, emotions ─────┘                      MotionFrame + Rig ─► Frame (RGBA)
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from .arkit import ARKIT_NAMES

SAMPLE_RATE = 16_000  # every stage after decoding works on 16 kHz mono float32
FEATURE_HOP_S = 0.010  # AudioFeatures rows are 10 ms apart


@dataclass(frozen=True)
class Audio:
    """Decoded, resampled audio: mono float32 in [-1, 1] at SAMPLE_RATE."""

    samples: np.ndarray  # (n,) float32
    source_rate: int  # the rate of the file or stream before resampling
    source_channels: int

    @property
    def duration(self) -> float:
        return len(self.samples) / SAMPLE_RATE


@dataclass(frozen=True)
class AudioFeatures:
    """Frame-level acoustic features, one row every FEATURE_HOP_S seconds.

    Row i describes the 10 ms hop starting at ``start_time + i * FEATURE_HOP_S``.
    """

    start_time: float  # seconds on the audio timeline of row 0
    log_mel: np.ndarray  # (T, n_mels) float32, natural log of mel power
    loudness_db: np.ndarray  # (T,) float32, dBFS of the frame (silence ~ -90)
    f0_hz: np.ndarray  # (T,) float32, 0 where unvoiced
    voicing: np.ndarray  # (T,) float32 in [0, 1]
    f1_hz: np.ndarray  # (T,) float32, first formant estimate (LPC), 0 where unvoiced/silent (or not computed)
    f2_hz: np.ndarray  # (T,) float32, second formant estimate
    spectral_tilt: np.ndarray  # (T,) float32, high/low band energy ratio in dB (fricatives high)
    zero_crossing_rate: np.ndarray  # (T,) float32, crossings per sample

    @property
    def num_frames(self) -> int:
        return len(self.loudness_db)


PhoneSource = Literal["aligned", "recognized", "acoustic"]


@dataclass(frozen=True)
class Phone:
    """One phone on the audio timeline. Labels are ARPAbet without stress ("AA", "P", "SIL")."""

    label: str
    start: float  # seconds
    end: float  # seconds
    stress: int = 0  # 0 none, 1 primary, 2 secondary (vowels only, when known)
    word: str = ""  # the word this phone belongs to, when known


@dataclass(frozen=True)
class PhoneTimeline:
    phones: tuple[Phone, ...]
    source: PhoneSource
    language: str = "en-us"
    missing_words: tuple[str, ...] = ()  # words of the text the dictionary lacked (guessed)

    def at(self, t: float) -> Phone | None:
        for phone in self.phones:
            if phone.start <= t < phone.end:
                return phone
        return None


@dataclass(frozen=True)
class EmotionEvent:
    """From ``time`` on (audio timeline), blend toward ``emotion`` at ``intensity`` over ``ramp`` s."""

    time: float
    emotion: str
    intensity: float = 1.0
    ramp: float = 0.3


@dataclass(frozen=True)
class GazeEvent:
    """From ``time`` on, look at a target given as yaw/pitch in degrees relative to the camera."""

    time: float
    yaw: float
    pitch: float


@dataclass(frozen=True)
class ControlEvent:
    """From ``time`` on (audio timeline), ease motion amplitude and head distance to new values.

    ``None`` keeps the current value. The change ramps over ``ramp`` seconds.
    """

    time: float
    motion_amplitude: float | None = None
    head_distance: float | None = None
    ramp: float = 0.3


@dataclass(frozen=True)
class Controls:
    """Per-line controls that are not time-varying."""

    fps: float = 60.0
    seed: int = 0
    motion_amplitude: float = 1.0  # scales head motion and idle motion; 0 freezes the head
    head_distance: float = 1.0  # relative to the portrait's distance; >1 is farther (smaller)
    language: str = "en-us"  # anything but en-us uses the acoustic fallback
    lookahead_s: float = 0.12  # streaming: most audio the generator may wait for


@dataclass(frozen=True)
class MotionFrame:
    """The face at one tick: everything an engine rig or the renderer needs."""

    time: float  # seconds on the audio timeline
    head_rotation: tuple[float, float, float]  # yaw, pitch, roll in degrees (yaw + = to its left)
    head_translation: tuple[float, float, float]  # x, y, z in metres (z + = toward camera)
    gaze_left: tuple[float, float]  # yaw, pitch of the left eye in degrees
    gaze_right: tuple[float, float]
    blendshapes: np.ndarray = field(repr=False)  # (52,) float32 in [0, 1], ARKIT_NAMES order
    # Not ARKit (which has no tongue-tip channel): 0..1, the tongue tip raised behind the upper teeth
    # for L, T, D, N, TH. Set where phones are known (the motion generator); 0 for captured takes.
    # Renderer-only: CSV, JSON and the protocol's latents carry the 52 ARKit weights, not this.
    tongue_tip: float = 0.0

    def weight(self, name: str) -> float:
        from .arkit import ARKIT_INDEX

        return float(self.blendshapes[ARKIT_INDEX[name]])


@dataclass(frozen=True)
class MotionTrack:
    """A whole line of MotionFrames, stored as arrays (frame i is at times[i])."""

    fps: float
    times: np.ndarray  # (T,) float64 seconds
    head_rotation: np.ndarray  # (T, 3) yaw, pitch, roll degrees
    head_translation: np.ndarray  # (T, 3) metres
    gaze: np.ndarray  # (T, 2, 2) [eye (left, right), (yaw, pitch)] degrees
    blendshapes: np.ndarray  # (T, 52) float32
    phones: PhoneTimeline | None = None
    tongue_tip: np.ndarray | None = None  # (T,) float32 in [0, 1], see MotionFrame; None = all 0

    def __len__(self) -> int:
        return len(self.times)

    def frame(self, i: int) -> MotionFrame:
        return MotionFrame(
            time=float(self.times[i]),
            head_rotation=tuple(float(v) for v in self.head_rotation[i]),
            head_translation=tuple(float(v) for v in self.head_translation[i]),
            gaze_left=(float(self.gaze[i, 0, 0]), float(self.gaze[i, 0, 1])),
            gaze_right=(float(self.gaze[i, 1, 0]), float(self.gaze[i, 1, 1])),
            blendshapes=self.blendshapes[i],
            tongue_tip=0.0 if self.tongue_tip is None else float(self.tongue_tip[i]),
        )

    def frames(self) -> list[MotionFrame]:
        return [self.frame(i) for i in range(len(self))]

    def channel(self, name: str) -> np.ndarray:
        from .arkit import ARKIT_INDEX

        return self.blendshapes[:, ARKIT_INDEX[name]]

    @staticmethod
    def from_frames(frames: list[MotionFrame], fps: float, phones: PhoneTimeline | None = None) -> "MotionTrack":
        n = len(frames)
        return MotionTrack(
            fps=fps,
            times=np.array([f.time for f in frames], dtype=np.float64),
            head_rotation=np.array([f.head_rotation for f in frames], dtype=np.float64).reshape(n, 3),
            head_translation=np.array([f.head_translation for f in frames], dtype=np.float64).reshape(n, 3),
            gaze=np.array([[f.gaze_left, f.gaze_right] for f in frames], dtype=np.float64).reshape(n, 2, 2),
            blendshapes=np.array([f.blendshapes for f in frames], dtype=np.float32).reshape(n, len(ARKIT_NAMES)),
            phones=phones,
            tongue_tip=np.array([f.tongue_tip for f in frames], dtype=np.float32).reshape(n),
        )


@dataclass(frozen=True)
class Frame:
    """One rendered image of the portrait."""

    time: float
    rgba: np.ndarray  # (H, W, 4) uint8
