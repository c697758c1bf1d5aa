"""Receive throughput of the Godot addon's GDScript client beside the Python client, over loopback.

A sender process (a pyzmq ROUTER standing in for the sidecar, so rendering speed does not limit
the figures) answers a "bench_go" request with COUNT messages encoded by bridge/protocol.py:
`tick` messages (pose, gaze, 52 ARKit + 15 viseme + 11 VRM floats, as the server sends them) or
`frame` messages (256x256 rgba8). Each client takes them in as it does in use:

- GDScript: godot_sample's NpcfaceClient in Debian's Godot 4 headless (tools/godot.sh): ZMTP
  and msgpack in GDScript, signals; frames become an Image in an ImageTexture updated in place
  (NpcfaceFrameApplier);
- Python: what bridge/client.py's SidecarClient does per message (recv_multipart +
  decode_server), frames turned into an (H, W, 4) array (frame_pixels);
- baseline: bare pyzmq recv_multipart, no decoding (the transport's ceiling here).

Run: .venv/bin/python bench/bench_godot_client.py [--quick]
"""
from __future__ import annotations

import argparse
import multiprocessing
import statistics
import subprocess
import sys
import time
from pathlib import Path

import msgpack
import numpy as np
import zmq

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "godot_sample"
FRAME_SIDE = 256


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
    while not stop.is_set():
        if not router.poll(100):
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
    from npcface.bridge.client import frame_pixels
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
        if not decode:
            checksum += len(frames[-1])
        elif kind == "tick":
            message, _ = decode_server(frames)
            checksum += int(message.arkit[17] * 1000)
        else:
            message, payloads = decode_server(frames)
            checksum += int(frame_pixels(message, payloads[0])[FRAME_SIDE // 2, FRAME_SIDE // 2, 0])
    seconds = time.perf_counter() - start
    context.destroy(linger=0)
    return seconds


def receive_godot(port: int, kind: str, count: int) -> float:
    result = subprocess.run(["bash", str(ROOT / "tools" / "godot.sh"), "--path", str(SAMPLE), "-s",
                             "res://tests/bench_client.gd", "--", str(port), kind, str(count)],
                            capture_output=True, text=True, timeout=600)
    values = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    if int(values.get("received", 0)) != count:
        raise RuntimeError(f"GDScript bench failed: {result.stdout}{result.stderr}")
    return float(values["seconds"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer messages and repeats")
    args = parser.parse_args()
    counts = {"tick": 2000, "frame": 100} if args.quick else {"tick": 10000, "frame": 600}
    repeats = 2 if args.quick else 3
    sizes = {kind: sum(len(f) for f in frames) for kind, frames in protocol_messages().items()}
    # Godot's class cache of the addon as it is now (tests/godot_helpers.py does the same).
    subprocess.run(["bash", str(ROOT / "tools" / "godot.sh"), "--path", str(SAMPLE), "--import"],
                   capture_output=True, check=True, timeout=900)

    ports, stop = multiprocessing.Queue(), multiprocessing.Event()
    process = multiprocessing.Process(target=sender, args=(ports, stop), daemon=True)
    process.start()
    port = ports.get(timeout=60)
    rows = []
    try:
        receive_godot(port, "tick", 100)  # warm-up: page cache
        for kind, count in counts.items():
            runs = {
                "GDScript NpcfaceClient (Godot 4.6)": lambda: receive_godot(port, kind, count),
                "Python SidecarClient path": lambda: receive_python(port, kind, count, decode=True),
                "baseline: bare pyzmq, no decode": lambda: receive_python(port, kind, count, decode=False),
            }
            for name, run in runs.items():
                seconds = [run() for _ in range(repeats)]
                rows.append((kind, name, count, min(seconds), statistics.median(seconds)))
    finally:
        stop.set()
        process.join(10)

    python_best = {kind: count / best for kind, name, count, best, _ in rows if name.startswith("Python")}
    print(f"receive throughput over loopback, {repeats} runs each (best / median); messages as bridge/protocol.py encodes them")
    print(f"tick message: {sizes['tick']} bytes (52+15+11 floats as float64); frame message: {sizes['frame']} bytes "
          f"({FRAME_SIDE}x{FRAME_SIDE} rgba8; GDScript makes an ImageTexture of each, Python a numpy array)")
    print(f"{'kind':6} {'client':36} {'count':>6} {'msg/s best':>11} {'msg/s med':>10} {'us/msg':>8} {'x Python':>9}")
    for kind, name, count, best, median in rows:
        rate = count / best
        print(f"{kind:6} {name:36} {count:6d} {rate:11.0f} {count / median:10.0f} {1e6 / rate:8.1f} "
              f"{rate / python_best[kind]:9.2f}")
    print("need per talking face: 30-60 ticks/s and, with frames, 30-60 frames/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
