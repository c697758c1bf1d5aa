"""``npcface animate``: a dialogue line (audio + optional text) -> Live Link CSV or motion JSON.

    npcface animate line.wav --text "Well met." --emotion happy:0.8 --emotion-at 1.5=angry:0.6 \
        --fps 60 --seed 3 -o line.csv --plot line.png
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path

from ..core.errors import ControlError, FormatError, NpcfaceError, TextError
from ..core.types import Controls, EmotionEvent

OUTPUT_SUFFIXES = (".csv", ".json")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "animate", help="audio (+ text, emotions) -> face motion as Live Link CSV or JSON",
        description="Animate a dialogue line: head pose, gaze, blinks and 52 ARKit blendshapes per frame.")
    parser.add_argument("audio", help="the line's audio (WAV/FLAC/OGG/MP3, any rate and channel count)")
    text = parser.add_mutually_exclusive_group()
    text.add_argument("--text", help="what is said (English: enables forced alignment, the best lip sync)")
    text.add_argument("--text-file", help="a UTF-8 file holding what is said")
    parser.add_argument("--emotion", default="neutral", help="emotion for the whole line, NAME[:INTENSITY], e.g. happy:0.8")
    parser.add_argument("--emotion-at", action="append", default=[], metavar="TIME=NAME[:INTENSITY]",
                        help="change emotion at TIME seconds, e.g. 1.5=angry:0.6 (repeatable)")
    parser.add_argument("--language", default="en-us", help="language of the line; anything but en-us uses acoustic phones")
    parser.add_argument("--fps", type=float, default=60.0, help="frames per second (default 60)")
    parser.add_argument("--seed", type=int, default=0, help="random seed for head motion, blinks and saccades")
    parser.add_argument("--motion-amplitude", type=float, default=1.0, help="head motion scale (0 freezes the head)")
    parser.add_argument("-o", "--output", required=True, help="output file: .csv (Live Link Face) or .json")
    parser.add_argument("--plot", help="also write a PNG of the main curves over the waveform")
    parser.set_defaults(run=run)


def _check_output(path: str, suffixes: tuple[str, ...], what: str) -> Path:
    out = Path(path)
    if out.suffix.lower() not in suffixes:
        raise FormatError(f"{what} must end in {' or '.join(suffixes)}, got {path!r}")
    if out.is_dir():
        raise FormatError(f"{what} {path!r} is a folder")
    if not out.parent.exists():
        raise FormatError(f"cannot write {path!r}: folder {str(out.parent)!r} does not exist")
    return out


def _read_text(args: argparse.Namespace) -> str | None:
    if args.text_file is None:
        return args.text
    try:
        return Path(args.text_file).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TextError(f"text file not found: {args.text_file}") from None
    except UnicodeDecodeError:
        raise TextError(f"text file is not UTF-8 text: {args.text_file}") from None
    except OSError as error:
        raise TextError(f"cannot read text file {args.text_file}: {error.strerror or error}") from None


def parse_emotion_at(spec: str) -> EmotionEvent:
    """``"1.5=angry:0.6"`` -> EmotionEvent(1.5, "angry", 0.6)."""
    from ..core.motion import parse_emotion

    when, sep, emotion = spec.partition("=")
    if not sep:
        raise ControlError(f"--emotion-at needs TIME=NAME[:INTENSITY], got {spec!r}")
    try:
        time = float(when)
    except ValueError:
        raise ControlError(f"--emotion-at time must be seconds, got {when!r}") from None
    if not math.isfinite(time) or time < 0:
        raise ControlError(f"--emotion-at time must be >= 0 seconds, got {when!r}")
    name, intensity = parse_emotion(emotion)
    return EmotionEvent(time=time, emotion=name, intensity=intensity)


def run(args: argparse.Namespace) -> int:
    from ..core.audio import load_audio
    from ..core.livelink import write_livelink_csv, write_motion_json
    from ..core.motion import MotionGenerator, parse_emotion

    controls = Controls(fps=args.fps, seed=args.seed, motion_amplitude=args.motion_amplitude, language=args.language)
    generator = MotionGenerator(controls)  # validates fps etc. before any slow work
    name, intensity = parse_emotion(args.emotion)
    emotions = [EmotionEvent(0.0, name, intensity, ramp=0.0)] + [parse_emotion_at(s) for s in args.emotion_at]
    output = _check_output(args.output, OUTPUT_SUFFIXES, "output")
    plot = _check_output(args.plot, (".png",), "plot") if args.plot else None
    text = _read_text(args)
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
        from ..core.plot import plot_motion

        plot_motion(track, audio, plot, title=Path(args.audio).name)
    phones = track.phones
    summary = f"{len(track)} frames at {controls.fps:g} fps ({audio.duration:.2f} s)"
    if phones is not None:
        summary += f", phones: {phones.source}"
        if phones.missing_words:
            summary += f" (guessed: {', '.join(phones.missing_words)})"
    print(f"wrote {output}: {summary}")
    return 0
