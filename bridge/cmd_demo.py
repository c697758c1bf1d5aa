"""`npcface demo`: the README's main job. Starts the sidecar on a free loopback port, uploads the
bundled portrait, streams the bundled line with its text through the real protocol and writes
the rendered mp4 and the Live Link CSV / JSON curves.
"""
from __future__ import annotations

import argparse
import logging
import threading
import time
from pathlib import Path

from ..core.errors import NpcfaceError

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
LINE = "line_greeting"


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="the bundled portrait speaks the bundled line -> OUT/",
                                   description="Start the sidecar, stream the bundled line through it and write "
                                               "OUT/line_greeting.mp4, .csv and .json.")
    parser.add_argument("--out", type=Path, default=Path("out"), help="output folder (default: out)")
    parser.add_argument("--size", type=int, default=512, help="frame width and height (default 512)")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..core.audio.decode import load_audio
    from .client import SidecarClient
    from .cmd_say import save_line, stream_line
    from .server import Server

    wav, portrait = FIXTURES / f"{LINE}.wav", FIXTURES / "portrait_astronaut.png"
    if not wav.is_file() or not portrait.is_file():
        raise NpcfaceError(f"the bundled fixtures are missing from {FIXTURES}")
    audio = load_audio(wav)
    text = (FIXTURES / f"{LINE}.txt").read_text(encoding="utf-8").strip()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    server = Server("tcp://127.0.0.1:0")  # port 0: any free port
    thread = threading.Thread(target=server.run, name="npcface-sidecar", daemon=True)
    thread.start()
    started = time.monotonic()
    try:
        print(f"sidecar listening on {server.endpoint}")
        with SidecarClient(server.endpoint, timeout_s=60.0, name="npcface-demo") as client:
            frames = "frames" in client.welcome.capabilities["outputs"]
            result = stream_line(client, audio, text, session="demo", fps=args.fps,
                                 avatar_image=portrait if frames else None, size=args.size)
    finally:
        server.stop()
        thread.join(timeout=10)
    end = result.line_end
    print(f'"{text}": {audio.duration:.2f} s of audio -> {end.ticks} ticks, {end.frames_sent} frames '
          f"({end.frames_dropped} dropped) in {time.monotonic() - started:.1f} s")
    if not frames:
        print("this install has no renderer: writing the curves only")
    for path in save_line(result, audio, args.out / LINE, args.fps):
        print(f"wrote {path}")
    return 0
