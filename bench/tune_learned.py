"""The quick loop used to tune the learned mouth on the real videos: per clip r of the lip gap
(lag 0 / best lag) for weights files, the rules, and blends of the rules' and the learned lip gap,
on bench_learned's fixed split (tuning clips guide choices; held-out clips are only reported).

    .venv/bin/python bench/tune_learned.py [--data DIR] [--grid N] [--held-out] WEIGHTS.safetensors...

The network's rows are read directly (no full generator run), which matches bench_learned's
learned figures to about 0.01. The rules' curves are computed once and cached in bench/results/.
Exits 0 with a note without the data folder.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from _common import REPO, data_dir  # noqa: E402

sys.path.insert(0, str(REPO / "bench"))
from bench_learned import HELD_OUT_VIDEOS, RECIPE, TUNING_VIDEOS  # noqa: E402
from bench_quality import lagged_r, loudness_envelope  # noqa: E402

BLEND_WEIGHTS = (0.3, 0.5, 0.7)  # share of the learned lip gap


def aligned_phones(video: Path):
    """The clip's phones from its text (forced alignment, as `animate --text`), or None."""
    from npcface.core.audio.decode import load_audio
    from npcface.core.phonetics.timeline import phones_for
    from npcface.core.train.data import text_beside

    text = text_beside(video)
    return None if text is None else phones_for(load_audio(video), text)


def clip_curves(video: Path) -> dict[str, np.ndarray]:
    """Truth, features, loudness and the rules' lip gap of one video (rules cached by content hash)."""
    from npcface.core.audio.decode import load_audio
    from npcface.core.capture.cache import capture_cached, file_digest
    from npcface.core.motion.generator import MotionGenerator
    from npcface.core.train.data import clip_features
    from npcface.core.types import Controls

    captured = capture_cached(video)
    audio = load_audio(video)
    cache = REPO / "bench" / "results" / f"tune_learned_rules_{file_digest(video)[:16]}.npz"
    if cache.exists():
        stored = np.load(cache, allow_pickle=False)
        rules_times, rules_gap = stored["times"], stored["gap"]
    else:
        track = MotionGenerator(Controls(fps=100.0)).animate(audio)
        rules_times, rules_gap = track.times, (track.channel("JawOpen") - track.channel("MouthClose")).astype(np.float64)
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, times=rules_times, gap=rules_gap)
    loud_times, loudness = loudness_envelope(audio.samples)
    return {"truth_times": captured.track.times, "truth": captured.mouth_opening.astype(np.float64),
            "features": clip_features(video), "loud_times": loud_times, "loudness": loudness,
            "rules_times": rules_times, "rules": rules_gap}


def learned_gap(model, features: np.ndarray, phones=None) -> tuple[np.ndarray, np.ndarray]:
    """(row times, lip gap) as the generator makes it: JawOpen - MouthClose from the outputs
    (``phones``: the line's PhoneTimeline, read by a model with phone classes)."""
    from npcface.core.motion.learned import run_model

    out = run_model(model, features.astype(np.float64), final=True, phones=phones)
    names = model.config.outputs
    jaw = np.clip(out[:, names.index("JawOpen")], 0, 1)
    gap = np.clip(out[:, names.index("LipGap")], 0, 1)
    return (np.arange(len(out)) + 0.5) * 0.01, jaw - np.clip(jaw - gap, 0, 1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("weights", nargs="+", type=Path)
    parser.add_argument("--data", help="the shared data folder (default ../shared/data)")
    parser.add_argument("--grid", type=int, default=0,
                        help="also score this many of the recipe's held-out GRID clips per speaker "
                             "(without text, and the learned mouth with its text)")
    parser.add_argument("--held-out", action="store_true",
                        help="also score the held-out clips (look once, at the end: they must not guide choices)")
    args = parser.parse_args()
    data = data_dir(args.data)
    if not (data / "video").is_dir():
        print(f"no real data in {data}: nothing to measure (set NPCFACE_DATA or --data)")
        return 0
    sys.path.insert(0, str(REPO))
    from npcface.core.motion.learned_weights import load_weights

    models = {w.stem: load_weights(w).double() for w in args.weights}
    videos = {v.stem.split("_")[0]: v for v in sorted((data / "video").glob("v*.mp4"))}
    sets = [("tuning", TUNING_VIDEOS)]
    recipe = json.loads(RECIPE.read_text())
    for speaker in ("s1", "s4") if args.grid else ():
        held = [n for n in recipe["held_out"] if n.startswith(f"{speaker}/")][:args.grid]
        videos.update({n: data / "train" / "grid" / f"{n}.mp4" for n in held})
        sets.append((f"GRID {speaker} held out", tuple(held)))
    if args.held_out:
        sets.append(("held out", HELD_OUT_VIDEOS))
    for label, names in sets:
        results: dict[str, list] = {}
        missing = [n for n in names if n not in videos or not videos[n].exists()]
        if missing:  # a smaller data folder: say so rather than stop on the first absent clip
            print(f"{label}: not in {data}: {', '.join(missing)}")
        for name in (n for n in names if n not in missing):
            c = clip_curves(videos[name])
            curves = {"loudness": (c["loud_times"], c["loudness"]), "rules": (c["rules_times"], c["rules"])}
            timeline = aligned_phones(videos[name]) if label.startswith("GRID") else None
            for stem, model in models.items():
                times, gap = learned_gap(model, c["features"])
                curves[stem] = (times, gap)
                if timeline is not None and model.config.phone_classes:  # the network alone (no aligned closures)
                    curves[f"{stem} with text"] = learned_gap(model, c["features"], timeline)
                for share in BLEND_WEIGHTS:
                    curves[f"{share:.1f} {stem} + rules"] = (times, share * gap + (1 - share) * np.interp(times, c["rules_times"], c["rules"]))
            for key, (times, curve) in curves.items():
                results.setdefault(key, []).append(lagged_r(c["truth_times"], c["truth"], times, curve))
        print(f"\n{label} clips: " + " ".join(names))
        for key, rows in results.items():
            cells = " ".join(f"{n.split('/')[-1]} {r0:5.2f}/{best:4.2f}" for n, (r0, best, _) in zip(names, rows))
            print(f"{key:28s} mean {np.mean([r[0] for r in rows]):.3f}/{np.mean([r[1] for r in rows]):.3f} | {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
