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
