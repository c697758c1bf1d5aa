"""Receive throughput of the Unity sample's C# client beside the Python client, over loopback ZeroMQ.

A sender process (a pyzmq ROUTER, standing in for the sidecar so that rendering speed does not
limit the figures) answers a "bench_go" request with COUNT protocol-1.0 messages encoded by
bridge/protocol.py: `tick` messages (latents: pose, gaze, 52 ARKit + 15 viseme + 11 VRM floats,
as the server sends them) or `frame` messages (512x512 rgba8, a 1 MiB payload). Each client takes
them in the way it does in use and touches a field of each:

- C#: unity_sample's NpcfaceClient under mono (reader thread, msgpack -> typed TickMessage /
  FrameMessage, concurrent queue, TryReceive), built with mcs like the tests build it;
- Python: what bridge/client.py's SidecarClient does per message (recv_multipart + decode_server,
  the pydantic models);
- baseline: bare pyzmq recv_multipart with no decoding (the transport's ceiling here).

Run: .venv/bin/python bench/bench_csharp_client.py [--quick]
"""
from __future__ import annotations

import argparse
import multiprocessing
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgpack
import numpy as np
import zmq

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "unity_sample"
FRAME_SIDE = 512


def protocol_messages() -> dict[str, list[bytes]]:
    """One tick and one frame message, as the sidecar encodes them."""
    from npcface.bridge.protocol import FrameHeader, Tick, encode

    rng = np.random.default_rng(0)
    tick = Tick(session="guard", line=0, index=41, time=41 / 30, head_rotation=[2.5, -1.25, 0.5],
                head_translation=[0.0, 0.001, -0.002], gaze_left=[3.0, -1.0], gaze_right=[3.2, -1.0],
                arkit=rng.random(52).tolist(), visemes=rng.random(15).tolist(), vrm=rng.random(11).tolist())
    frame = FrameHeader(session="guard", line=0, index=41, time=41 / 30, width=FRAME_SIDE, height=FRAME_SIDE,
                        format="rgba8")
    pixels = rng.integers(0, 256, FRAME_SIDE * FRAME_SIDE * 4, dtype=np.uint8).tobytes()
    return {"tick": encode(tick), "frame": encode(frame, [pixels])}


def sender(port_out, stop) -> None:
    """The sidecar stand-in: answers each bench_go with COUNT messages of the asked kind."""
    messages = protocol_messages()
    context = zmq.Context()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.ROUTER_MANDATORY, 1)  # block at the high-water mark instead of dropping
    router.sndhwm = 256
    router.linger = 0
    port_out.put(router.bind_to_random_port("tcp://127.0.0.1"))
    poller = zmq.Poller()
    poller.register(router, zmq.POLLIN)
    while not stop.is_set():
        if not poller.poll(100):
            continue
        identity, header, *_ = router.recv_multipart()
        request = msgpack.unpackb(header)
        if request.get("type") != "bench_go":
            continue
        frames = [identity, *messages[request["kind"]]]
        for _ in range(request["count"]):
            router.send_multipart(frames, copy=False)
    context.destroy(linger=0)


def receive_python(port: int, kind: str, count: int, decode: bool) -> float:
    from npcface.bridge.protocol import decode_server

    context = zmq.Context()
    dealer = context.socket(zmq.DEALER)
    dealer.linger = 0
    dealer.connect(f"tcp://127.0.0.1:{port}")
    checksum = 0
    start = time.perf_counter()
    dealer.send(msgpack.packb({"type": "bench_go", "kind": kind, "count": count}))
    for _ in range(count):
        frames = dealer.recv_multipart()
        if decode:
            message, payloads = decode_server(frames)
            checksum += message.index + (int(message.arkit[17] * 1000) if kind == "tick" else payloads[0][len(payloads[0]) // 2])
        else:
            checksum += len(frames[-1])
    seconds = time.perf_counter() - start
    context.destroy(linger=0)
    return seconds


def build_csharp(out: Path) -> Path:
    sources = sorted((SAMPLE / "Runtime" / "Core").glob("*.cs")) + [SAMPLE / "Tests~" / "Bench" / "ClientBench.cs"]
    exe = out / "ClientBench.exe"
    subprocess.run(["mcs", "-langversion:7.2", "-optimize+", "-nologo", f"-out:{exe}", *map(str, sources)], check=True)
    return exe


FLIP_US: list[float] = []  # the C# row flip per 512x512 frame, from each frame run


def receive_csharp(exe: Path, port: int, kind: str, count: int) -> float:
    result = subprocess.run(["mono", str(exe), str(port), kind, str(count)], capture_output=True, text=True, timeout=600)
    values = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    if result.returncode != 0 or int(values.get("received", 0)) != count:
        raise RuntimeError(f"C# bench failed: {result.stdout}{result.stderr}")
    if "flip_us" in values:
        FLIP_US.append(float(values["flip_us"]))
    return float(values["seconds"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer messages and repeats")
    args = parser.parse_args()
    counts = {"tick": 3000, "frame": 60} if args.quick else {"tick": 20000, "frame": 400}
    repeats = 2 if args.quick else 3
    sizes = {kind: sum(len(f) for f in frames) for kind, frames in protocol_messages().items()}

    ports, stop = multiprocessing.Queue(), multiprocessing.Event()
    process = multiprocessing.Process(target=sender, args=(ports, stop), daemon=True)
    process.start()
    port = ports.get(timeout=60)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            exe = build_csharp(Path(tmp))
            receive_csharp(exe, port, "tick", 200)  # warm-up: mono JIT, page cache
            for kind, count in counts.items():
                runs = {
                    "C# NpcfaceClient (mono)": lambda: receive_csharp(exe, port, kind, count),
                    "Python SidecarClient path": lambda: receive_python(port, kind, count, decode=True),
                    "baseline: bare pyzmq, no decode": lambda: receive_python(port, kind, count, decode=False),
                }
                for name, run in runs.items():
                    seconds = [run() for _ in range(repeats)]
                    rows.append((kind, name, count, min(seconds), statistics.median(seconds)))
    finally:
        stop.set()
        process.join(10)

    print(f"receive throughput over loopback, {repeats} runs each (best / median); messages as bridge/protocol.py encodes them")
    print(f"tick message: {sizes['tick']} bytes (52+15+11 floats as float64); frame message: {sizes['frame']} bytes (512x512 rgba8)")
    print(f"{'kind':6} {'client':34} {'count':>6} {'msg/s best':>11} {'msg/s med':>10} {'us/msg':>8} {'MB/s':>8}")
    for kind, name, count, best, median in rows:
        rate = count / best
        print(f"{kind:6} {name:34} {count:6d} {rate:11.0f} {count / median:10.0f} {1e6 / rate:8.1f} {rate * sizes[kind] / 1e6:8.1f}")
    print(f"C# row flip of a 512x512 RGBA frame (NpcfaceFrameApplier, main thread): {statistics.median(FLIP_US):.0f} us median")
    print("need per talking face: 30-60 ticks/s and, with frames, 30-60 frames/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
