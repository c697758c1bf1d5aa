"""Audio front end speed and behaviour on real recordings: decoding, features, phones.

    .venv/bin/python bench/bench_phonetics.py [--data DIR] [--chunk-ms 20] [--plots]

For each file in ../shared/data/audio (or $NPCFACE_DATA/audio) it prints seconds of work per
second of audio (RTF; lower is better, 0.05 = 20x faster than real time) on one thread for:
decode + resample, features offline and streamed, phones offline and streamed (recognition for
English, the acoustic fallback otherwise, forced alignment for English with a proxy transcript),
plus the streaming lag of `PhoneStream.phones()` and how often settled streamed phones agree with
the final timeline. Baselines in the same run: torchaudio's resampler against ours, and
pocketsphinx's two-pass phone alignment (`set_align_text` + `set_alignment`) against our
one-pass grammar alignment (speed and boundary agreement).

English files have no transcript here, so their "text" is pocketsphinx's own word recognition of
the file (a proxy with recognition errors: alignment timing is still measured on it).
With --plots, writes bench/results/phonetics_<file>.png (waveform, loudness, F1/F2, phones).
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # one core, before numpy/torch start their pools
os.environ.setdefault("MKL_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from _common import data_dir, timed  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ENGLISH = ("a15", "a16", "a18", "a07")  # a07 is English singing: run both ways
VOWELS = set("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split())


def proxy_transcript(samples: np.ndarray) -> str:
    from pocketsphinx import Decoder

    decoder = Decoder(loglevel="FATAL")
    decoder.start_utt()
    decoder.process_raw((samples * 32767).astype("<i2").tobytes(), full_utt=True)
    decoder.end_utt()
    hypothesis = decoder.hyp()
    return hypothesis.hypstr if hypothesis else ""


def two_pass_alignment(samples: np.ndarray, text: str) -> tuple[list[tuple[str, float]], float]:
    """pocketsphinx's documented phone alignment, for comparison: [(phone, start s)], seconds."""
    from pocketsphinx import Decoder

    from npcface.core.phonetics.g2p import words_of
    from npcface.core.phonetics.sphinx import _DITHER, _LEAD_IN, LEAD_IN_S

    padded = np.concatenate([np.zeros(_LEAD_IN, np.float32), samples])
    dither = _DITHER[np.arange(len(padded)) % len(_DITHER)]
    pcm = np.clip(padded * 32767 + dither, -32768, 32767).astype("<i2").tobytes()
    start = time.perf_counter()
    decoder = Decoder(lm=None, bestpath=False, loglevel="FATAL", beam=1e-200, wbeam=1e-200, pbeam=1e-200)
    words = [w for w in words_of(text) if decoder.lookup_word(w)]
    decoder.set_align_text(" ".join(words))
    decoder.start_utt()
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    if decoder.hyp() is None:
        return [], time.perf_counter() - start
    decoder.set_alignment()
    decoder.start_utt()  # second pass: phone and state alignment (hyp() here can crash pocketsphinx)
    decoder.process_raw(pcm, full_utt=True)
    decoder.end_utt()
    phones = [(p.name, p.start * 0.01 - LEAD_IN_S) for w in decoder.get_alignment() for p in w]
    return phones, time.perf_counter() - start


def stream_phones(samples: np.ndarray, text: str | None, language: str, chunk: int):
    """Push in chunks calling phones() each time: (final, seconds, lags, agreement)."""
    from npcface.core.phonetics.timeline import PhoneStream

    start = time.perf_counter()
    stream = PhoneStream(text, language)
    snapshots = []
    for position in range(0, len(samples), chunk):
        stream.push(samples[position : position + chunk])
        snapshots.append((min(position + chunk, len(samples)) / 16000, stream.phones()))
    final = stream.finish()
    seconds = time.perf_counter() - start
    lags = [pushed - (phones[-1].end if phones else 0.0) for pushed, phones in snapshots]
    # agreement with the final timeline by how long ago the streamed phone ended
    buckets = {"<0.1s": [0, 0], "0.1-0.3s": [0, 0], ">0.3s": [0, 0]}
    for pushed, phones in snapshots[:: max(1, len(snapshots) // 200)]:
        for phone in phones:
            if phone.label == "SIL":
                continue
            age = pushed - phone.end
            bucket = buckets["<0.1s" if age < 0.1 else ("0.1-0.3s" if age < 0.3 else ">0.3s")]
            bucket[0] += 1
            bucket[1] += any(q.label == phone.label and abs(q.start - phone.start) <= 0.03 for q in final.phones)
    agreement = {name: hits / max(count, 1) for name, (count, hits) in buckets.items()}
    return final, seconds, lags, agreement


def summary(timeline, duration: float) -> str:
    labels = [p.label for p in timeline.phones]
    speech = sum(p.end - p.start for p in timeline.phones if p.label != "SIL")
    vowels = sum(label in VOWELS for label in labels)
    closures = sum(label in ("P", "B", "M") for label in labels)
    return (f"{len(labels) / duration:5.1f} phones/s, speech {speech / duration:4.0%}, "
            f"{vowels / duration:4.1f} vowels/s, {closures / duration:4.1f} P/B/M per s")


def plot(path: Path, audio, features, timeline, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = features.start_time + np.arange(features.num_frames) * 0.01
    fig, axes = plt.subplots(3, 1, figsize=(16, 7), sharex=True)
    axes[0].plot(np.arange(len(audio.samples)) / 16000, audio.samples, lw=0.3)
    axes[0].set_title(f"{path.name}: phones ({timeline.source}, {timeline.language})")
    axes[1].plot(t, features.loudness_db, lw=0.8, label="loudness dBFS")
    axes[1].plot(t, features.voicing * 40 - 80, lw=0.8, label="voicing (scaled)")
    axes[1].legend(loc="upper right")
    axes[2].scatter(t, np.where(features.f1_hz > 0, features.f1_hz, np.nan), s=2, label="F1")
    axes[2].scatter(t, np.where(features.f2_hz > 0, features.f2_hz, np.nan), s=2, label="F2")
    axes[2].set_ylim(0, 3500)
    axes[2].legend(loc="upper right")
    for phone in timeline.phones:
        if phone.label == "SIL":
            continue
        color = "tab:green" if phone.label in VOWELS else ("tab:red" if phone.label in ("P", "B", "M") else "tab:gray")
        axes[0].axvspan(phone.start, phone.end, color=color, alpha=0.15)
        axes[0].text((phone.start + phone.end) / 2, 0.9 * np.abs(audio.samples).max(), phone.label, fontsize=6, ha="center")
    axes[2].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)


def bench_file(path: Path, chunk_ms: float, make_plot: bool) -> dict[str, float]:
    import soundfile
    import torchaudio

    from npcface.core.audio.decode import load_audio, resample_to_16k
    from npcface.core.audio.features import FeatureStream, compute_features
    from npcface.core.phonetics.timeline import phones_for

    audio, t_decode = timed(load_audio, path)
    duration = audio.duration
    row = {"duration": duration, "decode": t_decode / duration}
    features, t_features = timed(compute_features, audio.samples)
    row["features"] = t_features / duration
    chunk = int(chunk_ms * 16)
    stream = FeatureStream()
    start = time.perf_counter()
    for position in range(0, len(audio.samples), chunk):
        stream.push(audio.samples[position : position + chunk])
    stream.flush()
    row["features_stream"] = (time.perf_counter() - start) / duration

    if audio.source_rate != 16000:  # resampler baseline: torchaudio on the same decoded source
        try:
            source, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
            mono = source.mean(axis=1)
            ours, t_ours = timed(resample_to_16k, mono, rate)
            theirs, t_theirs = timed(torchaudio.functional.resample, torch.from_numpy(mono), rate, 16000)
            n = min(len(ours), len(theirs))
            row["resample_ours"], row["resample_torchaudio"] = t_ours / duration, t_theirs / duration
            row["resample_diff"] = float(np.abs(ours[:n] - theirs.numpy()[:n])[100:-100].max())
        except (soundfile.LibsndfileError, RuntimeError):
            pass

    english = path.stem.startswith(ENGLISH)
    runs = [("acoustic", None, "xx")] if not english else [("recognized", None, "en-us")]
    if english:
        text = proxy_transcript(audio.samples)
        runs.append(("aligned", text, "en-us"))
        if path.stem.startswith("a07"):
            runs.append(("acoustic", None, "singing"))
    for name, text, language in runs:
        timeline, seconds = timed(phones_for, audio, text, language)
        final, stream_seconds, lags, agreement = stream_phones(audio.samples, text, language, chunk)
        key = f"{name}/{language}"
        row[f"phones {key}"] = seconds / duration
        row[f"phones {key} stream"] = stream_seconds / duration
        row[f"lag {key} median"] = float(np.median(lags))
        row[f"lag {key} p95"] = float(np.percentile(lags, 95))
        for bucket, share in agreement.items():
            row[f"agree {key} {bucket}"] = share
        row[f"stream==offline {key}"] = float(final.phones == timeline.phones)
        print(f"    {key:20s} source={timeline.source:10s} {summary(timeline, duration)}")
        if name == "aligned":
            reference, t_two_pass = two_pass_alignment(audio.samples, text)
            row["two_pass_align"] = t_two_pass / duration
            ours = [(p.label, p.start) for p in timeline.phones if p.label != "SIL"]
            theirs = [(label, start) for label, start in reference if label != "SIL"]
            if timeline.source == "aligned" and len(ours) == len(theirs) and ours:
                offsets = np.abs(np.array([a[1] for a in ours]) - np.array([b[1] for b in theirs]))
                row["align vs two-pass median ms"] = float(np.median(offsets) * 1000)
                row["align vs two-pass p90 ms"] = float(np.percentile(offsets, 90) * 1000)
        if make_plot and (name != "recognized" or not english or True):
            out = REPO / "bench" / "results" / f"phonetics_{path.stem}_{name}_{language}.png"
            out.parent.mkdir(parents=True, exist_ok=True)
            plot(path, audio, features, timeline, out)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="folder holding audio/ (default ../shared/data or $NPCFACE_DATA)")
    parser.add_argument("--chunk-ms", type=float, default=20.0, help="streaming chunk size")
    parser.add_argument("--plots", action="store_true", help="write bench/results/phonetics_*.png")
    args = parser.parse_args()
    folder = data_dir(args.data) / "audio"
    if not folder.is_dir():
        print(f"no real audio at {folder}; nothing to measure")
        return 0
    torch.set_num_threads(1)
    rows = {}
    for path in sorted(folder.iterdir()):
        print(f"{path.name}")
        rows[path.name] = bench_file(path, args.chunk_ms, args.plots)
        for key, value in rows[path.name].items():
            print(f"    {key:36s} {value:8.4f}")
    total = sum(row["duration"] for row in rows.values())
    print(f"\nall files, {total:.1f} s of audio; RTF weighted by duration:")
    keys = sorted({key for row in rows.values() for key in row if key != "duration" and not key.startswith(("lag", "agree", "stream==", "align vs", "resample_diff"))})
    for key in keys:
        used = [(row[key], row["duration"]) for row in rows.values() if key in row]
        weighted = sum(value * seconds for value, seconds in used) / sum(seconds for _, seconds in used)
        print(f"    {key:36s} {weighted:8.4f}  ({len(used)} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
