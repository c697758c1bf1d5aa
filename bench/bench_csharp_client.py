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
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _client_throughput import message_sizes, receive_python, running_sender, time_clients

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "unity_sample"
FRAME_SIDE = 512


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
    sizes = message_sizes(FRAME_SIDE)
    with running_sender(FRAME_SIDE) as port, tempfile.TemporaryDirectory() as tmp:
        exe = build_csharp(Path(tmp))
        receive_csharp(exe, port, "tick", 200)  # warm-up: mono JIT, page cache
        rows = time_clients(counts, repeats, {
            "C# NpcfaceClient (mono)": lambda kind, count: receive_csharp(exe, port, kind, count),
            "Python SidecarClient path":
                lambda kind, count: receive_python(port, kind, count, True, FRAME_SIDE, frames_as_arrays=False),
            "baseline: bare pyzmq, no decode":
                lambda kind, count: receive_python(port, kind, count, False, FRAME_SIDE, frames_as_arrays=False),
        })

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
