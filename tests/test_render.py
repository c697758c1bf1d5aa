"""core/render: the mesh-warp renderer on a real rig of the committed portrait, checked through
what a player sees (an open mouth is dark inside, closed lids hide the iris, a turned head is
found turned by MediaPipe), plus `npcface render` end to end and its errors."""
from __future__ import annotations

import re

import cv2
import numpy as np
import pytest

from npcface.bridge.cli import main as npcface_main
from npcface.core.arkit import ARKIT_INDEX
from npcface.core.errors import ControlError
from npcface.core.render.renderer import Renderer
from npcface.core.render.rig import build_rig, load_image
from npcface.core.render.rig_mesh import FACE_OVAL, IRIS_LEFT, IRIS_RIGHT, LIPS_LOWER_OUTER, LIPS_UPPER_OUTER
from npcface.core.types import MotionFrame

SIZE = 256


def motion(yaw=0.0, pitch=0.0, roll=0.0, z=0.0, gaze=(0.0, 0.0), **weights) -> MotionFrame:
    blendshapes = np.zeros(52, dtype=np.float32)
    for name, value in weights.items():
        blendshapes[ARKIT_INDEX[name]] = value
    return MotionFrame(time=0.0, head_rotation=(yaw, pitch, roll), head_translation=(0.0, 0.0, z),
                       gaze_left=gaze, gaze_right=gaze, blendshapes=blendshapes)


@pytest.fixture(scope="module")
def face_rig():
    """The astronaut cropped to her head, so the face fills the frame."""
    from conftest import FIXTURES

    portrait = load_image(FIXTURES / "portrait_astronaut.png")
    return build_rig(np.ascontiguousarray(portrait[10:250, 105:345]))


@pytest.fixture(scope="module")
def renderer(face_rig) -> Renderer:
    return Renderer(face_rig, SIZE, watermark=False)  # the warp alone, to the pixel


def rgb(renderer, frame) -> np.ndarray:
    return renderer.render(frame).rgba[..., :3].astype(np.float64)


def luminance(image: np.ndarray) -> np.ndarray:
    return image @ np.array([0.299, 0.587, 0.114])


def polygon(renderer, ids, shape) -> np.ndarray:
    mask = np.zeros(shape[:2], dtype=np.uint8)
    cv2.fillPoly(mask, [np.round(renderer.vertices[list(ids), :2]).astype(np.int32)], 1)
    return mask > 0


def landmarks_of(image: np.ndarray) -> np.ndarray:
    from npcface.core.render.rig_mesh import detect_landmarks

    return detect_landmarks(np.ascontiguousarray(image.astype(np.uint8)), None, "render")


def test_neutral_frame_reproduces_the_picture(renderer):
    out = rgb(renderer, motion())
    face = polygon(renderer, FACE_OVAL, out.shape)
    error = (out - renderer.view_image)[face]
    psnr = 10 * np.log10(255.0 ** 2 / max(np.mean(error ** 2), 1e-12))
    assert psnr >= 40.0, psnr
    assert np.abs(out - renderer.view_image).max() <= 1  # in fact the whole picture, to the pixel


def test_output_is_rgba_of_the_requested_size(face_rig):
    for size, shape in ((128, (128, 128, 4)), ((320, 200), (200, 320, 4)), ((96, 160), (160, 96, 4))):
        frame = Renderer(face_rig, size).render(motion(JawOpen=0.4, yaw=5))
        assert frame.rgba.shape == shape and frame.rgba.dtype == np.uint8
        assert np.all(frame.rgba[..., 3] == 255)


def test_cutout_makes_the_background_transparent(face_rig):
    alpha = Renderer(face_rig, 128, cutout=True).render(motion()).rgba[..., 3]
    assert alpha[64, 64] > 200  # the face
    assert (alpha < 30).mean() > 0.05  # some background is see-through


def test_same_frame_renders_identically_and_small_changes_stay_small(renderer):
    frame = motion(yaw=7, pitch=-3, JawOpen=0.3, MouthSmileLeft=0.5, EyeBlinkLeft=0.4, gaze=(8, 2))
    assert np.array_equal(renderer.render(frame).rgba, renderer.render(frame).rgba)
    base = rgb(renderer, frame)
    nudged = rgb(renderer, motion(yaw=7.2, pitch=-3, JawOpen=0.31, MouthSmileLeft=0.5, EyeBlinkLeft=0.4,
                                   gaze=(8, 2)))
    bigger = rgb(renderer, motion(yaw=12, pitch=-3, JawOpen=0.6, MouthSmileLeft=0.5, EyeBlinkLeft=0.4,
                                   gaze=(8, 2)))
    small, large = np.abs(nudged - base).mean(), np.abs(bigger - base).mean()
    assert small < 1.0 and small < 0.2 * large


def mouth_box(renderer) -> tuple[slice, slice]:
    """From the top of the upper lip to a little below the lower lip at rest."""
    lips = renderer.vertices[list(LIPS_UPPER_OUTER + LIPS_LOWER_OUTER), :2]
    x0, y0 = lips.min(axis=0)
    x1, y1 = lips.max(axis=0)
    return slice(int(y0), int(y1 + 0.3 * (x1 - x0))), slice(int(x0), int(x1) + 1)


def dark_pixels(renderer, frame) -> int:
    rows, cols = mouth_box(renderer)
    face = polygon(renderer, FACE_OVAL, renderer.view_image.shape)
    skin = np.median(luminance(renderer.view_image.astype(np.float64))[face])
    return int((luminance(rgb(renderer, frame))[rows, cols] < 0.35 * skin).sum())


def test_open_jaw_shows_a_dark_mouth_interior(renderer):
    rows, cols = mouth_box(renderer)
    area = (rows.stop - rows.start) * (cols.stop - cols.start)
    dark = {jaw: dark_pixels(renderer, motion(JawOpen=jaw)) for jaw in (0.0, 0.5, 1.0)}
    assert dark[0.0] < 0.03 * area, (dark, area)  # a closed (smiling) mouth: a few dark corner pixels
    assert dark[0.5] > 0.05 * area and dark[0.5] > 4 * dark[0.0] and dark[1.0] > 1.4 * dark[0.5], (dark, area)


def test_lips_close_again_with_mouth_close(renderer):
    opened = dark_pixels(renderer, motion(JawOpen=0.5))
    closed = dark_pixels(renderer, motion(JawOpen=0.5, MouthClose=0.5))
    assert closed < 0.3 * opened, (closed, opened)


def iris_disk(renderer, iris) -> np.ndarray:
    centre = renderer.vertices[iris[0], :2]
    radius = np.linalg.norm(renderer.vertices[list(iris[1:]), :2] - centre, axis=1).mean()
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    return np.hypot(xs - centre[0], ys - centre[1]) < 0.8 * radius


def test_closed_eyelids_cover_the_iris(renderer):
    for iris, side in ((IRIS_LEFT, "Left"), (IRIS_RIGHT, "Right")):
        disk = iris_disk(renderer, iris)
        open_lum = luminance(rgb(renderer, motion()))[disk].mean()
        closed = rgb(renderer, motion(**{f"EyeBlink{side}": 1.0}))
        closed_lum = luminance(closed)[disk].mean()
        lid = luminance(renderer.view_image.astype(np.float64))[polygon(renderer, FACE_OVAL, closed.shape)]
        # the dark iris is gone: the disk is now about as bright as skin
        assert closed_lum > open_lum + 25 and closed_lum > 0.6 * np.median(lid), (side, open_lum, closed_lum)


def test_gaze_moves_the_iris_inside_the_eye(renderer):
    from npcface.core.render.rig_mesh import EYE_LEFT_LOWER, EYE_LEFT_UPPER

    opening = polygon(renderer, EYE_LEFT_UPPER + EYE_LEFT_LOWER[-2:0:-1], renderer.view_image.shape)
    ys, xs = np.mgrid[0:SIZE, 0:SIZE]
    eye_width = np.ptp(renderer.vertices[[263, 362], 0])
    positions = {}
    for yaw in (-25.0, 0.0, 25.0):
        lum = luminance(rgb(renderer, motion(gaze=(yaw, 0.0))))
        dark = opening & (lum < np.percentile(lum[opening], 40))
        positions[yaw] = xs[dark].mean()
    # yaw + = looking to its left = toward image right for a portrait facing the camera
    step = 0.06 * eye_width
    assert positions[-25.0] < positions[0.0] - step and positions[0.0] < positions[25.0] - step, positions


def test_yaw_and_pitch_turn_the_face_as_mediapipe_sees_it(renderer):
    def nose_offset(frame):
        points = landmarks_of(rgb(renderer, frame))
        oval = points[list(FACE_OVAL), :2].mean(axis=0)
        return (points[1, :2] - oval) / np.ptp(points[:468, 0])

    rest = nose_offset(motion())
    assert nose_offset(motion(yaw=20))[0] > rest[0] + 0.05  # turned to its left: nose toward image right
    assert nose_offset(motion(yaw=-20))[0] < rest[0] - 0.05
    assert nose_offset(motion(pitch=15))[1] < rest[1] - 0.03  # chin up: the nose rises in the face


def test_roll_and_distance(renderer):
    def eye_line(frame):
        points = landmarks_of(rgb(renderer, frame))
        right, left = points[[33, 133]].mean(axis=0), points[[263, 362]].mean(axis=0)
        return np.degrees(np.arctan2(left[1] - right[1], left[0] - right[0])), np.linalg.norm(left - right)

    angle0, iod0 = eye_line(motion())
    angle, _ = eye_line(motion(roll=10))
    # roll + = toward its own left shoulder (image right): the eye line tilts clockwise on screen
    assert 6 < angle0 - angle < 14 or 6 < angle - angle0 < 14
    _, far = eye_line(motion(z=-0.3))  # 0.3 m farther from a camera 0.6 m away: 2/3 the size
    assert 0.58 < far / iod0 < 0.76


def test_a_head_moving_sideways_moves_its_eyes_by_the_translation(renderer):
    """Capture measures head translation at the eyes; 2 cm aside and 1 cm up must move the rendered eyes
    2 and 1 cm at the picture's scale (MediaPipe on the frames). The projection alone moves points behind
    the nose tip less: the eyes came out 5% short before the sway was scaled for their depth."""
    still = landmarks_of(rgb(renderer, motion()))[[33, 133, 263, 362], :2].mean(axis=0)
    frame = motion()
    moved_frame = MotionFrame(time=0.0, head_rotation=frame.head_rotation, head_translation=(0.02, 0.01, 0.0),
                              gaze_left=frame.gaze_left, gaze_right=frame.gaze_right, blendshapes=frame.blendshapes)
    moved = landmarks_of(rgb(renderer, moved_frame))[[33, 133, 263, 362], :2].mean(axis=0)
    expected = np.array([0.02, -0.01]) * renderer.px_per_metre  # image y is down
    assert np.allclose(moved - still, expected, rtol=0.03, atol=0.3), (moved - still, expected)


def signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    a, b, c = points[triangles[:, 0]], points[triangles[:, 1]], points[triangles[:, 2]]
    return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])


@pytest.mark.parametrize("yaw, pitch, roll, z", [(20, 15, 10, 0.1), (-20, -15, -10, -0.3), (20, -15, -10, 0.1),
                                                 (-20, 15, 10, 0.0), (0, 0, 15, -0.3)])
def test_no_folds_or_tears_at_the_mesh_border(renderer, face_rig, yaw, pitch, roll, z):
    """Across the pose range, no triangle outside the face turns over (a fold shows as a tear or a
    doubled edge), and the backward map has no jumps (tears) outside the lips."""
    geometry = renderer.geometry(motion(yaw=yaw, pitch=pitch, roll=roll, z=z, JawOpen=0.6))
    outer = face_rig.triangles[face_rig.num_face_triangles:]
    before, after = signed_areas(geometry.base, outer), signed_areas(geometry.deformed, outer)
    solid = np.abs(before) > 1.0
    assert np.all(np.sign(before[solid]) == np.sign(after[solid]))
    pixels = np.stack(renderer.backward_maps(geometry), axis=-1)
    jump = np.maximum(np.abs(np.diff(pixels, axis=1))[:-1].max(-1), np.abs(np.diff(pixels, axis=0))[:, :-1].max(-1))
    lips = np.vstack([geometry.base[list(LIPS_UPPER_OUTER + LIPS_LOWER_OUTER)],
                      geometry.deformed[list(LIPS_UPPER_OUTER + LIPS_LOWER_OUTER)]])
    (x0, y0), (x1, y1) = lips.min(axis=0) - 4, lips.max(axis=0) + 4
    jump[int(y0):int(y1), int(x0):int(x1)] = 0
    jump *= geometry.zoom  # in the view's pixels: a zoomed-out frame spreads every step by 1 / zoom
    assert jump.max() < 4.0, (jump.max(), np.unravel_index(jump.argmax(), jump.shape))


@pytest.mark.parametrize("frame, message", [
    (MotionFrame(0.0, (0, 0, 0), (0, 0, 0), (0, 0), (0, 0), np.zeros(51, np.float32)), "52 blendshape"),
    (MotionFrame(0.0, (float("nan"), 0, 0), (0, 0, 0), (0, 0), (0, 0), np.zeros(52, np.float32)), "NaN"),
    (MotionFrame(0.0, (0, 0, 0), (0, 0, 0.59), (0, 0), (0, 0), np.zeros(52, np.float32)), "at the camera"),
    (MotionFrame(0.0, (0, 0, 0), (0, 0, 0), (0, 0), (0, 0), np.zeros(52, np.float32), tongue_tip=float("inf")), "infinite"),
])
def test_bad_frames_are_refused(renderer, frame, message):
    with pytest.raises(ControlError, match=message):
        renderer.render(frame)


@pytest.mark.parametrize("size", [8, 5000, (0, 100), "big", (1, 2, 3)])
def test_bad_sizes_are_refused(face_rig, size):
    with pytest.raises(ControlError, match="size"):
        Renderer(face_rig, size)


def test_render_command_writes_a_video_with_sound_and_a_sheet(tmp_path, capsys):
    from conftest import fixture_line
    from npcface.core.formats.video import video_info

    wav, text = fixture_line("line_fricatives")
    rig_path = tmp_path / "face.rig"
    from conftest import FIXTURES

    assert npcface_main(["rig", str(FIXTURES / "portrait_astronaut.png"), "-o", str(rig_path)]) == 0
    out, sheet = tmp_path / "line.mp4", tmp_path / "sheet.png"
    assert npcface_main(["render", str(rig_path), str(wav), "--text", text, "--size", "160x128", "--fps", "15",
                         "-o", str(out), "--sheet", str(sheet)]) == 0
    assert "wrote" in capsys.readouterr().out
    info = video_info(out)
    assert (info.width, info.height) == (160, 128) and info.has_audio
    assert abs(info.fps - 15) < 0.01 and abs(info.duration - 4.0) < 0.3
    assert cv2.imread(str(sheet)).shape[0] > 100


def test_render_command_writes_png_frames(tmp_path):
    from conftest import FIXTURES, fixture_line

    wav, _ = fixture_line("line_fricatives")
    folder = tmp_path / "frames"
    assert npcface_main(["render", str(FIXTURES / "portrait_astronaut.png"), str(wav), "--size", "64",
                         "--fps", "5", "--cutout", "-o", str(folder) + "/"]) == 0
    pngs = sorted(folder.glob("*.png"))
    assert 18 <= len(pngs) <= 22
    first = cv2.imread(str(pngs[0]), cv2.IMREAD_UNCHANGED)
    assert first.shape == (64, 64, 4) and first[..., 3].min() < 128


@pytest.mark.parametrize("args, message", [
    (["{portrait}", "{wav}", "-o", "{tmp}/a.avi"], "must be a .mp4 file or a folder"),
    (["{portrait}", "{wav}", "-o", "{tmp}/nowhere/a.mp4"], "does not exist"),
    (["{portrait}", "{wav}", "--size", "huge", "-o", "{tmp}/a.mp4"], "--size"),
    (["{portrait}", "{wav}", "--size", "4", "-o", "{tmp}/a.mp4"], "out of range"),
    (["{portrait}", "{wav}", "--fps", "0", "-o", "{tmp}/a.mp4"], "fps"),
    (["{portrait}", "{wav}", "--emotion", "smug", "-o", "{tmp}/a.mp4"], "smug"),
    (["{portrait}", "{wav}", "--sheet", "{tmp}/s.jpg", "-o", "{tmp}/a.mp4"], "--sheet must end in .png"),
    (["{portrait}", "{tmp}/missing.wav", "-o", "{tmp}/a.mp4"], "missing.wav"),
    (["{wav}", "{wav}", "-o", "{tmp}/a.mp4"], "not a picture"),
    (["{tmp}/bad.rig", "{wav}", "-o", "{tmp}/a.mp4"], "not an npcface rig"),
])
def test_render_command_errors(args, message, tmp_path, capsys):
    from conftest import FIXTURES, fixture_line

    (tmp_path / "bad.rig").write_bytes(b"nope")
    wav, _ = fixture_line("line_fricatives")
    argv = ["render"] + [a.format(portrait=FIXTURES / "portrait_astronaut.png", wav=wav, tmp=tmp_path)
                         for a in args]
    assert npcface_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("npcface render: error:") and len(err.strip().splitlines()) == 1
    assert re.search(message, err), err
    assert not (tmp_path / "a.mp4").exists()


def test_progress_bar_only_on_a_terminal():
    import io

    from npcface.bridge.cmd_render import Progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal, pipe = Terminal(), io.StringIO()
    for stream in (terminal, pipe):
        progress = Progress(40, "render", stream=stream)
        for done in (10, 20, 40):
            progress.update(done)
        progress.close()
    assert pipe.getvalue() == ""
    lines = terminal.getvalue().split("\r")
    assert "10/40 frames" in lines[1] and "40/40 frames" in lines[-1]
    assert lines[-1].count("#") == 30 and terminal.getvalue().endswith("\n")


def test_head_framing_fills_the_frame_with_the_face(tmp_path):
    from conftest import FIXTURES

    rig = build_rig(load_image(FIXTURES / "portrait_astronaut.png"))
    eye_distance = {}
    for framing in ("picture", "head"):
        renderer = Renderer(rig, 256, framing=framing)
        points = landmarks_of(renderer.render(motion()).rgba[..., :3])
        eye_distance[framing] = np.linalg.norm(points[263, :2] - points[33, :2])
    assert eye_distance["head"] > 1.8 * eye_distance["picture"], eye_distance
    with pytest.raises(ControlError, match="framing"):
        Renderer(rig, 64, framing="waist")


def test_render_command_refuses_face_index_with_a_rig_file(tmp_path, capsys):
    from conftest import FIXTURES, fixture_line

    rig_path = tmp_path / "a.rig"
    assert npcface_main(["rig", str(FIXTURES / "portrait_astronaut.png"), "-o", str(rig_path)]) == 0
    wav, _ = fixture_line("line_fricatives")
    assert npcface_main(["render", str(rig_path), str(wav), "--face", "1", "-o", str(tmp_path / "a.mp4")]) == 2
    assert "--face applies to pictures" in capsys.readouterr().err


def test_pressed_lips_close_a_portrait_that_shows_its_teeth(renderer):
    """The astronaut smiles with her teeth showing; a bilabial (lips pressed, as the motion
    generator writes it) must still close her lips over them."""
    rows, cols = mouth_box(renderer)

    def teeth_pixels(frame):
        patch = rgb(renderer, frame)[rows, cols]
        return int(((luminance(patch) > 170) & (patch.max(axis=-1) - patch.min(axis=-1) < 40)).sum())

    bilabial = motion(MouthPressLeft=0.45, MouthPressRight=0.45, MouthRollLower=0.12, MouthRollUpper=0.08,
                      JawOpen=0.06, MouthClose=0.06)
    showing, pressed = teeth_pixels(motion()), teeth_pixels(bilabial)
    assert showing > 40 and pressed < 0.3 * showing, (showing, pressed)
