"""Small faces in large pictures: ``--framing head`` is cut from the full-resolution picture (kept in
the rig as its head detail), not from the rig's 1024-pixel downscale."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from conftest import FIXTURES
from npcface.core.render.renderer import Renderer
from npcface.core.render.rig import MAX_SIDE, Rig, build_rig, load_image, rig_from_file
from npcface.core.types import MotionFrame

CANVAS = (3000, 2400)  # height, width: the fixture's 512-pixel portrait at full size in a big picture,
AT = (1100, 700)  # (x, y): its face covers about 3% of the picture (the Mona Lisa case)
OUTPUT = 512


@pytest.fixture(scope="module")
def rigs(big_picture) -> tuple[Rig, Rig]:
    """(rigged from the file, keeping its head at full resolution; rigged from the 1024-pixel copy).
    Both find the small face: MediaPipe misses it in the whole picture, so windows are searched."""
    return rig_from_file(big_picture), build_rig(load_image(big_picture))


@pytest.fixture(scope="module")
def big_picture() -> bytes:
    portrait = np.asarray(Image.open(FIXTURES / "portrait_astronaut.png").convert("RGB"))
    canvas = np.full((*CANVAS, 3), 200, np.uint8)
    canvas[:, :, 2] = 170
    canvas[AT[1]:AT[1] + portrait.shape[0], AT[0]:AT[0] + portrait.shape[1]] = portrait
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, format="PNG")
    return buffer.getvalue()


def rest() -> MotionFrame:
    return MotionFrame(0.0, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0), (0.0, 0.0), np.zeros(52, np.float32))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(255.0 ** 2 / np.mean((a.astype(float) - b.astype(float)) ** 2)))


def truth(picture: bytes, renderer: Renderer, rig: Rig) -> np.ndarray:
    """What the head crop should show: the full-resolution picture resampled straight to the output."""
    full = np.asarray(Image.open(io.BytesIO(picture)).convert("RGB"))
    ratio = full.shape[0] / rig.image.shape[0]
    # output pixel u shows rig pixel (u + 0.5) / scale + offset - 0.5 ... recover the crop from the vertices
    base = rig.landmarks[:2, :2]
    out = renderer.vertices[:2, :2]
    scale = (out[1] - out[0]) / (base[1] - base[0])
    offset = base[0] - out[0] / scale
    width = renderer.width
    left, top = (offset + 0.5 - 0.5 / scale) * ratio
    size = width / scale[0] * ratio
    crop = Image.fromarray(full).crop((left, top, left + size, top + size))
    return np.asarray(crop.resize((width, width), Image.Resampling.LANCZOS))


def test_head_framing_of_a_large_picture_uses_its_full_resolution(big_picture, rigs):
    rig, plain = rigs
    assert max(rig.image.shape[:2]) == MAX_SIDE and rig.detail.size > 0 and rig.detail_scale > 2.5
    face = rig.landmarks[:468, :2] * CANVAS[0] / MAX_SIDE  # found where the portrait's face is
    assert AT[0] + 150 < face[:, 0].mean() < AT[0] + 350 and AT[1] + 100 < face[:, 1].mean() < AT[1] + 350
    sharp = Renderer(rig, OUTPUT, framing="head")
    blurry = Renderer(plain, OUTPUT, framing="head")  # the rig's picture alone
    expected = truth(big_picture, sharp, rig)
    with_detail = psnr(sharp.render(rest()).rgba[..., :3], expected)
    without = psnr(blurry.render(rest()).rgba[..., :3], expected)
    print(f"head crop PSNR vs the full picture: {with_detail:.1f} dB with the detail, {without:.1f} dB without")
    assert with_detail > without + 6.0, (with_detail, without)
    # the whole picture is unchanged: it never needed more than the rig's own pixels
    whole = Renderer(rig, 256, watermark=False).render(rest()).rgba[..., :3]
    assert np.array_equal(whole, Renderer(plain, 256, watermark=False).render(rest()).rgba[..., :3])


def test_the_head_detail_survives_saving_and_old_rigs_still_load(rigs, tmp_path):
    rig = rigs[0]
    rig.save(tmp_path / "big.rig")
    loaded = Rig.load(tmp_path / "big.rig")
    assert np.array_equal(loaded.detail, rig.detail) and loaded.detail_scale == pytest.approx(rig.detail_scale)
    small = build_rig(load_image(FIXTURES / "portrait_astronaut.png"))
    assert small.detail.size == 0  # nothing sharper to keep
    small.save(tmp_path / "small.rig")
    assert Rig.load(tmp_path / "small.rig").detail.size == 0
