"""The streaming speed-ups change nothing: each shortcut is checked against the plain computation.

- PhoneStream(features_from_caller=True) fed the motion stream's feature rows gives the same
  phones, push by push, as a phone stream that computes its own features.
- MotionStream computes feature rows only on pushes that release frames: its frames equal
  those of a stream that computed every push's rows at once (the same chunks).
- ProminenceStream (stress of a growing phone sequence, recent part only) equals mark_stress
  over the whole sequence after every push.
"""
from __future__ import annotations

import numpy as np
import pytest

from conftest import fixture_line
from npcface.core.audio.decode import load_audio
from npcface.core.errors import AudioError, ControlError
from npcface.core.audio.features import FEATURE_COLUMNS, FeatureStream, concat_features
from npcface.core.phonetics.timeline import PhoneStream
from npcface.core.phonetics.acoustic import AcousticTracker
from npcface.core.phonetics.stress import VOWELS, LoudnessTrack, ProminenceStream, mark_stress
from npcface.core.types import Phone


def samples_of(name: str) -> np.ndarray:
    return load_audio(fixture_line(name)[0]).samples


def chunks(samples: np.ndarray, seed: int):
    rng = np.random.default_rng(seed)
    position = 0
    while position < len(samples):
        size = int(rng.integers(1, 1200))
        yield samples[position : position + size]
        position += size


@pytest.mark.parametrize("language", ["de", "singing"])
def test_acoustic_phones_from_the_callers_rows_equal_their_own(language):
    samples = np.concatenate([samples_of("line_greeting"), samples_of("line_vowels")])
    own = PhoneStream(None, language)
    shared = PhoneStream(None, language, features_from_caller=True)
    rows = FeatureStream()
    pushes = 0
    for chunk in chunks(samples, seed=5):
        own.push(chunk)
        shared.push(chunk)
        shared.add_features(rows.push(chunk))
        assert shared.phones() == own.phones()
        pushes += 1
    assert pushes > 50
    shared.add_features(rows.flush())
    final = shared.finish()
    assert final == own.finish()
    assert sum(p.label in VOWELS for p in final.phones) >= 5  # the line really has phones to compare


def test_stress_of_a_growing_line_equals_marking_it_whole():
    samples = np.concatenate([samples_of(name) for name in ("line_vowels", "line_greeting", "line_bilabials")])
    rows, tracker, loudness = FeatureStream(), AcousticTracker(), LoudnessTrack()
    marker = ProminenceStream(loudness)
    frozen_lengths, stressed = set(), 0
    for chunk in chunks(samples, seed=9):
        loudness.push(chunk)
        block = rows.push(chunk)
        if block is not None:
            tracker.add(block)
        frozen, recent = tracker.parts()
        marked = marker.mark(frozen, recent)
        assert marked == mark_stress(frozen + recent, loudness)
        frozen_lengths.add(len(frozen))
        stressed = sum(p.stress == 1 for p in marked)
    assert len(frozen_lengths) > 10  # phones froze along the way, so the shortcut was exercised
    assert stressed >= 3


def test_feature_rows_need_the_flag_and_must_continue_the_stream():
    samples = samples_of("line_greeting")[:8000]
    rows = FeatureStream()
    first, second = rows.push(samples[:4000]), rows.push(samples[4000:])
    with pytest.raises(ControlError, match="features_from_caller"):
        PhoneStream(None, "de").add_features(first)
    stream = PhoneStream(None, "de", features_from_caller=True)
    stream.push(samples)
    with pytest.raises(ControlError, match="must continue the stream"):
        stream.add_features(second)  # rows from 0.25 s, but the stream is at row 0
    stream.add_features(first)
    stream.add_features(second)
    assert stream.phones()


def test_stress_marks_stay_exact_when_the_recent_phones_change_arbitrarily():
    """Random lines, random loudness, a frozen prefix growing by random steps and a recent tail
    re-drawn at random on every call (a worst case no real segmenter produces)."""
    rng = np.random.default_rng(11)
    labels = ["AA", "IY", "UW", "P", "S", "M", "SIL"]
    for _ in range(20):
        loudness = LoudnessTrack()
        loudness.push((rng.standard_normal(16000 * 6) * np.repeat(rng.uniform(0.001, 0.5, 600), 160)).astype(np.float32))
        edges = np.cumsum(rng.uniform(0.03, 0.4, 40))
        line = tuple(Phone(str(rng.choice(labels)), float(a), float(b)) for a, b in zip(edges[:-1], edges[1:]))
        marker = ProminenceStream(loudness)
        frozen_count = 0
        while frozen_count < len(line):
            frozen_count = min(len(line), frozen_count + int(rng.integers(0, 4)))
            frozen = line[:frozen_count]
            start = frozen[-1].end if frozen else 0.0
            recent = tuple(Phone(str(rng.choice(labels)), start + 0.1 * k, start + 0.1 * (k + 1)) for k in range(int(rng.integers(0, 5))))
            assert marker.mark(frozen, recent) == mark_stress(frozen + recent, loudness)


def test_loudness_running_sums_equal_one_cumsum_over_the_whole_signal():
    rng = np.random.default_rng(2)
    samples = (rng.standard_normal(16000 * 3) * np.repeat(rng.uniform(0.001, 0.5, 300), 160)).astype(np.float32)
    track = LoudnessTrack()
    for chunk in chunks(samples, seed=4):
        track.push(chunk)
    levels = 10 * np.log10((samples.astype(np.float64).reshape(-1, 160) ** 2).mean(axis=1) + 1e-12)
    assert np.array_equal(track.levels(), levels)
    starts = rng.uniform(0, 3.2, 200)
    ends = starts + rng.uniform(0, 0.5, 200)
    running = np.concatenate([[0.0], np.cumsum(levels)])
    first = np.minimum((starts * 16000).astype(np.int64) // 160, len(levels))
    last = np.minimum(np.maximum(first + 1, np.ceil(ends * 16000 / 160).astype(np.int64)), len(levels))
    expected = np.where(last > first, (running[last] - running[first]) / np.maximum(last - first, 1), -120.0)
    assert np.array_equal(track.mean_db(starts, ends), expected)
    assert (expected == -120.0).any() and (expected > -120.0).sum() > 150  # both cases were exercised


def test_acoustic_row_smoothing_and_dips_equal_plain_loops():
    """The vectorised mode filter and dip finder against straightforward per-row loops."""
    from npcface.core.phonetics.acoustic import LABELS, _energy_dips, _mode_filter

    rng = np.random.default_rng(8)
    dip_rows = 0
    for _ in range(30):
        codes = rng.integers(0, 4, int(rng.integers(5, 80))).astype(np.int8)  # few labels: many ties
        smoothed = _mode_filter(codes)
        for row, code in enumerate(codes):
            window = [int(codes[min(max(j, 0), len(codes) - 1)]) for j in range(row - 2, row + 3)]
            counts = {label: window.count(label) for label in window}
            best = min(counts, key=lambda label: (-counts[label], LABELS[label]))  # ties: alphabetically first
            assert smoothed[row] == (best if counts[best] > counts[int(code)] else code)
        loud = np.repeat(rng.uniform(-60, -10, len(codes) // 3 + 2), 3)[: len(codes)].astype(np.float32)
        dips = _energy_dips(loud)
        dip_rows += int(dips.sum())

        def at(j: int) -> float:  # rows past the ends repeat the edge row
            return loud[min(max(j, 0), len(loud) - 1)]

        def loudest_near(j: int) -> float:
            return max(at(k) for k in range(j - 8, j + 9))

        for row in range(len(loud)):
            bottoms = [j for j in range(max(row - 2, 0), min(row + 3, len(loud)))
                       if at(j) <= min(at(k) for k in range(j - 2, j + 3)) and loudest_near(j) - at(j) >= 15.0]
            assert dips[row] == (bool(bottoms) and loudest_near(row) - loud[row] >= 9.0)
    assert dip_rows > 20


@pytest.mark.parametrize("language", ["de", "en-us"])
def test_frames_do_not_depend_on_when_feature_rows_are_computed(language):
    from npcface.core.motion.generator import MotionGenerator, MotionStream
    from npcface.core.motion.line_phones import LivePhones
    from npcface.core.types import Controls

    class EagerRows(MotionStream):
        """Computes every push's rows at once, as the stream did before rows were deferred."""

        def push_audio(self, samples16k):
            frames = super().push_audio(samples16k)
            self._take_rows(self._features.take())  # to the phones,
            self._add_rows(self._rows_to(self._rows_taken()))  # then to the rows kept
            return frames

    samples = samples_of("line_greeting")
    controls = Controls(language=language)
    lazy = MotionGenerator(controls).stream(None)
    eager = EagerRows(controls, LivePhones(None, language))
    lazy_frames, eager_frames, idle_pushes = [], [], 0
    for position in range(0, len(samples), 80):  # 5 ms chunks: most pushes release no frame
        got = lazy.push_audio(samples[position : position + 80])
        idle_pushes += not got
        lazy_frames += got
        eager_frames += eager.push_audio(samples[position : position + 80])
    lazy_frames += lazy.finish()
    eager_frames += eager.finish()
    assert idle_pushes > len(samples) // 80 // 2
    assert len(lazy_frames) == len(eager_frames) > 100
    for a, b in zip(lazy_frames, eager_frames):
        assert a.time == b.time and a.head_rotation == b.head_rotation
        assert np.array_equal(a.blendshapes, b.blendshapes)
    assert lazy.timeline == eager.timeline


def test_feature_rows_taken_now_and_then_equal_rows_taken_every_push():
    samples = samples_of("line_bilabials")
    every, sometimes = FeatureStream(), FeatureStream()
    rng = np.random.default_rng(6)
    pushed, taken = [], []
    for chunk in chunks(samples, seed=3):
        pushed.append(every.push(chunk))
        sometimes.append(chunk)
        assert sometimes.rows_complete() == every.rows_complete()
        if rng.random() < 0.3:
            taken.append(sometimes.take())
    pushed.append(every.flush())
    taken += [sometimes.take(), sometimes.flush()]
    a = concat_features([part for part in pushed if part is not None])
    b = concat_features([part for part in taken if part is not None])
    assert a.num_frames == b.num_frames == -(-len(samples) // 160)
    for name in FEATURE_COLUMNS:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    with pytest.raises(AudioError):
        sometimes.append(samples[:160])  # flushed: the line is over
