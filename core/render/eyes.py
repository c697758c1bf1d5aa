"""Eyes: the iris moves inside the eye for gaze, and eyelids really close for blinks.

Once per rig and size, each eye gets a plate (the eye with its iris painted out) and an iris
patch (the iris, and everything the plate painted out, as it is; the parts the lids hide filled
in by mirroring), so an unmoved eyeball is the picture itself. Per frame, inside the current lid
opening the eyeball is drawn (plate + iris moved by the gaze) carried by the head's rigid motion,
so it never squashes with the lids; where the lids now cover what was open, a lid is drawn from
the skin around the eye and the lid skin the open eye showed, with the skin's own fine texture,
shaded (darker toward its edge, a little brighter across a shut lid's middle), with a fold that
deepens as it shuts; once the lid has come down, its own lashes hang from its edge (a dark rim and
a fringe of short strokes in the picture's lash colour, thinning toward the corners). At rest
with a straight gaze the layer is skipped and the picture is unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .draw import bounding_box, fit_affine, inverse_points, polygon_mask, sample, smoothstep
from .rig_mesh import (
    BROW_LEFT_LOWER,
    BROW_RIGHT_LOWER,
    EYE_LEFT_LOWER,
    EYE_LEFT_UPPER,
    EYE_RIGHT_LOWER,
    EYE_RIGHT_UPPER,
    IRIS_LEFT,
    IRIS_RIGHT,
    lid_rings,
)

EYEBALL_RADIUS_PER_EYE_WIDTH = 0.45  # iris travel per radian of gaze, in eye widths
MAX_GAZE_DEGREES = 40.0
IRIS_PAINTED_OUT = 1.12  # the plate paints out this many iris radii (the iris's dark rim and all)


@dataclass
class _Eye:
    upper: list[int]
    lower: list[int]
    iris: tuple[int, ...]
    gaze_index: int  # 0 = MotionFrame.gaze_left, 1 = gaze_right
    box: tuple[int, int, int, int]  # patch around the eye (rest pixels)
    plate: np.ndarray  # (h, w, 3) float32 over box, the eye with its iris painted out
    iris_rgba: np.ndarray  # (h, w, 4) float32 iris patch (premultiplied colour, alpha)
    iris_centre: np.ndarray  # (2,)
    width: float  # corner to corner, pixels
    lid: np.ndarray  # (3,) float32 skin colour of the lid
    open_rest: np.ndarray  # (H, W) float32, the rest opening shrunk by a pixel
    whole_eye: np.ndarray  # (H, W) float32, the rest opening grown by two pixels (corners and all)
    lash: np.ndarray = None  # (3,) float32 colour of the picture's own upper lash line
    lid_top: list[int] = ()  # mesh vertices along the top of the moving lid (toward the crease)


class EyeLayer:
    def __init__(self, image: np.ndarray, base_xy: np.ndarray, triangles: np.ndarray):
        self.height, self.width = image.shape[:2]
        self.base_xy = base_xy.astype(np.float64)
        right, left = self.base_xy[33], self.base_xy[263]
        self.x_axis = (left - right) / np.linalg.norm(left - right)
        self.y_axis = np.array([-self.x_axis[1], self.x_axis[0]])
        picture = image.astype(np.float32)
        down = self.base_xy @ self.y_axis
        self.eyes = [self._prepare(picture, EYE_LEFT_UPPER, EYE_LEFT_LOWER, IRIS_LEFT, BROW_LEFT_LOWER, 0),
                     self._prepare(picture, EYE_RIGHT_UPPER, EYE_RIGHT_LOWER, IRIS_RIGHT, BROW_RIGHT_LOWER, 1)]
        for eye in self.eyes:
            ring1, ring2 = lid_rings(triangles, down, tuple(eye.upper), tuple(eye.lower))
            margin = sorted({n for ns in ring1.values() for n in ns})
            eye.lid_top = sorted({n for ns in ring2.values() for n in ns}) or margin
            visible_lid = _median_between(picture, self.base_xy[margin], self.base_xy[eye.lid_top])
            if visible_lid is not None:  # the lid skin the open eye shows, lashes left out
                eye.lid = VISIBLE_LID_SHARE * visible_lid + (1 - VISIBLE_LID_SHARE) * eye.lid

    def _prepare(self, picture, upper, lower, iris, brow_lower, gaze_index) -> _Eye:
        xy = self.base_xy
        contour = list(upper) + list(lower[-2:0:-1])
        eye_width = float(np.linalg.norm(xy[upper[0]] - xy[upper[-1]]))
        centre = xy[iris[0]]
        radius = float(np.mean(np.linalg.norm(xy[list(iris[1:])] - centre, axis=1)))
        radius = float(np.clip(radius, 0.12 * eye_width, 0.3 * eye_width))
        box = bounding_box(np.vstack([xy[contour], centre[None] - 1.6 * radius, centre[None] + 1.6 * radius]),
                           3, self.width, self.height)
        opening = np.zeros((self.height, self.width), dtype=np.float32)
        if box is not None:
            x0, y0, x1, y1 = box
            opening[y0:y1, x0:x1] = polygon_mask(xy[contour], box)
        open_rest = cv2.erode(opening, np.ones((3, 3), np.uint8))
        whole_eye = cv2.GaussianBlur(cv2.dilate(opening, np.ones((5, 5), np.uint8)), (3, 3), 0)
        ys, xs = np.mgrid[0:self.height, 0:self.width]
        dist = np.hypot(xs - centre[0], ys - centre[1]).astype(np.float32)
        box = box or (0, 0, 1, 1)
        x0, y0, x1, y1 = box
        covered = ((dist[y0:y1, x0:x1] < radius * IRIS_PAINTED_OUT)
                   & (cv2.dilate(opening[y0:y1, x0:x1], np.ones((3, 3), np.uint8)) > 0)).astype(np.uint8)
        plate = _paint_out_iris(picture[y0:y1, x0:x1], opening[y0:y1, x0:x1], dist[y0:y1, x0:x1], covered,
                                radius, centre[1] - y0)
        iris_rgba = _iris_patch(picture[y0:y1, x0:x1], covered, dist[y0:y1, x0:x1], centre - (x0, y0), radius)
        lid = _lid_colour(picture, xy, upper, lower, brow_lower, eye_width)
        return _Eye(list(upper), list(lower), tuple(iris), gaze_index, box, plate, iris_rgba,
                    centre, eye_width, lid, open_rest, whole_eye, _lash_colour(picture, xy[list(upper)], eye_width))

    def draw(self, rgb: np.ndarray, geometry, frame) -> None:
        gazes = (frame.gaze_left, frame.gaze_right)
        for eye in self.eyes:
            yaw, pitch = np.clip(gazes[eye.gaze_index], -MAX_GAZE_DEGREES, MAX_GAZE_DEGREES)
            shift = EYEBALL_RADIUS_PER_EYE_WIDTH * eye.width * np.array([np.sin(np.radians(yaw)),
                                                                         -np.sin(np.radians(pitch))])
            shift = shift[0] * self.x_axis + shift[1] * self.y_axis
            ids = eye.upper + eye.lower
            lids_moved = np.abs(geometry.deformed[ids] - geometry.rigid[ids]).max()
            if lids_moved < 0.05 and np.abs(shift).max() < 0.05:
                continue  # the warp already shows this eye as it is in the picture
            self._draw_eye(rgb, eye, geometry, shift)

    def _draw_eye(self, rgb, eye: _Eye, geometry, shift) -> None:
        contour = eye.upper + eye.lower[-2:0:-1]
        current = geometry.deformed[contour]
        rest_moved = geometry.rigid[contour]
        top = geometry.rigid[eye.lid_top] if len(eye.lid_top) else rest_moved[: len(eye.upper)]
        hanging = current[: len(eye.upper)] + (0.0, LASH_LENGTH * eye.width)
        box = bounding_box(np.vstack([current, rest_moved, top, hanging]), 3, self.width, self.height)
        if box is None:
            return
        eyeball_motion = fit_affine(self.base_xy[contour + [eye.iris[0]]], geometry.rigid[contour + [eye.iris[0]]])
        map_x, map_y = inverse_points(eyeball_motion, box)
        ex0, ey0 = eye.box[:2]
        ball = sample(self._eyeball(eye, shift), map_x - ex0, map_y - ey0)
        covered_before = sample(eye.open_rest, map_x, map_y)
        opening = polygon_mask(current, box)[..., None]
        # how far the lid has come down, as a fraction of a third of the opening
        upper_ids, lower_ids = eye.upper[1:-1], eye.lower[1:-1]
        gap = np.mean(geometry.rigid[lower_ids, 1] - geometry.rigid[upper_ids, 1])
        drop = np.mean(geometry.deformed[upper_ids, 1] - geometry.rigid[upper_ids, 1])
        travel = float(np.clip(drop / max(0.3 * gap, 1e-3), 0, 1))
        # how much of the opening the lids now hide (both move: the upper most, the lower a little)
        shut = float(np.clip(1 - np.mean(geometry.deformed[lower_ids, 1] - geometry.deformed[upper_ids, 1]) / max(gap, 1e-3), 0, 1))
        closed = float(smoothstep(0.7, 0.95, shut))  # near shut, the lid hides the corners too
        x0, y0, x1, y1 = box
        region = rgb[y0:y1, x0:x1].astype(np.float32)
        lid, band = self._lid(eye, current, top, box, region, map_x, map_y, rgb, geometry.rigid[eye.upper],
                              shut)
        cover = np.maximum(np.maximum(covered_before, travel * band), closed * sample(eye.whole_eye, map_x, map_y))
        cover = cover[..., None]
        outside = cover * lid + (1 - cover) * region
        opening = opening * (1 - closed)  # shut: no sliver of eyeball along the lash line
        result = opening * ball + (1 - opening) * outside
        lowered = drop / max(gap, 1e-3)  # the upper lid's own travel: a squint's rising lower lid hangs no lashes
        if lowered > LASHES_FROM:  # the lid's own lashes, once it has come down far enough to have hidden the picture's
            fringe = smoothstep(LASHES_FROM, 0.45, lowered) * _lash_fringe(eye, current[: len(eye.upper)], box)
            result = result + fringe[..., None] * (eye.lash[None, None, :] - result)
        rgb[y0:y1, x0:x1] = np.clip(result + 0.5, 0, 255).astype(np.uint8)

    def _eyeball(self, eye: _Eye, shift: np.ndarray) -> np.ndarray:
        """The eyeball over the eye's box with the iris moved by shift (pixels)."""
        x0, y0, x1, y1 = eye.box
        moved = cv2.warpAffine(eye.iris_rgba, np.array([[1, 0, shift[0]], [0, 1, shift[1]]]),
                               (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        return moved[..., :3] + (1 - moved[..., 3:4]) * eye.plate

    def _lid(self, eye: _Eye, current: np.ndarray, top: np.ndarray, box, region: np.ndarray, map_x, map_y,
             frame: np.ndarray, rest_upper: np.ndarray, closure: float):
        """Lid skin over box: the frame's own skin around the eye spread over the opening (so its
        colour carries on from the skin around the eye with no seam), pulled a little toward the
        lid's colour, darker toward its edge, domed and creased as it shuts; and the band from
        the lid's edge up to ``top`` points where a moving lid replaces the stretched picture (soft at
        its top and ends)."""
        x0, y0, x1, y1 = box
        upper = current[: len(eye.upper)]
        order = np.argsort(upper[:, 0])
        xs = np.arange(x0, x1, dtype=np.float64)
        edge = np.interp(xs, upper[order, 0], upper[order, 1])
        top_order = np.argsort(top[:, 0])
        # up to a little above the crease ring: all of the skin the lid stretched
        ceiling = np.minimum(np.interp(xs, top[top_order, 0], top[top_order, 1]) - 0.08 * eye.width, edge)
        # a lid is round: the band thins toward the eye's corners
        left, right = upper[order[0], 0], upper[order[-1], 0]
        across = np.clip((xs - (left + right) / 2) / max((right - left) / 2, 1.0), -1, 1)
        ceiling = edge - (edge - ceiling) * np.sqrt(1 - 0.85 * across ** 2)
        ys = np.arange(y0, y1, dtype=np.float64)[:, None]
        above = edge[None, :] - ys  # pixels above the lid's edge
        # the skin around the eye, spread over the opening: a blur that leaves the eye itself out
        skin_weight = 1 - sample(eye.whole_eye, map_x, map_y)
        spread, weight = _masked_blur(region, skin_weight, 0.6 * eye.width)
        # where hardly any skin is near, fade smoothly to the lid's colour rather than switch to it
        skin = (spread + 0.01 * eye.lid[None, None, :]) / (weight + 0.01)
        shade = 0.85 + 0.15 * smoothstep(0.0, 0.15 * eye.width, above)  # the lid darkens toward its edge
        own = LID_OWN_COLOUR
        lid = ((1 - own) * skin + own * eye.lid[None, None, :]) * shade[..., None]
        # a lid is a dome: a little brighter across its middle
        middle = (edge[None, :] + ceiling[None, :]) / 2
        dome = np.exp(-(((ys - middle) / np.maximum(0.5 * (edge - ceiling), 1.0)[None, :]) ** 2)) * (1 - across[None, :] ** 2)
        lid = lid * (1 + LID_DOME * closure * dome[..., None])
        # the picture's own skin texture, fading out toward the top of the lid (no border where it ends)
        fade = smoothstep(0.3, 0.9, (ys - ceiling[None, :]) / np.maximum(edge - ceiling, 1.0)[None, :])
        lid = lid + fade[..., None] * _skin_grain(frame, box, LID_GRAIN_LIFT * eye.width)
        # the fold where the open lid's edge was stays as a soft crease on the closing lid
        rest_order = np.argsort(rest_upper[:, 0])
        fold = np.interp(xs, rest_upper[rest_order, 0], rest_upper[rest_order, 1])[None, :] - CREASE_ABOVE * eye.width
        crease = np.exp(-(((ys - fold) / max(1.0, 0.05 * eye.width)) ** 2)) * smoothstep(0.05 * eye.width, 0.2 * eye.width, above)
        lid = lid * (1 - (CREASE_DEPTH + CREASE_DEEPENING * closure) * crease[..., None])
        height = np.maximum(edge - ceiling, 1.0)[None, :]
        band = smoothstep(-0.5, 0.5, above) * smoothstep(0.0, 0.6, (ys - ceiling[None, :]) / height)
        margin = max(0.12 * (right - left), 1.0)
        band = band * (smoothstep(left, left + margin, xs) * (1 - smoothstep(right - margin, right, xs)))[None, :]
        return lid.astype(np.float32), band.astype(np.float32)


LID_GRAIN_LIFT = 0.35  # the lid's texture comes from the skin this many eye widths above it
CREASE_ABOVE = -0.08  # the closed lid's fold, below where the open lid's edge was, in eye widths
CREASE_DEPTH = 0.07  # of the fold on a lid that has just begun to close
CREASE_DEEPENING = 0.12  # more, on a shut lid
LID_OWN_COLOUR = 0.2  # share of the lid's own colour against the skin spread from around the eye
LID_DOME = 0.06  # a shut lid's brightening across its middle
VISIBLE_LID_SHARE = 0.6  # of the lid skin the open eye shows, in the lid's colour (the rest: skin around the eye)


def _skin_grain(frame: np.ndarray, box, lift: float) -> np.ndarray:
    """The fine texture (high-pass) of the frame's skin ``lift`` pixels above box, over box: drawn
    lids are smooth, real ones carry the skin's grain."""
    x0, y0, x1, y1 = box
    up = int(round(lift))
    top, bottom = max(0, y0 - up), max(1, y1 - up)
    patch = frame[top:bottom, x0:x1].astype(np.float32)
    if patch.shape[0] < y1 - y0:  # near the picture's top: mirror what there is
        patch = cv2.copyMakeBorder(patch, y1 - y0 - patch.shape[0], 0, 0, 0, cv2.BORDER_REFLECT)
    grain = patch - cv2.GaussianBlur(patch, (0, 0), 1.5)
    return np.clip(grain, -20, 20)


LASH_LENGTH = 0.18  # of the longest lashes, hanging below a closed lid's edge, in eye widths
LASH_SPACING = 0.035  # between lash strokes, in eye widths
LASHES_FROM = 0.15  # share of the opening the upper lid has come down from which its own lashes are drawn
LASH_SOFTNESS = 0.8  # pixels of blur: drawn strokes as soft as a photo's


def _lash_fringe(eye: _Eye, upper: np.ndarray, box) -> np.ndarray:
    """Cover (0..1) over box of the lid's lashes: a dark margin along the lid's edge and a fringe of
    short strokes hanging from it, slanting toward the outer corner and longest in the middle,
    thinning toward the corners. Fixed along the lid (no flicker); at low resolution the strokes
    blur into the soft dark band that small real eyes show."""
    x0, y0, x1, y1 = box
    order = np.argsort(upper[:, 0])
    xs = np.arange(x0, x1, dtype=np.float64)[None, :]
    ys = np.arange(y0, y1, dtype=np.float64)[:, None]
    edge = np.interp(xs, upper[order, 0], upper[order, 1])
    below = ys - edge
    outer, inner = upper[0, 0], upper[-1, 0]
    along = np.clip((xs - inner) / (outer - inner if abs(outer - inner) > 1 else 1.0), 0, 1)  # 0 inner .. 1 outer
    middle = np.sin(np.pi * along) ** 0.6  # lashes thin out toward both corners
    length = LASH_LENGTH * eye.width * (0.25 + 0.75 * middle)
    margin = max(1.0, 0.04 * eye.width)  # the lid's dark rim, where the lashes grow
    rim = smoothstep(-2 * margin, -0.3 * margin, below) * (1 - smoothstep(0.3 * margin, 1.2 * margin, below))
    # strokes lean outward the more the nearer the outer corner
    lean = np.sign(outer - inner) * (0.15 + 0.6 * along) * np.clip(below, 0, None)
    spacing = max(1.0, LASH_SPACING * eye.width)
    phase = (xs - lean) / spacing
    stroke = np.floor(phase)
    reach = length * (0.65 + 0.35 * _hash(stroke))  # lashes of uneven length
    core = np.abs(phase - stroke - 0.5) * spacing  # pixels from the stroke's centre line
    thickness = max(0.5, 0.012 * eye.width)
    # fine strokes where pixels resolve them, an even band where they do not
    resolved = float(smoothstep(1.5, 3.0, spacing))
    across = resolved * np.clip(1.0 - (core - thickness) / 0.8, 0, 1) + (1 - resolved) * 0.55
    hang = np.clip(below, 0, None) / np.maximum(reach, 0.5)
    strokes = across * np.clip(1 - hang, 0, 1) ** 0.8 * (below > -0.5)
    cover = np.maximum(rim * (0.55 + 0.3 * middle), 0.85 * strokes)
    cover = cv2.GaussianBlur((cover * smoothstep(0.0, 0.08, along) * smoothstep(0.0, 0.04, 1 - along)).astype(np.float32),
                             (0, 0), LASH_SOFTNESS)
    return cover


def _hash(values: np.ndarray) -> np.ndarray:
    """A fixed pseudo-random 0..1 per integer (lash lengths that do not change from frame to frame)."""
    return np.modf(np.abs(np.sin(values * 12.9898 + 78.233)) * 43758.5453)[0]


def _lash_colour(picture: np.ndarray, upper: np.ndarray, eye_width: float) -> np.ndarray:
    """The picture's own upper lash line: the darkest tenth of the pixels within a few percent of an eye
    width of the open upper lid's middle (a painting's or a black-and-white photo's own dark)."""
    height, width = picture.shape[:2]
    order = np.argsort(upper[:, 0])
    left, right = upper[order[0], 0], upper[order[-1], 0]
    values = []
    for x in np.arange(left + 0.2 * (right - left), right - 0.2 * (right - left)):
        y = np.interp(x, upper[order, 0], upper[order, 1])
        for dy in np.arange(-0.05, 0.03, 0.01) * eye_width:
            col, row = int(round(x)), int(round(y + dy))
            if 0 <= col < width and 0 <= row < height:
                values.append(picture[row, col])
    if len(values) < 4:
        return np.full(3, 40.0, np.float32)
    values = np.array(values, dtype=np.float32)
    darkest = values[values.mean(axis=1) <= np.percentile(values.mean(axis=1), 10)]
    return np.median(darkest, axis=0).astype(np.float32)


def _masked_blur(picture: np.ndarray, weight: np.ndarray, size: float) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian blurs (kernel about ``size`` pixels) of picture * weight and of weight, done at a
    quarter of the resolution: the result is smooth anyway, and a full-size blur costs ~0.2 ms."""
    height, width = weight.shape
    stack = np.dstack([picture * weight[..., None], weight]).astype(np.float32)
    small = cv2.resize(stack, (max(1, width // 4), max(1, height // 4)), interpolation=cv2.INTER_AREA)
    kernel = max(3, int(size / 4) | 1)
    blurred = cv2.resize(cv2.GaussianBlur(small, (kernel, kernel), 0), (width, height), interpolation=cv2.INTER_LINEAR)
    return blurred[..., :3], blurred[..., 3:]


def _iris_patch(patch, covered, dist, centre, radius) -> np.ndarray:
    """Premultiplied RGBA iris: the pixels the plate painted out (``covered``: the iris and its rim,
    where the eye shows them) as they are, so the unmoved eyeball is the picture itself; the iris's
    parts under the lids mirrored from the other half, so a moved iris is whole."""
    h, w = dist.shape
    visible = covered > 0
    colour = patch.copy()
    ys, xs = np.mgrid[0:h, 0:w]
    mirror_y = np.clip(np.round(2 * centre[1] - ys).astype(int), 0, h - 1)
    hidden = (dist < radius + 1) & ~visible
    from_mirror = hidden & visible[mirror_y, xs]
    colour[from_mirror] = patch[mirror_y[from_mirror], xs[from_mirror]]
    still = (hidden & ~from_mirror).astype(np.uint8)
    if still.any():
        colour = cv2.inpaint(np.clip(colour, 0, 255).astype(np.uint8), still, 3, cv2.INPAINT_TELEA).astype(np.float32)
    # the plate's paint-out is blurred a pixel wide: the patch covers that pixel too, as it is
    blurred = cv2.dilate(covered, np.ones((3, 3), np.uint8)) > 0
    colour[blurred & ~visible] = patch[blurred & ~visible]
    alpha = np.maximum(np.clip(radius + 0.5 - dist, 0, 1), blurred)
    return np.concatenate([colour * alpha[..., None], alpha[..., None]], axis=2).astype(np.float32)


def _lid_colour(picture, xy, upper, lower, brow_lower, eye_width) -> np.ndarray:
    """Lid skin: half the skin between the upper lid and the brow (often a shadowed socket or
    make-up), half the skin under the eye (the face's plain skin tone)."""
    height, width = picture.shape[:2]
    brow_line = xy[list(brow_lower)]

    def median_at(points) -> np.ndarray | None:
        values = [picture[y, x] for x, y in np.round(points).astype(int) if 0 <= x < width and 0 <= y < height]
        return np.median(np.array(values), axis=0) if values else None

    between = []
    for point in xy[list(upper[2:-2])]:
        brow = brow_line[np.argmin(np.abs(brow_line[:, 0] - point[0]))]
        if brow[1] > point[1] - 0.1 * eye_width:  # no brow above this point: go up a fixed amount
            brow = point - (0, 0.5 * eye_width)
        between += [point + fraction * (brow - point) for fraction in (0.3, 0.4, 0.5)]
    under = [point + (0, lift * eye_width) for point in xy[list(lower[2:-2])] for lift in (0.25, 0.35)]
    found = [m for m in (median_at(between), median_at(under)) if m is not None]
    return np.mean(found, axis=0).astype(np.float32) if found else np.full(3, 128.0, np.float32)


def _median_between(picture, lower_points: np.ndarray, upper_points: np.ndarray) -> np.ndarray | None:
    """Median colour inside the polygon between two point rows, without its darkest third."""
    if len(lower_points) < 2 or len(upper_points) < 2:
        return None
    polygon = np.vstack([lower_points[np.argsort(lower_points[:, 0])], upper_points[np.argsort(-upper_points[:, 0])]])
    mask = np.zeros(picture.shape[:2], dtype=np.uint8)
    cv2.fillPoly(mask, [np.round(polygon).astype(np.int32)], 1)
    values = picture[mask > 0]
    if len(values) < 4:
        return None
    bright = values[values.mean(axis=1) >= np.percentile(values.mean(axis=1), 33)]
    return np.median(bright, axis=0).astype(np.float32)


def _paint_out_iris(patch, opening, dist, covered, radius, centre_y) -> np.ndarray:
    """The eye with its iris replaced by the white of the eye (its own colour), shaded under the lid."""
    visible = (cv2.erode(opening, np.ones((3, 3), np.uint8)) > 0.5) & (dist > radius * 1.2)
    white = patch[visible]
    if len(white) >= 6:
        sclera = np.percentile(white, 60, axis=0)
    else:  # an eye that is nearly all iris: a slightly warm off-white at the picture's brightness
        sclera = np.full(3, float(np.percentile(patch, 90))) * np.array([1.0, 0.97, 0.93])
    rows = np.arange(patch.shape[0], dtype=np.float32)[:, None]
    shade = 0.78 + 0.22 * np.clip((rows - (centre_y - radius)) / (1.4 * radius), 0, 1)
    fill = sclera[None, None, :] * shade[..., None]
    weight = cv2.GaussianBlur(covered.astype(np.float32), (3, 3), 0)[..., None]
    return (weight * fill + (1 - weight) * patch).astype(np.float32)
