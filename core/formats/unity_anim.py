"""A MotionTrack as a Unity AnimationClip (``.anim``, the YAML text Unity itself writes).

One float curve per ARKit blendshape, bound to ``blendShape.<Name>`` of a SkinnedMeshRenderer
(class 137) at ``renderer_path`` below the Animator (``""``: on the Animator's own object). Unity
weights run 0..100. Keys are linear (tangent mode 69: both sides linear, broken) with their slopes
written out, so the clip plays the same in Unity as the sampled curve, and drops into an Assets
folder without any import script. A mesh whose blend shapes carry a prefix (``face.jawOpen``)
needs ``name_prefix`` / lower-camel names: ``name_style="arkit"`` gives Apple's ``jawOpen``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..arkit import ARKIT_NAMES
from ..errors import FormatError
from ..types import MotionTrack
from .keys import linear_keys

SKINNED_MESH_RENDERER = 137
LINEAR_BROKEN = 69
UNITY_WEIGHT_SCALE = 100.0
NAME_STYLES = ("livelink", "arkit")


def blendshape_name(name: str, style: str = "livelink", prefix: str = "") -> str:
    """``JawOpen`` (Live Link Face), or ``jawOpen`` (Apple ARKit), with ``prefix`` in front."""
    if style not in NAME_STYLES:
        raise FormatError(f"blendshape name style must be one of {', '.join(NAME_STYLES)}, got {style!r}")
    return prefix + (name[0].lower() + name[1:] if style == "arkit" else name)


def _number(value: float) -> str:
    text = f"{value:.6g}"
    return "0" if text == "-0" else text


def _curve_lines(times: np.ndarray, values: np.ndarray, attribute: str, path: str) -> list[str]:
    keys = linear_keys(times, values / UNITY_WEIGHT_SCALE) if len(times) else np.zeros(0, int)
    lines = ["  - curve:", "      serializedVersion: 2", "      m_Curve:"]
    kept_t, kept_v = times[keys], values[keys]
    slopes = np.diff(kept_v) / np.maximum(np.diff(kept_t), 1e-9)
    for i, (time, value) in enumerate(zip(kept_t, kept_v)):
        in_slope = slopes[i - 1] if i > 0 else 0.0
        out_slope = slopes[i] if i < len(slopes) else 0.0
        lines += ["      - serializedVersion: 3", f"        time: {_number(time)}", f"        value: {_number(value)}",
                  f"        inSlope: {_number(in_slope)}", f"        outSlope: {_number(out_slope)}",
                  f"        tangentMode: {LINEAR_BROKEN}", "        weightedMode: 0",
                  "        inWeight: 0.33333334", "        outWeight: 0.33333334"]
    lines += ["      m_PreInfinity: 2", "      m_PostInfinity: 2", "      m_RotationOrder: 4",
              f"    attribute: {attribute}", f"    path: {_yaml_string(path)}",
              f"    classID: {SKINNED_MESH_RENDERER}", "    script: {fileID: 0}"]
    return lines


def _yaml_string(text: str) -> str:
    if text == "" or any(c in text for c in ":#{}[],&*!|>'\"%@`") or text != text.strip():
        return "'" + text.replace("'", "''") + "'"
    return text


def unity_anim_text(track: MotionTrack, name: str, renderer_path: str = "", name_style: str = "livelink",
                    name_prefix: str = "") -> str:
    """The ``.anim`` file's text for ``track`` (see the module notes)."""
    if "\n" in renderer_path or "\n" in name:
        raise FormatError("Unity renderer path and clip name must be one line")
    times = np.asarray(track.times, dtype=np.float64)
    weights = np.clip(np.asarray(track.blendshapes, dtype=np.float64), 0.0, 1.0) * UNITY_WEIGHT_SCALE
    curves: list[str] = []
    for index, shape in enumerate(ARKIT_NAMES):
        attribute = "blendShape." + blendshape_name(shape, name_style, name_prefix)
        curves += _curve_lines(times, weights[:, index], attribute, renderer_path)
    stop = float(times[-1]) if len(times) else 0.0
    head = ["%YAML 1.1", "%TAG !u! tag:unity3d.com,2011:", "--- !u!74 &7400000", "AnimationClip:",
            "  m_ObjectHideFlags: 0", "  m_CorrespondingSourceObject: {fileID: 0}", "  m_PrefabInstance: {fileID: 0}",
            "  m_PrefabAsset: {fileID: 0}", f"  m_Name: {_yaml_string(name)}", "  serializedVersion: 7",
            "  m_Legacy: 0", "  m_Compressed: 0", "  m_UseHighQualityCurve: 1", "  m_RotationCurves: []",
            "  m_CompressedRotationCurves: []", "  m_EulerCurves: []", "  m_PositionCurves: []",
            "  m_ScaleCurves: []", "  m_FloatCurves:"]
    tail = ["  m_PPtrCurves: []", f"  m_SampleRate: {_number(track.fps)}", "  m_WrapMode: 0", "  m_Bounds:",
            "    m_Center: {x: 0, y: 0, z: 0}", "    m_Extent: {x: 0, y: 0, z: 0}", "  m_ClipBindingConstant:",
            "    genericBindings: []", "    pptrCurveMapping: []", "  m_AnimationClipSettings:",
            "    serializedVersion: 2", "    m_AdditiveReferencePoseClip: {fileID: 0}",
            "    m_AdditiveReferencePoseTime: 0", "    m_StartTime: 0", f"    m_StopTime: {_number(stop)}",
            "    m_OrientationOffsetY: 0", "    m_Level: 0", "    m_CycleOffset: 0",
            "    m_HasAdditiveReferencePose: 0", "    m_LoopTime: 0", "    m_LoopBlend: 0",
            "    m_LoopBlendOrientation: 0", "    m_LoopBlendPositionY: 0", "    m_LoopBlendPositionXZ: 0",
            "    m_KeepOriginalOrientation: 0", "    m_KeepOriginalPositionY: 1",
            "    m_KeepOriginalPositionXZ: 0", "    m_HeightFromFeet: 0", "    m_Mirror: 0"]
    # Unity keeps the editable copy of float curves in m_EditorCurves; an imported clip needs both.
    editor = ["  m_EditorCurves:"] + curves
    end = ["  m_EulerEditorCurves: []", "  m_HasGenericRootTransform: 0", "  m_HasMotionFloatCurves: 0",
           "  m_Events: []"]
    return "\n".join(head + curves + tail + editor + end) + "\n"


def write_unity_anim(track: MotionTrack, path: str | Path, name: str, renderer_path: str = "",
                     name_style: str = "livelink", name_prefix: str = "") -> None:
    Path(path).write_text(unity_anim_text(track, name, renderer_path, name_style, name_prefix), encoding="utf-8")
