"""Frame-level acoustic features of 16 kHz mono audio, one row every 10 ms (`AudioFeatures`).

Every row is computed from one fixed 40 ms analysis window centred on its 10 ms hop (samples
before the start and after the end count as zeros), and nothing looks across rows. That makes
streaming exact by construction: `FeatureStream` emits row i as soon as the window of row i has
arrived (25 ms after the hop starts), and concatenated streaming rows equal the offline rows.

Per row (all vectorised over frames; numpy only, so animating never has to load torch):
- log-mel: 25 ms Hann window, 512-point FFT, 40 mel bands 60..7600 Hz, natural log of power;
- loudness: RMS of the 25 ms window in dBFS, floored at -90;
- f0 + voicing: YIN (cumulative mean normalised difference) on the 40 ms window, 60..500 Hz;
  voicing = 1 - the CMND dip, forced to 0 in near-silence; f0 is 0 where voicing < 0.5;
- F1/F2: LPC (order 16, pre-emphasis 0.9, Hamming window) -> roots via companion-matrix
  eigenvalues -> the two lowest resonances with narrow bandwidth; 0 where unvoiced, and on every
  row of a stream made with ``formants=False`` (a reader that ignores them skips the root-finding);
- spectral tilt: energy 2.5..8 kHz over 100..1500 Hz, in dB (fricatives high, vowels low);
- zero-crossing rate: sign changes per sample in the 25 ms window.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import AudioError
from ..numeric import clip as _clip
from ..types import FEATURE_HOP_S, SAMPLE_RATE, AudioFeatures


HOP = 160  # 10 ms
ANALYSIS = 640  # 40 ms window every feature row is computed from
SHORT = 400  # 25 ms window (mel, loudness, LPC, tilt, ZCR), centred inside ANALYSIS
N_FFT = 512
N_MELS = 40
LPC_ORDER = 16
F0_MIN, F0_MAX = 60.0, 500.0
SILENCE_DB = -90.0
VOICING_FLOOR_DB = -50.0  # quieter frames are unvoiced whatever the periodicity says
_LEFT_PAD = (ANALYSIS - HOP) // 2  # row i's window starts at i*HOP - _LEFT_PAD
_SHORT_OFFSET = (ANALYSIS - SHORT) // 2
FEATURE_COLUMNS = ("log_mel", "loudness_db", "f0_hz", "voicing", "f1_hz", "f2_hz", "spectral_tilt", "zero_crossing_rate")


def _slaney_hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale: linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz / (200.0 / 3.0)
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, linear)


def _slaney_mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    return np.where(mel >= 15.0, 1000.0 * np.exp((np.log(6.4) / 27.0) * (mel - 15.0)), mel * (200.0 / 3.0))


def mel_filterbank(n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int) -> np.ndarray:
    """(n_freqs, n_mels) triangular filters on Slaney's mel scale with Slaney's area normalisation:
    the same bank as torchaudio.functional.melscale_fbanks(..., norm="slaney", mel_scale="slaney")
    (tests/test_features.py checks it), without importing torch (seconds at start-up)."""
    freqs = np.linspace(0.0, sample_rate // 2, n_freqs)
    edges = _slaney_mel_to_hz(np.linspace(_slaney_hz_to_mel(f_min), _slaney_hz_to_mel(f_max), n_mels + 2))
    widths = np.diff(edges)  # (n_mels + 1,)
    slopes = edges[None, :] - freqs[:, None]  # (n_freqs, n_mels + 2)
    rising = -slopes[:, :-2] / widths[:-1]
    falling = slopes[:, 2:] / widths[1:]
    bank = np.maximum(0.0, np.minimum(rising, falling))
    return bank * (2.0 / (edges[2:] - edges[:-2]))[None, :]


_MEL = mel_filterbank(N_FFT // 2 + 1, 60.0, 7600.0, N_MELS, SAMPLE_RATE)  # (257, 40)
_HANN = np.hanning(SHORT)
_HAMMING = np.hamming(SHORT)
_FREQS = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)
_LOW_BAND = slice(*np.flatnonzero((_FREQS >= 100) & (_FREQS < 1500))[[0, -1]] + [0, 1])  # contiguous bins: a slice, not a mask
_HIGH_BAND = slice(*np.flatnonzero((_FREQS >= 2500) & (_FREQS < 8000))[[0, -1]] + [0, 1])
_MAX_LAG = int(SAMPLE_RATE / F0_MIN)  # 266
_MIN_LAG = int(SAMPLE_RATE / F0_MAX)  # 32
_LAGS = np.arange(_MAX_LAG + 2)


_CHUNK_ROWS = 64  # rows computed together (every row on its own: any split gives the same numbers)


def _frames_features(windows: np.ndarray, formant_rows: bool | np.ndarray = True) -> dict[str, np.ndarray]:
    """windows: (T, ANALYSIS) float64 -> feature columns, each (T,) or (T, N_MELS).
    ``formant_rows``: whether F1/F2 are wanted, for every row or (T,) row by row; rows without
    them get 0 there, as unvoiced rows do. Root-finding is about half of the cost of a voiced row, and a
    reader that ignores formants (the learned mouth) need not pay it.

    numpy rather than torch here: streaming calls this for one or two rows at a time, where
    torch's per-op overhead cost ~1 ms a call; on whole lines both run at the same speed.
    At most _CHUNK_ROWS rows at a time: the FFTs' and yin's (T, 1024) arrays of a bigger batch
    (a sidecar behind real time steps 32 streams' 14 rows each) leave the cache, which cost 1.7x
    per row at 448 rows, against 64-row chunks.
    """
    if len(windows) > _CHUNK_ROWS:
        by_row = isinstance(formant_rows, np.ndarray)
        parts = [_frames_features(windows[i:i + _CHUNK_ROWS], formant_rows[i:i + _CHUNK_ROWS] if by_row else formant_rows)
                 for i in range(0, len(windows), _CHUNK_ROWS)]
        return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}
    short = windows[:, _SHORT_OFFSET : _SHORT_OFFSET + SHORT]  # (T, 400)
    # means as sum / count: what ndarray.mean computes, without its ~20 us of bookkeeping a call
    energy = (short**2).sum(axis=1) / SHORT
    loudness = np.maximum(10.0 * np.log10(energy + 1e-12), SILENCE_DB)

    spectrum = np.abs(np.fft.rfft(short * _HANN, n=N_FFT)) ** 2  # (T, 257)
    log_mel = np.log(spectrum @ _MEL + 1e-10)  # (T, 40)
    low = spectrum[:, _LOW_BAND].sum(axis=1)
    high = spectrum[:, _HIGH_BAND].sum(axis=1)
    tilt = 10.0 * np.log10((high + 1e-12) / (low + 1e-12))

    signs = np.signbit(short)
    zcr = (signs[:, 1:] != signs[:, :-1]).sum(axis=1, dtype=np.float64) / (SHORT - 1)

    # pitch only where it counts: quieter rows are unvoiced whatever YIN says (each row on its own,
    # so the loud rows get the numbers they get in any batch; idle silence costs no YIN at all)
    audible = loudness > VOICING_FLOOR_DB
    f0, voicing = np.zeros(len(windows)), np.zeros(len(windows))
    if audible.all():
        f0, voicing = _yin(windows)
    elif audible.any():
        f0[audible], voicing[audible] = _yin(windows[audible])
    voiced = voicing >= 0.5
    f1, f2 = np.zeros(len(windows)), np.zeros(len(windows))
    rooted = voiced & formant_rows
    if rooted.any():  # formants are kept on voiced rows only: root-finding the others is wasted (each row on its own)
        f1[rooted], f2[rooted] = _formants(short[rooted])
    columns = dict(
        log_mel=log_mel, loudness_db=loudness, f0_hz=np.where(voiced, f0, 0.0), voicing=voicing,
        f1_hz=np.where(voiced, f1, 0.0), f2_hz=np.where(voiced, f2, 0.0), spectral_tilt=tilt, zero_crossing_rate=zcr,
    )
    return {name: value.astype(np.float32) for name, value in columns.items()}


def _yin(windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """YIN pitch on (T, ANALYSIS) windows -> (f0 Hz, voicing in [0, 1]), both (T,)."""
    width = ANALYSIS - _MAX_LAG - 1  # integration window (lags up to max_lag + 1 stay inside)
    x = windows - windows.sum(axis=1, keepdims=True) / ANALYSIS
    head = x[:, :width]
    # difference d(lag) = sum (x_j - x_{j+lag})^2 over j < width, via one FFT cross-correlation
    n = 1 << (ANALYSIS + width).bit_length()
    cross = np.fft.irfft(np.fft.rfft(x, n=n) * np.conj(np.fft.rfft(head, n=n)), n=n)[:, : _MAX_LAG + 2]
    squares = np.concatenate([np.zeros((len(x), 1)), x**2], axis=1).cumsum(axis=1)  # running sum from 0
    tail_energy = squares[:, _LAGS + width] - squares[:, _LAGS]  # sum x_{j+lag}^2
    diff = (head**2).sum(axis=1, keepdims=True) + tail_energy - 2.0 * cross  # (T, max_lag+2)
    diff[:, 0] = 0.0
    running = diff[:, 1:].cumsum(axis=1) / _LAGS[1:]
    cmnd = np.ones_like(diff)
    cmnd[:, 1:] = diff[:, 1:] / np.maximum(running, 1e-12)

    inner = cmnd[:, _MIN_LAG : _MAX_LAG + 1]  # lags min_lag..max_lag
    before = cmnd[:, _MIN_LAG - 1 : _MAX_LAG]
    after = cmnd[:, _MIN_LAG + 1 : _MAX_LAG + 2]
    dips = (inner < 0.2) & (inner <= before) & (inner <= after)  # YIN: first dip under threshold
    best = np.where(dips.any(axis=1), np.argmax(dips, axis=1), np.argmin(inner, axis=1))
    rows = np.arange(len(windows))
    y0, y1, y2 = before[rows, best], inner[rows, best], after[rows, best]
    curvature = y0 - 2.0 * y1 + y2
    safe = np.where(curvature > 1e-9, curvature, 1.0)
    shift = _clip(np.where(curvature > 1e-9, 0.5 * (y0 - y2) / safe, 0.0), -0.5, 0.5)
    f0 = SAMPLE_RATE / (best + _MIN_LAG + shift)
    return f0, _clip(1.0 - y1, 0.0, 1.0)


def _formants(short: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """F1, F2 (Hz) of (T, SHORT) windows from LPC roots; 0 where no resonance is found."""
    emphasised = np.concatenate([short[:, :1], short[:, 1:] - 0.9 * short[:, :-1]], axis=1) * _HAMMING
    n = 1 << (2 * SHORT).bit_length()
    autocorr = np.fft.irfft(np.abs(np.fft.rfft(emphasised, n=n)) ** 2, n=n)[:, : LPC_ORDER + 1]
    autocorr[:, 0] = autocorr[:, 0] * (1.0 + 1e-9) + 1e-12  # white-noise floor keeps Levinson stable
    coeffs = _levinson(autocorr)  # (T, order): x_t ~ sum_k a_k x_{t-k}
    companion = np.zeros((len(short), LPC_ORDER, LPC_ORDER))
    companion[:, 0, :] = coeffs
    companion[:, 1:, :-1] = np.eye(LPC_ORDER - 1)
    roots = np.linalg.eigvals(companion)  # (T, order) complex
    freq = np.angle(roots) * SAMPLE_RATE / (2 * np.pi)
    bandwidth = -np.log(np.maximum(np.abs(roots), 1e-9)) * SAMPLE_RATE / np.pi
    usable = (freq > 150.0) & (freq < 5000.0) & (bandwidth < 500.0)
    ordered = np.sort(np.where(usable, freq, np.inf), axis=1)
    f1, f2 = ordered[:, 0], ordered[:, 1]
    return np.where(np.isfinite(f1), f1, 0.0), np.where(np.isfinite(f2), f2, 0.0)


_TOEPLITZ = np.abs(np.arange(LPC_ORDER)[:, None] - np.arange(LPC_ORDER)[None, :])  # (order, order) lags


def _levinson(autocorr: np.ndarray) -> np.ndarray:
    """LPC normal equations over a batch: (T, order+1) autocorrelation -> (T, order) predictor.

    One batched Toeplitz solve (what Levinson-Durbin computes, with far fewer numpy calls,
    which is what costs on the one-or-two-row batches of streaming).
    """
    matrices = autocorr[:, _TOEPLITZ]  # (T, order, order)
    return np.linalg.solve(matrices, autocorr[:, 1:, None])[:, :, 0]


def _empty(start_time: float) -> AudioFeatures:
    zeros = np.zeros(0, dtype=np.float32)
    return AudioFeatures(start_time, np.zeros((0, N_MELS), np.float32), zeros, zeros, zeros, zeros, zeros, zeros, zeros)


def check_samples16k(samples16k: np.ndarray) -> np.ndarray:
    """Validate 16 kHz mono float samples (shape, type, finiteness); returns them as float64."""
    samples = np.asarray(samples16k)
    if samples.ndim != 1:
        raise AudioError(f"features need 16 kHz mono samples of shape (n,), got shape {samples.shape}")
    if samples.dtype.kind != "f":  # what np.issubdtype(dtype, np.floating) says, in a tenth of its time
        raise AudioError(f"features need float samples in [-1, 1], got {samples.dtype}")
    out = samples.astype(np.float64)
    # float32 audio (what PCM decodes to) summed in float64 cannot overflow, so its sum is finite
    # exactly when every sample is: one reduction instead of isfinite, its mask and all
    finite = math.isfinite(np.add.reduce(out)) if samples.dtype.itemsize <= 4 else np.isfinite(out).all()
    if not finite:
        index = int(np.argmax(~np.isfinite(out)))
        raise AudioError(f"audio sample {index} is NaN or infinite")
    return out


class FeatureStream:
    """Streaming features: push 16 kHz samples in chunks of any size, get the new rows.
    ``formants=False``: F1 and F2 are 0 on every row (for a reader that ignores them)."""

    def __init__(self, start_time: float = 0.0, formants: bool = True):
        self.start_time = start_time
        self.formants = formants
        self._buffer = np.zeros(_LEFT_PAD, dtype=np.float64)  # zeros stand in before the start
        self._buffer_row = 0  # row whose window starts at _buffer[0]
        self._received = 0
        self._finished = False

    def push(self, samples16k: np.ndarray) -> AudioFeatures | None:
        """Append samples; returns the rows completed by them, or None if none yet."""
        self.append(samples16k)
        return self.take()

    def append(self, samples16k: np.ndarray) -> None:
        """Append samples without computing their rows yet (`take` does), for a caller that
        needs the rows only now and then: rows computed together cost about what one costs."""
        if self._finished:
            raise AudioError("feature stream already flushed; start a new stream")
        samples = check_samples16k(samples16k)
        self._buffer = np.concatenate([self._buffer, samples])
        self._received += len(samples)

    def rows_complete(self) -> int:
        """How many rows the samples so far complete (taken or not)."""
        pending = (len(self._buffer) - ANALYSIS) // HOP + 1 if len(self._buffer) >= ANALYSIS else 0
        return self._buffer_row + pending

    def take(self) -> AudioFeatures | None:
        """The completed rows not returned yet, or None if there are none."""
        return self._emit(self.rows_complete() - self._buffer_row)

    def flush(self) -> AudioFeatures | None:
        """End of stream: the rows left (one per started 10 ms hop), zero-padded at the end."""
        if self._finished:
            return None
        self._finished = True
        total_rows = -(-self._received // HOP)
        ready = total_rows - self._buffer_row
        if ready <= 0:
            return None
        needed = (ready - 1) * HOP + ANALYSIS
        self._buffer = np.concatenate([self._buffer, np.zeros(max(0, needed - len(self._buffer)))])
        return self._emit(ready)

    def _emit(self, ready: int) -> AudioFeatures | None:
        if ready <= 0:
            return None
        return self._accept(_frames_features(self._windows(ready), self.formants))

    def _windows(self, ready: int) -> np.ndarray:
        """(ready, ANALYSIS) analysis windows of the next ``ready`` rows (a view of the buffer)."""
        span = self._buffer[: (ready - 1) * HOP + ANALYSIS]
        # as_strided, not sliding_window_view: the same view, without ~10 us of checks a call
        return np.lib.stride_tricks.as_strided(span, shape=(ready, ANALYSIS), strides=(HOP * span.strides[0], span.strides[0]),
                                               writeable=False)

    def _accept(self, columns: dict[str, np.ndarray]) -> AudioFeatures:
        """The next rows, computed from ``_windows``: drop their audio, return them."""
        ready = len(columns["loudness_db"])
        row_start = self.start_time + self._buffer_row * FEATURE_HOP_S
        self._buffer = self._buffer[ready * HOP :]
        self._buffer_row += ready
        return AudioFeatures(start_time=row_start, **columns)


def take_many(streams: list[FeatureStream]) -> list[AudioFeatures | None]:
    """``take()`` of several streams in one computation: their windows stacked into one batch,
    so N streams cost about what one costs (each row reads only its own window, so the rows are
    the ones each stream's own ``take`` gives; tests/test_features.py checks it)."""
    ready = [stream.rows_complete() - stream._buffer_row for stream in streams]
    busy = [k for k, count in enumerate(ready) if count > 0]
    out: list[AudioFeatures | None] = [None] * len(streams)
    if not busy:
        return out
    if len(busy) == 1:  # one stream's windows: a view of its buffer
        windows = streams[busy[0]]._windows(ready[busy[0]])
    else:  # every busy stream's samples end to end, each row's window gathered from them in one go
        spans = [streams[k]._buffer[:(ready[k] - 1) * HOP + ANALYSIS] for k in busy]
        windows = np.concatenate(spans)[_window_rows([ready[k] for k in busy])]
    wanted = [streams[k].formants for k in busy]  # rows of streams that read no formants are not root-found
    columns = _frames_features(windows, wanted[0] if len(set(wanted)) == 1 else np.repeat(wanted, [ready[k] for k in busy]))
    first = 0
    for k in busy:
        part = {name: value[first:first + ready[k]] for name, value in columns.items()}
        out[k] = streams[k]._accept(part)
        first += ready[k]
    return out


def _window_rows(ready: list[int]) -> np.ndarray:
    """(sum of ready, ANALYSIS) the sample indices of each row's window in take_many's joined
    spans, for streams with ``ready`` rows each (span k holds (ready[k] - 1) * HOP + ANALYSIS)."""
    counts = np.array(ready)
    span_starts = np.cumsum(np.concatenate([[0], (counts[:-1] - 1) * HOP + ANALYSIS]))
    first_rows = np.cumsum(np.concatenate([[0], counts[:-1]]))
    row_in_span = np.arange(counts.sum()) - np.repeat(first_rows, counts)
    return (np.repeat(span_starts, counts) + HOP * row_in_span)[:, None] + np.arange(ANALYSIS)


def compute_features(samples16k: np.ndarray, start_time: float = 0.0, formants: bool = True) -> AudioFeatures:
    """Features of a whole signal: ceil(n / 160) rows, row i at start_time + i * 0.01 s."""
    stream = FeatureStream(start_time, formants)
    parts = [stream.push(samples16k), stream.flush()]
    return concat_features([part for part in parts if part is not None], start_time)


def concat_features(parts: list[AudioFeatures], start_time: float | None = None) -> AudioFeatures:
    """Join consecutive feature blocks (e.g. streamed rows) into one."""
    if not parts:
        return _empty(start_time or 0.0)
    if len(parts) == 1:
        return parts[0]
    joined = {name: np.concatenate([getattr(part, name) for part in parts]) for name in FEATURE_COLUMNS}
    return AudioFeatures(start_time=parts[0].start_time, **joined)


def slice_features(features: AudioFeatures, first_row: int) -> AudioFeatures:
    """The rows from `first_row` on, with their start time."""
    return split_features(features, first_row)[1]


def split_features(block: AudioFeatures, count: int,
                   rest_start: float | None = None) -> tuple[AudioFeatures, AudioFeatures]:
    """(the first ``count`` rows, the rest): views, no copy. The rest starts at ``rest_start``,
    by default ``block.start_time + count * FEATURE_HOP_S``; a stream passes the time its
    FeatureStream gives that row (``row * FEATURE_HOP_S``), which can differ in the last bits,
    and the cues read a block's start."""
    if rest_start is None:
        rest_start = block.start_time + count * FEATURE_HOP_S
    head = AudioFeatures(start_time=block.start_time, **{name: getattr(block, name)[:count] for name in FEATURE_COLUMNS})
    rest = AudioFeatures(start_time=rest_start, **{name: getattr(block, name)[count:] for name in FEATURE_COLUMNS})
    return head, rest
