"""A MotionTrack as a Godot 4 Animation resource (``.tres``, text).

One blend-shape track (``Animation.TYPE_BLEND_SHAPE``) per ARKit blendshape on the MeshInstance3D
at ``mesh_path`` (relative to the AnimationPlayer's root node), e.g. ``Head/Face:JawOpen``. Keys
are ``time, transition, value`` triples in a PackedFloat32Array, Godot's own serialised form;
weights 0..1, linear interpolation. A mesh whose shapes use Apple's names takes
``name_style="arkit"`` (``jawOpen``), see export_unity.blendshape_name.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..arkit import ARKIT_NAMES
from ..errors import FormatError
from ..types import MotionTrack
from .keys import linear_keys
from .unity_anim import blendshape_name

INTERPOLATION_LINEAR = 1


def _number(value: float) -> str:
    text = f"{value:.6g}"
    return "0" if text == "-0" else text


def _string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def godot_animation_text(track: MotionTrack, name: str, mesh_path: str = ".", name_style: str = "livelink",
                         name_prefix: str = "") -> str:
    """The ``.tres`` file's text for ``track`` (see the module notes)."""
    if ":" in mesh_path or "\n" in mesh_path or not mesh_path:
        raise FormatError(f"Godot mesh path must be a node path without ':' (e.g. Head/Face), got {mesh_path!r}")
    times = np.asarray(track.times, dtype=np.float64)
    weights = np.clip(np.asarray(track.blendshapes, dtype=np.float64), 0.0, 1.0)
    length = float(times[-1]) if len(times) else 0.0
    lines = ['[gd_resource type="Animation" format=3]', "", "[resource]", f"resource_name = {_string(name)}",
             f"length = {_number(max(length, 1e-3))}", f"step = {_number(1.0 / track.fps)}"]
    for index, shape in enumerate(ARKIT_NAMES):
        keys = linear_keys(times, weights[:, index]) if len(times) else np.zeros(0, int)
        triples = ", ".join(f"{_number(times[k])}, 1, {_number(weights[k, index])}" for k in keys)
        target = f"{mesh_path}:{blendshape_name(shape, name_style, name_prefix)}"
        prefix = f"tracks/{index}/"
        lines += [f'{prefix}type = "blend_shape"', f"{prefix}imported = false", f"{prefix}enabled = true",
                  f"{prefix}path = NodePath({_string(target)})", f"{prefix}interp = {INTERPOLATION_LINEAR}",
                  f"{prefix}loop_wrap = true", f"{prefix}keys = PackedFloat32Array({triples})"]
    return "\n".join(lines) + "\n"


def write_godot_animation(track: MotionTrack, path: str | Path, name: str, mesh_path: str = ".",
                          name_style: str = "livelink", name_prefix: str = "") -> None:
    Path(path).write_text(godot_animation_text(track, name, mesh_path, name_style, name_prefix), encoding="utf-8")
