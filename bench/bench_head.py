"""Head motion: real people's captured head motion beside the rule generator's on the same audio.

    .venv/bin/python bench/bench_head.py [--data DIR] [--refresh] [--before REV] [--seeds N]

Per real clip (bench/_real_clips.py: the videos in ../shared/data/video and a sample of GRID),
from the captured head rotation (MediaPipe, cached) and from MotionGenerator's head rotation on
the clip's own audio (no text, seeds 0..N-1, averaged), at the video's frame times:
- std of yaw, pitch, roll (deg): insensitive to capture's constant pitch bias;
- angular speed (deg/s, of the three angles lightly smoothed against landmark jitter): median,
  p90, and its RMS in the bands 0-0.5, 0.5-2 and 2-5 Hz (the speed spectrum);
- r(speed, loudness): Pearson r of the speed and the loudness envelope, both smoothed over
  ~0.5 s (does the head move more while the voice is louder?).
Ratios generated / real per statistic; pooled = the mean over a group's clips of each
statistic. Tuning clips and held-out clips (never tuned on) are pooled apart; music (v14) is
listed but pooled with nothing. Per group also the middle clip's ratios (geometric means of the
amplitude statistics over the clips, mean r: what bench/tune_head.py fits) and how far each
clip's own amount of motion is off (mean |log ratio| per clip). bench/results/head_<clip>.png plots the captured and generated
angles per clip. --before REV runs the generator at git revision REV on the same
clips in the same run and prints both. Exits 0 with a note when the data folder is absent.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d

from _common import REPO, add_revision_options, data_dir, pearson, run_at_revision, use_code_from
from _real_clips import RESULTS, RealClip, captured, chosen_clips, real_clips

ANGLE_SMOOTH_S = 0.04  # Gaussian sigma on the angles before differentiating (capture jitter)
ENVELOPE_SMOOTH_S = 0.25  # Gaussian sigma of speed and loudness for r(speed, loudness)
BANDS_HZ = ((0.0, 0.5), (0.5, 2.0), (2.0, 5.0))
LOUDNESS_FLOOR_DB = 40.0
STATS = ("std yaw", "std pitch", "std roll", "speed med", "speed p90",
         *(f"{lo:g}-{hi:g} Hz" for lo, hi in BANDS_HZ), "r(spd,loud)")


def loudness_at(samples: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Log loudness floored LOUDNESS_FLOOR_DB under the clip's peak, at ``times``."""
    from npcface.core.audio.features import compute_features
    from npcface.core.types import FEATURE_HOP_S

    loudness = compute_features(samples).loudness_db.astype(np.float64)
    envelope = np.maximum(loudness, loudness.max() - LOUDNESS_FLOOR_DB)
    return np.interp(times, np.arange(len(envelope)) * FEATURE_HOP_S, envelope)


def band_rms(velocity: np.ndarray, fps: float, low: float, high: float) -> float:
    """RMS (deg/s) of the angular velocity's components in [low, high) Hz, over the 3 angles."""
    spectrum = np.fft.rfft(velocity - velocity.mean(0), axis=0)
    freqs = np.fft.rfftfreq(len(velocity), 1.0 / fps)
    spectrum[(freqs < low) | (freqs >= high)] = 0.0
    band = np.fft.irfft(spectrum, n=len(velocity), axis=0)
    return float(np.sqrt((band ** 2).sum(1).mean()))


def head_stats(times: np.ndarray, rotation: np.ndarray, loudness: np.ndarray) -> np.ndarray:
    """(len(STATS),) statistics of one head rotation track (T, 3) sampled at ``times``."""
    fps = 1.0 / float(np.median(np.diff(times)))
    angles = gaussian_filter1d(rotation, ANGLE_SMOOTH_S * fps, axis=0, mode="nearest")
    velocity = np.gradient(angles, times, axis=0)  # (T, 3) deg/s
    speed = np.linalg.norm(velocity, axis=1)
    smooth = ENVELOPE_SMOOTH_S * fps
    follows = pearson(gaussian_filter1d(speed, smooth, mode="nearest"), gaussian_filter1d(loudness, smooth, mode="nearest"))
    return np.array([*angles.std(0), np.median(speed), np.percentile(speed, 90),
                     *(band_rms(velocity, fps, lo, hi) for lo, hi in BANDS_HZ), follows])


def generated_stats(clip: RealClip, times: np.ndarray, fps: float, seeds: int) -> tuple[np.ndarray, np.ndarray]:
    """(mean over seeds of head_stats, seed 0's (T, 3) rotation) of the rule generator's head
    on the clip's audio (no text)."""
    from npcface.core.audio.decode import load_audio
    from npcface.core.motion.generator import MotionGenerator
    from npcface.core.phonetics.timeline import phones_for
    from npcface.core.types import Controls

    audio = load_audio(clip.path)
    timeline = phones_for(audio, None, language=clip.language)  # once: the head does not depend on the seed's phones
    loudness = loudness_at(audio.samples, times)
    stats, rotations = [], []
    for seed in range(seeds):
        track = MotionGenerator(Controls(fps=fps, seed=seed, language=clip.language)).animate_with_phones(audio, timeline)
        rotations.append(np.stack([np.interp(times, track.times, track.head_rotation[:, k]) for k in range(3)], 1))
        stats.append(head_stats(times, rotations[-1], loudness))
    return np.mean(stats, axis=0), rotations[0]


def plot_clip(name: str, times: np.ndarray, real: np.ndarray, generated: np.ndarray, loudness: np.ndarray) -> None:
    """bench/results/head_<clip>.png: captured and generated yaw, pitch, roll (each minus its
    mean: capture's pitch bias) over the loudness envelope."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(4, 1, figsize=(14, 8), sharex=True)
    for k, label in enumerate(("yaw", "pitch", "roll")):
        axes[k].plot(times, real[:, k] - real[:, k].mean(), color="black", label=f"captured {label}")
        axes[k].plot(times, generated[:, k] - generated[:, k].mean(), color="tab:blue", label=f"generated {label} (seed 0)")
        axes[k].set_ylabel("deg")
        axes[k].legend(loc="upper right", fontsize=8)
        axes[k].grid(alpha=0.3)
    axes[3].plot(times, loudness, color="tab:orange")
    axes[3].set_ylabel("loudness dB")
    axes[3].set_xlabel("time (s)")
    axes[0].set_title(name)
    figure.tight_layout()
    figure.savefig(RESULTS / f"head_{name}.png", dpi=70)
    plt.close(figure)


def measure(clips: list[RealClip], seeds: int, with_real: bool) -> dict[str, dict[str, list[float]]]:
    """{clip: {"real": stats, "generated": stats, "seconds": duration}}."""
    from npcface.core.audio.decode import load_audio

    out = {}
    for clip in clips:
        cap = captured(clip)
        times = cap.times[cap.times <= load_audio(clip.path).duration]  # frames the audio covers
        generated, rotation = generated_stats(clip, times, cap.fps, seeds)
        row = {"generated": generated.tolist(), "seconds": float(times[-1] - times[0])}
        if with_real:
            loudness = loudness_at(load_audio(clip.path).samples, times)
            row["real"] = head_stats(times, cap.rotation[:len(times)], loudness).tolist()
            plot_clip(clip.name, times, cap.rotation[:len(times)], rotation, loudness)
        out[clip.name] = row
        print(f"  measured {clip.name}", file=sys.stderr, flush=True)
    return out


def tuning_clips(data: str | None, group: str) -> list[RealClip]:
    """The clips head constants may be fitted to: not held out, not music; group "video" (people
    talking naturally) or "all" (GRID too). Empty, with a line saying so, when there are none."""
    clips = [c for c in real_clips(data_dir(data)) if not c.held_out and c.reliability != "music"
             and (group == "all" or c.group == "video")]
    if not clips:
        print(f"no tuning clips under {data_dir(data)}: nothing to do")
    return clips


def groups(clips: list[RealClip]) -> dict[str, list[RealClip]]:
    speech = [c for c in clips if c.reliability != "music"]
    return {"tuning: video": [c for c in speech if not c.held_out and c.group == "video"],
            "tuning: GRID s1": [c for c in speech if not c.held_out and c.group == "grid"],
            "tuning: all": [c for c in speech if not c.held_out],
            "held out: video": [c for c in speech if c.held_out and c.group == "video"],
            "held out: GRID s4": [c for c in speech if c.held_out and c.group == "grid"],
            "held out: all": [c for c in speech if c.held_out]}


def middle(per_clip: np.ndarray) -> np.ndarray:
    """(clips, STATS) -> (STATS,): the middle clip, the geometric mean of each amplitude statistic
    over the clips (they spread by factors), the mean of r (which may be negative)."""
    return np.array([*np.exp(np.log(np.maximum(per_clip[:, :-1], 1e-9)).mean(0)), per_clip[:, -1].mean()])


def _clip_spread(generated: dict, rows: dict, members: list[RealClip]) -> float:
    """How far each clip's own amount of motion is off (0: every clip matched; log(1.3) = 0.26)."""
    return float(np.mean([np.abs(np.log(np.array(generated[c.name]["generated"][:-1]) / np.array(rows[c.name]["real"][:-1])))
                          for c in members]))


def _fmt(values) -> str:
    return " ".join(f"{v:9.2f}" for v in values)


def print_tables(clips: list[RealClip], rows: dict, before: dict | None, revision: str | None) -> None:
    head = " ".join(f"{s:>9s}" for s in STATS)
    print("per clip: real (captured) values, then generated / real ratio (1.00 = same)")
    print(f"{'clip':16s} {'set':8s} {'dur s':>5s} {'':5s} {head}")
    for clip in clips:
        row = rows[clip.name]
        real, gen = np.array(row["real"]), np.array(row["generated"])
        tag = "music" if clip.reliability == "music" else ("held" if clip.held_out else "tune")
        print(f"{clip.name:16s} {tag:8s} {row['seconds']:5.1f} {'real':5s} {_fmt(real)}")
        safe = np.where(np.abs(real) > 1e-9, real, np.nan)
        if before is not None:
            print(f"{'':16s} {'':8s} {'':5s} {'rat b':5s} {_fmt(np.array(before[clip.name]['generated']) / safe)}")
        print(f"{'':16s} {'':8s} {'':5s} {'ratio':5s} {_fmt(gen / safe)}")
    print(f"\npooled (mean over the group's clips of each statistic); ratio = generated / real; "
          f"'within 30%' counts statistics with 0.7 <= ratio <= 1.3")
    print(f"{'group':18s} {'n':>2s} {'':7s} {head}")
    for label, members in groups(clips).items():
        if not members:
            continue
        real_per_clip = np.array([rows[c.name]["real"] for c in members])
        real = real_per_clip.mean(0)
        lines = [("real", real)]
        if before is not None:
            old_clips = np.array([before[c.name]["generated"] for c in members])
            lines += [("before", old_clips.mean(0)), ("ratio b", old_clips.mean(0) / real),
                      ("mid b", middle(old_clips) / middle(real_per_clip))]
        gen_clips = np.array([rows[c.name]["generated"] for c in members])
        ratio = gen_clips.mean(0) / real
        lines += [("now" if before is not None else "gen", gen_clips.mean(0)), ("ratio", ratio),
                  ("mid rat", middle(gen_clips) / middle(real_per_clip))]
        for i, (kind, values) in enumerate(lines):
            print(f"{label if i == 0 else '':18s} {len(members) if i == 0 else '':>2} {kind:7s} {_fmt(values)}")
        within = int(((ratio >= 0.7) & (ratio <= 1.3)).sum())
        note = f"  (before: {int(((lines[2][1] >= 0.7) & (lines[2][1] <= 1.3)).sum())})" if before is not None else ""
        print(f"{'':18s} {'':2s} within 30%: {within}/{len(STATS)}{note}")
        spread = [_clip_spread(rows, rows, members)] + ([_clip_spread(before, rows, members)] if before is not None else [])
        print(f"{'':18s} {'':2s} per clip, mean |log ratio| of the amplitude statistics (all but r): {spread[0]:.2f}"
              + (f"  (before: {spread[1]:.2f})" if before is not None else ""))
    if revision:
        print(f"before = the generator at {revision}, now = this tree; same captures, same clips, same run")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the shared data folder (default ../shared/data)")
    parser.add_argument("--refresh", action="store_true", help="capture again even when cached")
    parser.add_argument("--before", metavar="REV", help="also measure the generator at this git revision")
    parser.add_argument("--seeds", type=int, default=3, help="generator seeds averaged per clip (default 3)")
    add_revision_options(parser)  # --json, --code: what --before's run of REV is given
    args = parser.parse_args()
    clips = chosen_clips(args.data)
    if not clips:
        return 0
    sys.path.insert(0, str(REPO))
    use_code_from(args.code)
    if args.json:
        print(json.dumps(measure(clips, args.seeds, with_real=False)))
        return 0
    if args.refresh:
        for clip in clips:
            captured(clip, refresh=True)
    before = None
    if args.before:
        extra = (["--data", args.data] if args.data else []) + ["--seeds", str(args.seeds)]
        before = json.loads(run_at_revision(args.before, str(Path(__file__).resolve()), extra).splitlines()[-1])
    rows = measure(clips, args.seeds, with_real=True)
    print_tables(clips, rows, before, args.before)
    return 0


if __name__ == "__main__":
    sys.exit(main())
