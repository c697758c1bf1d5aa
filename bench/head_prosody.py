"""Does the voice say how much a speaker's head moves? Per TUNING clip: real head activity beside
prosodic activity of the same audio, and their correlation across clips.

    .venv/bin/python bench/head_prosody.py [--data DIR] [--group video|all] [--seeds N]

Head activity (captured, bench/bench_head.py's statistics): std of yaw / pitch / roll, the
angular speed's median. Prosody (core/audio/features.py and core/motion/cues.py, speech rows =
level > SPEECH_LEVEL): loudness std and p90-p10 range (dB), f0 std and p90-p10 range in
semitones, syllable rate (loudness peaks per second of speech), pause share, spectral flux,
mean emphasis (dB), mean activity and pitch cues. Held-out clips are never read. Prints the per
clip table, Pearson and Spearman r of each prosodic measure with log head activity across the
clips, then the same for log(real / generated) (the generator of this tree on the same audio,
seeds 0..N-1): what the generator misses, what a head paced by the voice would have to fix.
Plots bench/results/head_prosody.png (head activity against each measure, per clip).

Found (10 tuning videos): only the pause share stood out (log(real / generated) speed r -0.76,
std yaw -0.61; Spearman -0.70 / -0.66; -0.44 to -0.71 leaving any one clip out): p 0.01 alone,
but the best of 10 measures x 4 statistics on 10 clips (~0.4 after that many tries). Pacing the head by a
running pause share (fitted slope 3.7) left the per-clip error where it was (mean |log ratio| of
the amplitude statistics per tuning clip 0.47 -> 0.47) and was not kept.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
from scipy.signal import find_peaks
from scipy.stats import spearmanr

from _common import pearson
from _real_clips import REPO, RESULTS, captured
from bench_head import generated_stats, head_stats, loudness_at, tuning_clips

SPEECH_LEVEL = 0.3
HEAD = ("std yaw", "std pitch", "std roll", "speed med")
_HEAD_COLUMNS = [0, 1, 2, 3]  # of bench_head.STATS
PROSODY = ("loud std", "loud rng", "f0 st std", "f0 st rng", "syl/s", "pause", "flux", "emph", "activity", "pitch")


def prosody(samples: np.ndarray) -> np.ndarray:
    """(len(PROSODY),) prosodic activity of one clip's audio."""
    from npcface.core.audio.features import compute_features
    from npcface.core.motion.cues import compute_cues
    from npcface.core.types import FEATURE_HOP_S

    feats = compute_features(samples)
    cues = compute_cues(feats)
    speech = cues.level > SPEECH_LEVEL
    loud = feats.loudness_db[speech].astype(np.float64)
    f0 = feats.f0_hz[speech & (feats.f0_hz > 0)].astype(np.float64)
    semitones = 12.0 * np.log2(f0 / 100.0) if len(f0) else np.zeros(1)
    mel = feats.log_mel.astype(np.float64)
    flux = np.sqrt((np.diff(mel, axis=0) ** 2).mean(1))[speech[1:]]
    peaks, _ = find_peaks(np.convolve(cues.level, np.ones(5) / 5, mode="same"), prominence=0.15, distance=8)
    speech_s = max(speech.sum() * FEATURE_HOP_S, 1e-3)
    return np.array([loud.std(), np.subtract(*np.percentile(loud, [90, 10])), semitones.std(),
                     np.subtract(*np.percentile(semitones, [90, 10])), len(peaks) / speech_s, 1.0 - speech.mean(),
                     flux.mean(), cues.emphasis[speech].mean(), cues.activity.mean(), cues.pitch[speech].mean()])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the shared data folder (default ../shared/data)")
    parser.add_argument("--group", choices=("video", "all"), default="video")
    parser.add_argument("--seeds", type=int, default=2, help="generator seeds per clip (default 2)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    from npcface.core.audio.decode import load_audio

    clips = tuning_clips(args.data, args.group)
    if not clips:
        return 0
    head, voice, generated = [], [], []
    for clip in clips:
        cap, audio = captured(clip), load_audio(clip.path)
        times = cap.times[cap.times <= audio.duration]
        stats = head_stats(times, cap.rotation[:len(times)], loudness_at(audio.samples, times))
        head.append(stats[_HEAD_COLUMNS])
        generated.append(generated_stats(clip, times, cap.fps, args.seeds)[0][_HEAD_COLUMNS])
        voice.append(prosody(audio.samples))
    head, voice, generated = np.array(head), np.array(voice), np.array(generated)
    print(f"{'clip':16s} " + " ".join(f"{h:>9s}" for h in HEAD) + " | " + " ".join(f"{p:>9s}" for p in PROSODY))
    for clip, h, v in zip(clips, head, voice):
        print(f"{clip.name:16s} " + " ".join(f"{x:9.2f}" for x in h) + " | " + " ".join(f"{x:9.2f}" for x in v))
    print(f"\nacross {len(clips)} tuning clips: Pearson r (Spearman rho) of log head activity with each prosodic measure")
    _print_r(np.log(head), voice)
    print(f"\nthe generator today (seeds 0..{args.seeds - 1}): per clip generated / real")
    print(f"{'clip':16s} " + " ".join(f"{h:>9s}" for h in HEAD))
    for clip, g, h in zip(clips, generated, head):
        print(f"{clip.name:16s} " + " ".join(f"{x:9.2f}" for x in g / h))
    print("Pearson r (Spearman rho) of log(real / generated) with each prosodic measure: what the generator misses")
    _print_r(np.log(head / generated), voice)  # + r: the real head moves more than generated where the measure is high
    plot(clips, head, voice)
    return 0


def _print_r(log_head: np.ndarray, voice: np.ndarray) -> None:
    print(f"{'':10s} " + " ".join(f"{h:>13s}" for h in HEAD))
    for j, name in enumerate(PROSODY):
        cells = [f"{pearson(log_head[:, i], voice[:, j]):+.2f} ({spearmanr(log_head[:, i], voice[:, j])[0]:+.2f})"
                 for i in range(len(HEAD))]
        print(f"{name:10s} " + " ".join(f"{c:>13s}" for c in cells))


def plot(clips, head: np.ndarray, voice: np.ndarray) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(len(HEAD), len(PROSODY), figsize=(2.2 * len(PROSODY), 2.2 * len(HEAD)))
    for i, h in enumerate(HEAD):
        for j, p in enumerate(PROSODY):
            ax = axes[i, j]
            ax.scatter(voice[:, j], head[:, i], s=12)
            for clip, x, y in zip(clips, voice[:, j], head[:, i]):
                ax.annotate(clip.name, (x, y), fontsize=6)
            ax.set_yscale("log")
            ax.set_title(f"r {pearson(np.log(head[:, i]), voice[:, j]):+.2f}", fontsize=8)
            if i == len(HEAD) - 1:
                ax.set_xlabel(p, fontsize=8)
            if j == 0:
                ax.set_ylabel(h, fontsize=8)
            ax.tick_params(labelsize=6)
    figure.tight_layout()
    RESULTS.mkdir(parents=True, exist_ok=True)
    figure.savefig(RESULTS / "head_prosody.png", dpi=70)
    plt.close(figure)


if __name__ == "__main__":
    sys.exit(main())
