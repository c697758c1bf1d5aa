"""Training-time augmentation that makes two studio speakers sound like many voices, rooms and
microphones, applied to the feature rows (core/motion/learned.feature_matrix) so a training step
costs no audio decoding or feature extraction.

Per example, drawn from the step's seeded generator (so a recipe reproduces its weights):
- speed: the clip played faster or slower (tempo, pitch and formants together, as resampling
  does); the face targets are time-warped with it;
- vocal tract length: the spectrum's frequency axis scaled (a shorter or longer tract moves the
  formants), F1 and F2 scaled with it;
- pitch: a different voice's f0 (log2 f0 shifted where voiced);
- reverb: each mel band's power smeared by an exponential tail (a room's RT60 and wet level);
- noise: stationary coloured noise at a random SNR under the speech's loud rows.
Loudness follows the broadband power change, so it agrees with the mel bands. Column layout:
40 log-mel (natural log of power), loudness dB, log2 f0 / 100 Hz, voicing, F1 kHz, F2 kHz,
spectral tilt / 10 dB, zero-crossing rate x 10.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..types import FEATURE_HOP_S

N_MELS = 40
LOUDNESS, LOG_F0, F1, F2 = 40, 41, 43, 44


@dataclass
class AugmentConfig:
    speed: tuple[float, float] = (0.85, 1.15)  # tempo factor range (1: unchanged)
    tract: tuple[float, float] = (0.85, 1.2)  # frequency-axis scale range (formants)
    pitch_octaves: float = 0.5  # f0 shift range, +- octaves
    reverb_probability: float = 0.5
    rt60_s: tuple[float, float] = (0.15, 0.8)
    reverb_wet: tuple[float, float] = (0.05, 0.6)  # reverberant power over direct power
    noise_probability: float = 0.5
    snr_db: tuple[float, float] = (5.0, 30.0)

    @staticmethod
    def from_dict(values: dict) -> "AugmentConfig":
        unknown = set(values) - set(AugmentConfig.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown augment keys {sorted(unknown)}")
        return AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


@lru_cache(maxsize=1)
def _mel_centres_hz() -> np.ndarray:
    """(40,) centre frequency of each mel band (the bank core/audio/features.py uses: 60-7600 Hz, Slaney)."""
    from ..audio.features import _slaney_hz_to_mel, _slaney_mel_to_hz

    edges = _slaney_mel_to_hz(np.linspace(_slaney_hz_to_mel(60.0), _slaney_hz_to_mel(7600.0), N_MELS + 2))
    return np.asarray(edges[1:-1], dtype=np.float64)


def time_warp(rows: np.ndarray, speed: float) -> np.ndarray:
    """(T, C) rows of a clip played ``speed`` times as fast -> (round(T / speed), C), linear."""
    count = max(2, int(round(len(rows) / speed)))
    positions = np.minimum(np.arange(count) * speed, len(rows) - 1)
    below = np.floor(positions).astype(int)
    above = np.minimum(below + 1, len(rows) - 1)
    frac = (positions - below)[:, None]
    return rows[below] * (1 - frac) + rows[above] * frac


def scale_frequencies(mel: np.ndarray, factor: float) -> np.ndarray:
    """(T, 40) log-mel of a voice whose spectrum is stretched by ``factor`` along frequency:
    band k now holds what the original had at centre_k / factor (edges held)."""
    centres = _mel_centres_hz()
    source = np.interp(np.clip(centres / factor, centres[0], centres[-1]), centres, np.arange(N_MELS))
    below = np.floor(source).astype(int)
    above = np.minimum(below + 1, N_MELS - 1)
    frac = source - below
    return mel[:, below] * (1 - frac) + mel[:, above] * frac


def _add_power(features: np.ndarray, extra_power: np.ndarray) -> None:
    """Add (T, 40) power to the mel bands in place; loudness follows the broadband ratio."""
    power = np.exp(features[:, :N_MELS])
    mixed = power + extra_power
    ratio = mixed.sum(axis=1) / np.maximum(power.sum(axis=1), 1e-30)
    features[:, :N_MELS] = np.log(np.maximum(mixed, 1e-30))
    features[:, LOUDNESS] = np.maximum(features[:, LOUDNESS] + 10 * np.log10(ratio), -90.0)


def reverberate(features: np.ndarray, rt60_s: float, wet: float) -> None:
    """A room's tail, in place: each band's power through a one-pole decay of the given RT60."""
    from scipy.signal import lfilter

    decay = 10 ** (-6.0 * FEATURE_HOP_S / rt60_s)  # 60 dB over rt60_s
    power = np.exp(features[:, :N_MELS])
    tail = lfilter([1 - decay], [1, -decay], power, axis=0)  # (T, 40) unit-gain smear
    _add_power(features, wet * np.concatenate([np.zeros((1, N_MELS)), tail[:-1]]))


def add_noise(features: np.ndarray, snr_db: float, tilt_db: float) -> None:
    """Stationary noise, in place, ``snr_db`` under the clip's loud rows (95th percentile of
    broadband power), its spectrum tilted by ``tilt_db`` from the lowest to the highest band."""
    power = np.exp(features[:, :N_MELS]).sum(axis=1)
    speech = float(np.percentile(power, 95))
    shape = 10 ** (tilt_db * (np.arange(N_MELS) / (N_MELS - 1) - 0.5) / 10)
    shape *= 1.0 / shape.sum()
    _add_power(features, np.broadcast_to(speech * 10 ** (-snr_db / 10) * shape, features[:, :N_MELS].shape))


def augment_clip(features: np.ndarray, targets: np.ndarray, rng: np.random.Generator,
                 config: AugmentConfig) -> tuple[np.ndarray, np.ndarray]:
    """(T, 47 + k) features and (T, n) targets of one clip -> another voice, room and microphone
    saying the same thing: (T', 47 + k), (T', n); the k extra columns (phone classes) are only
    time-warped. Always draws the same number of values from rng."""
    speed, tract = rng.uniform(*config.speed), rng.uniform(*config.tract)
    pitch = rng.uniform(-config.pitch_octaves, config.pitch_octaves)
    reverb, rt60, wet = rng.uniform() < config.reverb_probability, rng.uniform(*config.rt60_s), rng.uniform(*config.reverb_wet)
    noise, snr, noise_tilt = rng.uniform() < config.noise_probability, rng.uniform(*config.snr_db), rng.uniform(-20, 10)
    out = time_warp(features.astype(np.float64), speed)
    warped_targets = time_warp(targets.astype(np.float64), speed)
    out[:, :N_MELS] = scale_frequencies(out[:, :N_MELS], tract)
    out[:, F1] *= tract
    out[:, F2] *= tract
    voiced = out[:, LOG_F0] != 0
    out[voiced, LOG_F0] += pitch
    if reverb:
        reverberate(out, rt60, wet)
    if noise:
        add_noise(out, snr, noise_tilt)
    return out.astype(np.float32), warped_targets.astype(np.float32)
