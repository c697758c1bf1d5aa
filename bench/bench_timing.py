"""Mouth timing on real clips: does the rule generator's mouth lead, meet or trail the sound?

    .venv/bin/python bench/bench_timing.py [--data DIR] [--before REV]

Per real clip (bench/_real_clips.py), against the captured inner-lip gap (MediaPipe, cached):
- L: the loudness envelope's best lag: the clip's own A/V offset plus how far real mouths lead
  their sound;
- G: the best lag of the generator's lip gap (JawOpen - MouthClose + lip parting; no text, and
  for GRID also with its exact words, forced alignment);
lag > 0: the video's mouth moves after the curve; searched within +-MAX_LAG_S, 10 ms steps,
refined by a parabola through the peak. G - L is the generated mouth's lead over the sound with
the clip's offset cancelled: > 0 it moves before the sound, 0 meets it, < 0 trails it. Real
mouths lead (on GRID, synced studio video, -L says by how much). Pooled lags come from the mean
of the clips' r(lag) curves. --before REV measures the generator at git revision REV in the same
run. Exits 0 with a note when the data folder is absent.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from _common import REPO, add_revision_options, pearson, run_at_revision, use_code_from
from _real_clips import RealClip, captured, chosen_clips

MAX_LAG_S = 0.2  # wider and 3 s GRID clips alias onto the next syllable (~250 ms away)
LAG_STEP_S = 0.01
LAGS = np.round(np.arange(-MAX_LAG_S, MAX_LAG_S + 1e-9, LAG_STEP_S), 3)
LOUDNESS_FLOOR_DB = 40.0
ANIMATE_FPS = 100.0  # 10 ms frames, so lags are not quantised by the frame rate


def r_by_lag(truth_times: np.ndarray, truth: np.ndarray, times: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """(len(LAGS),) Pearson r of truth and the curve sampled at truth_times - lag, over the
    frames where every lag stays inside the curve."""
    inside = (truth_times - MAX_LAG_S >= times[0]) & (truth_times + MAX_LAG_S <= times[-1])
    return np.array([pearson(truth[inside], np.interp(truth_times[inside] - lag, times, curve)) for lag in LAGS])


def best_lag(rs: np.ndarray) -> tuple[float, float]:
    """(lag s, r there): the peak of r(lag), refined by a parabola through it and its neighbours."""
    i = int(np.argmax(rs))
    if 0 < i < len(rs) - 1:
        a, b, c = rs[i - 1], rs[i], rs[i + 1]
        curvature = a - 2 * b + c
        shift = 0.5 * (a - c) / curvature if curvature < 0 else 0.0
        return float(LAGS[i] + shift * LAG_STEP_S), float(b - 0.25 * (a - c) * shift)
    return float(LAGS[i]), float(rs[i])


def loudness_curve(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from npcface.core.audio.features import compute_features
    from npcface.core.types import FEATURE_HOP_S

    loudness = compute_features(samples).loudness_db.astype(np.float64)
    envelope = np.maximum(loudness, loudness.max() - LOUDNESS_FLOOR_DB)
    return np.arange(len(envelope)) * FEATURE_HOP_S, envelope


def generated_curves(clip: RealClip) -> dict[str, list[float]]:
    """{"no text": r(lag), "text": r(lag) (clips with known words)} of the generator's lip gap."""
    from npcface.core.audio.decode import load_audio
    from npcface.core.motion.generator import MotionGenerator
    from npcface.core.types import Controls
    from npcface.core.motion.visemes import lip_gap

    cap = captured(clip)
    audio = load_audio(clip.path)
    generator = MotionGenerator(Controls(fps=ANIMATE_FPS, language=clip.language))
    out = {}
    for case, text in (("no text", None), ("text", clip.text)):
        if case == "text" and not text:
            continue
        track = generator.animate(audio, text=text)
        out[case] = r_by_lag(cap.times, cap.lip_gap, track.times, lip_gap(track.blendshapes).astype(np.float64)).tolist()
    return out


def measure(clips: list[RealClip]) -> dict[str, dict[str, list[float]]]:
    out = {}
    for clip in clips:
        out[clip.name] = generated_curves(clip)
        print(f"  animated {clip.name}", file=sys.stderr, flush=True)
    return out


def loudness_rs(clips: list[RealClip]) -> dict[str, np.ndarray]:
    from npcface.core.audio.decode import load_audio

    out = {}
    for clip in clips:
        cap = captured(clip)
        out[clip.name] = r_by_lag(cap.times, cap.lip_gap, *loudness_curve(load_audio(clip.path).samples))
    return out


def _ms(lag: float) -> str:
    return f"{1000 * lag:+5.0f}"


def print_tables(clips: list[RealClip], loud: dict, now: dict, before: dict | None, revision: str | None) -> None:
    def cell(curves: dict | None, name: str, case: str, l_lag: float) -> str:
        if curves is None or case not in curves.get(name, {}):
            return f"{'':>19s}"
        lag, r = best_lag(np.array(curves[name][case]))
        return f"{_ms(lag)} {r:4.2f} {_ms(lag - l_lag)} ms"

    print("lags in ms (lag > 0: the video's mouth moves after the curve); r at that lag; "
          "lead = G - L (> 0: the generated mouth moves before the sound, < 0: it trails)")
    cases = ("no text", "text")
    heads = [f"{'loudness L   r':>14s}"]
    for case in cases:
        if before is not None:
            heads.append(f"{'before G  r   lead (' + case + ')':>22s}")
        heads.append(f"{'now G  r   lead (' + case + ')':>22s}")
    print(f"{'clip':16s} {'set':5s} {'reliab':9s} " + " | ".join(heads))
    for clip in clips:
        l_lag, l_r = best_lag(loud[clip.name])
        cells = [f"{_ms(l_lag)} {l_r:4.2f}    "]
        for case in cases:
            if before is not None:
                cells.append(f"{cell(before, clip.name, case, l_lag):>22s}")
            cells.append(f"{cell(now, clip.name, case, l_lag):>22s}")
        tag = "held" if clip.held_out else "tune"
        print(f"{clip.name:16s} {tag:5s} {clip.reliability:9s} " + " | ".join(cells))
    print("\npooled: best lag of the mean r(lag) curve over the group; lead = G - L of those")
    speech = [c for c in clips if c.reliability != "music"]
    pools = {"tuning video (no A/V-offset doubt)": [c for c in speech if c.group == "video" and not c.held_out
                                                    and c.reliability in ("clear", "ok")],
             "tuning video, all": [c for c in speech if c.group == "video" and not c.held_out],
             "tuning GRID s1": [c for c in speech if c.group == "grid" and not c.held_out],
             "held out video": [c for c in speech if c.group == "video" and c.held_out],
             "held out GRID s4": [c for c in speech if c.group == "grid" and c.held_out]}
    for label, members in pools.items():
        if not members:
            continue
        l_lag, l_r = best_lag(np.mean([loud[c.name] for c in members], axis=0))
        parts = [f"L {_ms(l_lag)} (r {l_r:.2f})"]
        for case in cases:
            for kind, curves in (("before", before), ("now", now)):
                have = [c for c in members if curves is not None and case in curves.get(c.name, {})]
                if len(have) != len(members):
                    continue
                lag, r = best_lag(np.mean([curves[c.name][case] for c in have], axis=0))
                parts.append(f"{kind} {case}: G {_ms(lag)} r {r:.2f} lead {_ms(lag - l_lag)}")
        print(f"{label:36s} ({len(members):2d}) " + " | ".join(parts))
    if revision:
        print(f"before = the generator at {revision}, now = this tree; same captures, same run")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the shared data folder (default ../shared/data)")
    parser.add_argument("--before", metavar="REV", help="also measure the generator at this git revision")
    parser.add_argument("--only", help="comma-separated clip names (default: all)")
    add_revision_options(parser)  # --json, --code: what --before's run of REV is given
    args = parser.parse_args()
    clips = chosen_clips(args.data, args.only)
    if not clips:
        return 0
    sys.path.insert(0, str(REPO))
    use_code_from(args.code)
    if args.json:
        print(json.dumps(measure(clips)))
        return 0
    before = None
    if args.before:
        extra = (["--data", args.data] if args.data else []) + (["--only", args.only] if args.only else [])
        before = json.loads(run_at_revision(args.before, str(Path(__file__).resolve()), extra).splitlines()[-1])
    print_tables(clips, loudness_rs(clips), measure(clips), before, args.before)
    return 0


if __name__ == "__main__":
    sys.exit(main())
