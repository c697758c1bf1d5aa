"""The rule generator's acoustic cues as extra input columns of the learned mouth
(Config.rule_cues): the network starts from what the hand-tuned rules read in any voice (level
relative to the speaker's recent loudest moment, formant opening and rounding, frication, dips,
the acoustic mouth's own jaw and lip gap) and learns what real faces add.

A cue row reads CUE_AHEAD_ROWS (80 ms) of later feature rows. The network reads each row's cues
``lookahead`` rows late (models/audio2face.py), so output i sees the cues of rows up to i and
raw features up to i + lookahead: the cues add no latency when lookahead >= CUE_AHEAD_ROWS.

Cues come from the 47-column network rows (core/motion/learned.feature_matrix), so training
(after augmentation), the whole-line run and the stream compute them from the same numbers.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..arkit import ARKIT_INDEX
from ..errors import ControlError
from ..types import FEATURE_HOP_S, AudioFeatures, Phone
from .cues import CUE_BACK_S, CUE_READ_AHEAD_S, Cues, compute_cues_many
from .lips import PhoneTable, lip_layer

# The cues the rules' mouth reads, then that mouth's jaw and lip gap without phones.
RULE_COLUMNS = ("level", "voiced", "f1_open", "f2_round", "f2_spread", "fricative", "phrase", "dip", "held",
                "acoustic_jaw", "acoustic_gap")
CUE_AHEAD_ROWS = int(round(CUE_READ_AHEAD_S / FEATURE_HOP_S))
CUE_BACK_ROWS = int(round(CUE_BACK_S / FEATURE_HOP_S)) + 4  # + the short smoothing's own rows
_NO_PHONES = PhoneTable.build(())


def rows_as_features(matrix: np.ndarray) -> AudioFeatures:
    """(T, 47) network rows -> the AudioFeatures the cues read (float64; log2 f0 of 0 = unvoiced)."""
    m = np.asarray(matrix, dtype=np.float64)
    f0 = np.where(m[:, 41] != 0.0, 100.0 * np.exp2(m[:, 41]), 0.0)
    return AudioFeatures(start_time=0.0, log_mel=m[:, :40], loudness_db=m[:, 40], f0_hz=f0, voicing=m[:, 42],
                         f1_hz=m[:, 43] * 1000.0, f2_hz=m[:, 44] * 1000.0, spectral_tilt=m[:, 45] * 10.0,
                         zero_crossing_rate=m[:, 46] / 10.0)


def _columns(cues: Cues, first: int, stop: int) -> np.ndarray:
    """(stop - first, len(RULE_COLUMNS)) the cues and the rules' phone-less mouth at rows first..stop-1."""
    mouth = lip_layer(cues.row_times()[first:stop], cues, _NO_PHONES, "acoustic").mouth  # (R, 52)
    jaw = mouth[:, ARKIT_INDEX["JawOpen"]]
    gap = jaw - mouth[:, ARKIT_INDEX["MouthClose"]]
    return np.stack([getattr(cues, name)[first:stop] for name in RULE_COLUMNS[:-2]] + [jaw, gap], axis=1)


def rule_columns_many(matrices: list[np.ndarray], firsts: list[int] | None = None) -> list[np.ndarray]:
    """Each (T, 47) matrix -> its (T - first, len(RULE_COLUMNS)) cue columns from row ``first``
    on (default 0), all in one cue pass."""
    if not matrices:
        return []
    firsts = firsts or [0] * len(matrices)
    cues = compute_cues_many([rows_as_features(m) for m in matrices])
    return [_columns(c, first, len(m)) for c, first, m in zip(cues, firsts, matrices)]


def with_rule_columns(matrix: np.ndarray, rule_cues: int) -> np.ndarray:
    """(T, 47) rows -> (T, 47 + rule_cues): what a model of that Config reads (unchanged for 0)."""
    if rule_cues == 0:
        return matrix
    check_rule_cues(rule_cues)
    return np.concatenate([matrix, rule_columns_many([matrix])[0].astype(matrix.dtype)], axis=1)


def check_rule_cues(rule_cues: int, lookahead: int | None = None) -> None:
    if rule_cues not in (0, len(RULE_COLUMNS)):
        raise ValueError(f"rule_cues must be 0 or {len(RULE_COLUMNS)} (core/motion/learned_inputs.RULE_COLUMNS), got {rule_cues}")
    if rule_cues and lookahead is not None and lookahead < CUE_AHEAD_ROWS:
        raise ValueError(f"rule_cues need lookahead >= {CUE_AHEAD_ROWS} rows (a cue reads that far ahead), got {lookahead}")


class CueWindow:
    """One stream's cue columns as its rows arrive: row i's are final once row i + CUE_AHEAD_ROWS
    is in, and need the CUE_BACK_ROWS rows before it (kept here)."""

    def __init__(self):
        self._raw = np.zeros((0, 47))  # rows from absolute index self._first on
        self._first = 0
        self.done = 0  # cue rows computed so far
        self.ready = np.zeros((0, len(RULE_COLUMNS)))  # computed, not yet taken

    def take(self, n: int) -> np.ndarray:
        out, self.ready = self.ready[:n], self.ready[n:]
        return out


def advance_many(windows: list[CueWindow], matrices: list[np.ndarray]) -> None:
    """Append each window's new rows and compute, in one cue pass, every cue row now final."""
    due, parts, firsts = [], [], []
    for window, matrix in zip(windows, matrices):
        window._raw = np.concatenate([window._raw, matrix])
        final = window._first + len(window._raw) - CUE_AHEAD_ROWS  # cue rows before this are final
        if final > window.done:
            start = max(window._first, window.done - CUE_BACK_ROWS)
            due.append((window, start, final))
            parts.append(window._raw[start - window._first:final + CUE_AHEAD_ROWS - window._first])
            firsts.append(window.done - start)
    for (window, start, final), columns in zip(due, rule_columns_many(parts, firsts)):
        window.ready = np.concatenate([window.ready, columns[:final - window.done]])
        window.done = final
        keep_from = max(window._first, final - CUE_BACK_ROWS)
        window._raw = window._raw[keep_from - window._first:]
        window._first = keep_from


# Articulatory classes of the aligned text's phones (Config.phone_classes): what the lips and jaw
# do, not what the sound is. Bilabials close the lips and labiodentals tuck the lower lip (the two
# shapes audio hides best: a closure is silent); rounded, protruded (postalveolars and the
# rhotics, which English speakers say with pursed lips), open and spread are the lip shapes of
# the rules' visemes merged where the lips barely differ; alveolar/dental and back (velar,
# glottal) consonants leave the lips to the neighbouring vowels; silence rests the mouth.
PHONE_CLASSES = {
    "silence": ("SIL",),
    "bilabial": ("P", "B", "M"),
    "labiodental": ("F", "V"),
    "rounded": ("UW", "UH", "OW", "OY", "AO", "W"),
    "protruded": ("SH", "ZH", "CH", "JH", "R", "ER"),
    "open": ("AA", "AE", "AH", "AW", "AY"),
    "spread": ("IY", "IH", "EY", "EH", "Y"),
    "alveolar": ("TH", "DH", "T", "D", "N", "S", "Z", "L"),
    "back": ("K", "G", "NG", "HH"),
}
_CLASS_OF = {label: k for k, labels in enumerate(PHONE_CLASSES.values()) for label in labels}


def check_phone_classes(phone_classes: int) -> None:
    if phone_classes not in (0, len(PHONE_CLASSES)):
        raise ValueError(f"phone_classes must be 0 or {len(PHONE_CLASSES)} (core/motion/learned_inputs.PHONE_CLASSES), "
                         f"got {phone_classes}")


def phone_class_rows(phones: Sequence[Phone], first_row: int, count: int) -> np.ndarray:
    """(count,) int class index (PHONE_CLASSES order) of the phone at each feature row's centre,
    rows first_row.. on; a gap between phones is silence, rows after the last phone keep its class
    (a live aligner's newest phone is still going on). Unknown labels and bad times are errors."""
    starts = np.array([p.start for p in phones], dtype=np.float64)
    ends = np.array([p.end for p in phones], dtype=np.float64)
    classes = np.array([_phone_class(p) for p in phones], dtype=np.int64)
    if not (np.isfinite(starts).all() and np.isfinite(ends).all()) or (ends < starts).any() or (np.diff(starts) < 0).any():
        raise ControlError("phones must have finite times, end >= start, in time order")
    centres = (first_row + np.arange(count) + 0.5) * FEATURE_HOP_S
    index = np.searchsorted(starts, centres, side="right") - 1  # the last phone starting at or before
    silence = _CLASS_OF["SIL"]
    if not len(phones):
        return np.full(count, silence)
    found = index >= 0
    inside = found & ((centres < ends[np.maximum(index, 0)]) | (index == len(phones) - 1))
    return np.where(inside, classes[np.maximum(index, 0)], silence)


def _phone_class(phone: Phone) -> int:
    label = phone.label.upper() if isinstance(phone.label, str) else phone.label
    if label not in _CLASS_OF:
        raise ControlError(f"unknown phone label {phone.label!r} at {phone.start} s (ARPAbet without stress, or SIL)")
    return _CLASS_OF[label]


def phone_columns(classes: np.ndarray, phone_classes: int) -> np.ndarray:
    """(T,) class indices -> (T, phone_classes + 1): one-hot, then the "phones present" flag (1).
    No phones is all zeros (flag 0)."""
    out = np.zeros((len(classes), phone_classes + 1))
    out[np.arange(len(classes)), classes] = 1.0
    out[:, -1] = 1.0
    return out


def timeline_columns(phones: Sequence[Phone] | None, source: str, first_row: int, count: int, phone_classes: int) -> np.ndarray:
    """(count, phone_classes + 1) the phone columns of rows first_row.. from a timeline's phones:
    only aligned phones (from the text) count; recognized or acoustic phones, or none, give zeros."""
    if source != "aligned" or phones is None:
        return np.zeros((count, phone_classes + 1))
    return phone_columns(phone_class_rows(phones, first_row, count), phone_classes)
