"""Argument helpers shared by the `npcface` subcommands (checked early, before any slow work)."""
from __future__ import annotations

import argparse
from pathlib import Path

from typing import TYPE_CHECKING

from ..core.errors import FormatError, TextError

if TYPE_CHECKING:  # modules load when a command runs, so `npcface --help` stays fast
    from ..core.types import EmotionEvent


def check_output_file(path: str, suffixes: tuple[str, ...], what: str) -> Path:
    """The output path, if it has an accepted suffix and its folder exists; else FormatError."""
    out = Path(path)
    if out.suffix.lower() not in suffixes:
        raise FormatError(f"{what} must end in {' or '.join(suffixes)}, got {path!r}")
    if out.is_dir():
        raise FormatError(f"{what} {path!r} is a folder")
    if not out.parent.exists():
        raise FormatError(f"cannot write {path!r}: folder {str(out.parent)!r} does not exist")
    return out


def read_text(args: argparse.Namespace) -> str | None:
    """The line's text from ``--text`` or ``--text-file`` (UTF-8), or None."""
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
    from ..core.motion.emotion import parse_emotion_change

    return parse_emotion_change(spec, "--emotion-at")


def emotions_from_args(args: argparse.Namespace) -> list[EmotionEvent]:
    """``--emotion`` for the whole line, then each ``--emotion-at`` change."""
    from ..core.motion.generator import parse_emotion
    from ..core.types import EmotionEvent

    name, intensity = parse_emotion(args.emotion)
    return [EmotionEvent(0.0, name, intensity, ramp=0.0)] + [parse_emotion_at(s) for s in args.emotion_at]


def add_motion_argument(parser: argparse.ArgumentParser, files: bool = True) -> None:
    """``--motion``: which motion generator animates the line (core/motion/backends)."""
    choices = "rules, learned or a .safetensors weights file (from `npcface train`)" if files else "rules or learned"
    parser.add_argument("--motion", default=None, metavar="rules|learned" + ("|FILE" if files else ""),
                        help=f"motion generator: {choices} (default: the measured best, see README)")


def add_line_arguments(parser: argparse.ArgumentParser, audio_optional: bool = False) -> None:
    """The arguments every command that speaks a line takes: the audio, its text, emotions, language."""
    parser.add_argument("audio", nargs="?" if audio_optional else None,
                        help="the line's audio (WAV/FLAC/OGG/MP3, any rate and channel count)")
    text = parser.add_mutually_exclusive_group()
    text.add_argument("--text", help="what is said (English: enables forced alignment, the best lip sync)")
    text.add_argument("--text-file", help="a UTF-8 file holding what is said")
    parser.add_argument("--emotion", default="neutral",
                        help="emotion for the whole line, NAME[:INTENSITY], e.g. happy:0.8")
    parser.add_argument("--emotion-at", action="append", default=[], metavar="TIME=NAME[:INTENSITY]",
                        help="change emotion at TIME seconds, e.g. 1.5=angry:0.6 (repeatable)")
    parser.add_argument("--language", default="en-us",
                        help="language of the line; anything but en-us uses language-independent acoustic phones")
