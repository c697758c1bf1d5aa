"""Motion generator speed on real audio, one CPU core: real-time factor offline and streaming,
where the time goes, and streaming latency, beside a loudness-only baseline measured in the same run.

    .venv/bin/python bench/bench_motion.py [--chunk-ms 20] [--data DIR]

Real audio comes from ../shared/data/audio (or $NPCFACE_DATA/audio); the script says so and exits 0
when it is absent. The baseline is what volume-driven lip sync amounts to: decode, features, and the
log loudness envelope mapped to JawOpen per frame.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]


def data_dir(override: str | None) -> Path:
    if override:
        return Path(override)
    if os.environ.get("NPCFACE_DATA"):
        return Path(os.environ["NPCFACE_DATA"])
    return REPO.parent / "shared" / "data"


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, time.perf_counter() - start


def loudness_baseline(samples: np.ndarray, fps: float) -> np.ndarray:
    """Volume-driven lip sync: JawOpen from the log loudness envelope, per frame."""
    from npcface.core.features import compute_features

    feats = compute_features(samples)
    loud = np.maximum(feats.loudness_db, -70.0)
    jaw = np.clip((loud - (loud.max() - 35.0)) / 35.0, 0.0, 1.0)
    times = np.arange(int(np.ceil(len(samples) / 16000 * fps))) / fps
    return np.interp(times, np.arange(len(jaw)) * 0.01, jaw)


def bench_file(path: Path, chunk_ms: float) -> dict[str, float]:
    from npcface.core.audio import load_audio
    from npcface.core.features import compute_features
    from npcface.core.features import FeatureStream
    from npcface.core.motion import MotionGenerator
    from npcface.core.phonetics import phones_for
    from npcface.core.types import Controls

    english = "_en" in path.stem or path.stem.startswith(("a15", "a16", "a18"))
    language = "en-us" if english else "xx"
    audio, t_decode = timed(load_audio, path)
    _, t_features = timed(compute_features, audio.samples)
    timeline, t_phones = timed(phones_for, audio, None, language)
    generator = MotionGenerator(Controls(language=language))
    _, t_generate = timed(generator.animate_with_phones, audio, timeline)
    _, t_baseline = timed(loudness_baseline, audio.samples, 60.0)

    def stream_time(make_stream, chunk_ms: float) -> tuple[float, list[float]]:
        stream, chunk, per_chunk = make_stream(), int(16000 * chunk_ms / 1000), []
        for pos in range(0, len(audio.samples), chunk):
            per_chunk.append(timed(stream.push_audio, audio.samples[pos:pos + chunk])[1])
        return sum(per_chunk) + timed(stream.finish)[1], per_chunk

    t_stream, per_chunk = stream_time(lambda: generator.stream(None), chunk_ms)
    t_stream_fixed, _ = stream_time(lambda: generator.stream_with_phones(timeline), chunk_ms)
    t_stream_100, _ = stream_time(lambda: generator.stream(None), 100.0)
    features_stream = FeatureStream()
    stream_features = sum(timed(features_stream.push, audio.samples[p:p + int(16 * chunk_ms)])[1]
                          for p in range(0, len(audio.samples), int(16 * chunk_ms)))
    return {
        "duration": audio.duration, "decode": t_decode, "features": t_features, "phones": t_phones,
        "layers": max(t_generate - t_features, 0.0), "offline": t_decode + t_phones + t_generate,
        "baseline": t_decode + t_baseline, "stream": t_stream, "stream_100": t_stream_100,
        "stream_features": stream_features, "stream_phones": max(t_stream - t_stream_fixed, 0.0),
        "stream_motion": max(t_stream_fixed - stream_features, 0.0),
        "chunk_p50": float(np.percentile(per_chunk, 50)), "chunk_p95": float(np.percentile(per_chunk, 95)),
        "chunk_max": float(np.max(per_chunk)), "language": language,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunk-ms", type=float, default=20.0, help="streaming chunk size")
    parser.add_argument("--data", help="the shared data folder (default ../shared/data)")
    args = parser.parse_args()
    audio_dir = data_dir(args.data) / "audio"
    files = sorted(audio_dir.glob("a*")) if audio_dir.is_dir() else []
    if not files:
        print(f"no real audio in {audio_dir}: nothing to measure (set NPCFACE_DATA or --data)")
        return 0
    torch.set_num_threads(1)
    sys.path.insert(0, str(REPO))
    from npcface.core.motion import FRAME_REACH_S
    from npcface.core.types import Controls

    print(f"one core (torch threads = {torch.get_num_threads()}), streaming chunks of {args.chunk_ms:g} ms\n")
    header = (f"{'file':38s} {'lang':5s} {'dur s':>6s} {'decode':>7s} {'feats':>7s} {'phones':>7s} {'layers':>7s} "
              f"{'RTF off':>8s} {'RTF str':>8s} {'str100':>7s} {'RTF base':>8s} {'chunk p95 ms':>12s}")
    print(header)
    print("-" * len(header))
    rows = []
    for path in files:
        r = bench_file(path, args.chunk_ms)
        rows.append(r)
        print(f"{path.name[:38]:38s} {r['language'][:5]:5s} {r['duration']:6.2f} {r['decode']:7.3f} {r['features']:7.3f} "
              f"{r['phones']:7.3f} {r['layers']:7.3f} {r['duration'] / r['offline']:8.1f} "
              f"{r['duration'] / r['stream']:8.1f} {r['duration'] / r['stream_100']:7.1f} "
              f"{r['duration'] / r['baseline']:8.1f} {1000 * r['chunk_p95']:12.2f}")
    total = {k: sum(r[k] for r in rows) for k in ("duration", "decode", "features", "phones", "layers", "offline", "stream",
                                                  "stream_100", "baseline", "stream_features", "stream_phones", "stream_motion")}
    print("-" * len(header))
    print(f"{'all':38s} {'':5s} {total['duration']:6.2f} {total['decode']:7.3f} {total['features']:7.3f} "
          f"{total['phones']:7.3f} {total['layers']:7.3f} {total['duration'] / total['offline']:8.1f} "
          f"{total['duration'] / total['stream']:8.1f} {total['duration'] / total['stream_100']:7.1f} "
          f"{total['duration'] / total['baseline']:8.1f}")
    share = {k: 100 * total[k] / (total["decode"] + total["phones"] + total["features"] + total["layers"])
             for k in ("decode", "features", "phones", "layers")}
    print("\noffline time share: " + ", ".join(f"{k} {v:.0f}%" for k, v in share.items()))
    parts = {k: total["stream_" + k] for k in ("features", "phones", "motion")}
    print(f"streaming ({args.chunk_ms:g} ms chunks) seconds per audio second: "
          + ", ".join(f"{k} {v / total['duration']:.4f}" for k, v in parts.items())
          + "  (features and phones are re-run per chunk; the motion layers run once per push)")
    p95 = max(r["chunk_p95"] for r in rows)
    worst = max(r["chunk_max"] for r in rows)
    lookahead = Controls().lookahead_s
    print(f"streaming latency: lookahead {1000 * lookahead:.0f} ms (features reach {1000 * FRAME_REACH_S:.0f} ms) "
          f"+ chunk buffering {args.chunk_ms:g} ms + compute p95 {1000 * p95:.1f} ms (worst {1000 * worst:.1f} ms) "
          f"= {1000 * lookahead + args.chunk_ms + 1000 * p95:.0f} ms")
    target = 20.0
    for label, key in (("offline", "offline"), (f"streaming {args.chunk_ms:g} ms chunks", "stream"),
                       ("streaming 100 ms chunks", "stream_100")):
        rtf = total["duration"] / total[key]
        print(f"target >= {target:g}x real time on one core, phonetics included, {label}: "
              f"{rtf:.1f}x {'meets' if rtf >= target else 'MISSES'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
