"""Helpers for the sidecar tests: a real server on a free loopback port, and a raw DEALER client
that sends whatever bytes a test wants (the Python reference client validates too much for that)."""
from __future__ import annotations

import contextlib
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import msgpack
import numpy as np
import zmq

from npcface.bridge.limits import STEP_INTERVAL_S, Limits, Liveness
from npcface.bridge.protocol import PROTOCOL_VERSION, decode_server
from npcface.bridge.server import Server
from npcface.core.audio.decode import load_audio


def frame_arrays(frames) -> np.ndarray:
    """Every number of every motion frame, (T, 62)."""
    return np.array([[f.time, *f.head_rotation, *f.head_translation, *f.gaze_left, *f.gaze_right, *f.blendshapes]
                     for f in frames])


def tick_arrays(ticks) -> np.ndarray:
    """Every number of every tick, (T, 62): the same columns as frame_arrays."""
    return np.array([[t.time, *t.head_rotation, *t.head_translation, *t.gaze_left, *t.gaze_right, *t.arkit]
                     for t in ticks])


# How long a test waits for something that must happen. Generous on purpose: tests count what
# they need and wait for it, so only a server that never sends it fails, never a slow machine.
WAIT_S = 60.0


@dataclass(frozen=True)
class Arrival:
    """A server message and when the test read it (time.monotonic())."""
    message: Any
    payloads: list
    at: float


@contextlib.contextmanager
def running_server(limits: Limits = Limits(), liveness: Liveness = Liveness(), workers: int | None = 2,
                   step_interval_s: float = STEP_INTERVAL_S) -> Iterator[Server]:
    server = Server("tcp://127.0.0.1:0", limits=limits, liveness=liveness, render_workers=workers,
                    step_interval_s=step_interval_s)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop()
        thread.join(timeout=10)
        assert not thread.is_alive(), "the server loop did not stop"


class RawClient:
    """A DEALER that speaks msgpack maps without validating them."""

    def __init__(self, endpoint: str):
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(endpoint)
        self.counter = 0
        self.backlog: list = []  # messages skipped while waiting for a reply, for recv()

    def close(self) -> None:
        self.socket.close(linger=0)
        self.context.term()

    def __enter__(self) -> "RawClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def send(self, header: dict[str, Any] | bytes, *payloads: bytes) -> None:
        raw = header if isinstance(header, bytes) else msgpack.packb(header, use_bin_type=True)
        self.socket.send_multipart([raw, *payloads])

    def recv(self, timeout_s: float = WAIT_S):
        """(header object, payloads); AssertionError on timeout."""
        if self.backlog:
            return self.backlog.pop(0)
        assert self.socket.poll(int(timeout_s * 1000)), "no message from the server"
        message, payloads = decode_server(self.socket.recv_multipart())
        return message, payloads

    def request(self, header: dict[str, Any], *payloads: bytes, timeout_s: float = WAIT_S):
        """Send with a fresh id; return the reply echoing it (other messages skipped)."""
        self.counter += 1
        header = {**header, "id": f"t{self.counter}"}
        self.send(header, *payloads)
        deadline = time.monotonic() + timeout_s
        skipped = []
        while time.monotonic() < deadline:
            assert self.socket.poll(int((deadline - time.monotonic()) * 1000)), f"no reply to {header['type']}"
            received = decode_server(self.socket.recv_multipart())
            if getattr(received[0], "id", None) == header["id"]:
                self.backlog.extend(skipped)
                return received[0]
            skipped.append(received)
        raise AssertionError(f"no reply to {header['type']}")

    def hello(self, protocol: str = PROTOCOL_VERSION):
        return self.request({"type": "hello", "protocol": protocol})

    def sync(self) -> list:
        """Everything received before the reply to a ping. The server handles a connection's
        messages in order and sends in order, so this holds every synchronous answer (replies,
        errors, the ticks an audio chunk completed) to what this client sent before: no waiting
        for a quiet spell, which a loaded machine can fake. (Rendered frames come from a worker
        pool, later: wait for those with ``receive_until``.)"""
        self.request({"type": "ping"})
        out, self.backlog = self.backlog, []
        return out

    def receive_until(self, done: Callable[[list["Arrival"]], bool], timeout_s: float = WAIT_S) -> list["Arrival"]:
        """Messages as they arrive (each with its arrival time) until ``done(received)`` holds.
        Fails only if that never happens within the generous ``timeout_s``."""
        received: list[Arrival] = []
        deadline = time.monotonic() + timeout_s
        while not done(received):
            left = deadline - time.monotonic()
            assert left > 0, f"still waiting after {timeout_s:g} s; received {len(received)} messages"
            message, payloads = self.recv(left)
            received.append(Arrival(message, payloads, time.monotonic()))
        return received

    def collect_line(self, session: str, end_id: str, timeout_s: float = WAIT_S):
        """(ticks, frames [(header, payload)], line_end, errors) until the line_end echoing ``end_id``."""
        ticks, frames, errors = [], [], []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            message, payloads = self.recv(deadline - time.monotonic())
            if message.type == "tick" and message.session == session:
                ticks.append(message)
            elif message.type == "frame" and message.session == session:
                frames.append((message, payloads[0]))
            elif message.type == "error":
                errors.append(message)
            elif message.type == "line_end" and message.id == end_id:
                return ticks, frames, message, errors
        raise AssertionError("no line_end")

    def collect_lines(self, sessions) -> dict[str, list]:
        """Each session's ticks until every one has had its line_end; no error may come."""
        ticks: dict[str, list] = {name: [] for name in sessions}
        ended: set[str] = set()
        while len(ended) < len(ticks):
            message, _ = self.recv()
            assert message.type != "error", message
            if message.type == "tick":
                ticks[message.session].append(message)
            elif message.type == "line_end":
                ended.add(message.session)
        return ticks


def fail_layers_for_seed(monkeypatch, seed: int, message: str) -> None:
    """From now on (until ``monkeypatch`` undoes it), every motion stream whose controls have
    ``seed`` raises ValueError(``message``) in its own layers stage; the others are untouched."""
    from npcface.core.motion.generator import MotionStream

    layers = MotionStream._layers_until

    def broken_for_seed(self, last_index, cues):
        if self.controls.seed == seed:
            raise ValueError(message)
        return layers(self, last_index, cues)

    monkeypatch.setattr(MotionStream, "_layers_until", broken_for_seed)


def greeting_pcm(rate: int = 16000) -> tuple[np.ndarray, str]:
    """The greeting fixture as 16 kHz float samples, and its text."""
    from conftest import fixture_line

    wav, text = fixture_line("line_greeting")
    return load_audio(wav).samples, text


def s16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def send_line(client: RawClient, session: str, pcm: bytes, rate: int = 16000, chunk_bytes: int = 3200,
              text: str | None = None, fmt: str = "s16le", channels: int = 1, first_seq: int = 0,
              end: bool = True) -> str | None:
    """Send a line (or, from ``first_seq``, the rest of one) in chunks, then end_line unless
    ``end`` is false; returns the end_line's id."""
    for seq, start in enumerate(range(0, len(pcm), chunk_bytes), start=first_seq):
        header = {"type": "audio", "session": session, "seq": seq, "rate": rate, "format": fmt, "channels": channels}
        if seq == 0 and text is not None:
            header["text"] = text
        client.send(header, pcm[start:start + chunk_bytes])
    if not end:
        return None
    client.counter += 1
    end_id = f"end{client.counter}"
    client.send({"type": "end_line", "id": end_id, "session": session})
    return end_id


NPCFACE = [sys.executable, "-m", "npcface.bridge.cli"]


class ServeProcess:
    """``npcface serve`` in a subprocess; knows its endpoint from the 'ready on' line."""

    def __init__(self, *args: str, start_timeout_s: float = 60.0):
        # stderr goes to a file: a pipe nobody reads could fill up and block the server's logging
        self.stderr = tempfile.TemporaryFile(mode="w+")
        self.process = subprocess.Popen([*NPCFACE, "serve", *args], stdout=subprocess.PIPE, stderr=self.stderr,
                                        text=True)
        ready, _, _ = select.select([self.process.stdout], [], [], start_timeout_s)
        line = self.process.stdout.readline() if ready else ""
        match = re.search(r"ready on (\S+)", line)
        if match is None:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"serve did not start: {line!r} {self.logged()}")
        self.endpoint = match.group(1)

    def logged(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()

    def interrupt(self, timeout_s: float = 10.0) -> tuple[int, str]:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"serve did not stop on SIGINT: {self.logged()}")
        return self.process.returncode, self.logged()
