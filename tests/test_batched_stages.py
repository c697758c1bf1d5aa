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
    together = features._frames_features(windows)
    alone = [features._frames_features(windows[i:i + 1]) for i in range(rows)]
    assert together["voicing"].max() > 0.5 and len(together["loudness_db"]) == rows  # voiced rows: formants ran
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
        parts.append(LearnedLipRows(times, first, outputs, tuple("abcdefgh"), None))
        expected.append(np.stack([np.interp(times, xp, outputs[:, c]) for c in range(8)], axis=1))
    np.testing.assert_array_equal(_interp_rows(parts), np.concatenate(expected))
    for part, alone in zip(parts, expected):
        np.testing.assert_array_equal(_interp_rows([part]), alone)
