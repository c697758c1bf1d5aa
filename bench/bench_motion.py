"""Motion generator speed on real audio, one CPU core: real-time factor offline and streaming at
10/20/50/100 ms chunks, where the time goes, and latency per frame, beside a loudness-only
baseline measured in the same run (and, with --before REV, the same measurements of older code).

    .venv/bin/python bench/bench_motion.py [--before REV] [--repeat 2] [--long] [--data DIR]

Real audio comes from ../shared/data/audio (or $NPCFACE_DATA/audio); the script says so and exits 0
when it is absent. English files run phone recognition (pocketsphinx), the others the acoustic
fallback. Offline = decode + phones + motion for the whole file; streaming = pushing the decoded
16 kHz samples chunk by chunk (no decode). "Where the time goes" is exclusive time in
FeatureStream, PhoneStream and the rest (the motion layers), in seconds of work per audio second.

Latency of a frame at time t = (when the audio chunk that released it had fully arrived, in real
time) + (the push's compute) - t: the lookahead, the chunk buffering and the compute together.
Each measurement runs --repeat times and keeps the fastest (the machine is shared).
--before REV runs the same script on the code at git revision REV (extracted to a temporary
folder, run in a subprocess) and prints its table and the speed-up per mode.
--long streams ~4 minutes of concatenated English and of other speech in 20 ms chunks and
prints the per-push cost at the start and at the end of the line (it must not grow).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from _common import add_revision_options, data_dir, run_at_revision, timed, use_code_from

CHUNKS_MS = (10, 20, 50, 100)
ENGLISH = ("a15", "a16", "a18")
TARGET_RTF = 20.0


class StageClock:
    """Exclusive time spent in FeatureStream and PhoneStream calls (wraps their methods)."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)
        self._stack: list[list[float]] = []  # [start, time spent in nested wrapped calls]

    def install(self) -> None:
        from npcface.core.audio.features import FeatureStream
        from npcface.core.phonetics.timeline import PhoneStream

        # (older code lacks some of these methods; nested calls count once, in the innermost)
        for cls, names, stage in ((FeatureStream, ("push", "flush", "append", "take"), "features"),
                                  (PhoneStream, ("push", "phones", "finish", "add_features"), "phones")):
            for name in names:
                if hasattr(cls, name):
                    setattr(cls, name, self._wrap(getattr(cls, name), stage))

    def _wrap(self, method, stage: str):
        def timed_method(*args, **kwargs):
            self._stack.append([time.perf_counter(), 0.0])
            try:
                return method(*args, **kwargs)
            finally:
                start, nested = self._stack.pop()
                elapsed = time.perf_counter() - start
                self.seconds[stage] += elapsed - nested
                if self._stack:
                    self._stack[-1][1] += elapsed
        return timed_method

    def take(self) -> dict[str, float]:
        taken = dict(self.seconds)
        self.seconds.clear()
        return taken


def loudness_baseline(samples: np.ndarray, fps: float) -> np.ndarray:
    """Volume-driven lip sync: JawOpen from the log loudness envelope, per frame."""
    from npcface.core.audio.features import compute_features

    feats = compute_features(samples)
    loud = np.maximum(feats.loudness_db, -70.0)
    jaw = np.clip((loud - (loud.max() - 35.0)) / 35.0, 0.0, 1.0)
    times = np.arange(int(np.ceil(len(samples) / 16000 * fps))) / fps
    return np.interp(times, np.arange(len(jaw)) * 0.01, jaw)


def offline_run(audio, language: str, clock: StageClock) -> dict:
    from npcface.core.motion.generator import MotionGenerator
    from npcface.core.phonetics.timeline import phones_for
    from npcface.core.types import Controls

    clock.take()
    timeline, t_phones = timed(phones_for, audio, None, language)
    _, t_generate = timed(MotionGenerator(Controls(language=language)).animate_with_phones, audio, timeline)
    stages = clock.take()
    total = t_phones + t_generate
    return {"total": total, "features": stages.get("features", 0.0), "phones": stages.get("phones", 0.0),
            "motion": total - sum(stages.values()), "latency": [], "push": []}


def stream_run(audio, language: str, chunk_ms: float, clock: StageClock) -> dict:
    from npcface.core.motion.generator import MotionGenerator
    from npcface.core.types import Controls

    chunk = int(16 * chunk_ms)
    clock.take()
    stream = MotionGenerator(Controls(language=language)).stream(None)
    latency, pushes, total = [], [], 0.0
    for position in range(0, len(audio.samples), chunk):
        frames, seconds = timed(stream.push_audio, audio.samples[position:position + chunk])
        heard = min(position + chunk, len(audio.samples)) / 16000
        latency += [heard + seconds - frame.time for frame in frames]
        pushes.append(seconds)
        total += seconds
    total += timed(stream.finish)[1]
    stages = clock.take()
    return {"total": total, "features": stages.get("features", 0.0), "phones": stages.get("phones", 0.0),
            "motion": total - sum(stages.values()), "latency": latency, "push": pushes}


def measure(files: list[Path], repeat: int) -> dict:
    """Per mode: seconds per stage summed over files, by language group, plus latency samples."""
    import torch

    from npcface.core.audio.decode import load_audio

    torch.set_num_threads(1)
    clock = StageClock()
    clock.install()
    modes = ["offline"] + [f"stream {ms} ms" for ms in CHUNKS_MS]
    result = {"duration": defaultdict(float), "modes": {m: defaultdict(float) for m in modes},
              "latency": {m: [] for m in modes}, "push": {m: [] for m in modes}, "baseline": 0.0, "decode": 0.0}
    for path in files:
        group = "en-us" if path.stem.startswith(ENGLISH) else "other"
        language = "en-us" if group == "en-us" else "xx"
        audio, t_decode = timed(load_audio, path)
        result["duration"][group] += audio.duration
        result["decode"] += t_decode
        result["baseline"] += t_decode + min(timed(loudness_baseline, audio.samples, 60.0)[1] for _ in range(repeat))
        for mode in modes:
            runs = [offline_run(audio, language, clock) if mode == "offline"
                    else stream_run(audio, language, float(mode.split()[1]), clock) for _ in range(repeat)]
            best = min(runs, key=lambda run: run["total"])
            totals = result["modes"][mode]
            totals[f"total {group}"] += best["total"] + (t_decode if mode == "offline" else 0.0)
            for stage in ("features", "phones", "motion"):
                totals[stage] += best[stage]
            totals["decode"] += t_decode if mode == "offline" else 0.0
            result["latency"][mode] += best["latency"]
            result["push"][mode] += best["push"]
        print(f"  measured {path.name} ({audio.duration:.1f} s, {group})", file=sys.stderr)
    return result


def summarise(result: dict) -> dict[str, dict[str, float]]:
    duration = result["duration"]
    seconds = sum(duration.values())
    rows = {}
    for mode, totals in result["modes"].items():
        total = totals["total en-us"] + totals["total other"]
        row = {"rtf": seconds / total,
               "rtf en-us": duration["en-us"] / totals["total en-us"] if totals["total en-us"] else float("nan"),
               "rtf other": duration["other"] / totals["total other"] if totals["total other"] else float("nan")}
        row.update({stage: totals[stage] / seconds for stage in ("decode", "features", "phones", "motion")})
        row["total"] = total / seconds
        latency, push = result["latency"][mode], result["push"][mode]
        row["lat p50"] = 1000 * float(np.percentile(latency, 50)) if latency else float("nan")
        row["lat p95"] = 1000 * float(np.percentile(latency, 95)) if latency else float("nan")
        row["push p95"] = 1000 * float(np.percentile(push, 95)) if push else float("nan")
        rows[mode] = row
    rows["loudness-only baseline"] = {"rtf": seconds / result["baseline"]}
    return rows


def print_table(title: str, rows: dict[str, dict[str, float]]) -> None:
    print(title)
    head = (f"{'mode':24s} {'RTF':>6s} {'en-us':>6s} {'other':>6s} | {'decode':>7s} {'feats':>7s} {'phones':>7s} "
            f"{'motion':>7s} {'total':>7s} | {'lat p50':>7s} {'lat p95':>7s} {'push p95':>8s}")
    print(head)
    print("-" * len(head))
    for mode, row in rows.items():
        if "total" not in row:
            print(f"{mode:24s} {row['rtf']:6.1f}")
            continue
        latency = (f"{row['lat p50']:7.0f} {row['lat p95']:7.0f} {row['push p95']:8.2f}" if mode != "offline" else "")
        print(f"{mode:24s} {row['rtf']:6.1f} {row['rtf en-us']:6.1f} {row['rtf other']:6.1f} | {row['decode']:7.4f} "
              f"{row['features']:7.4f} {row['phones']:7.4f} {row['motion']:7.4f} {row['total']:7.4f} | {latency}")
    print("RTF: audio seconds per second of work, one core (>= 20 = the target); en-us = pocketsphinx phone "
          "recognition, other = acoustic fallback.\nfeats/phones/motion: seconds of work per audio second in "
          "FeatureStream, PhoneStream and the rest; lat: ms from a frame's time to its delivery, push p95: ms per push.\n")


def long_line(files: list[Path], seconds: float = 240.0) -> None:
    """Per-push cost at the start and the end of a long streamed line (it must stay flat)."""
    import torch

    from npcface.core.audio.decode import load_audio
    from npcface.core.motion.generator import MotionGenerator
    from npcface.core.types import Controls

    torch.set_num_threads(1)
    for group, language in (("en-us", "en-us"), ("other", "xx")):
        parts = [load_audio(p).samples for p in files if p.stem.startswith(ENGLISH) == (group == "en-us")]
        samples = np.concatenate(parts * int(np.ceil(seconds * 16000 / sum(map(len, parts)))))[: int(seconds * 16000)]
        stream = MotionGenerator(Controls(language=language)).stream(None)
        costs = [timed(stream.push_audio, samples[p:p + 320])[1] for p in range(0, len(samples), 320)]
        stream.finish()
        tenth = len(costs) // 10
        first, last = 1000 * np.mean(costs[:tenth]), 1000 * np.mean(costs[-tenth:])
        print(f"long line {seconds:.0f} s ({group}, 20 ms pushes): mean push {first:.2f} ms in the first tenth, "
              f"{last:.2f} ms in the last tenth ({last / first:.2f}x)")


def run_before(revision: str, args) -> dict:
    """The same measurement on the code at `revision`, in a subprocess: its summary rows."""
    output = run_at_revision(revision, __file__, ["--repeat", str(args.repeat)] + (["--data", args.data] if args.data else []))
    return json.loads(output)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the shared data folder (default ../shared/data)")
    parser.add_argument("--repeat", type=int, default=2, help="runs per measurement; the fastest counts")
    parser.add_argument("--before", metavar="REV", help="also measure the code at this git revision")
    parser.add_argument("--long", action="store_true", help="also stream a ~4 minute line")
    add_revision_options(parser)  # --json, --code: what --before's run of REV is given
    args = parser.parse_args()
    audio_dir = data_dir(args.data) / "audio"
    files = sorted(audio_dir.glob("a*")) if audio_dir.is_dir() else []
    if not files:
        print(f"no real audio in {audio_dir}: nothing to measure (set NPCFACE_DATA or --data)")
        return 0
    use_code_from(args.code)
    if args.json:
        print(json.dumps(summarise(measure(files, args.repeat))))
        return 0
    before = run_before(args.before, args) if args.before else None
    result = measure(files, args.repeat)
    rows = summarise(result)
    seconds = sum(result["duration"].values())
    print(f"{len(files)} files, {seconds:.1f} s of audio ({result['duration']['en-us']:.1f} s English), one core, "
          f"fastest of {args.repeat} runs\n")
    if before:
        print_table(f"before ({args.before})", before)
    print_table("now" if before else "", rows)
    if before:
        print("speed-up (RTF now / before): " + ", ".join(
            f"{mode} {rows[mode]['rtf'] / before[mode]['rtf']:.2f}x" for mode in rows if mode in before and "total" in rows[mode]))
    from npcface.core.types import Controls

    lookahead = 1000 * Controls().lookahead_s
    print(f"latency floor: lookahead {lookahead:.0f} ms + up to one chunk of buffering + compute; "
          f"the loudness-only baseline is decode + features + loudness -> JawOpen, offline")
    for mode, row in rows.items():
        if "total" in row:
            print(f"target >= {TARGET_RTF:g}x real time on one core, phonetics included, {mode}: {row['rtf']:.1f}x "
                  f"{'meets' if row['rtf'] >= TARGET_RTF else 'MISSES'} (English {row['rtf en-us']:.1f}x, "
                  f"other {row['rtf other']:.1f}x)")
    if args.long:
        print()
        long_line(files)
    return 0


if __name__ == "__main__":
    sys.exit(main())
