"""Acoustic cues for the motion layers, computed per 10 ms feature row.

Every cue at row r depends only on rows in [r - CUE_BACK_S, r + CUE_REACH_S], so the streaming
generator can compute them on a bounded window of rows and get exactly what the offline pass
gets. The layers then read the cues at frame times (linear interpolation between rows).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.ndimage import maximum_filter1d

from ..numeric import clip as _clip
from ..types import FEATURE_HOP_S, AudioFeatures

SMOOTH_S = 0.03  # half-width of the short smoothing of loudness, voicing and formants
REF_WINDOW_S = 2.0  # loudness reference: the loudest moment of the last two seconds
SLOW_WINDOW_S = 0.5  # emphasis: loudness above the average of the last half second
ACTIVITY_WINDOW_S = 0.6  # head liveliness follows talking over this long
DIP_BACK_S, DIP_AHEAD_S = 0.15, 0.05  # a dip is quieter than both the last 150 ms and the next 50 ms
# held: loudness bridged over short gaps in a run of speech (a stop closure): the loudest moment
# of the last 300 ms while a sound comes within the next 50 ms.
HOLD_BACK_S, HOLD_AHEAD_S = 0.3, 0.05
PHRASE_BACK_S, PHRASE_AHEAD_S = 0.25, 0.05
CUE_REACH_S = SMOOTH_S + 0.02  # what core/motion/generator.py budgets for the cues (+ 40 ms of its own margin)
# What the cues really read ahead: the level is smoothed SMOOTH_S ahead and dip, held and phrase
# look up to 50 ms further on it (tested). The motion layer's FRAME_REACH_S (CUE_REACH_S + 40 ms)
# covers this; CUE_REACH_S alone does not.
CUE_READ_AHEAD_S = SMOOTH_S + max(DIP_AHEAD_S, HOLD_AHEAD_S, PHRASE_AHEAD_S)
CUE_BACK_S = REF_WINDOW_S + max(SLOW_WINDOW_S, ACTIVITY_WINDOW_S) + SMOOTH_S  # how far back

_REF_FLOOR_DB = -30.0  # a recording quieter than this is treated as quiet speech, not boosted
_LEVEL_RANGE_DB = 28.0  # below the reference by this much = no opening
_EMPHASIS_CAP_DB = 6.0


def _rows(seconds: float) -> int:
    return int(round(seconds / FEATURE_HOP_S))


def max_behind(x: np.ndarray, rows: int) -> np.ndarray:
    """Max of x over rows [r - rows, r]."""
    return maximum_filter1d(x, size=rows + 1, origin=rows // 2, mode="nearest")


def max_ahead(x: np.ndarray, rows: int) -> np.ndarray:
    """Max of x over rows [r, r + rows]."""
    return maximum_filter1d(x, size=rows + 1, origin=-((rows + 1) // 2), mode="nearest")


def held_level(level: np.ndarray) -> np.ndarray:
    """The lesser of the loudest level in the last HOLD_BACK_S and in the next HOLD_AHEAD_S: gaps
    up to HOLD_AHEAD_S inside a run of speech are bridged (at the quieter side's level); a pause
    relaxes at once."""
    return np.minimum(max_behind(level, _rows(HOLD_BACK_S)), max_ahead(level, _rows(HOLD_AHEAD_S)))


@dataclass(frozen=True)
class Cues:
    """Per-row acoustic cues (row i at start_time + i * FEATURE_HOP_S)."""

    start_time: float
    level: np.ndarray  # (R,) 0..1 speech loudness relative to the recent loudest moment
    voiced: np.ndarray  # (R,) 0..1
    # The mouth's cues (lips.py) are None where compute_cues_many was told no mouth reads them.
    f1_open: np.ndarray | None  # (R,) 0..1 first formant height (jaw opening) on voiced rows
    f2_round: np.ndarray | None  # (R,) 0..1 low second formant (lip rounding) on voiced rows
    f2_spread: np.ndarray | None  # (R,) 0..1 high second formant (lip spreading)
    fricative: np.ndarray | None  # (R,) 0..1 noisy, high-frequency, unvoiced (s, f, sh, t bursts)
    emphasis: np.ndarray  # (R,) dB above the recent average loudness, on voiced rows
    pitch: np.ndarray  # (R,) 0..1 how high the voice is (f0 above 80 Hz, log scale)
    activity: np.ndarray  # (R,) 0..1 how much talking there was over the last ~0.6 s
    phrase: np.ndarray  # (R,) 0..1 loudness over the last 250 ms: a mouth stays parted through a phrase
    dip: np.ndarray | None  # (R,) 0..1 a short quiet gap between louder sounds (a stop or nasal closure)
    held: np.ndarray  # (R,) 0..1 level held over gaps up to HOLD_AHEAD_S (held_level)

    @property
    def num_rows(self) -> int:
        return len(self.level)

    def row_times(self) -> np.ndarray:
        """(R,) each row's time (computed once: the layers read the cues a dozen times a step)."""
        times = self.__dict__.get("_row_times")
        if times is None:
            times = self.start_time + np.arange(self.num_rows) * FEATURE_HOP_S
            object.__setattr__(self, "_row_times", times)
        return times

    def at(self, name: str, times: np.ndarray) -> np.ndarray:
        """A cue read at arbitrary times (clamped to the rows there are)."""
        return np.interp(times, self.row_times(), getattr(self, name))


@dataclass(frozen=True)
class _CueBatch:
    """The (S, L) arrays compute_cues_many made for several streams (each stream's Cues are views
    of its row), so cues of many streams can be read in one pass (``at_many``)."""

    columns: dict[str, np.ndarray]  # cue name -> (S, L)
    start_times: np.ndarray  # (S,)
    lengths: np.ndarray  # (S,) each stream's rows


def cue_batch(many: list[Cues], names: tuple[str, ...]) -> tuple[_CueBatch, np.ndarray]:
    """The batch holding ``many``'s cues (those ``names`` at least) and each one's row in it: the
    compute_cues_many batch they came from, or one made of them (right-padded with zeros)."""
    found = [cues.__dict__.get("_batch") for cues in many]
    if found and all(f is not None and f[0] is found[0][0] for f in found):
        return found[0][0], np.array([f[1] for f in found])
    rows = _Rows([cues.num_rows for cues in many])
    columns = {name: rows.stack([getattr(cues, name) for cues in many]) for name in names}
    return _CueBatch(columns, np.array([cues.start_time for cues in many], dtype=np.float64), np.array(rows.lengths)), \
        np.arange(len(many))


FEW_IN_PYTHON = 4  # a stream's frame or two: Python numbers cost less than numpy calls up to this many


def last_row_at_or_before(start: np.ndarray, rows: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Per point: the last row (of ``rows``, row i at start + i * FEATURE_HOP_S as Cues.row_times
    computes it) whose time is <= x; -1 where none is (np.searchsorted(row_times, x, "right") - 1)."""
    if len(x) <= FEW_IN_PYTHON:
        return np.array([_last_row_of_one(*point) for point in zip(start.tolist(), rows.tolist(), x.tolist())],
                        dtype=np.int64)
    return last_on_grid(x, rows, lambda j: start + j * FEATURE_HOP_S, np.floor((x - start) / FEATURE_HOP_S))


def _last_row_of_one(start: float, rows: int, x: float) -> int:
    """last_row_at_or_before of one point: last_on_grid's steps on Python numbers (the same
    comparisons of the same row times)."""
    j = min(max(math.floor((x - start) / FEATURE_HOP_S), -1), rows - 1)
    if j >= 0 and start + j * FEATURE_HOP_S > x:
        j -= 1
    if j + 1 < rows and start + (j + 1) * FEATURE_HOP_S <= x:
        j += 1
    return j


def last_on_grid(x: np.ndarray, rows: np.ndarray, row_time: Callable[[np.ndarray], np.ndarray],
                 guess: np.ndarray) -> np.ndarray:
    """Per point: the last of ``rows`` rows, on a grid 10 ms apart whose times ``row_time(j)``
    computes, at or before x (-1: none), from ``guess``, a row at most one off."""
    j = np.clip(guess, -1, rows - 1).astype(np.int64)
    j = np.where((j >= 0) & (row_time(j) > x), j - 1, j)
    return np.where((j + 1 < rows) & (row_time(j + 1) <= x), j + 1, j)


def at_many(parts: list[tuple[Cues, np.ndarray]], names: tuple[str, ...]) -> np.ndarray:
    """(sum of T, len(names)): each part's cues read at its times, every name: the numbers of
    ``Cues.at`` (np.interp), all parts in one pass (one gather from the parts' cue_batch)."""
    if parts and all(cues is parts[0][0] for cues, _ in parts):  # one stream's: np.interp itself costs less
        times = np.concatenate([times for _, times in parts])
        return np.stack([parts[0][0].at(name, times) for name in names], axis=1)
    batch, index = cue_batch([cues for cues, _ in parts], names)
    stream = np.repeat(index, [len(times) for _, times in parts])
    x = np.concatenate([np.asarray(times, dtype=np.float64) for _, times in parts]) if parts else np.zeros(0)
    start, rows = batch.start_times[stream], batch.lengths[stream]
    # np.interp: held at the ends, the row's own value on a row time, else the slope from row j
    # (the last row time at or before x) to row j + 1
    j = last_row_at_or_before(start, rows, x)
    below, above = j < 0, j >= rows - 1
    j = np.clip(j, 0, np.maximum(rows - 2, 0))
    j_next = np.minimum(j + 1, rows - 1)
    lo, hi = start + j * FEATURE_HOP_S, start + j_next * FEATURE_HOP_S
    width = np.where(hi > lo, hi - lo, 1.0)  # 1: one-row cues, held at their row, never interpolated
    out = np.empty((len(x), len(names)))
    for c, name in enumerate(names):
        fp = batch.columns[name]
        y0, y1 = fp[stream, j], fp[stream, j_next]
        value = np.where(x == lo, y0, (y1 - y0) / width * (x - lo) + y0)
        out[:, c] = np.where(below, fp[stream, 0], np.where(above, fp[stream, rows - 1], value))
    return out


def compute_cues(feats: AudioFeatures | CueInputs, mouth: bool = True) -> Cues:
    return compute_cues_many([feats], mouth)[0]


MOUTH_CUES = ("f1_open", "f2_round", "f2_spread", "fricative", "dip")  # read by the rule-based lips only


CUE_INPUTS = ("loudness_db", "voicing", "f1_hz", "f2_hz", "f0_hz", "zero_crossing_rate", "spectral_tilt")


@dataclass(frozen=True)
class CueInputs:
    """The feature columns the cues read, CUE_INPUTS order, as one (R, 7) matrix in the features'
    own dtype (a stream keeps its recent rows so: one array to append to and cut, not eight)."""

    start_time: float  # row 0's time
    matrix: np.ndarray  # (R, 7)

    @staticmethod
    def of(features: AudioFeatures) -> CueInputs:
        return CueInputs(float(features.start_time), np.stack([getattr(features, name) for name in CUE_INPUTS], axis=1))

    def then(self, more: CueInputs) -> CueInputs:
        """These rows, then ``more`` (the rows that follow them)."""
        return CueInputs(self.start_time, np.concatenate([self.matrix, more.matrix]))

    def from_row(self, first: int) -> CueInputs:
        """The rows from ``first`` on."""
        return CueInputs(self.start_time + first * FEATURE_HOP_S, self.matrix[first:])


class _Rows:
    """Several streams' rows side by side, (S, L) right-padded to the longest: every windowed op
    here reads only a stream's own rows (padding counts as outside the rows), so a stream's cues
    are the same numbers whichever streams it is batched with."""

    def __init__(self, lengths: list[int]):
        self.lengths = lengths
        self.length = max(lengths)
        self.padded = min(lengths) < self.length
        self.valid = np.arange(self.length)[None, :] < np.array(lengths)[:, None] if self.padded else None  # (S, L)

    def stack(self, columns: list[np.ndarray]) -> np.ndarray:
        """(S, L) of each stream's column, in the columns' own dtype (float32 features stay float32,
        as the arithmetic on them has always been)."""
        if len(columns) == 1 and not self.padded:
            return columns[0][None, :]
        out = np.zeros((len(columns), self.length), dtype=columns[0].dtype)
        for k, column in enumerate(columns):
            out[k, :len(column)] = column
        return out

    def stack_matrices(self, matrices: list[np.ndarray]) -> np.ndarray:
        """(C, S, L) from each stream's (rows, C) matrix: ``stack`` of every column at once."""
        out = np.zeros((matrices[0].shape[1], len(matrices), self.length), dtype=matrices[0].dtype)
        for k, matrix in enumerate(matrices):
            out[:, k, :len(matrix)] = matrix.T
        return out

    def window_sums(self, series: list[tuple[np.ndarray, int, int]]) -> list[np.ndarray]:
        """Each (x (S, L), back, ahead) -> the sum of x over rows [r - back, r + ahead] of its own
        stream, padding counted as zeros: differences of running sums from zero, all series in one
        cumsum (a run of leading zeros adds nothing, so each sum is the one it had alone)."""
        back, ahead = max(b for _, b, _ in series), max(a for _, _, a in series)
        length = self.length
        running = np.zeros((len(series), len(self.lengths), 1 + back + length + ahead))
        for i, (x, _, _) in enumerate(series):
            running[i, :, 1 + back:1 + back + length] = x
        if self.padded:
            running[:, :, 1 + back:1 + back + length] *= self.valid
        np.cumsum(running, axis=2, out=running)
        return [running[i, :, 1 + back + a:1 + back + a + length] - running[i, :, back - b:back - b + length]
                for i, (_, b, a) in enumerate(series)]

    def counts(self, back: int, ahead: int) -> np.ndarray:
        """(S, L) how many of a stream's own rows fall in [r - back, r + ahead] (at least 1)."""
        if not self.padded:
            return _window_counts(self.length, back, ahead)
        return _window_counts_of(np.array(self.lengths)[:, None], back, ahead, self.length)

    def max_behind(self, x: np.ndarray, rows: int, floor: float) -> np.ndarray:
        """max_behind on each stream's rows (``floor``: below every real value of x)."""
        return max_behind(np.where(self.valid, x, floor) if self.padded else x, rows)

    def max_ahead(self, x: np.ndarray, rows: int, floor: float) -> np.ndarray:
        return max_ahead(np.where(self.valid, x, floor) if self.padded else x, rows)


@lru_cache(maxsize=256)
def _window_counts(rows: int, back: int, ahead: int, width: int | None = None) -> np.ndarray:
    """(1, width) how many of ``rows`` rows fall in [r - back, r + ahead], at least 1 (streams
    keep about the same number of rows step after step: cached)."""
    counts = _window_counts_of(rows, back, ahead, width or rows)
    counts.flags.writeable = False
    return counts


def _window_counts_of(rows: int | np.ndarray, back: int, ahead: int, width: int) -> np.ndarray:
    """(1 or S, width) _window_counts for ``rows`` rows, or for each of the (S, 1) ``rows`` at once."""
    r = np.arange(width)[None, :]
    return np.maximum(np.minimum(r + ahead, rows - 1) - np.maximum(r - back, 0) + 1, 1).astype(np.float64)


def _weighted(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """A weighted mean from its window sums (0 where the window holds no weight)."""
    return np.where(den > 1e-9, num / np.maximum(den, 1e-9), 0.0)


_SMOOTH = _rows(SMOOTH_S)
_ROUND_WINDOW = (_rows(0.06), _rows(0.02))
_SLOW_WINDOW = (_rows(SLOW_WINDOW_S), _rows(0.02))
_ACTIVITY_WINDOW = (_rows(ACTIVITY_WINDOW_S), _rows(0.02))
_PHRASE_WINDOW = (_rows(PHRASE_BACK_S), _rows(PHRASE_AHEAD_S))


def compute_cues_many(many: list[AudioFeatures | CueInputs], mouth: bool = True) -> list[Cues]:
    """The cues of several streams' rows in one pass of (S, rows) arrays (what a sidecar stepping
    many talking sessions saves on): each stream gets what it gets alone. ``mouth=False``: none
    of these streams' mouths reads cues (the learned one), so MOUTH_CUES are left out (None), and
    nearly half the work with them; every other cue is the same number either way.

    Moving averages are window sums over running sums (truncated at the ends); the sums with
    the same inputs' stage share one cumsum (streaming computes this at every step, where the
    count of numpy calls is what costs)."""
    many = [f if isinstance(f, CueInputs) else CueInputs.of(f) for f in many]
    rows = _Rows([len(f.matrix) for f in many])
    stacked = rows.stack_matrices([f.matrix for f in many])  # (7, S, L)

    def column(name: str) -> np.ndarray:
        return stacked[CUE_INPUTS.index(name)]

    smooth = _SMOOTH
    f64 = np.float64
    loud_db = np.maximum(column("loudness_db"), -100.0)
    voiced_raw = _clip(column("voicing"), 0.0, 1.0)
    f0_hz = column("f0_hz")
    has_f0 = (f0_hz > 0).astype(f64)
    # the short smoothing of the raw columns (formants and f0 weighted by where they exist); each
    # series is summed on its own, so leaving the mouth's out changes no other sum
    series = [(loud_db, smooth, smooth), (voiced_raw, smooth, smooth),
              (f0_hz.astype(f64) * has_f0, smooth, smooth), (has_f0, smooth, smooth)]
    if mouth:
        f1_hz, f2_hz = column("f1_hz"), column("f2_hz")
        has_f1 = ((f1_hz > 0) & (voiced_raw > 0.3)).astype(f64)
        noisy = (_clip((column("zero_crossing_rate") - 0.12) / 0.15, 0.0, 1.0)
                 * _clip((column("spectral_tilt") + 5.0) / 15.0, 0.0, 1.0))
        series += [(f1_hz.astype(f64) * has_f1, smooth, smooth), (f2_hz.astype(f64) * has_f1, smooth, smooth),
                   (has_f1, smooth, smooth), (noisy * (1.0 - voiced_raw), smooth, smooth)]
    sums = rows.window_sums(series)
    loud_sum, voiced_sum, f0_sum, has_f0_sum = sums[:4]
    counts = rows.counts(smooth, smooth)
    loud = loud_sum / counts
    ref = np.maximum(rows.max_behind(loud, _rows(REF_WINDOW_S), -1e9), _REF_FLOOR_DB)
    level = _clip((loud - (ref - _LEVEL_RANGE_DB)) / _LEVEL_RANGE_DB, 0.0, 1.0)
    voiced = voiced_sum / counts
    f0 = _weighted(f0_sum, has_f0_sum)
    pitch = _clip(np.log2(np.maximum(f0, 80.0) / 80.0) / 2.0, 0.0, 1.0) * voiced
    mouth_cues = dict.fromkeys(MOUTH_CUES)
    rounding = []
    if mouth:
        f1_sum, f2_sum, has_f1_sum, noisy_sum = sums[4:]
        f1, f2 = _weighted(f1_sum, has_f1_sum), _weighted(f2_sum, has_f1_sum)
        formant_trust = has_f1_sum / counts * level
        mouth_cues["f1_open"] = _clip((f1 - 280.0) / 520.0, 0.0, 1.0) * formant_trust
        mouth_cues["f2_spread"] = _clip((f2 - 1750.0) / 600.0, 0.0, 1.0) * formant_trust
        mouth_cues["fricative"] = noisy_sum / counts * _clip(level * 2.0, 0.0, 1.0)
        # Rounding must last a while to count: single-row F2 drops are LPC noise, not lips.
        rounding = [(_clip((1350.0 - f2) / 500.0, 0.0, 1.0) * formant_trust, *_ROUND_WINDOW)]
    # the longer windows over what the level and loudness make
    # Emphasis is measured against recent *speech* only, so a syllable after a pause is not
    # mistaken for a stressed one just because silence came before it.
    speech = (voiced_raw > 0.5).astype(f64)
    slow_sum, speech_sum, activity_sum, phrase_sum, *round_sum = rows.window_sums([
        (loud * speech, *_SLOW_WINDOW), (speech, *_SLOW_WINDOW), (level * (0.6 + 0.4 * voiced), *_ACTIVITY_WINDOW),
        (level, *_PHRASE_WINDOW)] + rounding)
    slow = _weighted(slow_sum, speech_sum)
    emphasis = _clip(loud - slow, 0.0, _EMPHASIS_CAP_DB) * voiced
    activity = activity_sum / rows.counts(*_ACTIVITY_WINDOW)
    phrase = phrase_sum / rows.counts(*_PHRASE_WINDOW)
    after = rows.max_ahead(level, _rows(DIP_AHEAD_S), -1.0)
    held_after = after if _rows(HOLD_AHEAD_S) == _rows(DIP_AHEAD_S) else rows.max_ahead(level, _rows(HOLD_AHEAD_S), -1.0)
    held = np.minimum(rows.max_behind(level, _rows(HOLD_BACK_S), -1.0), held_after)
    if mouth:
        mouth_cues["f2_round"] = round_sum[0] / rows.counts(*_ROUND_WINDOW)
        depth = np.minimum(rows.max_behind(level, _rows(DIP_BACK_S), -1.0), after) - level
        mouth_cues["dip"] = _clip((depth - 0.3) / 0.3, 0.0, 1.0) * (level < 0.45)
    columns = dict(level=level, voiced=voiced, emphasis=emphasis, pitch=pitch, activity=activity, phrase=phrase, held=held)
    computed = {**columns, **{name: value for name, value in mouth_cues.items() if value is not None}}
    batch = _CueBatch(computed, np.array([float(f.start_time) for f in many]), np.array(rows.lengths))
    out = []
    for k, (f, n) in enumerate(zip(many, rows.lengths)):
        cues = Cues(start_time=float(f.start_time), **{name: value[k, :n] for name, value in columns.items()},
                    **{name: None if value is None else value[k, :n] for name, value in mouth_cues.items()})
        object.__setattr__(cues, "_batch", (batch, k))  # at_many reads the batch's arrays
        out.append(cues)
    return out


# The learned mouth (learned.py) reads audio relative to its own recent level, so steady silence
# or room noise looks to it like held speech, and it left the mouth open (JawOpen 0.18 on digital
# silence, 0.3 on -60 dB noise). Its mouth rests where the level cue has been 0 for SILENCE_AFTER_S
# (easing shut over its last SILENCE_FADE_S) and stays 0 for the next SILENCE_BEFORE_S (a frame
# has the rows for that: core/motion/generator.FRAME_REACH_S less the level's own smoothing).
SILENCE_AFTER_S, SILENCE_FADE_S, SILENCE_BEFORE_S = 0.3, 0.15, 0.06
_GATE_LEVEL = 0.1  # the level cue (0..1 of the recent loudness range) at which the mouth is free


def speech_gate(times: np.ndarray, cues: Cues) -> np.ndarray:
    """(T,) in [0, 1]: how free the mouth is at each frame time; the largest level cue near it,
    each row weighted by how near (1 from SILENCE_FADE_S before the frame to its time, fading to 0
    at SILENCE_AFTER_S before it and SILENCE_BEFORE_S after it), over _GATE_LEVEL. Rows are
    counted by their absolute index, so a streamed line's kept rows give the offline numbers."""
    level = cues.level
    base = round(cues.start_time / FEATURE_HOP_S)  # the absolute index of the cues' first row
    out = np.empty(len(times))
    for i, t in enumerate(times.tolist()):
        first = max(math.ceil((t - SILENCE_AFTER_S) / FEATURE_HOP_S - 1e-6) - base, 0)
        last = min(math.floor((t + SILENCE_BEFORE_S) / FEATURE_HOP_S + 1e-6) - base, len(level) - 1)
        if last < first:
            out[i] = 0.0
            continue
        since = t - (np.arange(first, last + 1) + base) * FEATURE_HOP_S  # seconds since each row (< 0: ahead)
        weight = np.where(since >= 0, (SILENCE_AFTER_S - since) / SILENCE_FADE_S, (SILENCE_BEFORE_S + since) / SILENCE_BEFORE_S)
        out[i] = min(float((level[first:last + 1] * _clip(weight, 0.0, 1.0)).max()) / _GATE_LEVEL, 1.0)
    return out
