"""The cues (core/motion/cues.py) against a reference written row by row from their definitions:
every window an explicit slice of the rows [r - back, r + ahead] that exist, every mean a plain
mean over it. compute_cues_many computes the same numbers from shared running sums (one cumsum per
stage, counts from the row indices), which is where an off-by-one in a window would hide."""
from __future__ import annotations

import numpy as np

from conftest import fixture_line
from npcface.core.audio.decode import load_audio
from npcface.core.audio.features import FEATURE_COLUMNS, compute_features, slice_features
from npcface.core.motion.cues import compute_cues, compute_cues_many

CUES = ("level", "voiced", "f1_open", "f2_round", "f2_spread", "fricative", "emphasis", "pitch", "activity",
        "phrase", "dip", "held")


def _window(n: int, r: int, back: int, ahead: int) -> slice:
    return slice(max(0, r - back), min(n, r + ahead + 1))


def _mean(x: np.ndarray, back: int, ahead: int) -> np.ndarray:
    return np.array([x[_window(len(x), r, back, ahead)].mean() for r in range(len(x))])


def _weighted(x: np.ndarray, w: np.ndarray, back: int, ahead: int) -> np.ndarray:
    out = []
    for r in range(len(x)):
        rows = _window(len(x), r, back, ahead)
        weight = w[rows].sum()
        out.append((x[rows] * w[rows]).sum() / weight if weight > 1e-9 else 0.0)
    return np.array(out)


def _max(x: np.ndarray, back: int, ahead: int) -> np.ndarray:
    return np.array([x[_window(len(x), r, back, ahead)].max() for r in range(len(x))])


def reference_cues(f) -> dict[str, np.ndarray]:
    """The cues of one stream's rows, straight from the definitions (rows of 10 ms)."""
    as64 = {name: getattr(f, name).astype(np.float64) for name in FEATURE_COLUMNS if name != "log_mel"}
    loud = _mean(np.maximum(as64["loudness_db"], -100.0), 3, 3)
    ref = np.maximum(_max(loud, 200, 0), -30.0)
    level = np.clip((loud - (ref - 28.0)) / 28.0, 0.0, 1.0)
    voiced_raw = np.clip(as64["voicing"], 0.0, 1.0)
    voiced = _mean(voiced_raw, 3, 3)
    has_f1 = ((as64["f1_hz"] > 0) & (voiced_raw > 0.3)).astype(np.float64)
    f1, f2 = _weighted(as64["f1_hz"], has_f1, 3, 3), _weighted(as64["f2_hz"], has_f1, 3, 3)
    trust = _mean(has_f1, 3, 3) * level
    noisy = (np.clip((as64["zero_crossing_rate"] - 0.12) / 0.15, 0.0, 1.0)
             * np.clip((as64["spectral_tilt"] + 5.0) / 15.0, 0.0, 1.0))
    slow = _weighted(loud, (voiced_raw > 0.5).astype(np.float64), 50, 2)
    f0 = _weighted(as64["f0_hz"], (as64["f0_hz"] > 0).astype(np.float64), 3, 3)
    depth = np.minimum(_max(level, 15, 0), _max(level, 0, 5)) - level
    return dict(level=level, voiced=voiced, f1_open=np.clip((f1 - 280.0) / 520.0, 0.0, 1.0) * trust,
                f2_round=_mean(np.clip((1350.0 - f2) / 500.0, 0.0, 1.0) * trust, 6, 2),
                f2_spread=np.clip((f2 - 1750.0) / 600.0, 0.0, 1.0) * trust,
                fricative=_mean(noisy * (1.0 - voiced_raw), 3, 3) * np.clip(level * 2.0, 0.0, 1.0),
                emphasis=np.clip(loud - slow, 0.0, 6.0) * voiced,
                pitch=np.clip(np.log2(np.maximum(f0, 80.0) / 80.0) / 2.0, 0.0, 1.0) * voiced,
                activity=_mean(level * (0.6 + 0.4 * voiced), 60, 2), phrase=_mean(level, 25, 5),
                dip=np.clip((depth - 0.3) / 0.3, 0.0, 1.0) * (level < 0.45),
                held=np.minimum(_max(level, 30, 0), _max(level, 0, 5)))


def test_cues_are_their_definitions_row_by_row():
    """Real speech, alone and batched with rows of other lengths (padding must not leak in).
    The reference works in float64 throughout where the cues keep some float32 arithmetic on the
    feature columns, hence 1e-6 and not bit equality."""
    wav, _ = fixture_line("line_greeting")
    whole = compute_features(load_audio(wav).samples[: 16000 * 3])
    short = type(whole)(start_time=0.5, **{name: getattr(whole, name)[50:120] for name in FEATURE_COLUMNS})
    parts = [whole, slice_features(whole, 90), short]
    for cues in (compute_cues(whole), *compute_cues_many(parts)):
        part = parts[[len(p.loudness_db) for p in parts].index(cues.num_rows)]
        expected = reference_cues(part)
        for name in CUES:
            np.testing.assert_allclose(getattr(cues, name), expected[name], rtol=0, atol=1e-6, err_msg=name)
    assert compute_cues(whole).dip.max() > 0.1 and compute_cues(whole).emphasis.max() > 0.5  # the cues are not trivial


def test_cues_without_the_mouths_are_the_same_numbers_and_leave_the_mouths_out():
    """A batch of streams whose lips read no cues (the learned mouth) skips the mouth's cues;
    every other cue is bit for bit what the full computation gives, batched or alone."""
    from npcface.core.motion.cues import MOUTH_CUES

    wav, _ = fixture_line("line_greeting")
    whole = compute_features(load_audio(wav).samples[: 16000 * 3])
    parts = [whole, slice_features(whole, 90)]
    for full, lean in zip([compute_cues(whole), *compute_cues_many(parts)],
                          [compute_cues(whole, mouth=False), *compute_cues_many(parts, mouth=False)]):
        for name in CUES:
            if name in MOUTH_CUES:
                assert getattr(lean, name) is None and getattr(full, name) is not None, name
            else:
                assert getattr(lean, name).tobytes() == getattr(full, name).tobytes(), name
    assert set(MOUTH_CUES) < set(CUES)


def test_the_last_row_of_a_few_points_is_the_batched_searchs_row():
    """last_row_at_or_before finds a frame or two's rows with Python numbers and many points' with
    numpy: the same rows, on row times exactly, between them, before the first and past the last."""
    from npcface.core.motion.cues import last_row_at_or_before
    from npcface.core.types import FEATURE_HOP_S

    rng = np.random.default_rng(4)
    start = np.concatenate([[0.0, 0.37, 2.0], rng.uniform(0, 60, 200)])
    rows = np.concatenate([[0, 1, 343], rng.integers(0, 400, 200)])
    on_rows = start + rng.integers(-2, 402, len(start)) * FEATURE_HOP_S
    x = np.where(rng.uniform(size=len(start)) < 0.5, on_rows, start + rng.uniform(-0.1, 4.2, len(start)))
    together = last_row_at_or_before(start, rows, x)  # numpy, all at once
    for k in range(len(x)):
        one = last_row_at_or_before(start[k:k + 1], rows[k:k + 1], x[k:k + 1])
        assert one.dtype == together.dtype and one[0] == together[k], k
        row_times = start[k] + np.arange(rows[k]) * FEATURE_HOP_S
        assert one[0] == np.searchsorted(row_times, x[k], "right") - 1, k
