"""core/phonetics*.py: alignment, recognition and the acoustic fallback on the espeak fixtures."""
from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import FIXTURES, fixture_line
from npcface.core.audio.decode import audio_from_pcm, load_audio
from npcface.core.errors import AudioError, ControlError, TextError
from npcface.core.audio.features import compute_features
from npcface.core.phonetics.timeline import PhoneStream, phones_for, warm_up
from npcface.core.phonetics.g2p import guess_pronunciation, words_of
from npcface.core.types import SAMPLE_RATE, Audio

BILABIALS = {"P", "B", "M"}
VOWELS = set("AA AE AH AO AW AY EH ER EY IH IY OW OY UH UW".split())
ARPABET = VOWELS | set("B CH D DH F G HH JH K L M N NG P R S SH T TH V W Y Z ZH SIL".split())
LINES = json.loads((FIXTURES / "lines.json").read_text())


def line(name: str) -> tuple[Audio, str]:
    wav, text = fixture_line(name)
    return load_audio(wav), text


def labels(timeline, skip_silence: bool = True) -> list[str]:
    return [p.label for p in timeline.phones if not (skip_silence and p.label == "SIL")]


def overlaps(a, b, slack: float = 0.03) -> bool:
    return a.start < b.end + slack and a.end > b.start - slack


def assert_covers(timeline, duration: float):
    phones = timeline.phones
    assert {p.label for p in phones} <= ARPABET
    assert phones[0].start == 0.0
    assert phones[-1].end == pytest.approx(duration, abs=1e-6)
    for before, after in zip(phones, phones[1:]):
        assert after.start == pytest.approx(before.end, abs=1e-9)
        assert after.end > after.start
    assert sum(p.end - p.start for p in phones) == pytest.approx(duration, abs=1e-6)


@pytest.fixture(scope="module")
def aligned():
    return {name: phones_for(line(name)[0], text) for name, text in LINES.items()}


# ------------------------------------------------------------------ forced alignment


def test_aligned_bilabial_line_follows_its_pronunciation(aligned):
    timeline = aligned["line_bilabials"]
    assert timeline.source == "aligned" and timeline.missing_words == ()
    sequence = labels(timeline)
    # "Bob maps purple bumps by the pump, maybe before Monday."
    assert sequence[:17] == "B AA B M AE P S P ER P AH L B AH M P S".split()
    assert sequence[17:27] == "B AY DH AH P AH M P M EY".split()
    assert sequence[27] == "B" and sequence[-5:-1] == "M AH N D".split()
    assert sum(label in BILABIALS for label in sequence) == 17
    words = [p.word for p in timeline.phones if p.label != "SIL"]
    assert words[:3] == ["bob"] * 3 and words[-1] == "monday"


def test_aligned_timelines_cover_the_audio(aligned):
    for name, timeline in aligned.items():
        audio, _ = line(name)
        assert_covers(timeline, audio.duration)
        speech = [p for p in timeline.phones if p.label != "SIL"]
        assert speech[-1].end > audio.duration - 0.6  # speech runs to the end of the line


def test_aligned_bilabials_sit_on_energy_dips(aligned):
    """Each aligned P/B/M must contain a loudness dip of >= 10 dB below the 100 ms around it
    (the lips are shut, so the sound drops). Measured: 28 of 29 on the four fixtures."""
    hits = total = 0
    for name, timeline in aligned.items():
        loudness = compute_features(line(name)[0].samples).loudness_db
        for phone in timeline.phones:
            if phone.label not in BILABIALS:
                continue
            first, last = int(phone.start * 100), max(int(round(phone.end * 100)), int(phone.start * 100) + 1)
            inside = loudness[first:last].min()
            around = max(loudness[max(0, first - 10) : first + 1].max(), loudness[last : last + 10].max())
            total += 1
            hits += around - inside >= 10
    assert total == 29
    assert hits / total >= 0.9


def test_alignment_follows_leading_silence():
    """Shifting the audio by 0.5 s of silence shifts every phone by 0.5 s (+- 30 ms)."""
    audio, text = line("line_bilabials")
    padded = audio_from_pcm(np.concatenate([np.zeros(8000, np.float32), audio.samples]), SAMPLE_RATE)
    plain, shifted = phones_for(audio, text), phones_for(padded, text)
    assert shifted.phones[0].label == "SIL" and shifted.phones[0].end == pytest.approx(0.5, abs=0.05)
    first_b = next(p for p in shifted.phones if p.label == "B")
    assert first_b.start == pytest.approx(0.5, abs=0.05)
    starts = [p.start for p in plain.phones if p.label != "SIL"][1:]
    shifted_starts = [p.start for p in shifted.phones if p.label != "SIL"][1:]
    assert len(starts) == len(shifted_starts)
    assert np.median(np.abs(np.array(shifted_starts) - 0.5 - np.array(starts))) <= 0.03


def test_open_vowels_are_where_the_jaw_line_says(aligned):
    timeline = aligned["line_vowels"]
    sequence = labels(timeline)
    assert sequence[0] == "AA" and sequence.count("AA") >= 5  # ah, father, large, calm, heart, far
    assert {"UW", "OW"} <= set(sequence)  # who, knew, you, owe


# which vowel of each multi-syllable fixture word carries lexical stress (0 = first)
LEXICAL_STRESS = {
    "stranger": 0, "baker": 0, "about": 1, "beware": 1, "midnight": 0, "purple": 0, "maybe": 0,
    "before": 1, "monday": 0, "father": 0, "vivid": 0, "foxes": 0, "ferry": 0, "seven": 0,
    "very": 0, "heavy": 0, "violins": 2,
}


def test_aligned_stress_falls_on_the_stressed_syllable_mostly(aligned):
    """Loudest vowel of each content word vs the dictionary's stress: measured 14 of 17."""
    right = total = 0
    for timeline in aligned.values():
        stresses: dict[str, list[int]] = {}
        for phone in timeline.phones:
            if phone.label in VOWELS:
                stresses.setdefault(phone.word, []).append(phone.stress)
                assert phone.stress in (0, 1)
            else:
                assert phone.stress == 0
        assert set(stresses.get("the", [0])) == {0}  # function words stay unstressed
        for word, marks in stresses.items():
            if word in LEXICAL_STRESS:
                total += 1
                right += marks.count(1) == 1 and marks.index(1) == LEXICAL_STRESS[word]
    assert total == len(LEXICAL_STRESS)
    assert right / total >= 0.7


def test_recognized_and_acoustic_phones_mark_prominent_vowels():
    audio, _ = line("line_greeting")
    for timeline in (phones_for(audio), phones_for(audio, language="it")):
        vowels = [p for p in timeline.phones if p.label in VOWELS]
        stressed = [p for p in vowels if p.stress == 1]
        assert 0.15 * len(vowels) <= len(stressed) <= 0.7 * len(vowels)


def test_words_missing_from_the_dictionary_are_guessed_and_listed():
    audio, text = line("line_names")  # "Zorbulax and Quillindra met Brimwick by the moat."
    timeline = phones_for(audio, text)
    assert timeline.source == "aligned"
    assert timeline.missing_words == ("zorbulax", "quillindra", "brimwick")
    assert [p.label for p in timeline.phones if p.word == "quillindra"][:3] == ["K", "W", "IH"]
    assert [p.label for p in timeline.phones if p.word == "brimwick"] == "B R IH M W IH K".split()
    assert [p.label for p in timeline.phones if p.word == "moat"] == ["M", "OW", "T"]
    # the guessed bilabials land on closures too
    loudness = compute_features(audio.samples).loudness_db
    for phone in timeline.phones:
        if phone.label in BILABIALS and phone.word in timeline.missing_words:
            first, last = int(phone.start * 100), max(int(round(phone.end * 100)), int(phone.start * 100) + 1)
            around = max(loudness[max(0, first - 10) : first + 1].max(), loudness[last : last + 10].max())
            assert around - loudness[first:last].min() >= 6, phone


def test_names_that_are_not_in_the_audio_make_it_a_mismatch():
    """The same invented names read against "Bob maps purple bumps..." do not fit: recognition."""
    audio, _ = line("line_bilabials")
    timeline = phones_for(audio, "Zorbulax and Quillindra met Brimwick by the moat.")
    assert timeline.source == "recognized"
    assert timeline.missing_words == ("zorbulax", "quillindra", "brimwick")


def test_letter_to_sound_rules():
    assert guess_pronunciation("zorbulax") == ["Z", "AO", "R", "B", "AH", "L", "AE", "K", "S"]
    assert guess_pronunciation("drake") == ["D", "R", "EY", "K"]
    assert guess_pronunciation("mirabel")[0] == "M"
    assert guess_pronunciation("thimble")[-2:] == ["AH", "L"]
    with pytest.raises(TextError, match="no letters"):
        guess_pronunciation("'")


def test_text_normalisation():
    assert words_of("Well, met 42 times!  Café, don\u2019t") == ["well", "met", "forty", "two", "times", "cafe", "don't"]
    assert words_of("...?!") == []
    with pytest.raises(TextError, match="must be a string"):
        words_of(b"bytes")  # type: ignore[arg-type]
    with pytest.raises(TextError, match="too long"):
        words_of("la " * 3000)


def test_text_that_does_not_match_the_audio_falls_back_to_recognition():
    audio, _ = line("line_fricatives")
    timeline = phones_for(audio, LINES["line_greeting"])
    assert timeline.source == "recognized"
    assert_covers(timeline, audio.duration)
    assert timeline.phones == phones_for(audio).phones  # exactly what recognition gives


def test_text_without_words_is_recognition():
    audio, _ = line("line_vowels")
    assert phones_for(audio, "...").source == "recognized"
    assert phones_for(audio, "").source == "recognized"
    chinese = phones_for(audio, "你好世界")  # no Latin letters to pronounce in en-us
    assert chinese.source == "recognized" and chinese.missing_words == ()


def test_far_more_text_than_audio_falls_back_to_recognition():
    audio, _ = line("line_greeting")
    half_second = audio_from_pcm(audio.samples[:8000], SAMPLE_RATE)
    timeline = phones_for(half_second, LINES["line_greeting"])
    assert timeline.source == "recognized"
    assert_covers(timeline, 0.5)


# ------------------------------------------------------------------ recognition without text


def test_recognition_finds_most_bilabial_closures(aligned):
    """Measured: 19 of the 29 aligned P/B/M have a recognized P/B/M within 30 ms, 4 extra."""
    hits = total = extra = 0
    for name, reference in aligned.items():
        audio, _ = line(name)
        recognized = phones_for(audio)
        assert recognized.source == "recognized"
        assert_covers(recognized, audio.duration)
        truth = [p for p in reference.phones if p.label in BILABIALS]
        found = [p for p in recognized.phones if p.label in BILABIALS]
        total += len(truth)
        hits += sum(any(overlaps(t, f) for f in found) for t in truth)
        extra += sum(not any(overlaps(f, t) for t in truth) for f in found)
    assert hits / total >= 0.55
    assert extra <= total / 3


# ------------------------------------------------------------------ acoustic fallback


def test_acoustic_fallback_finds_vowel_nuclei_and_closures(aligned):
    """Against the alignment: vowels >= 60 ms must have an acoustic vowel at their middle
    (measured 59 of 59); stop closures need an acoustic closure/murmur nearby (measured 29 of 33),
    and acoustic closures must not sit inside aligned vowels (measured 1 of 66)."""
    vowel_hits = vowels = closure_hits = closures = misplaced = found = 0
    for name, reference in aligned.items():
        audio, _ = line(name)
        acoustic = phones_for(audio, language="de")
        for phone in acoustic.phones:
            if phone.label in {"P", "T", "M", "N"}:
                found += 1
                middle = (phone.start + phone.end) / 2
                misplaced += any(p.label in VOWELS and p.start + 0.02 <= middle < p.end - 0.02 for p in reference.phones)
        assert acoustic.source == "acoustic" and acoustic.language == "de"
        assert_covers(acoustic, audio.duration)
        for phone in reference.phones:
            if phone.label in VOWELS and phone.end - phone.start >= 0.06:
                middle = (phone.start + phone.end) / 2
                vowels += 1
                vowel_hits += any(q.label in VOWELS and q.start <= middle < q.end for q in acoustic.phones)
            if phone.label in {"P", "B", "T", "D", "K", "G"}:
                closures += 1
                closure_hits += any(q.label in {"P", "T", "M", "N"} and overlaps(q, phone) for q in acoustic.phones)
    assert vowel_hits / vowels >= 0.9
    assert closure_hits / closures >= 0.75
    assert misplaced <= 0.05 * found


def test_acoustic_vowel_classes_follow_formants():
    """Open "father"/"calm" region gets open vowels, "who knew you" gets rounded ones."""
    audio, _ = line("line_vowels")
    acoustic = phones_for(audio, language="fr")

    def share(start, end, wanted):
        inside = [p for p in acoustic.phones if p.start < end and p.end > start and p.label in VOWELS]
        weight = sum(min(p.end, end) - max(p.start, start) for p in inside)
        return sum(min(p.end, end) - max(p.start, start) for p in inside if p.label in wanted) / weight

    assert share(0.0, 2.6, {"AA", "AO", "AE", "AH"}) > 0.6
    assert share(3.5, 4.4, {"UW", "OW", "IY", "IH"}) > 0.5


def test_singing_uses_the_acoustic_fallback():
    audio, text = line("line_vowels")
    timeline = phones_for(audio, text, language="singing")
    assert timeline.source == "acoustic" and timeline.language == "singing"


def test_silence_is_all_sil():
    silent = audio_from_pcm(np.zeros(16000, np.float32), SAMPLE_RATE)
    for language in ("en-us", "ja"):
        timeline = phones_for(silent, language=language)
        assert [p.label for p in timeline.phones] == ["SIL"]
        assert_covers(timeline, 1.0)


# ------------------------------------------------------------------ streaming


def stream_line(audio: Audio, text: str | None, language: str, sizes: list[int]):
    stream = PhoneStream(text, language)
    snapshots = []
    position, index = 0, 0
    while position < len(audio.samples):
        size = sizes[index % len(sizes)]
        stream.push(audio.samples[position : position + size])
        position += size
        index += 1
        snapshots.append((position / SAMPLE_RATE, stream.phones()))
        assert {p.label for p in snapshots[-1][1]} <= ARPABET  # no decoder markers like (NULL)
    return stream.finish(), snapshots


@pytest.mark.parametrize("text,language", [(LINES["line_greeting"], "en-us"), (None, "en-us"), (None, "ko")])
def test_stream_final_timeline_equals_offline(text, language):
    audio, _ = line("line_greeting")
    offline = phones_for(audio, text, language)
    rng = np.random.default_rng(3)
    final, _ = stream_line(audio, text, language, [int(n) for n in rng.integers(1, 4000, size=100)])
    assert final.source == offline.source
    assert [(p.label, round(p.start, 6), round(p.end, 6)) for p in final.phones] == [
        (p.label, round(p.start, 6), round(p.end, 6)) for p in offline.phones
    ]


@pytest.mark.parametrize("text,language", [(LINES["line_bilabials"], "en-us"), (None, "en-us"), (None, "de")])
def test_streamed_phones_settle_quickly(text, language):
    """Mid-stream phones that ended more than 300 ms before the newest audio match the final
    timeline (same label, start within 30 ms) at least 85 % of the time; the newest phones lag
    the pushed audio by at most 150 ms."""
    audio, _ = line("line_bilabials")
    final, snapshots = stream_line(audio, text, language, [1600])  # 100 ms chunks
    settled = agreeing = 0
    for pushed, phones in snapshots:
        assert phones == () or phones[-1].end >= pushed - 0.15
        for phone in phones:
            if phone.end > pushed - 0.3 or phone.label == "SIL":
                continue
            settled += 1
            agreeing += any(q.label == phone.label and abs(q.start - phone.start) <= 0.03 for q in final.phones)
    assert settled > 50
    assert agreeing / settled >= 0.85


@pytest.mark.parametrize("text", [LINES["line_greeting"], None])
def test_cached_streaming_phones_equal_a_full_rebuild(text):
    """phones() keeps settled phones between calls (long lines were quadratic): at every step
    the result must equal building all phones from the decoder's partial result again."""
    audio, _ = line("line_greeting")
    stream = PhoneStream(text, "en-us")
    cached_steps = 0
    for position in range(0, len(audio.samples), 800):
        stream.push(audio.samples[position : position + 800])
        streamed = stream.phones()
        segments = (stream._aligner or stream._recognizer).segments()
        covered = min(segments[-1].end, stream.duration) if segments else 0.0
        assert streamed == stream._build(segments, 0.0, covered, -np.inf)
        cached_steps += stream._settled.count > 0
    assert cached_steps > 50  # the cache was in use for most of the line
    stream.finish()


# ------------------------------------------------------------------ bad input


def test_warm_up_leaves_loaded_decoders_for_the_next_lines():
    from npcface.core.phonetics import sphinx as phonetics_sphinx

    warm_up()
    idle = phonetics_sphinx._POOL._idle
    assert len(idle["align"]) >= 1 and len(idle["recognize"]) >= 1
    loaded = idle["align"][-1]
    PhoneStream(LINES["line_vowels"], "en-us").finish()  # takes the idle decoder and returns it
    assert loaded in idle["align"]


def test_bad_language_codes():
    audio, _ = line("line_vowels")
    for language in ("", "english please", "../etc", 42, "x"):
        with pytest.raises(ControlError, match="language must be a code"):
            phones_for(audio, language=language)  # type: ignore[arg-type]
    assert phones_for(audio, language="EN_us").source == "recognized"


def test_bad_stream_use():
    stream = PhoneStream(None, "en-us")
    with pytest.raises(AudioError, match="NaN"):
        stream.push(np.array([0.0, np.nan], np.float32))
    with pytest.raises(AudioError, match=r"shape \(n,\)"):
        stream.push(np.zeros((10, 2), np.float32))
    stream.push(np.zeros(1600, np.float32))
    timeline = stream.finish()
    assert stream.finish() is timeline
    with pytest.raises(ControlError, match="already finished"):
        stream.push(np.zeros(160, np.float32))
    with pytest.raises(TextError, match="must be a string"):
        PhoneStream(123, "en-us")  # type: ignore[arg-type]


def test_stream_refuses_endless_lines(monkeypatch):
    import npcface.core.phonetics.timeline as phonetics_module

    monkeypatch.setattr(phonetics_module, "MAX_DURATION_S", 1.0)  # the real limit is 600 s
    stream = PhoneStream(None, "de")
    stream.push(np.zeros(16000, np.float32))
    with pytest.raises(AudioError, match="line too long"):
        stream.push(np.zeros(160, np.float32))
