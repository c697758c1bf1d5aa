"""The npcface sidecar: one ZeroMQ ROUTER serving many clients and sessions (bridge/PROTOCOL.md).

The loop thread owns the socket and every session's motion (audio in -> ticks out, real time per
session). Renders and avatar rigging run in thread pools; their results come back to the loop
through a completion queue and a wake-up pipe, so only the loop thread touches the socket.
"""
from __future__ import annotations

import gc
import hashlib
import importlib.util
import logging
import math
import numbers
import os
import queue
import secrets
import time
from collections import OrderedDict, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import zmq

from .. import __version__
from ..core.deps import dependency_error
from ..core.errors import NpcfaceError
from ..core.motion.backends import MOTION_NAMES, check_motion
from ..core.session import step_sessions
from .limits import MAX_STEP_INTERVAL_S, STEP_INTERVAL_S, Limits, Liveness
from .protocol import (PROTOCOL_VERSION, BadHeader, ClientMessage, ErrorReply, ProtocolError, check_version, encode,
                       error_reply, is_frame_ack, parse_request, request_context, unpack_header)
from .server_handlers import RequestHandlers, error_for
from .server_session import WireSession
from .server_socket import clients_socket
from .server_workers import WorkerSlot

log = logging.getLogger("npcface.serve")
# plain ints: pyzmq's flag enums cost a microsecond per lookup and operation, a few per message
_NOBLOCK, _EVENTS, _POLLIN = int(zmq.NOBLOCK), int(zmq.EVENTS), int(zmq.POLLIN)
_MORE = int(zmq.SNDMORE) | _NOBLOCK


def freeze_loaded_objects() -> None:
    """For a process that only serves from now on: what is loaded by then (torch, the models, the
    warm-up's objects) lives as long as it, so it leaves the cyclic GC, whose full passes over it
    stopped the loop 20-121 ms. Process-wide and for good: the serve entry points call it."""
    gc.collect()
    gc.freeze()


def renderer_available() -> bool:
    return all(importlib.util.find_spec(f"npcface.core.render.{name}") is not None for name in ("rig", "renderer"))


def motion_available() -> bool:
    return importlib.util.find_spec("npcface.core.motion.generator") is not None


@dataclass
class ClientState:
    identity: bytes
    last_seen: float
    said_hello: bool = False
    minor: int = 0  # the protocol minor version spoken with this client (section 10)
    sessions: dict[str, WireSession] = field(default_factory=dict)
    outbox: deque[list[bytes]] = field(default_factory=deque)  # messages ZeroMQ could not take yet


class Server(RequestHandlers):
    """``Server(endpoint).run()`` serves until ``stop()`` (from any thread) or SIGINT in the caller."""

    def __init__(self, endpoint: str = "tcp://127.0.0.1:5555", limits: Limits = Limits(),
                 liveness: Liveness = Liveness(), render_workers: int | None = None,
                 curve_secret_key: bytes | None = None, curve_clients_dir: Path | None = None,
                 motion: str | None = None, worker: "WorkerSlot | None" = None,
                 step_interval_s: float = STEP_INTERVAL_S):
        if isinstance(step_interval_s, bool) or not isinstance(step_interval_s, numbers.Real) \
                or not 0 <= step_interval_s <= MAX_STEP_INTERVAL_S:
            raise ValueError(f"step_interval_s must be in [0, {MAX_STEP_INTERVAL_S}] s, got {step_interval_s!r}")
        self.endpoint_requested = endpoint
        # "rules" or "learned" by default; a weights file is what "learned" means on this server.
        spec = check_motion(motion)
        self.default_motion = "rules" if spec == "rules" else "learned"
        self.learned_motion = spec if spec not in MOTION_NAMES else "learned"
        self.limits = limits
        self.liveness = liveness
        # One of `serve --workers N`'s processes: the front process owns the clients' socket and
        # its instance id; counts that limits and stats need are shared through ``worker``.
        self.worker = worker
        self.instance = worker.instance if worker is not None else secrets.token_hex(8)
        self.started = time.monotonic()
        self.clients: dict[bytes, ClientState] = {}
        self.avatars: OrderedDict[str, object] = OrderedDict()  # avatar id -> Rig, least recent first
        self.errors_sent = 0
        self.has_frames = renderer_available()
        self.has_latents = motion_available()
        self._completions: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        self._stopping = False
        self._idle_cursor = 0  # where the next idle pass starts (round robin over idling sessions)
        self._expired: OrderedDict[bytes, int] = OrderedDict()  # forgotten for silence -> sessions closed
        self._unhandled: deque[tuple[bytes, list[bytes]]] = deque()  # read, not handled yet (in order)
        self._unhandled_bytes = 0  # their size (kept, not summed per read: a backlog made that quadratic)
        # Sessions with audio queued since the last step, stepped together at the next one (at
        # most every step_interval_s): the more audio arrives meanwhile, the more a step batches.
        self._to_step: dict[tuple[bytes, str], tuple[ClientState, WireSession]] = {}
        self.step_interval_s = float(step_interval_s)
        self._next_step_at = 0.0  # time.monotonic() before which the talking sessions wait
        # Lines whose end_line came since the last step (ended together before it; server_handlers.py)
        self._to_end: dict[tuple[bytes, str], tuple[ClientState, WireSession, str | None]] = {}
        self._render_pool = ThreadPoolExecutor(max_workers=render_workers or os.cpu_count() or 2,
                                               thread_name_prefix="npcface-render")
        self._rig_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="npcface-rig")
        self._context = zmq.Context()
        if worker is not None:  # the front forwards [client identity, *message] both ways
            self.socket = self._context.socket(zmq.DEALER)
            self.socket.setsockopt(zmq.ROUTING_ID, worker.routing_id)
            self.socket.setsockopt(zmq.LINGER, 0)
            self.socket.setsockopt(zmq.SNDHWM, 100_000)
            self.socket.connect(worker.front)
            self.endpoint = worker.front
            self._authenticator = None
            self._bind_socket_methods()
            return
        try:
            self.socket, self._authenticator, self.endpoint = clients_socket(
                self._context, endpoint, limits.max_message_bytes, curve_secret_key, curve_clients_dir)
        except zmq.ZMQError:
            self.socket = self._authenticator = None
            self.close()
            raise
        self._bind_socket_methods()

    def _bind_socket_methods(self) -> None:
        """The socket's methods the loop calls per message, looked up once (~1 us each time)."""
        self._socket_events = self.socket.get
        self._socket_receive = self.socket.recv_multipart
        self._socket_send = self.socket.send

    def warm_up(self, concurrent_lines: int = 4) -> float:
        """Load the motion stack before serving, so early lines do not stall every other session:
        phone decoders take ~80 ms each to load and hold the GIL meanwhile, and the phonetics
        module keeps the decoders of finished lines for the next ones. Seconds spent."""
        if not self.has_latents:
            return 0.0
        from ..core.phonetics.timeline import warm_up as load_phone_decoders
        from ..core.session import LineFormat, NpcSession, SessionSettings
        from ..core.types import SAMPLE_RATE

        started = time.monotonic()
        try:
            load_phone_decoders(concurrent_lines)
            # one line through the whole stack, per motion a client may open, loads the rest: the
            # learned mouth's first load (torch, its weights) took 2.5-11 s in the loop thread,
            # stalling every talking session, when the server's default was the rules
            for motion in ("rules", "learned"):
                npc = NpcSession(SessionSettings(motion=self.motion_spec(motion)))
                npc.start_line(LineFormat(SAMPLE_RATE, 1, "s16le"), "hello")
                npc.push_pcm(b"\x00\x00" * 8000)
                npc.end_line()
        except Exception as exc:  # serve anyway: requests will get the error, with its request named
            failed = dependency_error(exc)
            log.warning("npcface serve: warm-up failed: %s", failed or f"{type(exc).__name__}: {exc}")
        return time.monotonic() - started

    # ------------------------------------------------------------ the loop

    def stop(self) -> None:
        """Ask the loop to finish (thread-safe, signal-safe)."""
        self._stopping = True
        self._wake()

    def _wake(self) -> None:
        try:
            os.write(self._wake_write, b"!")
        except (BlockingIOError, OSError):
            pass  # the pipe is full (already awake) or closed (shutting down)

    def run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        poller.register(self._wake_read, zmq.POLLIN)
        log.info("npcface serve: listening on %s (instance %s)", self.endpoint, self.instance)
        try:
            idle_wait_s = 1.0
            while not self._stopping:
                if self.worker is not None and not self.worker.front_alive():
                    log.error("npcface serve: worker %d: the front process is gone; stopping", self.worker.index)
                    break
                timeout_ms = 1000 if not any(c.outbox for c in self.clients.values()) else 5
                timeout_ms = min(timeout_ms, max(1, int(idle_wait_s * 1000))) if not self._unhandled else 0
                if self._to_step or self._to_end:  # talking sessions wait for their step, no longer
                    timeout_ms = min(timeout_ms, max(0, math.ceil((self._next_step_at - time.monotonic()) * 1000)))
                events = dict(poller.poll(timeout_ms))
                if self._wake_read in events:
                    self._drain_wake_pipe()
                drained = self._receive_burst() if self.socket in events or self._unhandled else True
                self._step_talking_when_due()
                self._run_completions()
                idle_wait_s = self.pump_idle(time.monotonic())  # after requests: talking sessions first
                self._flush_outboxes()
                if drained:  # only judge silence once every queued message has been read
                    self._expire_idle_clients()
                if self.worker is not None:
                    self._publish_counts()
        finally:
            self.close()

    def _drain_wake_pipe(self) -> None:
        try:
            while os.read(self._wake_read, 4096):
                pass
        except BlockingIOError:
            pass

    def _receive_burst(self) -> bool:
        """Handle queued requests; True when the queue was emptied."""
        # Bounded, so idle ticks are not starved by a flood of requests; finished renders are
        # delivered between requests, so a line sent at once does not hold its frames (and the
        # session's next render) back until all its audio is processed.
        for _ in range(256):
            self._read_ahead()
            if not self._unhandled:
                return True
            identity, frames = self._unhandled.popleft()
            self._unhandled_bytes -= sum(map(len, frames))
            self._handle(identity, frames)
            self._run_completions()
        return False

    def _read_ahead(self, most: int = 256) -> None:
        """Read what has arrived; frame_acks are handled at once, ahead of requests read before
        them (PROTOCOL.md 7.3): a client that sent a whole line at once acknowledges its first
        frames behind that audio, and waiting for the audio would make those frames late.
        At most ``most`` messages and a few big ones are held (ZeroMQ's queue holds the rest)."""
        events, receive = self._socket_events, self._socket_receive
        # asked before each read: a read past the end raised zmq.Again, one exception per
        # message handled (this runs before each), at three times the cost of asking
        while (len(self._unhandled) < most and self._unhandled_bytes < 4 * self.limits.max_message_bytes
               and events(_EVENTS) & _POLLIN):
            try:
                frames = receive(_NOBLOCK)
            except zmq.Again:
                return
            if is_frame_ack(frames[1:]):
                self._handle(frames[0], frames[1:])
            else:
                self._unhandled.append((frames[0], frames[1:]))
                self._unhandled_bytes += sum(map(len, frames)) - len(frames[0])

    def _step_talking_when_due(self) -> None:
        """Step the talking sessions, at most once per ``step_interval_s``: audio that arrives
        soon after a step waits for the next one with the other sessions' chunks (fewer, bigger
        batches), while a session whose chunk comes after a quiet spell is stepped at once. A
        step that took half the interval or more already batched many sessions: the next one
        does not wait (a saturated loop waiting made ticks later and saved no CPU)."""
        now = time.monotonic()
        if (self._to_step or self._to_end) and now >= self._next_step_at:
            self._step_talking()
            busy = time.monotonic() - now >= self.step_interval_s / 2
            self._next_step_at = now if busy else now + self.step_interval_s

    def _step_talking(self) -> None:
        for stage in (self.end_pending_lines, self.step_pending):
            try:
                stage()
            except Exception:  # a bug in stepping must not stop the server
                log.exception("npcface serve: internal error while stepping talking sessions")

    def _run_completions(self) -> None:
        while not self._completions.empty():  # only this thread takes: not empty means get() returns
            completion = self._completions.get()
            try:
                completion()
            except Exception:  # a bug in one session's completion must not stop the server
                log.exception("npcface serve: internal error while delivering a result")

    def complete_later(self, completion: Callable[[], None]) -> None:
        """From a worker thread: run ``completion`` on the loop thread."""
        self._completions.put(completion)
        self._wake()

    def close(self) -> None:
        self._stopping = True
        self._render_pool.shutdown(wait=True, cancel_futures=True)
        self._rig_pool.shutdown(wait=True, cancel_futures=True)
        if self.socket is not None:
            self.socket.close(linger=0)
        if self._authenticator is not None:
            self._authenticator.stop()
        self._context.term()
        for fd in (self._wake_read, self._wake_write):
            try:
                os.close(fd)
            except OSError:
                pass
        log.info("npcface serve: stopped")

    # ------------------------------------------------------------ requests

    def _handle(self, identity: bytes, frames: list[bytes]) -> None:
        now = time.monotonic()
        client = self.clients.get(identity)
        if client is None:
            client = self.clients[identity] = ClientState(identity, now)
        client.last_seen = now
        header: dict = {}  # what could be read of the header, to name the request in an error
        try:
            if not frames:
                raise ProtocolError("bad_message", "empty message")
            try:
                header = unpack_header(frames[0])
            except BadHeader as exc:  # still name what can be read: a valid id is echoed
                header = exc.readable
                raise
            size = sum(map(len, frames))
            if size > self.limits.max_message_bytes:
                raise ProtocolError("message_too_large", f"message of {size} bytes exceeds the limit of "
                                    f"{self.limits.max_message_bytes} bytes", limit=self.limits.max_message_bytes)
            if not client.said_hello and header["type"] not in ("hello", "ping"):
                raise ProtocolError("hello_required", self._hello_required_why(identity))
            message = parse_request(header, frames[1:])
            # Anything else this client sends sees the ticks of its earlier audio out first (an
            # end_line steps its line as it ends it; a frame_ack is handled ahead of audio anyway,
            # and one per frame would step at every ack, whatever the step interval).
            if message.type not in ("audio", "end_line", "frame_ack") and self._has_queued_audio(client):
                self.step_pending()
            self.dispatch(client, message, frames[1:])
        except NpcfaceError as exc:
            self.send_error(client, exc, *request_context(header))
        except Exception as exc:  # a bug must not take the server down for everyone
            request_id, request_type, session = request_context(header)
            self.send_error(client, error_for(exc, f"{request_type} request"), request_id, request_type, session)
        # Silence counts from when the server was done with the message, not from its arrival.
        client.last_seen = time.monotonic()

    # ------------------------------------------------------------ stepping talking sessions

    def step_later(self, client: ClientState, wire: WireSession) -> None:
        """``wire`` has audio queued: step it with the others at the next step, after this burst
        of requests if the step interval has passed since the last one, else once it has
        (``_step_talking_when_due``), or before this client's next other request."""
        self._to_step[(client.identity, wire.name)] = (client, wire)

    def _has_queued_audio(self, client: ClientState) -> bool:
        return any(identity == client.identity for identity, _ in self._to_step)

    def step_pending(self) -> None:
        """Motion frames for every session with queued audio, computed together (one feature
        batch for all: core/session.step_sessions), then sent as ticks."""
        if not self._to_step:
            return
        pending = [(client, wire) for client, wire in self._to_step.values()
                   if self.clients.get(client.identity) is client and client.sessions.get(wire.name) is wire]
        self._to_step.clear()
        failures: list[tuple[int, Exception]] = []
        try:
            frames = step_sessions([wire.npc for _, wire in pending], lambda k, exc: failures.append((k, exc)))
        except Exception:  # the shared step itself failed (streams keep what they stepped): one by one,
            failed = {k for k, _ in failures}  # but a line already stopped is not stepped (or stopped) again
            frames = [[] if k in failed else self._step_one(client, wire) for k, (client, wire) in enumerate(pending)]
        for k, exc in failures:
            self._stop_line(*pending[k], exc)
        for (client, wire), motions in zip(pending, frames):
            self._emit(client, wire, wire.motion_out(motions))

    def _step_one(self, client: ClientState, wire: WireSession) -> list:
        try:
            return step_sessions([wire.npc])[0]
        except Exception as exc:
            self._stop_line(client, wire, exc)
            return []

    def _stop_line(self, client: ClientState, wire: WireSession, exc: Exception) -> None:
        """A line whose motion failed: its client gets the error and the line stops there (its
        line_end follows), so one broken line cannot cost the others their ticks turn after turn."""
        self.send_error(client, error_for(exc, "audio step"), None, "audio", wire.name)
        duration = wire.npc.line_seconds
        wire.npc.cancel_line()
        wire.end_line(None, duration)

    def send_error(self, client: ClientState, exc: NpcfaceError, request_id=None, request=None, session=None) -> None:
        self.errors_sent += 1
        reply: ErrorReply = error_reply(exc, request_id, request, session)
        self.send(client, encode(reply))

    # ------------------------------------------------------------ sending

    def send(self, client: ClientState, message: list[bytes]) -> None:
        """Send now, or queue behind what is already waiting (order is kept; latents never drop)."""
        if client.outbox or not self._try_send(client, message):
            if client.identity in self.clients:
                client.outbox.append(message)

    def _try_send(self, client: ClientState, message: list[bytes]) -> bool:
        """True if ZeroMQ took the message; False if the client's pipe is full or it is gone."""
        send = self._socket_send
        # every part checked before the first goes: a part refused after the identity would leave
        # the ROUTER mid-message, and the next client's message would be appended to this one
        if not all(type(part) is bytes for part in message):
            raise TypeError(f"a message to send has parts of types {[type(part).__name__ for part in message]}")
        try:  # send_multipart's parts one by one: its checks of each part cost more than the sends
            send(client.identity, _MORE)  # (a ROUTER takes a message whole or refuses its first part)
            for part in message[:-1]:
                send(part, _MORE)
            send(message[-1], _NOBLOCK, copy=len(message[-1]) < 65536)
            return True
        except zmq.Again:  # the client is not reading fast enough: retry from its outbox
            return False
        except zmq.ZMQError as exc:
            if exc.errno == zmq.EHOSTUNREACH:
                self.forget_client(client, "disconnected")
            else:
                log.warning("npcface serve: send failed (%s); client dropped", exc)
                self.forget_client(client, "send failed")
            return False

    def _flush_outboxes(self) -> None:
        for client in list(self.clients.values()):
            while client.outbox and self._try_send(client, client.outbox[0]):
                client.outbox.popleft()

    def _expire_idle_clients(self) -> None:
        deadline = time.monotonic() - self.liveness.idle_timeout_s
        for client in [c for c in self.clients.values() if c.last_seen < deadline]:
            if client.said_hello:  # so its next request hears why it must say hello again (section 9)
                self._expired[client.identity] = len(client.sessions)
                while len(self._expired) > 4096:
                    self._expired.popitem(last=False)
            self.forget_client(client, f"silent for {self.liveness.idle_timeout_s:g} s")

    def _hello_required_why(self, identity: bytes) -> str:
        closed = self._expired.pop(identity, None)
        if closed is None:
            return "say 'hello' first (a new connection, or the server restarted)"
        return (f"this connection was silent for more than idle_timeout_s ({self.liveness.idle_timeout_s:g} s) "
                f"and was forgotten, its {closed} session(s) closed: say 'hello' again and re-open them")

    def forget_client(self, client: ClientState, why: str) -> None:
        if client.sessions:
            log.info("npcface serve: client freed (%s), closing %d session(s)", why, len(client.sessions))
        for wire in client.sessions.values():
            wire.npc.cancel_line()
            self._to_end.pop((client.identity, wire.name), None)
        client.sessions.clear()
        client.outbox.clear()
        self.clients.pop(client.identity, None)

    # ------------------------------------------------------------ shared helpers for handlers

    def _own_sessions(self) -> int:
        return sum(len(c.sessions) for c in self.clients.values())

    def _whole_server(self, name: str, own: int) -> int:
        """A count of this process, summed over all workers under `serve --workers`."""
        return own if self.worker is None else self.worker.total(name, own)

    def _publish_counts(self) -> None:
        self.worker.publish(len(self.clients), self._own_sessions(), self.errors_sent)

    def _sessions_changed(self) -> None:
        """Under `serve --workers`, before the reply to an open or close: a client that has it
        then sees the new count from every worker (stats, max_sessions)."""
        if self.worker is not None:
            self._publish_counts()

    def session_count(self) -> int:
        """Open sessions on the whole server (all workers)."""
        return self._whole_server("sessions", self._own_sessions())

    def client_count(self) -> int:
        return self._whole_server("clients", len(self.clients))

    def error_count(self) -> int:
        return self._whole_server("errors_sent", self.errors_sent)

    @staticmethod
    def avatar_id(image: bytes, face_index: int | None) -> str:
        digest = hashlib.sha256(image)
        digest.update(f"/face={face_index}".encode())
        return digest.hexdigest()[:24]

    def server_name(self) -> str:
        return f"npcface/{__version__}"

    def protocol_version(self) -> str:
        return PROTOCOL_VERSION

    def dispatch(self, client: ClientState, message: ClientMessage, payloads: list[bytes]) -> None:
        check_version(message, client.minor)
        handler = getattr(self, f"on_{message.type}")
        if message.type != "open" or self.worker is None:
            handler(client, message, payloads)
            return
        with self.worker.locked():  # max_sessions holds across workers: count, open, publish at once
            try:
                handler(client, message, payloads)
            finally:
                self._publish_counts()
