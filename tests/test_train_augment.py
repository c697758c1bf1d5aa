"""Training-time augmentation (core/train/augment.py) on the feature rows of a real fixture line:
each change does what its sound would do to the features, and the same seed gives the same
example; target shifting (core/train/data.py) finds a known A/V offset and moves the mouth earlier."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import fixture_line
from npcface.core.audio.decode import load_audio
from npcface.core.audio.features import compute_features
from npcface.core.motion.learned import feature_matrix
from npcface.core.train.augment import (LOG_F0, LOUDNESS, AugmentConfig, add_noise, augment_clip, reverberate,
                                        scale_frequencies, time_warp)
from npcface.core.train.data import Clip, align_targets, shift_targets, speaker_offsets


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    wav, _ = fixture_line("line_greeting")
    return feature_matrix(compute_features(load_audio(wav).samples))


def test_speed_shortens_the_clip_and_keeps_its_values_in_order():
    ramp = np.arange(100, dtype=np.float64)[:, None]
    fast = time_warp(ramp, 1.25)
    assert len(fast) == 80
    assert np.allclose(fast[:, 0], np.arange(80) * 1.25)  # row j is the original at 1.25 j
    assert len(time_warp(ramp, 0.8)) == 125


def test_a_longer_vocal_tract_moves_spectral_peaks_down_and_a_shorter_one_up():
    mel = np.full((1, 40), -5.0)
    mel[0, 20] = 0.0  # one formant-like peak
    assert np.argmax(scale_frequencies(mel, 1.2)[0]) > 20
    assert np.argmax(scale_frequencies(mel, 0.85)[0]) < 20
    assert np.allclose(scale_frequencies(mel, 1.0), mel)


def test_reverb_fills_the_pause_after_a_word_and_leaves_the_word_near_its_level(rows):
    dry = rows.copy()
    wet = rows.copy()
    reverberate(wet, rt60_s=0.6, wet=0.5)
    loud = dry[:, LOUDNESS] > dry[:, LOUDNESS].max() - 10
    ends = np.flatnonzero(loud[:-1] & ~loud[1:])  # last loud row before a drop
    after = np.concatenate([np.arange(e + 2, e + 6) for e in ends if e + 6 < len(dry)])
    assert (wet[after, LOUDNESS] - dry[after, LOUDNESS]).mean() > 3.0  # the tail rings on
    assert np.abs(wet[loud, LOUDNESS] - dry[loud, LOUDNESS]).mean() < 2.0  # the direct sound dominates


def test_noise_at_a_given_snr_lifts_the_quiet_rows_to_about_that_far_under_the_speech(rows):
    noisy = rows.copy()
    add_noise(noisy, snr_db=15.0, tilt_db=0.0)
    speech = np.percentile(rows[:, LOUDNESS], 95)
    floor = np.percentile(noisy[:, LOUDNESS], 5)
    assert speech - 19 < floor < speech - 11
    assert np.all(noisy[:, LOUDNESS] >= rows[:, LOUDNESS] - 1e-6)  # noise only adds power


def test_the_same_seed_gives_the_same_example_and_another_seed_another(rows):
    targets = np.linspace(0, 1, len(rows))[:, None].astype(np.float32)
    config = AugmentConfig(noise_probability=1.0, reverb_probability=1.0)
    a = augment_clip(rows, targets, np.random.default_rng([0, 7]), config)
    b = augment_clip(rows, targets, np.random.default_rng([0, 7]), config)
    c = augment_clip(rows, targets, np.random.default_rng([1, 7]), config)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert a[0].shape != c[0].shape or not np.allclose(a[0], c[0])
    assert len(a[0]) == len(a[1])  # the face is time-warped with the voice
    voiced = rows[:, LOG_F0] != 0
    assert np.isfinite(a[0]).all() and voiced.any()


def test_unknown_augment_keys_are_refused():
    with pytest.raises(ValueError, match="unknown augment keys"):
        AugmentConfig.from_dict({"speeed": [0.9, 1.1]})


def test_a_speaker_whose_video_trails_its_sound_is_found_and_moved_earlier(rows):
    loud = rows[:, LOUDNESS]
    gap = np.maximum(loud - loud.max() + 40, 0).astype(np.float32)
    delayed = np.concatenate([np.zeros(12, np.float32), gap[:-12]])  # the mouth 120 ms after the sound
    clip = Clip("c", "late", Path("c"), rows.astype(np.float32), delayed[:, None], delayed)
    on_time = Clip("d", "prompt", Path("d"), rows.astype(np.float32), gap[:, None], gap)
    assert speaker_offsets([clip, on_time]) == {"late": 12, "prompt": 0}
    (fixed, _), _ = align_targets([clip, on_time], [], by_speaker=True, lead_ms=0.0)
    assert np.array_equal(fixed.targets[:-12, 0], gap[:-12])
    leading = shift_targets(on_time, 3)  # 30 ms lead: the target reaches each value 3 rows early
    assert np.array_equal(leading.targets[:-3, 0], gap[3:])
