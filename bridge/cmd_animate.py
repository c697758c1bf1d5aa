"""``npcface animate``: a dialogue line (audio + optional text) -> Live Link CSV or motion JSON.

    npcface animate line.wav --text "Well met." --emotion happy:0.8 --emotion-at 1.5=angry:0.6 \
        --fps 60 --seed 3 -o line.csv --plot line.png
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..core.errors import NpcfaceError
from .cli_args import add_line_arguments, add_motion_argument, check_output_file, emotions_from_args, read_text

OUTPUT_SUFFIXES = (".csv", ".json")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "animate", help="audio (+ text, emotions) -> face motion as Live Link CSV or JSON",
        description="Animate a dialogue line: head pose, gaze, blinks and 52 ARKit blendshapes per frame.")
    add_line_arguments(parser)
    parser.add_argument("--fps", type=float, default=60.0, help="frames per second (default 60)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for head motion, blinks and saccades")
    parser.add_argument("--motion-amplitude", type=float, default=1.0, help="head motion scale (0 freezes the head)")
    add_motion_argument(parser)
    parser.add_argument("-o", "--output", required=True, help="output file: .csv (Live Link Face) or .json")
    parser.add_argument("--plot", help="also write a PNG of the main curves over the waveform")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..core.audio.decode import load_audio
    from ..core.formats.livelink import write_livelink_csv, write_motion_json
    from ..core.motion.backends import make_generator
    from ..core.types import Controls

    controls = Controls(fps=args.fps, seed=args.seed, motion_amplitude=args.motion_amplitude, language=args.language)
    generator = make_generator(args.motion, controls)  # validates fps etc. before any slow work
    emotions = emotions_from_args(args)
    output = check_output_file(args.output, OUTPUT_SUFFIXES, "output")
    plot = check_output_file(args.plot, (".png",), "plot") if args.plot else None
    text = read_text(args)
    audio = load_audio(args.audio)
    track = generator.animate(audio, text=text, emotions=emotions)
    try:
        if output.suffix.lower() == ".csv":
            write_livelink_csv(track, output)
        else:
            write_motion_json(track, output)
    except OSError as error:
        raise NpcfaceError(f"cannot write {output}: {error.strerror or error}") from None
    if plot is not None:
        from ..core.formats.plot import plot_motion

        plot_motion(track, audio, plot, title=Path(args.audio).name)
    phones = track.phones
    summary = f"{len(track)} frames at {controls.fps:g} fps ({audio.duration:.2f} s)"
    if phones is not None:
        summary += f", phones: {phones.source}"
        if phones.missing_words:
            summary += f" (guessed: {', '.join(phones.missing_words)})"
    print(f"wrote {output}: {summary}")
    return 0
