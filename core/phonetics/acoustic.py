"""Phones from acoustics alone, for any language and for singing (no language model).

Each 10 ms feature row gets a class from loudness, voicing, F1/F2, spectral tilt and ZCR, and
the classes become ARPAbet labels that carry the right mouth shape (so the viseme mapping used
for English works unchanged):

- silence: quieter than the loudest row so far minus 35 dB (or below -60 dBFS) -> SIL;
- vowels (voiced, loud): F1 gives the jaw (open AA / mid / close), F2 spreading vs rounding
  (IY, IH, EH, AE spread; UW, OW, AO rounded; AH neutral), thresholds scaled up 15 % for
  high voices (f0 > 165 Hz) whose formants sit higher;
- voiced murmur (voiced but 18 dB under the running peak, low F1) -> M / N;
- unvoiced noise: S (steep high tilt and many zero crossings), F (milder), HH (breathy);
  but loud rows with a vowel-like (low) tilt are rough voice that YIN missed -> AH;
- closures: short silent gaps (< 250 ms) between sounds, and sharp loudness dips (15 dB under
  the surrounding 160 ms) -> P or T (unvoiced) or M or N (voiced murmur).
Place of articulation for murmurs and closures comes from the F2 "locus" of the neighbouring
vowel edges: bilabials pull F2 down (< 1300 Hz), alveolars do not.

The running peak is causal, so the labels of a row never depend on later audio except through
the small smoothing window; streaming re-segments and only the last ~0.3 s may change.
"""
from __future__ import annotations

import numpy as np
from scipy.ndimage import maximum_filter1d, minimum_filter1d

from ..audio.features import concat_features, slice_features
from ..types import FEATURE_HOP_S, AudioFeatures, Phone

SILENCE_BELOW_PEAK_DB = 35.0
ABSOLUTE_SILENCE_DB = -60.0
MURMUR_BELOW_PEAK_DB = 18.0
MAX_CLOSURE_S = 0.25
MIN_SEGMENT_FRAMES = 3
MIN_VOWEL_FRAMES = 6  # 60 ms
VOWEL_LABELS = frozenset("AA AE AH AO EH IH IY OW UW".split())
DIP_DB = 15.0
DIP_REACH = 8  # rows (80 ms) each side
BILABIAL_F2_LOCUS = 1300.0
HIGH_VOICE_F0 = 165.0
_SMOOTH = 2  # mode filter half-width in rows


# Row classes are small integer codes into LABELS (sorted, so ties in the mode filter go to the
# alphabetically first label, as they would for the names themselves).
LABELS = tuple(sorted({"AA", "AH", "AO", "EH", "IH", "IY", "OW", "UW", "N", "HH", "F", "S", "SIL"}))
_LABEL_NAMES = np.array(LABELS, dtype=object)
_CODE = {label: code for code, label in enumerate(LABELS)}


def _vowel_codes(f1: np.ndarray, f2: np.ndarray) -> np.ndarray:
    """Vowel class per row (a code into LABELS) from (speaker-scaled) F1 and F2."""
    codes = np.full(len(f1), _CODE["AH"], dtype=np.int8)
    open_, mid_open, mid_close, close = f1 >= 650, (f1 >= 500) & (f1 < 650), (f1 >= 380) & (f1 < 500), (f1 > 0) & (f1 < 380)
    codes[open_] = _CODE["AA"]
    codes[mid_open & (f2 >= 1700)] = _CODE["EH"]
    codes[mid_open & (f2 > 0) & (f2 < 1250)] = _CODE["AO"]
    codes[mid_close & (f2 >= 1800)] = _CODE["IH"]
    codes[mid_close & (f2 > 0) & (f2 < 1200)] = _CODE["OW"]
    codes[close & (f2 >= 1900)] = _CODE["IY"]
    codes[close & (f2 > 0) & (f2 < 1300)] = _CODE["UW"]
    codes[close & (f2 >= 1300) & (f2 < 1900)] = _CODE["IH"]
    return codes


def row_classes(features: AudioFeatures, peak_before: float = -np.inf) -> np.ndarray:
    """One ARPAbet label per feature row, before smoothing and closure placement.

    `peak_before` is the loudest row before these rows (streaming works on a tail of the line).
    """
    return _LABEL_NAMES[_row_codes(features, peak_before)]


def _row_codes(features: AudioFeatures, peak_before: float = -np.inf) -> np.ndarray:
    """row_classes as codes into LABELS."""
    loud = features.loudness_db
    peak = np.maximum(np.maximum.accumulate(np.maximum(loud, peak_before)) if len(loud) else loud, -45.0)
    silent = (loud < peak - SILENCE_BELOW_PEAK_DB) | (loud < ABSOLUTE_SILENCE_DB)
    voiced = (features.voicing >= 0.5) & ~silent
    scale = np.where(features.f0_hz > HIGH_VOICE_F0, 1.15, 1.0)
    f1, f2 = features.f1_hz / scale, features.f2_hz / scale
    codes = _vowel_codes(f1, f2)
    murmur = voiced & (loud < peak - MURMUR_BELOW_PEAK_DB) & (f1 < 400)
    codes[murmur] = _CODE["N"]
    noise = ~voiced & ~silent
    tilt, zcr = features.spectral_tilt, features.zero_crossing_rate
    codes[noise] = _CODE["HH"]
    codes[noise & (tilt > 3.0)] = _CODE["F"]
    codes[noise & (tilt > 10.0) & (zcr > 0.25)] = _CODE["S"]
    # loud, dark (low-tilt) rows with weak periodicity are rough or noisy voice, not frication
    codes[noise & (tilt < -12.0) & (loud > peak - 20.0)] = _CODE["AH"]
    codes[silent] = _CODE["SIL"]
    dips = _energy_dips(loud) & ~silent
    codes[dips & voiced] = _CODE["N"]  # murmur: M or N by F2 locus later
    codes[dips & ~voiced] = _CODE["SIL"]  # a stop's closure: P or T later, if it is short
    return codes


def _energy_dips(loud: np.ndarray) -> np.ndarray:
    """Rows of a sharp loudness dip: >= DIP_DB under the loudest row within +-80 ms, and
    within 20 ms of the dip's bottom (connected speech rarely falls to silence at a closure)."""
    if len(loud) < 5:
        return np.zeros(len(loud), dtype=bool)
    around = maximum_filter1d(loud, 2 * DIP_REACH + 1, mode="nearest")  # loudest row within +-DIP_REACH
    bottom = (loud <= minimum_filter1d(loud, 5, mode="nearest")) & (around - loud >= DIP_DB)
    close_to_bottom = maximum_filter1d(bottom.view(np.uint8), 5, mode="constant") > 0  # a bottom within +-2 rows
    return close_to_bottom & (around - loud >= DIP_DB - 6.0)


def _mode_filter(codes: np.ndarray) -> np.ndarray:
    """Most common code within +-_SMOOTH rows (ties keep the row's own code)."""
    if len(codes) <= 2 * _SMOOTH:
        return codes.copy()
    padded = np.pad(codes, _SMOOTH, mode="edge")
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * _SMOOTH + 1)  # (T, 5)
    counts = (windows[:, :, None] == np.arange(len(LABELS))[None, None, :]).sum(axis=1)  # (T, labels)
    rows = np.arange(len(codes))
    own = counts[rows, codes]
    best = counts.argmax(axis=1)
    return np.where(counts[rows, best] > own, best, codes)


def _runs(codes: np.ndarray) -> list[list]:
    """[label, first_row, end_row) runs of row codes, short runs merged into the previous one."""
    if len(codes) == 0:
        return []
    change = np.flatnonzero(codes[1:] != codes[:-1]) + 1
    starts = [0] + (change).tolist()
    ends = change.tolist() + [len(codes)]
    labels = [LABELS[code] for code in codes[starts].tolist()]
    runs: list[list] = []
    for label, start, end in zip(labels, starts, ends):
        # a vowel colour shorter than MIN_VOWEL_FRAMES inside a vowel is formant movement
        glide = runs and label in VOWEL_LABELS and runs[-1][0] in VOWEL_LABELS and end - start < MIN_VOWEL_FRAMES
        if runs and (end - start < MIN_SEGMENT_FRAMES or runs[-1][0] == label or glide):
            runs[-1][2] = end
        elif not runs and end - start < MIN_SEGMENT_FRAMES and end < len(codes):
            runs.append([LABELS[codes[end]], start, end])  # a short first run joins the next label
        else:
            runs.append([label, start, end])
    merged: list[list] = []
    for run in runs:
        if merged and merged[-1][0] == run[0]:
            merged[-1][2] = run[2]
        else:
            merged.append(run)
    return merged


def _edge_f2(f2: np.ndarray, row: int, direction: int) -> float:
    """Median F2 of up to 5 voiced rows next to a gap, walking away from it."""
    if direction < 0:
        span = f2[max(row - 9, 0) : row + 1][::-1] if row >= 0 else f2[:0]
    else:
        span = f2[max(row, 0) : row + 10]
    picked = sorted(span[span > 0][:5].tolist())
    if not picked:
        return np.inf
    middle = len(picked) // 2
    return float(picked[middle]) if len(picked) % 2 else (picked[middle - 1] + picked[middle]) / 2


def _place_closures(runs: list[list], features: AudioFeatures) -> None:
    """Short silences between sounds become stop closures; murmurs become M or N by F2 locus."""
    f2 = features.f2_hz / np.where(features.f0_hz > HIGH_VOICE_F0, 1.15, 1.0)
    max_rows = int(round(MAX_CLOSURE_S / FEATURE_HOP_S))
    for index, (label, start, end) in enumerate(runs):
        inner = 0 < index < len(runs) - 1
        if label == "SIL" and inner and end - start <= max_rows:
            locus = min(_edge_f2(f2, start - 1, -1), _edge_f2(f2, end, 1))
            runs[index][0] = "P" if locus < BILABIAL_F2_LOCUS else "T"
        elif label == "N":
            locus = min(_edge_f2(f2, start - 1, -1), _edge_f2(f2, end, 1))
            runs[index][0] = "M" if locus < BILABIAL_F2_LOCUS else "N"


def _segment(features: AudioFeatures, peak_before: float = -np.inf) -> list[list]:
    runs = _runs(_mode_filter(_row_codes(features, peak_before)))
    _place_closures(runs, features)
    return runs


def _to_phones(runs: list[list], origin: float) -> list[Phone]:
    return [Phone(label, origin + start * FEATURE_HOP_S, origin + end * FEATURE_HOP_S) for label, start, end in runs]


def acoustic_phones(features: AudioFeatures) -> tuple[Phone, ...]:
    """Phones covering every feature row (times on the features' timeline)."""
    return tuple(_to_phones(_segment(features), features.start_time))


class AcousticTracker:
    """Streaming acoustic phones: re-segments only the recent rows, so each update is cheap.

    Phones that ended more than HOLD_ROWS rows before the newest row are frozen; the rest is
    recomputed on every update. The final timeline (`final`) re-segments the whole line, so it
    equals `acoustic_phones` on the same rows exactly.
    """

    HOLD_ROWS = 50  # 0.5 s

    def __init__(self):
        self._blocks: list[AudioFeatures] = []  # every row, for the final timeline
        self._work: AudioFeatures | None = None  # rows not yet frozen
        self._peak_before = -np.inf  # loudest row before the working rows
        self._frozen: tuple[Phone, ...] = ()

    def add(self, block: AudioFeatures) -> None:
        self._blocks.append(block)
        self._work = block if self._work is None else concat_features([self._work, block])

    def phones(self) -> tuple[Phone, ...]:
        frozen, recent = self.parts()
        return frozen + recent

    def parts(self) -> tuple[tuple[Phone, ...], tuple[Phone, ...]]:
        """(frozen phones, which only ever grow at the end; the recent ones, which may change)."""
        if self._work is None or self._work.num_frames == 0:
            return self._frozen, ()
        runs = _segment(self._work, self._peak_before)
        settled = [run for run in runs[:-1] if run[2] <= self._work.num_frames - self.HOLD_ROWS]
        if settled:
            self._frozen += tuple(_to_phones(settled, self._work.start_time))
            cut = settled[-1][2]
            self._peak_before = max(self._peak_before, float(self._work.loudness_db[:cut].max()))
            self._work = slice_features(self._work, cut)
            runs = [[label, start - cut, end - cut] for label, start, end in runs[len(settled):]]
        return self._frozen, tuple(_to_phones(runs, self._work.start_time))

    def final(self) -> tuple[Phone, ...]:
        return acoustic_phones(concat_features(self._blocks)) if self._blocks else ()
