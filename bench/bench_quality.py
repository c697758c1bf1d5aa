"""Lip-sync quality on real talking videos: does the generated JawOpen follow the real mouth?

    .venv/bin/python bench/bench_quality.py [--data DIR] [--refresh] [--before REV]

For each video in ../shared/data/video (or $NPCFACE_DATA/video): capture the face (MediaPipe;
cached under bench/results/), take the measured mouth opening (inner-lip gap over face size) as
the truth, animate the clip's own audio with the motion generator (no text: we have no
transcripts), and report Pearson r between the truth and
- the generated JawOpen, and
- a loudness-only baseline in the same run: the log loudness envelope (what volume-driven lip
  sync in Live2D or SALSA amounts to),
at lag 0 and at the best lag within +-200 ms (10 ms steps; lag > 0: the video's mouth moves
after the curve). Clips the data README calls uncertain (possible audio offsets) or music are
flagged and averaged apart. A PNG per clip shows the three curves (z-scored) over time.
--before REV also animates every clip with the motion code at git revision REV (its core/ in a
temporary folder, the same captures and the same baseline) and prints both per clip.
Exits 0 with a note when the data folder is absent.

Its pair, bench/bench_learned.py, prints the issue-9 table: on every real clip, per clip r at lag
0, best r and its lag of the lip gap for loudness, rules and the learned mouth, with the tuning /
held-out split of video/, GRID's held-out clips with and without text, the mouth's lead over the
sound, the model's size and `--before REV` for earlier weights.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from _common import add_revision_options, capture_code_version, data_dir, pearson, run_at_revision, use_code_from

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
MAX_LAG_S = 0.2
OFFSET_SEARCH_S = 1.0  # diagnostic only: where the clip's own audio/video offset seems to be
LAG_STEP_S = 0.01
LOUDNESS_FLOOR_DB = 40.0  # the baseline opens the mouth over the top 40 dB of the clip's loudness
# What ../shared/data/README.md and SOURCES.tsv say about each clip's audio/mouth agreement.
CLIP_NOTES = {
    "v07": ("clear", "en-us"), "v13": ("clear", "en-us"), "v11": ("ok", "en-us"),
    "v08": ("uncertain", "en-us"), "v09": ("uncertain", "en-us"), "v12": ("uncertain", "en-us"),
    "v15": ("uncertain", "zh"), "v14": ("music", "singing"),
}


def captured_curves(video: Path, refresh: bool) -> dict[str, np.ndarray | float]:
    """times, mouth opening, captured JawOpen, capture speed; from the cache when still valid."""
    from npcface.core.capture.video import capture_video_result

    stat = video.stat()
    key = f"{video.name}:{stat.st_size}:{int(stat.st_mtime)}:{capture_code_version()}"
    cache = RESULTS / f"capture_{video.stem}.npz"
    if cache.exists() and not refresh:
        stored = np.load(cache, allow_pickle=False)
        if str(stored["key"]) == key:
            return {name: stored[name] for name in stored.files if name != "key"}
    result = capture_video_result(video)
    curves = {"times": result.track.times, "mouth_opening": result.mouth_opening,
              "jaw_open": result.track.channel("JawOpen").astype(np.float64),
              "capture_fps": np.float64(result.capture_fps),
              "frames_without_face": np.float64(result.frames_without_face)}
    RESULTS.mkdir(parents=True, exist_ok=True)
    np.savez(cache, key=key, **curves)
    return curves


def loudness_envelope(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(times, log loudness floored LOUDNESS_FLOOR_DB under the clip's peak), 10 ms rows."""
    from npcface.core.audio.features import compute_features
    from npcface.core.types import FEATURE_HOP_S

    loudness = compute_features(samples).loudness_db.astype(np.float64)
    envelope = np.maximum(loudness, loudness.max() - LOUDNESS_FLOOR_DB)
    return np.arange(len(envelope)) * FEATURE_HOP_S, envelope


def lagged_r(truth_times: np.ndarray, truth: np.ndarray, times: np.ndarray, curve: np.ndarray,
             max_lag: float = MAX_LAG_S):
    """(r at lag 0, best r within +-max_lag, that lag in s). The curve is sampled at
    truth_times - lag, so a positive lag means the video's mouth moves after the curve;
    only frames where every lag stays inside the audio are compared."""
    inside = (truth_times - max_lag >= times[0]) & (truth_times + max_lag <= times[-1])
    lags = np.round(np.arange(-max_lag, max_lag + 1e-9, LAG_STEP_S), 3)
    rs = [pearson(truth[inside], np.interp(truth_times[inside] - lag, times, curve)) for lag in lags]
    best = int(np.argmax(rs))
    return rs[int(np.argmin(np.abs(lags)))], rs[best], float(lags[best])


def evaluate_clip(video: Path, refresh: bool, plot: bool = True) -> dict[str, object]:
    from npcface.core.audio.decode import load_audio
    from npcface.core.motion.generator import MotionGenerator
    from npcface.core.types import Controls

    clip = video.stem.split("_")[0]
    reliability, language = CLIP_NOTES.get(clip, ("unknown", "en-us"))
    started = time.perf_counter()
    captured = captured_curves(video, refresh)
    capture_s = time.perf_counter() - started
    audio = load_audio(video)
    started = time.perf_counter()
    track = MotionGenerator(Controls(fps=60.0, language=language)).animate(audio)
    animate_s = time.perf_counter() - started
    loud_times, loudness = loudness_envelope(audio.samples)

    truth_times, truth = captured["times"], captured["mouth_opening"]
    generated = lagged_r(truth_times, truth, track.times, track.channel("JawOpen").astype(np.float64))
    baseline = lagged_r(truth_times, truth, loud_times, loudness)
    offsets = {"generated": lagged_r(truth_times, truth, track.times, track.channel("JawOpen").astype(np.float64),
                                     OFFSET_SEARCH_S),
               "baseline": lagged_r(truth_times, truth, loud_times, loudness, OFFSET_SEARCH_S)}
    if plot:
        plot_clip(video.stem, truth_times, truth, track.times, track.channel("JawOpen"), loud_times, loudness,
                  generated, baseline)
    return {"clip": clip, "name": video.stem, "reliability": reliability, "language": language,
            "duration": audio.duration, "generated": generated, "baseline": baseline, "offsets": offsets,
            "captured_jaw_vs_lips": pearson(captured["jaw_open"], truth),
            "capture_fps": float(captured["capture_fps"]), "capture_s": capture_s,
            "frames_without_face": int(captured["frames_without_face"]), "animate_s": animate_s}


def plot_clip(name, truth_times, truth, times, jaw, loud_times, loudness, generated, baseline) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    def z(values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        return (values - values.mean()) / (values.std() + 1e-9)

    figure, axis = plt.subplots(figsize=(14, 4))
    axis.plot(truth_times, z(truth), color="black", linewidth=2, label="captured mouth opening (video)")
    axis.plot(times, z(jaw), color="tab:blue", label=f"generated JawOpen  r={generated[0]:.2f} "
                                                     f"(best {generated[1]:.2f} at {1000 * generated[2]:+.0f} ms)")
    axis.plot(loud_times, z(loudness), color="tab:orange", alpha=0.7,
              label=f"loudness baseline  r={baseline[0]:.2f} (best {baseline[1]:.2f} at {1000 * baseline[2]:+.0f} ms)")
    axis.set_xlabel("time (s)")
    axis.set_ylabel("z-score")
    axis.set_title(name)
    axis.legend(loc="upper right", fontsize=8)
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(RESULTS / f"quality_{name}.png", dpi=80)
    plt.close(figure)


def print_table(rows: list[dict[str, object]]) -> None:
    header = (f"{'clip':5s} {'reliability':11s} {'lang':7s} {'dur s':>6s} | {'gen r0':>6s} {'gen best':>8s} "
              f"{'lag ms':>6s} | {'base r0':>7s} {'base best':>9s} {'lag ms':>6s} | {'cap fps':>7s} "
              f"{'no face':>7s} {'jaw~lips':>8s} | {'within 1 s: gen':>15s} {'base':>11s}")
    print(header)
    print("-" * len(header))
    for row in rows:
        g, b = row["generated"], row["baseline"]
        print(f"{row['clip']:5s} {row['reliability']:11s} {row['language']:7s} {row['duration']:6.2f} | "
              f"{g[0]:6.2f} {g[1]:8.2f} {1000 * g[2]:+6.0f} | {b[0]:7.2f} {b[1]:9.2f} {1000 * b[2]:+6.0f} | "
              f"{row['capture_fps']:7.0f} {row['frames_without_face']:7d} {row['captured_jaw_vs_lips']:8.2f} | "
              f"{row['offsets']['generated'][1]:5.2f} @{1000 * row['offsets']['generated'][2]:+5.0f} ms "
              f"{row['offsets']['baseline'][1]:4.2f} @{1000 * row['offsets']['baseline'][2]:+5.0f}")
    print("-" * len(header))
    groups = {"all clips": rows,
              "clear + ok (v07, v13, v11)": [r for r in rows if r["reliability"] in ("clear", "ok")],
              "speech, not music": [r for r in rows if r["reliability"] != "music"]}
    for label, group in groups.items():
        if not group:
            continue
        mean = {k: np.mean([r[kind][i] for r in group]) for kind in ("generated", "baseline")
                for i, k in ((0, f"{kind}0"), (1, f"{kind}best"))}
        print(f"mean over {label:28s} ({len(group)}): generated r0 {mean['generated0']:.3f} best "
              f"{mean['generatedbest']:.3f} | baseline r0 {mean['baseline0']:.3f} best {mean['baselinebest']:.3f} "
              f"| generated - baseline at lag 0: {mean['generated0'] - mean['baseline0']:+.3f}; within 1 s: "
              f"{np.mean([r['offsets']['generated'][1] for r in group]):.3f} vs "
              f"{np.mean([r['offsets']['baseline'][1] for r in group]):.3f}")


def run_before(revision: str, args) -> dict[str, list[float]]:
    """{clip: [gen r0, gen best, lag]} for the motion code at `revision`, in a subprocess."""
    output = run_at_revision(revision, __file__, ["--data", args.data] if args.data else [])
    return json.loads(output.splitlines()[-1])


def print_before_and_now(revision: str, before: dict[str, list[float]], rows: list[dict[str, object]]) -> None:
    print(f"\ngenerated r per clip, before ({revision}) -> now (lag 0 | best within +-{1000 * MAX_LAG_S:.0f} ms @ lag)")
    for row in rows:
        old, new = before.get(row["clip"]), row["generated"]
        if old:
            print(f"{row['clip']:5s} r0 {old[0]:5.2f} -> {new[0]:5.2f} | best {old[1]:5.2f} @{1000 * old[2]:+4.0f} ms "
                  f"-> {new[1]:5.2f} @{1000 * new[2]:+4.0f} ms")
    common = [row for row in rows if row["clip"] in before]
    if common:
        print(f"mean ({len(common)}) r0 {np.mean([before[r['clip']][0] for r in common]):.3f} -> "
              f"{np.mean([r['generated'][0] for r in common]):.3f} | best "
              f"{np.mean([before[r['clip']][1] for r in common]):.3f} -> {np.mean([r['generated'][1] for r in common]):.3f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the shared data folder (default ../shared/data)")
    parser.add_argument("--refresh", action="store_true", help="capture again even when cached")
    parser.add_argument("--before", metavar="REV", help="also measure the motion code at this git revision")
    add_revision_options(parser)  # --json, --code: what --before's run of REV is given
    args = parser.parse_args()
    video_dir = data_dir(args.data) / "video"
    videos = sorted(video_dir.glob("v*.mp4")) if video_dir.is_dir() else []
    if not videos:
        print(f"no real videos in {video_dir}: nothing to measure (set NPCFACE_DATA or --data)")
        return 0
    sys.path.insert(0, str(REPO))
    RESULTS.mkdir(parents=True, exist_ok=True)
    use_code_from(args.code)
    if args.json:
        print(json.dumps({row["clip"]: list(row["generated"]) for row in
                          (evaluate_clip(video, refresh=False, plot=False) for video in videos)}))
        return 0
    before = run_before(args.before, args) if args.before else None
    rows = [evaluate_clip(video, args.refresh) for video in videos]
    print("truth: captured inner-lip gap / face size; r = Pearson; lag > 0: the video's mouth moves after the curve")
    print(f"'within 1 s' (diagnostic): best r and lag within +-{OFFSET_SEARCH_S:g} s, to show clips whose audio "
          "is offset further than the 200 ms window\n")
    print_table(rows)
    print(f"\ncapture speed (MediaPipe + decode, 2 shared cores): "
          f"{np.mean([r['capture_fps'] for r in rows]):.0f} frames/s on average; "
          f"animate: {sum(r['duration'] for r in rows) / sum(r['animate_s'] for r in rows):.0f}x real time")
    print(f"plots: {RESULTS}/quality_<clip>.png")
    print("loudness vs rules vs learned lip gap per clip, tuning / held-out: bench/bench_learned.py")
    if before is not None:
        print_before_and_now(args.before, before, rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
