"""Sidecar benchmarks over real loopback ZeroMQ, each against a baseline measured in the same run.

1. Concurrent latent-only NPC sessions at 30 ticks/s: the most sessions (streaming their lines in
   real time, 20 ms chunks, starts spread over one second) with no tick later than 50 ms behind
   the moment its audio had arrived. Baselines: the same schedule against a bare ZeroMQ echo, and
   with --before REV the server of git revision REV (e.g. the commit before the batched loop) on
   the same ladder in the same run. --motion rules|learned picks the sessions' motion, --no-text
   sends lines without text (no phone decoder for `learned`), --counts the ladder, --workers 1,2
   climbs it once per `serve --workers` count, --step-interval-ms 0,10 once per step interval
   (0: step after every burst, as servers before db0c22a did), --clients K spreads the sessions over K
   connections.
2. One 512x512 frame stream's fps over the wire (rgba8 and jpeg). Baseline: the renderer alone in
   one process, and 1 MiB messages through bare ZeroMQ.
3. Latency from an audio chunk sent to the first tick it completes (lookahead 0.12 s and 0.06 s).
   Baseline: a bare ZeroMQ request/reply round trip.

Run: .venv/bin/python bench/bench_bridge.py [--quick] [--only 1 --before REV --motion learned --no-text --workers 1,2 --clients 4]
(--profile PREFIX: each server of (1) under cProfile, e.g. `python -m pstats PREFIX-now-w1-16.prof`)
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import heapq
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import msgpack
import numpy as np
import zmq

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
CHUNK_S = 0.02
FPS = 30.0
LATE_LIMIT_S = 0.050
GIVE_UP_AFTER_S = 20.0  # after the last chunk: stop waiting for the rest of the ticks


def greeting() -> tuple[bytes, str]:
    from npcface.core.audio.decode import load_audio

    samples = load_audio(FIXTURES / "line_greeting.wav").samples
    text = (FIXTURES / "line_greeting.txt").read_text().strip()
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes(), text


class ServeProcess:
    """`npcface serve` in a subprocess; with ``code``, the npcface source tree of another revision."""

    def __init__(self, *extra: str, code: str | None = None, profile: str | None = None):
        arguments = ["serve", "--bind", "tcp://127.0.0.1:0", "--quiet", "--max-sessions-per-client", "256", *extra]
        # --profile: the server under cProfile, its stats written to ``profile`` when it stops
        python = [sys.executable] + (["-m", "cProfile", "-o", profile] if profile else [])
        if code is None:
            command = [*python, "-m", "npcface.bridge.cli", *arguments]
        else:  # the same CLI, imported from the other tree (bench/_common.use_code_from)
            command = [*python, str(ROOT / "bench" / "_serve_code.py"), code, *arguments]
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        self.endpoint = re.search(r"ready on (\S+)", self.process.stdout.readline()).group(1)

    def cpu_seconds(self) -> float | None:
        """CPU time the server has used so far, its worker processes included (user + system;
        None where /proc is missing)."""
        stats = {}
        for path in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = path.read_text().rsplit(")", 1)[1].split()
            except OSError:  # gone meanwhile
                continue
            stats[int(path.parent.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
        if self.process.pid not in stats:
            return None
        family, ticks = {self.process.pid}, 0
        for pid in sorted(stats):  # children have larger pids than their parents here (no wrap-around)
            parent, used = stats[pid]
            if pid in family or parent in family:
                family.add(pid)
                ticks += used
        return ticks / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        self.process.send_signal(2)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:  # still chewing on a backlog the bench gave up on
            self.process.kill()
            self.process.wait()


class EchoServer:
    """Baseline: a ROUTER that answers every message with one small message (in a thread)."""

    def __init__(self):
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.ROUTER)
        port = self.socket.bind_to_random_port("tcp://127.0.0.1")
        self.endpoint = f"tcp://127.0.0.1:{port}"
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            if self.socket.poll(50):
                frames = self.socket.recv_multipart()
                self.socket.send_multipart([frames[0], frames[1]])

    def stop(self) -> None:
        self.running = False
        self.thread.join()
        self.socket.close(0)
        self.context.term()


def dealer(endpoint: str) -> tuple[zmq.Context, zmq.Socket]:
    context = zmq.Context()
    return context, dealer_on(context, endpoint)


def dealer_on(context: zmq.Context, endpoint: str) -> zmq.Socket:
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(endpoint)
    return socket


def request(socket: zmq.Socket, header: dict, *payloads: bytes) -> dict:
    header = {**header, "id": "req"}
    socket.send_multipart([msgpack.packb(header), *payloads])
    while True:
        reply = msgpack.unpackb(socket.recv_multipart()[0])
        if reply.get("id") == "req":
            if reply["type"] == "error":
                raise RuntimeError(reply)
            return reply


# ---------------------------------------------------------------- 1. concurrent sessions


def run_sessions(endpoint: str, count: int, pcm: bytes, text: str | None, echo: bool, lookahead: float = 0.12,
                 motion: str | None = None, clients: int = 1, on_start=None) -> dict:
    """Stream ``count`` lines at once in real time; lateness of every tick (or echo reply).
    Session k goes over connection k % ``clients`` (one engine or several). The client's cyclic GC
    is off meanwhile: a full pass over this process's heap (numpy, the decoder) took 85 ms, which
    read as 85 ms of lateness that no engine client would add. ``on_start()`` runs when the
    sessions are open, just before the first chunk."""
    gc.collect()
    gc.disable()
    try:
        return _run_sessions(endpoint, count, pcm, text, echo, lookahead, motion, clients, on_start)
    finally:
        gc.enable()


def _run_sessions(endpoint: str, count: int, pcm: bytes, text: str | None, echo: bool, lookahead: float,
                  motion: str | None, clients: int, on_start=None) -> dict:
    context = zmq.Context()
    sockets = [dealer_on(context, endpoint) for _ in range(clients)]
    socket_of = [sockets[k % clients] for k in range(count)]
    if not echo:
        for socket in sockets:
            request(socket, {"type": "hello", "protocol": "1.2" if motion else "1.0"})
        for k in range(count):
            request(socket_of[k], {"type": "open", "session": f"n{k}", "fps": FPS, "lookahead_s": lookahead,
                                   **({"motion": motion} if motion else {})})
    poller = zmq.Poller()
    for socket in sockets:
        poller.register(socket, zmq.POLLIN)
    chunk_bytes = int(CHUNK_S * 16000) * 2
    chunks = [pcm[i:i + chunk_bytes] for i in range(0, len(pcm), chunk_bytes)]
    # Every message packed before the clock starts, so the loop only sends and reads: this client
    # shares the machine with the server it measures (it took ~0.35 core of 2 at 32 sessions).
    headers = [[msgpack.packb({"type": "audio", "session": f"n{k}", "seq": seq, "rate": 16000,
                               **({"text": text} if seq == 0 and text else {})}) for seq in range(len(chunks))]
               for k in range(count)]
    end_lines = [msgpack.packb({"type": "end_line", "session": f"n{k}"}) for k in range(count)]
    sent = [0] * count
    arrived_at: list[list[float]] = [[] for _ in range(count)]  # wall time chunk i was sent
    audio_to_tick: list[float] = []  # tick received - when the audio at its time was sent
    chunk_to_tick: list[float] = []  # tick received - when the latest chunk before it was sent
    ends = 0
    if on_start is not None:
        on_start()
    t0 = time.monotonic() + 0.2
    give_up = t0 + 1.0 + len(chunks) * CHUNK_S + GIVE_UP_AFTER_S  # a server this far behind has failed anyway
    # (when its next chunk is due, session), soonest first; starts spread over one second, like
    # NPCs that start apart
    due = [(t0 + k / count, k) for k in range(count)]
    heapq.heapify(due)
    more, events = int(zmq.SNDMORE), int(zmq.EVENTS)
    while ends < count and time.monotonic() < give_up:
        now = time.monotonic()
        while due and due[0][0] <= now:
            _, k = heapq.heappop(due)
            socket, seq = socket_of[k], sent[k]
            socket.send(headers[k][seq], more)
            socket.send(chunks[seq])
            arrived_at[k].append(time.monotonic())
            sent[k] = seq + 1
            if seq + 1 < len(chunks):
                heapq.heappush(due, (t0 + k / count + (seq + 1) * CHUNK_S, k))
            elif echo:
                ends += 1
            else:
                socket.send(end_lines[k])
        next_due = due[0][0] if due else now + 0.05
        while ready := poller.poll(max(0, int((next_due - time.monotonic()) * 1000))):
            for socket, _ in ready:  # all it holds, not one message per poll
                while socket.get(events) & 1:  # POLLIN
                    message = msgpack.unpackb(socket.recv_multipart()[0])
                    received = time.monotonic()
                    if echo:
                        k = int(message["session"][1:])
                        chunk_to_tick.append(received - arrived_at[k][message["seq"]])
                        audio_to_tick.append(chunk_to_tick[-1] + lookahead)
                    elif message["type"] == "tick":
                        k = int(message["session"][1:])
                        holding = min(int(message["time"] / CHUNK_S), len(chunks) - 1)  # the chunk with its sound
                        audio_to_tick.append(received - arrived_at[k][holding])
                        chunk_to_tick.append(received - arrived_at[k][-1])
                    elif message["type"] == "line_end":
                        ends += 1
                    elif message["type"] == "error":
                        raise RuntimeError(message)
                    if received >= next_due:
                        break
            if time.monotonic() >= next_due:
                break
    for socket in sockets:
        socket.close(0)
    context.term()
    # Behind real time: later than the lookahead the session asked for (the tick could not be earlier).
    expected_ticks = count * int(len(pcm) / 32000 * FPS)  # roughly: ticks never received count as late
    missing = max(0, expected_ticks - len(audio_to_tick)) if ends < count else 0
    late = np.concatenate([np.array(audio_to_tick), np.full(missing, GIVE_UP_AFTER_S)]) - lookahead
    chunk = np.array(chunk_to_tick)
    return {"sessions": count, "ticks": len(late), "p50_ms": 1000 * np.median(late), "max_ms": 1000 * late.max(),
            "p99_ms": 1000 * np.percentile(late, 99), "late_share": float(np.mean(late > LATE_LIMIT_S)),
            "audio_p50_ms": 1000 * np.median(audio_to_tick), "audio_max_ms": 1000 * np.max(audio_to_tick),
            "chunk_p50_ms": 1000 * np.median(chunk), "chunk_max_ms": 1000 * chunk.max()}


def session_ladder(pcm: bytes, text: str | None, counts: list[int], motion: str | None, code: str | None,
                   keep_going: bool = False, workers: int = 1, clients: int = 1, profile: str | None = None,
                   step_interval_ms: str | None = None) -> int:
    """Climb ``counts`` until a tick is late (or all of them, ``keep_going``); the most sessions held.
    ``profile``: each rung's server runs under cProfile, its stats in ``{profile}-{count}.prof``."""
    best, failed = 0, False
    for count in counts:
        server = ServeProcess(*(["--workers", str(workers)] if workers > 1 else []),
                              *(["--step-interval-ms", step_interval_ms] if step_interval_ms is not None else []), code=code,
                              profile=f"{profile}-{count}.prof" if profile else None)
        try:
            cpu_before = server.cpu_seconds()
            result = run_sessions(server.endpoint, count, pcm, text, echo=False, motion=motion, clients=clients)
            cpu_after = server.cpu_seconds()
        finally:
            server.stop()
        ok = result["max_ms"] <= LATE_LIMIT_S * 1000
        # CPU per second of one session's audio: what the server needs whatever else the machine
        # runs (wall-clock lateness on a shared machine also measures the other users).
        cpu = "" if cpu_before is None else (f", server CPU {1000 * (cpu_after - cpu_before) / (count * len(pcm) / 32000):5.1f} ms "
                                             "per session-second of audio")
        print(f"  {count:3d} sessions: {result['ticks']:5d} ticks, p50 {result['p50_ms']:6.1f} ms, "
              f"p99 {result['p99_ms']:7.1f} ms, max {result['max_ms']:7.1f} ms, "
              f"{100 * result['late_share']:5.1f}% late  {'ok' if ok else 'LATE'}{cpu}; load {os.getloadavg()[0]:.1f}", flush=True)
        failed = failed or not ok
        if failed and not keep_going:
            break
        best = count if not failed else best
    return best


def bench_sessions(pcm: bytes, text: str | None, counts: list[int], motion: str | None = None,
                   before: str | None = None, keep_going: bool = False, workers: tuple[int, ...] = (1,),
                   clients: int = 1, profile: str | None = None, intervals: tuple[str | None, ...] = (None,)) -> None:
    print(f"\n(1) concurrent latent-only sessions, 30 ticks/s, real-time 20 ms chunks, motion {motion or 'default'}, "
          f"{'with' if text else 'without'} text, over {clients} connection(s); lateness = how long after its "
          "audio + lookahead had been sent a tick arrived", flush=True)
    echo = EchoServer()
    base = run_sessions(echo.endpoint, 64, pcm[: 16000 * 2 * 3], text, echo=True)
    echo.stop()
    print(f"  baseline, bare ZeroMQ echo of 64 streams' chunks: p50 {base['chunk_p50_ms']:.2f} ms, "
          f"max {base['chunk_max_ms']:.2f} ms")
    held_before = None
    if before:
        with code_at(before) as tree:
            print(f"  baseline, the server at {before}:")
            held_before = session_ladder(pcm, text, counts, motion, tree, keep_going, clients=clients,
                                         profile=f"{profile}-before" if profile else None)
    for count in workers:
        for interval in intervals:
            setting = f"--workers {count}" + ("" if interval is None else f" --step-interval-ms {interval}")
            print(f"  now, {setting}:")
            best = session_ladder(pcm, text, counts, motion, None, keep_going, workers=count, clients=clients,
                                  profile=f"{profile}-now-w{count}" + ("" if interval is None else f"-i{interval}")
                                  if profile else None, step_interval_ms=interval)
            print(f"  => {best} concurrent sessions held with no tick more than {LATE_LIMIT_S * 1000:.0f} ms late "
                  f"with {setting}" + (f" (the server at {before}: {held_before})" if before else ""))


@contextlib.contextmanager
def code_at(revision: str):
    """The npcface source tree (core, bridge, models) of git ``revision``, in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="npcface-before-") as tree:
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "core", "bridge", "models"],
                                 check=True, capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", tree], input=archive, check=True)
        yield tree


# ---------------------------------------------------------------- 2. frame stream


def frame_stream(endpoint: str, pcm: bytes, text: str, frame_format: str, streams: int = 1) -> tuple[float, int]:
    """Frames per second received, all ``streams`` sessions together (each a whole line at once)."""
    context, socket = dealer(endpoint)
    request(socket, {"type": "hello", "protocol": "1.0"})
    avatar = request(socket, {"type": "upload_avatar"}, (FIXTURES / "portrait_astronaut.png").read_bytes())["avatar"]
    for k in range(streams):
        request(socket, {"type": "open", "session": f"f{k}", "outputs": ["frames"], "avatar": avatar, "fps": FPS,
                         "frame_size": [512, 512], "frame_format": frame_format, "frame_policy": "every",
                         "frame_window": 8})
    for k in range(streams):
        header = {"type": "audio", "session": f"f{k}", "seq": 0, "rate": 16000, "text": text}
        socket.send_multipart([msgpack.packb(header), pcm])
        socket.send_multipart([msgpack.packb({"type": "end_line", "session": f"f{k}"})])
    frames, first, ends = 0, None, 0
    while ends < streams:
        parts = socket.recv_multipart()
        message = msgpack.unpackb(parts[0])
        if message["type"] == "frame":
            first = first or time.monotonic()
            frames += 1
            socket.send_multipart([msgpack.packb({"type": "frame_ack", "session": message["session"]})])
        elif message["type"] == "line_end":
            ends += 1
        elif message["type"] == "error":
            raise RuntimeError(message)
    elapsed = time.monotonic() - first
    socket.close(0)
    context.term()
    return (frames - 1) / elapsed, frames


def bench_frames(pcm: bytes, text: str) -> None:
    print("\n(2) one 512x512 frame stream over the wire (whole line sent at once, frame_policy 'every')")
    from npcface.core.render.rig import build_rig, load_image
    from npcface.core.render.renderer import Renderer
    from npcface.core.session import LineFormat, NpcSession, SessionSettings

    rig = build_rig(load_image(FIXTURES / "portrait_astronaut.png"))
    npc = NpcSession(SessionSettings())
    npc.start_line(LineFormat(16000, 1, "s16le"), text)
    motions = npc.push_pcm(pcm) + npc.end_line()
    renderer = Renderer(rig, size=512)
    started = time.monotonic()
    for motion in motions[:60]:
        renderer.render(motion)
    alone = 60 / (time.monotonic() - started)
    print(f"  baseline, renderer alone in one thread: {alone:.1f} fps")
    echo = EchoServer()
    context, socket = dealer(echo.endpoint)
    payload = b"\x00" * (512 * 512 * 4)
    started = time.monotonic()
    for _ in range(200):
        socket.send_multipart([msgpack.packb({"type": "x"}), payload])
        socket.recv_multipart()
    print(f"  baseline, bare ZeroMQ 1 MiB request/reply: {200 / (time.monotonic() - started):.0f} messages/s")
    socket.close(0)
    context.term()
    echo.stop()
    server = ServeProcess()
    try:
        for frame_format in ("rgba8", "jpeg"):
            fps, count = frame_stream(server.endpoint, pcm, text, frame_format)
            print(f"  sidecar, {frame_format}: {fps:.1f} fps over the wire ({count} frames)")
    finally:
        server.stop()
    print("  the render pool: two rgba8 streams at once, total fps")
    for workers in ("1", "2"):
        server = ServeProcess("--render-threads", workers)
        try:
            fps, count = frame_stream(server.endpoint, pcm, text, "rgba8", streams=2)
            print(f"    {workers} render thread(s): {fps:.1f} fps ({count} frames)")
        finally:
            server.stop()


# ---------------------------------------------------------------- 3. latency


def bench_latency(pcm: bytes, text: str) -> None:
    print("\n(3) latency: audio chunk sent -> first tick it completes, one session, real-time 20 ms chunks")
    echo = EchoServer()
    context, socket = dealer(echo.endpoint)
    trips = []
    for _ in range(200):
        started = time.monotonic()
        socket.send_multipart([msgpack.packb({"type": "x"}), b"\x00" * 640])
        socket.recv_multipart()
        trips.append(time.monotonic() - started)
    socket.close(0)
    context.term()
    echo.stop()
    print(f"  baseline, bare ZeroMQ round trip with a 20 ms chunk: p50 {1000 * statistics.median(trips):.2f} ms")
    for lookahead in (0.12, 0.06):
        server = ServeProcess()
        try:
            result = run_sessions(server.endpoint, 1, pcm, text, echo=False, lookahead=lookahead)
        finally:
            server.stop()
        print(f"  lookahead {lookahead:.2f} s: latest chunk sent -> tick p50 {result['chunk_p50_ms']:.1f} ms, "
              f"max {result['chunk_max_ms']:.1f} ms; the chunk holding a sound -> its tick p50 "
              f"{result['audio_p50_ms']:.0f} ms, max {result['audio_max_ms']:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer session counts")
    parser.add_argument("--only", type=int, choices=(1, 2, 3), help="run one benchmark")
    parser.add_argument("--before", metavar="REV", help="(1): also climb the ladder with the server at git REV")
    parser.add_argument("--motion", choices=("rules", "learned"), help="(1): the sessions' motion (default: the server's)")
    parser.add_argument("--no-text", action="store_true", help="(1): lines without text")
    parser.add_argument("--counts", help="(1): the ladder of session counts, comma-separated")
    parser.add_argument("--workers", default="1", help="(1): serve --workers for the current server, a "
                        "comma-separated list climbs the ladder once each (default 1)")
    parser.add_argument("--step-interval-ms", help="(1): serve --step-interval-ms for the current server, a "
                        "comma-separated list climbs the ladder once each (default: the server's)")
    parser.add_argument("--clients", type=int, default=1, help="(1): connections the sessions are spread over "
                        "(a worker serves whole connections; default 1)")
    parser.add_argument("--profile", metavar="PREFIX", help="(1): run each server under cProfile, stats in "
                        "PREFIX-{before,now-wW}-COUNT.prof (read them with python -m pstats; cProfile slows the "
                        "server, so its lateness is not comparable)")
    parser.add_argument("--keep-going", action="store_true", help="(1): climb every count even after a late tick "
                        "(on a busy machine the p50 / p99 / share late still compare the two servers)")
    args = parser.parse_args()
    pcm, text = greeting()
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start")
    if args.only in (None, 3):
        bench_latency(pcm, text)
    if args.only in (None, 2):
        bench_frames(pcm, text)
    if args.only in (None, 1):
        counts = ([int(c) for c in args.counts.split(",")] if args.counts
                  else [1, 4, 8] if args.quick else [1, 2, 4, 6, 8, 12, 16, 24, 32])
        bench_sessions(pcm, None if args.no_text else text, counts, args.motion, args.before, args.keep_going,
                       tuple(int(w) for w in args.workers.split(",")), args.clients, args.profile,
                       tuple(args.step_interval_ms.split(",")) if args.step_interval_ms else (None,))


if __name__ == "__main__":
    main()
