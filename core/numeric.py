"""Numeric helpers the per-step hot paths share."""
from __future__ import annotations

import numpy as np

# The ufunc np.clip calls, without np.clip's ~5 us of argument handling a call: a streaming step
# clips a few dozen small arrays, so the wrapper showed in its profile. Same numbers as np.clip.
clip = np.core.umath.clip
