"""core/render/rig: a real MediaPipe rig of the committed portrait; pictures the tests make themselves
for the error paths (no face, two faces, a decompression bomb, RGBA, not a picture)."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from npcface.bridge.cli import main as npcface_main
from npcface.core.arkit import ARKIT_INDEX
from npcface.core.errors import FormatError, ImageError, NoFaceError
from npcface.core.render.warp import barycentric_matrix
from npcface.core.render.rig import MAX_SIDE, RIG_VERSION, Rig, build_rig, load_image


@pytest.fixture(scope="module")
def portrait() -> np.ndarray:
    from conftest import FIXTURES

    return load_image(FIXTURES / "portrait_astronaut.png")


@pytest.fixture(scope="module")
def rig(portrait) -> Rig:
    return build_rig(portrait)


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def test_rig_finds_the_face_where_it_is(rig):
    assert rig.landmarks.shape == (478, 3)
    # the astronaut's face is in the upper middle of the picture
    centre = rig.landmarks[:468, :2].mean(axis=0)
    assert 170 < centre[0] < 280 and 60 < centre[1] < 200
    assert 30 < rig.iod < 70
    assert 0.5 * rig.iod < rig.mouth_width < 1.5 * rig.iod


def test_mesh_covers_the_whole_picture_once(rig):
    """Every pixel of the picture lies in a triangle (no node falls back to a nearest vertex)."""
    height, width = rig.image.shape[:2]
    xs, ys = np.meshgrid(np.linspace(0, width - 1, 97), np.linspace(0, height - 1, 97))
    nodes = np.stack([xs, ys], axis=-1).reshape(-1, 2)
    matrix = barycentric_matrix(nodes, rig.vertices[:, :2].astype(np.float64), rig.triangles)
    per_node = np.diff(matrix.indptr)
    assert np.all(per_node >= 2), "some nodes are outside every triangle"
    # barycentric weights reproduce the node positions
    assert np.abs(matrix @ rig.vertices[:, :2] - nodes).max() < 1e-3
    corners = rig.vertices[:, :2]
    assert corners[:, 0].min() <= 0.5 and corners[:, 0].max() >= width - 1.5
    assert corners[:, 1].min() <= 0.5 and corners[:, 1].max() >= height - 1.5


def test_blendshape_deltas_move_the_right_parts(rig):
    d = rig.deltas
    jaw = d[ARKIT_INDEX["JawOpen"]]
    # chin (152) drops by a fraction of the mouth width; the nose tip (1) stays
    assert 0.3 * rig.mouth_width < jaw[152, 1] < 0.6 * rig.mouth_width
    assert abs(jaw[1, 1]) < 0.5
    # the inner lips part by about 3/4 of the mouth width (as real mouths do per unit of captured
    # opening), the lips more than the chin drops; the lower lip carries more of it than the upper
    assert 0.65 * rig.mouth_width < jaw[14, 1] - jaw[13, 1] < 0.85 * rig.mouth_width
    assert jaw[14, 1] - jaw[13, 1] > 1.4 * jaw[152, 1]
    assert 0.1 * rig.mouth_width < -jaw[13, 1] < jaw[14, 1]
    # the subject's left eye is landmark 386's eye (image right): its blink moves that lid only
    blink_left = d[ARKIT_INDEX["EyeBlinkLeft"]]
    assert blink_left[386, 1] > 0.5 * (rig.landmarks[374, 1] - rig.landmarks[386, 1])
    assert abs(blink_left[159, 1]) < 0.1
    smile_left = d[ARKIT_INDEX["MouthSmileLeft"]]
    assert smile_left[291, 1] < -1 and smile_left[291, 0] > 0.5  # left corner: up and outward
    assert abs(smile_left[61]).max() < 0.1  # the other corner stays
    assert np.abs(d[ARKIT_INDEX["EyeLookInLeft"]]).max() == 0  # gaze is drawn, not warped


def test_save_and_load_round_trip(rig, tmp_path):
    path = tmp_path / "portrait.rig"
    rig.save(path)
    loaded = Rig.load(path)
    assert loaded.content_id == rig.content_id
    for name in ("image", "matte", "landmarks", "vertices", "triangles", "deltas", "head_weight", "pivot"):
        assert np.array_equal(getattr(loaded, name), getattr(rig, name)), name
    assert path.stat().st_size < 3_000_000


def test_content_id_follows_the_picture_and_face(portrait, rig):
    assert build_rig(portrait.copy()).content_id == rig.content_id
    changed = portrait.copy()
    changed[0, 0] ^= 1
    assert build_rig(changed).content_id != rig.content_id


def test_bad_rig_files_are_refused(rig, tmp_path):
    with pytest.raises(FormatError, match="not found"):
        Rig.load(tmp_path / "missing.rig")
    junk = tmp_path / "junk.rig"
    junk.write_bytes(b"this is not a rig")
    with pytest.raises(FormatError, match="not an npcface rig"):
        Rig.load(junk)
    old = tmp_path / "old.rig"
    with old.open("wb") as out:
        np.savez(out, rig_version=np.array(RIG_VERSION + 99))
    with pytest.raises(FormatError, match="version"):
        Rig.load(old)
    partial = tmp_path / "partial.rig"
    with partial.open("wb") as out:
        np.savez(out, rig_version=np.array(RIG_VERSION))
    with pytest.raises(FormatError, match="incomplete"):
        Rig.load(partial)


def test_load_image_reads_bytes_and_paths_alike(portrait):
    from conftest import FIXTURES

    data = (FIXTURES / "portrait_astronaut.png").read_bytes()
    assert np.array_equal(load_image(data), portrait)


def test_transparent_pictures_are_composited_over_white():
    rgba = np.zeros((64, 64, 4), dtype=np.uint8)
    rgba[:32, :, :] = (255, 0, 0, 255)  # top half opaque red, bottom half transparent
    image = load_image(_png(rgba))
    assert image.shape == (64, 64, 3)
    assert tuple(image[10, 10]) == (255, 0, 0) and tuple(image[50, 10]) == (255, 255, 255)


def test_huge_pictures_are_downscaled():
    big = np.zeros((1500, 3000, 3), dtype=np.uint8)
    image = load_image(_png(big))
    assert max(image.shape[:2]) == MAX_SIDE and image.shape[:2] == (512, 1024)


def test_decompression_bombs_are_refused():
    bomb = Image.new("L", (8000, 6000))  # 48 Mpx of zeros: a tiny file that decodes huge
    buffer = io.BytesIO()
    bomb.save(buffer, format="PNG")
    assert len(buffer.getvalue()) < 200_000
    with pytest.raises(ImageError, match="decompression bomb"):
        load_image(buffer.getvalue())


def test_not_a_picture(tmp_path):
    with pytest.raises(ImageError, match="not a picture"):
        load_image(b"RIFF....WAVEfmt definitely audio")
    with pytest.raises(ImageError, match="not found"):
        load_image(tmp_path / "nobody.png")
    with pytest.raises(ImageError, match="too small"):
        load_image(_png(np.zeros((8, 8, 3), dtype=np.uint8)))
    with pytest.raises(ImageError, match="RGB uint8"):
        build_rig(np.zeros((64, 64), dtype=np.float32))


def test_no_face_names_the_picture():
    ys, xs = np.mgrid[0:200, 0:300]
    gradient = np.stack([xs % 256, ys % 256, (xs + ys) % 256], axis=-1).astype(np.uint8)
    with pytest.raises(NoFaceError, match="sky.png"):
        build_rig(gradient, name="sky.png")


def test_several_faces_largest_first_or_by_index(portrait):
    face = portrait[20:230, 120:330]
    small = np.asarray(Image.fromarray(face).resize((150, 150)))
    canvas = np.full((230, 440, 3), 200, dtype=np.uint8)
    canvas[10:220, 5:215] = face  # the large face on the left
    canvas[20:170, 285:435] = small  # a smaller copy on the right
    largest = build_rig(canvas)
    assert largest.landmarks[:468, 0].mean() < 215
    other = build_rig(canvas, face_index=1)
    assert other.landmarks[:468, 0].mean() > 285
    assert other.content_id != largest.content_id
    with pytest.raises(NoFaceError, match="face index 5"):
        build_rig(canvas, face_index=5)


def test_rig_command(tmp_path, capsys):
    from conftest import FIXTURES

    out = tmp_path / "astronaut.rig"
    assert npcface_main(["rig", str(FIXTURES / "portrait_astronaut.png"), "-o", str(out)]) == 0
    assert "content id" in capsys.readouterr().out
    assert Rig.load(out).landmarks.shape == (478, 3)


@pytest.mark.parametrize("args, message", [
    (["rig", "{fixtures}/line_greeting.wav", "-o", "{tmp}/a.rig"], "not a picture"),
    (["rig", "{tmp}/missing.png", "-o", "{tmp}/a.rig"], "image not found"),
    (["rig", "{fixtures}/portrait_astronaut.png", "-o", "{tmp}/a.png"], "must end in .rig"),
    (["rig", "{fixtures}/portrait_astronaut.png", "-o", "{tmp}/no/such/a.rig"], "does not exist"),
    (["rig", "{fixtures}/portrait_astronaut.png", "-o", "{tmp}/a.rig", "--face", "3"], "face index 3"),
    (["rig", "{tmp}/sky.png", "-o", "{tmp}/a.rig"], "no face found in .*sky.png"),
])
def test_rig_command_errors(args, message, tmp_path, capsys):
    from conftest import FIXTURES

    Image.new("RGB", (120, 90), (90, 140, 220)).save(tmp_path / "sky.png")
    argv = [a.format(fixtures=FIXTURES, tmp=tmp_path) for a in args]
    assert npcface_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("npcface rig: error:") and len(err.strip().splitlines()) == 1
    assert __import__("re").search(message, err), err
