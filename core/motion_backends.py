"""Which motion generator makes the face: one factory so the CLI, the server and the protocol
choose a backend the same way.

    make_generator("rules", controls)     # the hand-tuned rule-based generator (core/motion.py)
    make_generator("learned", controls)   # the shipped learned mouth (core/motion_learned.py)
    make_generator("my_actor.safetensors", controls)  # a model from `npcface train`
"""
from __future__ import annotations

from pathlib import Path

from .errors import ControlError
from .motion import MotionGenerator
from .types import Controls

BACKENDS = ("rules", "learned")
DEFAULT_BACKEND = "rules"  # wins on the held-out real clips today (bench/bench_learned.py)


def make_generator(spec: str, controls: Controls = Controls()) -> MotionGenerator:
    """A generator for ``spec``: "rules", "learned" or a weights file (.safetensors)."""
    if spec == "rules":
        return MotionGenerator(controls)
    from .motion_learned import LearnedMotionGenerator

    if spec == "learned":
        return LearnedMotionGenerator(controls)
    if not isinstance(spec, str) or not spec.lower().endswith(".safetensors"):
        raise ControlError(f"motion backend must be rules, learned or a .safetensors file, got {spec!r}")
    return LearnedMotionGenerator(controls, Path(spec))
