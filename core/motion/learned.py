"""The learned motion backend: the rule-based generator with its mouth from a network trained on
real faces (models/audio2face.py), behind the same interface (animate, stream, push_audio,
finish, set_emotion, ...).

Only the lip stage changes: head, blinks, gaze and emotion layers are the rule-based ones and
compose with the learned mouth as before. With text aligned to the audio, the phones' bilabial
closures are applied on top (P, B, M still close the lips fully). Without text no phone decoder
runs at all: the network needs none. A model with Config.phone_classes also reads the aligned
phones' classes (learned_inputs.PHONE_CLASSES) beside the audio rows: offline the whole line's
alignment, streaming what the live aligner has found when each row arrives.

Exact streaming: the network runs incrementally (IncrementalMouth): each layer keeps the past
it needs, rows are fed once as they arrive, and output row i reads feature rows up to i +
lookahead (8 rows, 80 ms, inside the FRAME_REACH_S the stream already waits for). Computed in
float64, so any chunking gives the offline numbers (to ~1e-12).
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from scipy.special import erf

from ..arkit import ARKIT_INDEX, ARKIT_NAMES
from ..audio.features import compute_features, concat_features
from ..numeric import clip as _clip
from ..types import FEATURE_HOP_S, AudioFeatures, Controls, PhoneTimeline
from .cues import CueInputs, last_on_grid, speech_gate
from .generator import FRAME_REACH_S, MotionGenerator, MotionStream
from .learned_inputs import CueWindow, advance_many, timeline_columns, with_rule_columns
from .learned_weights import SHIPPED_WEIGHTS, load_weights
from .line_phones import FixedPhones, LivePhones
from .lips import KEY_SHAPE_TRUST, LipLayer, PhoneTable, apply_closure, key_shape_curve


N_FEATURE_COLUMNS = 47
FORMANT_COLUMNS = [43, 44]  # F1, F2 in feature_matrix: 0 for a network that reads no formants (Config.formants)


def zero_formants(matrix: np.ndarray) -> np.ndarray:
    """``matrix`` (rows of feature_matrix) with F1/F2 set to 0, in place: what a network without
    formants reads, in training, in run_model and streaming."""
    matrix[:, FORMANT_COLUMNS] = 0.0
    return matrix


def feature_matrix(rows: AudioFeatures) -> np.ndarray:
    """AudioFeatures -> (T, 47) float64 network input: log-mel (40), loudness dB, log2 f0 / 100 Hz
    (0 unvoiced), voicing, F1 and F2 in kHz, spectral tilt / 10 dB, zero-crossing rate x 10."""
    f0 = rows.f0_hz.astype(np.float64)
    out = np.empty((len(f0), N_FEATURE_COLUMNS))  # filled column by column: float32 scaled as float32, then widened
    out[:, :40] = rows.log_mel
    out[:, 40] = rows.loudness_db
    out[:, 41] = np.where(f0 > 0, np.log2(np.maximum(f0, 1.0) / 100.0), 0.0)
    out[:, 42] = rows.voicing
    out[:, 43] = rows.f1_hz / 1000.0
    out[:, 44] = rows.f2_hz / 1000.0
    out[:, 45] = rows.spectral_tilt / 10.0
    out[:, 46] = rows.zero_crossing_rate * 10.0
    return out


@lru_cache(maxsize=1)
def silence_row() -> np.ndarray:
    """(47,) the feature row of digital silence: what the network reads past the end of a line."""
    return feature_matrix(compute_features(np.zeros(1600, dtype=np.float32)))[5]


@lru_cache(maxsize=4)
def _cached_model(path: str, mtime_ns: int):
    return load_weights(path)


def load_model(path: str | Path | None = None):
    """The model at ``path`` (default: the shipped weights), loaded once per file version."""
    path = Path(path) if path is not None else SHIPPED_WEIGHTS
    try:
        mtime = path.stat().st_mtime_ns
    except OSError:
        mtime = -1  # load_weights names the problem
    return _cached_model(str(path), mtime)


def run_model(model, matrix: np.ndarray, final: bool, phones: PhoneTimeline | None = None) -> np.ndarray:
    """(T, 47) rows -> (T - lookahead, n_outputs), or (T, n_outputs) when ``final`` (silence
    rows read past the end). Output i belongs to row i. A network without formants
    (Config.formants) reads the rows with F1/F2 zeroed. ``phones``: the line's timeline (its
    aligned phones feed a model with Config.phone_classes; None or other sources: no phones)."""
    lookahead = model.config.lookahead
    if final:
        matrix = np.concatenate([matrix, np.repeat(silence_row()[None], lookahead, axis=0)])
    if len(matrix) <= lookahead:
        return np.zeros((0, model.config.n_outputs))
    if not model.config.formants:  # what it was trained on and streams with (Config.formants)
        matrix = zero_formants(matrix.copy())
    matrix = with_rule_columns(matrix, model.config.rule_cues)
    if model.config.phone_classes:
        matrix = np.concatenate([matrix, line_phone_columns(model, phones, 0, len(matrix))], axis=1)
    with torch.inference_mode():
        out = model(torch.from_numpy(np.ascontiguousarray(matrix))[None])  # (1, T', n_outputs)
    return out[0].numpy()


def line_phone_columns(model, phones: PhoneTimeline | None, first_row: int, count: int) -> np.ndarray:
    """(count, n_phone_columns) the phone inputs of rows first_row.. (learned_inputs.timeline_columns;
    rows before 0: none)."""
    front = min(count, max(0, -first_row))
    if phones is None or front == count:
        return np.zeros((count, model.config.n_phone_columns))
    columns = timeline_columns(phones.phones, phones.source, first_row + front, count - front, model.config.phone_classes)
    return np.concatenate([np.zeros((front, columns.shape[1])), columns]) if front else columns


def mouth_from_outputs(outputs: np.ndarray, names: tuple[str, ...]) -> np.ndarray:
    """Network outputs (T, n) in ``names`` order -> (T, 52) mouth channels; MouthClose from LipGap."""
    mouth = np.zeros((len(outputs), len(ARKIT_NAMES)))
    columns, channels = _output_channels(tuple(names))
    values = _clip(outputs, 0.0, 1.0)
    mouth[:, channels] = values[:, columns]
    if "LipGap" in names and "JawOpen" in names:
        mouth[:, ARKIT_INDEX["MouthClose"]] = _clip(values[:, names.index("JawOpen")] - values[:, names.index("LipGap")], 0.0, 1.0)
    return mouth


@lru_cache(maxsize=8)
def _output_channels(names: tuple[str, ...]) -> tuple[list[int], list[int]]:
    """(output columns, their ARKit channels) for the outputs that are ARKit channels."""
    pairs = [(i, ARKIT_INDEX[name]) for i, name in enumerate(names) if name in ARKIT_INDEX]
    return [i for i, _ in pairs], [channel for _, channel in pairs]


@dataclass(frozen=True)
class NetworkArrays:
    """The network's weights as float64 numpy arrays, laid out for row-major (rows, channels)
    products: streaming feeds one or two rows at a time, where torch's per-op overhead (~20 us a
    call, a dozen calls a push) costs more than the arithmetic."""

    pool: np.ndarray | None  # (40, mel_bands), None: the 40 bands as they are
    input_mean: np.ndarray  # (C',)
    input_std: np.ndarray  # (C',)
    inp: tuple[np.ndarray, np.ndarray]  # (C, W), (W,)
    convs: tuple[tuple[np.ndarray, np.ndarray, int], ...]  # per block: (kernel * W, W) taps stacked, (W,), dilation
    mixes: tuple[tuple[np.ndarray, np.ndarray], ...]  # per block: (W, W), (W,)
    out: tuple[np.ndarray, np.ndarray]  # (W, n_outputs), (n_outputs,)


@lru_cache(maxsize=8)
def network_arrays(model) -> NetworkArrays:
    def pointwise(conv) -> tuple[np.ndarray, np.ndarray]:
        return conv.weight.detach().double().numpy()[:, :, 0].T.copy(), conv.bias.detach().double().numpy().copy()

    convs = []
    for block in model.blocks:
        weight = block.conv.weight.detach().double().numpy()  # (W_out, W_in, kernel)
        stacked = np.concatenate([weight[:, :, k].T for k in range(weight.shape[2])], axis=0)  # (kernel * W_in, W_out)
        convs.append((stacked, block.conv.bias.detach().double().numpy().copy(), block.conv.dilation[0]))
    pool = None if model.config.mel_bands == 40 else model.pool.detach().double().numpy().copy()
    return NetworkArrays(pool, model.input_mean.detach().double().numpy().copy(), model.input_std.detach().double().numpy().copy(),
                         pointwise(model.inp), tuple(convs), tuple(pointwise(b.mix) for b in model.blocks),
                         pointwise(model.out))


def _gelu(x: np.ndarray) -> np.ndarray:
    """torch's default (exact, erf) GELU."""
    return 0.5 * x * (1.0 + erf(x * _SQRT_HALF))


_SQRT_HALF = float(np.sqrt(0.5))
_LOUDNESS_FLOOR = -90.0  # what Audio2Face.relative pads the loudness peak window with


class IncrementalMouth:
    """The network run row by row as rows arrive, each layer keeping just the past it needs
    (kernel - 1) * dilation positions, and the level normalisation its ``context`` rows), so a
    20 ms chunk costs two rows of work, not the whole receptive field. Same numbers as running
    the model on the whole line (float64; only the summation order of a few ops can differ).
    Computed in numpy from ``network_arrays`` (tests/test_motion_learned.py holds it to the torch
    model's whole-line run)."""

    def __init__(self, model):
        self.model = model
        config = model.config
        self._arrays = network_arrays(model)
        self._raw = np.zeros((0, config.n_inputs))  # the last context - 1 raw rows
        self._history = [np.zeros(((config.kernel - 1) * d, config.width)) for d in config.dilations]  # causal zeros
        self.fed = 0  # rows fed so far (absolute index of the next one)
        self.outputs = np.zeros((0, config.n_outputs))  # output row i belongs to feature row i
        self._cues = CueWindow() if config.rule_cues else None

    def feed(self, matrix: np.ndarray, phones: np.ndarray | None = None) -> None:
        """Append (n, n_inputs) rows (and, with Config.phone_classes, the (n, n_phone_columns)
        phone columns read at their positions: those of the rows phone_lag earlier; None: no
        phones); outputs grow by the rows whose lookahead is now complete."""
        feed_many([self], [matrix], None if phones is None else [phones])

    def finish(self) -> None:
        """The line ended: silence rows stand in for the lookahead past its end."""
        self.finish_with(None)

    def finish_with(self, phones: np.ndarray | None) -> None:
        """``finish``, with the phone columns of the silence rows past the end."""
        self.feed(np.repeat(silence_row()[None], self.model.config.lookahead, axis=0), phones)

    def values(self, first_row: int) -> np.ndarray:
        """Outputs from feature row ``first_row`` on (rows before it are dropped)."""
        start = first_row + self.model.config.lookahead  # causal position of that row's output
        kept = self.fed - len(self.outputs)
        out = self.outputs[start - kept:]
        self.outputs = self.outputs[max(0, start - kept - 4):]  # keep a little for interpolation
        return out


def feed_many(mouths: list[IncrementalMouth], matrices: list[np.ndarray], phones: list[np.ndarray | None] | None = None) -> None:
    """``feed`` of several mouths at once (a sidecar steps every talking session together): each
    layer's products run once over all the streams' new rows, where one stream's two rows a push
    would mostly pay numpy's per-call overhead. Mouths of different models are fed model by model.
    ``phones``: each stream's phone columns for its rows (None: no phones, zeros)."""
    by_model: dict[int, list[tuple[IncrementalMouth, np.ndarray, np.ndarray | None]]] = {}
    for mouth, matrix, columns in zip(mouths, matrices, phones or [None] * len(mouths)):
        if len(matrix):
            by_model.setdefault(id(mouth._arrays), []).append((mouth, matrix, columns))
    for group in by_model.values():
        _feed_group([g[0] for g in group], [g[1] for g in group], [g[2] for g in group])


def _feed_group(mouths: list[IncrementalMouth], matrices: list[np.ndarray], phones: list[np.ndarray | None]) -> None:
    arrays, config = mouths[0]._arrays, mouths[0].model.config
    bounds = np.cumsum([0] + [len(matrix) for matrix in matrices])
    if config.context > 0:
        x = relative_many(mouths, matrices)
    else:
        x = np.concatenate([np.asarray(matrix, dtype=np.float64) for matrix in matrices])
    if config.rule_cues:
        cue_end = len(arrays.input_mean) - config.n_phone_columns  # the cue columns come before the phones'
        x = np.concatenate([x, _late_cues(mouths, matrices, arrays.input_mean[cue_end - config.rule_cues:cue_end])], axis=1)
    if arrays.pool is not None:  # Config.mel_bands: the 40 log-mel bands averaged into fewer
        x = np.concatenate([x[:, :40] @ arrays.pool, x[:, 40:]], axis=1)
    if config.phone_classes:
        x = np.concatenate([x, np.concatenate([np.zeros((len(m), config.n_phone_columns)) if p is None else p
                                               for m, p in zip(matrices, phones)])], axis=1)
    x = ((x - arrays.input_mean) / arrays.input_std) @ arrays.inp[0] + arrays.inp[1]  # (N, W)
    layout = tuple(bounds.tolist())
    for i, ((taps, bias, dilation), (mix, mix_bias)) in enumerate(zip(arrays.convs, arrays.mixes)):
        kernel, pad = taps.shape[0] // x.shape[1], len(mouths[0]._history[i])
        # every stream's kept past, then its new rows, end to end: stream k's segment starts at
        # pad * k + bounds[k], and its row r (overall) reads taps at pad * k + r + dilation * tap
        padded = np.concatenate([part for mouth, first, end in zip(mouths, bounds[:-1], bounds[1:])
                                 for part in (mouth._history[i], x[first:end])])  # (S * pad + N, W)
        for k, (mouth, end) in enumerate(zip(mouths, bounds[1:])):
            mouth._history[i] = padded[pad * k + end: pad * (k + 1) + end]
        reads = _tap_rows(layout, pad, dilation, kernel)  # (N, kernel)
        stacked = padded[reads].reshape(len(x), kernel * x.shape[1])  # taps side by side, as the weights stack them
        x = x + _gelu(stacked @ taps + bias) @ mix + mix_bias  # (N, W)
    y = _gelu(x) @ arrays.out[0] + arrays.out[1]  # (N, n_outputs), causal positions fed..fed+n-1 of each
    for mouth, first, end in zip(mouths, bounds[:-1], bounds[1:]):
        mouth.fed += end - first
        mouth.outputs = np.concatenate([mouth.outputs, y[first:end]])


def relative_many(mouths: list[IncrementalMouth], matrices: list[np.ndarray]) -> np.ndarray:
    """Audio2Face.relative of every mouth's new rows (one model's mouths), joined in order: log-mel
    minus its mean over the row's last ``context`` rows, loudness minus their peak (windows
    reaching before a line's start: its rows only, and the loudness floor). Each mouth's kept raw
    rows, then its new rows, sit in one block of ``context - 1 + n`` rows (zero mel and the floor's
    loudness in front of a young line), so new row j's window is rows j.. j + context - 1 of its
    block, for every stream in one gather. Sums run over the window's rows in order, as a slice of
    each would (leading zero rows change no sum)."""
    context = mouths[0].model.config.context
    front = context - 1
    blocks, counts = [], []
    for mouth, matrix in zip(mouths, matrices):
        kept = len(mouth._raw)
        if kept < front:
            blocks.append(_window_padding(front - kept, mouth._raw.shape[1]))
        blocks += [mouth._raw, matrix]
    joined = np.concatenate(blocks)
    lengths = tuple(len(matrix) for matrix in matrices)
    end = 0
    for mouth, n in zip(mouths, lengths):
        end += front + n
        mouth._raw = joined[end - min(front, len(mouth._raw) + n):end]
        counts.append(mouth.fed)
    starts, position = _window_starts(lengths, front)  # (N,) each new row's window start; its place in its line's new rows
    counts = np.minimum(np.repeat(counts, lengths) + position + 1, context)  # real rows in each window
    x = joined[starts + front]  # the new rows themselves
    mel_sums, peak = np.empty((len(x), 40)), np.empty(len(x))
    for lo in range(0, len(x), 256):  # a whole line at once gathers its windows a slice at a time
        window = starts[lo:lo + 256, None] + np.arange(context)
        mel_sums[lo:lo + 256] = joined[window, :40].sum(axis=1)
        peak[lo:lo + 256] = joined[window, 40].max(axis=1)
    return np.concatenate([x[:, :40] - mel_sums / counts[:, None], (x[:, 40] - peak)[:, None], x[:, 41:]], axis=1)


@lru_cache(maxsize=8)
def _window_padding(rows: int, columns: int) -> np.ndarray:
    """Rows standing in before a line's first row: log-mel 0 (adds nothing to a sum), loudness at
    the floor (what Audio2Face.relative pads its peak window with)."""
    pad = np.zeros((rows, columns))
    pad[:, 40] = _LOUDNESS_FLOOR
    pad.flags.writeable = False
    return pad


@lru_cache(maxsize=64)
def _window_starts(lengths: tuple[int, ...], front: int) -> tuple[np.ndarray, np.ndarray]:
    """relative_many's window starts for streams with ``lengths`` new rows (blocks of front + n
    rows end to end), and each row's index among its stream's new rows (cached: streams step with
    the same few rows again and again)."""
    lengths_array = np.array(lengths, dtype=np.int64)
    block_starts = np.cumsum(np.concatenate([[0], front + lengths_array[:-1]]))
    first_rows = np.cumsum(np.concatenate([[0], lengths_array[:-1]]))
    position = np.arange(int(lengths_array.sum())) - np.repeat(first_rows, lengths_array)
    starts = np.repeat(block_starts, lengths_array) + position
    starts.flags.writeable = position.flags.writeable = False
    return starts, position


@lru_cache(maxsize=64)
def _tap_rows(bounds: tuple[int, ...], pad: int, dilation: int, kernel: int) -> np.ndarray:
    """(N, kernel) the rows of ``padded`` (in _feed_group) each new row's taps read, for streams
    whose new rows end at ``bounds[1:]`` (streams step with the same few rows again and again: cached)."""
    stream_of_row = np.repeat(np.arange(len(bounds) - 1), np.diff(bounds))
    reads = (np.arange(bounds[-1]) + pad * stream_of_row)[:, None] + dilation * np.arange(kernel)
    reads.flags.writeable = False
    return reads


def _late_cues(mouths: list[IncrementalMouth], matrices: list[np.ndarray], mean: np.ndarray) -> np.ndarray:
    """(N, rule_cues) the cue columns each new row carries: those of the row ``lookahead`` earlier
    (Audio2Face.forward); before the first such row, the training mean (zero once normalised)."""
    advance_many([mouth._cues for mouth in mouths], matrices)
    lookahead, blocks = mouths[0].model.config.lookahead, []
    for mouth, matrix in zip(mouths, matrices):
        early = min(len(matrix), max(0, lookahead - mouth.fed))  # positions before the first cue row
        blocks += [np.repeat(mean[None], early, axis=0), mouth._cues.take(len(matrix) - early)]
    return np.concatenate(blocks)


class LearnedMotionStream(MotionStream):
    """MotionStream whose lip stage is the network (plus aligned bilabial closures)."""

    MOUTH_READS_CUES = False  # the network reads feature rows (and its own CueWindow), not the stream's cues

    def __init__(self, controls: Controls, phones, model):
        self.model = model  # before the stream's features are made: whether they need formants
        super().__init__(controls, phones)
        self._mouth = IncrementalMouth(model)
        self._mouth_finished = False
        ahead_s = (model.config.lookahead + 1) * FEATURE_HOP_S  # interpolation reads the next row too
        assert ahead_s <= FRAME_REACH_S + 1e-9, "the stream must wait for the rows the network reads"

    def _reads_formants(self) -> bool:
        """F1/F2 are read by a network with Config.formants and by acoustic phones; otherwise the
        features skip them (a network without them, rule-cue columns included, reads zeros there,
        as in training)."""
        return self.model.config.formants or super()._reads_formants()

    def _add_rows(self, rows: AudioFeatures | None) -> None:
        self._add_rows_many([self], [rows])

    @staticmethod
    def _add_rows_many(streams: list[LearnedMotionStream], rows: list[AudioFeatures | None]) -> None:
        """New rows for several learned streams: their network inputs in one matrix, their
        networks fed together (feed_many)."""
        fed = [(stream, part) for stream, part in zip(streams, rows) if part is not None and part.num_frames]
        if fed:
            joined = concat_features([part for _, part in fed])
            matrix = feature_matrix(joined)
            bounds = np.cumsum([0] + [part.num_frames for _, part in fed]).tolist()
            spans = list(zip(bounds[:-1], bounds[1:]))  # each stream's rows (slices: np.split's views, without its overhead)
            for (stream, _), (first, end) in zip(fed, spans):
                if stream._features.formants and not stream.model.config.formants:  # computed for acoustic phones
                    zero_formants(matrix[first:end])
            cue_columns = CueInputs.of(joined).matrix  # made once for all
            for (stream, part), (first, end) in zip(fed, spans):
                stream._keep_rows(CueInputs(float(part.start_time), cue_columns[first:end]))
            phones = [stream._phone_columns(stream._mouth.fed, part.num_frames) for stream, part in fed]
            matrices = [matrix[first:end] for first, end in spans]
            feed_many([stream._mouth for stream, _ in fed], matrices, phones)  # rows arrive in order, each once

    def _phone_columns(self, first_row: int, count: int) -> np.ndarray | None:
        """The phone inputs at positions first_row.. (the phones of the rows Config.phone_lag
        earlier) from the phones known now: streaming with text reads what the live aligner has
        found when the rows arrive. None: the model reads none."""
        if not self.model.config.phone_classes:
            return None
        phones, source = self._phones.current()
        return line_phone_columns(self.model, PhoneTimeline(phones, source), first_row - self.model.config.phone_lag, count)

    def _lip_layer(self, times: np.ndarray, cues, phones: PhoneTable, source: str) -> LearnedLipRows:
        if self._finished and not self._mouth_finished:  # every real row is in: read silence past the end
            self._mouth.finish_with(self._phone_columns(self._mouth.fed, self.model.config.lookahead))
            self._mouth_finished = True
        first = max(0, int(np.floor(times[0] / FEATURE_HOP_S - 0.5)))
        closure = None
        if source == "aligned":  # the text's own bilabials: full closures at the aligned times
            closure = KEY_SHAPE_TRUST["aligned"][0] * key_shape_curve(times, phones, phones.bilabial)
        return LearnedLipRows(times, first, self._mouth.values(first), self.model.config.outputs, closure,
                              speech_gate(times, cues))


@dataclass(frozen=True)
class LearnedLipRows:
    """The network's output rows around a run of one stream's frames; the lip layers of many
    streams' frames are interpolated from them in one pass (``layers_many``, from compose_frames)."""

    times: np.ndarray  # (T,) frame times
    first_row: int  # feature row of outputs[0]
    outputs: np.ndarray  # (R, n_outputs)
    names: tuple[str, ...]  # the outputs' names (Config.outputs)
    closure: np.ndarray | None  # (T,) aligned bilabial closures; None without aligned text
    gate: np.ndarray  # (T,) speech_gate: 1 near speech, 0 in silence (the mouth rests)

    @staticmethod
    def layers_many(parts: list[LearnedLipRows]) -> list[LipLayer]:
        """Each part's LipLayer: its outputs interpolated at its frame times (row centres), the
        mouth channels from them, aligned closures on top (each frame on its own)."""
        out: list[LipLayer | None] = [None] * len(parts)
        by_names: dict[tuple[str, ...], list[int]] = {}
        for k, part in enumerate(parts):
            by_names.setdefault(part.names, []).append(k)
        for names, group in by_names.items():
            values = _interp_rows([parts[k] for k in group])
            mouth = mouth_from_outputs(values, names)
            open_lips = np.zeros(len(mouth))  # mouth_from_outputs' channels are already inside [0, 1]
            start = 0
            mouth *= np.concatenate([parts[k].gate for k in group])[:, None]
            for k in group:
                part, end = parts[k], start + len(parts[k].times)
                if part.closure is None:
                    out[k] = LipLayer(mouth=mouth[start:end], closure=open_lips[start:end])
                else:
                    out[k] = LipLayer(mouth=_clip(apply_closure(mouth[start:end], part.closure), 0.0, 1.0), closure=part.closure)
                start = end
        return out


def _interp_rows(parts: list[LearnedLipRows]) -> np.ndarray:
    """(sum of T, n_outputs) each part's outputs interpolated at its frame times, row i of a part
    at its centre (first_row + i + 0.5) * FEATURE_HOP_S: np.interp's numbers, every part and column in one
    pass (rows found on their grid)."""
    if len(parts) == 1:  # one stream stepping alone (a frame or two): per frame in Python floats
        return _interp_one(parts[0])
    counts = [len(part.times) for part in parts]
    part_of = np.repeat(np.arange(len(parts)), counts)
    rows = np.array([len(part.outputs) for part in parts])[part_of]
    first = np.array([part.first_row for part in parts], dtype=np.int64)[part_of]
    offset = np.cumsum([0] + [len(part.outputs) for part in parts[:-1]])[part_of]
    x = np.concatenate([part.times for part in parts])

    def centre(j: np.ndarray) -> np.ndarray:  # as (first_row + np.arange(R) + 0.5) * FEATURE_HOP_S
        return ((first + j).astype(np.float64) + 0.5) * FEATURE_HOP_S

    j = last_on_grid(x, rows, centre, np.floor(x / FEATURE_HOP_S - 0.5) - first)
    below, above = j < 0, j >= rows - 1  # held at the ends
    j = np.clip(j, 0, np.maximum(rows - 2, 0))
    j_next = np.minimum(j + 1, rows - 1)
    lo, hi = centre(j), centre(j_next)
    fp = np.concatenate([part.outputs for part in parts])
    y0, y1 = fp[offset + j], fp[offset + j_next]
    width = np.where(hi > lo, hi - lo, 1.0)[:, None]  # 1: a one-row part, held, never interpolated
    values = np.where((x == lo)[:, None], y0, (y1 - y0) / width * (x - lo)[:, None] + y0)
    return np.where(below[:, None], fp[offset], np.where(above[:, None], fp[offset + rows - 1], values))


def _interp_one(part: LearnedLipRows) -> np.ndarray:
    """_interp_rows of one part, frame by frame: np.interp's own steps (its binary search's row,
    the end rows held, a row's value on its centre, else slope * (x - x0) + y0) in Python floats,
    the same IEEE operations, for every column of a frame at once."""
    rows = len(part.outputs)
    centres = ((part.first_row + np.arange(rows) + 0.5) * FEATURE_HOP_S).tolist()
    out = []
    for x in part.times.tolist():
        j = bisect.bisect_right(centres, x) - 1  # the last centre at or before x
        if j < 0 or j >= rows - 1 or centres[j] == x:
            out.append(part.outputs[min(max(j, 0), rows - 1)])
            continue
        low, high = centres[j], centres[j + 1]
        out.append([(y1 - y0) / (high - low) * (x - low) + y0
                    for y0, y1 in zip(part.outputs[j].tolist(), part.outputs[j + 1].tolist())])
    return np.array(out, dtype=np.float64).reshape(len(out), part.outputs.shape[1])


class LearnedMotionGenerator(MotionGenerator):
    """MotionGenerator with the learned mouth. ``weights``: a safetensors file, default shipped."""

    def __init__(self, controls: Controls = Controls(), weights: str | Path | None = None):
        super().__init__(controls)
        self.model = load_model(weights)

    def animate(self, audio, text=None, emotions=(), gazes=()):
        if text is None:  # no phones needed: the network reads the audio alone
            return self.animate_with_phones(audio, _no_phones(self.controls.language), emotions, gazes)
        return super().animate(audio, text, emotions, gazes)

    def stream(self, text: str | None = None) -> LearnedMotionStream:
        if text is None:
            return self.stream_with_phones(_no_phones(self.controls.language))
        return LearnedMotionStream(self.controls, LivePhones(text, self.controls.language), self.model)

    def stream_with_phones(self, timeline: PhoneTimeline) -> LearnedMotionStream:
        if self.model.config.phone_classes:  # bad phones fail here, before any audio
            line_phone_columns(self.model, timeline, 0, 0)
        return LearnedMotionStream(self.controls, FixedPhones(timeline), self.model)


def _no_phones(language: str) -> PhoneTimeline:
    return PhoneTimeline(phones=(), source="acoustic", language=language)
