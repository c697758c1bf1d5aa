"""The motion generator: audio (+ text, emotions, gaze, controls) -> one MotionFrame per tick.

One code path for both modes. ``MotionStream`` takes audio in chunks of any size and emits each
frame once the audio it needs has arrived (at most ``Controls.lookahead_s`` ahead, or the
features' own reach if that is longer); ``MotionGenerator.animate`` pushes a whole line through
the same stream, with the phones of the whole line (forced alignment) instead of the live ones.

A frame at time t reads feature rows no further than t + FRAME_REACH_S, and every random draw is
fixed by (seed, time), so how the audio was chunked does not change the output.

Conventions: head yaw + = turning to its own left, pitch + = chin up, roll + = toward its left
shoulder (as core/render/renderer.py and core/formats/livelink.py); gaze is relative to the head. ARKit's
MouthClose means "lips closed while the jaw is open": lips meet when MouthClose = JawOpen
(core/motion/visemes.lip_gap measures it), which is what bilabials produce.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from ..arkit import ARKIT_NAMES, EMOTIONS
from ..audio.features import FeatureStream, concat_features, split_features
from ..errors import AudioError, ControlError
from ..numeric import clip as _clip
from ..types import (
    FEATURE_HOP_S,
    SAMPLE_RATE,
    Audio,
    AudioFeatures,
    ControlEvent,
    Controls,
    EmotionEvent,
    GazeEvent,
    MotionFrame,
    MotionTrack,
    Phone,
    PhoneTimeline,
)
from .compose import FrameLayers
from .cues import CUE_BACK_S, CUE_REACH_S, Cues, CueInputs
from .emotion import emotion_layer, parse_emotion, ramped_timeline, validate_emotion_event
from .head import PoseShifts, SlotScheduler
from .head_frames import HeadSource
from .line_phones import DueFrames, FixedPhones, LivePhones
from .lips import LipLayer, PhoneTable, lip_layer, tongue_tip_curve
from .stepping import finish_streams, step_streams


__all__ = ["MotionGenerator", "MotionStream", "step_streams", "parse_emotion", "validate_controls", "FRAME_REACH_S", "MIN_LOOKAHEAD_S"]

NOD_BACK_S = 0.6  # the nod kernel reads emphasis this far back
FRAME_REACH_S = CUE_REACH_S + 0.04  # feature rows a frame reads ahead of its time (cues + nod lead)
# A feature row needs 25 ms of audio past its start, so no frame can leave sooner than this after
# its time, whatever Controls.lookahead_s asks for (a smaller lookahead acts as this one).
MIN_LOOKAHEAD_S = FRAME_REACH_S + 0.025
_ROWS_KEPT_S = CUE_BACK_S + NOD_BACK_S + 0.2  # feature rows kept behind the next frame
MAX_FPS = 1000.0


def validate_controls(controls: Controls) -> Controls:
    def finite(name: str, low: float, high: float) -> None:
        value = getattr(controls, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not (low <= value <= high):
            raise ControlError(f"{name} must be a number in [{low:g}, {high:g}], got {value!r}")

    fps = controls.fps
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not (0 < fps <= MAX_FPS):
        raise ControlError(f"fps must be a number > 0 and <= {MAX_FPS:g}, got {fps!r}")
    finite("motion_amplitude", 0.0, 10.0)
    finite("head_distance", 0.1, 10.0)
    finite("lookahead_s", 0.0, 5.0)
    if isinstance(controls.seed, bool) or not isinstance(controls.seed, (int, np.integer)):
        raise ControlError(f"seed must be an integer, got {controls.seed!r}")
    return controls


class MotionStream:
    """Push audio, get frames. Also the engine behind offline ``animate``."""

    MOUTH_READS_CUES = True  # the rule-based lips read the mouth's cues (cues.MOUTH_CUES); learned.py's do not

    def __init__(self, controls: Controls, phones: FixedPhones | LivePhones):
        self.controls = validate_controls(controls)
        self._phones = phones
        self._features = FeatureStream(formants=self._reads_formants())
        self._rows: CueInputs | None = None  # the feature rows still needed, oldest first
        self._received = 0  # samples pushed so far
        self._next_frame = 0
        self._finished = False
        self._emotions: list[EmotionEvent] = []
        self._gazes: list[GazeEvent] = []
        self._control_events: list[ControlEvent] = []
        seed = int(controls.seed)
        self._blinks = SlotScheduler(seed, 6, slot=0.05, refractory=1.0, max_gap=6.0)
        self._saccades = SlotScheduler(seed, 7, slot=0.1, refractory=0.35, max_gap=4.0)
        self._shifts = PoseShifts(seed)
        self.timeline: PhoneTimeline | None = None  # set by finish()
        # Live phones change with every push, so where pushes end shapes the frames: at a push
        # that makes frames due, such a stream keeps what those frames need from that moment (the
        # phones, the rows complete), and the next step_streams computes them with the others'
        # (same seed, same chunks, same frames, however a sidecar groups its steps).
        self._due: list[DueFrames] = []  # live phones: frames due at past pushes, oldest first
        self._ahead: AudioFeatures | None = None  # rows taken from the features, not added yet
        self._rows_added = 0  # feature rows added to _rows so far (dropped ones included)
        # frames stepped but not handed out yet (an event came, or a later step raised): the next call's first
        self._held: list[MotionFrame] = []
        self._phone_table: tuple[tuple[Phone, ...], PhoneTable] | None = None  # (phones, their table)

    def _reads_formants(self) -> bool:
        """Whether this stream's stages read F1/F2: the rule lips' cues do (a learned mouth may not:
        learned.py), and so do phones found in the feature rows (the acoustic fallback)."""
        return self.MOUTH_READS_CUES or self._phones.reads_rows

    # ---- events (times on the audio timeline; a past time applies from the next frame)
    def set_emotion(self, event: EmotionEvent) -> None:
        event = validate_emotion_event(event)
        self._step_due_frames()
        self._emotions.append(event)

    def set_gaze(self, event: GazeEvent) -> None:
        values = (event.time, event.yaw, event.pitch)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in values) or event.time < 0:
            raise ControlError(f"gaze event needs finite time >= 0, yaw and pitch, got {event!r}")
        self._step_due_frames()
        self._gazes.append(GazeEvent(event.time, float(_clip(event.yaw, -60, 60)), float(_clip(event.pitch, -45, 45))))

    def set_controls(self, event: ControlEvent) -> None:
        probe = Controls(fps=self.controls.fps,
                         motion_amplitude=self.controls.motion_amplitude if event.motion_amplitude is None else event.motion_amplitude,
                         head_distance=self.controls.head_distance if event.head_distance is None else event.head_distance)
        validate_controls(probe)
        if not (math.isfinite(event.time) and event.time >= 0 and math.isfinite(event.ramp) and event.ramp >= 0):
            raise ControlError(f"control event needs a finite time >= 0 and ramp >= 0, got {event!r}")
        self._step_due_frames()
        self._control_events.append(event)

    def _step_due_frames(self) -> None:
        """Before an event: frames that came due at past pushes are computed now, without it,
        as they would have been at those pushes (the event applies from the next frames)."""
        if self._due:
            self._held = step_streams([self])[0]

    # ---- audio
    def push_audio(self, samples16k: np.ndarray) -> list[MotionFrame]:
        self.append_audio(samples16k)
        return step_streams([self])[0]

    def append_audio(self, samples16k: np.ndarray) -> None:
        """Take audio without computing frames yet (``push_audio`` is this + ``step_streams``)."""
        if self._finished:
            raise AudioError("this motion stream is finished; start a new one for the next line")
        samples = np.asarray(samples16k)
        if samples.ndim != 1 or samples.dtype.kind != "f":  # np.issubdtype(, np.floating), 1 us less a chunk
            raise AudioError(f"push_audio needs 16 kHz mono float samples of shape (n,), got {samples.dtype} {samples.shape}")
        if len(samples) == 0:
            return
        # Feature rows are computed only when frames are due: rows computed together cost about
        # what one costs, and with chunks shorter than a frame most pushes release none.
        self._features.append(samples)  # validates NaN / inf
        self._phones.push(samples.astype(np.float32, copy=False))
        self._received += len(samples)
        if self._phones.live:
            last = self._last_due()
            if last is not None:
                self._keep_due(last)

    def _keep_due(self, last: int) -> None:
        """Live phones: what the frames up to ``last``, due at this push, need from it."""
        rows_until = self._features.rows_complete()
        if self._phones.reads_rows:  # the acoustic fallback: its phones need this push's rows in
            self._take_rows(self._features.take())
        self._due.append(DueFrames(last, rows_until, self._phones.current()))

    def _take_rows(self, rows: AudioFeatures | None) -> None:
        """Rows just computed from the features: to the phones now, to ``_rows`` at their step."""
        if rows is None or rows.num_frames == 0:
            return
        self._phones.add_rows(rows)
        self._ahead = rows if self._ahead is None else concat_features([self._ahead, rows])

    def _rows_to(self, end: int) -> AudioFeatures | None:
        """The taken rows before row ``end`` not added yet, out of ``_ahead``."""
        ahead, count = self._ahead, end - self._rows_added
        if ahead is None or count <= 0:
            return None
        if count >= ahead.num_frames:
            self._ahead = None
        else:
            ahead, self._ahead = split_features(ahead, count, end * FEATURE_HOP_S)  # as FeatureStream times row `end`
        self._rows_added += ahead.num_frames
        return ahead

    def _steps(self) -> list[DueFrames]:
        """The frame runs the next step computes, in order: live phones' due at past pushes, or
        (fixed phones) those the audio so far releases, from all the rows complete now."""
        if self._phones.live:
            return list(self._due)
        last = self._last_due()
        return [] if last is None else [DueFrames(last, self._features.rows_complete())]

    def _rows_taken(self) -> int:
        return self._rows_added + (self._ahead.num_frames if self._ahead is not None else 0)

    def _last_due(self) -> int | None:
        """The last frame index the audio so far releases, or None when no new frame is due."""
        if self._finished or self._received == 0:
            return None
        next_frame = self._due[-1].last_index + 1 if self._due else self._next_frame
        heard = self._received / SAMPLE_RATE
        complete = self._features.rows_complete()
        rows_until = (complete - 1) * FEATURE_HOP_S if complete else 0.0
        last_ready = min(heard - self.controls.lookahead_s, rows_until - FRAME_REACH_S)
        last_index = math.floor(last_ready * self.controls.fps + 1e-9)
        return last_index if last_index >= next_frame else None

    def finish(self) -> list[MotionFrame]:
        """End of the line: flush the features and phones and return the remaining frames (frames
        due at past pushes first, as pushed). If it raises, frames stepped before the failure
        stay held for the next call."""
        return finish_streams([self])[0]

    # ---- internals
    def _add_rows(self, rows: AudioFeatures | None) -> None:
        """Rows up to a due run's end: to the cues' kept rows (and a backend's network: learned.py)."""
        if rows is None or rows.num_frames == 0:
            return
        self._keep_rows(CueInputs.of(rows))

    def _keep_rows(self, rows: CueInputs) -> None:
        """New rows for the cues, kept as the one matrix of the columns they read (no log-mel:
        keeping it would copy most of the kept rows at every step for nothing)."""
        self._rows = rows if self._rows is None else self._rows.then(rows)

    @staticmethod
    def _add_rows_many(streams: list[MotionStream], rows: list[AudioFeatures | None]) -> None:
        """``_add_rows`` of several streams of this class (a backend may batch it: learned.py)."""
        for stream, part in zip(streams, rows):
            stream._add_rows(part)

    def _emits(self, last_index: int) -> bool:
        return last_index >= self._next_frame and self._rows is not None

    def _layers_until(self, last_index: int, cues: Cues) -> FrameLayers:
        """This stream's layers for its frames up to ``last_index`` (``cues``: of the rows kept)."""
        indices = np.arange(self._next_frame, last_index + 1)
        layers = self._layers(indices / self.controls.fps, cues)
        self._next_frame = last_index + 1
        self._drop_old_rows(self._next_frame / self.controls.fps - _ROWS_KEPT_S)
        return layers

    def _drop_old_rows(self, keep_from: float) -> None:
        drop = int((keep_from - self._rows.start_time) / FEATURE_HOP_S)
        if drop > 0:
            self._rows = self._rows.from_row(drop)

    def _layers(self, times: np.ndarray, cues: Cues) -> FrameLayers:
        """The stages of this stream, in order, for a run of frame times (``cues``: of the rows
        kept); compose_frames does the head maths and the face."""
        phones, source = self._current_phones(float(times[0]))
        emotion = emotion_layer(times, self._emotions)
        amplitude, distance = self._control_curves(times)
        lips = self._lip_layer(times, cues, phones, source)  # a LipLayer, or rows compose_frames interpolates
        head = HeadSource(times=times, cues=cues, seed=int(self.controls.seed), amplitude=amplitude, distance=distance,
                          gazes=self._gazes, emotion_pitch=emotion.head_pitch, motion_gain=emotion.motion_gain,
                          blinks=self._blinks, saccades=self._saccades, shifts=self._shifts, emotions=self._emotions)
        return FrameLayers(times=times, lips=lips, jaw_gain=emotion.jaw_gain, emotion_face=emotion.face, head=head,
                           tongue_tip=tongue_tip_curve(times, phones, source))

    def _lip_layer(self, times: np.ndarray, cues, phones: PhoneTable, source: str) -> LipLayer:
        """The mouth; a learned backend (core/motion/learned.py) overrides this one stage."""
        return lip_layer(times, cues, phones, source)

    def _current_phones(self, first_time: float) -> tuple[PhoneTable, str]:
        phones, source = self._phones.current()
        if self._phone_table is None or self._phone_table[0] is not phones:
            # A fixed timeline is tabled once, whole; a live one anew each time, its recent part only.
            since = first_time - 2.0 if self._phones.live else -np.inf
            self._phone_table = (phones, PhoneTable.build(phones, since))
        return self._phone_table[1], source

    def _control_curves(self, times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if not self._control_events:  # constant: what the timelines below give then
            return _constant(len(times), self.controls.motion_amplitude), _constant(len(times), self.controls.head_distance)
        amp = ramped_timeline(times, np.array([self.controls.motion_amplitude]),
                              [(e.time, np.array([e.motion_amplitude]), e.ramp) for e in self._control_events
                               if e.motion_amplitude is not None])[:, 0]
        dist = ramped_timeline(times, np.array([self.controls.head_distance]),
                               [(e.time, np.array([e.head_distance]), e.ramp) for e in self._control_events
                                if e.head_distance is not None])[:, 0]
        return amp, dist


def _constant(frames: int, value: float) -> np.ndarray:
    """(frames,) ``value``, read-only (a stream steps a frame or two at a time: made once)."""
    return _constant_of(frames, value, math.copysign(1.0, value))  # -0.0 == 0.0 as a key, not as a value


@lru_cache(maxsize=64, typed=True)  # typed: an int control gives an int array, as np.full does
def _constant_of(frames: int, value: float, sign: float) -> np.ndarray:
    out = np.full(frames, value)
    out.flags.writeable = False
    return out


class MotionGenerator:
    """Audio (+ text, emotions, gaze) -> MotionTrack, or a MotionStream for live audio."""

    def __init__(self, controls: Controls = Controls()):
        self.controls = validate_controls(controls)

    def animate(self, audio: Audio, text: str | None = None, emotions: Sequence[EmotionEvent] = (),
                gazes: Sequence[GazeEvent] = ()) -> MotionTrack:
        from ..phonetics.timeline import phones_for

        timeline = phones_for(audio, text, language=self.controls.language)
        return self.animate_with_phones(audio, timeline, emotions, gazes)

    def animate_with_phones(self, audio: Audio, timeline: PhoneTimeline, emotions: Sequence[EmotionEvent] = (),
                            gazes: Sequence[GazeEvent] = ()) -> MotionTrack:
        """``animate`` with phones already known (e.g. from an external aligner)."""
        stream = self.stream_with_phones(timeline)
        for event in emotions:
            stream.set_emotion(event)
        for event in gazes:
            stream.set_gaze(event)
        frames = stream.push_audio(audio.samples) + stream.finish()
        if not frames:
            raise AudioError(f"audio too short for one frame at {self.controls.fps:g} fps ({audio.duration:.3f} s)")
        return MotionTrack.from_frames(frames, fps=self.controls.fps, phones=timeline)

    def stream(self, text: str | None = None) -> MotionStream:
        """A live stream: phones come from a PhoneStream as the audio arrives."""
        return MotionStream(self.controls, LivePhones(text, self.controls.language))

    def stream_with_phones(self, timeline: PhoneTimeline) -> MotionStream:
        """A stream whose phones are known up front (e.g. a pre-aligned line)."""
        return MotionStream(self.controls, FixedPhones(timeline))


assert len(EMOTIONS) == 7 and len(ARKIT_NAMES) == 52
