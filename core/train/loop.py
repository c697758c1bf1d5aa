"""Training the learned mouth (models/audio2face.py) on clips from core/train/data.py.

Deterministic and resumable: the weights start from torch.manual_seed(seed); the batch of step
k is drawn from numpy's generator seeded (seed, k), so it does not depend on what ran before;
a checkpoint (safetensors: model, Adam moments, step, loss history) every ``checkpoint_every``
steps lets a killed run resume and finish with the same numbers as an uninterrupted one.
Torch runs single-threaded-deterministic (``threads`` fixed, deterministic algorithms on).
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ...models.audio2face import OUTPUTS, Audio2Face, Config
from ..motion.learned_inputs import CUE_BACK_ROWS, phone_columns, rule_columns_many, with_rule_columns
from ..motion.learned_weights import ModelError, network_config, save_weights
from .augment import AugmentConfig, augment_clip
from .data import Clip, align_targets, without_formants

# Loss weight per output channel: the lip gap and the jaw are what viewers judge.
CHANNEL_WEIGHTS = {"JawOpen": 2.0, "LipGap": 2.0}
OTHER_WEIGHT = 0.5
VELOCITY_WEIGHT = 4.0  # frame-to-frame change matters: a late or smeared opening looks wrong
CORRELATED = ("JawOpen", "LipGap")  # the curves the correlation term judges (what the benches measure)


@dataclass
class TrainConfig:
    steps: int = 3000
    batch: int = 32
    window: int = 200  # rows (2 s) per training example
    learning_rate: float = 2e-3
    seed: int = 0
    checkpoint_every: int = 250
    threads: int = 2
    gain_jitter_db: float = 12.0  # random level change per example: mic gain must not matter
    tilt_jitter: float = 1.5  # random spectral tilt (natural log units across the mel bands)
    augment: dict | None = None  # AugmentConfig overrides ({}: the defaults); None: no augmentation
    align_speakers: bool = False  # shift each speaker's targets by its measured A/V offset
    target_lead_ms: float = 0.0  # then teach the mouth to move this much before the sound
    # weight of (1 - Pearson r) per example on the CORRELATED channels beside the MSE: the benches
    # judge the shape of the lip gap over a clip, not its scale
    correlation_weight: float = 0.0
    # with Config.phone_classes: the share of examples trained without their phones (zeros, flag
    # 0), so one model serves lines with and without text
    phone_dropout: float = 0.5
    model: dict = field(default_factory=dict)  # Config overrides

    def __post_init__(self):
        network_config(self.model)  # a bad model section fails here, not after an hour of training

    @staticmethod
    def from_dict(values: dict) -> "TrainConfig":
        unknown = set(values) - set(TrainConfig.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown training config keys {sorted(unknown)}")
        return TrainConfig(**values)


@dataclass
class TrainState:
    step: int
    train_loss: list[float]  # mean loss per checkpoint interval
    val_loss: list[float]
    seconds: float


def _deterministic(threads: int) -> None:
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)


def _loss(model: Audio2Face, features: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor,
          weights: torch.Tensor, correlation_weight: float = 0.0) -> torch.Tensor:
    """features (B, T + L, C), targets (B, T, n), mask (B, T) -> weighted MSE of values and of
    velocities over the masked rows (the rest is context the outputs may read but not be judged on),
    plus ``correlation_weight`` x mean (1 - r) of each example's CORRELATED channels."""
    out = model(features)  # (B, T, n)
    m = mask[..., None]  # (B, T, 1)
    error = ((out - targets) ** 2 * weights * m).sum() / (m.sum() * len(weights))
    mv = m[:, 1:] * m[:, :-1]  # (B, T-1, 1)
    velocity = (((out[:, 1:] - out[:, :-1]) - (targets[:, 1:] - targets[:, :-1])) ** 2 * weights * mv).sum()
    loss = error + VELOCITY_WEIGHT * velocity / (mv.sum() * len(weights))
    if correlation_weight > 0:
        loss = loss + correlation_weight * (1.0 - _masked_pearson(out, targets, m, model.config.outputs).mean())
    return loss


def _masked_pearson(out: torch.Tensor, targets: torch.Tensor, m: torch.Tensor, outputs: tuple[str, ...]) -> torch.Tensor:
    """(B, k) Pearson r over the masked rows of each example's CORRELATED channels; a flat target
    (silence) counts as r = 1 so it neither helps nor hurts."""
    index = [outputs.index(name) for name in CORRELATED if name in outputs]
    a, b = out[..., index], targets[..., index]  # (B, T, k)
    count = m.sum(dim=1).clamp(min=1.0)  # (B, 1)
    a = (a - (a * m).sum(dim=1, keepdim=True) / count[:, None]) * m
    b = (b - (b * m).sum(dim=1, keepdim=True) / count[:, None]) * m
    var_a, var_b = (a * a).sum(dim=1), (b * b).sum(dim=1)  # (B, k)
    r = (a * b).sum(dim=1) / torch.sqrt(var_a * var_b + 1e-8)
    return torch.where(var_b > 1e-6, r, torch.ones_like(r))


def _batch(clips: list[Clip], config: TrainConfig, step: int, model_config: Config):
    """A batch of examples: ``window`` judged rows each, preceded by up to receptive_back rows of
    real context (as a stream has it mid-line; none at a clip's start, as at a line's start).
    With Config.rule_cues, each example's cue columns are computed from its augmented rows with
    the CUE_BACK_ROWS before them, as a stream has them. With Config.phone_classes, a clip's
    phone classes are warped with its rows (augmentation's speed) and dropped (zeros, flag 0) on
    ``phone_dropout`` of the examples; clips without text never have them."""
    rng = np.random.default_rng([config.seed, step])
    lookahead = model_config.lookahead
    pre = model_config.receptive_back + lookahead
    cue_back = CUE_BACK_ROWS if model_config.rule_cues else 0
    lengths = np.array([len(c.features) for c in clips], dtype=np.float64)
    picks = rng.choice(len(clips), size=config.batch, p=lengths / lengths.sum())
    n_in, n_out = clips[0].features.shape[1], clips[0].targets.shape[1]
    n_phone = model_config.n_phone_columns
    span = pre + config.window
    augment = AugmentConfig.from_dict(config.augment) if config.augment is not None else None
    features = np.zeros((config.batch, span + lookahead, n_in + model_config.rule_cues + n_phone), np.float32)
    targets = np.zeros((config.batch, span, n_out), np.float32)
    mask = np.zeros((config.batch, span), np.float32)
    wide, wide_firsts = [], []  # each example's rows with the cues' back context before them
    for b, index in enumerate(picks):
        clip_features, clip_targets = clips[index].features, clips[index].targets
        if n_phone:  # the phones ride along as extra columns, so speed changes warp them too
            onehot = clip_phone_columns(clips[index], len(clip_features), model_config.phone_classes).astype(np.float32)
            clip_features = np.concatenate([clip_features, onehot], axis=1)
        if augment is not None:
            clip_features, clip_targets = augment_clip(clip_features, clip_targets, rng, augment)
        start = int(rng.integers(0, max(0, len(clip_features) - config.window) + 1))
        first = max(0, start - pre)
        back = min(first, cue_back)
        rows = np.zeros((back + span + lookahead, n_in + n_phone), np.float32)
        got = clip_features[first - back:start + config.window + lookahead]
        rows[:len(got)] = got
        rows[len(got):] = clip_features[-1]  # past the clip's end: hold its last (quiet) row
        wanted = clip_targets[first:start + config.window]
        targets[b, :len(wanted)] = wanted
        mask[b, start - first:len(wanted)] = 1.0
        gain = rng.uniform(-config.gain_jitter_db, config.gain_jitter_db)
        rows[:, :40] += gain * np.log(10) / 10  # log-mel is natural log of power
        rows[:, 40] = np.maximum(rows[:, 40] + gain, -90.0)  # loudness dB
        tilt = rng.uniform(-config.tilt_jitter, config.tilt_jitter)  # a different microphone / room
        rows[:, :40] += tilt * (np.arange(40) / 39 - 0.5)
        if n_phone and rng.uniform() < config.phone_dropout:
            rows[:, n_in:] = 0.0
        features[b, :, :n_in] = rows[back:, :n_in]
        if n_phone:
            features[b, :, n_in + model_config.rule_cues:] = rows[back:, n_in:]
        wide.append(rows[:, :n_in])
        wide_firsts.append(back)
    if model_config.rule_cues:
        for b, columns in enumerate(rule_columns_many([w.astype(np.float64) for w in wide], wide_firsts)):
            features[b, :, n_in:] = columns
    return torch.from_numpy(features), torch.from_numpy(targets), torch.from_numpy(mask)


def new_model(clips: list[Clip], config: TrainConfig) -> Audio2Face:
    torch.manual_seed(config.seed)
    model = Audio2Face(network_config(config.model))
    with torch.no_grad():
        stacked = torch.cat([model.inputs(torch.from_numpy(with_rule_columns(c.features.astype(np.float64),
                                                                             model.config.rule_cues)[None]))[0]
                             for c in clips]).numpy()
    n_phone = model.config.n_phone_columns  # phone columns stay as they are: no phones is all zeros
    model.input_mean.copy_(torch.from_numpy(np.concatenate([stacked.mean(axis=0), np.zeros(n_phone)])))
    model.input_std.copy_(torch.from_numpy(np.concatenate([np.maximum(stacked.std(axis=0), 1e-3), np.ones(n_phone)])))
    return model


def clip_phone_columns(clip: Clip, rows: int, phone_classes: int) -> np.ndarray:
    """(rows, phone_classes + 1) a clip's phone columns (its last row's class held past its end)."""
    if clip.phones is None:
        return np.zeros((rows, phone_classes + 1))
    classes = clip.phones[np.minimum(np.arange(rows), len(clip.phones) - 1)]
    return phone_columns(classes, phone_classes)


def validation_loss(model: Audio2Face, clips: list[Clip]) -> float:
    if not clips:
        return float("nan")
    weights = channel_weights(model.config.outputs)
    lookahead = model.config.lookahead
    total = 0.0
    with torch.no_grad():
        for clip in clips:
            rows = np.concatenate([clip.features, np.repeat(clip.features[-1:], lookahead, axis=0)])
            rows = with_rule_columns(rows.astype(np.float64), model.config.rule_cues)
            if model.config.phone_classes:
                rows = np.concatenate([rows, clip_phone_columns(clip, len(rows), model.config.phone_classes)], axis=1)
            targets = torch.from_numpy(clip.targets)[None]
            total += float(_loss(model, torch.from_numpy(rows)[None].float(), targets, torch.ones(targets.shape[:2]), weights))
    return total / len(clips)


def channel_weights(outputs: tuple[str, ...]) -> torch.Tensor:
    return torch.tensor([CHANNEL_WEIGHTS.get(name, OTHER_WEIGHT) for name in outputs], dtype=torch.float32)


def _save_checkpoint(path: Path, model: Audio2Face, optimizer: torch.optim.Adam, state: TrainState) -> None:
    from safetensors.torch import save_file

    tensors = {f"model.{k}": v.detach().contiguous() for k, v in model.state_dict().items()}
    for i, parameter in enumerate(model.parameters()):
        moments = optimizer.state.get(parameter)
        if moments:
            tensors[f"adam.{i}.exp_avg"] = moments["exp_avg"].contiguous()
            tensors[f"adam.{i}.exp_avg_sq"] = moments["exp_avg_sq"].contiguous()
            tensors[f"adam.{i}.step"] = torch.as_tensor(moments["step"], dtype=torch.float32).reshape(1)
    partial = path.with_suffix(".partial")
    save_file(tensors, str(partial), metadata={"state": json.dumps(asdict(state)),
                                               "config": json.dumps(model.config.to_dict())})
    partial.replace(path)


def _load_checkpoint(path: Path, model: Audio2Face, optimizer: torch.optim.Adam) -> TrainState:
    from safetensors import SafetensorError, safe_open
    from safetensors.torch import load_file

    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
        tensors = load_file(str(path))
        state = TrainState(**json.loads(metadata["state"]))
        model.load_state_dict({k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")})
    except (SafetensorError, KeyError, ValueError, RuntimeError, TypeError) as error:
        raise ModelError(f"checkpoint {path} cannot be resumed from ({str(error).splitlines()[0]})") from None
    for i, parameter in enumerate(model.parameters()):
        if f"adam.{i}.exp_avg" in tensors:
            optimizer.state[parameter] = {"step": tensors[f"adam.{i}.step"][0].clone(),
                                          "exp_avg": tensors[f"adam.{i}.exp_avg"].clone(),
                                          "exp_avg_sq": tensors[f"adam.{i}.exp_avg_sq"].clone()}
    return state


def train(clips: list[Clip], val_clips: list[Clip], config: TrainConfig, checkpoint: Path,
          init: Audio2Face | None = None, progress=None, stop_after: int | None = None) -> tuple[Audio2Face, TrainState]:
    """Train (or resume from ``checkpoint`` if it exists) up to config.steps. ``stop_after``
    ends early after that step's checkpoint (tests use it to stand in for a kill)."""
    if not clips:
        raise ModelError("no training clips")
    _deterministic(config.threads)
    clips, val_clips = align_targets(clips, val_clips, config.align_speakers, config.target_lead_ms)
    if not (init.config if init is not None else network_config(config.model)).formants:
        clips, val_clips = without_formants(clips), without_formants(val_clips)  # as the network streams them
    model = new_model(clips, config) if init is None else init.float()
    if init is not None:
        torch.manual_seed(config.seed)
    model.train()
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    state = TrainState(step=0, train_loss=[], val_loss=[], seconds=0.0)
    if checkpoint.exists():
        state = _load_checkpoint(checkpoint, model, optimizer)
    weights = channel_weights(model.config.outputs)
    started, running = time.perf_counter() - state.seconds, []
    while state.step < config.steps:
        lr = config.learning_rate * 0.5 * (1 + np.cos(np.pi * state.step / config.steps))  # cosine decay
        for group in optimizer.param_groups:
            group["lr"] = lr
        features, targets, mask = _batch(clips, config, state.step, model.config)
        torch.manual_seed(config.seed * 1_000_003 + state.step)  # dropout: per step, so a resumed run matches
        loss = _loss(model, features, targets, mask, weights, config.correlation_weight)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        running.append(float(loss.detach()))
        state.step += 1
        if progress:
            progress(state.step, config.steps, running[-1])
        if state.step % config.checkpoint_every == 0 or state.step == config.steps:
            state.train_loss.append(float(np.mean(running)))
            running = []
            model.eval()
            state.val_loss.append(validation_loss(model, val_clips))
            model.train()
            state.seconds = time.perf_counter() - started
            _save_checkpoint(checkpoint, model, optimizer, state)
            if stop_after is not None and state.step >= stop_after:
                break
    model.eval()
    return model, state


def plot_losses(state: TrainState, every: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = np.arange(1, len(state.train_loss) + 1) * every
    steps[-1] = min(steps[-1], state.step)
    figure, axis = plt.subplots(figsize=(8, 4))
    axis.plot(steps, state.train_loss, marker="o", label="training (mean over the interval)")
    if np.isfinite(state.val_loss).any():
        axis.plot(steps, state.val_loss, marker="o", label="held-out clips")
    axis.set_xlabel("step")
    axis.set_ylabel("loss (weighted MSE + velocity)")
    axis.set_title("training adds the recipe's correlation term, if any; held-out: MSE + velocity only", fontsize=9)
    axis.set_yscale("log")
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


__all__ = ["OUTPUTS", "TrainConfig", "TrainState", "train", "save_weights", "plot_losses", "new_model"]
