"""The per-stream stages that run batched over every stream a step holds: each equals a
per-stream reference written from the stage's definition, exactly (the same numbers, not close)."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import fixture_line
from npcface.core.audio.decode import load_audio
from npcface.core.audio.features import compute_features
from npcface.core.motion.learned import IncrementalMouth, feature_matrix, load_model, relative_many


@pytest.fixture(scope="module")
def greeting_rows() -> np.ndarray:
    wav, _ = fixture_line("line_greeting")
    return feature_matrix(compute_features(load_audio(wav).samples))


def relative_by_definition(rows: np.ndarray, context: int) -> np.ndarray:
    """Audio2Face.relative row by row: log-mel minus its mean over the row's last ``context``
    rows (those that exist), loudness minus their peak (the -90 dB floor where the window reaches
    before the line's first row)."""
    out = rows.copy()
    for i in range(len(rows)):
        lo = max(0, i + 1 - context)
        window = rows[lo:i + 1]
        out[i, :40] = rows[i, :40] - window[:, :40].sum(axis=0) / len(window)
        out[i, 40] = rows[i, 40] - max(window[:, 40].max(), -90.0 if i + 1 < context else -np.inf)
    return out


def test_relative_of_many_streams_equals_each_line_by_definition(greeting_rows):
    """Streams of different ages (one fresh, one past its first context of rows, one a whole
    line at once) with their own chunk sizes, stepped together: every row exactly as defined."""
    model = load_model()
    context = model.config.context
    lines = [greeting_rows, greeting_rows[37:] * 0.5, greeting_rows[::-1].copy()]
    chunks = [[1, 2, 3], [4, 1], [len(greeting_rows)]]
    mouths = [IncrementalMouth(model) for _ in lines]
    got = [[] for _ in lines]
    position, turn = [0] * len(lines), 0
    while any(p < len(line) for p, line in zip(position, lines)):
        busy = [k for k, (p, line) in enumerate(zip(position, lines)) if p < len(line)]
        parts = [lines[k][position[k]:position[k] + chunks[k][turn % len(chunks[k])]] for k in busy]
        joined = relative_many([mouths[k] for k in busy], parts)
        for k, part in zip(busy, parts):
            got[k].append(joined[:len(part)])
            joined = joined[len(part):]
            position[k] += len(part)
            mouths[k].fed += len(part)  # what feeding the network does after the levels
        turn += 1
    assert context > 4 and len(greeting_rows) > context  # the windows do reach back past a line's start and fill up
    for line, rows in zip(lines, got):
        np.testing.assert_array_equal(np.concatenate(rows), relative_by_definition(line, context))


def test_cues_of_many_streams_read_at_once_equal_np_interp_of_each(greeting_rows):
    """at_many reads the cues of a compute_cues_many batch as Cues.at (np.interp) does, at times
    before the first row, after the last, on row times exactly and between them."""
    from npcface.core.motion.cues import at_many, compute_cues_many
    from npcface.core.motion.learned_inputs import rows_as_features
    from dataclasses import replace

    features = rows_as_features(greeting_rows)
    many = [replace(features, start_time=0.0), replace(features, start_time=1.37)]
    many.append(rows_as_features(greeting_rows[:150]))
    many[2] = replace(many[2], start_time=0.05)
    cues = compute_cues_many(many)
    rng = np.random.default_rng(3)
    parts = []
    for c in cues:
        rows = c.row_times()
        times = np.concatenate([rng.uniform(rows[0] - 0.5, rows[-1] + 0.5, 200), rows[::7], rows[[0, -1]],
                                np.arange(0, rows[-1] + 0.3, 1 / 30)])  # frame times land on row times too
        parts.append((c, times))
    names = ("level", "activity", "held", "emphasis", "phrase")
    got = at_many(parts, names)
    expected = np.stack([np.concatenate([c.at(name, t) for c, t in parts]) for name in names], axis=1)
    np.testing.assert_array_equal(got, expected)
    # cues of different batches are read one by one, with the same numbers
    other = compute_cues_many([many[0]])[0]
    np.testing.assert_array_equal(at_many([(other, parts[0][1]), parts[1]], names), expected[:len(parts[0][1]) + len(parts[1][1])])


def test_features_of_a_big_batch_equal_each_row_computed_alone():
    """_frames_features splits a batch into chunks of rows: every row still gets exactly the
    numbers it gets computed on its own (a row reads only its own window)."""
    from npcface.core.audio import features

    wav, _ = fixture_line("line_greeting")
    samples = load_audio(wav).samples.astype(np.float64)
    rows = 2 * features._CHUNK_ROWS + 13
    span = samples[8000:8000 + (rows - 1) * features.HOP + features.ANALYSIS]
    windows = np.stack([span[i * features.HOP:i * features.HOP + features.ANALYSIS] for i in range(rows)])
    windows[::7] *= 1e-4  # every 7th row near-silent: below the voicing floor, where YIN is skipped
    together = features._frames_features(windows)
    alone = [features._frames_features(windows[i:i + 1]) for i in range(rows)]
    assert together["voicing"].max() > 0.5 and len(together["loudness_db"]) == rows  # voiced rows: formants ran
    quiet = together["loudness_db"] <= features.VOICING_FLOOR_DB
    assert quiet[::7].all() and not quiet.all()
    assert not together["voicing"][quiet].any() and not together["f0_hz"][quiet].any()
    for name, column in together.items():
        np.testing.assert_array_equal(column, np.concatenate([row[name] for row in alone]), err_msg=name)


def test_learned_rows_of_many_streams_interpolated_at_once_equal_np_interp_of_each():
    """The learned mouth's output rows (row i at its centre, (first_row + i + 0.5) * 10 ms) read
    at each stream's frame times: np.interp's numbers per stream and column, held at the ends,
    parts of one row included."""
    from npcface.core.motion.learned import LearnedLipRows, _interp_rows

    rng = np.random.default_rng(3)
    parts, expected = [], []
    for n, first in ((1, 0), (2, 40), (3, 7), (7, 123), (12, 3001)):
        xp = (first + np.arange(n) + 0.5) * 0.01
        outputs = rng.normal(size=(n, 8))
        times = np.concatenate([[xp[0] - 0.02, xp[0], xp[-1], xp[-1] + 0.01], rng.uniform(xp[0], xp[-1], 5), xp[1:2],
                                np.arange(first // 3 * 0.1, xp[-1] + 0.05, 1 / 30)])  # frame times on row centres too
        parts.append(LearnedLipRows(times, first, outputs, tuple("abcdefgh"), None, np.ones(len(times))))
        expected.append(np.stack([np.interp(times, xp, outputs[:, c]) for c in range(8)], axis=1))
    np.testing.assert_array_equal(_interp_rows(parts), np.concatenate(expected))
    for part, alone in zip(parts, expected):
        np.testing.assert_array_equal(_interp_rows([part]), alone)


def test_events_of_many_streams_decided_together_equal_each_decided_alone(greeting_rows):
    """decide_events_many (every stream's blink, saccade and posture-shift slots from one read of
    their cues) decides what each stream's own schedulers decide with the per-stream hazards
    (head.blink_hazard with the emotion's blink gain, the saccade rate, PoseShifts.decide_until),
    step after step, for streams of different seeds, ages and emotions."""
    from npcface.core.motion.cues import compute_cues_many
    from npcface.core.motion.emotion import emotion_layer
    from npcface.core.motion.head import SACCADES_PER_S, PoseShifts, SlotScheduler, blink_hazard
    from npcface.core.motion.head_frames import HeadSource, decide_events_many
    from npcface.core.motion.learned_inputs import rows_as_features
    from npcface.core.types import EmotionEvent
    from dataclasses import replace

    features = rows_as_features(greeting_rows)
    line = [replace(features, start_time=0.0), replace(features, start_time=0.0), replace(features, start_time=0.4)]
    emotions = [(), (EmotionEvent(0.5, "afraid", 1.0),), ()]  # afraid: 1.6x the blinks
    seeds = [0, 5, 5]

    def schedulers(seed):
        return (SlotScheduler(seed, 6, slot=0.05, refractory=1.0, max_gap=6.0),
                SlotScheduler(seed, 7, slot=0.1, refractory=0.35, max_gap=4.0), PoseShifts(seed))

    together = [schedulers(seed) for seed in seeds]
    alone = [schedulers(seed) for seed in seeds]
    step = 0.1
    for end in np.arange(0.2, 3.3, step):
        cues = compute_cues_many(line)
        sources = []
        for k, (blinks, saccades, shifts) in enumerate(together):
            times = np.arange(end - step, end, 1 / 30) + 0.4 * (k == 2)
            ones = np.ones(len(times))
            sources.append(HeadSource(times=times, cues=cues[k], seed=seeds[k], amplitude=ones, distance=ones, gazes=[],
                                      emotion_pitch=0 * ones, motion_gain=ones, blinks=blinks, saccades=saccades,
                                      shifts=shifts, emotions=emotions[k]))
        decide_events_many(sources)
        for k, (blinks, saccades, shifts) in enumerate(alone):
            until = float(sources[k].times[-1])
            gain = (lambda events: lambda t: emotion_layer(t, events).blink_gain)(emotions[k])
            blinks.decide_until(until, blink_hazard(cues[k], gain))
            saccades.decide_until(until, lambda t: np.full(len(t), SACCADES_PER_S))
            shifts.decide_until(until, cues[k])
    decided = 0
    for (b1, s1, p1), (b2, s2, p2) in zip(together, alone):
        for one, other in ((b1, b2), (s1, s2), (p1.scheduler, p2.scheduler)):
            assert [t for t, _ in one.starts] == [t for t, _ in other.starts]
            assert all(np.array_equal(u, v) for (_, u), (_, v) in zip(one.starts, other.starts))
            decided += len(one.starts)
        assert p1.times == p2.times
        np.testing.assert_array_equal(np.array(p1.targets), np.array(p2.targets))
        np.testing.assert_array_equal(np.array(p1.starts), np.array(p2.starts))
    assert decided > 10 and len(together[1][0].starts) != len(together[2][0].starts)  # events happened; emotion counts


def test_a_run_of_slot_uniforms_is_their_uniforms_one_by_one():
    from npcface.core.motion.head import slot_uniform_run, slot_uniforms

    for first, count in ((0, 1), (3, 4), (250, 12), (255, 1), (256, 3), (1000, 300)):  # inside, across and many blocks
        np.testing.assert_array_equal(slot_uniform_run(9, 6, first, count),
                                      np.stack([slot_uniforms(9, 6, np.array([s]))[0] for s in range(first, first + count)]))


def test_rows_kept_as_cue_inputs_give_the_cues_of_the_features_themselves(greeting_rows):
    """A stream keeps its rows as CueInputs (appended, cut from the front): the cues of what it
    keeps equal the cues of the same rows as AudioFeatures, start time included."""
    from npcface.core.audio.features import slice_features
    from npcface.core.motion.cues import CueInputs, compute_cues
    from npcface.core.motion.learned_inputs import rows_as_features

    features = rows_as_features(greeting_rows)
    kept = CueInputs.of(rows_as_features(greeting_rows[:100])).then(CueInputs.of(slice_features(features, 100)))
    np.testing.assert_array_equal(kept.matrix, CueInputs.of(features).matrix)
    for first in (0, 17, 130):
        part = kept.from_row(first)
        expected, got = compute_cues(slice_features(features, first)), compute_cues(part)
        assert got.start_time == expected.start_time
        for name in ("level", "activity", "emphasis", "held", "dip", "f2_round", "pitch"):
            np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)
