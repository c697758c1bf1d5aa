"""Keyframes for engine animation exports: a sampled curve reduced to the keys that linear
interpolation needs to stay within a tolerance (a flat stretch of 300 frames becomes 2 keys)."""
from __future__ import annotations

import numpy as np

DEFAULT_TOLERANCE = 0.002  # blendshape weight units (0..1): well below what a face shows


def linear_keys(times: np.ndarray, values: np.ndarray, tolerance: float = DEFAULT_TOLERANCE) -> np.ndarray:
    """Indices of the samples to keep as keys (always the first and the last) so that linear
    interpolation between kept keys is within ``tolerance`` of every dropped sample."""
    times = np.asarray(times, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    count = len(times)
    if count <= 2:
        return np.arange(count)
    keep = [0]
    start = 0
    end = 2
    while end < count:
        # can start -> end replace every sample between them?
        span = slice(start + 1, end)
        fraction = (times[span] - times[start]) / (times[end] - times[start])
        line = values[start] + fraction * (values[end] - values[start])
        if np.max(np.abs(values[span] - line)) > tolerance:
            start = end - 1
            keep.append(start)
        end += 1
    keep.append(count - 1)
    return np.asarray(keep)
