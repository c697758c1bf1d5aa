"""Which vowels carry stress, from loudness (the bundled dictionary has no stress marks).

- Phones with words (alignment): in each content word, the loudest vowel gets primary stress
  (1); vowels of function words ("the", "a", "of"...) and the word's other vowels get 0.
- Phones without words (recognition, acoustic fallback): a vowel is stressed when it is at
  least as loud as the vowels either side of it (within 0.5 s) and within 10 dB of the loudest
  vowel so far: the syllables a listener hears as prominent.
"""
from __future__ import annotations

import numpy as np

from ..types import SAMPLE_RATE, Phone

VOWELS = frozenset("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split())
FUNCTION_WORDS = frozenset(
    """a an the and or but if of to in on at by for with from as is am are was were be been being
    it its i me my we us our you your he him his she her they them their this that these those
    not no do does did have has had will would can could shall should may might must there
    than then so""".split()
)
HOP = 160  # 10 ms
NEIGHBOUR_S = 0.5
PROMINENCE_RANGE_DB = 10.0


class LoudnessTrack:
    """dBFS of each complete 10 ms hop of a growing signal, with running sums of the levels
    (kept as the signal grows, so a span's mean costs the same on a long line as on a short one)."""

    def __init__(self):
        self._pending = np.zeros(0, dtype=np.float32)
        self._levels = np.zeros(0)
        self._prefix = np.zeros(1)  # _prefix[k] = sum of the first k levels
        self._count = 0

    def push(self, samples: np.ndarray) -> None:
        joined = np.concatenate([self._pending, samples])
        whole = len(joined) // HOP * HOP
        if whole:
            power = (joined[:whole].astype(np.float64).reshape(-1, HOP) ** 2).mean(axis=1)
            self._append(10.0 * np.log10(power + 1e-12))
        self._pending = joined[whole:]

    def _append(self, levels: np.ndarray) -> None:
        count = self._count + len(levels)
        if count + 1 > len(self._prefix):  # grow by doubling: amortised O(1) per level
            size = max(2 * len(self._prefix), count + 1)
            self._levels = np.concatenate([self._levels[: self._count], np.zeros(size - 1 - self._count)])
            self._prefix = np.concatenate([self._prefix[: self._count + 1], np.zeros(size - 1 - self._count)])
        self._levels[self._count : count] = levels
        # accumulate from the running total: the same additions, in the same order, as one cumsum
        self._prefix[self._count + 1 : count + 1] = np.cumsum(np.concatenate([self._prefix[self._count : self._count + 1], levels]))[1:]
        self._count = count

    def levels(self) -> np.ndarray:
        return self._levels[: self._count]

    def mean_db(self, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
        """Mean level of each [start, end) span in seconds (-120 where no hop has arrived)."""
        count_all = self._count
        running = self._prefix
        first = np.minimum((starts * SAMPLE_RATE).astype(np.int64) // HOP, count_all)
        last = np.minimum(np.maximum(first + 1, np.ceil(ends * SAMPLE_RATE / HOP).astype(np.int64)), count_all)
        count = last - first
        return np.where(count > 0, (running[last] - running[first]) / np.maximum(count, 1), -120.0)


def vowel_peak(phones, loudness: LoudnessTrack) -> float:
    """The loudest vowel level among these phones (-inf if none)."""
    spans = np.array([(p.start, p.end) for p in phones if p.label in VOWELS])
    return float(loudness.mean_db(spans[:, 0], spans[:, 1]).max()) if len(spans) else -np.inf


def mark_stress(phones: tuple[Phone, ...], loudness: LoudnessTrack, loudest_before: float = -np.inf) -> tuple[Phone, ...]:
    """The same phones with `stress` set on vowels (see the module notes).

    `loudest_before`: the loudest vowel before these phones, when they continue a line.
    """
    vowels = [i for i, phone in enumerate(phones) if phone.label in VOWELS]
    if not vowels:
        return phones
    spans = np.array([(phones[i].start, phones[i].end) for i in vowels])
    level = dict(zip(vowels, loudness.mean_db(spans[:, 0], spans[:, 1]).tolist()))
    if any(phones[i].word for i in vowels):
        stressed = _lexical(phones, vowels, level)
    else:
        stressed = _prominent(phones, vowels, level, loudest_before)
    marked = list(phones)
    for i in vowels:
        stress = 1 if i in stressed else 0
        if phones[i].stress != stress:
            phone = phones[i]
            marked[i] = Phone(phone.label, phone.start, phone.end, stress, phone.word)
    return tuple(marked)


def _lexical(phones, vowels: list[int], level: dict[int, float]) -> set[int]:
    by_word: dict[tuple[str, int], list[int]] = {}
    word_number = 0
    previous_word = None
    for i, phone in enumerate(phones):  # a word's phones share a number, even split by a pause
        if not phone.word:
            continue
        if phone.word != previous_word:
            word_number += 1
            previous_word = phone.word
        if i in level and phone.word not in FUNCTION_WORDS:
            by_word.setdefault((phone.word, word_number), []).append(i)
    return {max(members, key=lambda i: level[i]) for members in by_word.values()}


def _prominent(phones, vowels: list[int], level: dict[int, float], loudest: float) -> set[int]:
    stressed = set()
    for position, i in enumerate(vowels):
        loudest = max(loudest, level[i])
        neighbours = [
            level[j]
            for j in (vowels[position - 1] if position > 0 else None, vowels[position + 1] if position + 1 < len(vowels) else None)
            if j is not None and abs(phones[j].start - phones[i].start) <= NEIGHBOUR_S
        ]
        if all(level[i] >= other for other in neighbours) and level[i] >= loudest - PROMINENCE_RANGE_DB:
            stressed.add(i)
    return stressed


class ProminenceStream:
    """`mark_stress` of a growing phone sequence without words, at a cost that does not grow
    with the line: `mark(frozen, recent)` equals `mark_stress(frozen + recent, loudness)` as long
    as `frozen` only grows at its end (its phones never change) and `recent` may change freely.

    A frozen vowel's stress is final once the vowel after it is frozen too, or frozen phones
    reach past NEIGHBOUR_S after it (so no later vowel can be its neighbour); final phones are
    kept as marked and only the rest is marked again, with the last final vowel as context.
    """

    def __init__(self, loudness: LoudnessTrack):
        self._loudness = loudness
        self._done: tuple[Phone, ...] = ()  # marked phones whose stress can no longer change
        self._last_vowel: Phone | None = None  # the last vowel of _done (left neighbour context)
        self._loudest = -np.inf  # loudest vowel level in _done

    def mark(self, frozen: tuple[Phone, ...], recent: tuple[Phone, ...]) -> tuple[Phone, ...]:
        done = self._done
        context = (self._last_vowel,) if self._last_vowel is not None else ()
        open_part = frozen[len(done):] + recent
        marked = mark_stress(context + open_part, self._loudness, self._loudest)[len(context):]
        settled = _final_count(frozen, len(done))
        if settled:
            newly = marked[:settled]
            self._done = done + newly
            self._loudest = max(self._loudest, vowel_peak(newly, self._loudness))
            self._last_vowel = next((p for p in reversed(newly) if p.label in VOWELS), self._last_vowel)
        return done + marked


def _final_count(frozen: tuple[Phone, ...], first: int) -> int:
    """How many phones of frozen[first:] have final stress (see ProminenceStream)."""
    final = 0
    pending_vowel: float | None = None  # start of a frozen vowel still waiting for its right neighbour
    for offset, phone in enumerate(frozen[first:]):
        if pending_vowel is not None and (phone.label in VOWELS or phone.start > pending_vowel + NEIGHBOUR_S):
            pending_vowel = None
        if pending_vowel is None:
            final = offset  # everything before this phone is final
        if phone.label in VOWELS:
            pending_vowel = phone.start
    if pending_vowel is None:
        final = len(frozen) - first
    return final
