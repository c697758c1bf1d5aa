"""The lip layer: phones give timing and the shapes that must be hit (closures, lip-to-teeth,
rounding); acoustics (loudness, F1, F2, frication) give how open the mouth really is.

1. coarticulated_targets: each phone's viseme pose, blended by dominance with its neighbours
   (Cohen-Massaro style: a phone's pull decays exponentially outside it, faster behind than
   ahead, so lips anticipate the next sound by ~50-100 ms).
2. acoustic_mouth: an openness / rounding / spreading pose from the cues alone.
3. The two are mixed by how much the phones can be trusted (aligned > recognized > acoustic).
4. Key shapes override: bilabials close the lips fully, F/V put the lip to the teeth.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..arkit import ARKIT_INDEX, ARKIT_NAMES
from ..numeric import clip as _clip
from ..types import Phone, PhoneSource
from .cues import Cues
from .visemes import VISEME_INDEX, VISEME_POSES


_VISEME_OF_PHONE: dict[str, str] = {
    "SIL": "sil", "P": "PP", "B": "PP", "M": "PP", "F": "FF", "V": "FF", "TH": "TH", "DH": "TH",
    "T": "DD", "D": "DD", "K": "kk", "G": "kk", "NG": "kk", "HH": "kk",
    "CH": "CH", "JH": "CH", "SH": "CH", "ZH": "CH", "S": "SS", "Z": "SS", "N": "nn", "L": "nn",
    "R": "RR", "ER": "RR", "AA": "aa", "AE": "aa", "AH": "aa", "AW": "aa", "AY": "aa",
    "EH": "E", "EY": "E", "IH": "ih", "IY": "ih", "Y": "ih", "AO": "oh", "OW": "oh", "OY": "oh",
    "UW": "ou", "UH": "ou", "W": "ou",
}
# How strongly a phone holds its shape against its neighbours.
_DOMINANCE: dict[str, float] = {
    "sil": 0.6, "PP": 3.0, "FF": 2.0, "TH": 0.8, "DD": 0.35, "kk": 0.2, "CH": 1.2, "SS": 0.8,
    "nn": 0.35, "RR": 0.7, "aa": 0.6, "E": 0.55, "ih": 0.5, "oh": 0.8, "ou": 1.0,
}
_LOW_DOMINANCE_PHONES = {"HH": 0.05, "W": 1.4, "L": 0.3}
BILABIALS = frozenset({"P", "B", "M"})
LABIODENTALS = frozenset({"F", "V"})

ANTICIPATION_S = 0.05  # a coming phone's pull falls by e every 50 ms before it starts
CARRYOVER_S = 0.035  # a past phone's pull falls by e every 35 ms after it ends
# The jaw is the heaviest articulator: it moves slower than the lips, so a consonant between two
# vowels dips it only partly (real mouths stay open through a phrase with shallow dips).
JAW_ANTICIPATION_S = 0.08
JAW_CARRYOVER_S = 0.08
# Real mouths move slightly before their sound; phones are placed at the sound, so the
# phone-driven mouth (openings and lip shapes; closures stay on their phones) is read this far
# ahead. bench/bench_timing.py, lip-gap lead over the sound on real clips, no lead -> 60 ms:
# recognized phones (no text): tuning videos -22 -> +9 ms, GRID s1 +12 -> +37, held-out GRID s4
# +8 -> +31; aligned (with text): GRID s1 +3 -> +27, held-out s4 -12 -> +3. Aligned phones get
# no lead yet: any lead (15, 30, 60 ms) took streaming-with-text agreement on line_greeting from
# r 0.803 to 0.79 / 0.78 / 0.77, under the 0.8 tests/test_motion.py states (the live aligner
# misplaces phones near its tail, e.g. drops the B of "baker", and a lead leans on that tail).
# Leading only the phones a live aligner no longer moves (those ending 0.3 s or more before the
# audio heard) kept that r at 0.806 with 30 ms, but put the mouth of short pauses between words
# in the next word's shape (tests/test_motion.py's viseme view: 'sil' named 0.67 -> 0.58, under
# 0.6), so it is left out; the closures lead instead (KEY_SHAPE_LEAD_S).
# The acoustic mouth cannot lead without more latency (the cues use all of FRAME_REACH_S).
PHONE_LEAD_S: dict[str, float] = {"aligned": 0.0, "recognized": 0.06, "acoustic": 0.0}
# Phones further ahead of a frame than this do not pull (bounds streaming latency).
PHONE_REACH_S = 0.10
# Aligned bilabial closures (and lip to teeth) are read this far ahead: lips part at a stop's
# burst, and the closure's ease-out (CLOSURE_RELEASE_S after the phone) otherwise held them shut
# into the vowel's sound. Unlike the phone lead, this one raised line_greeting's streaming r
# (0.803 -> 0.813 at 25 and 50 ms). 30 ms: with CLOSURE_LEAD_S a closure is read no further ahead
# than PHONE_REACH_S, the streaming bound.
KEY_SHAPE_LEAD_S: dict[str, float] = {"aligned": 0.03, "recognized": 0.0, "acoustic": 0.0}
CLOSURE_LEAD_S = 0.07  # lips start closing this long before a bilabial
CLOSURE_RELEASE_S = 0.05
PHONE_TRUST: dict[str, float] = {"aligned": 0.85, "recognized": 0.85, "acoustic": 0.2}
# Recognized phones time the mouth well but often mislabel its shape (W, R, UW for anything
# rounded-ish), so their rounding / spreading is damped.
LIP_SHAPE_TRUST: dict[str, float] = {"aligned": 1.0, "recognized": 0.6, "acoustic": 0.8}
# How far a phone's claim of a key shape is believed: (bilabial closure, F/V lip to teeth). The
# acoustic segmenter calls any soft fricative "F" and guesses bilabials from F2, so its claims
# only lean the lips that way.
KEY_SHAPE_TRUST: dict[str, tuple[float, float]] = {"aligned": (1.0, 1.0), "recognized": (1.0, 0.7),
                                                   "acoustic": (0.85, 0.3)}
OPENING_AT_SILENCE, OPENING_PER_LEVEL = 0.5, 0.6  # phone jaw opening = (a + b * held level) * pose
PHRASE_JAW = 0.12  # jaw kept open through a phrase, on top of the syllable opening
ACOUSTIC_CLOSURE = 0.85  # how far an acoustic dip closes the lips (phones alone claim a full closure)
_CLOSED_JAW = 0.06  # jaw opening during a bilabial (teeth apart, lips together)


def _idx(*names: str) -> np.ndarray:
    return np.array([ARKIT_INDEX[n] for n in names])


_JAW = ARKIT_INDEX["JawOpen"]
_CLOSE = ARKIT_INDEX["MouthClose"]
_PRESS = _idx("MouthPressLeft", "MouthPressRight")
_ROLL = _idx("MouthRollLower", "MouthRollUpper")
_PARTING = _idx("MouthUpperUpLeft", "MouthUpperUpRight", "MouthLowerDownLeft", "MouthLowerDownRight",
                "MouthStretchLeft", "MouthStretchRight", "MouthFunnel", "MouthPucker", "TongueOut")
_STRETCH = _idx("MouthStretchLeft", "MouthStretchRight")
_UPPER_UP = _idx("MouthUpperUpLeft", "MouthUpperUpRight")
_LOWER_DOWN = _idx("MouthLowerDownLeft", "MouthLowerDownRight")
_PUCKER, _FUNNEL = ARKIT_INDEX["MouthPucker"], ARKIT_INDEX["MouthFunnel"]
_OPENING = _idx("JawOpen", "MouthUpperUpLeft", "MouthUpperUpRight", "MouthLowerDownLeft", "MouthLowerDownRight")


def viseme_of(label: str) -> str | None:
    return _VISEME_OF_PHONE.get(label.upper())


@dataclass(frozen=True)
class PhoneTable:
    """The phones as arrays (built once per timeline; the layer then only slices by time)."""

    starts: np.ndarray  # (P,) seconds, ascending
    ends: np.ndarray  # (P,)
    visemes: np.ndarray  # (P,) row in VISEME_POSES
    dominance: np.ndarray  # (P,)
    bilabial: np.ndarray  # (P,) bool
    labiodental: np.ndarray  # (P,) bool

    @staticmethod
    def build(phones: Sequence[Phone], since: float = -np.inf) -> "PhoneTable":
        """From time-ordered phones; only those ending after ``since`` (read from the end, so a
        long live timeline costs only its recent part)."""
        recent = []
        for p in reversed(phones):
            if p.end < since:
                break
            recent.append(p)
        rows = []
        for p in sorted(recent, key=lambda p: p.start):
            label = p.label.upper()
            viseme = viseme_of(label)
            if viseme is None:
                continue
            dominance = _LOW_DOMINANCE_PHONES.get(label, _DOMINANCE[viseme]) * (1.25 if p.stress == 1 else 1.0)
            rows.append((p.start, p.end, VISEME_INDEX[viseme], dominance, label in BILABIALS, label in LABIODENTALS))
        columns = list(zip(*rows)) if rows else [()] * 6
        types = (float, float, int, float, bool, bool)
        return PhoneTable(*(np.array(col, dtype=kind) for col, kind in zip(columns, types)))

    def near(self, t_min: float, t_max: float, mask: np.ndarray | None = None) -> np.ndarray:
        """Indices of the phones that end after t_min - 0.5 s and start before t_max + 0.5 s."""
        first = int(np.searchsorted(self.starts, t_min - 1.5))  # phones are short; 1.5 s is plenty
        last = int(np.searchsorted(self.starts, t_max + 0.5))
        idx = np.arange(first, last)
        idx = idx[(self.ends[idx] >= t_min - 0.5)]
        return idx if mask is None else idx[mask[idx]]


def coarticulated_targets(times: np.ndarray, table: PhoneTable, lead: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """(T, 52) dominance-blended viseme poses and (T,) coverage (0 where no phone is near), as
    the phones stand ``lead`` seconds after each time (phones no further than PHONE_REACH_S
    after the time pull)."""
    times = times + lead
    idx = table.near(float(times.min(initial=0.0)), float(times.max(initial=0.0)))
    if len(idx) == 0:
        return np.zeros((len(times), len(ARKIT_NAMES))), np.zeros(len(times))
    ahead = table.starts[idx][None, :] - times[:, None]  # (T, P) > 0: the phone is still to come
    behind = times[:, None] - table.ends[idx][None, :]  # (T, P) > 0: the phone is over
    poses = VISEME_POSES[table.visemes[idx]]  # (P, 52)
    weights = table.dominance[idx][None, :] * _decay(ahead, behind, ANTICIPATION_S, CARRYOVER_S, PHONE_REACH_S - lead)  # (T, P)
    total = weights.sum(1)
    blend = (weights @ poses) / np.maximum(total, 1e-6)[:, None]  # (T, 52)
    jaw_weights = table.dominance[idx][None, :] * _decay(ahead, behind, JAW_ANTICIPATION_S, JAW_CARRYOVER_S, PHONE_REACH_S - lead)
    blend[:, _JAW] = (jaw_weights @ poses[:, _JAW]) / np.maximum(jaw_weights.sum(1), 1e-6)
    return blend, _clip(total / 0.3, 0.0, 1.0)


def _decay(ahead: np.ndarray, behind: np.ndarray, anticipation_s: float, carryover_s: float, reach_s: float) -> np.ndarray:
    """(T, P) a phone's pull: 1 inside it, falling exponentially before and after it."""
    return np.where(ahead > 0, np.exp(-_clip(ahead, 0, 1) / anticipation_s) * (ahead <= reach_s),
                    np.where(behind > 0, np.exp(-_clip(behind, 0, 1) / carryover_s), 1.0))


def key_shape_curve(times: np.ndarray, table: PhoneTable, mask: np.ndarray) -> np.ndarray:
    """(T,) 1 inside any phone selected by ``mask``, easing in before it and out after it."""
    idx = table.near(float(times.min(initial=0.0)), float(times.max(initial=0.0)), mask)
    if len(idx) == 0:
        return np.zeros(len(times))
    rise = _clip((times[:, None] - (table.starts[idx] - CLOSURE_LEAD_S)) / CLOSURE_LEAD_S, 0.0, 1.0)
    fall = _clip(((table.ends[idx] + CLOSURE_RELEASE_S) - times[:, None]) / CLOSURE_RELEASE_S, 0.0, 1.0)
    inside = np.minimum(rise, fall)  # (T, P)
    return (inside * inside * (3 - 2 * inside)).max(1)


# The tongue tip rises to the ridge behind the upper teeth for these visemes (T D, N L, TH DH); how far
# a phone source's labels are believed (the acoustic segmenter cannot tell T from K).
TONGUE_TIP_VISEMES = ("DD", "nn", "TH")
TONGUE_TIP_TRUST: dict[str, float] = {"aligned": 1.0, "recognized": 0.8, "acoustic": 0.0}


def tongue_tip_curve(times: np.ndarray, table: PhoneTable, source: PhoneSource) -> np.ndarray:
    """(T,) 0..1: the tongue tip raised behind the upper teeth (MotionFrame.tongue_tip)."""
    if TONGUE_TIP_TRUST[source] == 0.0 or len(table.starts) == 0:  # what the curve gives then, without its cost
        return np.zeros(len(times))
    mask = np.isin(table.visemes, [VISEME_INDEX[v] for v in TONGUE_TIP_VISEMES])
    return TONGUE_TIP_TRUST[source] * key_shape_curve(times, table, mask)


def acoustic_mouth(times: np.ndarray, cues: Cues) -> np.ndarray:
    """(T, 52) a mouth from acoustics alone: F1 and loudness open the jaw, F2 rounds or spreads
    the lips, frication brings the teeth together."""
    level = cues.at("level", times)
    f1 = cues.at("f1_open", times)
    fricative = cues.at("fricative", times)
    mouth = np.zeros((len(times), len(ARKIT_NAMES)))
    mouth[:, _JAW] = (0.22 * level + 0.5 * f1) * (1.0 - 0.7 * fricative) + PHRASE_JAW * cues.at("phrase", times)
    rounding = cues.at("f2_round", times)
    mouth[:, _PUCKER] = 0.6 * rounding
    mouth[:, _FUNNEL] = 0.35 * rounding
    mouth[:, _STRETCH] = (0.35 * cues.at("f2_spread", times) + 0.25 * fricative)[:, None]
    mouth[:, _UPPER_UP] = (0.1 * level + 0.2 * fricative)[:, None]
    mouth[:, _LOWER_DOWN] = (0.25 * f1 + 0.2 * fricative)[:, None]
    return mouth


@dataclass(frozen=True)
class LipLayer:
    mouth: np.ndarray  # (T, 52) mouth channels only
    closure: np.ndarray  # (T,) 0..1: lips must meet (other layers may not part them)


def apply_closure(mouth: np.ndarray, closure: np.ndarray) -> np.ndarray:
    """Bilabial closure: jaw nearly shut, MouthClose cancelling it, lips pressed, nothing parting."""
    c = closure[:, None]
    out = mouth.copy()
    out[:, _JAW] = mouth[:, _JAW] * (1 - closure) + _CLOSED_JAW * closure
    out[:, _CLOSE] = np.maximum(mouth[:, _CLOSE] * (1 - closure), out[:, _JAW] * closure)
    out[:, _PARTING] = mouth[:, _PARTING] * (1 - c)
    out[:, _PRESS] = np.maximum(mouth[:, _PRESS], 0.45 * c)
    out[:, _ROLL] = np.maximum(mouth[:, _ROLL], np.array([0.12, 0.08]) * c)
    return out


def apply_labiodental(mouth: np.ndarray, strength: np.ndarray) -> np.ndarray:
    """F/V: lower lip rolled in under the upper teeth, upper lip lifted a little."""
    pose = VISEME_POSES[VISEME_INDEX["FF"]]
    s = 0.9 * strength[:, None]
    return mouth * (1 - s) + pose[None, :] * s


def lip_layer(times: np.ndarray, cues: Cues, phones: PhoneTable, source: PhoneSource) -> LipLayer:
    # Openings and lip shapes lead the sound; closures and lip-to-teeth stay on their phones.
    targets, coverage = coarticulated_targets(times, phones, PHONE_LEAD_S[source])
    level = cues.at("level", times)
    # Quieter speech opens the mouth less; lip shapes (rounding, spreading) depend less on loudness
    # and so can start before the sound, over the preceding consonant.
    shape_gain = (0.75 + 0.25 * level) * LIP_SHAPE_TRUST[source]
    targets = targets * shape_gain[:, None]
    # A phone's vowel already says how open the jaw is; loudness (relative to the speaker's recent
    # level) only scales it a little. Scaling it fully made the jaw a loudness meter that spiked
    # per syllable (worse on the real videos, bench/bench_quality.py).
    held = cues.at("held", times)
    targets[:, _OPENING] *= ((OPENING_AT_SILENCE + OPENING_PER_LEVEL * held) / np.maximum(shape_gain, 1e-6))[:, None]
    trust = PHONE_TRUST[source] * coverage[:, None]
    mouth = trust * targets + (1 - trust) * acoustic_mouth(times, cues)
    closure_trust, labiodental_trust = KEY_SHAPE_TRUST[source]
    key_times = times + KEY_SHAPE_LEAD_S[source]
    mouth = apply_labiodental(mouth, labiodental_trust * key_shape_curve(key_times, phones, phones.labiodental))
    closure = closure_trust * key_shape_curve(key_times, phones, phones.bilabial)
    # Where no trustworthy phone says otherwise (other languages, singing, the not-yet-recognized
    # tail of a stream), a short quiet gap between louder sounds closes the lips most of the way.
    phone_says = coverage if source != "acoustic" else np.zeros_like(coverage)
    closure = np.maximum(closure, ACOUSTIC_CLOSURE * cues.at("dip", times) * (1.0 - phone_says))
    mouth = apply_closure(mouth, closure)
    return LipLayer(mouth=_clip(mouth, 0.0, 1.0), closure=closure)
