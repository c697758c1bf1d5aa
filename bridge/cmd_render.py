"""``npcface render``: a portrait and a dialogue line -> a video of the portrait speaking it.

    npcface render portrait.png line.wav --text "Well met." --emotion happy:0.6 \
        --size 512 --fps 30 -o line.mp4 --sheet line_sheet.png
    npcface render portrait.rig line.wav -o frames/          # PNG sequence (RGBA with --cutout)
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from ..core.errors import ControlError, FormatError, NpcfaceError
from ..core.types import Controls, EmotionEvent
from .cli_args import add_line_arguments, check_output_file

SHEET_FRAMES = 12


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "render", help="portrait + audio (+ text, emotion) -> mp4 or PNG frames of the portrait speaking",
        description="Render a talking portrait: lip sync, head motion, blinks, gaze and emotion.")
    parser.add_argument("portrait", help="a picture with a face, or a rig file from `npcface rig`")
    add_line_arguments(parser)
    parser.add_argument("--size", default="512", help="output size: N (square) or WIDTHxHEIGHT (default 512)")
    parser.add_argument("--fps", type=float, default=30.0, help="frames per second (default 30)")
    parser.add_argument("--motion", default="rules", metavar="rules|learned|FILE",
                        help="motion backend: rules (default), learned (the shipped model) or a .safetensors "
                             "model from `npcface train`")
    parser.add_argument("--seed", type=int, default=0, help="random seed for head motion and blinks")
    parser.add_argument("--face", type=int, default=None, help="which face when there are several (0 = largest)")
    parser.add_argument("--framing", choices=("picture", "head"), default="picture",
                        help="show the whole picture (default) or a head-and-shoulders crop")
    parser.add_argument("--cutout", action="store_true", help="transparent background (PNG frames keep alpha)")
    parser.add_argument("-o", "--output", required=True, help="output: a .mp4 file, or a folder for PNG frames")
    parser.add_argument("--sheet", help="also write a contact-sheet PNG of frames across the line")
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
    from ..core.rig import Rig, build_rig, load_image

    if Path(path).suffix.lower() == ".rig":
        if face is not None:
            raise ControlError("--face applies to pictures; a rig file already holds its face")
        return Rig.load(path)
    return build_rig(load_image(path), face_index=face, name=path)


class Progress:
    """A one-line progress bar on stderr when it is a terminal; silent otherwise."""

    def __init__(self, total: int, label: str, stream=None):
        self.total, self.label = max(total, 1), label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.started = time.perf_counter()

    def update(self, done: int) -> None:
        if not self.enabled:
            return
        filled = int(30 * done / self.total)
        rate = done / max(time.perf_counter() - self.started, 1e-6)
        self.stream.write(f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {done}/{self.total} "
                          f"frames, {rate:.0f} fps ")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def render_frames(renderer, track, progress: Progress | None = None,
                  keep: Sequence[int] = ()) -> tuple[Iterator[np.ndarray], dict[int, np.ndarray]]:
    """Frames of a MotionTrack as RGBA arrays (a generator), and a dict that fills with the frames
    whose indices are in ``keep`` as they are rendered."""
    kept: dict[int, np.ndarray] = {}
    wanted = set(keep)

    def frames() -> Iterator[np.ndarray]:
        for index in range(len(track)):
            rgba = renderer.render(track.frame(index)).rgba
            if index in wanted:
                kept[index] = rgba
            if progress is not None:
                progress.update(index + 1)
            yield rgba

    return frames(), kept


def run(args: argparse.Namespace) -> int:
    from .cli_args import emotions_from_args, read_text

    emotions = emotions_from_args(args)
    summary = render_line(args.portrait, args.audio, args.output, text=read_text(args), emotions=emotions,
                          size=parse_size(args.size), controls=Controls(fps=args.fps, seed=args.seed,
                                                                        language=args.language),
                          framing=args.framing, cutout=args.cutout, face=args.face, sheet=args.sheet,
                          motion=args.motion)
    print(summary)
    return 0


def render_line(portrait: str, audio_path: str, output: str, *, text: str | None = None,
                emotions: Sequence[EmotionEvent] = (), size: tuple[int, int] = (512, 512),
                controls: Controls = Controls(fps=30.0), framing: str = "picture", cutout: bool = False,
                face: int | None = None, sheet: str | None = None, motion: str = "rules") -> str:
    """Portrait (picture or .rig) + a line's audio -> an mp4 with the line's audio (or a folder of PNG
    frames), and optionally a contact sheet. Returns a one-line summary. (``npcface demo`` uses it.)"""
    from ..core.audio import load_audio
    from ..core.contact_sheet import save_contact_sheet
    from ..core.motion_backends import make_generator
    from ..core.render import Renderer
    from ..core.video_io import write_mp4, write_png_sequence

    generator = make_generator(motion, controls)  # checks fps and the other controls first
    kind = output_kind(output)
    sheet_path = check_output_file(sheet, (".png",), "--sheet") if sheet else None
    renderer = Renderer(load_portrait(portrait, face), size, cutout=cutout, framing=framing)
    audio = load_audio(audio_path)
    track = generator.animate(audio, text=text, emotions=emotions)
    keep = np.unique(np.linspace(0, len(track) - 1, min(SHEET_FRAMES, len(track))).round().astype(int))
    progress = Progress(len(track), "render")
    frames, kept = render_frames(renderer, track, progress, keep if sheet_path else ())
    started = time.perf_counter()
    try:
        if kind == "mp4":
            write_mp4(output, frames, controls.fps, audio=audio)
        else:
            write_png_sequence(output, frames)
    except OSError as error:
        raise NpcfaceError(f"cannot write {output}: {error.strerror or error}") from None
    finally:
        progress.close()
    seconds = time.perf_counter() - started
    if sheet_path is not None:
        save_contact_sheet(sheet_path, [kept[i] for i in keep], [f"{track.times[i]:.2f} s" for i in keep])
    return (f"wrote {output}: {len(track)} frames {size[0]}x{size[1]} at {controls.fps:g} fps "
            f"({audio.duration:.2f} s of audio, rendered and encoded in {seconds:.1f} s)")
