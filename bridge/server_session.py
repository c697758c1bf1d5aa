"""Wire-side state of one open session: audio sequence, tick numbering, the frame window and the
drop-oldest policy (PROTOCOL.md section 7.3). No sockets here: methods return encoded messages
for the server loop to send, so the policy is plain bookkeeping.
"""
from __future__ import annotations

import io
import itertools
from collections import deque
from dataclasses import dataclass

import numpy as np

from ..core.session import NpcSession
from ..core.types import Frame, MotionFrame
from .protocol import PROTOCOL_MINOR, FrameHeader, LineEnd, Open, Tick, encode, encode_fields


@dataclass(frozen=True)
class RenderJob:
    line: int | None  # None: an idle frame
    index: int
    motion: MotionFrame
    due: float  # wall clock (monotonic) when the engine shows this frame at the earliest (section 7.3)


@dataclass(frozen=True)
class RenderedFrame:
    line: int | None  # None: an idle frame
    index: int
    time: float
    payload: bytes
    due: float  # as RenderJob.due


@dataclass
class _LineCounts:
    request_id: str | None = None
    ticks: int = 0
    duration: float = 0.0
    frames_sent: int = 0
    frames_dropped: int = 0
    ended: bool = False  # end_line received, ticks all sent


def _float_list(values) -> list[float]:
    return list(map(float, values))


def encode_pixels(frame: Frame, frame_format: str, jpeg_quality: int) -> bytes:
    """A rendered frame in the session's wire format (section 5.5)."""
    rgba = np.ascontiguousarray(frame.rgba, dtype=np.uint8)
    if frame_format == "rgba8":
        return rgba.tobytes()
    if frame_format == "rgb8":
        return np.ascontiguousarray(rgba[..., :3]).tobytes()
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(rgba[..., :3], "RGB").save(buffer, format="JPEG", quality=jpeg_quality)
    return buffer.getvalue()


class WireSession:
    """One session as the protocol sees it. Owned by the server loop's thread."""

    def __init__(self, name: str, settings: Open, npc: NpcSession, lookahead_s: float = 0.0,
                 minor: int = PROTOCOL_MINOR):
        self.name = name
        self.settings = settings
        self.npc = npc
        self.latents = "latents" in settings.outputs
        self.frames = "frames" in settings.outputs
        self.window = settings.frame_window
        self.keep_every_frame = settings.frame_policy == "every"  # offline: never drop, pace by acks
        self.line = -1  # the current (or last) line number
        self.expected_seq = 0
        self.next_index = 0
        self.ticks_sent = 0
        self.frames_sent = 0
        self.frames_dropped = 0
        self.in_flight = 0  # frames sent and not acknowledged
        self.rendering = False  # one render at a time per session keeps frames in order
        self._rendering_line = -1
        self._render_queue: deque[RenderJob] = deque()
        self._send_queue: deque[RenderedFrame] = deque()
        self._lines: dict[int, _LineCounts] = {}
        self.idle = settings.idle  # 1.1: idle ticks between lines (section 7.4)
        self.idle_origin: float | None = None  # wall clock (monotonic) of idle time 0; None: not idling
        self.idle_index = 0
        self.line_started_at = 0.0  # wall clock of the current line's first chunk
        # When the engine plays the current line's tick 0 at the earliest: its first chunk's arrival
        # plus the lookahead (section 7.2), or the previous line's end if that is later.
        self.line_origin = 0.0
        self._previous_line_end = float("-inf")
        self.lookahead_s = lookahead_s  # the effective lookahead (opened.lookahead_s)
        self.minor = minor  # the connection's protocol minor: no newer field is sent (section 10)

    # ------------------------------------------------------------ lines and ticks

    def start_line(self, now: float) -> None:
        self.idle_origin = None
        self.line_started_at = now
        self.line_origin = max(now + self.lookahead_s, self._previous_line_end)
        self.line += 1
        self.expected_seq = 0
        self.next_index = 0
        self._lines[self.line] = _LineCounts()

    def cancel_line(self) -> None:
        """Forget a line that failed on its first chunk (nothing of it was sent)."""
        del self._lines[self.line]
        self.line -= 1

    def motion_out(self, motions: list[MotionFrame]) -> list[list[bytes]]:
        """Tick messages for new motion frames; queues their renders (dropping the oldest waiting)."""
        out = []
        if not motions:
            return out
        counts = self._lines[self.line]
        for motion in motions:
            index = self.next_index
            self.next_index += 1
            counts.ticks += 1
            if self.latents:
                out.append(self._tick(motion, index))
                self.ticks_sent += 1
            if self.frames:  # "latest" drops by lateness (drop_late), not here: a burst of ticks
                # (a line sent at once) is mostly frames that are not due yet
                self._render_queue.append(RenderJob(self.line, index, motion,
                                                    self.line_origin + index / self.settings.fps))
        return out

    def start_idle(self, origin: float) -> None:
        """Idle ticks from wall-clock ``origin`` on (index and time restart at 0)."""
        self.idle_origin = origin
        self.idle_index = 0

    def idle_out(self, motions: list[MotionFrame]) -> list[list[bytes]]:
        """Tick messages for idle motion frames; their renders always drop the oldest waiting."""
        out = []
        for motion in motions:
            index = self.idle_index
            self.idle_index += 1
            if self.latents:
                out.append(self._tick(motion, index, idle=True))
                self.ticks_sent += 1
            if self.frames:
                if self.keep_every_frame:  # idle frames are live even under "every": keep the newest
                    idle_jobs = [job for job in self._render_queue if job.line is None]
                    for job in idle_jobs[:max(0, len(idle_jobs) + 1 - self.window)]:
                        self._render_queue.remove(job)
                        self._drop(None)
                self._render_queue.append(RenderJob(None, index, motion,
                                                    self.idle_origin + index / self.settings.fps))
        return out

    def _tick(self, motion: MotionFrame, index: int, idle: bool = False) -> list[bytes]:
        """The encoded tick (the bytes of ``encode(Tick(...))``, without building the model)."""
        channels = self.settings.channels
        values = {"session": self.name, "line": None if idle else self.line, "idle": idle, "index": index,
                  "time": float(motion.time), "head_rotation": _float_list(motion.head_rotation),
                  "head_translation": _float_list(motion.head_translation),
                  "gaze_left": _float_list(motion.gaze_left), "gaze_right": _float_list(motion.gaze_right)}
        if "arkit" in channels:
            values["arkit"] = np.asarray(motion.blendshapes, dtype=np.float64).tolist()
        if "visemes" in channels or "vrm" in channels:
            from ..core.motion.visemes import visemes_from_blendshapes, vrm_from_blendshapes

            if "visemes" in channels:
                values["visemes"] = _float_list(visemes_from_blendshapes(motion.blendshapes))
            if "vrm" in channels:
                values["vrm"] = _float_list(vrm_from_blendshapes(motion.blendshapes))
        return encode_fields(Tick, values, self.minor)

    def end_line(self, request_id: str | None, duration: float) -> None:
        counts = self._lines[self.line]
        counts.request_id = request_id
        counts.duration = duration
        counts.ended = True
        self._previous_line_end = self.line_origin + duration

    def ready_line_ends(self) -> list[list[bytes]]:
        """`line_end` messages for ended lines with no frame left to render or send (in order)."""
        out = []
        for line in sorted(self._lines):
            counts = self._lines[line]
            if not counts.ended or self._frames_outstanding(line):
                break
            out.append(encode(LineEnd(id=counts.request_id, session=self.name, line=line, ticks=counts.ticks,
                                      duration=counts.duration, frames_sent=counts.frames_sent,
                                      frames_dropped=counts.frames_dropped)))
            del self._lines[line]
        return out

    def _frames_outstanding(self, line: int) -> bool:
        def before(other: int | None) -> bool:  # idle frames hold back no line end
            return other is not None and other <= line

        return ((self.rendering and before(self._rendering_line)) or any(before(job.line) for job in self._render_queue)
                or any(before(frame.line) for frame in self._send_queue))

    # ------------------------------------------------------------ frames

    def drop_late(self, now: float) -> None:
        """"latest": at most ``window`` frames that are already due wait (rendered and waiting for
        the window, or waiting to render); the oldest due ones beyond that are dropped. Frames not
        due yet wait however many there are: a line sent at once is not late (section 7.3)."""
        if self.keep_every_frame:
            return
        due = 0
        for waiting in itertools.chain(self._send_queue, self._render_queue):  # oldest first
            if waiting.due > now:
                break
            due += 1
        for _ in range(due - self.window):
            oldest = self._send_queue.popleft() if self._send_queue else self._render_queue.popleft()
            self._drop(oldest.line)

    def start_warm_up(self) -> None:
        """A render that builds the renderer runs (it holds the session's frames, no line_end)."""
        self.rendering = True
        self._rendering_line = None

    def next_render(self) -> RenderJob | None:
        if self.rendering or not self._render_queue:
            return None
        if len(self._send_queue) >= self.window:
            return None  # back-pressure: render on when the client has taken frames in
        job = self._render_queue.popleft()
        self.rendering = True
        self._rendering_line = job.line
        return job

    def rendered(self, frame: RenderedFrame) -> None:
        self.rendering = False
        self._send_queue.append(frame)  # at most `window` waiting: next_render holds back before

    def render_failed(self, job: RenderJob) -> None:
        self.rendering = False
        self._drop(job.line)

    def sendable_frames(self) -> list[list[bytes]]:
        """Frame messages the window allows now."""
        out = []
        width, height = self.settings.frame_size
        while self._send_queue and self.in_flight < self.window:
            frame = self._send_queue.popleft()
            header = FrameHeader(session=self.name, line=frame.line, index=frame.index, time=frame.time,
                                 width=width, height=height, format=self.settings.frame_format,
                                 idle=frame.line is None)
            out.append(encode(header, [frame.payload], minor=self.minor))
            self.in_flight += 1
            self.frames_sent += 1
            if frame.line in self._lines:
                self._lines[frame.line].frames_sent += 1
        return out

    def ack(self, count: int) -> None:
        self.in_flight = max(0, self.in_flight - count)

    def _drop(self, line: int) -> None:
        self.frames_dropped += 1
        if line in self._lines:
            self._lines[line].frames_dropped += 1

    def stats(self) -> dict:
        counts = {"session": self.name, "line": max(self.line, 0), "in_line": self.npc.in_line,
                  "idling": self.idle_origin is not None,
                  "audio_s": float(self.npc.line_seconds), "ticks_sent": self.ticks_sent,
                  "frames_sent": self.frames_sent, "frames_dropped": self.frames_dropped,
                  "frames_in_flight": self.in_flight}
        if self.minor < 1:  # 1.1's field (section 10: no field newer than the connection)
            del counts["idling"]
        return counts
