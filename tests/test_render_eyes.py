"""core/render/eyes: a closed lid looks like the skin around the eye, not a pasted patch. In
numbers, on the committed portrait: at full blink the lid's colour is close to the lid skin the
open eye showed, and along the top of what the eye layer painted (where a pasted patch shows its
border) the layer adds almost no edge to the warped picture beneath it."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from npcface.core.arkit import ARKIT_INDEX
from npcface.core.render.renderer import Renderer
from npcface.core.render.rig import build_rig, load_image
from npcface.core.render.rig_mesh import EYE_LEFT_LOWER, EYE_LEFT_UPPER, EYE_RIGHT_LOWER, EYE_RIGHT_UPPER
from npcface.core.types import MotionFrame

EYES = ((EYE_LEFT_UPPER, EYE_LEFT_LOWER), (EYE_RIGHT_UPPER, EYE_RIGHT_LOWER))


def blink(weight: float) -> MotionFrame:
    blendshapes = np.zeros(52, dtype=np.float32)
    blendshapes[ARKIT_INDEX["EyeBlinkLeft"]] = blendshapes[ARKIT_INDEX["EyeBlinkRight"]] = weight
    return MotionFrame(0.0, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0), (0.0, 0.0), blendshapes)


@pytest.fixture(scope="module")
def renderer():
    from conftest import FIXTURES

    return Renderer(build_rig(load_image(FIXTURES / "portrait_astronaut.png")), 512, framing="head")


def _rest_lid(renderer: Renderer, upper, lower):
    xy = renderer.eyes.base_xy
    width = float(np.linalg.norm(xy[upper[0]] - xy[upper[-1]]))
    top, bottom = xy[list(upper)], xy[list(lower)]
    return width, top, bottom


def lid_colour_gap(renderer: Renderer, picture: np.ndarray, upper, lower, frame: MotionFrame) -> float:
    """Mean |RGB| difference between the lid (the rest opening above the lid's lash rim, middle 60%
    of the eye) and the lid skin the open eye showed (a fifth of an eye width above it, lashes out)."""
    width, top, _ = _rest_lid(renderer, upper, lower)
    edge = renderer.geometry(frame).deformed[list(upper), :2]
    left, right = top[:, 0].min(), top[:, 0].max()
    columns = np.arange(int(left + 0.2 * (right - left)), int(right - 0.2 * (right - left)))
    top_y = np.interp(columns, *zip(*sorted(zip(top[:, 0], top[:, 1]))))
    edge_y = np.interp(columns, *zip(*sorted(zip(edge[:, 0], edge[:, 1]))))
    neutral = renderer.view_image.astype(np.float32)
    lid = np.vstack([picture[int(t) + 1:int(e - 0.1 * width), x] for x, t, e in zip(columns, top_y, edge_y)])
    skin = np.vstack([neutral[int(t - 0.25 * width):int(t - 0.05 * width), x] for x, t in zip(columns, top_y)])
    skin = skin[skin.mean(axis=1) >= np.percentile(skin.mean(axis=1), 33)]
    return float(np.abs(np.median(lid.astype(np.float32), axis=0) - np.median(skin, axis=0)).mean())


def added_edge(with_layer: np.ndarray, without_layer: np.ndarray, upper, lower, renderer: Renderer) -> float:
    """How much edge the eye layer adds along the top border of what it painted (above the rest
    upper lid): mean gradient magnitude there with the layer minus without it, in luminance levels."""
    width, top, _ = _rest_lid(renderer, upper, lower)
    painted = (np.abs(with_layer.astype(np.int16) - without_layer).max(axis=2) > 3).astype(np.uint8)
    border = cv2.dilate(painted, np.ones((3, 3), np.uint8)) - cv2.erode(painted, np.ones((3, 3), np.uint8))
    ys, xs = np.nonzero(border)
    order = np.argsort(top[:, 0])
    inside = (xs > top[:, 0].min()) & (xs < top[:, 0].max())
    above = ys < np.interp(xs, top[order, 0], top[order, 1]) - 1
    keep = inside & above
    if not keep.any():
        return 0.0

    def gradient(picture):
        lum = cv2.GaussianBlur(picture.astype(np.float32).mean(axis=2), (3, 3), 0)
        return np.hypot(cv2.Sobel(lum, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(lum, cv2.CV_32F, 0, 1, ksize=3)) / 8

    return float(gradient(with_layer)[ys[keep], xs[keep]].mean() - gradient(without_layer)[ys[keep], xs[keep]].mean())


def render_without_eyes(renderer: Renderer, frame: MotionFrame) -> np.ndarray:
    eyes, renderer.eyes.eyes = renderer.eyes.eyes, []
    try:
        return renderer.render(frame).rgba[..., :3]
    finally:
        renderer.eyes.eyes = eyes


@pytest.mark.parametrize("eye", [0, 1], ids=["left", "right"])
def test_a_closed_lid_is_the_colour_of_the_lid_skin_the_open_eye_showed(renderer, eye):
    gap = lid_colour_gap(renderer, renderer.render(blink(1.0)).rgba[..., :3], *EYES[eye], blink(1.0))
    assert gap < 16.0  # mean |RGB| difference, of 255 (the flat lid: 17.7 and 3.7)


@pytest.mark.parametrize("weight, most", [(1.0, -2.0), (0.6, -1.0)])
def test_the_lid_has_no_border_where_it_meets_the_skin(renderer, weight, most):
    """The layer hides the stretched lashes under the lid, so along its top it takes edge away; a
    flat patch adds its own border there (on this portrait the flat lid scored -1.6 at blink 1)."""
    with_layer = renderer.render(blink(weight)).rgba[..., :3]
    without_layer = render_without_eyes(renderer, blink(weight))
    for upper, lower in EYES:
        assert added_edge(with_layer, without_layer, upper, lower, renderer) < most


def grain(picture: np.ndarray, rows: slice, columns: slice) -> float:
    """Standard deviation of the fine texture (luminance minus its blur) in a region."""
    lum = picture.astype(np.float32).mean(axis=2)
    return float((lum - cv2.GaussianBlur(lum, (0, 0), 1.5))[rows, columns].std())


@pytest.mark.parametrize("eye", [0, 1], ids=["left", "right"])
def test_a_closed_lid_carries_the_skins_texture(renderer, eye):
    """Real lids show the skin's grain; a drawn lid is smooth. The middle of the closed lid (above the
    lashes) keeps most of the fine texture of the skin between the open lid and the brow."""
    width, top, bottom = _rest_lid(renderer, *EYES[eye])
    closed = renderer.render(blink(1.0)).rgba[..., :3]
    left, right = top[:, 0].min(), top[:, 0].max()
    columns = slice(int(left + 0.3 * (right - left)), int(right - 0.3 * (right - left)))
    middle = (left + right) / 2
    lid_top = float(np.interp(middle, *zip(*sorted(zip(top[:, 0], top[:, 1])))))
    lid_bottom = float(np.interp(middle, *zip(*sorted(zip(bottom[:, 0], bottom[:, 1])))))
    lid_rows = slice(int(lid_top) + 1, int(lid_bottom - 0.16 * width))
    skin_rows = slice(int(lid_top - 0.3 * width), int(lid_top - 0.1 * width))
    assert lid_rows.stop - lid_rows.start >= 3
    # measured: 0.94 and 0.99 of the skin's grain; the smooth drawn lid before it had 0.43 and 0.37
    assert grain(closed, lid_rows, columns) > 0.6 * grain(renderer.view_image, skin_rows, columns)
