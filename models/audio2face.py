"""Audio -> mouth: a small dilated causal convolution network over the 10 ms feature rows.

Output row t sees input rows t - receptive_back .. t + lookahead and nothing else, so
- streaming is exact: a stream that holds those rows computes the same numbers as the whole line;
- latency is bounded: lookahead rows of future audio (8 rows = 80 ms, under the 100 ms allowed).

The network is causal over its input; the lookahead is a shift: output t is the causal output at
t + lookahead. Inputs are normalised by buffers (feature mean / std of the training data) that
travel with the weights. Outputs are the ARKit channels capture measures honestly, in OUTPUTS
order, plus LipGap (JawOpen - MouthClose, what a camera sees).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn as nn
import torch.nn.functional as F

# Predicted channels. LipGap is not an ARKit name: MouthClose = max(JawOpen - LipGap, 0).
OUTPUTS = ("JawOpen", "LipGap", "MouthFunnel", "MouthPucker", "MouthStretchLeft", "MouthStretchRight",
           "MouthSmileLeft", "MouthSmileRight")
# Rows of future audio a network may read: a stream waits for its rows up to 90 ms ahead
# (core/motion/generator.FRAME_REACH_S: the lookahead and the next row the lip interpolation
# reads), within the 100 ms, so streaming latency stays within 120 ms.
MAX_LOOKAHEAD_ROWS = 8


@dataclass
class Config:
    n_inputs: int = 47  # feature columns per row (core/motion/learned.feature_matrix)
    width: int = 64  # channels of every hidden layer
    kernel: int = 3
    dilations: tuple[int, ...] = (1, 2, 4)  # 140 ms of past (the shipped recipe: chosen on the tuning videos)
    lookahead: int = 8  # rows of future audio (10 ms each)
    context: int = 100  # rows (1 s) of past over which levels are made relative (0: raw levels)
    dropout: float = 0.1  # on each block's hidden activations, while training only
    mel_bands: int = 40  # the 40 log-mel bands averaged into this many wider ones (coarser: less voice detail)
    # columns of the rule generator's cues after the n_inputs feature columns (0: none; else
    # core/motion/learned_inputs.RULE_COLUMNS), read ``lookahead`` rows late: a cue already reads
    # 80 ms ahead, so output i sees the cues of rows up to i and the features up to i + lookahead
    rule_cues: int = 0
    # articulatory classes of the aligned text's phones (0: none; else the number of
    # core/motion/learned_inputs.PHONE_CLASSES): that many one-hot columns plus a "phones present"
    # column, last, read with the audio row they belong to (so ``lookahead`` rows ahead, like it)
    phone_classes: int = 0
    # rows by which the phone columns are read late: row j's phones at position j + phone_lag, so
    # a live aligner has phone_lag more rows of audio to place them (phones lookahead - phone_lag
    # rows ahead of the output)
    phone_lag: int = 0
    # whether the network reads F1 and F2 (feature columns 43, 44). False: they are 0 in training
    # and when streaming, and a stream computes none (their LPC root-finding is about half of the
    # cost of a voiced feature row; the log-mel carries the vowel's shape anyway)
    formants: bool = True
    n_outputs: int = len(OUTPUTS)
    outputs: tuple[str, ...] = field(default=OUTPUTS)

    def __post_init__(self):
        for name in ("n_inputs", "width", "kernel", "lookahead", "context", "mel_bands", "rule_cues",
                     "phone_classes", "phone_lag", "n_outputs"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"{name} must be a whole number, got {value!r}")
        if self.n_inputs != 47:
            raise ValueError(f"n_inputs must be 47 (the feature columns of core/motion/learned_inputs), got {self.n_inputs}")
        if self.width < 1 or self.kernel < 1 or self.context < 0:
            raise ValueError(f"width and kernel must be >= 1 and context >= 0, got {self.width}, {self.kernel}, {self.context}")
        if not (isinstance(self.dilations, tuple) and self.dilations
                and all(isinstance(d, int) and not isinstance(d, bool) and d >= 1 for d in self.dilations)):
            raise ValueError(f"dilations must be a non-empty list of whole numbers >= 1, got {self.dilations!r}")
        if not 0 <= self.lookahead <= MAX_LOOKAHEAD_ROWS:
            raise ValueError(f"lookahead must be 0..{MAX_LOOKAHEAD_ROWS} rows (10 ms each), got {self.lookahead}")
        if not isinstance(self.formants, bool):
            raise ValueError(f"formants must be true or false, got {self.formants!r}")
        if not (isinstance(self.dropout, (int, float)) and 0 <= self.dropout < 1):
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")
        if not set(self.outputs) <= set(OUTPUTS) or len(set(self.outputs)) != len(self.outputs) \
                or self.n_outputs != len(self.outputs):
            raise ValueError(f"outputs must be distinct names from {OUTPUTS} and n_outputs their count, "
                             f"got {self.n_outputs} {self.outputs!r}")
        if not 1 <= self.mel_bands <= 40:
            raise ValueError(f"mel_bands must be 1..40, got {self.mel_bands}")
        if self.rule_cues < 0:
            raise ValueError(f"rule_cues must be >= 0, got {self.rule_cues}")
        if self.phone_classes < 0:
            raise ValueError(f"phone_classes must be >= 0, got {self.phone_classes}")
        if not 0 <= self.phone_lag <= self.lookahead:
            raise ValueError(f"phone_lag must be 0..lookahead ({self.lookahead}), got {self.phone_lag}")

    @property
    def n_phone_columns(self) -> int:
        """The phone classes' one-hot columns and the "phones present" flag (0 without phones)."""
        return self.phone_classes + 1 if self.phone_classes else 0

    @property
    def n_network_inputs(self) -> int:
        """Columns after the mel pooling: what the first layer reads."""
        return self.n_inputs - 40 + self.mel_bands + self.rule_cues + self.n_phone_columns

    @property
    def receptive_back(self) -> int:
        """Rows before the output row's own (shifted) position that can change it."""
        return sum((self.kernel - 1) * d for d in self.dilations) + self.context - self.lookahead

    def to_dict(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @staticmethod
    def from_dict(values: dict) -> "Config":
        known = {f for f in Config.__dataclass_fields__}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}")
        return Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def mel_pooling(bands: int) -> torch.Tensor:
    """(40, bands) float64: column b averages an equal run of adjacent mel bands."""
    edges = torch.linspace(0, 40, bands + 1).round().long()
    pool = torch.zeros(40, bands, dtype=torch.float64)
    for b in range(bands):
        pool[edges[b]:edges[b + 1], b] = 1.0 / float(edges[b + 1] - edges[b])
    return pool


class CausalBlock(nn.Module):
    """Dilated causal conv + GELU + pointwise conv, residual."""

    def __init__(self, width: int, kernel: int, dilation: int, dropout: float = 0.0):
        super().__init__()
        self.pad = (kernel - 1) * dilation
        self.conv = nn.Conv1d(width, width, kernel, dilation=dilation)
        self.mix = nn.Conv1d(width, width, 1)
        self.dropout = nn.Dropout(dropout)  # no weights: eval mode (and the numpy stream) skip it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(F.pad(x, (self.pad, 0)))  # (B, W, T)
        return x + self.mix(self.dropout(F.gelu(h)))  # (B, W, T)


class Audio2Face(nn.Module):
    def __init__(self, config: Config):
        super().__init__()
        self.config = config
        self.register_buffer("input_mean", torch.zeros(config.n_network_inputs))
        self.register_buffer("input_std", torch.ones(config.n_network_inputs))
        self.register_buffer("pool", mel_pooling(config.mel_bands), persistent=False)  # fixed, from the config
        self.inp = nn.Conv1d(config.n_network_inputs, config.width, 1)
        self.blocks = nn.ModuleList(CausalBlock(config.width, config.kernel, d, config.dropout) for d in config.dilations)
        self.out = nn.Conv1d(config.width, config.n_outputs, 1)

    def relative(self, rows: torch.Tensor) -> torch.Tensor:
        """Make levels relative to the recent past, so the microphone, room and gain matter less:
        log-mel minus its mean over the last ``context`` rows (a running channel normalisation)
        and loudness minus its running maximum (the speaker's recent peak). Each window is pooled
        on its own, so where the rows start does not change a value whose window is complete."""
        context = self.config.context
        if context <= 0:
            return rows
        mel = rows[..., :40].transpose(1, 2)  # (B, 40, T)
        padded = F.pad(mel, (context - 1, 0))  # (B, 40, T+context-1)
        ones = F.pad(torch.ones_like(mel[:, :1]), (context - 1, 0))  # (B, 1, T+context-1)
        mean = F.avg_pool1d(padded, context, stride=1) / F.avg_pool1d(ones, context, stride=1)  # (B, 40, T)
        loud = rows[..., 40:41].transpose(1, 2)  # (B, 1, T)
        peak = F.max_pool1d(F.pad(loud, (context - 1, 0), value=-90.0), context, stride=1)  # (B, 1, T)
        return torch.cat([(mel - mean).transpose(1, 2), (loud - peak).transpose(1, 2), rows[..., 41:]], dim=-1)

    def inputs(self, rows: torch.Tensor) -> torch.Tensor:
        """(B, T, n_inputs + rule_cues + n_phone_columns) raw rows -> (B, T, n_network_inputs):
        relative levels, mel bands pooled (cue and phone columns pass through)."""
        x = self.relative(rows)
        if self.config.mel_bands == 40:
            return x
        return torch.cat([x[..., :40] @ self.pool.to(x.dtype), x[..., 40:]], dim=-1)

    def forward(self, rows: torch.Tensor) -> torch.Tensor:
        """rows (B, T + lookahead, n_inputs + rule_cues + n_phone_columns) raw features (then
        cues, then phone columns), where row i + lookahead is the future of output i ->
        (B, T, n_outputs). Rows before the first are taken as zeros after normalisation (the
        mean), i.e. the network starts from an average past."""
        phones, lag = self.config.n_phone_columns, self.config.phone_lag
        if phones and lag:  # phone row j moves to position j + phone_lag; before the first: none (zeros)
            late = F.pad(rows[..., -phones:], (0, 0, lag, 0))[:, :rows.shape[1]]  # (B, T+L, phones)
            rows = torch.cat([rows[..., :-phones], late], dim=-1)  # (B, T+L, C)
        x = (self.inputs(rows) - self.input_mean) / self.input_std  # (B, T+L, C')
        cues, lookahead = self.config.rule_cues, self.config.lookahead
        if cues and lookahead:  # cue row j moves to position j + lookahead (its own output's)
            end = x.shape[-1] - self.config.n_phone_columns  # the cue columns end here
            late = F.pad(x[..., end - cues:end], (0, 0, lookahead, 0))[:, :x.shape[1]]  # (B, T+L, cues)
            x = torch.cat([x[..., :end - cues], late, x[..., end:]], dim=-1)  # (B, T+L, C')
        x = self.inp(x.transpose(1, 2))  # (B, W, T+L)
        for block in self.blocks:
            x = block(x)  # (B, W, T+L)
        y = self.out(F.gelu(x))  # (B, n_outputs, T+L)
        return y[:, :, self.config.lookahead:].transpose(1, 2)  # (B, T, n_outputs)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
