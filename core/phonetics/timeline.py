"""Phones on the audio timeline (`PhoneTimeline`), with text, without, and for any language.

- en-us with text: forced alignment of the text's pronunciation (source "aligned"). Words the
  dictionary lacks get a spelling-based guess and are listed in `missing_words`. If the search
  cannot fit the text to the audio, or the fit is evidently wrong (poor score per frame and
  squeezed phones or speech parked in silence: the text does not match the audio), `finish()`
  falls back to phone recognition on the whole line (source "recognized"); `missing_words`
  still lists the guessed words. While streaming with text, `phones()` are aligned phones.
- en-us without text (or text with no words, e.g. "..."): phone recognition (source "recognized").
- any other language, or "singing": acoustic segmentation (source "acoustic"); text is ignored.

Offline and streaming share one code path (`phones_for` pushes the whole line through a
`PhoneStream`), and pocketsphinx's live mode is chunk-size independent, so the final timeline of
a stream equals the offline one for the same audio.

Every timeline covers [0, duration] without gaps or overlaps (gaps are SIL). Vowels carry
`stress` 1 or 0 from loudness (see phonetics_stress.py; the dictionary has no stress marks).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..audio.decode import MAX_DURATION_S
from ..audio.features import FeatureStream, check_samples16k
from ..errors import AudioError, ControlError
from ..types import FEATURE_HOP_S, SAMPLE_RATE, Audio, AudioFeatures, Phone, PhoneTimeline
from . import sphinx
from .acoustic import AcousticTracker
from .g2p import words_of
from .stress import LoudnessTrack, ProminenceStream, mark_stress, vowel_peak

ENGLISH = {"en", "en-us"}
_LANGUAGE = re.compile(r"^(singing|[a-z]{2,3}(-[a-z0-9]{1,8})*)$")


def normalise_language(language: str) -> str:
    if not isinstance(language, str) or not _LANGUAGE.match(language.strip().lower().replace("_", "-")):
        raise ControlError(f"language must be a code like 'en-us', 'de', 'ja' or 'singing', got {language!r}")
    return language.strip().lower().replace("_", "-")


def warm_up(concurrent_lines: int = 1) -> None:
    """Load pocketsphinx decoders for ``concurrent_lines`` English lines at once now (~0.2 s per
    line, ~56 MB) rather than when lines start, where loading would stall other sessions."""
    sphinx.warm_up(concurrent_lines)


def phones_for(audio: Audio, text: str | None = None, language: str = "en-us") -> PhoneTimeline:
    """The phones of a whole line (see the module notes for which method runs)."""
    stream = PhoneStream(text, language)
    stream.push(audio.samples)
    return stream.finish()


class PhoneStream:
    """Phones of a line whose audio arrives in chunks (16 kHz mono float32, any size).

    `phones()` gives the best phones so far: they cover the audio the search has processed
    (a few frames behind the pushed audio) and the last one or two may still change.
    `finish()` ends the line and returns the final timeline (equal to `phones_for`).

    With `features_from_caller=True` the caller, which computes the same audio's features anyway
    (the motion stream does), hands its `FeatureStream` rows, in order, to `add_features` (at
    least before each `phones()` and, with the flushed rows, before `finish()`), and the
    acoustic fallback computes none of its own.
    """

    def __init__(self, text: str | None = None, language: str = "en-us", features_from_caller: bool = False):
        self.language = normalise_language(language)
        self._features_from_caller = features_from_caller
        self._next_row = 0  # the row the caller's next feature block must start at
        self.words = words_of(text) if text else []
        self.missing_words: tuple[str, ...] = ()
        self._samples = 0
        self._aligner = self._recognizer = None
        self._features: FeatureStream | None = None
        self._acoustic = AcousticTracker()
        self._result: PhoneTimeline | None = None
        self._loudness = LoudnessTrack()  # for vowel stress
        self._settled = _Settled()
        self._prominence = ProminenceStream(self._loudness)
        if self.language not in ENGLISH:
            self.source = "acoustic"
            self._features = None if features_from_caller else FeatureStream()
            return
        self._audio: list[np.ndarray] = []  # kept with text, for the mismatch check and fallback
        if self.words:
            self._aligner, missing = sphinx.start_aligner(self.words)
            self.missing_words = tuple(dict.fromkeys(missing))
            self.source = "aligned"
        else:
            self._recognizer = sphinx.start_recognizer()
            self.source = "recognized"

    @property
    def duration(self) -> float:
        return self._samples / SAMPLE_RATE

    def push(self, samples16k: np.ndarray) -> None:
        if self._result is not None:
            raise ControlError("phone stream already finished; start a new stream for the next line")
        samples = check_samples16k(samples16k).astype(np.float32)
        if (self._samples + len(samples)) / SAMPLE_RATE > MAX_DURATION_S:
            raise AudioError(f"line too long for phones: over {MAX_DURATION_S:.0f} s (split the line)")
        self._samples += len(samples)
        self._loudness.push(samples)
        if self.source == "acoustic":
            if self._features is not None:
                self._add_rows(self._features.push(samples))
            return
        if self._aligner is not None:
            self._audio.append(samples)
            self._aligner.push(samples)
        else:
            self._recognizer.push(samples)

    def add_features(self, features: AudioFeatures | None) -> None:
        """The caller's next feature rows of this line (only with features_from_caller)."""
        if self._result is not None:
            raise ControlError("phone stream already finished; start a new stream for the next line")
        if not self._features_from_caller:
            raise ControlError("this phone stream computes its own features; pass features_from_caller=True to hand it rows")
        if features is None or features.num_frames == 0:
            return
        if abs(features.start_time - self._next_row * FEATURE_HOP_S) > 1e-6:
            raise ControlError(f"feature rows must continue the stream: expected row {self._next_row} "
                               f"at {self._next_row * FEATURE_HOP_S:.2f} s, got rows from {features.start_time:.3f} s")
        self._next_row += features.num_frames
        if self.source == "acoustic":
            self._add_rows(features)

    def _add_rows(self, rows: AudioFeatures | None) -> None:
        if rows is not None and rows.num_frames:
            self._acoustic.add(rows)

    def phones(self) -> tuple[Phone, ...]:
        """Best phones so far (the tail may still be revised)."""
        if self._result is not None:
            return self._result.phones
        if self.source == "acoustic":
            return self._prominence.mark(*self._acoustic.parts())
        return self._live_sphinx_phones()

    def _live_sphinx_phones(self) -> tuple[Phone, ...]:
        """Streaming phones from the decoder's partial result.

        Rebuilding every phone on every call made long lines quadratic, so phones that ended
        SETTLE_S before the newest one (at a word boundary) are kept as built, as long as the
        decoder's segment at the cache's edge stays the same (it rarely revises that far back);
        only the decoder's segments from that edge on are read.
        """
        run = self._aligner or self._recognizer
        cache = self._settled
        segments = run.segments(cache.last.index) if cache.count else run.segments()
        if cache.count and segments and segments[0] == cache.last:
            tail = segments[1:]
        else:
            if cache.count:  # the decoder revised the settled part: rebuild from the start
                cache = self._settled = _Settled()
                segments = run.segments()
            tail = segments
        covered = min(segments[-1].end, self.duration) if segments else 0.0
        cut = _settle_point(tail, covered - SETTLE_S)
        settling = self._raw(tail[:cut], cache.end, tail[cut - 1].end) if cut else ()
        rest_start = max(cache.end, tail[cut - 1].end) if cut else cache.end
        rest = self._raw(tail[cut:], rest_start, covered)
        # stress looks 0.5 s either side: recompute it with the settled neighbours as context
        context = _recent(cache.phones, cache.end - 0.6)
        marked = mark_stress(context + settling + rest, self._loudness, cache.loudest)
        settled_now = marked[len(context) : len(context) + len(settling)]
        if cut:
            cache.phones = _join(cache.phones, settled_now)
            cache.loudest = max(cache.loudest, vowel_peak(settled_now, self._loudness))
            cache.count += cut
            cache.last, cache.end = tail[cut - 1], rest_start
        return _join(cache.phones, marked[len(context) + len(settling) :])

    def _raw(self, segments, start: float, end: float) -> tuple[Phone, ...]:
        """Phones of decoder segments covering [start, end], before stress marks."""
        phones = [
            Phone(segment.label, segment.start, segment.end, word=self.words[segment.word_index] if segment.word_index >= 0 else "")
            for segment in segments
        ]
        return cover(phones, end, max(start, 0.0))

    def _build(self, segments, start: float, end: float, loudest_before: float) -> tuple[Phone, ...]:
        return mark_stress(self._raw(segments, start, end), self._loudness, loudest_before)

    def finish(self) -> PhoneTimeline:
        """End of line: the final timeline over the whole pushed audio."""
        if self._result is not None:
            return self._result
        if self.source == "acoustic":
            if self._features is not None:
                self._add_rows(self._features.flush())
            phones = self._acoustic.final()
            self._result = PhoneTimeline(self._timeline_of_phones(phones), "acoustic", self.language)
            return self._result
        source = "recognized"
        if self._aligner is not None:
            segments, score = self._aligner.finish()
            audio = np.concatenate(self._audio) if self._audio else np.zeros(0, np.float32)
            self._audio = []
            if sphinx.alignment_mismatch(segments, score, audio):
                self._recognizer = sphinx.start_recognizer()
                self._recognizer.push(audio)
                segments, _ = self._recognizer.finish()
            else:
                source = "aligned"
        else:
            segments, _ = self._recognizer.finish()
        self.source = source
        self._result = PhoneTimeline(self._timeline(segments, self.duration), source, self.language, self.missing_words)
        return self._result

    def _timeline(self, segments: list[sphinx.Segment], end: float) -> tuple[Phone, ...]:
        phones = [
            Phone(segment.label, segment.start, segment.end, word=self.words[segment.word_index] if segment.word_index >= 0 else "")
            for segment in segments
        ]
        return self._timeline_of_phones(phones, end)

    def _timeline_of_phones(self, phones, end: float | None = None) -> tuple[Phone, ...]:
        return mark_stress(cover(phones, self.duration if end is None else end), self._loudness)


SETTLE_S = 1.0


@dataclass
class _Settled:
    """Streaming phones already built: `count` decoder segments, ending at `end` seconds."""

    phones: tuple[Phone, ...] = ()
    count: int = 0
    last: sphinx.Segment | None = None
    end: float = 0.0
    loudest: float = -np.inf


def _recent(phones: tuple[Phone, ...], after: float) -> tuple[Phone, ...]:
    """The trailing phones that end after `after` (phones are in time order)."""
    first = len(phones)
    while first > 0 and phones[first - 1].end > after:
        first -= 1
    return phones[first:]


def _settle_point(segments, horizon: float) -> int:
    """How many leading segments end before `horizon` and stop at a word boundary."""
    cut = 0
    for index, segment in enumerate(segments[:-1]):
        if segment.end > horizon:
            break
        following = segments[index + 1]
        if segment.word_index < 0 or following.word_index != segment.word_index:
            cut = index + 1
    return cut


def _join(first: tuple[Phone, ...], second: tuple[Phone, ...]) -> tuple[Phone, ...]:
    if first and second and first[-1].label == "SIL" and second[0].label == "SIL":
        return first[:-1] + (Phone("SIL", first[-1].start, second[0].end),) + second[1:]
    return first + second


def cover(phones, end: float, start: float = 0.0) -> tuple[Phone, ...]:
    """Clip phones to [start, end], fill gaps with SIL and merge neighbouring silences."""
    result: list[Phone] = []
    cursor = start
    for phone in sorted(phones, key=lambda p: p.start):
        start, stop = max(phone.start, cursor), min(phone.end, end)
        if stop - start < 1e-6:
            continue
        if start - cursor > 1e-6:
            result.append(Phone("SIL", cursor, start))
        result.append(Phone(phone.label, start, stop, phone.stress, phone.word))
        cursor = stop
    if end - cursor > 1e-6:
        result.append(Phone("SIL", cursor, end))
    merged: list[Phone] = []
    for phone in result:
        if merged and phone.label == "SIL" and merged[-1].label == "SIL":
            merged[-1] = Phone("SIL", merged[-1].start, phone.end)
        else:
            merged.append(phone)
    return tuple(merged)
