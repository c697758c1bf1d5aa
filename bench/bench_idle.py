"""Protocol 1.1 idle sessions beside talking ones: the talking sessions' tick lateness (the schedule
of bench_bridge.py's benchmark 1) with 0 (the baseline), 16 and 64 idling sessions on the same
server, in the same run; and how many idle ticks arrived.

Run: .venv/bin/python bench/bench_idle.py"""
from __future__ import annotations

import sys
import threading
from pathlib import Path

import msgpack

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_bridge import ServeProcess, dealer, greeting, request, run_sessions  # noqa: E402


def idle_listener(endpoint: str, count: int, stop: threading.Event, counts: list[int]) -> None:
    context, socket = dealer(endpoint)
    request(socket, {"type": "hello", "protocol": "1.1"})
    for k in range(count):
        request(socket, {"type": "open", "session": f"idle{k}", "fps": 30.0, "idle": True})
    ready.set()
    while not stop.is_set():
        if socket.poll(100):
            message = msgpack.unpackb(socket.recv_multipart()[0])
            counts[0] += message.get("idle", False)
    socket.close(0)
    context.term()


ready = threading.Event()
pcm, text = greeting()
for talking in (4, 8):
    for idle in (0, 16, 64):
        server = ServeProcess()
        stop, counts = threading.Event(), [0]
        ready = threading.Event()
        thread = threading.Thread(target=idle_listener, args=(server.endpoint, idle, stop, counts))
        thread.start()
        ready.wait(60)
        try:
            result = run_sessions(server.endpoint, talking, pcm, text, echo=False)
        finally:
            stop.set()
            thread.join()
            server.stop()
        print(f"{talking} talking + {idle:3d} idle: {result['ticks']} ticks, p50 {result['p50_ms']:.1f} ms, "
              f"max {result['max_ms']:.1f} ms late; idle ticks received {counts[0]}", flush=True)
