"""core/audio/decode.py: decoding real files of every kind, resampling, bad input, PCM streaming."""
from __future__ import annotations

import io

import av
import numpy as np
import pytest
import soundfile
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import FIXTURES, fixture_line
from npcface.core.audio.decode import (
    MAX_RATE,
    PcmStreamConverter,
    audio_from_pcm,
    decode_audio_bytes,
    load_audio,
    resample_to_16k,
)
from npcface.core.errors import AudioError, NpcfaceError
from npcface.core.types import SAMPLE_RATE


def tone(rate: int, seconds: float = 0.5, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    mono = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    return mono if channels == 1 else np.stack([mono] * channels, axis=1)


def dominant_frequency(samples: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.fft.rfftfreq(len(samples), 1 / SAMPLE_RATE)[np.argmax(spectrum)])


def encode_with_pyav(samples: np.ndarray, rate: int, container: str, codec: str) -> bytes:
    """A real compressed file made by FFmpeg (AAC in mp4/m4a, MP3...)."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=container) as out:
        stream = out.add_stream(codec, rate=rate)
        frame = av.AudioFrame.from_ndarray(samples[None, :].astype(np.float32), format="flt", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buffer.getvalue()


def test_fixture_wav_loads_as_16k_mono_float():
    wav, _ = fixture_line("line_bilabials")
    audio = load_audio(wav)
    info = soundfile.info(str(wav))
    assert audio.source_rate == info.samplerate == 22050
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert abs(audio.duration - info.duration) < 0.001
    assert 0.05 < np.abs(audio.samples).max() <= 1.0


@pytest.mark.parametrize("rate", [8000, 11025, 22050, 44100, 48000, 96000])
def test_any_rate_resamples_to_16k_keeping_pitch(tmp_path, rate):
    path = tmp_path / f"tone_{rate}.wav"
    soundfile.write(str(path), tone(rate, 1.0, 440.0), rate, subtype="PCM_16")
    audio = load_audio(path)
    assert audio.source_rate == rate
    assert abs(len(audio.samples) - SAMPLE_RATE) <= 1
    assert abs(dominant_frequency(audio.samples) - 440.0) < 2.0
    # amplitude kept (0.5 sine): resampling is band-limited, not a lossy mush
    assert abs(np.abs(audio.samples[2000:-2000]).max() - 0.5) < 0.01


def test_resampler_removes_content_above_new_nyquist():
    rate = 48_000
    high = tone(rate, 1.0, 12_000.0)  # above 8 kHz: must not alias down into the speech band
    out = resample_to_16k(high, rate)
    assert np.sqrt(np.mean(out[1000:-1000] ** 2)) < 0.005


def test_stereo_is_averaged(tmp_path):
    left = tone(44100, 0.5, 300.0)
    right = np.zeros_like(left)
    path = tmp_path / "stereo.wav"
    soundfile.write(str(path), np.stack([left, right], axis=1), 44100)
    audio = load_audio(path)
    assert audio.source_channels == 2
    assert abs(np.abs(audio.samples[2000:-2000]).max() - 0.25) < 0.01  # half of the left channel


@pytest.mark.parametrize("fmt,subtype", [("FLAC", "PCM_16"), ("OGG", "VORBIS"), ("OGG", "OPUS"), ("MP3", "MPEG_LAYER_III")])
def test_compressed_formats_decode(tmp_path, fmt, subtype):
    rate = 48000 if subtype == "OPUS" else 44100
    path = tmp_path / f"tone.{fmt.lower()}"
    soundfile.write(str(path), tone(rate, 1.0, 440.0), rate, format=fmt, subtype=subtype)
    audio = load_audio(path)
    assert abs(audio.duration - 1.0) < 0.1
    assert abs(dominant_frequency(audio.samples) - 440.0) < 3.0


def test_mp3_inside_a_wav_name_decodes(tmp_path):
    buffer = io.BytesIO()
    soundfile.write(buffer, tone(44100, 1.0, 500.0, channels=2), 44100, format="MP3")
    liar = tmp_path / "really_mp3.wav"
    liar.write_bytes(buffer.getvalue())
    assert liar.read_bytes()[:4] != b"RIFF"
    audio = load_audio(liar)
    assert audio.source_channels == 2
    assert abs(dominant_frequency(audio.samples) - 500.0) < 3.0


def test_aac_in_m4a_decodes_through_pyav(tmp_path):
    data = encode_with_pyav(tone(44100, 1.0, 600.0), 44100, "mp4", "aac")
    with pytest.raises(soundfile.LibsndfileError):
        soundfile.read(io.BytesIO(data))  # libsndfile cannot: this exercises the FFmpeg path
    path = tmp_path / "line.m4a"
    path.write_bytes(data)
    audio = load_audio(path)
    assert abs(audio.duration - 1.0) < 0.1
    assert abs(dominant_frequency(audio.samples) - 600.0) < 3.0
    assert np.allclose(decode_audio_bytes(data, "line.m4a").samples, audio.samples)


def test_all_zeros_is_valid_silence(tmp_path):
    path = tmp_path / "silence.wav"
    soundfile.write(str(path), np.zeros(8000, np.int16), 16000, subtype="PCM_16")
    audio = load_audio(path)
    assert audio.duration == pytest.approx(0.5)
    assert not audio.samples.any()


# ------------------------------------------------------------- bad input: each gets its message


def test_missing_file(tmp_path):
    with pytest.raises(AudioError, match="not found"):
        load_audio(tmp_path / "nope.wav")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.wav"
    path.write_bytes(b"")
    with pytest.raises(AudioError, match=r"empty \(0 bytes\)"):
        load_audio(path)


def test_text_file_is_not_audio(tmp_path):
    path = tmp_path / "notes.wav"
    path.write_text("this is a line of dialogue, not its audio\n" * 20)
    with pytest.raises(AudioError, match="no audio stream|not a readable audio file"):
        load_audio(path)


def test_png_is_not_audio():
    with pytest.raises(AudioError, match="no audio stream"):
        load_audio(FIXTURES / "portrait_astronaut.png")


def test_folder_is_not_audio(tmp_path):
    with pytest.raises(AudioError, match="folder"):
        load_audio(tmp_path)


def test_wav_header_with_zero_samples(tmp_path):
    path = tmp_path / "zero.wav"
    soundfile.write(str(path), np.zeros(0, np.int16), 16000, subtype="PCM_16")
    with pytest.raises(AudioError, match="no samples"):
        load_audio(path)


def test_one_sample_is_too_short(tmp_path):
    path = tmp_path / "one.wav"
    soundfile.write(str(path), np.array([1000], np.int16), 16000, subtype="PCM_16")
    with pytest.raises(AudioError, match="too short to animate"):
        load_audio(path)


def test_twenty_ms_is_enough():
    assert audio_from_pcm(np.zeros(320, np.float32), 16000).duration == pytest.approx(0.02)
    with pytest.raises(AudioError, match="too short"):
        audio_from_pcm(np.zeros(319, np.float32), 16000)


def test_nan_is_rejected_naming_the_first_bad_sample(tmp_path):
    samples = tone(16000, 0.5)
    samples[4000] = np.nan
    samples[5000] = np.inf
    path = tmp_path / "nan.wav"
    soundfile.write(str(path), samples, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match=r"sample 4000 \(at 0\.2500 s\) is NaN"):
        load_audio(path)


def test_inf_is_rejected():
    samples = tone(8000, 0.5)
    samples[800] = -np.inf
    with pytest.raises(AudioError, match=r"sample 800 \(at 0\.1000 s\) is infinite"):
        audio_from_pcm(samples, 8000)


@pytest.mark.parametrize("rate", [0, -16000, 100, MAX_RATE + 1, 10**9, 44100.5, float("nan"), "fast"])
def test_absurd_rates_are_rejected(rate):
    with pytest.raises(AudioError, match="sample rate"):
        audio_from_pcm(np.zeros(16000, np.float32), rate)


def test_too_long_is_rejected_with_the_limit():
    with pytest.raises(AudioError, match=r"too long: 3\.0 s \(limit 2 s"):
        audio_from_pcm(np.zeros(48000, np.float32), 16000, max_duration_s=2.0)


def test_too_long_file_is_rejected_before_decoding_it_all(tmp_path):
    path = tmp_path / "long.flac"
    soundfile.write(str(path), np.zeros(16000 * 5, np.int16), 16000, format="FLAC")
    with pytest.raises(AudioError, match="too long"):
        load_audio(path, max_duration_s=4.0)


def test_huge_file_is_refused_before_reading(tmp_path, monkeypatch):
    import npcface.core.audio.decode as audio_module

    path = tmp_path / "big.wav"
    soundfile.write(str(path), np.zeros(16000, np.int16), 16000, subtype="PCM_16")
    monkeypatch.setattr(audio_module, "MAX_FILE_BYTES", 1000)  # the real limit is 1 GiB
    with pytest.raises(AudioError, match=r"too large to be a dialogue line"):
        load_audio(path)


def test_pcm_shapes_and_types():
    int16 = (tone(16000, 0.1) * 32767).astype(np.int16)
    assert np.allclose(audio_from_pcm(int16, 16000).samples, tone(16000, 0.1), atol=1e-4)
    assert audio_from_pcm(tone(16000, 0.1, channels=6), 16000).source_channels == 6
    with pytest.raises(AudioError, match=r"got \(2, 1600\) \(transposed\?\)"):
        audio_from_pcm(tone(16000, 0.1, channels=2).T, 16000)
    with pytest.raises(AudioError, match="unsupported PCM sample type"):
        audio_from_pcm(np.zeros(1600, np.complex64), 16000)
    assert issubclass(AudioError, NpcfaceError)


# ------------------------------------------------------------- streaming PCM


def pcm_bytes(samples: np.ndarray, sample_format: str) -> bytes:
    if sample_format == "s16le":
        return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    return samples.astype("<f4").tobytes()


@pytest.mark.parametrize("rate,channels,sample_format", [(48000, 2, "s16le"), (44100, 1, "f32le"), (22050, 2, "f32le"), (16000, 1, "s16le"), (8000, 1, "s16le")])
def test_stream_equals_offline_for_any_chunking(rate, channels, sample_format):
    wav, _ = fixture_line("line_greeting")
    speech = load_audio(wav).samples[:32000]
    source = resample_to_16k(speech, 16000) if rate == 16000 else _to_rate(speech, rate)
    interleaved = np.stack([source] * channels, axis=1) if channels > 1 else source
    data = pcm_bytes(interleaved.reshape(-1), sample_format)
    offline = audio_from_pcm(np.frombuffer(data, "<i2" if sample_format == "s16le" else "<f4").reshape(-1, channels), rate).samples

    rng = np.random.default_rng(rate + channels)
    converter = PcmStreamConverter(rate, channels, sample_format)
    pieces, position = [], 0
    while position < len(data):
        size = int(rng.integers(1, 4000))  # odd sizes split samples and frames
        pieces.append(converter.push(data[position : position + size]))
        position += size
    pieces.append(converter.flush())
    streamed = np.concatenate(pieces)
    assert len(streamed) == len(offline)
    assert np.allclose(streamed, offline, atol=1e-6)


def _to_rate(samples16k: np.ndarray, rate: int) -> np.ndarray:
    """Test signal at another rate (linear interpolation is enough for a synthetic input)."""
    times = np.arange(int(len(samples16k) * rate / SAMPLE_RATE)) / rate
    return np.interp(times, np.arange(len(samples16k)) / SAMPLE_RATE, samples16k).astype(np.float32)


@settings(max_examples=25, deadline=None)
@given(
    st.sampled_from([8000, 11025, 22050, 24000, 32000, 44100, 48000, 96000]),
    st.integers(min_value=1, max_value=2),
    st.lists(st.integers(min_value=1, max_value=5000), min_size=1, max_size=20),
)
def test_stream_chunking_never_changes_the_samples(rate, channels, sizes):
    rng = np.random.default_rng(rate)
    interleaved = (0.3 * rng.standard_normal(int(rate * 0.3) * channels)).astype("<f4")
    data = interleaved.tobytes()
    offline = audio_from_pcm(interleaved.reshape(-1, channels), rate).samples
    converter = PcmStreamConverter(rate, channels, "f32le")
    pieces, position, index = [], 0, 0
    while position < len(data):
        size = sizes[index % len(sizes)]
        pieces.append(converter.push(data[position : position + size]))
        position, index = position + size, index + 1
    streamed = np.concatenate(pieces + [converter.flush()])
    assert len(streamed) == len(offline)
    assert np.allclose(streamed, offline, atol=1e-6)


def test_stream_buffers_a_split_sample():
    converter = PcmStreamConverter(16000, 1, "s16le")
    assert len(converter.push(b"\x01")) == 0  # half a sample: nothing yet
    out = converter.push(b"\x40")  # completes 0x4001
    assert out.tolist() == [pytest.approx(0x4001 / 32768)]


def test_stream_bad_arguments_and_data():
    with pytest.raises(AudioError, match="sample rate"):
        PcmStreamConverter(0, 1, "s16le")
    with pytest.raises(AudioError, match="channels"):
        PcmStreamConverter(16000, 0, "s16le")
    with pytest.raises(AudioError, match="sample format"):
        PcmStreamConverter(16000, 1, "mp3")
    converter = PcmStreamConverter(16000, 1, "f32le")
    with pytest.raises(AudioError, match="must be bytes"):
        converter.push("text")
    with pytest.raises(AudioError, match=r"PCM sample 3 .* NaN"):
        converter.push(np.array([0, 0, 0, np.nan], "<f4").tobytes())
    converter.flush()
    with pytest.raises(AudioError, match="already flushed"):
        converter.push(b"\x00\x00\x00\x00")


def test_plain_16k_mono_chunks_give_the_general_paths_samples_bit_for_bit():
    # engines send 16 kHz mono s16le in whole samples: that case takes a shortcut in push()
    rng = np.random.default_rng(5)
    pcm = np.concatenate([rng.integers(-32768, 32768, 6000), [-32768, 32767, 0]]).astype("<i2")
    data = pcm.tobytes()
    whole_chunks = PcmStreamConverter(16000, 1, "s16le")
    shortcut = np.concatenate([whole_chunks.push(data[i : i + 640]) for i in range(0, len(data), 640)])
    split_chunks = PcmStreamConverter(16000, 1, "s16le")  # odd sizes: every push buffers half a sample
    general = np.concatenate([split_chunks.push(data[i : i + 641]) for i in range(0, len(data), 641)])
    offline = audio_from_pcm(pcm.reshape(-1, 1), 16000).samples
    assert shortcut.dtype == np.float32 and len(shortcut) == len(pcm)
    assert np.array_equal(shortcut, general) and np.array_equal(shortcut, offline)
    assert shortcut.min() == -1.0 and shortcut.max() < 1.0
