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
import subprocess
import sys
from pathlib import Path

from _client_throughput import message_sizes, receive_python, running_sender, time_clients

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "godot_sample"
FRAME_SIDE = 256


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
    sizes = message_sizes(FRAME_SIDE)
    # Godot's class cache of the addon as it is now (tests/godot_helpers.py does the same).
    subprocess.run(["bash", str(ROOT / "tools" / "godot.sh"), "--path", str(SAMPLE), "--import"],
                   capture_output=True, check=True, timeout=900)
    with running_sender(FRAME_SIDE) as port:
        receive_godot(port, "tick", 100)  # warm-up: page cache
        rows = time_clients(counts, repeats, {
            "GDScript NpcfaceClient (Godot 4.6)": lambda kind, count: receive_godot(port, kind, count),
            "Python SidecarClient path":
                lambda kind, count: receive_python(port, kind, count, True, FRAME_SIDE, frames_as_arrays=True),
            "baseline: bare pyzmq, no decode":
                lambda kind, count: receive_python(port, kind, count, False, FRAME_SIDE, frames_as_arrays=True),
        })

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
