"""Driving a portrait from a performance (core/capture/drive, `npcface render --drive`): Live Link CSV, motion
JSON and a talking video captured on the fly, retargeted onto the portrait, with sound muxed in."""
from __future__ import annotations

import av
import numpy as np
import pytest

from conftest import FIXTURES, fixture_line
from npcface.bridge.cli import main
from npcface.core.arkit import ARKIT_INDEX
from npcface.core.audio.decode import load_audio
from npcface.core.capture.drive import EYES_FROM_PIVOT_M, driven_line, from_capture, resample, retarget
from npcface.core.formats.livelink import write_livelink_csv, write_motion_json
from npcface.core.render.renderer import Renderer
from npcface.core.render.rig import build_rig, load_image
from npcface.core.types import MotionFrame, MotionTrack
from npcface.core.formats.video import read_video, write_mp4

JAW = ARKIT_INDEX["JawOpen"]
SMILE = ARKIT_INDEX["MouthSmileLeft"]


def take(count: int = 30, fps: float = 30.0) -> MotionTrack:
    """A take that rests with the jaw a little open and a slight smile, then opens wide at frame 20."""
    weights = np.zeros((count, 52), dtype=np.float32)
    weights[:, JAW] = 0.2
    weights[:, SMILE] = 0.3
    weights[18:23, JAW] = [0.5, 0.8, 1.0, 0.8, 0.5][:max(0, count - 18)]
    rotation = np.zeros((count, 3))
    rotation[:, 0] = 5.0  # the actor faced a little aside throughout
    rotation[25:26, 0] = 80.0  # a wild turn the portrait cannot show
    return MotionTrack(fps=fps, times=np.arange(count) / fps, head_rotation=rotation,
                       head_translation=np.zeros((count, 3)), gaze=np.zeros((count, 2, 2)), blendshapes=weights)


@pytest.fixture(scope="module")
def portrait(tmp_path_factory):
    image = load_image(FIXTURES / "portrait_astronaut.png")
    rig = build_rig(np.ascontiguousarray(image[10:250, 105:345]))
    path = tmp_path_factory.mktemp("drive") / "astronaut.rig"
    rig.save(path)
    return rig, path


def test_retarget_subtracts_the_takes_neutral_and_keeps_the_range():
    driven = retarget(take())
    assert np.allclose(driven.blendshapes[:18], 0.0)  # the take's rest is the portrait's rest
    assert driven.blendshapes[20, JAW] == pytest.approx(1.0)  # a full opening stays full
    assert 0.0 < driven.blendshapes[19, JAW] < 0.8  # in between, rescaled above the rest value
    assert np.allclose(driven.head_rotation[:25], 0.0)  # the actor's constant turn is their neutral
    assert driven.head_rotation[25, 0] == pytest.approx(30.0)  # limited to what a picture can show
    by_frame = retarget(take(), neutral=20)  # the portrait was made from the open frame
    assert by_frame.blendshapes[20, JAW] == 0.0 and by_frame.blendshapes[0, JAW] == 0.0


def test_resample_makes_a_constant_rate_from_a_60fps_take_with_a_dropped_frame():
    track = take(60, fps=60.0)
    keep = np.r_[0:40, 41:60]  # frame 40 was dropped
    gappy = MotionTrack(fps=60.0, times=track.times[keep], head_rotation=track.head_rotation[keep],
                        head_translation=track.head_translation[keep], gaze=track.gaze[keep],
                        blendshapes=track.blendshapes[keep])
    out = resample(gappy, 30.0)
    assert len(out) == 30 and np.allclose(np.diff(out.times), 1 / 30)
    assert out.blendshapes[10, JAW] == pytest.approx(track.blendshapes[20, JAW])  # t = 1/3 s


def mouth_difference(frame_a: np.ndarray, frame_b: np.ndarray, rig) -> float:
    lips = rig.landmarks[[13, 14, 61, 291], :2] * (frame_a.shape[1] / rig.image.shape[1])
    x0, y0 = lips.min(axis=0).astype(int) - 4
    x1, y1 = lips.max(axis=0).astype(int) + 12
    return float(np.abs(frame_a[y0:y1, x0:x1].astype(float) - frame_b[y0:y1, x0:x1]).mean())


def test_cli_drives_a_portrait_from_a_csv_and_muxes_the_given_sound(portrait, tmp_path, capsys):
    rig, rig_path = portrait
    csv_path, out = tmp_path / "take.csv", tmp_path / "driven.mp4"
    write_livelink_csv(take(), csv_path)
    wav, _ = fixture_line("line_greeting")
    code = main(["render", str(rig_path), "--drive", str(csv_path), "--audio", str(wav), "--size", "160",
                 "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    frames = [rgb for _, rgb in read_video(out)]
    assert len(frames) == 30  # the take's 30 frames, 0 .. 0.967 s at 30 fps
    assert mouth_difference(frames[20], frames[2], rig) > 3 * mouth_difference(frames[10], frames[2], rig)
    with av.open(str(out)) as container:
        assert len(container.streams.audio) == 1


def test_cli_drives_from_motion_json_without_sound(portrait, tmp_path, capsys):
    _, rig_path = portrait
    json_path, out = tmp_path / "take.json", tmp_path / "frames"
    write_motion_json(take(10), json_path)
    code = main(["render", str(rig_path), "--drive", str(json_path), "--size", "64", "-o", str(out) + "/"])
    assert code == 0, capsys.readouterr().err
    assert len(list(out.glob("*.png"))) == 10
    assert "no sound" in capsys.readouterr().out


def test_a_video_drives_the_portrait_with_its_own_sound(portrait, tmp_path):
    rig, _ = portrait
    renderer = Renderer(rig, 256)
    jaw = 0.6 * np.sin(np.linspace(0, 2 * np.pi, 40)) ** 2
    frames = []
    for i, value in enumerate(jaw):
        weights = np.zeros(52, dtype=np.float32)
        weights[JAW] = value
        frames.append(renderer.render(MotionFrame(i / 25, (0, 0, 0), (0, 0, 0), (0, 0), (0, 0), weights)).rgba)
    video = tmp_path / "actor.mp4"
    wav, _ = fixture_line("line_greeting")
    write_mp4(video, frames, 25, audio=load_audio(wav))
    line = driven_line(video, fps=25)
    assert line.audio is not None and line.audio.duration == pytest.approx(load_audio(wav).duration, abs=0.1)
    assert line.frames_without_face == 0 and len(line.track) == 40
    assert np.corrcoef(line.track.channel("JawOpen"), jaw)[0, 1] > 0.9


@pytest.mark.parametrize(("argv", "message"), [
    (["--drive", "{tmp}/missing.csv"], "--drive take not found"),
    (["--drive", "{tmp}/take.txt"], "must be a Live Link Face CSV (.csv)"),
    (["--drive", "{tmp}/no_shapes.csv"], "missing blendshape column(s)"),
    (["--drive", "{tmp}/blank.mp4"], "no face found in any of the"),
    (["{wav}", "--drive", "{tmp}/take.csv", "--audio", "{wav}"], "two sounds for one take"),
    (["--drive", "{tmp}/take.csv", "--text", "hello"], "--text applies to lines animated from audio"),
    (["--drive", "{tmp}/take.csv", "--emotion", "happy"], "--emotion applies to lines animated from audio"),
    (["--drive", "{tmp}/take.csv", "--audio", "{tmp}/take.txt"], "take.txt"),
    (["--audio", "{wav}"], "--audio goes with --drive"),
    ([], "give the line's audio, or --drive TAKE"),
])
def test_bad_drive_inputs_get_one_line_and_exit_2(portrait, tmp_path, capsys, argv, message):
    _, rig_path = portrait
    wav, _ = fixture_line("line_greeting")
    write_livelink_csv(take(5), tmp_path / "take.csv")
    (tmp_path / "take.txt").write_text("not a take")
    (tmp_path / "no_shapes.csv").write_text("Timecode,BlendShapeCount,HeadYaw\n00:00:00:01.000,1,0.1\n")
    write_mp4(tmp_path / "blank.mp4", [np.full((64, 64, 3), 90, np.uint8)] * 3, 25)
    argv = [a.format(tmp=tmp_path, wav=wav) for a in argv]
    out = tmp_path / "out.mp4"
    code = main(["render", str(rig_path), *argv, "--size", "64", "-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err, err
    assert not out.exists()


def test_a_captured_head_turning_in_place_does_not_also_slide():
    """Capture places the head by its eyes, which swing when it turns or nods about its pivot; the
    renderer swings them itself, so a head turning in place must come out with no translation (the
    eyes' swing is worked out here by hand: yaw + swings them to the image right, a nod chin-up lifts them)."""
    angles = np.radians(np.linspace(-25, 25, 11))
    forward, above = EYES_FROM_PIVOT_M[2], -EYES_FROM_PIVOT_M[1]  # the eyes: in front of and above the pivot
    yaw_take = MotionTrack(fps=30.0, times=np.arange(11) / 30, gaze=np.zeros((11, 2, 2)),
                           head_rotation=np.stack([np.degrees(angles), 0 * angles, 0 * angles], axis=1),
                           head_translation=np.stack([forward * np.sin(angles), 0 * angles,
                                                      forward * (np.cos(angles) - 1)], axis=1),
                           blendshapes=np.zeros((11, 52), dtype=np.float32))
    assert np.abs(from_capture(yaw_take).head_translation - from_capture(yaw_take).head_translation[5]).max() < 1e-4
    pitch_take = MotionTrack(fps=30.0, times=np.arange(11) / 30, gaze=np.zeros((11, 2, 2)),
                             head_rotation=np.stack([0 * angles, np.degrees(angles), 0 * angles], axis=1),
                             head_translation=np.stack([0 * angles, forward * np.sin(angles) + above * (np.cos(angles) - 1),
                                                        forward * (np.cos(angles) - 1) - above * np.sin(angles)], axis=1),
                             blendshapes=np.zeros((11, 52), dtype=np.float32))
    moved = from_capture(pitch_take).head_translation
    assert np.abs(moved - moved[5]).max() < 1e-4
    assert np.abs(pitch_take.head_translation[0] - pitch_take.head_translation[5]).max() > 0.01  # the take did swing


def test_a_jaw_closing_past_the_portraits_rest_lifts_the_closed_lips(portrait):
    """The portrait's frame caught the jaw dropped behind closed lips (JawOpen = MouthClose = 0.15, a
    bilabial); later closed frames hold the jaw higher. Their lips must render above the picture's,
    and openings and a take whose rest has the jaw up get no lift."""
    rig, _ = portrait
    count, close = 8, ARKIT_INDEX["MouthClose"]
    weights = np.zeros((count, 52), dtype=np.float32)
    weights[:, JAW] = weights[:, close] = 0.02
    weights[0, JAW] = weights[0, close] = 0.15
    weights[5, JAW], weights[5, close] = 0.5, 0.0
    track = MotionTrack(fps=30.0, times=np.arange(count) / 30, head_rotation=np.zeros((count, 3)),
                        head_translation=np.zeros((count, 3)), gaze=np.zeros((count, 2, 2)), blendshapes=weights)
    driven = retarget(track, neutral=0)
    shrugs = driven.blendshapes[:, [ARKIT_INDEX["MouthShrugLower"], ARKIT_INDEX["MouthShrugUpper"]]]
    assert np.all(shrugs[[1, 2, 3, 4, 6, 7]] == 1.0) and np.all(shrugs[[0, 5]] == 0.0), shrugs
    renderer = Renderer(rig, rig.image.shape[1::-1], watermark=False)
    lips = [0, 13, 14, 17]  # the lips' middle, top to bottom
    rest = renderer.geometry(driven.frame(0)).deformed[lips, 1]
    lifted = renderer.geometry(driven.frame(1)).deformed[lips, 1]
    assert np.all(lifted < rest - 0.02 * rig.mouth_width), (rest, lifted)
    assert not retarget(track, neutral=1).blendshapes[:, [ARKIT_INDEX["MouthShrugLower"]]].any()


def test_head_poses_are_turned_back_by_the_neutral_pose_not_subtracted():
    """A performer holding the head rolled 20 degrees turns it 25 degrees about the neck: the retargeted
    rotation, applied to the portrait (which shows the neutral pose), must give the performer's pose;
    subtracting the angles gives a turn about the camera's axis instead, off by several degrees."""
    from npcface.core.render.renderer import rotation_matrix

    poses = np.array([[0.0, 5.0, 20.0], [25.0, 5.0, 20.0], [-10.0, -8.0, 12.0]])
    track = MotionTrack(fps=30.0, times=np.arange(3) / 30, head_rotation=poses, head_translation=np.zeros((3, 3)),
                        gaze=np.zeros((3, 2, 2)), blendshapes=np.zeros((3, 52), dtype=np.float32))
    driven = retarget(track, neutral=0)
    neutral = rotation_matrix(*poses[0], dtype=np.float64)
    for pose, relative in zip(poses, driven.head_rotation):
        assert np.allclose(rotation_matrix(*relative, dtype=np.float64) @ neutral,
                           rotation_matrix(*pose, dtype=np.float64), atol=1e-9)
    subtracted = rotation_matrix(*(poses[1] - poses[0]), dtype=np.float64) @ neutral
    assert np.degrees(np.arccos((np.trace(subtracted.T @ rotation_matrix(*poses[1], dtype=np.float64)) - 1) / 2)) > 3
