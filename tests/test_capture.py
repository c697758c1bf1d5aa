"""core/capture: real MediaPipe tracking on a video the test builds from the committed portrait
with image operations whose effect is known (in-plane rotation, zoom, a jaw drop, closed eyes,
blank frames, a mirror), written to mp4 and read back through core/formats/video."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw
from scipy.ndimage import map_coordinates
from scipy.stats import spearmanr

from npcface.bridge.cli import main as npcface_main
from npcface.core.capture.video import FaceTracker, capture_frames, capture_video_result
from npcface.core.errors import ImageError, NoFaceError
from npcface.core.formats.livelink import read_livelink_csv, read_motion_json
from npcface.core.formats.video import write_mp4

SIZE = 320
FPS = 25
ROLLS = [0, 3, 6, 9, 12, 15, 18, 21, 24, 21, 18, 15, 12, 9, 6, 3, 0,
         -3, -6, -9, -12, -15, -18, -21, -24, -21, -18, -15, -12, -9, -6, -3]
ZOOMS = [1.0, 0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95]
JAW_DROPS = [0, 0, 4, 8, 12, 16, 20, 24, 28, 32, 32, 28, 24, 20, 16, 12, 8, 4, 0, 0]
BLINK = [0, 0, 0, 1, 1, 1, 0, 0, 0]
IRIS_SHIFTS = [0, 0, 2, 4, 6, 4, 2, 0, -2, -4, -6, -4, -2, 0, 0]  # px to the image right
BLANK_FRAMES = 3


@pytest.fixture(scope="module")
def face() -> tuple[np.ndarray, np.ndarray]:
    """The portrait cropped around the face at SIZE, and its landmarks in pixels."""
    from conftest import FIXTURES

    image = Image.open(FIXTURES / "portrait_astronaut.png").convert("RGB")
    crop = np.asarray(image.crop((124, 25, 324, 225)).resize((SIZE, SIZE), Image.BICUBIC))
    with FaceTracker(video_mode=False) as tracker:
        landmarks = tracker.landmarks(crop)
    assert landmarks is not None
    return crop, landmarks[:, :2] * SIZE


def rotated(image: np.ndarray, degrees: float) -> np.ndarray:
    """Counter-clockwise on screen: the head tilts toward its own right shoulder."""
    return np.asarray(Image.fromarray(image).rotate(degrees, resample=Image.BICUBIC))


def zoomed(image: np.ndarray, scale: float) -> np.ndarray:
    """The face smaller (farther away) in the same frame, the border filled with grey."""
    size = int(round(SIZE * scale))
    small = Image.fromarray(image).resize((size, size), Image.BICUBIC)
    canvas = Image.new("RGB", (SIZE, SIZE), (128, 128, 128))
    canvas.paste(small, ((SIZE - size) // 2, (SIZE - size) // 2))
    return np.asarray(canvas)


def jaw_dropped(image: np.ndarray, points: np.ndarray, drop: int) -> np.ndarray:
    """Move the lower lip and chin down by ``drop`` px (fading out below the chin and beside the
    jaw) and draw a dark mouth cavity in the opening."""
    if drop == 0:
        return image
    rows, cols = np.mgrid[0:SIZE, 0:SIZE].astype(np.float64)
    lip_line, chin = (points[13, 1] + points[14, 1]) / 2, points[152, 1]
    vertical = np.clip((rows - lip_line) / 3, 0, 1) * np.clip(1 - (rows - chin) / 60, 0, 1)
    centre, half_width = (points[397, 0] + points[172, 0]) / 2, (points[397, 0] - points[172, 0]) / 2 + 10
    horizontal = np.clip(1 - (np.abs(cols - centre) - half_width) / 30, 0, 1)
    source_rows = rows - drop * vertical * horizontal
    warped = np.stack([map_coordinates(image[..., c].astype(np.float64), [source_rows, cols], order=1,
                                       mode="nearest") for c in range(3)], axis=-1)
    canvas = Image.fromarray(np.clip(warped, 0, 255).astype(np.uint8))
    ImageDraw.Draw(canvas).chord([points[61, 0] + 3, lip_line - 0.3 * drop, points[291, 0] - 3,
                                  lip_line + drop], 0, 180, fill=(70, 25, 30))
    return np.asarray(canvas)


def eyes_closed(image: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Paint skin from above each eye over it, with a lash line: a closed lid."""
    canvas = Image.fromarray(image.copy())
    draw = ImageDraw.Draw(canvas)
    for upper, lower, inner, outer in ((386, 374, 362, 263), (159, 145, 133, 33)):
        centre = (points[inner, 0] + points[outer, 0]) / 2
        width = abs(points[outer, 0] - points[inner, 0])
        top = points[upper, 1] - 6
        skin = tuple(int(v) for v in image[int(top) - 8, int(centre)])
        draw.ellipse([centre - width / 2 - 4, top, centre + width / 2 + 4, points[lower, 1] + 7], fill=skin)
        draw.line([(centre - width / 2, points[lower, 1] - 1), (centre + width / 2, points[lower, 1] - 1)],
                  fill=(60, 40, 35), width=2)
    return np.asarray(canvas)


def irises_shifted(image: np.ndarray, points: np.ndarray, shift: int) -> np.ndarray:
    """Both irises moved ``shift`` px to the image right (the subject's left), sclera behind."""
    if shift == 0:
        return image
    out = image.copy()
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    for centre, ring in ((468, (469, 470, 471, 472)), (473, (474, 475, 476, 477))):
        cx, cy = points[centre]
        radius = np.mean([np.linalg.norm(points[k] - points[centre]) for k in ring]) + 1
        out[(cols - cx) ** 2 + (rows - cy) ** 2 <= radius ** 2] = (225, 215, 210)
        ys, xs = np.nonzero((cols - shift - cx) ** 2 + (rows - cy) ** 2 <= radius ** 2)
        out[ys, xs] = image[ys, xs - shift]
    return out


class Take:
    """Frame ranges of each segment of the built video."""

    def __init__(self):
        self.segments: dict[str, slice] = {}
        self.frames: list[np.ndarray] = []

    def add(self, name: str, frames: list[np.ndarray]) -> None:
        self.segments[name] = slice(len(self.frames), len(self.frames) + len(frames))
        self.frames.extend(frames)


@pytest.fixture(scope="module")
def take(face, tmp_path_factory):
    image, points = face
    take = Take()
    take.add("neutral", [image] * 5)
    take.add("roll", [rotated(image, angle) for angle in ROLLS])
    take.add("zoom", [zoomed(image, scale) for scale in ZOOMS])
    take.add("blank", [np.full_like(image, 90)] * BLANK_FRAMES)
    take.add("jaw", [jaw_dropped(image, points, drop) for drop in JAW_DROPS])
    take.add("blink", [eyes_closed(image, points) if shut else image for shut in BLINK])
    take.add("gaze", [irises_shifted(image, points, shift) for shift in IRIS_SHIFTS])
    take.add("mirror", [image[:, ::-1]] * 3)
    path = tmp_path_factory.mktemp("capture") / "built_take.mp4"
    write_mp4(path, take.frames, fps=FPS)
    take.path = path
    take.result = capture_video_result(path)
    return take


def test_every_frame_is_captured_at_the_video_timestamps(take):
    track = take.result.track
    assert len(track) == len(take.frames) and track.fps == FPS
    np.testing.assert_allclose(track.times, np.arange(len(take.frames)) / FPS, atol=1e-3)
    assert np.all(np.isfinite(track.blendshapes)) and np.all((track.blendshapes >= 0) & (track.blendshapes <= 1))


def test_in_plane_rotation_is_recovered_as_roll(take):
    rotation = take.result.track.head_rotation
    rest = np.median(rotation[take.segments["neutral"]], axis=0)
    roll = rotation[take.segments["roll"], 2] - rest[2]
    # A counter-clockwise image rotation tilts the head toward its right shoulder: negative roll.
    np.testing.assert_allclose(roll, -np.array(ROLLS, dtype=float), atol=3.0)
    # ... and does not leak into yaw and pitch.
    assert np.abs(rotation[take.segments["roll"], :2] - rest[:2]).max() < 6.0


def test_zoom_changes_distance_not_expression(take):
    track = take.result.track
    zoom = take.segments["zoom"]
    depth = track.head_translation[zoom, 2]  # + = toward the camera
    # Pinhole: distance scales as 1/zoom, so depth(0.7) - depth(1.0) = -d0 (1/0.7 - 1).
    nearest, farthest = depth[0], depth[int(np.argmin(ZOOMS))]
    assert farthest < nearest - 0.05
    assert spearmanr(ZOOMS, depth).statistic > 0.9
    # Normalising by face size: the neutral face stays neutral at every distance.
    for name in ("JawOpen", "EyeBlinkLeft", "EyeBlinkRight", "MouthPucker"):
        assert track.channel(name)[zoom].max() < 0.2, name
    np.testing.assert_allclose(track.head_rotation[zoom, 2], track.head_rotation[0, 2], atol=2.0)


def test_frames_without_a_face_are_counted_and_interpolated(take):
    result = take.result
    assert result.frames_without_face == BLANK_FRAMES
    blank = take.segments["blank"]
    before, after = blank.start - 1, blank.stop
    for channel in (result.track.head_rotation[:, 2], result.track.head_translation[:, 2]):
        low, high = sorted((channel[before], channel[after]))
        assert np.all((channel[blank] >= low - 1e-6) & (channel[blank] <= high + 1e-6))


def test_jaw_drop_opens_the_jaw_in_proportion(take):
    track = take.result.track
    jaw = track.channel("JawOpen")[take.segments["jaw"]]
    drops = np.array(JAW_DROPS)
    assert spearmanr(drops, jaw).statistic > 0.85
    assert jaw[drops == 0].max() < 0.1  # closed reads ~0
    assert jaw[drops >= 28].min() > 0.45  # a 32 px drop on a ~100 px face is a wide opening
    assert track.channel("JawOpen")[take.segments["neutral"]].max() < 0.1


def test_jaw_drop_alone_does_not_nod(take):
    # Only the lower lip and chin move in these frames, so the head's pitch must stay where the
    # neutral frames put it. An up axis through the chin read the drops as a chin-up nod of 2.5
    # degrees on average (4 at most); MediaPipe's mesh also tilts itself as the mouth opens,
    # which capture takes out per take (what is left is tracker jitter, about a degree).
    rotation = take.result.track.head_rotation
    rest = np.median(rotation[take.segments["neutral"]], axis=0)
    jaw = rotation[take.segments["jaw"]] - rest
    opened = np.array(JAW_DROPS) > 0
    assert abs(jaw[opened, 1].mean()) < 1.0
    assert np.abs(jaw[:, 1]).max() < 3.0
    assert np.abs(jaw[:, [0, 2]]).max() < 2.5  # nor a turn or a tilt


def test_closed_eyes_blink_both_channels(take):
    track = take.result.track
    blink = take.segments["blink"]
    shut = np.array(BLINK, dtype=bool)
    for name in ("EyeBlinkLeft", "EyeBlinkRight"):
        values = track.channel(name)[blink]
        assert values[shut].min() > 0.7, name
        assert values[~shut].max() < 0.15, name


def test_iris_shifts_turn_both_eyes_the_same_way(take):
    track = take.result.track
    gaze = track.gaze[take.segments["gaze"]]
    shifts = np.array(IRIS_SHIFTS)
    for eye in (0, 1):
        yaw = gaze[:, eye, 0]
        assert spearmanr(shifts, yaw).statistic > 0.85  # iris to the image right: looks to its left
        assert yaw[shifts == 6].min() > 8 and yaw[shifts == -6].max() < -8
    segment = take.segments["gaze"]
    # Looking to its left: the left eye looks out, the right eye looks in (toward the nose).
    at_left = segment.start + IRIS_SHIFTS.index(6)
    at_right = segment.start + IRIS_SHIFTS.index(-6)
    assert track.channel("EyeLookOutLeft")[at_left] > 0.2 and track.channel("EyeLookInRight")[at_left] > 0.2
    assert track.channel("EyeLookInLeft")[at_right] > 0.2 and track.channel("EyeLookOutRight")[at_right] > 0.2
    assert track.channel("EyeLookOutLeft")[at_right] == 0 and track.channel("EyeLookInLeft")[at_left] == 0


def test_a_mirrored_face_mirrors_roll_and_yaw(take):
    rotation = take.result.track.head_rotation
    rest = np.median(rotation[take.segments["neutral"]], axis=0)
    mirrored = np.median(rotation[take.segments["mirror"]], axis=0)
    assert mirrored[2] == pytest.approx(-rest[2], abs=2.0)
    assert mirrored[0] == pytest.approx(-rest[0], abs=3.0)


def test_video_without_any_face_is_refused(tmp_path):
    path = tmp_path / "wall.mp4"
    write_mp4(path, [np.full((128, 128, 3), 200, np.uint8)] * 5, fps=FPS)
    with pytest.raises(NoFaceError, match="no face found in any of the 5 frames"):
        capture_video_result(path)
    with pytest.raises(ImageError, match="RGB uint8"):
        capture_frames([(0.0, np.zeros((64, 64), np.uint8))], FPS)


def test_cli_writes_csv_json_and_plot(take, tmp_path, capsys):
    csv_path, json_path, plot_path = tmp_path / "take.csv", tmp_path / "take.json", tmp_path / "curves.png"
    assert npcface_main(["capture", str(take.path), "-o", str(csv_path), "--plot", str(plot_path)]) == 0
    assert "without a face" in capsys.readouterr().err
    from_csv = read_livelink_csv(csv_path)
    assert len(from_csv) == len(take.frames)
    np.testing.assert_allclose(from_csv.channel("JawOpen"), take.result.track.channel("JawOpen"), atol=1e-5)
    assert Image.open(plot_path).size[0] > 500
    assert npcface_main(["capture", str(take.path), "-o", str(json_path)]) == 0
    np.testing.assert_allclose(read_motion_json(json_path).head_rotation, take.result.track.head_rotation,
                               atol=1e-4)


@pytest.mark.parametrize("arguments, message", [
    (["missing.mp4", "-o", "x.csv"], "no such video file"),
    (["{video}", "-o", "x.txt"], "must end in .csv or .json"),
    (["{video}", "-o", "nowhere/x.csv"], "does not exist"),
    (["{video}", "-o", "x.csv", "--plot", "x.jpg"], "must end in .png"),
    (["{portrait}", "-o", "x.csv"], "still image"),
])
def test_cli_bad_input_is_one_line_and_exit_2(take, tmp_path, capsys, monkeypatch, arguments, message):
    from conftest import FIXTURES

    monkeypatch.chdir(tmp_path)
    filled = [a.format(video=take.path, portrait=FIXTURES / "portrait_astronaut.png") for a in arguments]
    assert npcface_main(["capture", *filled]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
