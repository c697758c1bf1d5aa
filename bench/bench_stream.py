"""Streaming speed for lines without text, 20 ms chunks, one core: `rules` and `learned` motion
per real clip, and many learned streams stepped together (what the sidecar does each loop turn),
against the code at --before REV measured in the same run (a subprocess on that revision's tree);
then the CPU a line end costs when a loop turn's lines end together, against ending them one by one.

    .venv/bin/python bench/bench_stream.py --before REV [--clips 3] [--repeat 2] [--streams 32]

Real-time factor (RTF) = seconds of audio / CPU seconds of this process pushing it (decoded 16 kHz
samples, no decode): CPU time, not wall time, because "per core" is what the target asks and the
machine is shared (wall time there measures the other users); the run of --repeat with the least
CPU time. Its wall-clock RTF is printed beside it (equal to the CPU one on an idle machine). `rules` without text runs phone
recognition (pocketsphinx) on English clips and the acoustic fallback on the others; `learned`
without text runs no phone decoder. "N streams together": N learned streams each given the next
20 ms chunk in turn, stepped by step_streams (core/motion/stepping.py) where the code has it (one feature
batch for all), else by each stream's push_audio; RTF counts all N streams' audio.

--blas-threads N runs everything with N OpenBLAS threads (default 1, as `npcface serve` sets);
compare 1 and 2 on a busy machine to see why serve sets 1.
Real audio comes from ../shared/data/audio (or $NPCFACE_DATA/audio); without it the script says
so and exits 0.
"""
from __future__ import annotations

import argparse
import json
import os
import sys


def _blas_threads_from_argv() -> None:
    """OpenBLAS reads its thread count once, when numpy loads: set it before any import of numpy."""
    value = "1"
    if "--blas-threads" in sys.argv[:-1]:
        value = sys.argv[sys.argv.index("--blas-threads") + 1]
    os.environ["OPENBLAS_NUM_THREADS"] = value


_blas_threads_from_argv()

import time  # noqa: E402
from pathlib import Path  # noqa: E402

from _common import add_revision_options, data_dir, run_at_revision, use_code_from  # noqa: E402

CHUNK = 320  # 20 ms at 16 kHz
TARGET_RTF = 20.0
ENGLISH = ("a15", "a16", "a18")


def chosen_clips(folder: Path, count: int) -> list[Path]:
    """English clips first (they run the phone recogniser), then the others, by name."""
    files = sorted(folder.glob("a*.wav"))
    english = [f for f in files if f.name[:3] in ENGLISH]
    return (english + [f for f in files if f not in english])[:count]


def stream_seconds(generator, samples) -> tuple[float, float]:
    """(CPU, wall) seconds to stream ``samples`` in 20 ms chunks through one new stream."""
    stream = generator.stream(None)
    started, wall = time.process_time(), time.perf_counter()
    for position in range(0, len(samples), CHUNK):
        stream.push_audio(samples[position:position + CHUNK])
    stream.finish()
    return time.process_time() - started, time.perf_counter() - wall


def together_seconds(generator, samples, count: int) -> tuple[float, float]:
    """(CPU, wall) seconds to stream ``samples`` through ``count`` streams, chunk by chunk in turn."""
    from npcface.core.motion import generator as motion

    streams = [generator.stream(None) for _ in range(count)]
    step_streams = getattr(motion, "step_streams", None)  # older code: push_audio each
    started, wall = time.process_time(), time.perf_counter()
    for position in range(0, len(samples), CHUNK):
        chunk = samples[position:position + CHUNK]
        if step_streams is None:
            for stream in streams:
                stream.push_audio(chunk)
        else:
            for stream in streams:
                stream.append_audio(chunk)
            step_streams(streams)
    for stream in streams:
        stream.finish()
    return time.process_time() - started, time.perf_counter() - wall


def line_end_ms(generator, samples, count: int, together: bool) -> float:
    """CPU ms per line end: ``count`` streams stepped through the same line chunk by chunk, then
    ended together (finish_streams, what the sidecar does with a loop turn's end_lines) or one by
    one (each stream's finish, what it did before)."""
    from npcface.core.motion.stepping import finish_streams, step_streams

    streams = [generator.stream(None) for _ in range(count)]
    for position in range(0, len(samples), CHUNK):
        for stream in streams:
            stream.append_audio(samples[position:position + CHUNK])
        step_streams(streams)
    started = time.process_time()
    if together:
        finish_streams(streams)
    else:
        for stream in streams:
            stream.finish()
    return 1000 * (time.process_time() - started) / count


def measure_line_ends(clip: Path, repeat: int, count: int) -> dict[str, float]:
    """{"together", "one by one"}: line_end_ms of each, fastest of ``repeat`` (learned, no text)."""
    from npcface.core.audio.decode import load_audio
    from npcface.core.motion.learned import LearnedMotionGenerator
    from npcface.core.types import Controls

    generator, samples = LearnedMotionGenerator(Controls(fps=30.0)), load_audio(clip).samples[:16000 * 2]
    return {name: min(line_end_ms(generator, samples, count, together) for _ in range(repeat))
            for name, together in (("together", True), ("one by one", False))}


def measure(clips: list[Path], repeat: int, streams: int) -> dict:
    """{row name: {"audio_s", "compute_s", "wall_s"}}, the run of ``repeat`` with the least CPU time each."""
    import torch

    from npcface.core.audio.decode import load_audio
    from npcface.core.motion.generator import MotionGenerator
    from npcface.core.motion.learned import LearnedMotionGenerator
    from npcface.core.types import Controls

    torch.set_num_threads(1)
    rows: dict[str, dict[str, float]] = {}
    learned_default = LearnedMotionGenerator(Controls())
    for clip in clips:
        audio = load_audio(clip)
        language = "en-us" if clip.name[:3] in ENGLISH else "de"  # any other code takes the acoustic fallback ("other" is refused)
        generators = {"rules": MotionGenerator(Controls(language=language)),
                      "learned": LearnedMotionGenerator(Controls(language=language))}
        for name, generator in generators.items():
            stream_seconds(generator, audio.samples[:16000])  # loads what the first push loads
            best = min(stream_seconds(generator, audio.samples) for _ in range(repeat))
            rows[f"{name} {clip.stem[:3]}"] = {"audio_s": audio.duration, "compute_s": best[0], "wall_s": best[1]}
    audio = load_audio(clips[0])
    samples = audio.samples[:16000 * 5]
    best = min(together_seconds(learned_default, samples, streams) for _ in range(repeat))
    rows[f"learned, {streams} streams together"] = {"audio_s": streams * len(samples) / 16000, "compute_s": best[0],
                                                    "wall_s": best[1]}
    return rows


def _rtf(row: dict, key: str) -> float:
    return row["audio_s"] / row[key] if key in row else float("nan")  # older runs: CPU time only


def print_table(rows: dict, before: dict | None, before_name: str) -> None:
    print(f"{'':34s} {'audio s':>8s} {'RTF now':>8s}" + (f" {'RTF before':>11s} {'speed-up':>8s}" if before else "")
          + f" {'wall RTF now':>13s}" + (f" {'before':>7s}" if before else ""))
    for name, row in rows.items():
        rtf = _rtf(row, "compute_s")
        line = f"{name:34s} {row['audio_s']:8.1f} {rtf:7.1f}x"
        if before and name in before:
            old = _rtf(before[name], "compute_s")
            line += f" {old:10.1f}x {rtf / old:7.2f}x"
        line += f" {_rtf(row, 'wall_s'):12.1f}x"
        if before and name in before:
            line += f" {_rtf(before[name], 'wall_s'):6.1f}x"
        print(line)
    for mode in ("rules", "learned"):
        mine = [row for name, row in rows.items() if name.split()[0] == mode and "together" not in name]
        rtf = sum(r["audio_s"] for r in mine) / sum(r["compute_s"] for r in mine)
        summary = f"{mode}, all clips: {rtf:.1f}x real time on one core (CPU time)"
        if before:
            old = [before[name] for name in rows if name.split()[0] == mode and "together" not in name and name in before]
            if old:
                old_rtf = sum(r["audio_s"] for r in old) / sum(r["compute_s"] for r in old)
                summary += f" (before {before_name}: {old_rtf:.1f}x, speed-up {rtf / old_rtf:.2f}x)"
        print(summary + f"; target {TARGET_RTF:g}x: {'meets' if rtf >= TARGET_RTF else 'MISSES'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the shared data folder (default ../shared/data)")
    parser.add_argument("--clips", type=int, default=3, help="real clips to stream (English first)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement; the fastest counts")
    parser.add_argument("--streams", type=int, default=32, help="learned streams stepped together (the issue's figure: 32)")
    parser.add_argument("--blas-threads", type=int, default=1, help="OpenBLAS threads (default 1)")
    parser.add_argument("--before", metavar="REV", help="also measure the code at this git revision")
    add_revision_options(parser)  # --json, --code: what --before's run of REV is given
    args = parser.parse_args()
    clips = chosen_clips(data_dir(args.data) / "audio", args.clips)
    if not clips:
        print(f"no real audio in {data_dir(args.data) / 'audio'}: nothing to measure (set NPCFACE_DATA or --data)")
        return 0
    use_code_from(args.code)
    options = ["--clips", str(args.clips), "--repeat", str(args.repeat), "--streams", str(args.streams),
               "--blas-threads", str(args.blas_threads)] + (["--data", args.data] if args.data else [])
    if args.json:
        print(json.dumps(measure(clips, args.repeat, args.streams)))
        return 0
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; "
          f"{args.blas_threads} OpenBLAS thread(s), 1 torch thread, 20 ms chunks, fastest of {args.repeat}")
    before = json.loads(run_at_revision(args.before, __file__, options)) if args.before else None
    rows = measure(clips, args.repeat, args.streams)
    print(f"load average {os.getloadavg()[0]:.1f} at the end\n")
    print_table(rows, before, args.before or "")
    ends = measure_line_ends(clips[0], max(args.repeat, 3), args.streams)
    print(f"\n{args.streams} learned lines (30 fps) ending in one loop turn: {ends['together']:.2f} ms of CPU per line "
          f"ended together, {ends['one by one']:.2f} ms one by one (baseline), {ends['one by one'] / ends['together']:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
