"""Streams with live phones, stepped together as the sidecar does: CPU per stream-second and
where it goes, per real clip with its exact transcript, against the code at --before REV
measured in the same run (a subprocess on that revision's tree).

    .venv/bin/python bench/bench_live_phones.py --before REV [--clips 3] [--streams 8] [--repeat 2]

Per clip (../shared/data/speech: real read speech with its transcript) and motion: N streams
(rules with the text, rules without, learned with the text) each given the next 20 ms chunk in
turn, then one core/motion/stepping.step_streams for all, as the server's loop does when
every session's chunk is queued. CPU time of this process (the machine is shared; wall time
measures the other users), the run of --repeat with the least. Where it goes: the share spent
in pocketsphinx (the decoder fed at every push: phonetics/sphinx._SphinxRun.push), in reading
the live phones at pushes that make frames due (phonetics/timeline.PhoneStream.phones), and
the rest (features, cues, each stream's layers, the head and face, in the batch).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import time  # noqa: E402
from pathlib import Path  # noqa: E402

from _common import add_revision_options, data_dir, run_at_revision, use_code_from  # noqa: E402

CHUNK = 320  # 20 ms at 16 kHz
MODES = ("rules, text", "rules, no text", "learned, text")


class CpuMeter:
    """CPU seconds spent inside a method, patched onto its class for the measurement."""

    def __init__(self, owner, name: str):
        self.owner, self.name, self.seconds = owner, name, 0.0
        self.original = getattr(owner, name)
        meter = self

        def timed(*args, **kwargs):
            started = time.process_time()
            try:
                return meter.original(*args, **kwargs)
            finally:
                meter.seconds += time.process_time() - started

        setattr(owner, name, timed)

    def restore(self) -> None:
        setattr(self.owner, self.name, self.original)


def together_seconds(generator, samples, text: str | None, count: int) -> dict[str, float]:
    """CPU seconds to stream ``samples`` through ``count`` streams stepped together, and the parts."""
    from npcface.core.motion import generator as motion
    from npcface.core.phonetics import sphinx, timeline

    streams = [generator.stream(text) for _ in range(count)]  # decoders load here, before the clock
    decoder, phones = CpuMeter(sphinx._SphinxRun, "push"), CpuMeter(timeline.PhoneStream, "phones")
    try:
        started = time.process_time()
        for position in range(0, len(samples), CHUNK):
            chunk = samples[position:position + CHUNK]
            for stream in streams:
                stream.append_audio(chunk)
            motion.step_streams(streams)
        for stream in streams:
            stream.finish()
        total = time.process_time() - started
    finally:
        decoder.restore()
        phones.restore()
    return {"total_s": total, "decoder_s": decoder.seconds, "phones_s": phones.seconds}


def measure(clips: list[Path], repeat: int, streams: int) -> dict:
    """{row name: {"audio_s", "total_s", "decoder_s", "phones_s"}}, the run of ``repeat`` with the least CPU."""
    import torch

    from npcface.core.audio.decode import load_audio
    from npcface.core.motion.generator import MotionGenerator
    from npcface.core.motion.learned import LearnedMotionGenerator
    from npcface.core.phonetics.timeline import warm_up
    from npcface.core.types import Controls

    torch.set_num_threads(1)
    warm_up(streams)  # decoders for every stream, as `npcface serve` loads them before serving
    generators = {"rules": MotionGenerator(Controls(fps=30.0)), "learned": LearnedMotionGenerator(Controls(fps=30.0))}
    rows = {}
    for clip in clips:
        samples = load_audio(clip).samples
        text = clip.with_suffix(".txt").read_text().strip()
        for mode in MODES:
            generator = generators[mode.split(",")[0]]
            line_text = None if "no text" in mode else text
            together_seconds(generator, samples[:16000], line_text, 1)  # loads what the first push loads
            best = min((together_seconds(generator, samples, line_text, streams) for _ in range(repeat)),
                       key=lambda run: run["total_s"])
            rows[f"{clip.stem[:3]} {mode}"] = {"audio_s": streams * len(samples) / 16000, **best}
    return rows


def print_table(rows: dict, before: dict | None, before_name: str, streams: int) -> None:
    print(f"CPU ms per stream-second of audio, {streams} streams stepped together, 20 ms chunks")
    header = f"{'clip, motion':24s} {'now':>7s} {'decoder':>8s} {'phones':>7s} {'rest':>7s}"
    if before:
        header += f" | {'before':>7s} {'decoder':>8s} {'phones':>7s} {'rest':>7s} {'now/before':>10s}"
    print(header)

    def parts(row: dict) -> tuple[float, float, float, float]:
        per = 1000.0 / row["audio_s"]
        return (row["total_s"] * per, row["decoder_s"] * per, row["phones_s"] * per,
                (row["total_s"] - row["decoder_s"] - row["phones_s"]) * per)

    for name, row in rows.items():
        line = f"{name:24s}" + "".join(f" {v:7.1f}" if i != 1 else f" {v:8.1f}" for i, v in enumerate(parts(row)))
        if before and name in before:
            old = parts(before[name])
            line += " |" + "".join(f" {v:7.1f}" if i != 1 else f" {v:8.1f}" for i, v in enumerate(old))
            line += f" {parts(row)[0] / old[0]:10.2f}"
        print(line)
    for mode in MODES:
        mine = [row for name, row in rows.items() if name.endswith(mode)]
        now = 1000.0 * sum(r["total_s"] for r in mine) / sum(r["audio_s"] for r in mine)
        summary = f"{mode}, all clips: {now:.1f} ms CPU per stream-second"
        if before:
            old_rows = [before[name] for name in rows if name.endswith(mode) and name in before]
            old = 1000.0 * sum(r["total_s"] for r in old_rows) / sum(r["audio_s"] for r in old_rows)
            summary += f" (before {before_name}: {old:.1f}, now/before {now / old:.2f})"
        print(summary)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the shared data folder (default ../shared/data)")
    parser.add_argument("--clips", type=int, default=3, help="real speech clips with transcripts, by name")
    parser.add_argument("--streams", type=int, default=8, help="streams stepped together")
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement; the least CPU counts")
    parser.add_argument("--before", metavar="REV", help="also measure the code at this git revision")
    add_revision_options(parser)  # --json, --code: what --before's run of REV is given
    args = parser.parse_args()
    if args.clips < 1 or args.streams < 1 or args.repeat < 1:
        parser.error("--clips, --streams and --repeat must be at least 1")
    folder = data_dir(args.data) / "speech"
    clips = [wav for wav in sorted(folder.glob("s*.wav")) if wav.with_suffix(".txt").exists()][:args.clips]
    if not clips:
        print(f"no real speech with transcripts in {folder}: nothing to measure (set NPCFACE_DATA or --data)")
        return 0
    use_code_from(args.code)
    if args.json:
        print(json.dumps(measure(clips, args.repeat, args.streams)))
        return 0
    options = ["--clips", str(args.clips), "--streams", str(args.streams), "--repeat", str(args.repeat)]
    options += ["--data", args.data] if args.data else []
    print(f"machine: {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at start; 1 OpenBLAS and 1 torch "
          f"thread; clips: {', '.join(clip.stem for clip in clips)}")
    before = json.loads(run_at_revision(args.before, __file__, options)) if args.before else None
    rows = measure(clips, args.repeat, args.streams)
    print(f"load average {os.getloadavg()[0]:.1f} at the end\n")
    print_table(rows, before, args.before or "", args.streams)
    return 0


if __name__ == "__main__":
    sys.exit(main())
