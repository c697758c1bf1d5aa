"""The learned mouth vs the rules vs loudness, on real recordings, in one run.

    .venv/bin/python bench/bench_learned.py [--data DIR] [--weights FILE] [--before REV] [--grid N] [--no-rules]

Real videos are split once (the issue-9 quality work): TUNING_VIDEOS may guide choices (recipe,
augmentation, blends), HELD_OUT_VIDEOS never do (the same four the head bench holds out, plus
four more); v14 is music and is reported apart.

Truth: the inner-lip gap captured from the video (MediaPipe, core/capture/cache.py). Each
generator's lip gap (JawOpen - MouthClose) and the loudness envelope are compared with it per
clip: Pearson r at lag 0, the best r within +-200 ms and that lag (lag > 0: the video's mouth
moves after the curve). Sets:
- video/: real people outside GRID (never trained on), no text;
- GRID clips the recipe holds out (models/recipes/audio2face.json), with their text
  (s1: the .align words; s4: the .txt) and without;
- the same GRID clips streamed with their text (20 ms chunks: the live aligner's phones so far)
  against the offline run with text: r of the lip gap;
- speech/: real read speech without video: the lag of each generated mouth against the loudness
  envelope itself (> 0: the mouth moves before the sound).
"lead" = generator lag - loudness lag on the same clip: > 0 means the generated mouth moves
before the sound does, < 0 that it trails it. Then streaming speed at 20 ms chunks (x real time,
one thread, BLAS included) for both generators on the same audio. Exits 0 with a note without the data folder.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")  # one core per generator, as a server would give each session

import numpy as np  # noqa: E402

from _common import REPO, data_dir  # noqa: E402

sys.path.insert(0, str(REPO / "bench"))
from _real_clips import grid_text  # noqa: E402
from bench_quality import lagged_r, loudness_envelope  # noqa: E402

RECIPE = REPO / "models" / "recipes" / "audio2face.json"
TUNING_VIDEOS = ("v07", "v08", "v11", "v16", "v18", "v19")
HELD_OUT_VIDEOS = ("v09", "v12", "v13", "v15", "v17", "v20", "v21", "v22")


def lip_gap(track) -> np.ndarray:
    return (track.channel("JawOpen") - track.channel("MouthClose")).astype(np.float64)


def evaluate(video: Path, generators: dict, text: str | None) -> dict:
    from npcface.core.audio.decode import load_audio
    from npcface.core.capture.cache import capture_cached

    captured = capture_cached(video)
    truth_times, truth = captured.track.times, captured.mouth_opening
    audio = load_audio(video)
    loud_times, loudness = loudness_envelope(audio.samples)
    row = {"clip": video.stem.split("_")[0], "duration": audio.duration,
           "loudness": lagged_r(truth_times, truth, loud_times, loudness)}
    for name, generator in generators.items():
        track = generator.animate(audio, text=text)
        row[name] = lagged_r(truth_times, truth, track.times, lip_gap(track))
    return row


def print_rows(title: str, rows: list[dict], names: list[str]) -> dict:
    if not rows:
        return {}
    print(f"\n{title}")
    header = f"{'clip':8s} {'dur':>5s} | " + " | ".join(f"{n:>8s} r0  best   lag  lead" for n in ["loudness"] + names)
    print(header)
    for row in rows:
        cells = []
        for n in ["loudness"] + names:
            r0, best, lag = row[n]
            lead = "" if n == "loudness" else f"{1000 * (lag - row['loudness'][2]):+5.0f}"
            cells.append(f"{'':>8s} {r0:4.2f} {best:5.2f} {1000 * lag:+5.0f} {lead:>5s}")
        print(f"{row['clip']:8s} {row['duration']:5.1f} | " + " | ".join(cells))
    means = {n: (float(np.mean([r[n][0] for r in rows])), float(np.mean([r[n][1] for r in rows]))) for n in ["loudness"] + names}
    leads = {n: float(np.mean([1000 * (r[n][2] - r["loudness"][2]) for r in rows])) for n in names}
    print(f"{'mean':8s} {'':5s} | " + " | ".join(f"{'':>8s} {m[0]:4.2f} {m[1]:5.2f} {'':5s} "
                                                 f"{'' if n == 'loudness' else f'{leads[n]:+5.0f}':>5s}"
                                                 for n, m in means.items()))
    return {"means": means, "leads": leads}


def speech_lead(path: Path, generators: dict) -> dict:
    """Lag of each generated lip gap vs the loudness envelope of the same audio (ms, > 0: mouth first)."""
    from npcface.core.audio.decode import load_audio

    audio = load_audio(path)
    text = path.with_suffix(".txt").read_text().strip() if path.with_suffix(".txt").exists() else None
    loud_times, loudness = loudness_envelope(audio.samples)
    out = {"clip": path.stem.split("_")[0]}
    for name, generator in generators.items():
        track = generator.animate(audio, text=text)
        # loudness(t) ~ gap(t - lag): lag > 0 means the mouth moved before the sound
        out[name] = lagged_r(loud_times, loudness, track.times, lip_gap(track))
    return out


def streaming_speed(generators: dict, audio) -> dict[str, float]:
    import torch

    torch.set_num_threads(1)
    chunk = 320  # 20 ms
    speeds = {}
    for name, generator in generators.items():
        started = time.perf_counter()
        stream = generator.stream()
        for start in range(0, len(audio.samples), chunk):
            stream.push_audio(audio.samples[start:start + chunk])
        stream.finish()
        speeds[name] = audio.duration / (time.perf_counter() - started)
    return speeds


def stream_agreement(video: Path, generator, text: str) -> float:
    """r of the lip gap streamed with text (20 ms chunks: the live aligner's phones so far) against
    the offline run with text (the whole line's forced alignment)."""
    from npcface.core.audio.decode import load_audio
    from npcface.core.types import MotionTrack

    audio = load_audio(video)
    offline = lip_gap(generator.animate(audio, text=text))
    stream = generator.stream(text)
    frames = []
    for start in range(0, len(audio.samples), 320):
        frames += stream.push_audio(audio.samples[start:start + 320])
    frames += stream.finish()
    streamed = lip_gap(MotionTrack.from_frames(frames, generator.controls.fps))
    return float(np.corrcoef(streamed, offline)[0, 1])


def weights_at(revision: str) -> Path:
    """The shipped weights as committed at ``revision``, written to a temporary file."""
    import subprocess
    import tempfile

    blob = subprocess.run(["git", "show", f"{revision}:models/weights/audio2face.safetensors"], cwd=REPO,
                          capture_output=True, check=True).stdout
    path = Path(tempfile.mkdtemp(prefix="npcface-before-")) / "audio2face.safetensors"
    path.write_bytes(blob)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the shared data folder (default ../shared/data)")
    parser.add_argument("--weights", help="learned model (default: the shipped weights)")
    parser.add_argument("--grid", type=int, default=20, help="held-out GRID clips per speaker (default 20)")
    parser.add_argument("--before", metavar="REV",
                        help="also measure the shipped weights at git revision REV ('before'), in the same run")
    parser.add_argument("--no-rules", action="store_true", help="skip the rule-based generator (faster)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    data = data_dir(args.data)
    if not (data / "video").is_dir():
        print(f"no real data in {data}: nothing to measure (set NPCFACE_DATA or --data)")
        return 0
    sys.path.insert(0, str(REPO))
    from npcface.core.motion.generator import MotionGenerator
    from npcface.core.motion.learned import LearnedMotionGenerator
    from npcface.core.motion.learned_weights import SHIPPED_WEIGHTS
    from npcface.core.types import Controls

    controls = Controls(fps=60.0)
    generators = {"learned": LearnedMotionGenerator(controls, args.weights)}
    if args.before:
        generators["before"] = LearnedMotionGenerator(controls, weights_at(args.before))
    if not args.no_rules:
        generators["rules"] = MotionGenerator(controls)
    names = list(generators)
    figures = {}
    videos = sorted((data / "video").glob("v*.mp4"))
    rows = [evaluate(v, generators, None) for v in videos]
    figures["video"] = print_rows("video/ (people outside GRID, no text): lip gap vs captured lip gap", rows, names)
    figures["video_speech"] = print_rows("video/ without v14 (music)", [r for r in rows if r["clip"] != "v14"], names)
    figures["video_tuning"] = print_rows("video/ tuning clips", [r for r in rows if r["clip"] in TUNING_VIDEOS], names)
    figures["video_held_out"] = print_rows("video/ held-out clips (never tuned on)",
                                           [r for r in rows if r["clip"] in HELD_OUT_VIDEOS], names)
    recipe = json.loads(RECIPE.read_text()) if RECIPE.exists() else {"held_out": []}
    for speaker in ("s1", "s4"):
        held = [n for n in recipe["held_out"] if n.startswith(f"{speaker}/")][: args.grid]
        clips = [data / "train" / "grid" / f"{n}.mp4" for n in held]
        clips = [c for c in clips if c.exists()]
        for label, with_text in (("no text", False), ("with text", True)):
            rows = [evaluate(c, generators, grid_text(c) if with_text else None) for c in clips]
            figures[f"grid_{speaker}_{label}"] = print_rows(f"GRID {speaker}, held-out clips, {label}", rows, names)
        agreement = {n: [stream_agreement(c, g, grid_text(c)) for c in clips] for n, g in generators.items()}
        figures[f"grid_{speaker}_stream_vs_offline_with_text"] = {n: float(np.mean(rs)) for n, rs in agreement.items()}
        print(f"streamed (20 ms chunks, live aligner) vs offline, with text, lip gap r: " + "; ".join(
            f"{n} mean {np.mean(rs):.3f} min {np.min(rs):.3f}" for n, rs in agreement.items()))
    speech_rows = [speech_lead(p, generators) for p in sorted((data / "speech").glob("s0*.wav"))]
    if speech_rows:
        print("\nspeech/ (real read speech with its text, no video): generated lip gap vs its own loudness")
        for row in speech_rows:
            print(f"{row['clip']:5s} " + " | ".join(f"{n} r0 {row[n][0]:.2f} best {row[n][1]:.2f} mouth first by "
                                                   f"{1000 * row[n][2]:+.0f} ms" for n in names))
        figures["speech_lead_ms"] = {n: float(np.mean([1000 * r[n][2] for r in speech_rows])) for n in names}
        print("mean mouth-first (ms): " + ", ".join(f"{n} {v:+.0f}" for n, v in figures["speech_lead_ms"].items()))
    from npcface.core.audio.decode import load_audio

    audio = load_audio(REPO / "fixtures" / "line_greeting.wav")
    speeds = streaming_speed(generators, audio)
    figures["stream_x_realtime"] = speeds
    model = generators["learned"].model
    weights = Path(args.weights) if args.weights else SHIPPED_WEIGHTS
    print(f"\nstreaming, 20 ms chunks, no text, 1 thread: " + ", ".join(f"{n} {s:.1f}x real time" for n, s in speeds.items()))
    print(f"learned model: {model.num_parameters()} parameters, file {weights.stat().st_size / 1e6:.2f} MB, "
          f"lookahead {10 * model.config.lookahead} ms, rows read per output {10 * (model.config.receptive_back + model.config.lookahead)} ms "
          f"(of them {10 * model.config.context} ms for level normalisation"
          f"{'; the rules cues read 2.6 s further back' if model.config.rule_cues else ''}) "
          f"(training time: `npcface train --recipe {RECIPE.relative_to(REPO)}` prints it)")
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
