"""Protocol 1.1 idle sessions, each server against the code at --before REV in the same run:

1. idle NPCs alone (16 and 64): the server's CPU, per idle NPC-second, and the idle ticks each
   got per second (an idle NPC is owed 30 at 30 fps; fewer means its motion fell behind);
2. 4 talking sessions (bench_bridge.py's schedule, with text) beside 0, 16 and 64 idle ones: the
   talking ticks' lateness, and how many idle ticks arrived meanwhile.

Run: .venv/bin/python bench/bench_idle.py [--before REV]"""
from __future__ import annotations

import argparse
import contextlib
import sys
import threading
import time
from pathlib import Path

import msgpack

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_bridge import ServeProcess, code_at, dealer, greeting, request, run_sessions  # noqa: E402

FPS = 30.0


def idle_listener(endpoint: str, count: int, stop: threading.Event, ready: threading.Event, counts: list[int]) -> None:
    """Opens ``count`` idle sessions on one connection, then counts their idle ticks until ``stop``."""
    context, socket = dealer(endpoint)
    request(socket, {"type": "hello", "protocol": "1.1"})
    for k in range(count):
        request(socket, {"type": "open", "session": f"idle{k}", "fps": FPS, "idle": True})
    ready.set()
    while not stop.is_set():
        if socket.poll(100):
            message = msgpack.unpackb(socket.recv_multipart()[0])
            counts[0] += message.get("idle", False)
    socket.close(0)
    context.term()


@contextlib.contextmanager
def idling(server: ServeProcess, count: int):
    """``count`` idle sessions on ``server`` while the block runs; yields their tick counter."""
    stop, ready, counts = threading.Event(), threading.Event(), [0]
    thread = threading.Thread(target=idle_listener, args=(server.endpoint, count, stop, ready, counts))
    thread.start()
    ready.wait(60)
    try:
        yield counts
    finally:
        stop.set()
        thread.join()


def idle_alone(code: str | None, count: int, seconds: float = 8.0) -> str:
    server = ServeProcess(code=code)
    try:
        with idling(server, count) as counts:
            time.sleep(2.0)  # past the sessions' first blocks
            cpu, ticks, started = server.cpu_seconds(), counts[0], time.monotonic()
            time.sleep(seconds)
            cpu, ticks, wall = server.cpu_seconds() - cpu, counts[0] - ticks, time.monotonic() - started
    finally:
        server.stop()
    return (f"{count:3d} idle: server CPU {100 * cpu / wall:3.0f}% of a core, {1000 * cpu / wall / count:5.1f} ms per idle "
            f"NPC-second; {ticks / wall / count:4.1f} idle ticks/s each (owed {FPS:g})")


def talking_beside_idle(code: str | None, talking: int, idle: int, pcm: bytes, text: str) -> str:
    server = ServeProcess(code=code)
    try:
        with idling(server, idle) as counts:
            result = run_sessions(server.endpoint, talking, pcm, text, echo=False)
    finally:
        server.stop()
    return (f"{talking} talking + {idle:3d} idle: {result['ticks']} ticks, p50 {result['p50_ms']:.1f} ms, "
            f"max {result['max_ms']:.1f} ms late; idle ticks received {counts[0]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", metavar="REV", help="also measure the server of this git revision")
    args = parser.parse_args()
    pcm, text = greeting()
    with contextlib.ExitStack() as stack:
        servers = {"now": None}
        if args.before:
            servers[args.before] = stack.enter_context(code_at(args.before))
        print("(1) idle NPCs alone")
        for count in (16, 64):
            for name, code in servers.items():
                print(f"  {name:>10s}  {idle_alone(code, count)}", flush=True)
        print("(2) talking sessions beside idle ones")
        for idle in (0, 16, 64):
            for name, code in servers.items():
                print(f"  {name:>10s}  {talking_beside_idle(code, 4, idle, pcm, text)}", flush=True)


if __name__ == "__main__":
    main()
