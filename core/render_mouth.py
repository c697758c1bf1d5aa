"""The mouth interior drawn where the lips part: dark cavity, upper teeth on the upper jaw, a hint
of tongue on the lower jaw (lower teeth, mostly hidden behind the lower lip in speech, are left
out: drawn as a band they read as an outline of the lip).

Everything is drawn in the mouth's rest coordinates and carried by the head's rigid motion, so
the teeth never stretch with the lips and look the same from frame to frame. Where the source
picture already shows the inside of the mouth (parted lips, visible teeth), those pixels are
kept, attached to the upper jaw; at rest the layer reproduces the picture exactly.
"""
from __future__ import annotations

import cv2
import numpy as np

from .arkit import ARKIT_INDEX
from .render_draw import bounding_box, composite, fit_affine, inverse_points, polygon_mask, sample, smoothstep
from .rig_mesh import CHIN, LIPS_LOWER_INNER, LIPS_LOWER_OUTER, LIPS_UPPER_INNER, LIPS_UPPER_OUTER

INNER_CONTOUR = list(LIPS_UPPER_INNER) + list(LIPS_LOWER_INNER[-2:0:-1])
OUTER_CONTOUR = list(LIPS_UPPER_OUTER) + list(LIPS_LOWER_OUTER[-2:0:-1])
UPPER_JAW_POINTS = list(LIPS_UPPER_OUTER) + [1, 2, 4, 5, 6, 98, 327, 168, 33, 263, 133, 362]
TOOTH_EDGES = (0.0, 0.17, 0.31)  # tooth boundaries across the mouth, in half-widths
TEETH_WHITE = np.array([236.0, 230.0, 214.0], dtype=np.float32)


class MouthLayer:
    def __init__(self, image: np.ndarray, base_xy: np.ndarray, mouth_width: float):
        self.height, self.width = image.shape[:2]
        self.image = image.astype(np.float32)
        self.base_xy = base_xy.astype(np.float64)
        self.mouth_width = max(mouth_width, 4.0)
        left, right = self.base_xy[291], self.base_xy[61]
        self.centre = (left + right) / 2
        self.axis = (left - right) / np.linalg.norm(left - right)  # along the mouth, to its left
        self.normal = np.array([-self.axis[1], self.axis[0]])  # down the face
        self.half_width = np.linalg.norm(left - right) / 2
        self.upper_line = self._line(LIPS_UPPER_INNER)
        self.lower_line = self._line(LIPS_LOWER_INNER)
        box = bounding_box(self.base_xy[INNER_CONTOUR], 1, self.width, self.height)
        shown = np.zeros((self.height, self.width), dtype=np.float32)
        if box is not None:
            x0, y0, x1, y1 = box
            shown[y0:y1, x0:x1] = polygon_mask(self.base_xy[INNER_CONTOUR], box)
        # the source's own mouth opening, one pixel wider so rest frames match it exactly
        self.source_open = (cv2.dilate(shown, np.ones((3, 3), np.uint8)) > 0).astype(np.float32)
        self.source_inside = cv2.erode(shown, np.ones((3, 3), np.uint8))  # strictly inside, for sealing
        self.rest_gap = self._gap(self.base_xy)
        # lips parted in the picture (teeth showing): keep its inside; else only at rest
        self.source_parted = self.rest_gap > 0.06 * self.mouth_width
        self.colours = _mouth_colours(self.image, self.base_xy, shown)

    @staticmethod
    def _gap(points: np.ndarray) -> float:
        """Mean distance between the inner lips around the middle of the mouth."""
        return float(np.mean(np.linalg.norm(points[[13, 82, 312]] - points[[14, 87, 317]], axis=1)))

    def _line(self, contour) -> tuple[np.ndarray, np.ndarray]:
        """A lip line as (along, down) in mouth coordinates, sorted along the mouth."""
        along, down = self._coords(self.base_xy[list(contour)])
        order = np.argsort(along)
        return along[order], down[order]

    def _coords(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        rel = points - self.centre
        return rel @ self.axis / self.half_width, rel @ self.normal

    def draw(self, rgb: np.ndarray, geometry, frame) -> None:
        """Composite the interior into rgb (H, W, 3 uint8) inside the current lip opening."""
        contour = geometry.deformed[INNER_CONTOUR]
        box = bounding_box(contour, 2, self.width, self.height)
        if box is None:
            return
        coverage = polygon_mask(contour, box)
        if not coverage.any():
            return
        upper_jaw = fit_affine(self.base_xy[UPPER_JAW_POINTS], geometry.rigid[UPPER_JAW_POINTS])
        map_x, map_y = inverse_points(upper_jaw, box)
        kept = sample(self.source_open, map_x, map_y)
        opened = float(smoothstep(0.0, 0.04 * self.mouth_width, self._gap(geometry.deformed) - self.rest_gap))
        if self.source_parted:
            # the picture's upper teeth stay with the upper jaw; its lower lip and teeth go with the jaw,
            # so below the middle of its opening the synthesized mouth takes over as the jaw drops
            along, down = self._coords(np.stack([map_x, map_y], axis=-1).astype(np.float64))
            upper, lower = np.interp(along, *self.upper_line), np.interp(along, *self.lower_line)
            upper_half = 1 - smoothstep(-1.0, 1.0, down - (upper + 0.55 * (lower - upper)))
            kept = kept * (1 - opened + opened * upper_half)
        else:  # the closed lips' seam must not show as a rim inside the mouth
            kept = kept * (1 - opened)
        kept = kept[..., None]
        source = sample(self.image, map_x, map_y)
        jaw_shift = geometry.deformed[CHIN] - geometry.rigid[CHIN]
        synth = self._synthesize(map_x, map_y, jaw_shift, upper_jaw, geometry.weights)
        interior = kept * source + (1 - kept) * synth
        closing = self._closing(geometry)
        if closing > 0:  # lips closing past their rest gap: what still shows between them is shadow
            seam = 0.25 * (self.colours["upper_lip"] + self.colours["lower_lip"])  # lips in their own shadow
            interior = interior + closing * (seam - interior)
        composite(rgb, box, coverage[..., None], interior)
        if closing > 0:
            self._seal(rgb, geometry, upper_jaw, closing)

    def _closing(self, geometry) -> float:
        """0 .. 1: how far parted lips have closed past their rest gap (0 for closed-lip pictures)."""
        if not self.source_parted:
            return 0.0
        return float(smoothstep(0.0, 0.6 * self.rest_gap, self.rest_gap - self._gap(geometry.deformed)))

    def _seal(self, rgb: np.ndarray, geometry, upper_jaw: np.ndarray, closing: float) -> None:
        """Parted lips closing past their rest gap: the warp can only squeeze the teeth between them
        into a band about a grid cell wide, so lips are painted over what the closed lips now hide."""
        upper_ids, lower_ids = list(LIPS_UPPER_INNER), list(LIPS_LOWER_INNER)
        hidden_outline = geometry.rigid[INNER_CONTOUR]
        box = bounding_box(np.vstack([hidden_outline, geometry.deformed[INNER_CONTOUR]]), 2, self.width, self.height)
        if box is None:
            return
        map_x, map_y = inverse_points(upper_jaw, box)
        hidden = sample(self.source_inside, map_x, map_y) * (1 - polygon_mask(geometry.deformed[INNER_CONTOUR], box))
        x0, y0, x1, y1 = box
        xs = np.arange(x0, x1, dtype=np.float64)
        upper, lower = geometry.deformed[upper_ids], geometry.deformed[lower_ids]
        top = np.interp(xs, *upper[np.argsort(upper[:, 0])].T)
        bottom = np.interp(xs, *lower[np.argsort(lower[:, 0])].T)
        seam = ((top + bottom) / 2)[None, :]
        ys = np.arange(y0, y1, dtype=np.float64)[:, None]
        below = smoothstep(-0.5, 0.5, ys - seam)[..., None]
        colour = (1 - below) * self.colours["upper_lip"] + below * self.colours["lower_lip"]
        colour = colour * (1 - 0.45 * np.exp(-((ys - seam) / 0.8) ** 2))[..., None]  # where the lips meet
        composite(rgb, box, (closing * hidden)[..., None], colour.astype(np.float32))

    def _synthesize(self, map_x, map_y, jaw_shift, upper_jaw, weights) -> np.ndarray:
        """Cavity, tongue and teeth at rest-pose positions (map_x, map_y)."""
        c = self.colours
        mw = self.mouth_width
        along, down = self._coords(np.stack([map_x, map_y], axis=-1).astype(np.float64))
        # the lower jaw's own motion, brought back to rest coordinates
        jaw_rest = np.linalg.solve(upper_jaw[:, :2], jaw_shift)
        jaw_down = float(jaw_rest @ self.normal)
        jaw_along = float(jaw_rest @ self.axis) / self.half_width
        upper = np.interp(along, *self.upper_line)
        lower = np.interp(along - jaw_along, *self.lower_line) + jaw_down
        depth = np.clip(1 - along ** 2, 0, 1)
        out = c["cavity"] * (0.45 + 0.55 * depth)[..., None]
        # tongue: a low mound on the floor of the mouth, rising toward the lower teeth
        # TongueOut raises the tongue toward the teeth (it cannot leave the picture's mouth)
        tongue_top = lower - (0.1 + 0.1 * weights[ARKIT_INDEX["TongueOut"]]) * mw - 0.03 * mw * depth
        tongue = smoothstep(-1.5, 1.5, down - tongue_top) * smoothstep(0.0, 0.25, 0.75 - np.abs(along - jaw_along))
        tongue_shade = (0.4 + 0.35 * smoothstep(0.0, 0.1 * mw, down - tongue_top)) * (0.6 + 0.4 * depth)
        out = out + tongue[..., None] * (c["tongue"] * tongue_shade[..., None] - out)
        # the lower lip's inner rim shades what is just behind it (keeps the lip's edge crisp)
        rim = smoothstep(-0.04 * mw, 0.0, down - lower)
        out = out * (1 - 0.55 * rim)[..., None]
        height = 0.13 * mw * np.sqrt(np.clip(1 - (along / 0.86) ** 2, 0, 1))
        upper_teeth = smoothstep(-1.0, 1.0, upper + height - down) * (height > 0.5)
        gaps = np.ones_like(along)
        pixel = 0.7 / self.half_width  # a tooth gap is about a pixel wide
        for edge in TOOTH_EDGES:
            for sign in (1.0, -1.0) if edge else (1.0,):
                gaps -= 0.08 * np.exp(-(((along - sign * edge) / pixel) ** 2))
        shade = (1 - 0.5 * along ** 2) * gaps * (0.78 + 0.22 * smoothstep(0.0, 0.05 * mw, down - upper))
        out = out + upper_teeth[..., None] * (c["teeth"] * shade[..., None] - out)
        return out.astype(np.float32)


def _mouth_colours(image: np.ndarray, base_xy: np.ndarray, shown: np.ndarray) -> dict[str, np.ndarray]:
    """Cavity, tongue and teeth colours that belong to this picture (its lips, skin, palette)."""
    height, width = image.shape[:2]
    lips = np.zeros((height, width), dtype=np.uint8)
    cv2.fillPoly(lips, [np.round(base_xy[OUTER_CONTOUR]).astype(np.int32)], 1)
    cv2.fillPoly(lips, [np.round(base_xy[INNER_CONTOUR]).astype(np.int32)], 0)
    lip = np.median(image[lips > 0], axis=0) if lips.any() else np.array([150.0, 80.0, 80.0])
    face = np.zeros((height, width), dtype=np.uint8)
    cheeks = base_xy[[50, 280, 101, 330, 205, 425]]
    for x, y in np.round(cheeks).astype(int):
        cv2.circle(face, (int(x), int(y)), max(2, int(0.02 * width)), 1, -1)
    skin = np.median(image[face > 0], axis=0) if face.any() else lip
    grey = float(np.mean(np.abs(np.diff(image.reshape(-1, 3)[::17], axis=1)))) < 4.0
    teeth = 0.6 * TEETH_WHITE + 0.4 * np.maximum(skin, lip)
    if (shown > 0.5).sum() > 12:  # the picture shows its teeth: use their colour
        inside = image[shown > 0.5]
        bright = inside[inside.mean(axis=1) >= np.percentile(inside.mean(axis=1), 70)]
        if bright.mean() > 0.8 * skin.mean():
            teeth = np.median(bright, axis=0)
    lip_halves = []
    for outer, inner in ((LIPS_UPPER_OUTER, LIPS_UPPER_INNER), (LIPS_LOWER_OUTER, LIPS_LOWER_INNER)):
        half = np.zeros((height, width), dtype=np.uint8)
        cv2.fillPoly(half, [np.round(base_xy[list(outer) + list(inner[::-1])]).astype(np.int32)], 1)
        lip_halves.append(np.median(image[half > 0], axis=0) if half.any() else lip)
    colours = {"cavity": lip * np.array([0.32, 0.22, 0.22]) + 4.0,
               "tongue": lip * np.array([0.78, 0.6, 0.6]) + np.array([14.0, 0.0, 0.0]), "teeth": teeth,
               "upper_lip": lip_halves[0], "lower_lip": lip_halves[1]}
    if grey:  # black-and-white pictures (and marble) keep no colour cast
        colours = {k: np.full(3, v.mean()) for k, v in colours.items()}
    return {k: np.asarray(v, dtype=np.float32) for k, v in colours.items()}
