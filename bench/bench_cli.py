"""Whole-process speed of the CLI, start to exit, as a user runs it.

    .venv/bin/python bench/bench_cli.py [--runs 3] [--seconds 20] [--before REV]

- `npcface render` of a SECONDS-long line (the fixture lines joined, 22.05 kHz like a game's
  dialogue export) at 512x512, 25 fps, to mp4 with audio: wall time as a ratio to the line's
  duration (target <= 0.5x for a 20 s line);
- `npcface --help` (target < 1 s), beside `python -c pass` (the interpreter's own start-up) as the
  floor measured in the same run;
- with --before REV, the same render with the code at git revision REV, in the same run.
Medians over --runs runs. Prints a table; the numbers are for this machine at this moment, the
ratios are what compare.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from _common import REPO

FIXTURES = REPO / "fixtures"
LINES = ("line_greeting", "line_bilabials", "line_fricatives", "line_names", "line_vowels")
RATE = 22050


def make_line(path: Path, seconds: float) -> float:
    """The fixture lines joined (with 0.3 s pauses) and repeated to ``seconds``; its duration."""
    from npcface.core.audio.decode import resample_to_16k  # noqa: F401  (the package must import)

    parts = []
    for name in LINES:
        samples, rate = sf.read(FIXTURES / f"{name}.wav", dtype="float32")
        if rate != RATE:  # espeak writes 22.05 kHz; keep the bench honest if that changes
            raise SystemExit(f"{name}.wav is {rate} Hz, expected {RATE}")
        parts += [samples, np.zeros(int(0.3 * RATE), dtype=np.float32)]
    line = np.concatenate(parts)
    line = np.tile(line, int(np.ceil(seconds * RATE / len(line))))[: int(seconds * RATE)]
    sf.write(path, line, RATE)
    return len(line) / RATE


def timed_run(command: list[str], runs: int) -> float:
    """Median wall seconds of ``command`` (which must succeed)."""
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        result = subprocess.run(command, capture_output=True, text=True)
        seconds.append(time.perf_counter() - started)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command[:4])} ... failed:\n{result.stderr}")
    return statistics.median(seconds)


def cli_at(tree: str | None) -> list[str]:
    """The command that runs `npcface` with this checkout's code, or with the code in ``tree``."""
    if tree is None:
        return [sys.executable, "-m", "npcface.bridge.cli"]
    shim = ("import sys, types; p = types.ModuleType('npcface'); p.__path__ = [%r]; p.__version__ = 'before'; "
            "sys.modules['npcface'] = p; from npcface.bridge.cli import main; sys.exit(main(sys.argv[1:]))") % tree
    return [sys.executable, "-c", shim]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--before", metavar="REV", help="also time the render with the code at git revision REV")
    args = parser.parse_args()
    rows: list[tuple[str, float, str]] = []
    with tempfile.TemporaryDirectory(prefix="npcface-bench-cli-") as work:
        work = Path(work)
        wav = work / "line.wav"
        duration = make_line(wav, args.seconds)
        render = ["render", str(FIXTURES / "portrait_astronaut.png"), str(wav), "--size", "512", "--fps", "25",
                  "-o", str(work / "line.mp4")]
        floor = timed_run([sys.executable, "-c", "pass"], args.runs)
        rows.append(("python -c pass (floor)", floor, ""))
        help_s = timed_run(cli_at(None) + ["--help"], args.runs)
        rows.append(("npcface --help", help_s, f"target < 1 s: {'met' if help_s < 1.0 else 'NOT met'}"))
        if args.before:
            tree = work / "before"
            tree.mkdir()
            archive = subprocess.run(["git", "-C", str(REPO), "archive", args.before, "core", "bridge", "models"],
                                     check=True, capture_output=True).stdout
            subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
            before = timed_run(cli_at(str(tree)) + render, args.runs)
            rows.append((f"render {duration:.0f} s line, code at {args.before}", before,
                         f"{before / duration:.2f}x the line"))
        now = timed_run(cli_at(None) + render, args.runs)
        rows.append((f"render {duration:.0f} s line, 512x512 25 fps, mp4", now,
                     f"{now / duration:.2f}x the line; target <= 0.5x: {'met' if now / duration <= 0.5 else 'NOT met'}"))
        frames = int(round(duration * 25))
        rows.append(("  per frame, whole process", now / frames * 1000, "ms"))
    print(f"{'what':44s} {'seconds':>8s}  note")
    for what, seconds, note in rows:
        print(f"{what:44s} {seconds:8.2f}  {note}")
    print(f"(audio: {duration:.2f} s at {RATE} Hz; medians of {args.runs} runs; {len(LINES)} fixture lines joined)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
