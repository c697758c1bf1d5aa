"""Which motion generator animates a line (`--motion`, the protocol's `open.motion`).

- "rules": the hand-tuned generator (core/motion/generator.py);
- "learned": the same generator with its mouth from the network trained on real faces
  (core/motion/learned.py), with the weights shipped in the package;
- a path to a .safetensors file: the learned mouth with a studio's own weights (`npcface train`).
Head, blinks, gaze and emotion are the same layers in every case.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ControlError
from ..types import Controls
from .generator import MotionGenerator

MOTION_NAMES = ("rules", "learned")
DEFAULT_MOTION = "rules"


def check_motion(spec: str | None) -> str:
    """``spec`` (None: the default) as "rules", "learned" or an existing weights file's path;
    ControlError naming what is wrong otherwise."""
    if spec is None:
        return DEFAULT_MOTION
    if spec in MOTION_NAMES:
        return spec
    path = Path(spec) if isinstance(spec, str) else None
    if path is None or path.suffix.lower() != ".safetensors":
        raise ControlError(f"motion must be one of {', '.join(MOTION_NAMES)} or a .safetensors weights file, "
                           f"got {spec!r}")
    if not path.is_file():
        raise ControlError(f"motion weights file not found: {spec}")
    return str(path)


def make_generator(spec: str | None, controls: Controls = Controls()) -> MotionGenerator:
    """The generator ``spec`` names (see check_motion), for ``controls``."""
    spec = check_motion(spec)
    if spec == "rules":
        return MotionGenerator(controls)
    from .learned import LearnedMotionGenerator  # torch loads only for the learned mouth

    return LearnedMotionGenerator(controls, weights=None if spec == "learned" else spec)
