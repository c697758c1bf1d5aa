"""core/render/eyes: a shut eye shows a lid (skin, a dark lash fringe along its edge, no eyeball),
in the picture's own palette; an eye the layer redraws without moving anything stays the picture;
bad eye input gets a clear error or a clamp, never a crash."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from npcface.core.arkit import ARKIT_INDEX
from npcface.core.errors import ControlError
from npcface.core.render.renderer import Renderer
from npcface.core.render.rig import build_rig, load_image
from npcface.core.types import MotionFrame
from test_render_eyes import render_without_eyes

def frame(blink: float = 0.0, gaze=(0.0, 0.0)) -> MotionFrame:
    blendshapes = np.zeros(52, dtype=np.float32)
    blendshapes[ARKIT_INDEX["EyeBlinkLeft"]] = blendshapes[ARKIT_INDEX["EyeBlinkRight"]] = blink
    return MotionFrame(0.0, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), gaze, gaze, blendshapes)


@pytest.fixture(scope="module")
def portrait():
    from conftest import FIXTURES

    return load_image(FIXTURES / "portrait_astronaut.png")


@pytest.fixture(scope="module")
def renderer(portrait):
    return Renderer(build_rig(portrait), 512, framing="head")


def line(points: np.ndarray, xs: np.ndarray) -> np.ndarray:
    order = np.argsort(points[:, 0])
    return np.interp(xs, points[order, 0], points[order, 1])


def luminance(picture: np.ndarray) -> np.ndarray:
    return picture.astype(np.float32).mean(axis=2)


def iris_share(renderer: Renderer, picture: np.ndarray, eye: int, motion: MotionFrame) -> float:
    """Inside the rest opening (middle 70% of the eye) and above the lid's edge less its lash rim (the
    whole opening where the lid is up): the share of pixels darker than 0.6 of the median skin above
    the eye, i.e. iris and pupil (on this portrait the white of the eye is no brighter than its skin,
    so the iris is what tells an eyeball from a lid)."""
    layer = renderer.eyes.eyes[eye]
    xy = renderer.eyes.base_xy
    upper, lower = xy[layer.upper], xy[layer.lower]
    edge_points = renderer.geometry(motion).deformed[layer.upper, :2]
    left, right = upper[:, 0].min(), upper[:, 0].max()
    xs = np.arange(int(left + 0.15 * (right - left)), int(right - 0.15 * (right - left)))
    top, bottom, edge = line(upper, xs), line(lower, xs), line(edge_points, xs)
    edge = np.where(edge - top > 0.1 * layer.width, edge - 0.1 * layer.width, bottom)
    lum = luminance(picture)
    skin = np.concatenate([lum[int(t - 0.3 * layer.width):int(t - 0.1 * layer.width), x] for x, t in zip(xs, top)])
    above_edge = np.concatenate([lum[int(t) + 1:max(int(t) + 1, int(min(e, b))), x]
                                 for x, t, e, b in zip(xs, top, edge, bottom)])
    return float(np.mean(above_edge < 0.6 * np.median(skin)))


@pytest.mark.parametrize("eye", [0, 1], ids=["left", "right"])
def test_a_shut_eye_shows_no_iris_above_its_lash_rim(renderer, eye):
    open_eye = iris_share(renderer, renderer.render(frame(0.0)).rgba[..., :3], eye, frame(0.0))
    warp_only = iris_share(renderer, render_without_eyes(renderer, frame(1.0)), eye, frame(1.0))
    shut = iris_share(renderer, renderer.render(frame(1.0)).rgba[..., :3], eye, frame(1.0))
    assert open_eye > 0.3  # the measure sees the iris where there is one (0.59 / 0.60)
    assert warp_only > 0.1  # and the eyeball the warp alone leaves squashed under the lid (0.14 / 0.59)
    assert shut < 0.06, shut  # measured 0.03 / 0.00


@pytest.mark.parametrize("eye", [0, 1], ids=["left", "right"])
def test_a_shut_lid_has_a_dark_lash_fringe_along_its_edge_thinning_to_the_corners(renderer, eye):
    layer = renderer.eyes.eyes[eye]
    picture = luminance(renderer.render(frame(1.0)).rgba[..., :3])
    edge_points = renderer.geometry(frame(1.0)).deformed[layer.upper, :2]
    left, right = edge_points[:, 0].min(), edge_points[:, 0].max()
    width = layer.width

    def darkest_below_skin(fraction_from: float, fraction_to: float) -> float:
        """How much darker the fringe (the edge to 0.1 eye widths under it) is than the lid skin
        (0.1 to 0.2 eye widths above the edge), as a share of the skin, in a stretch of the lid."""
        xs = np.arange(int(left + fraction_from * (right - left)), int(right - fraction_to * (right - left)))
        edge = line(edge_points, xs)
        fringe = [picture[int(e):int(e + 0.1 * width) + 1, x].min() for x, e in zip(xs, edge)]
        skin = [np.median(picture[int(e - 0.2 * width):int(e - 0.1 * width), x]) for x, e in zip(xs, edge)]
        return 1 - float(np.median(fringe) / np.median(skin))

    middle = darkest_below_skin(0.35, 0.35)
    assert middle > 0.35  # the middle of the fringe is well darker than the lid above it
    # measured at the outer 6% of each end: the fringe fades into the corners
    corners = (darkest_below_skin(0.0, 0.94) + darkest_below_skin(0.94, 0.0)) / 2
    assert corners < 0.7 * middle, (corners, middle)


def test_a_shut_lid_on_a_black_and_white_picture_stays_grey(portrait):
    grey = np.repeat(cv2.cvtColor(portrait, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    renderer = Renderer(build_rig(grey), 512, framing="head")
    shut = renderer.render(frame(1.0)).rgba[..., :3].astype(np.int16)
    for layer in renderer.eyes.eyes:
        x0, y0, x1, y1 = layer.box
        assert np.ptp(layer.lash) == 0 and np.ptp(layer.lid) == 0
        patch = shut[y0:y1, x0:x1]
        assert (patch.max(axis=2) - patch.min(axis=2)).max() <= 1  # no colour cast on the lid or lashes


def test_an_eye_redrawn_with_nothing_moved_is_the_picture(renderer):
    """A gaze too small to move the iris a pixel still makes the layer redraw the eye: the redrawn eye
    must be the picture's own (the plate and iris put back exactly), or every gaze flicker repaints
    the iris's rim."""
    still = renderer.render(frame()).rgba[..., :3].astype(np.int16)
    nudged = renderer.render(frame(gaze=(0.2, 0.0))).rgba[..., :3].astype(np.int16)
    for layer in renderer.eyes.eyes:
        x0, y0, x1, y1 = layer.box
        difference = np.abs(nudged[y0:y1, x0:x1] - still[y0:y1, x0:x1])
        assert difference.any()  # the layer did redraw (the iris moved a fraction of a pixel)
        assert difference.mean() < 0.3 and difference.max() <= 12, (difference.mean(), difference.max())


def test_a_blink_past_one_or_a_huge_gaze_is_clamped(renderer):
    shut = renderer.render(frame(1.0)).rgba
    assert np.array_equal(renderer.render(frame(5.0)).rgba, shut)
    far = renderer.render(frame(gaze=(40.0, -40.0))).rgba
    assert np.array_equal(renderer.render(frame(gaze=(1e6, -1e6))).rgba, far)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_blink_that_is_not_a_number_is_a_one_line_error(renderer, bad):
    with pytest.raises(ControlError, match="NaN or infinite") as error:
        renderer.render(frame(bad))
    assert "\n" not in str(error.value)
