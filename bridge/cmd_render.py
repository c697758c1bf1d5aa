"""``npcface render``: a portrait and a dialogue line -> a video of the portrait speaking it.

    npcface render portrait.png line.wav --text "Well met." --emotion happy:0.6 \
        --size 512 --fps 30 -o line.mp4 --sheet line_sheet.png
    npcface render portrait.rig line.wav -o frames/          # PNG sequence (RGBA with --cutout)
    npcface render portrait.png --drive take.mp4 -o driven.mp4    # a performance drives the portrait
"""
from __future__ import annotations

import argparse
import os
import time
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..core.errors import ControlError, FormatError
from .cli_args import add_line_arguments, add_motion_argument, check_output_file
from .progress import Progress

if TYPE_CHECKING:  # heavy modules load when the command runs: `npcface --help` stays fast
    from ..core.types import Controls, EmotionEvent

SHEET_FRAMES = 12


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "render", help="portrait + audio (+ text, emotion) -> mp4 or PNG frames of the portrait speaking",
        description="Render a talking portrait: lip sync, head motion, blinks, gaze and emotion.")
    parser.add_argument("portrait", help="a picture with a face, or a rig file from `npcface rig`")
    add_line_arguments(parser, audio_optional=True)
    parser.add_argument("--drive", help="drive the portrait from a performance instead of audio: a Live Link "
                        "Face CSV, an npcface motion JSON, or a talking video (captured on the fly)")
    parser.add_argument("--audio", dest="drive_audio", help="with --drive: the sound to mux (replaces a video's own)")
    parser.add_argument("--size", default="512", help="output size: N (square) or WIDTHxHEIGHT (default 512)")
    parser.add_argument("--fps", type=float, default=30.0, help="frames per second (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for head motion and blinks")
    parser.add_argument("--face", type=int, default=None, help="which face when there are several (0 = largest)")
    parser.add_argument("--framing", choices=("picture", "head"), default="picture",
                        help="show the whole picture (default) or a head-and-shoulders crop")
    parser.add_argument("--cutout", action="store_true", help="transparent background (PNG frames keep alpha)")
    parser.add_argument("-o", "--output", required=True, help="output: a .mp4 file, or a folder for PNG frames")
    parser.add_argument("--sheet", help="also write a contact-sheet PNG of frames across the line")
    parser.add_argument("--sign-key", help="PEM private key that signs the mp4's C2PA content credentials "
                        "(or $NPCFACE_SIGN_KEY; without one, a self-made test key that proves nothing)")
    parser.add_argument("--sign-cert", help="PEM certificate chain for --sign-key (or $NPCFACE_SIGN_CERT)")
    add_motion_argument(parser)
    parser.set_defaults(run=run)


def parse_size(text: str) -> tuple[int, int]:
    parts = str(text).lower().split("x")
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise ControlError(f"--size must be N or WIDTHxHEIGHT, got {text!r}") from None
    if len(values) == 1:
        values = values * 2
    if len(values) != 2:
        raise ControlError(f"--size must be N or WIDTHxHEIGHT, got {text!r}")
    return values[0], values[1]


def output_kind(path: str) -> str:
    """"mp4" or "frames" (a folder: existing, ending in a slash, or without a suffix)."""
    out = Path(path)
    if out.suffix.lower() == ".mp4" and not out.is_dir():
        check_output_file(path, (".mp4",), "video output")
        return "mp4"
    if out.is_dir() or path.endswith(("/", "\\")) or not out.suffix:
        if out.exists() and not out.is_dir():
            raise FormatError(f"{path!r} exists and is not a folder")
        if not out.parent.is_dir():
            raise FormatError(f"cannot write {path!r}: folder {str(out.parent)!r} does not exist")
        return "frames"
    raise FormatError(f"output must be a .mp4 file or a folder for PNG frames, got {path!r}")


def load_portrait(path: str, face: int | None):
    """A rig file, or a picture rigged on the fly."""
    from ..core.render.rig import Rig, rig_from_file

    if Path(path).suffix.lower() == ".rig":
        if face is not None:
            raise ControlError("--face applies to pictures; a rig file already holds its face")
        return Rig.load(path)
    return rig_from_file(path, face_index=face, name=path)


def run(args: argparse.Namespace) -> int:
    from ..core.provenance.credentials import load_credentials
    from ..core.types import Controls
    from .cli_args import emotions_from_args, read_text

    emotions = emotions_from_args(args)
    _check_sources(args)
    summary = render_line(args.portrait, args.audio, args.output, text=read_text(args), emotions=emotions,
                          size=parse_size(args.size), controls=Controls(fps=args.fps, seed=args.seed,
                                                                        language=args.language),
                          framing=args.framing, cutout=args.cutout, face=args.face, sheet=args.sheet,
                          motion=args.motion, drive=args.drive, drive_audio=args.drive_audio,
                          credentials=load_credentials(args.sign_key, args.sign_cert))
    print(summary)
    return 0



def _check_sources(args: argparse.Namespace) -> None:
    """Audio-driven lines need their audio; --drive takes carry their own motion (one sound at most)."""
    if args.drive is None:
        if args.drive_audio is not None:
            raise ControlError("--audio goes with --drive; without it, give the line's audio as the second argument")
        if args.audio is None:
            raise ControlError("give the line's audio, or --drive TAKE (a Live Link CSV, motion JSON or video)")
        return
    if args.audio is not None and args.drive_audio is not None:
        raise ControlError(f"two sounds for one take: {args.audio!r} and --audio {args.drive_audio!r}; give one")
    if args.audio is not None:
        args.drive_audio, args.audio = args.audio, None
    for flag, given in (("--text", args.text), ("--text-file", args.text_file), ("--emotion-at", args.emotion_at),
                        ("--emotion", args.emotion != "neutral")):
        if given:
            raise ControlError(f"{flag} applies to lines animated from audio, not to a --drive take")


def render_line(portrait: str, audio_path: str | None, output: str, *, text: str | None = None,
                emotions: Sequence[EmotionEvent] = (), size: tuple[int, int] = (512, 512),
                controls: Controls | None = None, framing: str = "picture", cutout: bool = False,
                face: int | None = None, sheet: str | None = None, motion: str | None = None,
                drive: str | None = None, drive_audio: str | None = None, credentials=None) -> str:
    """Portrait (picture or .rig) + a line's audio -> an mp4 with the line's audio (or a folder of PNG
    frames), and optionally a contact sheet. Returns a one-line summary. (``npcface demo`` uses it.)"""
    import numpy as np

    from ..core.audio.decode import load_audio
    from ..core.render.contact_sheet import save_contact_sheet
    from ..core.motion.backends import make_generator
    from ..core.render.to_file import line_id_of, render_track_to_file
    from ..core.types import Controls

    controls = controls if controls is not None else Controls(fps=30.0)
    generator = make_generator(motion, controls)  # checks fps and the other controls first
    kind = output_kind(output)
    sheet_path = check_output_file(sheet, (".png",), "--sheet") if sheet else None
    started = time.perf_counter()
    # Rig the portrait (MediaPipe) while the line is animated (phonetics): both mostly native code.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="npcface-rig") as pool:
        rigging = pool.submit(load_portrait, portrait, face)
        if drive is not None:  # a performance drives the portrait (core/capture/drive), its sound muxed if any
            from ..core.capture.drive import driven_line

            line = driven_line(drive, drive_audio, fps=controls.fps)
            track, audio = line.track, line.audio
        else:
            audio = load_audio(audio_path)
            track = generator.animate(audio, text=text, emotions=emotions)
        rig = rigging.result()
    keep = np.unique(np.linspace(0, len(track) - 1, min(SHEET_FRAMES, len(track))).round().astype(int))
    progress = Progress(len(track), "render")
    # Frames render on two threads while this one encodes: a 2-core machine keeps both cores busy.
    try:
        kept = render_track_to_file(rig, track, audio, output, kind, size=size, framing=framing, cutout=cutout,
                                    line_id=line_id_of(audio, text, drive), credentials=credentials,
                                    keep=keep if sheet_path else (),
                                    on_frame=lambda n: progress.update(n, f"{progress.rate(n):.0f} fps"),
                                    workers=max(2, min(4, os.cpu_count() or 1)))
    finally:
        progress.close()
    seconds = time.perf_counter() - started
    if sheet_path is not None:
        save_contact_sheet(sheet_path, [kept[i] for i in keep], [f"{track.times[i]:.2f} s" for i in keep])
    return (f"wrote {output}: {len(track)} frames {size[0]}x{size[1]} at {controls.fps:g} fps "
            f"({f'{audio.duration:.2f} s of audio' if audio else 'no sound'}, animated, rendered and encoded in {seconds:.1f} s)")
