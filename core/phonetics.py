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

import numpy as np

from . import phonetics_sphinx as sphinx
from .audio import MAX_DURATION_S
from .errors import AudioError, ControlError
from .features import FeatureStream, check_samples16k
from .phonetics_acoustic import AcousticTracker
from .phonetics_g2p import words_of
from .phonetics_stress import LoudnessTrack, mark_stress
from .types import SAMPLE_RATE, Audio, Phone, PhoneTimeline

ENGLISH = {"en", "en-us"}
_LANGUAGE = re.compile(r"^(singing|[a-z]{2,3}(-[a-z0-9]{1,8})*)$")


def normalise_language(language: str) -> str:
    if not isinstance(language, str) or not _LANGUAGE.match(language.strip().lower().replace("_", "-")):
        raise ControlError(f"language must be a code like 'en-us', 'de', 'ja' or 'singing', got {language!r}")
    return language.strip().lower().replace("_", "-")


def warm_up() -> None:
    """Load the pocketsphinx models now (~0.2 s) rather than on the first English line."""
    sphinx.warm_up()


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
    """

    def __init__(self, text: str | None = None, language: str = "en-us"):
        self.language = normalise_language(language)
        self.words = words_of(text) if text else []
        self.missing_words: tuple[str, ...] = ()
        self._samples = 0
        self._aligner = self._recognizer = None
        self._features: FeatureStream | None = None
        self._acoustic = AcousticTracker()
        self._result: PhoneTimeline | None = None
        self._loudness = LoudnessTrack()  # for vowel stress
        if self.language not in ENGLISH:
            self.source = "acoustic"
            self._features = FeatureStream()
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
        if self._features is not None:
            block = self._features.push(samples)
            if block is not None:
                self._acoustic.add(block)
            return
        if self._aligner is not None:
            self._audio.append(samples)
            self._aligner.push(samples)
        else:
            self._recognizer.push(samples)

    def phones(self) -> tuple[Phone, ...]:
        """Best phones so far (the tail may still be revised)."""
        if self._result is not None:
            return self._result.phones
        if self._features is not None:
            return mark_stress(self._acoustic.phones(), self._loudness)
        run = self._aligner or self._recognizer
        segments = run.segments()
        covered = min(segments[-1].end, self.duration) if segments else 0.0
        return self._timeline(segments, covered)

    def finish(self) -> PhoneTimeline:
        """End of line: the final timeline over the whole pushed audio."""
        if self._result is not None:
            return self._result
        if self._features is not None:
            tail = self._features.flush()
            if tail is not None:
                self._acoustic.add(tail)
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


def cover(phones, end: float) -> tuple[Phone, ...]:
    """Clip phones to [0, end], fill gaps with SIL and merge neighbouring silences."""
    result: list[Phone] = []
    cursor = 0.0
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
