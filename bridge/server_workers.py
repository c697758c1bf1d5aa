"""`npcface serve --workers N`: clients sharded over N server processes behind one endpoint.

The front process owns the clients' ROUTER socket and forwards every message, unparsed, to the
worker that serves its client (chosen at the client's first message: the worker with the fewest
clients), and the worker's messages back. Each worker is a whole bridge/server.Server on a
DEALER socket, so a client's hello, liveness, sessions and per-client limits stay in one process.
What must hold for the whole server (max_sessions, the stats counts) is shared: each worker
publishes its counts in shared memory, and opens take a shared lock.

A worker that dies is logged, each of its clients gets one ``internal`` error saying so (its next
request gets ``hello_required`` from another worker: PROTOCOL.md section 9's recovery), and a new
worker takes its place. SIGINT or SIGTERM to the front stops every process.
"""
from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import secrets
import shutil
import signal
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import zmq

from .server_socket import clients_socket

log = logging.getLogger("npcface.serve")

COUNTS = ("clients", "sessions", "errors_sent")
_EVENTS, _POLLIN = int(zmq.EVENTS), int(zmq.POLLIN)  # plain ints: pyzmq's enum arithmetic costs per message
READY = b"ready"  # a worker's first message to the front: [b"", READY] (client identities are never empty)


def routing_id(index: int) -> bytes:
    """Worker ``index``'s identity on the front's internal socket."""
    return b"w%d" % index


def write_counts(counts: Any, index: int, values: tuple[int, ...]) -> None:
    """Worker ``index``'s row of the shared counts (COUNTS order)."""
    row = index * len(COUNTS)
    counts[row:row + len(COUNTS)] = list(values)


@dataclass
class WorkerSlot:
    """What one worker process knows of the others: its place and the shared counts."""

    index: int
    workers: int
    front: str  # the front's internal endpoint
    instance: str  # the server's instance id (the same from every worker)
    counts: Any  # multiprocessing Array of len(COUNTS) * workers int64, written by each worker in its own row
    lock: Any  # multiprocessing Lock held around opens (max_sessions across workers)
    front_pid: int

    def locked(self):
        """The shared lock, or (after 2 s: a worker killed inside it) none: the limit may then let
        one open too many through, rather than stall every open for good."""
        return _Held(self.lock) if self.lock.acquire(timeout=2.0) else contextlib.nullcontext()

    @property
    def routing_id(self) -> bytes:
        return routing_id(self.index)

    def publish(self, clients: int, sessions: int, errors_sent: int) -> None:
        write_counts(self.counts, self.index, (clients, sessions, errors_sent))

    def total(self, name: str, own: int) -> int:
        """``name`` summed over the workers, with this worker's own live value."""
        column = COUNTS.index(name)
        return own + sum(self.counts[k * len(COUNTS) + column] for k in range(self.workers) if k != self.index)

    def front_alive(self) -> bool:
        return os.getppid() == self.front_pid


def worker_main(slot: WorkerSlot, server_options: dict, warm_lines: int, quiet: bool) -> None:
    """A worker process: a Server on the front's internal socket until SIGTERM (or the front goes)."""
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, format="%(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the front, which stops the workers
    from .server import Server, freeze_loaded_objects

    server = Server(worker=slot, **server_options)
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    server.warm_up(concurrent_lines=warm_lines)
    freeze_loaded_objects()
    server.socket.send_multipart([b"", READY])
    server.run()


class _Held:
    def __init__(self, lock):
        self.lock = lock

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.lock.release()


@dataclass
class _Worker:
    index: int
    process: Any
    ready: bool = False
    clients: set[bytes] = field(default_factory=set)
    outbox: deque[list[bytes]] = field(default_factory=deque)  # to the worker, when its pipe is full


class WorkerFront:
    """The front process: ``WorkerFront(endpoint, workers, ...).run()`` until ``stop()``."""

    def __init__(self, endpoint: str, workers: int, server_options: dict, warm_lines: int = 8, quiet: bool = False,
                 curve_secret_key: bytes | None = None, curve_clients_dir=None):
        from .limits import Limits, Liveness

        self.limits: Limits = server_options.get("limits", Limits())
        self.liveness: Liveness = server_options.get("liveness", Liveness())
        self.instance = secrets.token_hex(8)
        self._server_options = server_options
        self._warm_lines = warm_lines
        self._quiet = quiet
        self._mp = multiprocessing.get_context("spawn")  # no forked copies of zmq contexts or threads
        self._counts = self._mp.Array("q", len(COUNTS) * workers, lock=False)
        self._lock = self._mp.Lock()
        self._stopping = False
        self._clients: dict[bytes, int] = {}  # client identity -> its worker's index
        self._last_seen: dict[bytes, float] = {}
        self._outboxes: dict[bytes, deque[list[bytes]]] = {}  # to clients whose pipes are full
        self._folder = tempfile.mkdtemp(prefix="npcface-serve-")  # private (0700): only we reach the workers
        self._context = zmq.Context()
        self.internal = self._context.socket(zmq.ROUTER)
        self.internal.setsockopt(zmq.ROUTER_MANDATORY, 1)
        self.internal.setsockopt(zmq.LINGER, 0)
        self.internal.setsockopt(zmq.SNDHWM, 100_000)
        self.internal.bind(f"ipc://{self._folder}/workers")
        self._internal_endpoint = self.internal.getsockopt_string(zmq.LAST_ENDPOINT)
        try:
            self.socket, self._authenticator, self.endpoint = clients_socket(
                self._context, endpoint, self.limits.max_message_bytes, curve_secret_key, curve_clients_dir)
        except zmq.ZMQError:
            self.internal.close(linger=0)
            self._context.term()
            shutil.rmtree(self._folder, ignore_errors=True)
            raise
        self._workers = [self._start_worker(k, workers) for k in range(workers)]

    def _start_worker(self, index: int, workers: int) -> _Worker:
        slot = WorkerSlot(index, workers, self._internal_endpoint, self.instance, self._counts, self._lock, os.getpid())
        process = self._mp.Process(target=worker_main, args=(slot, self._server_options, self._warm_lines, self._quiet),
                                   name=f"npcface-worker-{index}", daemon=True)
        process.start()
        log.info("npcface serve: worker %d started (pid %d)", index, process.pid)
        return _Worker(index, process)

    def wait_ready(self, timeout_s: float = 600.0) -> None:
        """Until every worker has warmed up; RuntimeError if one dies first."""
        deadline = time.monotonic() + timeout_s
        while not all(w.ready for w in self._workers):
            for worker in self._workers:
                if not worker.process.is_alive():
                    raise RuntimeError(f"worker {worker.index} stopped while starting (exit code "
                                       f"{worker.process.exitcode}); see the log above")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the workers did not start within {timeout_s:g} s")
            if self.internal.poll(200):
                self._from_workers()

    # ------------------------------------------------------------ the loop

    def stop(self) -> None:
        self._stopping = True

    def run(self) -> None:
        poller = zmq.Poller()
        poller.register(self.socket, zmq.POLLIN)
        poller.register(self.internal, zmq.POLLIN)
        log.info("npcface serve: listening on %s with %d workers (instance %s)", self.endpoint, len(self._workers),
                 self.instance)
        next_check = 0.0
        try:
            while not self._stopping:
                waiting = self._outboxes or any(w.outbox for w in self._workers)
                events = dict(poller.poll(5 if waiting else 200))
                if self.socket in events:
                    self._from_clients()
                if self.internal in events:
                    self._from_workers()
                if waiting:
                    self._flush()
                now = time.monotonic()
                if now >= next_check:
                    next_check = now + 0.2
                    self._check_workers()
                    self._forget_silent_clients(now)
        finally:
            self.close()

    def _from_clients(self, most: int = 512) -> None:
        now = time.monotonic()
        for _ in range(most):  # (EVENTS, not zmq.Again: raising costs more than forwarding a message)
            if not self.socket.getsockopt(_EVENTS) & _POLLIN:
                return
            frames = self.socket.recv_multipart()
            identity = frames[0]
            worker = self._clients.get(identity)
            if worker is None:
                worker = self._assign(identity)
            self._last_seen[identity] = now
            self._to_worker(self._workers[worker], frames)

    def _assign(self, identity: bytes) -> int:
        ready = [w for w in self._workers if w.ready] or self._workers
        worker = min(ready, key=lambda w: (len(w.clients), w.index))
        worker.clients.add(identity)
        self._clients[identity] = worker.index
        return worker.index

    def _to_worker(self, worker: _Worker, frames: list[bytes]) -> None:
        message = [routing_id(worker.index), *frames]
        if worker.outbox or not self._try_send(self.internal, message):
            worker.outbox.append(message)

    def _from_workers(self, most: int = 512) -> None:
        for _ in range(most):
            if not self.internal.getsockopt(_EVENTS) & _POLLIN:
                return
            worker_id, identity, *message = self.internal.recv_multipart()
            if identity == b"":
                if message == [READY]:
                    next(w for w in self._workers if routing_id(w.index) == worker_id).ready = True
                continue
            self._to_client(identity, message)

    def _to_client(self, identity: bytes, message: list[bytes]) -> None:
        outbox = self._outboxes.get(identity)
        if outbox is not None:
            outbox.append(message)
        elif not self._try_send(self.socket, [identity, *message]):
            self._outboxes[identity] = deque([message])

    @staticmethod
    def _try_send(socket: zmq.Socket, frames: list[bytes]) -> bool:
        """True if sent (or the peer is gone: its messages have nowhere to go); False if its pipe is full."""
        try:
            socket.send_multipart(frames, zmq.NOBLOCK)
        except zmq.Again:
            return False
        except zmq.ZMQError as exc:
            if exc.errno != zmq.EHOSTUNREACH:
                log.warning("npcface serve: send failed (%s); message dropped", exc)
        return True

    def _flush(self) -> None:
        for worker in self._workers:
            while worker.outbox and self._try_send(self.internal, worker.outbox[0]):
                worker.outbox.popleft()
        for identity in list(self._outboxes):
            outbox = self._outboxes[identity]
            while outbox and self._try_send(self.socket, [identity, *outbox[0]]):
                outbox.popleft()
            if not outbox:
                del self._outboxes[identity]

    # ------------------------------------------------------------ workers and clients over time

    def _check_workers(self) -> None:
        for k, worker in enumerate(self._workers):
            if worker.process.is_alive() or self._stopping:
                continue
            why = f"exit code {worker.process.exitcode}"
            log.error("npcface serve: worker %d (pid %d) stopped unexpectedly (%s); its %d client(s) get an "
                      "'internal' error and must say hello again; starting a new worker", k, worker.process.pid, why,
                      len(worker.clients))
            write_counts(self._counts, k, (0,) * len(COUNTS))
            for identity in worker.clients:
                self._clients.pop(identity, None)
                self._to_client(identity, _internal_error(
                    f"the server process serving this connection stopped ({why}); its sessions are gone: "
                    "say 'hello' again and re-open them"))
            self._workers[k] = self._start_worker(k, len(self._workers))

    def _forget_silent_clients(self, now: float) -> None:
        """Drop the routes of clients silent well past the idle timeout (their worker forgot them)."""
        deadline = now - 2 * self.liveness.idle_timeout_s - 5.0
        for identity in [i for i, seen in self._last_seen.items() if seen < deadline]:
            del self._last_seen[identity]
            worker = self._clients.pop(identity, None)
            if worker is not None:
                self._workers[worker].clients.discard(identity)

    def close(self) -> None:
        self._stopping = True
        for worker in self._workers:
            if worker.process.is_alive():
                worker.process.terminate()
        for worker in self._workers:
            worker.process.join(timeout=20)
            if worker.process.is_alive():
                log.warning("npcface serve: worker %d did not stop; killing it", worker.index)
                worker.process.kill()
                worker.process.join()
        self.socket.close(linger=0)
        self.internal.close(linger=0)
        if self._authenticator is not None:
            self._authenticator.stop()
        self._context.term()
        shutil.rmtree(self._folder, ignore_errors=True)
        log.info("npcface serve: stopped")


def _internal_error(message: str) -> list[bytes]:
    from .protocol import ErrorReply, encode

    return encode(ErrorReply(code="internal", message=message))

