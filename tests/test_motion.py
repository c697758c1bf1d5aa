"""The whole motion pipeline on the committed espeak-ng fixtures: real decoding, real pocketsphinx
alignment / recognition, real features. What users notice: lips close on P/B/M, open on open
vowels, round on OW/UW, tuck on F/V, rest in silence; blinks; emotion; streaming == offline.

"Full closure" here is measured from the blendshapes with ``lip_gap`` (the jaw's opening not
cancelled by MouthClose, plus lip raising/lowering): <= 0.02 with JawOpen <= 0.12 at some frame
inside the phone.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import fixture_line
from npcface.core.audio.decode import load_audio
from npcface.core.motion.generator import MotionGenerator
from npcface.core.types import Audio, Controls, EmotionEvent, MotionTrack
from npcface.core.motion.visemes import lip_gap

LINES = ("line_greeting", "line_bilabials", "line_vowels", "line_fricatives")
CLOSED_GAP, CLOSED_JAW = 0.02, 0.12


@pytest.fixture(scope="module")
def lines() -> dict[str, tuple[Audio, str, MotionTrack]]:
    out = {}
    for name in LINES:
        wav, text = fixture_line(name)
        audio = load_audio(wav)
        out[name] = (audio, text, MotionGenerator().animate(audio, text=text))
    return out


def inside(track: MotionTrack, phone) -> np.ndarray:
    return (track.times >= phone.start) & (track.times < phone.end)


def phones_of(track: MotionTrack, labels: set[str]):
    return [p for p in track.phones.phones if p.label in labels and inside(track, p).any()]


def closes(track: MotionTrack, phone) -> bool:
    frames = inside(track, phone)
    gap, jaw = lip_gap(track.blendshapes[frames]), track.channel("JawOpen")[frames]
    return bool(((gap <= CLOSED_GAP) & (jaw <= CLOSED_JAW)).any())


def closure_rate(track: MotionTrack) -> tuple[int, int]:
    bilabials = phones_of(track, {"P", "B", "M"})
    return sum(closes(track, p) for p in bilabials), len(bilabials)


def test_aligned_bilabials_close_fully(lines):
    closed = total = 0
    for name, (_, _, track) in lines.items():
        assert track.phones.source == "aligned", name
        c, n = closure_rate(track)
        closed, total = closed + c, total + n
    assert total >= 25  # the fixtures hold plenty of P/B/M
    assert closed / total >= 0.9, f"{closed}/{total} bilabials reached full closure"


def test_open_vowels_open_the_jaw_well_beyond_bilabials(lines):
    vowel_peaks, bilabial_mins = [], []
    for _, _, track in lines.values():
        jaw = track.channel("JawOpen")
        vowel_peaks += [jaw[inside(track, p)].max() for p in phones_of(track, {"AA", "AE", "AO"})]
        bilabial_mins += [jaw[inside(track, p)].min() for p in phones_of(track, {"P", "B", "M"})]
    assert len(vowel_peaks) >= 8
    assert np.median(vowel_peaks) >= 0.3
    assert np.median(vowel_peaks) >= 3 * np.median(bilabial_mins)


def test_silence_relaxes_to_a_closed_neutral_mouth(lines):
    checked = 0
    for _, _, track in lines.values():
        for p in track.phones.phones:
            if p.label == "SIL" and p.end - p.start >= 0.35:
                # the mouth may release for up to 150 ms and anticipate the next sound as long
                core = (track.times >= p.start + 0.15) & (track.times < p.end - 0.15)
                if core.any():
                    checked += 1
                    assert lip_gap(track.blendshapes[core]).max() < 0.03
                    assert track.channel("JawOpen")[core].max() < 0.06
    assert checked >= 3


def test_rounded_vowels_pucker_and_spread_ones_do_not(lines):
    rounded, spread = [], []
    for _, _, track in lines.values():
        pucker = track.channel("MouthPucker")
        rounded += [pucker[inside(track, p)].max() for p in phones_of(track, {"UW", "OW", "W"})]
        spread += [pucker[inside(track, p)].max() for p in phones_of(track, {"IY", "IH", "EH", "AE"})]
    assert len(rounded) >= 4 and len(spread) >= 4
    assert np.median(rounded) >= 0.3
    assert np.median(rounded) >= 3 * np.median(spread)


def test_f_and_v_put_the_lower_lip_to_the_teeth(lines):
    _, _, track = lines["line_fricatives"]
    roll, upper = track.channel("MouthRollLower"), track.channel("MouthUpperUpLeft")
    labiodental = phones_of(track, {"F", "V"})
    vowels = phones_of(track, {"AY", "IH", "AA", "EH", "IY", "AH", "AE"})
    assert len(labiodental) >= 6
    peaks = [roll[inside(track, p)].max() for p in labiodental]
    assert np.mean(np.array(peaks) >= 0.4) >= 0.9
    assert np.median([upper[inside(track, p)].max() for p in labiodental]) >= 0.12
    assert np.median([roll[inside(track, p)].min() for p in vowels]) < 0.15


def test_emotion_change_mid_line_keeps_closures(lines):
    audio, text, neutral = lines["line_bilabials"]
    event_time = 1.5
    happy = MotionGenerator().animate_with_phones(audio, neutral.phones,
                                                  emotions=[EmotionEvent(event_time, "happy", 0.9, ramp=0.3)])
    smile = 0.5 * (happy.channel("MouthSmileLeft") + happy.channel("MouthSmileRight"))
    assert smile[happy.times < event_time].max() < 0.02
    assert smile[happy.times > event_time + 0.3].min() > 0.6
    late = [p for p in phones_of(happy, {"P", "B", "M"}) if p.start > event_time + 0.3]
    assert len(late) >= 5
    assert np.mean([closes(happy, p) for p in late]) >= 0.9
    # the smile changes the face, not the lip sync: jaw curves stay the same
    np.testing.assert_allclose(happy.channel("JawOpen"), neutral.channel("JawOpen"), atol=1e-6)


def test_same_seed_same_track_and_other_seed_same_lips(lines):
    audio, text, track = lines["line_greeting"]
    # the same phones: this is about the generator (the aligner's own determinism is its business)
    again = MotionGenerator().animate_with_phones(audio, track.phones)
    other = MotionGenerator(Controls(seed=99)).animate_with_phones(audio, track.phones)
    np.testing.assert_array_equal(track.blendshapes, again.blendshapes)
    np.testing.assert_array_equal(track.head_rotation, again.head_rotation)
    assert np.abs(track.head_rotation - other.head_rotation).max() > 0.5
    np.testing.assert_array_equal(track.channel("JawOpen"), other.channel("JawOpen"))
    assert [closes(track, p) for p in phones_of(track, {"P", "B", "M"})] == \
        [closes(other, p) for p in phones_of(other, {"P", "B", "M"})]


def test_whole_pipeline_is_deterministic(lines):
    audio, text, track = lines["line_bilabials"]
    again = MotionGenerator().animate(audio, text=text)
    assert again.phones == track.phones
    np.testing.assert_array_equal(again.blendshapes, track.blendshapes)
    np.testing.assert_array_equal(again.gaze, track.gaze)


def test_blinks_at_a_plausible_rate_and_length_over_a_minute(lines):
    gap = np.zeros(int(16000 * 0.8), np.float32)
    parts = []
    while sum(len(p) for p in parts) < 16000 * 60:
        for audio, _, _ in lines.values():
            parts += [audio.samples, gap]
    minute = Audio(np.concatenate(parts), 16000, 1)
    track = MotionGenerator(Controls(language="xx", seed=5)).animate(minute)
    blink = track.channel("EyeBlinkLeft")
    closed = blink > 0.5
    starts = np.nonzero(closed[1:] & ~closed[:-1])[0]
    per_minute = len(starts) / (minute.duration / 60)
    assert 10 <= per_minute <= 25, per_minute
    lengths = [(np.argmax(blink[s + 1:] < 0.05) + 1) / track.fps for s in np.nonzero((blink[1:] > 0.05) & (blink[:-1] <= 0.05))[0]]
    assert 0.06 <= np.median(lengths) <= 0.17
    np.testing.assert_array_equal(track.channel("EyeBlinkLeft"), track.channel("EyeBlinkRight"))
    # more at pauses: the 0.4 s after speech stops are ~16 % of the time here but get more of the blinks
    from scipy.ndimage import maximum_filter1d

    from npcface.core.audio.features import compute_features

    loud = compute_features(minute.samples).loudness_db > -50
    pause_start = ~loud & (maximum_filter1d(loud.astype(float), 41, origin=20) > 0)
    shares = []
    for seed in range(4):
        blink = MotionGenerator(Controls(language="xx", seed=seed)).animate(minute).channel("EyeBlinkLeft")
        starts = np.nonzero((blink[1:] > 0.05) & (blink[:-1] <= 0.05))[0] / track.fps
        shares.append(pause_start[np.minimum((starts * 100).astype(int), len(pause_start) - 1)].mean())
    assert np.mean(shares) >= 1.5 * pause_start.mean(), (shares, pause_start.mean())


def stream_line(audio: Audio, text: str | None, rng: np.random.Generator, controls: Controls = Controls()) -> list:
    stream = MotionGenerator(controls).stream(text)
    frames, pos = [], 0
    while pos < len(audio.samples):
        size = int(rng.integers(160, 4800))  # 10 ms .. 300 ms chunks
        frames += stream.push_audio(audio.samples[pos:pos + size])
        pos += size
    return frames + stream.finish()


@pytest.mark.parametrize("with_text", [True, False])
def test_streaming_agrees_with_offline(lines, with_text):
    """Streaming only has the phones PhoneStream found within the lookahead; offline has the
    phones of the whole line (forced alignment with text). Measured here (random chunks):
    with text JawOpen r 0.87-0.99 per line, mean |diff| <= 0.02, 26/29 bilabials close (offline
    29/29); without text r >= 0.99. Stated agreement: r >= 0.8 per line and >= 0.9 on average,
    mean |JawOpen diff| <= 0.03, >= 85 % of the bilabials close; head and gaze identical."""
    rng = np.random.default_rng(1)
    rs, closed, total = [], 0, 0
    for name, (audio, text, aligned) in lines.items():
        offline = aligned if with_text else MotionGenerator().animate(audio)
        frames = stream_line(audio, text if with_text else None, rng)
        streamed = MotionTrack.from_frames(frames, offline.fps, phones=offline.phones)
        assert len(streamed) == len(offline)
        jaw_s, jaw_o = streamed.channel("JawOpen"), offline.channel("JawOpen")
        rs.append(np.corrcoef(jaw_s, jaw_o)[0, 1])
        assert rs[-1] >= 0.8, name
        assert np.abs(jaw_s - jaw_o).mean() <= 0.03, name
        np.testing.assert_allclose(streamed.head_rotation, offline.head_rotation, atol=1e-9)
        np.testing.assert_allclose(streamed.gaze, offline.gaze, atol=1e-9)
        c, n = closure_rate(streamed)  # judged against the offline phones
        closed, total = closed + c, total + n
    assert np.mean(rs) >= (0.9 if with_text else 0.97)
    assert closed / total >= 0.85, f"{closed}/{total}"


def test_other_languages_and_no_text_still_move_the_mouth(lines):
    audio, _, aligned = lines["line_vowels"]
    for language in ("de", "en-us"):
        track = MotionGenerator(Controls(language=language)).animate(audio)
        assert track.phones.source == ("acoustic" if language == "de" else "recognized")
        jaw = track.channel("JawOpen")
        assert np.corrcoef(jaw, aligned.channel("JawOpen"))[0, 1] >= 0.6, language
        assert jaw.max() >= 0.3 and np.percentile(jaw, 10) < 0.05


def test_library_bad_inputs_get_specific_errors():
    from npcface.core.errors import AudioError, ControlError, TextError

    second = Audio(np.zeros(16000, np.float32), 16000, 1)
    with pytest.raises(AudioError, match="too short for one frame"):
        MotionGenerator().animate(Audio(np.zeros(0, np.float32), 16000, 1))
    assert len(MotionGenerator().animate(Audio(np.zeros(1, np.float32), 16000, 1))) == 1  # one sample: one frame
    with pytest.raises(ControlError, match="language"):
        MotionGenerator(Controls(language="!!")).animate(second)
    with pytest.raises(TextError, match="text must be a string"):
        MotionGenerator().animate(second, text=5)
    with pytest.raises(ControlError, match="seed"):
        MotionGenerator(Controls(seed=1.5))
    with pytest.raises(ControlError, match="ramp"):
        MotionGenerator().animate(second, emotions=[EmotionEvent(0.0, "happy", 1.0, ramp=-1.0)])
    stream = MotionGenerator().stream()
    stream.finish()
    with pytest.raises(AudioError, match="finished"):
        stream.push_audio(np.zeros(10, np.float32))


def test_lips_anticipate_rounding_before_the_vowel_sounds(lines):
    """Coarticulation: the lips are already rounding 40 ms before a rounded vowel starts."""
    ratios = []
    for _, _, track in lines.values():
        phones, pucker = track.phones.phones, track.channel("MouthPucker")
        for before, phone in zip(phones, phones[1:]):
            if phone.label in ("UW", "OW", "W") and before.label not in ("UW", "OW", "W", "SIL"):
                peak = pucker[inside(track, phone)].max()
                ratios.append(np.interp(phone.start - 0.04, track.times, pucker) / peak)
    assert len(ratios) >= 4
    assert np.median(ratios) >= 0.3, ratios


def test_viseme_view_of_generated_tracks_names_the_key_shapes(lines):
    from npcface.core.arkit import OCULUS_VISEMES
    from npcface.core.motion.visemes import visemes_from_blendshapes

    named = {"PP": [], "FF": [], "aa": [], "sil": []}
    expected = {"P": "PP", "B": "PP", "M": "PP", "F": "FF", "V": "FF", "AA": "aa", "AE": "aa", "SIL": "sil"}
    for _, _, track in lines.values():
        top = visemes_from_blendshapes(track.blendshapes).argmax(1)
        for p in track.phones.phones:
            middle = np.argmin(np.abs(track.times - 0.5 * (p.start + p.end)))
            if p.label in expected and p.start <= track.times[middle] < p.end:
                named[expected[p.label]].append(OCULUS_VISEMES[top[middle]] == expected[p.label])
    assert np.mean(named["PP"]) >= 0.9 and np.mean(named["FF"]) >= 0.9
    assert np.mean(named["aa"]) >= 0.6 and np.mean(named["sil"]) >= 0.6


def test_emotion_colours_articulation_but_closures_hold(lines):
    audio, _, neutral = lines["line_bilabials"]
    jaw = {}
    for emotion in ("sad", "angry"):
        track = MotionGenerator().animate_with_phones(audio, neutral.phones, emotions=[EmotionEvent(0.0, emotion, 1.0, 0.0)])
        jaw[emotion] = track.channel("JawOpen")
        c, n = closure_rate(track)
        assert c / n >= 0.9, emotion
    speaking = neutral.channel("JawOpen") > 0.2
    assert jaw["sad"][speaking].mean() < 0.9 * neutral.channel("JawOpen")[speaking].mean() < 0.9 * jaw["angry"][speaking].mean()


def test_head_moves_more_while_talking_and_nods_after_emphasis(lines):
    from npcface.core.audio.features import compute_features
    from npcface.core.motion.cues import compute_cues

    gap = np.zeros(int(16000 * 1.5), np.float32)
    talk = Audio(np.concatenate([x for audio, _, _ in lines.values() for x in (audio.samples, gap)]), 16000, 1)
    cues = compute_cues(compute_features(talk.samples))
    ratios, nods = [], []
    for seed in range(3):
        track = MotionGenerator(Controls(language="xx", seed=seed)).animate(talk)
        speed = np.linalg.norm(np.diff(track.head_rotation, axis=0), axis=1) * track.fps  # degrees / s
        talking = cues.at("activity", track.times[1:]) > 0.5
        silent = cues.at("level", track.times[1:]) < 0.02
        ratios.append(speed[talking].mean() / speed[silent].mean())
        emphasis, chin_down = cues.at("emphasis", track.times), -track.head_rotation[:, 1]
        lag = int(0.2 * track.fps)  # the nod follows the stressed syllable
        nods.append(np.corrcoef(emphasis[:-lag], chin_down[lag:])[0, 1])
    # Real heads' speed follows loudness only weakly (bench/bench_head.py: r(speed, loudness) 0.13
    # over the tuning videos; GRID speakers' heads move 3.5 deg/s before a sentence, 3.8 during it),
    # so the fitted generator's head moves faster while talking, but not much: a constant-motion
    # head gives ~1.0 here, the earlier hand-tuned one 1.4+.
    assert np.mean(ratios) >= 1.1, ratios
    assert np.mean(nods) >= 0.2, nods
