"""Where a motion stream's phones come from: the whole line's (``FixedPhones``), or the ones a
phone stream finds as the audio arrives (``LivePhones``), and ``DueFrames``: the frames a push
made due, with the live phones of that moment, for the next batched step to compute.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..types import AudioFeatures, Phone, PhoneTimeline

PhonesNow = tuple[tuple[Phone, ...], str]  # (phones, source): what ``current()`` gives


class FixedPhones:
    """Offline: the whole line's phones are known before the first frame."""

    live = False
    reads_rows = False  # the phones are known: no feature row is read for them

    def __init__(self, timeline: PhoneTimeline):
        self.timeline = timeline

    def push(self, samples: np.ndarray) -> None:
        pass

    def add_rows(self, rows: AudioFeatures | None) -> None:
        pass

    def current(self) -> PhonesNow:
        return self.timeline.phones, self.timeline.source

    def finish(self) -> PhoneTimeline:
        return self.timeline


class LivePhones:
    """Streaming: whatever the phone stream has found so far (its tail may still change).

    ``pinned``: while a batched step computes frames that a past push made due, ``current()``
    gives the phones of that push (DueFrames.phones), not the ones found since."""

    live = True

    def __init__(self, text: str | None, language: str):
        from ..phonetics.timeline import PhoneStream  # pocketsphinx loads only when phones are needed

        self._stream = PhoneStream(text, language=language, features_from_caller=True)  # the acoustic fallback reuses our rows
        self._source = self._stream.source  # what it finds as the line goes: aligned, recognized or acoustic
        self._final: PhoneTimeline | None = None
        self.pinned: PhonesNow | None = None

    @property
    def reads_rows(self) -> bool:
        """The acoustic fallback finds phones in our feature rows: they must be in at each push
        that makes frames due, before its phones are read."""
        return self._source == "acoustic"

    def push(self, samples: np.ndarray) -> None:
        self._stream.push(samples)

    def add_rows(self, rows: AudioFeatures | None) -> None:
        self._stream.add_features(rows)

    def current(self) -> PhonesNow:
        if self.pinned is not None:
            return self.pinned
        if self._final is not None:
            return self._final.phones, self._final.source
        return tuple(self._stream.phones()), self._source

    def finish(self) -> PhoneTimeline:
        if self._final is None:
            self._final = self._stream.finish()
        return self._final


@dataclass(frozen=True)
class DueFrames:
    """Frames up to ``last_index`` that the audio so far releases, computed at the next step
    from feature rows up to ``rows_until`` (those complete when they came due) and, for live
    phones, ``phones``: the phones found at that push (None: the stream's fixed phones)."""

    last_index: int
    rows_until: int
    phones: PhonesNow | None = None
