"""Unity .anim and Godot 4 .tres exports, read back with real parsers: PyYAML on Unity's YAML
subset (its %TAG / !u! headers included), and the Godot 4 engine itself (headless, via
tools/godot.sh) playing the .tres on a MeshInstance3D with the 52 blend shapes."""
from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import ROOT, fixture_line
from npcface.core.arkit import ARKIT_INDEX, ARKIT_NAMES
from npcface.core.audio.decode import load_audio
from npcface.core.errors import FormatError
from npcface.core.formats.godot_anim import godot_animation_text, write_godot_animation
from npcface.core.formats.keys import linear_keys
from npcface.core.formats.unity_anim import unity_anim_text
from npcface.core.motion.generator import MotionGenerator
from npcface.core.types import Controls, EmotionEvent

GODOT = ROOT / "tools" / "godot.sh"
GODOT_CHROOT = Path(os.environ.get("NPCFACE_GODOT_ROOT", Path.home() / ".cache/npcface/godot-sid"))


@pytest.fixture(scope="module")
def track():
    wav, text = fixture_line("line_bilabials")
    generator = MotionGenerator(Controls(fps=30.0, seed=4))
    return generator.animate(load_audio(wav), text=text, emotions=[EmotionEvent(0.0, "happy", 0.7, ramp=0.0)])


class UnityLoader(yaml.SafeLoader):
    """PyYAML reads Unity's files once the `!u!` class tags are accepted as plain mappings."""


UnityLoader.add_multi_constructor("tag:unity3d.com,2011:", lambda loader, suffix, node: loader.construct_mapping(node, deep=True))


def evaluate_linear(keys: list[dict], t: float) -> float:
    """Unity's evaluation of a curve whose keys are all linear (tangent mode 69)."""
    times = [k["time"] for k in keys]
    return float(np.interp(t, times, [k["value"] for k in keys]))


def test_unity_anim_parses_as_unity_yaml_and_its_curves_follow_the_track(track):
    text = unity_anim_text(track, "bob_line", renderer_path="Body/Face")
    assert text.startswith("%YAML 1.1\n%TAG !u! tag:unity3d.com,2011:\n--- !u!74 &7400000\n")
    clip = yaml.load(text, Loader=UnityLoader)["AnimationClip"]
    assert clip["m_Name"] == "bob_line"
    assert clip["m_SampleRate"] == 30
    curves = {c["attribute"]: c for c in clip["m_FloatCurves"]}
    assert set(curves) == {f"blendShape.{name}" for name in ARKIT_NAMES}
    assert all(c["path"] == "Body/Face" and c["classID"] == 137 for c in curves.values())
    assert len(clip["m_EditorCurves"]) == 52
    assert abs(clip["m_AnimationClipSettings"]["m_StopTime"] - track.times[-1]) < 1e-4
    for name in ("JawOpen", "MouthClose", "MouthSmileLeft", "EyeBlinkLeft"):
        keys = curves[f"blendShape.{name}"]["curve"]["m_Curve"]
        assert all(k["tangentMode"] == 69 for k in keys)
        expected = track.channel(name) * 100.0  # Unity weights are 0..100
        got = np.array([evaluate_linear(keys, t) for t in track.times])
        assert np.max(np.abs(got - expected)) < 0.25, name  # the key reduction keeps within 0.2
        # the slopes written are those of the straight lines between keys
        for a, b in zip(keys, keys[1:]):
            slope = (b["value"] - a["value"]) / (b["time"] - a["time"])
            assert abs(a["outSlope"] - slope) <= 1e-3 * max(1.0, abs(slope))
    jaw = curves["blendShape.JawOpen"]["curve"]["m_Curve"]
    assert max(k["value"] for k in jaw) > 20, "the jaw opens somewhere in the line"
    assert len(jaw) < len(track), "flat stretches collapse to fewer keys"


def test_unity_names_can_follow_apples_arkit_spelling(track):
    text = unity_anim_text(track, "x", name_style="arkit", name_prefix="face.")
    assert "attribute: blendShape.face.jawOpen\n" in text and "JawOpen" not in text


def test_unity_renderer_path_with_yaml_specials_is_quoted(track):
    clip = yaml.load(unity_anim_text(track, "x", renderer_path="Rig: Head/Face"), Loader=UnityLoader)["AnimationClip"]
    assert clip["m_FloatCurves"][0]["path"] == "Rig: Head/Face"


def parse_tres(text: str) -> dict[str, tuple[str, np.ndarray]]:
    """Godot's text resource: track path -> (type, keys as (N, 3) time, transition, value)."""
    fields = dict(re.findall(r"^(tracks/\d+/\w+) = (.*)$", text, flags=re.M))
    tracks = {}
    for index in range(len([k for k in fields if k.endswith("/type")])):
        path = re.fullmatch(r'NodePath\("(.*)"\)', fields[f"tracks/{index}/path"]).group(1)
        numbers = re.fullmatch(r"PackedFloat32Array\((.*)\)", fields[f"tracks/{index}/keys"]).group(1)
        keys = np.array([float(v) for v in numbers.split(",")]).reshape(-1, 3)
        tracks[path] = (fields[f"tracks/{index}/type"].strip('"'), keys)
    return tracks


def test_godot_tres_text_has_a_blend_shape_track_per_arkit_shape(track):
    text = godot_animation_text(track, "bob_line", mesh_path="Head/Face")
    assert text.startswith('[gd_resource type="Animation" format=3]\n\n[resource]\n')
    length = float(re.search(r"^length = (.*)$", text, flags=re.M).group(1))
    assert abs(length - track.times[-1]) < 1e-4
    tracks = parse_tres(text)
    assert set(tracks) == {f"Head/Face:{name}" for name in ARKIT_NAMES}
    for name in ("JawOpen", "MouthClose", "EyeBlinkRight"):
        kind, keys = tracks[f"Head/Face:{name}"]
        assert kind == "blend_shape"
        assert np.all(keys[:, 1] == 1) and np.all(np.diff(keys[:, 0]) > 0)
        got = np.interp(track.times, keys[:, 0], keys[:, 2])
        assert np.max(np.abs(got - track.channel(name))) < 0.0025, name


def test_bad_export_paths_get_one_clear_error(track):
    with pytest.raises(FormatError, match="without ':'"):
        godot_animation_text(track, "x", mesh_path="Face:JawOpen")
    with pytest.raises(FormatError, match="one line"):
        unity_anim_text(track, "x", renderer_path="Face\nEvil: 1")
    with pytest.raises(FormatError, match="name style"):
        unity_anim_text(track, "x", name_style="maya")


def test_linear_keys_keep_every_corner_and_drop_straight_runs():
    times = np.arange(11) / 10
    values = np.array([0, 0, 0, 0, 0.5, 1, 1, 1, 0.2, 0.2, 0.2])
    keys = linear_keys(times, values)
    assert list(keys) == [0, 3, 5, 7, 8, 10]
    assert np.allclose(np.interp(times, times[keys], values[keys]), values)


GODOT_PLAYER = """extends SceneTree
# Plays res://line.tres on a MeshInstance3D "Face" with the ARKit blend shapes and prints the
# weights Godot applies at the times listed in res://times.json.
func _initialize():
    var anim: Animation = load("res://line.tres")
    var names: Array = JSON.parse_string(FileAccess.get_file_as_string("res://names.json"))
    var times: Array = JSON.parse_string(FileAccess.get_file_as_string("res://times.json"))
    var triangle = PackedVector3Array([Vector3(0, 0, 0), Vector3(1, 0, 0), Vector3(0, 1, 0)])
    var mesh = ArrayMesh.new()
    for name in names:
        mesh.add_blend_shape(name)
    var arrays = []
    arrays.resize(Mesh.ARRAY_MAX)
    arrays[Mesh.ARRAY_VERTEX] = triangle
    var shapes = []
    for name in names:
        var shape = []
        shape.resize(Mesh.ARRAY_MAX)
        shape[Mesh.ARRAY_VERTEX] = triangle
        shapes.append(shape)
    mesh.add_surface_from_arrays(Mesh.PRIMITIVE_TRIANGLES, arrays, shapes)
    var root = Node3D.new()
    var face = MeshInstance3D.new()
    face.name = "Face"
    face.mesh = mesh
    root.add_child(face)
    var player = AnimationPlayer.new()
    root.add_child(player)
    var library = AnimationLibrary.new()
    library.add_animation("line", anim)
    player.add_animation_library("", library)
    get_root().add_child(root)
    player.play("line")
    var rows = []
    for t in times:
        player.seek(t, true)
        var row = []
        for i in range(names.size()):
            row.append(face.get_blend_shape_value(i))
        rows.append(row)
    print("WEIGHTS " + JSON.stringify({"tracks": anim.get_track_count(), "rows": rows}))
    quit(0)
"""


def godot_ready() -> str:
    if not GODOT.is_file():
        return "tools/godot.sh is not in this checkout"
    if not (GODOT_CHROOT / ".npcface-ready").is_file():
        return f"no Godot chroot at {GODOT_CHROOT} (build it once: bash tools/godot.sh --version)"
    return ""


@pytest.mark.skipif(bool(godot_ready()), reason=godot_ready() or "Godot ready")
def test_godot_engine_plays_the_tres_on_a_blend_shape_mesh(track, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "project.godot").write_text('config_version=5\n\n[application]\nconfig/name="npcface export test"\n')
    write_godot_animation(track, project / "line.tres", "line", mesh_path="Face")
    (project / "names.json").write_text(json.dumps(list(ARKIT_NAMES)))
    times = [float(t) for t in track.times[::7]] + [float(track.times[5]) + 0.013]
    (project / "times.json").write_text(json.dumps(times))
    (project / "player.gd").write_text(GODOT_PLAYER)
    result = subprocess.run(["bash", str(GODOT), "--path", str(project), "-s", "res://player.gd"],
                            capture_output=True, text=True, timeout=120)
    found = [line for line in result.stdout.splitlines() if line.startswith("WEIGHTS ")]
    assert result.returncode == 0 and found, result.stdout[-2000:] + result.stderr[-2000:]
    played = json.loads(found[0][len("WEIGHTS "):])
    assert played["tracks"] == 52
    weights = np.array(played["rows"])
    expected = np.stack([np.interp(times, track.times, track.blendshapes[:, i]) for i in range(52)], axis=1)
    assert np.max(np.abs(weights - expected)) < 0.004
    jaw = weights[:, ARKIT_INDEX["JawOpen"]]
    assert jaw.max() > 0.2 and jaw.min() < 0.05, "Godot opens and closes the jaw as the line does"
