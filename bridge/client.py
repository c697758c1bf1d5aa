"""The Python reference client of the npcface sidecar (bridge/PROTOCOL.md).

    with SidecarClient("tcp://127.0.0.1:5555") as client:
        avatar = client.upload_avatar(Path("portrait.png"))
        client.open_session("guard", outputs=["latents", "frames"], avatar=avatar)
        line = client.say("guard", audio.samples, 16000, text="Halt!")
        line.ticks, line.frames, line.line_end

One socket, used from one thread. Heartbeats are sent while waiting for replies. After a server
restart the client says hello again, re-uploads its avatars and re-opens its sessions by itself;
``say`` then sends its line again.
"""
from __future__ import annotations

import io
import itertools
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import zmq

from ..core.errors import NpcfaceError
from ..core.types import MotionFrame, MotionTrack
from .protocol import (PROTOCOL_VERSION, AudioChunk, AvatarReply, Close, Closed, ClientMessage, EndLine, ErrorReply,
                       FrameAck, FrameHeader, Hello, LineEnd, Open, Opened, Ping, Pong, ServerMessage, SetControls,
                       SetEmotion, SetGaze, Stats, StatsRequest, Tick, UploadAvatar, Welcome, decode_server, encode)


class SidecarError(NpcfaceError):
    """The sidecar answered a request with an ``error`` message."""

    def __init__(self, reply: ErrorReply):
        super().__init__(f"{reply.code}: {reply.message}")
        self.code = reply.code
        self.reply = reply


class SidecarUnavailable(NpcfaceError):
    code = "unavailable"


class _Rejoined(Exception):
    """Internal: the server restarted while a line was in flight; the line must be sent again."""


@dataclass
class LineResult:
    """What came back for one line."""

    ticks: list[Tick] = field(default_factory=list)
    frames: list[tuple[FrameHeader, bytes]] = field(default_factory=list)
    line_end: LineEnd | None = None
    first_tick_latency_s: float | None = None  # first audio chunk sent -> first tick received

    def track(self, fps: float) -> MotionTrack:
        return track_from_ticks(self.ticks, fps)


def track_from_ticks(ticks: Sequence[Tick], fps: float) -> MotionTrack:
    """Ticks (with the "arkit" channel) as a MotionTrack, for CSV / JSON export."""
    if any(t.arkit is None for t in ticks):
        raise NpcfaceError("ticks lack the 'arkit' channel: open the session with channels ['arkit']")
    frames = [MotionFrame(time=t.time, head_rotation=tuple(t.head_rotation), head_translation=tuple(t.head_translation),
                          gaze_left=tuple(t.gaze_left), gaze_right=tuple(t.gaze_right),
                          blendshapes=np.asarray(t.arkit, dtype=np.float32)) for t in ticks]
    return MotionTrack.from_frames(frames, fps)


def frame_pixels(header: FrameHeader, payload: bytes) -> np.ndarray:
    """A frame message's pixels as (H, W, 4) RGBA or (H, W, 3) RGB uint8."""
    if header.format == "jpeg":
        from PIL import Image

        return np.asarray(Image.open(io.BytesIO(payload)).convert("RGB"))
    channels = 4 if header.format == "rgba8" else 3
    return np.frombuffer(payload, dtype=np.uint8).reshape(header.height, header.width, channels)


def pcm_s16le(samples: np.ndarray) -> bytes:
    """Float samples in [-1, 1] as little-endian 16-bit PCM bytes."""
    return (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2").tobytes()


class SidecarClient:
    def __init__(self, endpoint: str = "tcp://127.0.0.1:5555", timeout_s: float = 10.0, name: str = "npcface-python",
                 curve_server_key: bytes | None = None, curve_client_keys: tuple[bytes, bytes] | None = None):
        """``curve_server_key``: the server's Z85 public key (CurveZMQ); ``curve_client_keys``: this
        client's (public, secret) pair when the server only accepts known clients."""
        self.endpoint = endpoint
        self.timeout_s = timeout_s
        self.name = name
        self.welcome: Welcome | None = None
        self._context = zmq.Context()
        self._socket = self._context.socket(zmq.DEALER)
        self._socket.setsockopt(zmq.LINGER, 0)
        # A DEALER blocks on send while it has no usable connection (e.g. a refused CurveZMQ
        # handshake): bound the wait so the caller gets SidecarUnavailable, not a hang.
        self._socket.setsockopt(zmq.SNDTIMEO, max(1, int(timeout_s * 1000)))
        if curve_server_key is not None:
            public, secret = curve_client_keys or zmq.curve_keypair()
            self._socket.curve_serverkey = curve_server_key
            self._socket.curve_publickey = public
            self._socket.curve_secretkey = secret
        self._socket.connect(endpoint)
        self._generation = 0  # bumped on every rejoin; replies to older requests are ignored
        self._counter = itertools.count()
        self._inbox: deque[tuple[ServerMessage, list[bytes]]] = deque()
        self._avatars: dict[str, tuple[bytes, int | None]] = {}
        self._sessions: dict[str, Open] = {}
        self._seq: dict[str, int] = {}
        self._last_send = time.monotonic()
        self._rejoining = False
        self.rejoins = 0

    def __enter__(self) -> "SidecarClient":
        if self.welcome is None:
            self.hello()
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def close(self) -> None:
        self._socket.close(linger=0)
        self._context.term()

    # ------------------------------------------------------------ plumbing

    def _next_id(self) -> str:
        return f"{self._generation}-{next(self._counter)}"

    def _is_current(self, request_id: str | None) -> bool:
        return request_id is None or request_id.split("-", 1)[0] == str(self._generation)

    def _send(self, message: ClientMessage, payloads: Sequence[bytes] = ()) -> None:
        try:
            self._socket.send_multipart(encode(message, list(payloads)), copy=False)
        except zmq.Again:
            raise SidecarUnavailable(f"cannot send to the sidecar at {self.endpoint} (no connection within "
                                     f"{self.timeout_s:g} s)") from None
        self._last_send = time.monotonic()

    def _receive_raw(self, timeout_s: float) -> tuple[ServerMessage, list[bytes]] | None:
        """One known server message (heartbeats handled here), or None on timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            heartbeat = self.welcome.heartbeat_s if self.welcome else 5.0
            if time.monotonic() - self._last_send > heartbeat:
                self._send(Ping(id=self._next_id()))
            wait = min(deadline - time.monotonic(), heartbeat)
            if wait <= 0:
                return None
            if not self._socket.poll(int(wait * 1000) + 1):
                continue
            message, payloads = decode_server(self._socket.recv_multipart())
            if message is None:
                continue  # a message type from a newer server: ignored (PROTOCOL.md section 2)
            if isinstance(message, (Pong, ErrorReply)) and not self._is_current(message.id):
                continue  # about a request sent to a previous server instance
            restarted = (isinstance(message, Pong) and self.welcome is not None
                         and message.instance != self.welcome.instance)
            if restarted or (isinstance(message, ErrorReply) and message.code == "hello_required"):
                if not self._rejoining:
                    self._rejoin()
                    raise _Rejoined()
            if isinstance(message, Pong):
                continue
            return message, payloads

    def receive(self, timeout_s: float | None = None) -> tuple[ServerMessage, list[bytes]] | None:
        """The next server message (tick, frame, line_end, error, ...), or None after ``timeout_s``."""
        if self._inbox:
            return self._inbox.popleft()
        try:
            return self._receive_raw(self.timeout_s if timeout_s is None else timeout_s)
        except _Rejoined:
            return None

    def _request(self, message: ClientMessage, payloads: Sequence[bytes] = ()) -> ServerMessage:
        """Send and wait for the reply with the same id (other messages are kept for ``receive``).
        After a server restart (rejoined meanwhile) the request is sent once more."""
        try:
            return self._request_once(message, payloads)
        except _Rejoined:
            return self._request_once(message.model_copy(update={"id": self._next_id()}), payloads)

    def _request_once(self, message: ClientMessage, payloads: Sequence[bytes]) -> ServerMessage:
        self._send(message, payloads)
        deadline = time.monotonic() + self.timeout_s
        while (left := deadline - time.monotonic()) > 0:
            received = self._receive_raw(left)
            if received is None:
                break
            reply, reply_payloads = received
            if getattr(reply, "id", None) == message.id:
                if isinstance(reply, ErrorReply):
                    raise SidecarError(reply)
                return reply
            self._inbox.append((reply, reply_payloads))
        raise SidecarUnavailable(f"no reply from the sidecar at {self.endpoint} within {self.timeout_s:g} s")

    def _rejoin(self) -> None:
        """The server restarted: hello again, re-upload avatars, re-open sessions."""
        self._generation += 1
        self.rejoins += 1
        self._inbox.clear()
        self.welcome = None
        self._rejoining = True  # errors now are answers to these requests, not another restart
        try:
            self.hello()
            for image, face_index in list(self._avatars.values()):
                self._request_once(UploadAvatar(id=self._next_id(), face_index=face_index), [image])
            for settings in list(self._sessions.values()):
                self._request_once(settings.model_copy(update={"id": self._next_id()}), ())
        finally:
            self._rejoining = False
        self._seq = {name: 0 for name in self._sessions}

    # ------------------------------------------------------------ requests

    def hello(self) -> Welcome:
        reply = self._request_once(Hello(id=self._next_id(), protocol=PROTOCOL_VERSION, client=self.name), ())
        assert isinstance(reply, Welcome)
        self.welcome = reply
        return reply

    def ping(self) -> Pong:
        message = Ping(id=self._next_id())
        self._send(message)
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            if self._socket.poll(100):
                reply, _ = decode_server(self._socket.recv_multipart())
                if isinstance(reply, Pong) and reply.id == message.id:
                    return reply
                if reply is not None:
                    self._inbox.append((reply, _))
        raise SidecarUnavailable(f"no pong from the sidecar at {self.endpoint} within {self.timeout_s:g} s")

    def upload_avatar(self, image: bytes | Path, face_index: int | None = None) -> str:
        data = Path(image).read_bytes() if isinstance(image, Path) else bytes(image)
        reply = self._request(UploadAvatar(id=self._next_id(), face_index=face_index), [data])
        assert isinstance(reply, AvatarReply)
        self._avatars[reply.avatar] = (data, face_index)
        return reply.avatar

    def open_session(self, session: str, **settings: Any) -> Opened:
        """``settings`` are Open's fields; ``idle=True`` (protocol 1.1) asks for idle ticks between
        lines, which ``receive()`` returns (``tick.idle`` true, ``tick.line`` None)."""
        message = Open(id=self._next_id(), session=session, **settings)
        reply = self._request(message)
        assert isinstance(reply, Opened)
        self._sessions[session] = message
        self._seq[session] = 0
        return reply

    def close_session(self, session: str) -> Closed:
        reply = self._request(Close(id=self._next_id(), session=session))
        self._sessions.pop(session, None)
        assert isinstance(reply, Closed)
        return reply

    def stats(self) -> Stats:
        reply = self._request(StatsRequest(id=self._next_id()))
        assert isinstance(reply, Stats)
        return reply

    def send_audio(self, session: str, pcm: bytes, rate: int, channels: int = 1, sample_format: str = "s16le",
                   text: str | None = None, new_line: bool = False) -> None:
        """Send one chunk (no reply on success). ``new_line`` starts a line at seq 0."""
        if new_line:
            self._seq[session] = 0
        seq = self._seq.get(session, 0)
        self._send(AudioChunk(id=self._next_id(), session=session, seq=seq, rate=rate, channels=channels,
                              format=sample_format, text=text), [pcm])
        self._seq[session] = seq + 1

    def end_line(self, session: str) -> str:
        """Mark the end of the line; returns the request id its ``line_end`` will echo."""
        request_id = self._next_id()
        self._send(EndLine(id=request_id, session=session))
        self._seq[session] = 0
        return request_id

    def set_emotion(self, session: str, emotion: str, intensity: float = 1.0, time_s: float | None = None,
                    ramp: float = 0.3) -> None:
        self._send(SetEmotion(id=self._next_id(), session=session, emotion=emotion, intensity=intensity,
                              time=time_s, ramp=ramp))

    def set_gaze(self, session: str, yaw: float, pitch: float, time_s: float | None = None) -> None:
        self._send(SetGaze(id=self._next_id(), session=session, yaw=yaw, pitch=pitch, time=time_s))

    def set_controls(self, session: str, motion_amplitude: float | None = None, head_distance: float | None = None,
                     time_s: float | None = None) -> None:
        self._send(SetControls(id=self._next_id(), session=session, motion_amplitude=motion_amplitude,
                               head_distance=head_distance, time=time_s))

    def frame_ack(self, session: str, count: int = 1) -> None:
        self._send(FrameAck(session=session, count=count))

    # ------------------------------------------------------------ a whole line

    def say(self, session: str, samples: np.ndarray, rate: int, text: str | None = None, chunk_s: float = 0.1,
            realtime: bool = False, ack_frames: bool = True, attempts: int = 3) -> LineResult:
        """Stream one line (float samples, mono) and collect everything that comes back for it.

        ``realtime`` paces the chunks like live playback. Retries the line after a server restart.
        """
        pcm = pcm_s16le(np.asarray(samples, dtype=np.float32))
        return self.say_pcm(session, pcm, rate, text=text, chunk_s=chunk_s, realtime=realtime,
                            ack_frames=ack_frames, attempts=attempts)

    def say_pcm(self, session: str, pcm: bytes, rate: int, channels: int = 1, sample_format: str = "s16le",
                text: str | None = None, chunk_s: float = 0.1, realtime: bool = False, ack_frames: bool = True,
                attempts: int = 3) -> LineResult:
        """``say`` for raw interleaved PCM bytes, sent as they are."""
        frame_bytes = channels * (2 if sample_format == "s16le" else 4)
        chunk_frames = max(1, int(chunk_s * rate))
        for attempt in range(attempts):
            try:
                return self._say_once(session, pcm, rate, channels, sample_format, text, chunk_frames * frame_bytes,
                                      chunk_frames / rate, realtime, ack_frames)
            except _Rejoined:
                continue
        raise SidecarUnavailable(f"the sidecar restarted {attempts} times during one line")

    def _say_once(self, session: str, pcm: bytes, rate: int, channels: int, sample_format: str, text: str | None,
                  chunk_bytes: int, chunk_period: float, realtime: bool, ack_frames: bool) -> LineResult:
        result = LineResult()
        chunks = [pcm[i:i + chunk_bytes] for i in range(0, len(pcm), chunk_bytes)]
        started = time.monotonic()
        first_chunk_sent: float | None = None
        sent_ids: set[str] = set()
        end_id: str | None = None
        deadline = float("inf")
        other_traffic: list[tuple[ServerMessage, list[bytes]]] = []
        while result.line_end is None:
            now = time.monotonic()
            if chunks and (not realtime or now >= started + (len(sent_ids)) * chunk_period):
                chunk = chunks.pop(0)
                request_id = self._next_id()
                self._send(AudioChunk(id=request_id, session=session, seq=len(sent_ids), rate=rate, channels=channels,
                                      format=sample_format, text=text if not sent_ids else None), [chunk])
                first_chunk_sent = first_chunk_sent or time.monotonic()
                sent_ids.add(request_id)
                continue
            if not chunks and end_id is None:
                end_id = self._next_id()
                self._send(EndLine(id=end_id, session=session))
                sent_ids.add(end_id)
                deadline = time.monotonic() + self.timeout_s
            wait = (started + len(sent_ids) * chunk_period - now) if chunks else (deadline - now)
            received = self._receive_raw(max(wait, 0.001))
            if received is None:
                if not chunks and time.monotonic() >= deadline:
                    raise SidecarUnavailable(f"no line_end from the sidecar within {self.timeout_s:g} s")
                continue
            if not self._collect(session, result, received, sent_ids, ack_frames, first_chunk_sent):
                other_traffic.append(received)
        self._inbox.extend(other_traffic)
        self._seq[session] = 0
        return result

    def _collect(self, session: str, result: LineResult, received: tuple[ServerMessage, list[bytes]],
                 sent_ids: set[str], ack_frames: bool, first_chunk_sent: float | None) -> bool:
        """Take a message that belongs to this line into ``result``; False if it is someone else's."""
        message, payloads = received
        if isinstance(message, ErrorReply) and message.id in sent_ids:
            raise SidecarError(message)
        if getattr(message, "session", None) != session or isinstance(message, ErrorReply):
            return False
        if getattr(message, "idle", False):  # 1.1 idle tick/frame: not the line's; left for receive()
            if isinstance(message, FrameHeader) and ack_frames:
                self.frame_ack(session)  # an unacknowledged idle frame would hold the line's frames back
            return False
        if isinstance(message, Tick):
            if not result.ticks and first_chunk_sent is not None:
                result.first_tick_latency_s = time.monotonic() - first_chunk_sent
            result.ticks.append(message)
        elif isinstance(message, FrameHeader):
            result.frames.append((message, payloads[0]))
            if ack_frames:
                self.frame_ack(session)
        elif isinstance(message, LineEnd) and message.id in sent_ids:
            result.line_end = message
        else:
            return False
        return True
