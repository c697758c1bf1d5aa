"""The validation table `npcface train` prints: per held-out clip, how well the trained model, the
rule-based generator and the loudness envelope follow the clip's measured lip gap (Pearson r at
lag 0 and the best r within +-200 ms)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..types import FEATURE_HOP_S, Controls
from .data import Clip

MAX_LAG_ROWS = 20  # 200 ms


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a * a).sum() * (b * b).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else 0.0


def lagged(truth: np.ndarray, curve: np.ndarray) -> tuple[float, float]:
    """(r at lag 0, best r within +-MAX_LAG_ROWS) of two curves on the same 10 ms rows."""
    n = min(len(truth), len(curve))
    truth, curve = truth[:n], curve[:n]
    inner = slice(MAX_LAG_ROWS, n - MAX_LAG_ROWS)
    if n <= 2 * MAX_LAG_ROWS + 2:
        return _pearson(truth, curve), _pearson(truth, curve)
    rs = [_pearson(truth[inner], curve[MAX_LAG_ROWS - lag:n - MAX_LAG_ROWS - lag]) for lag in range(-MAX_LAG_ROWS, MAX_LAG_ROWS + 1)]
    return rs[MAX_LAG_ROWS], max(rs)


def _at_rows(times: np.ndarray, values: np.ndarray, rows: int) -> np.ndarray:
    return np.interp((np.arange(rows) + 0.5) * FEATURE_HOP_S, times, values)


def validation_rows(weights: Path, clips: list[Clip]) -> list[dict]:
    from ..audio.decode import load_audio
    from ..motion.generator import MotionGenerator
    from ..motion.learned import LearnedMotionGenerator

    learned = LearnedMotionGenerator(Controls(fps=100.0), weights)
    rules = MotionGenerator(Controls(fps=100.0))
    rows = []
    for clip in clips:
        media = clip.path.with_suffix(".wav") if clip.path.suffix.lower() == ".csv" else clip.path
        audio = load_audio(media)
        truth = clip.lip_gap.astype(np.float64)
        row = {"clip": f"{clip.speaker}/{clip.name}"}
        for name, generator in (("model", learned), ("rules", rules)):
            track = generator.animate(audio)
            gap = (track.channel("JawOpen") - track.channel("MouthClose")).astype(np.float64)
            row[name] = lagged(truth, _at_rows(track.times, gap, len(truth)))
        loudness = np.maximum(clip.features[:, 40].astype(np.float64), clip.features[:, 40].max() - 40.0)
        row["loudness"] = lagged(truth, loudness)
        rows.append(row)
    return rows


def validation_table(weights: Path, clips: list[Clip]) -> str:
    rows = validation_rows(weights, clips)
    lines = ["held-out clip                 |  model r0  best |  rules r0  best | loudness r0  best"]
    for row in rows:
        lines.append(f"{row['clip'][:29]:29s} | " + " | ".join(f"{'':4s}{row[k][0]:5.2f} {row[k][1]:5.2f}"
                                                             for k in ("model", "rules", "loudness")))
    means = {k: (np.mean([r[k][0] for r in rows]), np.mean([r[k][1] for r in rows])) for k in ("model", "rules", "loudness")}
    lines.append(f"{'mean':29s} | " + " | ".join(f"{'':4s}{m[0]:5.2f} {m[1]:5.2f}" for m in means.values()))
    return "\n".join(lines)
