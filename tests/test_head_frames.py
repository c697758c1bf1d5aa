"""The head inputs computed for many streams' frames at once (core/motion/head_frames.py)
give each frame what the per-stream
formulas give it: checked against straightforward per-stream loops written here, on the events
real speech schedules, for streams of different seeds, times and frame counts batched together."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import fixture_line
from npcface.core.audio.decode import load_audio
from npcface.core.audio.features import compute_features
from npcface.core.motion.cues import compute_cues
from npcface.core.motion.head import SACCADE_S, SHIFT_S, PoseShifts, SlotScheduler, blink_hazard
from npcface.core.motion.head_frames import (HeadSource, blink_curve_many, head_inputs_many, nod_many, pose_many,
                                             saccade_offsets_many)


@pytest.fixture(scope="module")
def cues():
    wav, _ = fixture_line("line_greeting")
    return compute_cues(compute_features(load_audio(wav).samples))


def source(cues, seed: int, times: np.ndarray) -> HeadSource:
    """A stream's head source with blinks, saccades and shifts decided over the whole line
    (frequent ones, so that frames fall inside blinks and saccades)."""
    blinks = SlotScheduler(seed, 6, slot=0.05, refractory=0.3, max_gap=1.0)
    saccades = SlotScheduler(seed, 7, slot=0.1, refractory=0.15, max_gap=0.5)
    end = float(times[-1])
    blinks.decide_until(end, blink_hazard(cues, lambda t: np.full(len(t), 3.0)))
    saccades.decide_until(end, lambda t: np.full(len(t), 4.0))
    shifts = PoseShifts(seed)
    shifts.decide_until(end, cues)
    ones = np.ones(len(times))
    return HeadSource(times=times, cues=cues, seed=seed, amplitude=ones, distance=ones, gazes=[],
                      emotion_pitch=0 * ones, motion_gain=ones, blinks=blinks, saccades=saccades, shifts=shifts)


def batch(cues) -> list[HeadSource]:
    """Runs of 1, 2 and 40 frames at different rates and places, and a whole line."""
    duration = cues.num_rows * 0.01
    runs = [np.array([1.0]), np.array([0.7, 0.74]), np.arange(0.2, 1.4, 1 / 30), np.arange(0, duration - 0.1, 1 / 60)]
    return [source(cues, seed, times) for seed, times in enumerate(runs)]


def blink_reference(times, events) -> np.ndarray:
    out = np.zeros(len(times))
    for start, u in events:
        duration = 0.10 + 0.06 * u[1]
        closing = 0.4 * duration
        rel = times - start
        near = (rel > 0) & (rel < duration)
        r = rel[near]
        shape = np.where(r < closing, np.sin(0.5 * np.pi * r / closing),
                         np.cos(0.5 * np.pi * (r - closing) / (duration - closing)))
        out[near] = np.maximum(out[near], shape)
    return out


def saccade_reference(times, events) -> np.ndarray:
    """Each saccade from the last one shown at the run's first frame (from straight ahead)."""
    shown = [e for e in events if e[0] <= times[0] - 0.05][-1:] + [e for e in events if e[0] > times[0] - 0.05]
    out, previous = np.zeros((len(times), 2)), np.zeros(2)
    for start, u in shown:
        target = np.array([(u[1] * 2 - 1) * 4.0, (u[2] * 2 - 1) * 2.5])
        progress = np.clip((times - start) / SACCADE_S, 0.0, 1.0)[:, None]
        after = times >= start
        out[after] = (previous + (target - previous) * progress)[after]
        previous = target
    return out


def pose_reference(times, shifts: PoseShifts) -> np.ndarray:
    """Each shift eases (minimum jerk, SHIFT_S) from the pose it left to its target, from its start on."""
    out = np.zeros((len(times), 3))
    for start, came_from, target in zip(shifts.times, shifts.starts, shifts.targets):
        x = np.clip((times - start) / SHIFT_S, 0.0, 1.0)
        progress = (x * x * x * (10.0 + x * (6.0 * x - 15.0)))[:, None]
        after = times >= start
        out[after] = (came_from + (target - came_from) * progress)[after]
    return out


def nod_reference(times, cues) -> np.ndarray:
    lag = times[:, None] - cues.row_times()[None, :]
    strength = cues.emphasis * (0.6 + 0.8 * cues.pitch) * 0.01
    kernel = np.where((lag > -0.03) & (lag < 0.55), np.sin(np.pi * np.clip((lag + 0.03) / 0.58, 0, 1)) ** 2, 0.0)
    return (kernel * np.where(strength > 1e-4, strength, 0.0)).sum(1) * 4.0


def test_batched_head_inputs_are_the_per_stream_formulas(cues):
    sources = batch(cues)
    ends = np.cumsum([len(s.times) for s in sources])[:-1]
    blinks = np.split(blink_curve_many(sources), ends)
    saccades = np.split(saccade_offsets_many(sources), ends)
    poses = np.split(pose_many(sources), ends)
    nods = np.split(nod_many([(s.times, s.cues) for s in sources]), ends)
    for s, blink, saccade, pose, nod in zip(sources, blinks, saccades, poses, nods):
        np.testing.assert_array_equal(blink, blink_reference(s.times, s.blinks.starts))
        np.testing.assert_array_equal(saccade, saccade_reference(s.times, s.saccades.starts))
        np.testing.assert_array_equal(pose, pose_reference(s.times, s.shifts))
        np.testing.assert_allclose(nod, nod_reference(s.times, s.cues), rtol=0, atol=1e-12)
    whole = sources[-1]
    # the line really blinks, looks around, shifts and nods (else the comparisons prove little)
    assert blinks[-1].max() > 0.9 and np.abs(saccades[-1]).max() > 1.0
    assert np.abs(poses[-1]).max() > 0.5 and nods[-1].max() > 0.5
    assert len(whole.blinks.starts) >= 3 and len(whole.saccades.starts) >= 5


def test_each_stream_gets_the_same_head_inputs_batched_or_alone(cues):
    sources = batch(cues)
    together = head_inputs_many(sources)
    first = 0
    for s in sources:
        alone = head_inputs_many([s])
        end = first + len(s.times)
        for name in ("activity", "saccades", "nodding", "blink", "pose_shift", "gaze_target"):
            np.testing.assert_array_equal(getattr(together, name)[first:end], getattr(alone, name), err_msg=name)
        np.testing.assert_array_equal(together.noise_terms[:, first:end], alone.noise_terms)
        first = end
