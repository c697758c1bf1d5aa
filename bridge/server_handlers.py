"""One handler per client request type (``on_<type>``), mixed into bridge/server.Server.

Handlers run on the server loop's thread; they raise ProtocolError / NpcfaceError for bad
requests (the server turns those into ``error`` replies naming the request).
"""
from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

import numpy as np

from ..core.arkit import ARKIT_NAMES, EMOTIONS, OCULUS_VISEMES, VRM_PRESETS
from ..core.deps import DependencyError, dependency_error
from ..core.errors import NpcfaceError
from ..core.motion.backends import MOTION_NAMES
from ..core.session import NpcSession, SessionSettings, add_idle_blocks, end_lines, shared_line_format
from ..core.types import ControlEvent, Controls, EmotionEvent, GazeEvent, MotionFrame
from .protocol import (AudioChunk, AvatarReply, Close, Closed, EndLine, FrameAck, Hello, Open, Opened, Ping, Pong,
                       PROTOCOL_MAJOR, ProtocolError, SetControls, SetEmotion, SetGaze, Stats, StatsRequest,
                       UploadAvatar, Welcome, encode)
from .server_session import RenderedFrame, RenderJob, WireSession, encode_pixels

if TYPE_CHECKING:
    from .server import ClientState, Server

log = logging.getLogger("npcface.serve")
IDLE_BATCH = 8  # idle streams given their next block in one step: ~5 ms of CPU per idle NPC-second, 9-14 one by one
IDLE_AHEAD_S = 0.1  # a block is added this long before it is needed, so that more sessions share a step


def log_failure(exc: Exception, what: str) -> DependencyError | None:
    """Log an unexpected exception while doing ``what``. A package that does not load is a broken
    install, not a bug: one line, and its DependencyError is returned to answer the request with.
    Anything else is a bug: logged with its traceback, None returned."""
    failed = dependency_error(exc)
    if failed is not None:
        log.warning("npcface serve: %s: %s", what, failed)
    else:
        log.error("npcface serve: internal error in %s", what, exc_info=exc)
    return failed


def error_for(exc: Exception, what: str) -> NpcfaceError:
    """What a client is told of ``exc``, raised while doing ``what``: our own error as it is, a
    broken install's DependencyError, anything else (a bug, logged) an ``internal`` error."""
    if isinstance(exc, NpcfaceError):
        return exc
    return log_failure(exc, what) or ProtocolError("internal", f"internal server error ({type(exc).__name__})")


def capabilities(has_frames: bool, default_motion: str) -> dict:
    return {
        "motion": list(MOTION_NAMES),  # 1.2: open.motion's choices
        "default_motion": default_motion,
        "outputs": ["latents", "frames"] if has_frames else ["latents"],
        "frame_formats": ["rgba8", "rgb8", "jpeg"],
        "sample_formats": ["s16le", "f32le"],
        "channels": {
            "head_rotation": ["yaw", "pitch", "roll"],
            "head_translation": ["x", "y", "z"],
            "gaze": ["yaw", "pitch"],
            "arkit": list(ARKIT_NAMES),
            "visemes": list(OCULUS_VISEMES),
            "vrm": list(VRM_PRESETS),
        },
        "emotions": list(EMOTIONS),
    }


def negotiated_version(client_version: str, server_version: str) -> str:
    """The version spoken on a connection: the lower minor of the two (same major; section 10)."""
    def minor(version: str) -> int:
        tail = version.split(".", 1)[1] if "." in version else "0"
        return int(tail) if tail.isdigit() else 0

    major = server_version.split(".", 1)[0]
    return f"{major}.{min(minor(client_version), minor(server_version))}"


def supported_versions(server_version: str) -> list[str]:
    """version_mismatch's ``supported``: every "MAJOR.MINOR" this server speaks, oldest first."""
    major, minor = server_version.split(".")
    return [f"{major}.{m}" for m in range(int(minor) + 1)]


def min_lookahead_s() -> float:
    """The least lookahead the motion generator works with (a smaller request acts as this)."""
    from ..core.motion import generator as motion

    return float(getattr(motion, "MIN_LOOKAHEAD_S", 0.0))


class RequestHandlers:
    """Request handlers; ``self`` is the Server."""

    # ------------------------------------------------------------ connection

    def on_hello(self: "Server", client: "ClientState", message: Hello, payloads: list[bytes]) -> None:
        major = message.protocol.split(".", 1)[0]
        if major != str(PROTOCOL_MAJOR):
            raise ProtocolError("version_mismatch", f"this server speaks protocol {self.protocol_version()}, "
                                f"not {message.protocol!r}", supported=supported_versions(self.protocol_version()))
        if client.sessions:  # a second hello starts over (lines it ended before it end first, as sent)
            self._end_now(client, list(client.sessions))
            self.forget_client(client, "said hello again")
            self.clients[client.identity] = client
        client.said_hello = True
        self._expired.pop(client.identity, None)  # it knows now
        protocol = negotiated_version(message.protocol, self.protocol_version())
        client.minor = int(protocol.split(".")[1])
        log.info("npcface serve: hello from %r", message.client)
        self.send(client, encode(Welcome(
            id=message.id, protocol=protocol,
            server=self.server_name(), instance=self.instance,
            capabilities=capabilities(self.has_frames, self.default_motion), limits=self.limits.to_wire(),
            heartbeat_s=self.liveness.heartbeat_s, idle_timeout_s=self.liveness.idle_timeout_s)))

    def on_ping(self: "Server", client: "ClientState", message: Ping, payloads: list[bytes]) -> None:
        self.send(client, encode(Pong(id=message.id, instance=self.instance)))

    def on_stats(self: "Server", client: "ClientState", message: StatsRequest, payloads: list[bytes]) -> None:
        for wire in client.sessions.values():  # counters as of now: frames that became late meanwhile
            self._pump(client, wire)
        self.send(client, encode(Stats(
            id=message.id, instance=self.instance, uptime_s=time.monotonic() - self.started,
            clients=self.client_count(), sessions=self.session_count(), avatars=len(self.avatars),
            errors_sent=self.error_count(), your_sessions=[s.stats() for s in client.sessions.values()]),
            minor=client.minor))

    # ------------------------------------------------------------ avatars

    def on_upload_avatar(self: "Server", client: "ClientState", message: UploadAvatar, payloads: list[bytes]) -> None:
        if not self.has_frames:
            raise ProtocolError("unsupported", "this server has no renderer, so it takes no avatars")
        image = payloads[0]
        avatar = self.avatar_id(image, message.face_index)
        if avatar in self.avatars:
            self.avatars.move_to_end(avatar)
            self.send(client, encode(self._avatar_reply(message.id, avatar, cached=True)))
            return
        self._rig_pool.submit(self._build_rig, client.identity, message, image, avatar)

    def _build_rig(self: "Server", identity: bytes, message: UploadAvatar, image: bytes, avatar: str) -> None:
        """Worker thread: decode + rig, then reply from the loop thread."""
        from ..core.render.rig import build_rig, load_image

        width = height = 0
        try:
            pixels = load_image(image)
            height, width = pixels.shape[:2]
            if width * height > self.limits.max_avatar_pixels:
                raise ProtocolError("avatar_too_large", f"image of {width}x{height} pixels exceeds the limit of "
                                    f"{self.limits.max_avatar_pixels} pixels", limit=self.limits.max_avatar_pixels)
            result: NpcfaceError | object = build_rig(pixels, face_index=message.face_index)
        except NpcfaceError as exc:
            result = exc
        except Exception as exc:  # a rigging bug must answer the request, not vanish in the pool
            result = log_failure(exc, "rigging") or ProtocolError("internal", f"rigging failed ({type(exc).__name__})")

        def reply() -> None:
            client = self.clients.get(identity)
            if client is not None:  # it was waiting for this reply, not silent (rigging can take long)
                client.last_seen = time.monotonic()
            if isinstance(result, NpcfaceError):
                if client is not None:
                    self.send_error(client, result, message.id, "upload_avatar")
                return
            self.avatars[avatar] = (result, width, height)
            while len(self.avatars) > self.limits.max_avatars:
                self.avatars.popitem(last=False)
            if client is not None:
                self.send(client, encode(self._avatar_reply(message.id, avatar, cached=False)))

        self.complete_later(reply)

    def _avatar_reply(self: "Server", request_id: str | None, avatar: str, cached: bool) -> AvatarReply:
        _, width, height = self.avatars[avatar]
        return AvatarReply(id=request_id, avatar=avatar, cached=cached, width=int(width), height=int(height))

    # ------------------------------------------------------------ sessions

    def on_open(self: "Server", client: "ClientState", message: Open, payloads: list[bytes]) -> None:
        if message.session in client.sessions:
            raise ProtocolError("session_exists", f"session {message.session!r} is already open")
        if len(client.sessions) >= self.limits.max_sessions_per_client:
            raise ProtocolError("too_many_sessions", f"this client already has {len(client.sessions)} sessions "
                                "open", limit=self.limits.max_sessions_per_client)
        if self.session_count() >= self.limits.max_sessions:
            raise ProtocolError("too_many_sessions", "the server is full", limit=self.limits.max_sessions)
        if not self.has_latents:
            raise ProtocolError("unsupported", "this server has no motion generator installed")
        beyond = ([f"fps: {message.fps:g} exceeds this server's max_fps {self.limits.max_fps}"]
                  if message.fps > self.limits.max_fps else [])
        if max(message.frame_size) > self.limits.max_frame_size:
            beyond.append(f"frame_size: {message.frame_size} exceeds this server's max_frame_size "
                          f"{self.limits.max_frame_size}")
        if beyond:
            raise ProtocolError("bad_request", "; ".join(beyond), errors=beyond)
        frames = "frames" in message.outputs
        rig = None
        if frames:
            if not self.has_frames:
                raise ProtocolError("unsupported", "this server has no renderer: ask for outputs ['latents']")
            if message.avatar is None:
                raise ProtocolError("avatar_required", "frames output needs an 'avatar' id (upload_avatar first)")
        if message.avatar is not None:
            cached = self.avatars.get(message.avatar)
            if cached is None:
                raise ProtocolError("unknown_avatar", f"avatar {message.avatar!r} is not cached here: upload it again")
            self.avatars.move_to_end(message.avatar)
            rig = cached[0]
        controls = Controls(fps=message.fps, seed=message.seed, motion_amplitude=message.motion_amplitude,
                            head_distance=message.head_distance, language=message.language,
                            lookahead_s=message.lookahead_s)
        motion = message.motion or self.default_motion
        settings = SessionSettings(controls=controls, frame_size=tuple(message.frame_size) if frames else None,
                                   max_line_seconds=self.limits.max_line_seconds, motion=self.motion_spec(motion))
        npc = NpcSession(settings, rig if frames else None)
        lookahead_s = max(message.lookahead_s, min_lookahead_s())
        wire = client.sessions[message.session] = WireSession(message.session, message, npc, lookahead_s,
                                                              client.minor)
        if frames:
            self._warm_renderer(client, wire)
        if message.idle:
            self._start_idle(wire, time.monotonic())
        self._sessions_changed()
        self.send(client, encode(Opened(
            id=message.id, session=message.session, outputs=list(message.outputs), channels=list(message.channels),
            fps=message.fps, avatar=message.avatar, frame_size=list(message.frame_size),
            frame_format=message.frame_format, frame_window=message.frame_window,
            frame_policy=message.frame_policy, lookahead_s=lookahead_s,
            idle=message.idle, motion=motion), minor=client.minor))

    def motion_spec(self: "Server", name: str) -> str:
        """What an open.motion name means here: "learned" is `serve --motion FILE`'s weights if given."""
        return "rules" if name == "rules" else self.learned_motion

    def _session(self: "Server", client: "ClientState", name: str) -> WireSession:
        wire = client.sessions.get(name)
        if wire is None:
            raise ProtocolError("unknown_session", f"no open session {name!r} on this connection")
        self._end_now(client, [name])  # a request after end_line: the line ends first, as sent
        return wire

    def _end_now(self: "Server", client: "ClientState", names: list[str]) -> None:
        """End at once the lines of ``client``'s sessions ``names`` whose end_line is pending (a
        later request of theirs must not overtake it); a pending end of a session since replaced
        is dropped."""
        ending = []
        for name in names:
            pending = self._to_end.pop((client.identity, name), None)
            if pending is not None and pending[1] is client.sessions.get(name):
                ending.append(pending)
        if ending:
            self._end_lines(ending)

    def on_close(self: "Server", client: "ClientState", message: Close, payloads: list[bytes]) -> None:
        wire = self._session(client, message.session)
        wire.npc.cancel_line()
        del client.sessions[message.session]
        self._sessions_changed()
        self.send(client, encode(Closed(id=message.id, session=wire.name, lines=wire.npc.lines_started,
                                        ticks_sent=wire.ticks_sent, frames_sent=wire.frames_sent,
                                        frames_dropped=wire.frames_dropped)))

    # ------------------------------------------------------------ audio and lines

    def on_audio(self: "Server", client: "ClientState", message: AudioChunk, payloads: list[bytes]) -> None:
        wire = self._session(client, message.session)
        npc = wire.npc
        expected = wire.expected_seq if npc.in_line else 0
        if message.seq != expected:
            raise ProtocolError("out_of_order", f"audio chunk seq {message.seq} arrived, expected seq {expected}"
                                + ("" if npc.in_line else " (a new line starts at seq 0)"), expected_seq=expected)
        if message.text is not None:
            if message.seq != 0:
                raise ProtocolError("bad_text", "text goes with the line's first chunk (seq 0) only")
            if len(message.text) > self.limits.max_text_chars:
                raise ProtocolError("text_too_long", f"text of {len(message.text)} characters exceeds the limit "
                                    f"of {self.limits.max_text_chars}", limit=self.limits.max_text_chars)
        line_format = shared_line_format(message.rate, message.channels, message.format)
        data = payloads[0]
        npc.check_chunk(line_format, data)  # once: queue_pcm below is told it was checked
        if npc.line_seconds + npc.chunk_seconds(line_format, data) > self.limits.max_line_seconds:
            raise ProtocolError("line_too_long", f"the line would exceed {self.limits.max_line_seconds:g} s of audio",
                                limit=self.limits.max_line_seconds)
        if message.seq == 0:
            npc.start_line(line_format, message.text)  # stops idle motion
            wire.start_line(time.monotonic())
        try:
            npc.queue_pcm(data, checked=True)  # its frames come from the loop's next step of every talking session
        except NpcfaceError:
            if message.seq == 0:  # the line never really started
                npc.cancel_line()
                wire.cancel_line()
                if wire.idle:
                    self._start_idle(wire, time.monotonic())
            raise
        wire.expected_seq = message.seq + 1
        self.step_later(client, wire)

    def on_end_line(self: "Server", client: "ClientState", message: EndLine, payloads: list[bytes]) -> None:
        wire = self._session(client, message.session)
        if not wire.npc.in_line:
            raise ProtocolError("no_line", "no line in progress (send audio with seq 0 first)")
        # Ended with the loop's next step, with every other line ended meanwhile: one finish alone
        # costs about a step (3-5 ms), and a game's NPCs end lines many times a second.
        self._to_end[(client.identity, wire.name)] = (client, wire, message.id)

    def end_pending_lines(self: "Server") -> None:
        """The lines whose end_line came since the last step, ended together (core/session.end_lines)."""
        pending = [(client, wire, request_id) for client, wire, request_id in self._to_end.values()
                   if self.clients.get(client.identity) is client and client.sessions.get(wire.name) is wire]
        self._to_end.clear()
        if pending:
            self._end_lines(pending)

    def _end_lines(self: "Server", pending: list[tuple["ClientState", WireSession, str | None]]) -> None:
        """Their last frames, then line_end; a line whose last step failed gets its error and still
        its line_end, or every later line_end of the session would wait behind this one's for good."""
        durations = [wire.npc.line_seconds for _, wire, _ in pending]
        failures: dict[int, Exception] = {}
        try:
            motions = end_lines([wire.npc for _, wire, _ in pending], failures.setdefault)
        except Exception as exc:  # a stage shared by the batch: every line of it is told (all are over)
            failures = dict.fromkeys(range(len(pending)), exc)
            motions = [[] for _ in pending]
        for k, ((client, wire, request_id), duration) in enumerate(zip(pending, durations)):
            try:
                if k in failures:
                    self.send_error(client, error_for(failures[k], "end_line"), request_id, "end_line", wire.name)
                self._emit(client, wire, wire.motion_out(motions[k]))
                wire.end_line(request_id, duration)
                if wire.idle:  # idle resumes when a line streamed in real time would have finished playing
                    self._start_idle(wire, max(time.monotonic(), wire.line_started_at + duration))
                self._pump(client, wire)
            except Exception as exc:  # a bug with one line's end must not cost the others theirs
                log_failure(exc, f"end_line of session {wire.name!r}")

    # ------------------------------------------------------------ idle ticks (1.1, section 7.4)

    @staticmethod
    def _start_idle(wire: WireSession, origin: float) -> None:
        wire.npc.start_idle()
        wire.start_idle(origin)

    def pump_idle(self: "Server", now: float, budget_s: float = 0.002) -> float:
        """Emit the idle ticks due by ``now``; seconds until the next is due (0: more work waits).
        Sessions whose idle frames need the next block of silence within IDLE_AHEAD_S get it,
        IDLE_BATCH of them stepped together (core/session.add_idle_blocks); at most ``budget_s``
        of that work per call, starting where the last call stopped, so the loop gets back to
        talking sessions' requests between slices of idle work."""
        idling = [(client, wire) for client in self.clients.values() for wire in client.sessions.values()
                  if wire.idle_origin is not None and wire.npc.idling]
        if not idling:
            return 1.0
        start = self._idle_cursor % len(idling)
        order = idling[start:] + idling[:start]
        elapsed = [now - wire.idle_origin for _, wire in order]
        soon = [i for i, ((_, wire), since) in enumerate(zip(order, elapsed))
                if since >= 0 and wire.npc.needs_idle_block(since + IDLE_AHEAD_S)]
        due = [i for i in soon if order[i][1].npc.needs_idle_block(elapsed[i])]
        # a step only when some session needs its block now; those that will soon fill its last step
        taken = set(due)
        needing = due + [i for i in soon if i not in taken][:-len(due) % IDLE_BATCH] if due else []
        self._idle_cursor, behind = start, False
        for first in range(0, len(needing), IDLE_BATCH):
            if time.monotonic() - now > budget_s:
                self._idle_cursor, behind = start + needing[first], True
                break
            batch = [order[i] for i in needing[first:first + IDLE_BATCH]]
            try:
                add_idle_blocks([wire.npc for _, wire in batch], on_error=lambda k, exc, batch=batch: self._stop_idle(batch[k][1], exc))
            except Exception as exc:  # a stage the batch shares: its sessions stop idling, the server goes on
                for _, wire in batch:
                    self._stop_idle(wire, exc)
        wait = 1.0
        for (client, wire), since in zip(order, elapsed):
            motions = wire.npc.due_idle_frames(since) if since >= 0 else []
            if motions:
                self._emit(client, wire, wire.idle_out(motions))
            wait = min(wait, max(0.0, wire.idle_index / wire.settings.fps - since))
        return 0.0 if behind else wait

    @staticmethod
    def _stop_idle(wire: WireSession, exc: Exception) -> None:
        """A bug in a session's idle motion: it stops idling (logged), the server and the others go on."""
        log_failure(exc, f"idle motion of session {wire.name!r}")
        wire.npc.stop_idle()

    def _emit(self: "Server", client: "ClientState", wire: WireSession, ticks: list[list[bytes]]) -> None:
        for tick in ticks:
            self.send(client, tick)
        self._pump(client, wire)

    def _pump(self: "Server", client: "ClientState", wire: WireSession) -> None:
        """Drop late frames, send what the window allows, start the next render, send finished line ends."""
        if wire.frames:  # (a latents-only session has no frame queued ever: after each step, 5 us saved)
            wire.drop_late(time.monotonic())
            for frame in wire.sendable_frames():
                self.send(client, frame)
            job = wire.next_render()
            if job is not None:
                self._render_pool.submit(self._render, client.identity, wire, job)
        for line_end in wire.ready_line_ends():
            self.send(client, line_end)

    def _render(self: "Server", identity: bytes, wire: WireSession, job: RenderJob) -> None:
        """Worker thread: render and encode one frame, then hand it to the loop thread."""
        try:
            frame = wire.npc.render(job.motion)
            payload = encode_pixels(frame, wire.settings.frame_format, wire.settings.jpeg_quality)
            rendered: RenderedFrame | None = RenderedFrame(job.line, job.index, float(job.motion.time), payload,
                                                           job.due)
        except Exception as exc:  # a render bug drops the frame (counted), never the server
            log_failure(exc, "render")
            rendered = None

        def deliver() -> None:
            client = self.clients.get(identity)
            if client is None or client.sessions.get(wire.name) is not wire:
                return  # closed meanwhile
            if rendered is None:
                wire.render_failed(job)
            else:
                wire.rendered(rendered)
            self._pump(client, wire)

        self.complete_later(deliver)

    def _warm_renderer(self: "Server", client: "ClientState", wire: WireSession) -> None:
        """Build the session's renderer now (its first render takes ~0.15 s, seconds on a loaded
        machine), not on the first line's first frame, whose successors would be late by then."""
        rest = MotionFrame(0.0, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0), (0.0, 0.0),
                           np.zeros(len(ARKIT_NAMES), dtype=np.float32))
        wire.start_warm_up()

        def build() -> None:
            try:
                wire.npc.render(rest)
            except Exception as exc:  # the first real render reports it again, with its frame dropped
                log_failure(exc, "render")

            def done() -> None:
                wire.rendering = False
                if client.sessions.get(wire.name) is wire:
                    self._pump(client, wire)

            self.complete_later(done)

        self._render_pool.submit(build)

    def on_frame_ack(self: "Server", client: "ClientState", message: FrameAck, payloads: list[bytes]) -> None:
        wire = self._session(client, message.session)
        wire.ack(message.count)
        self._pump(client, wire)

    # ------------------------------------------------------------ emotion, gaze, controls

    def _event_time(self: "Server", wire: WireSession, time_s: float | None) -> float:
        return wire.npc.line_seconds if time_s is None else float(time_s)

    def on_emotion(self: "Server", client: "ClientState", message: SetEmotion, payloads: list[bytes]) -> None:
        wire = self._session(client, message.session)
        if message.emotion not in EMOTIONS:
            raise ProtocolError("bad_control", f"unknown emotion {message.emotion!r} (known: {', '.join(EMOTIONS)})")
        wire.npc.set_event(EmotionEvent(self._event_time(wire, message.time), message.emotion, message.intensity,
                                        message.ramp))

    def on_gaze(self: "Server", client: "ClientState", message: SetGaze, payloads: list[bytes]) -> None:
        wire = self._session(client, message.session)
        wire.npc.set_event(GazeEvent(self._event_time(wire, message.time), message.yaw, message.pitch))

    def on_controls(self: "Server", client: "ClientState", message: SetControls, payloads: list[bytes]) -> None:
        wire = self._session(client, message.session)
        wire.npc.set_event(ControlEvent(self._event_time(wire, message.time), message.motion_amplitude,
                                        message.head_distance))
