"""core/audio/features.py: the acoustic rows the motion generator reads, offline and streaming."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import fixture_line
from npcface.core.audio.decode import load_audio
from npcface.core.errors import AudioError
from npcface.core.audio.features import FEATURE_COLUMNS, N_MELS, FeatureStream, compute_features, concat_features, take_many
from npcface.core.types import SAMPLE_RATE

COLUMNS = list(FEATURE_COLUMNS)


def speech(name: str = "line_bilabials") -> np.ndarray:
    return load_audio(fixture_line(name)[0]).samples


def harmonic_tone(f0: float, seconds: float = 0.5, amplitude: float = 0.3) -> np.ndarray:
    """A voiced-like tone: f0 plus decaying harmonics."""
    t = np.arange(int(SAMPLE_RATE * seconds)) / SAMPLE_RATE
    wave = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 8))
    return (amplitude * wave / np.abs(wave).max()).astype(np.float32)


def test_row_count_and_times():
    samples = speech()
    features = compute_features(samples, start_time=2.5)
    assert features.num_frames == -(-len(samples) // 160)
    assert features.start_time == 2.5
    assert features.log_mel.shape == (features.num_frames, N_MELS)
    for name in COLUMNS:
        column = getattr(features, name)
        assert column.dtype == np.float32 and len(column) == features.num_frames
        assert np.isfinite(column).all(), name


@pytest.mark.parametrize("f0", [85.0, 120.0, 220.0, 400.0])
def test_f0_of_a_harmonic_tone(f0):
    features = compute_features(harmonic_tone(f0))
    middle = slice(5, -5)
    assert np.all(features.voicing[middle] > 0.8)
    assert np.median(features.f0_hz[middle]) == pytest.approx(f0, rel=0.02)


def test_noise_and_silence_are_unvoiced():
    rng = np.random.default_rng(0)
    noise = compute_features((0.1 * rng.standard_normal(8000)).astype(np.float32))
    silence = compute_features(np.zeros(8000, np.float32))
    assert np.mean(noise.voicing < 0.5) > 0.9
    assert np.all(silence.voicing == 0) and np.all(silence.f0_hz == 0) and np.all(silence.f1_hz == 0)
    assert np.all(silence.loudness_db == -90.0)


def test_loudness_tracks_level():
    quiet = compute_features(harmonic_tone(150, amplitude=0.05)).loudness_db[10:-10].mean()
    loud = compute_features(harmonic_tone(150, amplitude=0.5)).loudness_db[10:-10].mean()
    assert loud - quiet == pytest.approx(20.0, abs=0.5)


def test_fricatives_have_high_tilt_and_zcr_vowels_low():
    """The fixture's /s/ noise vs its vowels: tilt and ZCR separate them (per DESIGN)."""
    features = compute_features(speech("line_fricatives"))
    audible = features.loudness_db > -45
    voiced = audible & (features.voicing > 0.7)
    unvoiced = audible & (features.voicing < 0.3)
    assert voiced.sum() > 50 and unvoiced.sum() > 10
    assert np.median(features.spectral_tilt[unvoiced]) > np.median(features.spectral_tilt[voiced]) + 10
    assert np.median(features.zero_crossing_rate[unvoiced]) > 2 * np.median(features.zero_crossing_rate[voiced])


def vowel_formants(vowel_phoneme: str) -> tuple[float, float]:
    """Median F1/F2 of a synthetic vowel: a 110 Hz pulse train through three resonators."""
    from scipy.signal import lfilter

    f1, f2 = {"AA": (750.0, 1150.0), "IY": (280.0, 2250.0), "UW": (310.0, 870.0)}[vowel_phoneme]
    pulses = np.zeros(SAMPLE_RATE // 2)
    pulses[:: SAMPLE_RATE // 110] = 1.0
    signal = pulses
    for freq, bandwidth in ((f1, 80.0), (f2, 100.0), (2900.0, 150.0)):
        radius = np.exp(-np.pi * bandwidth / SAMPLE_RATE)
        theta = 2 * np.pi * freq / SAMPLE_RATE
        signal = lfilter([1.0], [1.0, -2 * radius * np.cos(theta), radius**2], signal)
    signal = (0.3 * signal / np.abs(signal).max()).astype(np.float32)
    features = compute_features(signal)
    return float(np.median(features.f1_hz[10:-10])), float(np.median(features.f2_hz[10:-10]))


@pytest.mark.parametrize("vowel,f1,f2", [("AA", 750, 1150), ("IY", 280, 2250), ("UW", 310, 870)])
def test_lpc_formants_of_synthetic_vowels(vowel, f1, f2):
    got_f1, got_f2 = vowel_formants(vowel)
    # LPC pulls a low F1 toward the nearest harmonic of the 110 Hz source: about +15% at 280 Hz
    assert got_f1 == pytest.approx(f1, rel=0.18)
    assert got_f2 == pytest.approx(f2, rel=0.08)


def test_open_vowels_have_higher_f1_than_close_ones_in_speech():
    """"Ah, father saw a large calm heart" (open) vs "Who knew, you" (close): F1 follows the jaw."""
    features = compute_features(speech("line_vowels"))
    voiced = features.voicing > 0.7
    t = features.start_time + np.arange(features.num_frames) * 0.01
    open_part = voiced & (t < 2.6)
    close_part = voiced & (t > 3.4) & (t < 4.4)
    assert open_part.sum() > 40 and close_part.sum() > 15
    assert np.median(features.f1_hz[open_part]) > np.median(features.f1_hz[close_part]) + 150


def stream_in_chunks(samples: np.ndarray, sizes: list[int], start_time: float = 0.0):
    stream = FeatureStream(start_time)
    parts, position, index = [], 0, 0
    while position < len(samples):
        size = sizes[index % len(sizes)]
        index += 1
        block = stream.push(samples[position : position + size])
        position += size
        if block is not None:
            assert block.start_time == pytest.approx(start_time + sum(p.num_frames for p in parts) * 0.01)
            parts.append(block)
    tail = stream.flush()
    if tail is not None:
        parts.append(tail)
    return concat_features(parts)


def assert_same_rows(a, b):
    assert a.num_frames == b.num_frames
    assert a.start_time == pytest.approx(b.start_time)
    for name in COLUMNS:
        assert np.allclose(getattr(a, name), getattr(b, name), atol=1e-3, rtol=1e-4), name


def test_stream_equals_offline_on_speech_with_random_chunks():
    samples = speech("line_greeting")
    offline = compute_features(samples, start_time=1.0)
    rng = np.random.default_rng(7)
    streamed = stream_in_chunks(samples, [int(n) for n in rng.integers(1, 5000, size=200)], start_time=1.0)
    assert_same_rows(streamed, offline)


@settings(max_examples=15, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=3000), min_size=1, max_size=30), st.integers(321, 9000))
def test_stream_equals_offline_for_any_chunking(sizes, length):
    samples = speech()[4000 : 4000 + length]
    assert_same_rows(stream_in_chunks(samples, sizes), compute_features(samples))


def test_stream_latency_is_bounded():
    """A row is out at most 25 ms after its 10 ms hop begins (40 ms window centred on the hop)."""
    stream = FeatureStream()
    assert stream.push(np.zeros(399, np.float32)) is None
    first = stream.push(np.zeros(1, np.float32))
    assert first is not None and first.num_frames == 1
    block = stream.push(np.zeros(160 * 10, np.float32))
    assert block.num_frames == 10 and block.start_time == pytest.approx(0.01)


def test_bad_samples():
    with pytest.raises(AudioError, match=r"shape \(n,\)"):
        compute_features(np.zeros((100, 2), np.float32))
    with pytest.raises(AudioError, match="float samples"):
        compute_features(np.zeros(1000, np.int16))
    broken = np.zeros(1000, np.float32)
    broken[10] = np.nan
    with pytest.raises(AudioError, match="sample 10 is NaN"):
        compute_features(broken)
    stream = FeatureStream()
    stream.flush()
    with pytest.raises(AudioError, match="already flushed"):
        stream.push(np.zeros(10, np.float32))


def test_empty_input_gives_no_rows():
    assert compute_features(np.zeros(0, np.float32)).num_frames == 0


@pytest.mark.parametrize("count", [0, 1, 57, 200])
def test_split_features_gives_the_rows_before_and_after_with_their_start_times(count):
    from npcface.core.audio.features import slice_features, split_features
    from npcface.core.types import FEATURE_HOP_S

    block = compute_features(speech()[: SAMPLE_RATE * 2], start_time=0.37)
    head, rest = split_features(block, count)
    assert (head.num_frames, rest.num_frames) == (min(count, block.num_frames), max(block.num_frames - count, 0))
    for name in COLUMNS:
        np.testing.assert_array_equal(np.concatenate([getattr(head, name), getattr(rest, name)]), getattr(block, name))
    assert head.start_time == 0.37 and rest.start_time == 0.37 + count * FEATURE_HOP_S
    assert slice_features(block, count).start_time == rest.start_time
    timed = split_features(block, count, rest_start=count * FEATURE_HOP_S + 1.0)[1]  # as a stream times its rows
    assert timed.start_time == count * FEATURE_HOP_S + 1.0


def test_mel_filterbank_equals_torchaudios_without_loading_torch():
    """The log-mel rows use the same bank as torchaudio (Slaney scale and norm), computed in numpy
    so that animating and rendering never pay torch's start-up."""
    import subprocess
    import sys

    import torchaudio

    from npcface.core.audio.features import mel_filterbank

    for n_freqs, f_min, f_max, n_mels, rate in ((257, 60.0, 7600.0, 40, 16000), (513, 0.0, 8000.0, 80, 22050)):
        theirs = torchaudio.functional.melscale_fbanks(n_freqs, f_min=f_min, f_max=f_max, n_mels=n_mels,
                                                       sample_rate=rate, norm="slaney", mel_scale="slaney").numpy()
        ours = mel_filterbank(n_freqs, f_min, f_max, n_mels, rate)
        assert ours.shape == theirs.shape
        assert np.abs(ours - theirs).max() <= 1e-5 * theirs.max()  # theirs is float32
    loaded = subprocess.run([sys.executable, "-c", "import sys, npcface.core.audio.features, npcface.core.motion.generator; "
                             "print(sorted(m for m in ('torch', 'torchaudio') if m in sys.modules))"],
                            capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


def test_feature_stream_names_the_first_bad_sample_and_takes_huge_finite_ones():
    """The finiteness check sums a float32 chunk: NaN and inf still fail with the first bad
    sample's index (float32 and float64 alike); finite samples whose sum overflows still pass."""
    from npcface.core.audio.features import FeatureStream

    for dtype in (np.float32, np.float64):
        for bad in (np.nan, np.inf, -np.inf):
            chunk = np.zeros(320, dtype=dtype)
            chunk[[17, 200]] = bad
            with pytest.raises(AudioError, match="^audio sample 17 is NaN or infinite$"):
                FeatureStream().append(chunk)
    huge = np.full(320, np.finfo(np.float64).max / 2)
    stream = FeatureStream()
    stream.append(huge)  # their sum would overflow; every sample is finite
    assert stream.rows_complete() == 0 and stream._received == 320


def test_rows_without_formants_are_the_same_rows_with_f1_f2_zero():
    """A reader that ignores formants (the learned mouth, Config.formants) skips their LPC
    root-finding: every other column is the same number, F1/F2 are 0, streamed or whole, and
    batched with streams that do read them each gets what it gets alone."""
    samples = load_audio(fixture_line("line_greeting")[0]).samples
    full = compute_features(samples)
    bare = compute_features(samples, formants=False)
    assert (full.f1_hz > 0).mean() > 0.2  # speech: F1 found on many rows
    assert not bare.f1_hz.any() and not bare.f2_hz.any()
    for name in FEATURE_COLUMNS:
        if name not in ("f1_hz", "f2_hz"):
            assert np.array_equal(getattr(full, name), getattr(bare, name)), name
    streams = [FeatureStream(formants=k % 2 == 0) for k in range(4)]
    parts: list[list] = [[] for _ in streams]
    for start in range(0, len(samples), 1111):
        for k, stream in enumerate(streams):
            stream.append(samples[start:start + 1111])
        for k, rows in enumerate(take_many(streams)):
            parts[k] += [rows] if rows is not None else []
    for k, stream in enumerate(streams):
        rows = concat_features(parts[k] + [stream.flush()])
        expected = full if k % 2 == 0 else bare
        for name in FEATURE_COLUMNS:
            assert np.array_equal(getattr(rows, name), getattr(expected, name)), (k, name)
