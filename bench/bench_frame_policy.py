"""Frames per line with frame_policy "latest" (issue 11), beside "every" (the baseline: never drops,
so it shows how late frames would be) in the same run, on real read speech.

A client like a game's: it sends each line at once with its text, starts playing it then, shows
tick i at that moment + opened.lookahead_s + i / fps, acknowledges every frame on arrival, and
sends the next line when the previous one has finished playing. Per line: frames delivered and
dropped, the first frame's index and arrival, and how many delivered frames came after their
due time. Real lines: ../shared/data/speech (LJSpeech, public domain) or $NPCFACE_DATA; the
project's fixture lines when that folder is missing.

Run: .venv/bin/python bench/bench_frame_policy.py [--lines N] [--fps 25] [--size 256] [--order every,latest]
(the two policies run one after the other: on a shared machine, load drifts between them)"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import msgpack

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, data_dir  # noqa: E402
from bench_bridge import ServeProcess, dealer, request  # noqa: E402

from npcface.bridge.client import pcm_s16le  # noqa: E402
from npcface.core.audio.decode import load_audio  # noqa: E402


def real_lines(count: int) -> tuple[str, list[tuple[str, bytes, str]]]:
    speech = data_dir() / "speech"
    wavs = sorted(speech.glob("s*_ljspeech_*.wav"))[:count]
    source = "../shared/data/speech (LJSpeech)"
    if not wavs:
        wavs, source = sorted((REPO / "fixtures").glob("line_*.wav"))[:count], "fixtures (no real data here)"
    lines = [(wav.stem.split("_")[0], pcm_s16le(load_audio(wav).samples), wav.with_suffix(".txt").read_text().strip())
             for wav in wavs]
    return source, lines


def play(socket, session: str, pcm: bytes, text: str, fps: float, lookahead_s: float) -> dict:
    """One line sent at once and played from then; what came back, timed against playback."""
    chunk = 3200  # 0.1 s at 16 kHz
    started = time.monotonic()
    for seq, begin in enumerate(range(0, len(pcm), chunk)):
        header = {"type": "audio", "session": session, "seq": seq, "rate": 16000}
        if seq == 0:
            header["text"] = text
        socket.send_multipart([msgpack.packb(header), pcm[begin:begin + chunk]])
    socket.send_multipart([msgpack.packb({"type": "end_line", "id": "end", "session": session})])
    frames = []  # (index, seconds after its due time)
    while True:
        message = socket.recv_multipart()
        header = msgpack.unpackb(message[0])
        if header["type"] == "frame":
            socket.send_multipart([msgpack.packb({"type": "frame_ack", "session": session})])
            due = started + lookahead_s + header["index"] / fps
            frames.append((header["index"], time.monotonic() - due))
        elif header["type"] == "line_end":
            break
        elif header["type"] == "error":
            raise SystemExit(f"bench_frame_policy: the server answered {header['code']}: {header['message']}")
    time.sleep(max(0.0, started + len(pcm) / 32000 - time.monotonic()))  # the line finishes playing
    return {"ticks": header["ticks"], "frames": len(frames), "dropped": header["frames_dropped"],
            "first": frames[0] if frames else (None, 0.0), "late": sum(late > 0 for _, late in frames)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=4)
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--order", default="every,latest", help="which policy runs first (load drifts)")
    args = parser.parse_args()
    source, lines = real_lines(args.lines)
    print(f"{len(lines)} lines from {source}; {args.size}x{args.size} rgba8 frames at {args.fps:g} fps, "
          "each line sent at once, every frame acknowledged on arrival")
    server = ServeProcess()
    try:
        context, socket = dealer(server.endpoint)
        request(socket, {"type": "hello", "protocol": "1.2"})
        portrait = (REPO / "fixtures" / "portrait_astronaut.png").read_bytes()
        avatar = request(socket, {"type": "upload_avatar"}, portrait)["avatar"]
        results = {}
        for policy in args.order.split(","):
            opened = request(socket, {"type": "open", "session": policy, "outputs": ["frames"], "avatar": avatar,
                                      "fps": args.fps, "frame_size": [args.size, args.size],
                                      "frame_policy": policy})
            results[policy] = [play(socket, policy, pcm, text, args.fps, opened["lookahead_s"])
                               for _, pcm, text in lines]
        socket.close(0)
        context.term()
    finally:
        server.stop()
    print(f"{'line':6} {'ticks':>5} | {'every: late':>11} {'first at':>8} | {'latest: sent':>12} {'dropped':>7} "
          f"{'first':>5} {'first at':>8} {'late':>4} | sent latest/every")
    for (name, _, _), every, latest in zip(lines, results["every"], results["latest"]):
        print(f"{name:6} {latest['ticks']:5d} | {every['late']:11d} {every['first'][1]:+7.2f}s | "
              f"{latest['frames']:12d} {latest['dropped']:7d} {latest['first'][0]:5d} {latest['first'][1]:+7.2f}s "
              f"{latest['late']:4d} | {latest['frames'] / max(1, every['frames']):.2f}")
    print("('first at': the first frame's arrival relative to its due time; negative = early enough)")


if __name__ == "__main__":
    main()
