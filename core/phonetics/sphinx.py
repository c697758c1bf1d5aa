"""pocketsphinx (bundled en-us model) as a streaming phone aligner and phone recognizer.

Alignment in one pass: every phone of the expected pronunciation becomes its own dictionary
"word" (named after its phone and position) and the line becomes a JSGF grammar of those words,
with one alternative per dictionary pronunciation of each word. The FSG search then gives phone
segments directly from `seg()`, also mid-utterance (partial results), so the same code serves
offline and streaming. On the espeak fixtures its phone starts agree with pocketsphinx's two-pass
phone alignment (`set_align_text` + `set_alignment`, `bestpath=False`) to a median of 0-1 frames
(10 ms), 90th percentile 2 frames.

Both searches run in "live" mode (incremental cepstral mean normalisation), which is chunk-size
independent: pushing the audio at once or in 20 ms pieces gives identical phones, so streaming
agrees exactly with offline.

Input conditioning: a 0.2 s lead-in of silence, and a fixed, deterministic dither at -70 dBFS
(digital silence starves the recognizer's log features and made alignments squeeze words).
"""
from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..types import SAMPLE_RATE
from .g2p import guess_pronunciation

if TYPE_CHECKING:  # loaded with the first decoder: a broken pocketsphinx fails the lines that need it
    from pocketsphinx import Decoder

FRAME_S = 0.01  # pocketsphinx frames
LEAD_IN_S = 0.2
_LEAD_IN = int(LEAD_IN_S * SAMPLE_RATE)
_DITHER = (np.random.default_rng(20261124).standard_normal(1 << 16) * 32767 * 10 ** (-70 / 20)).astype(np.float32)
_WIDE_BEAM = 1e-200  # synthetic and expressive speech fall out of the default beams during alignment
_RECOGNIZER_LW = 2.0  # phone-LM weight: found the most bilabials with the fewest insertions on the fixtures
_CMN_START = "45,4,-2,0,0,0,0,0,0,0,0,0,0"  # between pocketsphinx's default and the means measured on speech
MAX_VARIANTS = 4
# Text that does not match the audio: the forced path scores badly per frame AND the aligner had
# to squeeze phones to their 3-frame minimum or park loud speech in silence. Measured on the 4
# espeak fixtures and 4 real recordings (with their recognized text as "right" text): right text
# scores -24..-41 per frame, 26..42 % of phones minimal, <= 6 % of loud frames in silence; wrong
# text scores -47..-64, 43..68 % minimal phones.
MISMATCH_SCORE = -44.0
MISMATCH_SHORT_FRACTION = 0.40
MISMATCH_LOUD_SILENCE = 0.25
_FILLERS = {"<s>", "</s>", "<sil>", "SIL", "+NSN+", "+SPN+", "+BREATH+", "+COUGH+", "+UM+", "+UH+", "+NOISE+"}


@dataclass(frozen=True)
class Segment:
    label: str  # ARPAbet phone or "SIL"
    start: float  # seconds on the caller's timeline
    end: float
    word_index: int = -1  # index into the line's words, -1 for recognized phones and silence
    index: int = -1  # position in the decoder's segment list (for reading only the list's tail)


@dataclass(frozen=True)
class _PhoneSlot:
    word_index: int
    variant: int
    label: str


class _DecoderPool:
    """Decoders take ~80 ms to load (holding the GIL) and ~28 MB each; keep idle ones per kind
    for the next lines. A server expecting N lines at once keeps N of each (see warm_up)."""

    def __init__(self):
        self._idle: dict[str, list[Decoder]] = {"align": [], "recognize": []}
        self._lock = threading.Lock()
        self.keep = 4  # idle decoders kept per kind

    def acquire(self, kind: str) -> Decoder:
        from pocketsphinx import Decoder, get_model_path

        with self._lock:
            if self._idle[kind]:
                return self._idle[kind].pop()
        if kind == "align":
            return Decoder(lm=None, loglevel="FATAL", bestpath=False, beam=_WIDE_BEAM, wbeam=_WIDE_BEAM, pbeam=_WIDE_BEAM)
        return Decoder(
            allphone=get_model_path("en-us/en-us-phone.lm.bin"), lm=None, loglevel="FATAL", bestpath=False, lw=_RECOGNIZER_LW
        )

    def release(self, kind: str, decoder: Decoder) -> None:
        with self._lock:
            if len(self._idle[kind]) < self.keep:
                self._idle[kind].append(decoder)


_POOL = _DecoderPool()


def warm_up(concurrent_lines: int = 1) -> None:
    """Have ``concurrent_lines`` decoders of each kind loaded and idle, and keep at least that many."""
    _POOL.keep = max(_POOL.keep, concurrent_lines)
    for kind in ("align", "recognize"):
        decoders = [_POOL.acquire(kind) for _ in range(concurrent_lines)]
        for decoder in decoders:
            _POOL.release(kind, decoder)


class _SphinxRun:
    """One utterance on one pooled decoder: push 16 kHz float audio, read phone segments."""

    def __init__(self, kind: str, decoder: Decoder):
        self.kind = kind
        self.decoder = decoder
        self.slots: dict[str, _PhoneSlot] = {}
        self._pushed = 0  # samples given to the decoder, lead-in included
        self._done = False
        # noise tracking and live CMN carry over between utterances: reset both, so a pooled
        # decoder gives exactly what a fresh one gives
        self.decoder.reinit_feat()
        self.decoder.set_cmn(_CMN_START)
        self.decoder.start_utt()
        self._feed(np.zeros(_LEAD_IN, dtype=np.float32))

    def _feed(self, samples16k: np.ndarray) -> None:
        if len(samples16k) == 0:
            return  # process_raw fails on an empty buffer
        index = (self._pushed + np.arange(len(samples16k))) % len(_DITHER)
        pcm = np.clip(samples16k * 32767.0 + _DITHER[index], -32768, 32767).astype("<i2")
        self.decoder.process_raw(pcm.tobytes(), no_search=False, full_utt=False)
        self._pushed += len(samples16k)

    def push(self, samples16k: np.ndarray) -> None:
        self._feed(samples16k)

    def segments(self, first: int = 0) -> list[Segment]:
        """Best segmentation so far (all of it after `finish`); times exclude the lead-in.

        `first`: skip the decoder's segments before this index (skipping costs far less than
        building them, which matters on long lines read on every push)."""
        found = []
        for index, seg in enumerate(itertools.islice(self.decoder.seg() or (), first, None), start=first):
            if seg.word == "(NULL)":  # the grammar's null transitions, no audio
                continue
            slot = self.slots.get(seg.word)
            label = slot.label if slot else ("SIL" if seg.word in _FILLERS or seg.word.startswith("+") else seg.word)
            start = seg.start_frame * FRAME_S - LEAD_IN_S
            end = (seg.end_frame + 1) * FRAME_S - LEAD_IN_S
            found.append(Segment(label, start, end, slot.word_index if slot else -1, index))
        return found

    def finish(self) -> tuple[list[Segment], float | None]:
        """End the utterance: (segments, score per frame), or ([], None) if the search failed."""
        if not self._done:
            self._done = True
            self.decoder.end_utt()
        hypothesis = self.decoder.hyp()
        frames = max(self.decoder.n_frames(), 1)
        segments = self.segments() if hypothesis is not None else []
        score = self.decoder.get_logmath().log(hypothesis.best_score) / frames if hypothesis is not None else None
        _POOL.release(self.kind, self.decoder)
        return segments, score


def alignment_mismatch(segments: list[Segment], score: float | None, samples16k: np.ndarray) -> bool:
    """True if the aligned text evidently is not what the audio says (see MISMATCH_*)."""
    if not segments or score is None:
        return True
    phones = [s for s in segments if s.label != "SIL"]
    if not phones:
        return True
    short = np.mean([s.end - s.start <= 3 * FRAME_S + 1e-3 for s in phones])
    hop = int(FRAME_S * SAMPLE_RATE)
    frames = len(samples16k) // hop
    if frames == 0:
        return False
    power = (samples16k[: frames * hop].astype(np.float64).reshape(frames, hop) ** 2).mean(axis=1)
    level = 10 * np.log10(power + 1e-12)
    loud = level > np.percentile(level, 95) - 20
    silent = np.ones(frames, dtype=bool)
    for segment in phones:
        silent[max(0, int(round(segment.start / FRAME_S))) : max(0, int(round(segment.end / FRAME_S)))] = False
    loud_in_silence = (loud & silent).sum() / max(loud.sum(), 1)
    return score < MISMATCH_SCORE and (short > MISMATCH_SHORT_FRACTION or loud_in_silence > MISMATCH_LOUD_SILENCE)


def start_recognizer() -> _SphinxRun:
    return _SphinxRun("recognize", _POOL.acquire("recognize"))


def pronunciations(decoder: Decoder, word: str) -> list[list[str]]:
    """Dictionary pronunciations of a word (first MAX_VARIANTS), or [] if it is not there."""
    found = []
    for variant in range(1, MAX_VARIANTS + 1):
        phones = decoder.lookup_word(word if variant == 1 else f"{word}({variant})")
        if not phones:
            break
        found.append(phones.split())
    return found


def start_aligner(words: list[str]) -> tuple[_SphinxRun, list[str]]:
    """An aligner for this line's words, and the words it had to guess (not in the dictionary)."""
    decoder = _POOL.acquire("align")
    missing: list[str] = []
    slots: dict[str, _PhoneSlot] = {}
    rules = []
    new_words: list[tuple[str, str]] = []
    position = 0
    for word_index, word in enumerate(words):
        variants = pronunciations(decoder, word)
        if not variants:
            missing.append(word)
            variants = [guess_pronunciation(word)]
        alternatives = []
        for variant, phones in enumerate(variants):
            names = []
            for phone in phones:
                # names depend on (phone, position) only, so the pooled dictionary stays bounded
                name = f"npc_{phone.lower()}_{position}"
                position += 1
                if decoder.lookup_word(name) is None:
                    new_words.append((name, phone))
                slots[name] = _PhoneSlot(word_index, variant, phone)
                names.append(name)
            alternatives.append(" ".join(names))
        rules.append("( " + " | ".join(alternatives) + " )")
    for count, (name, phone) in enumerate(new_words, start=1):
        decoder.add_word(name, phone, count == len(new_words))  # rebuild the search once, at the end
    grammar = "#JSGF V1.0;\ngrammar npcface_line;\npublic <line> = " + " ".join(rules) + " ;\n"
    decoder.add_jsgf_string("npcface_line", grammar)
    decoder.activate_search("npcface_line")
    run = _SphinxRun("align", decoder)
    run.slots = slots
    return run, missing
