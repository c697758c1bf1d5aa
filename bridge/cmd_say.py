"""`npcface say`: send one line to a running sidecar and save what comes back
(Live Link CSV + motion JSON of the ticks, and an mp4 of the rendered frames with the line's audio).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.errors import ControlError, NpcfaceError
from .limits import DEFAULT_ENDPOINT

if TYPE_CHECKING:  # heavy modules load when the command runs: `npcface --help` stays fast
    import numpy as np

    from ..core.types import Audio
    from .client import LineResult, SidecarClient


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("say", help="send a line to a running sidecar, save the curves and video",
                                   description="Stream one line of audio to `npcface serve` and save what it sends "
                                               "back: OUT.csv (Live Link Face), OUT.json and, with --avatar, OUT.mp4.")
    parser.add_argument("audio", type=Path, help="the line's audio file (any format)")
    parser.add_argument("--text", help="what is said (improves lip sync)")
    parser.add_argument("--text-file", type=Path, help="read the text from this file")
    parser.add_argument("--connect", default=DEFAULT_ENDPOINT, help=f"sidecar endpoint (default {DEFAULT_ENDPOINT})")
    parser.add_argument("--avatar", type=Path, help="portrait image: also render frames into OUT.mp4")
    parser.add_argument("--out", type=Path, help="output path without extension (default: the audio's name)")
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--size", type=int, default=512, help="frame width and height in pixels")
    parser.add_argument("--emotion", help="emotion for the line, NAME or NAME:INTENSITY (e.g. happy:0.7)")
    parser.add_argument("--realtime", action="store_true", help="stream at playback speed, like a game would")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for the sidecar")
    parser.add_argument("--motion", choices=("rules", "learned"), default=None,
                        help="motion generator (protocol 1.2 open.motion; default: the sidecar's)")
    parser.set_defaults(run=run)


def read_text(args: argparse.Namespace) -> str | None:
    if args.text_file is None:
        return args.text
    try:
        return args.text_file.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise NpcfaceError(f"cannot read the text file {args.text_file}: {exc}") from None


def parse_emotion_arg(spec: str) -> tuple[str, float]:
    from ..core.motion.generator import parse_emotion

    return parse_emotion(spec)


def stream_line(client: SidecarClient, audio: Audio, text: str | None, *, session: str, fps: float,
                avatar_image: Path | None, size: int, emotion: tuple[str, float] | None = None,
                realtime: bool = False, motion: str | None = None) -> LineResult:
    """Open a session, speak one line through the protocol, close the session."""
    outputs = ["latents"]
    avatar = None
    if avatar_image is not None:
        if "frames" not in client.welcome.capabilities.get("outputs", []):
            raise NpcfaceError("this sidecar has no renderer: run without --avatar")
        avatar = client.upload_avatar(avatar_image)
        outputs.append("frames")
    client.open_session(session, outputs=outputs, channels=["arkit"], fps=fps, avatar=avatar,
                        frame_size=[size, size], frame_policy="every", frame_window=8,
                        **({"motion": motion} if motion is not None else {}))
    if emotion is not None:
        client.set_emotion(session, emotion[0], emotion[1], time_s=0.0)
    from ..core.types import SAMPLE_RATE

    result = client.say(session, audio.samples, SAMPLE_RATE, text=text, realtime=realtime)
    client.close_session(session)  # not on failure: the server frees a silent client's sessions anyway
    return result


def frames_for_video(result: LineResult) -> list[np.ndarray]:
    """One image per tick; a dropped frame repeats the previous one (the mp4 keeps the audio's timing)."""
    from .client import frame_pixels

    by_index = {header.index: frame_pixels(header, payload) for header, payload in result.frames}
    images, last = [], None
    for tick_index in range(result.line_end.ticks if result.line_end else 0):
        last = by_index.get(tick_index, last)
        if last is not None:
            images.append(last)
    return images


def save_line(result: LineResult, audio: Audio, stem: Path, fps: float) -> list[Path]:
    """Write stem.csv, stem.json and (when frames came back) stem.mp4; the paths written."""
    from ..core.formats.livelink import write_livelink_csv, write_motion_json
    from ..core.formats.video import write_mp4

    stem.parent.mkdir(parents=True, exist_ok=True)
    track = result.track(fps)
    written = [stem.with_suffix(".csv"), stem.with_suffix(".json")]
    write_livelink_csv(track, written[0])
    write_motion_json(track, written[1])
    if result.frames:
        written.append(stem.with_suffix(".mp4"))
        write_mp4(written[-1], frames_for_video(result), fps, audio=audio)
    return written


def run(args: argparse.Namespace) -> int:
    from ..core.audio.decode import load_audio

    if not 1.0 <= args.fps <= 120.0:
        raise ControlError(f"--fps must be 1-120, got {args.fps:g}")
    if not 64 <= args.size <= 1024:
        raise ControlError(f"--size must be 64-1024 pixels, got {args.size}")
    audio = load_audio(args.audio)
    text = read_text(args)
    emotion = parse_emotion_arg(args.emotion) if args.emotion else None
    stem = args.out if args.out is not None else Path(args.audio.stem)
    from .client import SidecarClient

    with SidecarClient(args.connect, timeout_s=args.timeout, name="npcface-say") as client:
        result = stream_line(client, audio, text, session="say", fps=args.fps, avatar_image=args.avatar,
                             size=args.size, emotion=emotion, realtime=args.realtime,
                             motion=args.motion)
    for path in save_line(result, audio, stem, args.fps):
        print(path)
    end = result.line_end
    print(f"{end.ticks} ticks, {end.frames_sent} frames ({end.frames_dropped} dropped), {end.duration:.2f} s of audio",
          file=sys.stderr)
    return 0
