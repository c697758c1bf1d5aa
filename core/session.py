"""One talking NPC: PCM stream converter + motion stream + renderer, line after line.

No networking and no animation logic here: this only composes the stages (core/audio,
core/motion, core/render) and keeps the per-NPC state that outlives a line (emotion, gaze,
controls). The sidecar (bridge/server.py) drives one NpcSession per open session.
"""
from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from .audio.decode import SAMPLE_BYTES, SampleFormat
from .errors import AudioError, TextError
from .types import SAMPLE_RATE, ControlEvent, Controls, EmotionEvent, Frame, GazeEvent, MotionFrame

if TYPE_CHECKING:
    from .render.rig import Rig

MotionEvent = EmotionEvent | GazeEvent | ControlEvent


@dataclass(frozen=True)
class SessionSettings:
    controls: Controls = Controls()
    frame_size: tuple[int, int] | None = None  # (width, height); None: no rendering
    max_line_seconds: float = 600.0
    motion: str = "rules"  # "rules", "learned" or a weights file (core/motion/backends)


@dataclass(frozen=True)
class LineFormat:
    """The PCM layout of one line's chunks (fixed for the whole line)."""

    rate: int
    channels: int
    sample_format: SampleFormat

    @property
    def frame_bytes(self) -> int:
        return self.channels * SAMPLE_BYTES[self.sample_format]


@functools.lru_cache(maxsize=64)
def shared_line_format(rate: int, channels: int, sample_format: SampleFormat) -> LineFormat:
    """``LineFormat(rate, channels, sample_format)``, one shared value per layout (a sidecar makes
    one per audio message: built anew, it cost more than checking the chunk)."""
    return LineFormat(rate, channels, sample_format)


IDLE_BLOCK_S = 0.25  # silence fed to an idle stream at a time


class _Line:
    def __init__(self, stream, converter, line_format: LineFormat):
        self.stream = stream
        self.converter = converter
        self.format = line_format
        self.input_frames = 0  # sample frames received at the source rate

    @property
    def seconds(self) -> float:
        return self.input_frames / self.format.rate


class NpcSession:
    """The stages for one NPC. Not thread-safe, except that ``render`` may run on another thread
    while the owner pushes audio (rendering shares no state with the motion stream)."""

    def __init__(self, settings: SessionSettings, rig: "Rig | None" = None):
        from .motion.backends import make_generator  # imported here so latents-only users skip nothing

        self.settings = settings
        self._generator = make_generator(settings.motion, settings.controls)
        if settings.frame_size is not None and rig is None:
            raise ValueError("rendering needs a rig")
        self._rig = rig
        self._renderer = None  # built by the first render, on the rendering thread (it takes ~0.15 s)
        self._line: _Line | None = None
        self._persistent: dict[type, MotionEvent] = {}  # the latest event of each kind (outlives lines)
        self._pending: list[MotionEvent] = []  # events sent between lines, for the next line
        self._idle = None  # the MotionStream fed silence between lines (None: not idling)
        self._idle_samples = 0  # 16 kHz samples of silence fed to the idle stream
        self._idle_ready: deque[MotionFrame] = deque()  # idle frames computed ahead, not yet due
        self._idle_next_time = 0.0  # the idle timeline's first frame not computed yet
        self.lines_started = 0

    # ------------------------------------------------------------ lines

    @property
    def in_line(self) -> bool:
        return self._line is not None

    @property
    def line_seconds(self) -> float:
        """Audio received so far on the current line (0 between lines)."""
        return self._line.seconds if self._line is not None else 0.0

    def start_line(self, line_format: LineFormat, text: str | None = None) -> None:
        from .audio.decode import PcmStreamConverter

        if self._line is not None:
            raise AudioError("a line is already in progress: end it first")
        if text is not None and not text.strip():
            text = None
        if text is not None and "\x00" in text:
            raise TextError("the line's text contains a NUL character")
        converter = PcmStreamConverter(line_format.rate, line_format.channels, line_format.sample_format)
        self.stop_idle()
        stream = self._generator.stream(text)
        # State set on earlier lines holds from the start; events sent between lines follow.
        for event in self._persistent.values():
            held = replace(event, time=0.0, ramp=0.0) if hasattr(event, "ramp") else replace(event, time=0.0)
            self._apply(stream, held)
        for event in self._pending:
            self._apply(stream, event)
            self._persistent[type(event)] = event
        self._pending = []
        self._line = _Line(stream, converter, line_format)
        self.lines_started += 1

    def check_chunk(self, line_format: LineFormat, data: bytes) -> None:
        """Raise AudioError if this chunk cannot extend the current line (state untouched)."""
        line = self._line
        if line is not None and line_format is not line.format and line_format != line.format:
            raise AudioError(f"the line's audio format changed mid-line ({line.format} -> {line_format})")
        if not data:
            raise AudioError("empty audio payload")
        if len(data) % line_format.frame_bytes:
            raise AudioError(f"payload of {len(data)} bytes is not a whole number of "
                             f"{line_format.frame_bytes}-byte sample frames")
        if line_format.sample_format == "f32le":
            samples = np.frombuffer(data, dtype="<f4")
            bad = ~np.isfinite(samples)
            if bad.any():
                raise AudioError(f"audio sample {int(np.argmax(bad)) // line_format.channels} of the chunk is NaN or infinite")

    def chunk_seconds(self, line_format: LineFormat, data: bytes) -> float:
        return len(data) // line_format.frame_bytes / line_format.rate

    def push_pcm(self, data: bytes) -> list[MotionFrame]:
        """Feed a chunk of the line's PCM; the motion frames it completes."""
        self.queue_pcm(data)
        return step_sessions([self])[0]

    def queue_pcm(self, data: bytes, checked: bool = False) -> None:
        """``push_pcm`` without computing frames: they come from the next ``step_sessions``, which
        a sidecar runs once for all its talking sessions (the same frames, cheaper together).
        ``checked``: the caller has passed ``data`` through ``check_chunk`` with the line's format."""
        line = self._require_line()
        if not checked:
            self.check_chunk(line.format, data)
        samples16k = line.converter.push(data)
        line.input_frames += len(data) // line.format.frame_bytes
        if len(samples16k):
            line.stream.append_audio(samples16k)

    def end_line(self) -> list[MotionFrame]:
        """The line's audio is complete: its remaining motion frames."""
        return end_lines([self])[0]

    def cancel_line(self) -> None:
        self._line = None
        self.stop_idle()

    def _require_line(self) -> _Line:
        if self._line is None:
            raise AudioError("no line in progress")
        return self._line

    # ------------------------------------------------------------ idle (between lines)

    @property
    def idling(self) -> bool:
        return self._idle is not None

    def start_idle(self) -> None:
        """Start an idle timeline at 0 s: the same generator fed silence (blinks, head, gaze and
        emotion go on; the mouth rests). Only between lines; a new line stops it."""
        if self._line is not None:
            raise AudioError("a line is in progress: idle motion runs between lines only")
        from .types import PhoneTimeline

        self._idle = self._generator.stream_with_phones(PhoneTimeline((), "acoustic", self.settings.controls.language))
        self._idle_samples = 0
        self._idle_ready.clear()
        self._idle_next_time = 0.0
        for event in [*self._persistent.values(), *self._pending]:
            held = replace(event, time=0.0, ramp=0.0) if hasattr(event, "ramp") else replace(event, time=0.0)
            self._apply(self._idle, held)

    def stop_idle(self) -> None:
        self._idle = None
        self._idle_ready.clear()

    def idle_frames(self, until_s: float, block_s: float = IDLE_BLOCK_S) -> list[MotionFrame]:
        """Idle frames with times up to ``until_s`` on the idle timeline. Silence goes in by blocks
        of ``block_s`` (frames computed together cost far less each), so frames are computed up to
        one block ahead and events set while idling show within about ``block_s``."""
        if self.needs_idle_block(until_s, block_s):  # at most one block per call
            add_idle_blocks([self], block_s)
        return self.due_idle_frames(until_s)

    def needs_idle_block(self, until_s: float, block_s: float = IDLE_BLOCK_S) -> bool:
        """Whether the idle frames up to ``until_s`` need the next block of silence (False when
        not idling)."""
        if self._idle is None or (self._idle_ready and self._idle_ready[-1].time >= until_s):
            return False
        lead = int(round((block_s + self.settings.controls.lookahead_s) * SAMPLE_RATE))
        return int(round(until_s * SAMPLE_RATE)) + lead > self._idle_samples

    def due_idle_frames(self, until_s: float) -> list[MotionFrame]:
        """The idle frames computed so far with times up to ``until_s``, handed out once."""
        out = []
        while self._idle_ready and self._idle_ready[0].time <= until_s + 1e-9:
            out.append(self._idle_ready.popleft())
        return out

    # ------------------------------------------------------------ controls

    def set_event(self, event: MotionEvent) -> None:
        """An emotion, gaze or control change at ``event.time`` on the current (or next) line."""
        if self._line is None:
            self._pending.append(event)
            if self._idle is not None:  # shown now on the idle timeline, and held for the next line
                self._apply(self._idle, replace(event, time=self._idle_next_time))
        else:
            self._apply(self._line.stream, event)
            self._persistent[type(event)] = event

    @staticmethod
    def _apply(stream, event: MotionEvent) -> None:
        if isinstance(event, EmotionEvent):
            stream.set_emotion(event)
        elif isinstance(event, GazeEvent):
            stream.set_gaze(event)
        else:
            stream.set_controls(event)

    # ------------------------------------------------------------ rendering

    @property
    def renders(self) -> bool:
        return self.settings.frame_size is not None

    def render(self, frame: MotionFrame) -> Frame:
        """The portrait at ``frame``. Call from one thread at a time (any thread)."""
        if self.settings.frame_size is None:
            raise ValueError("this session does not render frames")
        if self._renderer is None:
            from .render.renderer import Renderer

            self._renderer = Renderer(self._rig, size=self.settings.frame_size)
        return self._renderer.render(frame)


def step_sessions(sessions: list[NpcSession],
                  on_error: Callable[[int, Exception], None] | None = None) -> list[list[MotionFrame]]:
    """The motion frames the PCM queued so far completes, per session (none between lines);
    ``on_error`` as in core/motion/stepping.step_streams, with indices into ``sessions``."""
    from .motion.stepping import step_streams

    talking = [k for k, npc in enumerate(sessions) if npc._line is not None]
    report = None if on_error is None else (lambda i, exc: on_error(talking[i], exc))
    frames = step_streams([sessions[k]._line.stream for k in talking], report)
    out: list[list[MotionFrame]] = [[] for _ in sessions]
    for k, motions in zip(talking, frames):
        out[k] = motions
    return out


def add_idle_blocks(sessions: list[NpcSession], block_s: float = IDLE_BLOCK_S,
                    on_error: Callable[[int, Exception], None] | None = None) -> None:
    """The next block of silence for each idling session, stepped together (a sidecar's idle NPCs
    cost about half as much so: core/motion/stepping.step_streams); the frames wait in each session
    for ``due_idle_frames``, exactly those its own blocks give. ``on_error`` as in
    ``step_sessions``: a failing session is reported (and stays without the block's frames)."""
    from .motion.stepping import step_streams

    chosen = [k for k, npc in enumerate(sessions) if npc._idle is not None]
    block = int(block_s * SAMPLE_RATE)
    for k in chosen:
        sessions[k]._idle_samples += block
        sessions[k]._idle.append_audio(np.zeros(block, dtype=np.float32))
    report = None if on_error is None else (lambda i, exc: on_error(chosen[i], exc))
    idling = [sessions[k] for k in chosen]
    for npc, frames in zip(idling, step_streams([npc._idle for npc in idling], report)):
        if npc._idle is None:  # stopped by on_error meanwhile
            continue
        npc._idle_ready.extend(frames)
        if frames:
            npc._idle_next_time = frames[-1].time + 1.0 / npc.settings.controls.fps


def end_lines(sessions: list[NpcSession],
              on_error: Callable[[int, Exception], None] | None = None) -> list[list[MotionFrame]]:
    """``[npc.end_line() for npc in sessions]``, computed together (a sidecar ends many lines a
    second): the converters' last samples stepped in one batch, then every line finished in one
    (core/motion/stepping.finish_streams); each session gets exactly what its own end_line gives.
    Every line is over when this returns or raises. ``on_error`` as in ``step_sessions``: a
    failing line is reported and gets the frames it had made; the others go on."""
    from .motion.stepping import finish_streams, step_streams

    lines = [npc._require_line() for npc in sessions]  # raises before any line is touched
    for npc in sessions:
        npc._line = None
    failed: set[int] = set()

    def report(k: int, exc: Exception) -> None:  # only with on_error
        failed.add(k)
        on_error(k, exc)

    def reporting(chosen: list[int]) -> Callable[[int, Exception], None] | None:
        return None if on_error is None else (lambda i, exc: report(chosen[i], exc))

    out: list[list[MotionFrame]] = [[] for _ in sessions]
    pushed = []  # as push_audio(tail): the lines whose converter held samples step them on their own first
    for k, line in enumerate(lines):
        try:
            tail = line.converter.flush()
            if len(tail):
                line.stream.append_audio(tail)
                pushed.append(k)
        except Exception as exc:
            if on_error is None:
                raise
            report(k, exc)
    for k, frames in zip(pushed, step_streams([lines[k].stream for k in pushed], reporting(pushed))):
        out[k] = frames
    ending = [k for k in range(len(lines)) if k not in failed]
    for k, frames in zip(ending, finish_streams([lines[k].stream for k in ending], reporting(ending))):
        out[k] += frames
    return out
