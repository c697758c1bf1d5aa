"""Audio in: decode any file or PCM stream into 16 kHz mono float32 (`Audio`).

Decoding tries soundfile (libsndfile: WAV, FLAC, OGG/Vorbis, MP3, ...) first and PyAV's bundled
FFmpeg for everything else (MP3 inside a `.wav` name, m4a/mp4 audio tracks, Opus, ...). Channels
are averaged, then a windowed-sinc polyphase resampler (our own, below) brings the rate to 16 kHz.
The same resampler runs offline and streaming, so `PcmStreamConverter` output concatenates to the
offline result exactly, whatever the chunking.

Documented behaviour for edge cases:
- all-zero (silent) audio is valid: it animates a closed, relaxed mouth;
- audio shorter than MIN_DURATION_S (20 ms) is rejected as too short to animate;
- NaN/inf samples are rejected, naming the first bad sample's index and time;
- sample rates outside [MIN_RATE, MAX_RATE] are rejected as absurd;
- audio longer than `max_duration_s` (default MAX_DURATION_S = 10 minutes) is rejected;
- float input beyond [-1, 1] is clipped to [-1, 1] after resampling.
"""
from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Literal

import numpy as np

from ..errors import AudioError
from ..types import SAMPLE_RATE, Audio

MIN_RATE = 4_000
MAX_RATE = 384_000
MAX_CHANNELS = 32
MIN_DURATION_S = 0.020
MAX_DURATION_S = 600.0
MAX_FILE_BYTES = 1 << 30  # 1 GiB: far above 10 minutes of any sane audio, refused before reading
_ZERO_CROSSINGS = 16  # resampler kernel half-width in zero crossings of the sinc
_ROLLOFF = 0.94  # cutoff as a fraction of the lower Nyquist frequency
_KAISER_BETA = 8.6
_BLOCK = 65_536  # outputs computed per vectorised block (bounds memory on long files)
_CONV_ROWS = 2048  # kernel positions per matrix product in the long-block path


# ---------------------------------------------------------------- validation


def _check_rate(rate: float) -> int:
    try:
        as_float = float(rate)
    except (TypeError, ValueError):
        raise AudioError(f"sample rate must be a number, got {rate!r}") from None
    if not math.isfinite(as_float) or as_float != int(as_float):
        raise AudioError(f"sample rate must be a whole number of Hz, got {rate!r}")
    if not MIN_RATE <= as_float <= MAX_RATE:
        raise AudioError(f"absurd sample rate {int(as_float)} Hz (supported: {MIN_RATE}..{MAX_RATE} Hz)")
    return int(as_float)


def _check_finite(mono: np.ndarray, rate: int) -> None:
    bad = ~np.isfinite(mono)
    if bad.any():
        index = int(np.argmax(bad))
        kind = "NaN" if np.isnan(mono[index]) else "infinite"
        raise AudioError(f"audio sample {index} (at {index / rate:.4f} s) is {kind}")


def _check_duration(frames: int, rate: int, max_duration_s: float) -> None:
    if frames == 0:
        raise AudioError("audio contains no samples")
    duration = frames / rate
    if duration < MIN_DURATION_S:
        raise AudioError(
            f"audio too short to animate: {duration * 1000:.1f} ms ({frames} samples; minimum {MIN_DURATION_S * 1000:.0f} ms)"
        )
    if duration > max_duration_s:
        raise AudioError(f"audio too long: {duration:.1f} s (limit {max_duration_s:.0f} s; split the line)")


def _int16_to_float(samples: np.ndarray) -> np.ndarray:
    return samples.astype(np.float32) / 32768.0


def _to_float(samples: np.ndarray) -> np.ndarray:
    """Integer PCM to float32 in [-1, 1); float input passes through as float32."""
    if samples.dtype == np.int16:
        return _int16_to_float(samples)
    if samples.dtype == np.int32:
        return (samples.astype(np.float64) / 2147483648.0).astype(np.float32)
    if samples.dtype == np.uint8:
        return (samples.astype(np.float32) - 128.0) / 128.0
    if samples.dtype in (np.float32, np.float64):
        return samples.astype(np.float32, copy=False)
    raise AudioError(f"unsupported PCM sample type {samples.dtype} (use float32, float64, int16, int32 or uint8)")


def _downmix(samples: np.ndarray) -> np.ndarray:
    """(n,) or (n, channels) -> (n,) by averaging channels."""
    if samples.ndim == 1:
        return samples
    if samples.ndim == 2 and samples.shape[1] == 1 and samples.dtype == np.float32:
        return samples[:, 0]  # what the mean of one float32 channel is, without ~20 us a chunk of mean()
    if samples.ndim != 2 or not 1 <= samples.shape[1] <= MAX_CHANNELS:
        raise AudioError(
            f"PCM must have shape (n,) or (n, channels) with 1..{MAX_CHANNELS} channels, got {samples.shape}"
            + (" (transposed?)" if samples.ndim == 2 and samples.shape[0] <= MAX_CHANNELS else "")
        )
    return samples.mean(axis=1, dtype=np.float32)


# ---------------------------------------------------------------- resampling


class _PolyphaseResampler:
    """Band-limited resampling from `rate` to 16 kHz, usable incrementally.

    Output sample n sits at input position t = n * down / up (in input samples) and is
    sum_k x[k] * kernel(t - k), a Kaiser-windowed sinc. Inputs before the start and after the
    end (at flush) count as zeros, which is what makes chunked and whole-file output identical.
    """

    def __init__(self, rate: int):
        g = math.gcd(rate, SAMPLE_RATE)
        self.up, self.down = SAMPLE_RATE // g, rate // g
        self.cutoff = _ROLLOFF * min(1.0, self.up / self.down)  # cycles per input sample * 2
        self.half = int(math.ceil(_ZERO_CROSSINGS / self.cutoff))  # kernel half-width in input samples
        self.offsets = np.arange(-self.half + 1, self.half + 1)  # taps relative to floor(t)
        self._table = self._phase_table() if self.up <= 4096 else None
        self._conv_weight = self._conv_kernels() if self._table is not None else None
        self._buffer = np.zeros(self.half, dtype=np.float32)  # zeros stand for x[-half..-1]
        self._buffer_start = -self.half  # global input index of _buffer[0]
        self._received = 0  # input samples pushed so far
        self._next_out = 0  # global index of the next output sample

    def _kernel(self, tau: np.ndarray) -> np.ndarray:
        window = np.i0(_KAISER_BETA * np.sqrt(np.clip(1.0 - (tau / self.half) ** 2, 0.0, 1.0))) / np.i0(_KAISER_BETA)
        return (self.cutoff * np.sinc(self.cutoff * tau) * window).astype(np.float32)

    def _phase_table(self) -> np.ndarray:
        fractions = np.arange(self.up)[:, None] / self.up  # (up, 1)
        return self._kernel(fractions - self.offsets[None, :])  # (up, taps)

    def _conv_kernels(self) -> np.ndarray | None:
        """The phase filters as one strided correlation, for long blocks: (up, length) float32.

        Output n = k * up + c needs x[k * down + floor(c * down / up) + offsets]: channel c's
        kernel is its phase filter shifted by floor(c * down / up); the stride is `down`.
        """
        shifts = (np.arange(self.up) * self.down) // self.up
        length = int(shifts[-1]) + len(self.offsets)
        if self.up * length > 4_000_000:
            return None  # awkward rate pairs (e.g. 44099 Hz): the gather path is leaner
        weight = np.zeros((self.up, length), dtype=np.float32)
        phases = (np.arange(self.up) * self.down) % self.up
        for channel in range(self.up):
            weight[channel, shifts[channel] : shifts[channel] + len(self.offsets)] = self._table[phases[channel]]
        return weight

    def _compute_conv(self, first: int, count: int) -> np.ndarray:
        k_first, k_last = first // self.up, (first + count - 1) // self.up
        start = k_first * self.down + int(self.offsets[0])  # global input index of kernel position 0
        length = (k_last - k_first) * self.down + self._conv_weight.shape[1]
        lo, hi = start - self._buffer_start, start - self._buffer_start + length
        source = self._buffer[max(lo, 0) : max(min(hi, len(self._buffer)), 0)]
        # inputs outside the buffer only feed outputs outside [first, first + count): zeros
        left = max(-lo, 0)
        source = np.pad(source, (left, length - left - len(source)))
        windows = np.lib.stride_tricks.sliding_window_view(source, self._conv_weight.shape[1])[:: self.down]
        out = np.empty((len(windows), self.up), dtype=np.float32)  # (k, c) -> n = k * up + c
        for row in range(0, len(windows), _CONV_ROWS):  # bounded temporaries on long lines
            out[row : row + _CONV_ROWS] = windows[row : row + _CONV_ROWS] @ self._conv_weight.T
        flat = out.reshape(-1)
        offset = first - k_first * self.up
        return flat[offset : offset + count].copy()

    def _compute(self, first: int, count: int) -> np.ndarray:
        if self._conv_weight is not None and count >= 4 * self.up:
            return self._compute_conv(first, count)
        out = np.empty(count, dtype=np.float32)
        for block_start in range(0, count, _BLOCK):
            n = np.arange(first + block_start, first + min(count, block_start + _BLOCK), dtype=np.int64)
            base, phase = np.divmod(n * self.down, self.up)  # floor(t) and its fractional phase
            taps = self._table[phase] if self._table is not None else self._kernel(phase[:, None] / self.up - self.offsets)
            index = base[:, None] + self.offsets[None, :] - self._buffer_start  # (block, taps)
            out[block_start : block_start + len(n)] = np.einsum("ij,ij->i", taps, self._buffer[index])
        return out

    def push(self, mono: np.ndarray, final: bool = False) -> np.ndarray:
        self._buffer = np.concatenate([self._buffer, mono.astype(np.float32, copy=False)])
        self._received += len(mono)
        if final:
            total_out = -(-self._received * self.up // self.down)  # ceil: outputs whose t < end
            self._buffer = np.concatenate([self._buffer, np.zeros(self.half + 1, dtype=np.float32)])
            ready = total_out - self._next_out
        else:
            # output n is ready once input floor(t) + half has arrived: floor(n*down/up) <= newest - half
            newest_allowed = self._received - 1 - self.half
            limit = -(-(newest_allowed + 1) * self.up // self.down) if newest_allowed >= 0 else 0
            ready = max(0, limit - self._next_out)
        out = self._compute(self._next_out, ready) if ready > 0 else np.zeros(0, dtype=np.float32)
        self._next_out += ready
        keep_from = self._next_out * self.down // self.up - self.half + 1  # first input the next output needs
        drop = max(0, keep_from - self._buffer_start)
        if drop:
            self._buffer = self._buffer[drop:]
            self._buffer_start += drop
        return out


def resample_to_16k(mono: np.ndarray, rate: int) -> np.ndarray:
    """Resample float32 mono audio from `rate` to 16 kHz (whole signal)."""
    rate = _check_rate(rate)
    if rate == SAMPLE_RATE:
        return mono.astype(np.float32, copy=True)
    return _PolyphaseResampler(rate).push(mono, final=True)


# ---------------------------------------------------------------- public API


def audio_from_pcm(samples: np.ndarray, rate: int, max_duration_s: float = MAX_DURATION_S) -> Audio:
    """Build `Audio` from raw PCM: (n,) or (n, channels), float or int16/int32/uint8, any rate."""
    samples = np.asarray(samples)
    rate = _check_rate(rate)
    if samples.ndim == 2 and 1 <= samples.shape[1] <= MAX_CHANNELS:
        channels = samples.shape[1]
    elif samples.ndim == 1:
        channels = 1
    else:
        _downmix(samples)  # raises with the shape in the message
        channels = 0
    _check_duration(samples.shape[0], rate, max_duration_s)
    mono = _downmix(_to_float(samples))
    _check_finite(mono, rate)
    resampled = np.clip(resample_to_16k(mono, rate), -1.0, 1.0)
    return Audio(samples=resampled, source_rate=rate, source_channels=channels)


def load_audio(path: str | Path, max_duration_s: float = MAX_DURATION_S) -> Audio:
    """Decode an audio file of any common format, rate and channel count to 16 kHz mono."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"audio file not found: {path}")
    if path.is_dir():
        raise AudioError(f"expected an audio file, got a folder: {path}")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise AudioError(f"{path} is too large to be a dialogue line: {size / 2**20:.0f} MiB (limit {MAX_FILE_BYTES >> 20} MiB)")
    data = path.read_bytes()
    return decode_audio_bytes(data, name=str(path), max_duration_s=max_duration_s)


def decode_audio_bytes(data: bytes, name: str = "", max_duration_s: float = MAX_DURATION_S) -> Audio:
    """Decode an in-memory audio file (any container/codec) to 16 kHz mono."""
    label = name or "audio data"
    if not data:
        raise AudioError(f"{label} is empty (0 bytes)")
    decoded = _decode_soundfile(data, max_duration_s)
    if decoded is None:
        decoded = _decode_pyav(data, label, max_duration_s)
    samples, rate = decoded
    try:
        return audio_from_pcm(samples, rate, max_duration_s)
    except AudioError as error:
        raise AudioError(f"{label}: {error}") from None


def _decode_soundfile(data: bytes, max_duration_s: float) -> tuple[np.ndarray, int] | None:
    """(frames, channels) float32 and rate, or None if libsndfile cannot read it."""
    import soundfile

    try:
        with soundfile.SoundFile(io.BytesIO(data)) as sound:
            if sound.frames > 0 and sound.frames / max(sound.samplerate, 1) > max_duration_s:
                _check_duration(sound.frames, sound.samplerate, max_duration_s)
            return sound.read(dtype="float32", always_2d=True), sound.samplerate
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError):
        return None


def _decode_pyav(data: bytes, label: str, max_duration_s: float) -> tuple[np.ndarray, int]:
    """Decode with FFmpeg (PyAV); (frames, channels) float32 and rate."""
    import av

    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, ValueError) as error:
        raise AudioError(f"{label} is not a readable audio file ({_short(error)})") from None
    with container:
        if not container.streams.audio:
            raise AudioError(f"{label} contains no audio stream (is it an image or a text file?)")
        stream = container.streams.audio[0]
        chunks: list[np.ndarray] = []
        rate = 0
        total = 0
        try:
            for frame in container.decode(stream):
                rate = frame.sample_rate
                planes = frame.to_ndarray()  # planar: (channels, n); packed: (1, n * channels)
                channels = len(frame.layout.channels)
                if frame.format.is_planar:
                    chunk = planes.T
                else:
                    chunk = planes.reshape(-1, channels)
                chunks.append(_to_float(np.ascontiguousarray(chunk)) if chunk.dtype != np.float32 else chunk)
                total += len(chunk)
                if total / rate > max_duration_s:
                    _check_duration(total, rate, max_duration_s)
        except (av.FFmpegError, ValueError) as error:
            if not chunks:
                raise AudioError(f"{label} could not be decoded ({_short(error)})") from None
            # a truncated tail: keep what decoded cleanly
    if not chunks or rate == 0:
        raise AudioError(f"{label} contains no audio samples")
    return np.concatenate(chunks).astype(np.float32, copy=False), rate


def _short(error: Exception) -> str:
    return str(error).splitlines()[0][:160] if str(error) else type(error).__name__


SampleFormat = Literal["s16le", "f32le"]
SAMPLE_BYTES: dict[str, int] = {"s16le": 2, "f32le": 4}  # bytes per sample of each PCM format


class PcmStreamConverter:
    """Raw little-endian PCM bytes, any rate and channel count, in chunks of any size -> 16 kHz mono.

    Partial samples/frames at the end of a chunk are buffered until the next push. The
    concatenation of every `push` plus `flush` equals `audio_from_pcm` on the whole stream.
    """

    def __init__(self, rate: int, channels: int, sample_format: SampleFormat):
        self.rate = _check_rate(rate)
        if not isinstance(channels, (int, np.integer)) or not 1 <= channels <= MAX_CHANNELS:
            raise AudioError(f"channels must be 1..{MAX_CHANNELS}, got {channels!r}")
        if sample_format not in SAMPLE_BYTES:
            raise AudioError(f"unknown PCM sample format {sample_format!r} (expected 's16le' or 'f32le')")
        self.channels = int(channels)
        self.sample_format = sample_format
        self._frame_bytes = SAMPLE_BYTES[sample_format] * self.channels
        self._pending = b""
        self._samples_in = 0  # input frames accepted so far (for error messages)
        self._resampler = _PolyphaseResampler(self.rate) if self.rate != SAMPLE_RATE else None
        self._flushed = False
        self._plain = self._resampler is None and self.channels == 1 and sample_format == "s16le"

    def push(self, data: bytes) -> np.ndarray:
        """Convert a chunk; returns the 16 kHz samples that are final so far (maybe none)."""
        if self._flushed:
            raise AudioError("PCM stream already flushed; start a new stream")
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise AudioError(f"PCM chunk must be bytes, got {type(data).__name__}")
        if self._plain and not self._pending and len(data) % 2 == 0:
            # 16 kHz mono s16le, what engines send: the same numbers in three numpy calls (an
            # int16 over 32768 is finite and inside [-1, 1), so the checks below cannot fire)
            self._samples_in += len(data) // 2
            return _int16_to_float(np.frombuffer(data, dtype="<i2"))
        data = self._pending + bytes(data)
        whole = len(data) - len(data) % self._frame_bytes
        self._pending = data[whole:]
        dtype = "<i2" if self.sample_format == "s16le" else "<f4"
        interleaved = np.frombuffer(data[:whole], dtype=dtype).reshape(-1, self.channels)
        mono = _downmix(_to_float(interleaved.astype(dtype[1:], copy=False)))
        bad = ~np.isfinite(mono)
        if bad.any():
            index = self._samples_in + int(np.argmax(bad))
            raise AudioError(f"PCM sample {index} (at {index / self.rate:.4f} s) is NaN or infinite")
        self._samples_in += len(mono)
        if self._resampler is None:
            out = mono.astype(np.float32, copy=True)
        else:
            out = self._resampler.push(mono)
        return np.clip(out, -1.0, 1.0)

    def flush(self) -> np.ndarray:
        """End of stream: the remaining samples. A dangling partial sample is dropped."""
        if self._flushed:
            return np.zeros(0, dtype=np.float32)
        self._flushed = True
        self._pending = b""
        if self._resampler is None:
            return np.zeros(0, dtype=np.float32)
        return np.clip(self._resampler.push(np.zeros(0, dtype=np.float32), final=True), -1.0, 1.0)
