"""The mouth interior drawn where the lips part, by rules measured against real mouths
(bench/bench_reenact.py): upper teeth on the skull and lower teeth on the jaw (an overbite, so in
speech the rows stay close), gaps between teeth, gums where the upper lip rises off them, a tongue
lying low, a cavity that darkens with depth, the inner lips' wet rims. All of it is lit by how far
the lips part and coloured from the picture itself: the teeth from the white of its eyes (its white
balance and light) and its skin, the rest from its lips; black-and-white pictures stay grey.
The tongue lifts its tip behind the upper teeth by MotionFrame.tongue_tip (set from the phones
L, T, D, N, TH by the motion generator; ARKit has no such channel); TongueOut raises it whole.

Everything is drawn in the mouth's rest coordinates and carried by the head's rigid motion, so
the teeth never stretch with the lips and look the same from frame to frame. Where the source
picture already shows the inside of the mouth (parted lips, visible teeth), those pixels are
kept, attached to the upper jaw; at rest the layer reproduces the picture exactly.
"""
from __future__ import annotations

import cv2
import numpy as np

from ..arkit import ARKIT_INDEX
from .draw import bounding_box, composite, fit_affine, inverse_points, polygon_mask, sample, smoothstep
from .rig_mesh import CHIN, LIPS_LOWER_INNER, LIPS_LOWER_OUTER, LIPS_UPPER_INNER, LIPS_UPPER_OUTER

LOWER_LIP_MIDDLE = [14, 87, 317]
INNER_CONTOUR = list(LIPS_UPPER_INNER) + list(LIPS_LOWER_INNER[-2:0:-1])
OUTER_CONTOUR = list(LIPS_UPPER_OUTER) + list(LIPS_LOWER_OUTER[-2:0:-1])
UPPER_JAW_POINTS = list(LIPS_UPPER_OUTER) + [1, 2, 4, 5, 6, 98, 327, 168, 33, 263, 133, 362]
TEETH_WHITE = np.array([236.0, 230.0, 214.0], dtype=np.float32)
TEETH_IVORY = np.array([1.03, 1.0, 0.9])  # teeth reflect less blue than the white of the eye
TEETH_BRIGHTNESS = 1.3  # lit teeth against the picture's skin
TEETH_OVER_SCLERA = 1.0  # lit teeth against the picture's eye whites (which the lids shade)
SOFTNESS = 0.012  # blur of the drawn interior, in mouth widths (0.02 scored ~0.002 higher mouth SSIM but
# MediaPipe then tracked rendered openings less well: tests/test_render_loop.py r 0.92 -> 0.87)
LIGHT_AT_SLIT = 0.7  # light inside lips barely parted, against a wide-open mouth's 1
# Beyond the canines the teeth turn away into the cheeks' shadow (the buccal corridor): real mouths in
# speech (bench/bench_reenact.py crops) show bright front teeth and dark corners, not a row to the corners
TEETH_AT_CORNERS = 0.7  # the teeth's brightness at the mouth corners, against the front teeth's
TEETH_LIT_TO = 0.4  # front teeth fully lit out to here (half-widths of the mouth from its middle)
TEETH_DARK_FROM = 0.85  # and in the corners' shadow from here


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
        self.colours = _mouth_colours(self.image, self.base_xy, shown if self.source_parted else None)

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
        opened = float(smoothstep(0.0, 0.04 * self.mouth_width, self._gap(geometry.deformed) - self.rest_gap))
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
        lip_shift = (geometry.deformed[LOWER_LIP_MIDDLE] - geometry.rigid[LOWER_LIP_MIDDLE]).mean(axis=0)
        tongue_tip = float(np.clip(frame.tongue_tip, 0.0, 1.0))
        lips_now = self._lines_now(geometry.deformed, upper_jaw)
        synth = self._synthesize(map_x, map_y, jaw_shift, lip_shift, upper_jaw, geometry.weights, tongue_tip, lips_now)
        interior = kept * source + (1 - kept) * synth
        closing = self._closing(geometry)
        if closing > 0:  # lips closing past their rest gap: what still shows between them is shadow
            seam = 0.25 * (self.colours["upper_lip"] + self.colours["lower_lip"])  # lips in their own shadow
            interior = interior + closing * (seam - interior)
        composite(rgb, box, coverage[..., None], interior)
        if closing > 0:
            self._seal(rgb, geometry, upper_jaw, closing)

    def _lines_now(self, deformed: np.ndarray, upper_jaw: np.ndarray):
        """The current inner lip lines, (along, down) each, in the mouth's rest coordinates (the lips move
        on the skull: the upper one rises as the mouth opens, so the rims must follow them, not the rest lines)."""
        inverse = cv2.invertAffineTransform(upper_jaw.astype(np.float64))
        lines = []
        for contour in (LIPS_UPPER_INNER, LIPS_LOWER_INNER):
            points = deformed[list(contour)].astype(np.float64) @ inverse[:, :2].T + inverse[:, 2]
            along, down = self._coords(points)
            order = np.argsort(along)
            lines.append((along[order], down[order]))
        return lines

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

    def _synthesize(self, map_x, map_y, jaw_shift, lip_shift, upper_jaw, weights, tongue_tip: float,
                    lips_now) -> np.ndarray:
        """Cavity, tongue, gums and teeth at rest-pose positions (map_x, map_y): the upper teeth hang
        from the upper lip line (they move with the skull), the lower teeth and the tongue ride on
        the jaw; everything is lit by how far the lips part and darkens with depth."""
        c = self.colours
        mw = self.mouth_width
        along, down = self._coords(np.stack([map_x, map_y], axis=-1).astype(np.float64))
        # the lower jaw's own motion, brought back to rest coordinates
        jaw_rest = np.linalg.solve(upper_jaw[:, :2], jaw_shift)
        jaw_down = float(jaw_rest @ self.normal)
        jaw_along = float(jaw_rest @ self.axis) / self.half_width
        lip_down = float(np.linalg.solve(upper_jaw[:, :2], lip_shift) @ self.normal)  # the lower lip's own drop
        upper = np.interp(along, *self.upper_line)
        lower = np.interp(along - jaw_along, *self.lower_line) + lip_down
        # where the lips are now (rims, the upper lip's shadow, depth); the teeth hang from the rest line
        upper_now, lower_now = (np.interp(along, *line) for line in lips_now)
        centre_gap = float(np.interp(0.0, *self.lower_line) + lip_down - np.interp(0.0, *self.upper_line))
        # light gets in as the lips part: a slit is in shadow, a wide-open mouth is lit
        light = LIGHT_AT_SLIT + (1 - LIGHT_AT_SLIT) * float(smoothstep(0.0, 0.3 * mw, centre_gap))
        arch = np.sqrt(np.clip(1 - (along / 0.92) ** 2, 0, 1))  # the dental arch, foreshortened to the corners
        # cavity: lit just inside the lips, dark deep inside (not darker toward the corners: that read
        # as black wedges on small mouths)
        inside = np.minimum(down - upper_now, lower_now - down)
        deep = smoothstep(0.0, 0.12 * mw, inside)
        out = c["cavity"] * ((1.0 - 0.5 * deep) * light)[..., None]
        # tongue: a low mound behind the lower teeth (TongueOut raises it toward the teeth)
        tongue_top = lower - (0.15 + 0.12 * weights[ARKIT_INDEX["TongueOut"]]) * mw - 0.04 * mw * arch
        if tongue_tip > 0:  # L, T, D, N, TH: the rounded tip rises to the ridge behind the upper teeth
            tip_top = upper + TONGUE_TIP_REACH * mw + TONGUE_TIP_ROUND * mw * (along - jaw_along) ** 2
            tongue_top = tongue_top - tongue_tip * np.maximum(tongue_top - tip_top, 0.0)
        tongue = smoothstep(-1.0, 1.0, down - tongue_top) * smoothstep(0.0, 0.3, 0.8 - np.abs(along - jaw_along))
        tongue_shade = (0.35 + 0.3 * smoothstep(0.0, 0.08 * mw, down - tongue_top)) * (0.5 + 0.5 * arch) * light
        tongue_shade = tongue_shade * (1.0 + 0.8 * tongue_tip)  # the raised tip is near the lips, in their light
        out = out + tongue[..., None] * (c["tongue"] * tongue_shade[..., None] - out)
        # gums above the upper teeth: seen only when the upper lip rises off them
        gum_edge = upper - GUM_ABOVE_LIP * mw
        out = out + smoothstep(0.7, -0.7, down - gum_edge)[..., None] * (c["gums"] * light - out)
        # lower teeth ride on the jaw: at rest their tips sit just behind the upper teeth (overbite),
        # so in speech, where the jaw opens far less than the lips part, the two rows stay close
        incisal = upper + TOOTH_LENGTH * mw * arch
        lower_tips = incisal - OVERBITE * mw * arch + LOWER_TEETH_TRAVEL * jaw_down
        # a wide-open jaw carries the lower lip and teeth down together: the lip hides all but their tips
        lower_tips = np.clip(lower_tips, lower - LOWER_TEETH_SHOWN * mw * arch, lower - 0.03 * mw * arch)
        lower_teeth = smoothstep(-0.7, 0.7, down - lower_tips) * smoothstep(0.7, -0.7, down - lower_tips - 0.12 * mw)
        lower_shade = (0.75 * light * _corridor(along - jaw_along)
                       * _tooth_relief(along - jaw_along, self.half_width, mw, 0.8, 0.07))
        lower_shade = lower_shade * (0.75 + 0.25 * smoothstep(0.0, 0.03 * mw, down - lower_tips))
        behind_lip = smoothstep(-0.7, 0.7, down - lower_tips - 0.12 * mw)  # below them, the lower lip's inside
        out = out + behind_lip[..., None] * (c["inner_lip"] * light - out)
        out = out + (lower_teeth * smoothstep(0.1, 0.4, arch))[..., None] * (c["teeth"] * lower_shade[..., None] - out)
        # upper teeth: from the gum line to an incisal edge a little below the rest lip line
        upper_teeth = smoothstep(-0.7, 0.7, down - gum_edge) * smoothstep(-0.7, 0.7, incisal - down) * smoothstep(0.0, 0.3, arch)
        under_lip = 0.8 + 0.2 * smoothstep(-0.01 * mw, 0.04 * mw, down - upper_now)  # the upper lip's shadow
        tip = 1 - 0.25 * smoothstep(-0.03 * mw, 0.0, down - incisal)  # translucent incisal edges
        shade = (light * under_lip * tip * _corridor(along) * _upper_tooth_tints(along)
                 * _tooth_relief(along, self.half_width, mw))
        out = out + upper_teeth[..., None] * (c["teeth"] * shade[..., None] - out)
        # the inner lips' wet rims: lip colour, a little darker, fading into the mouth
        rim = np.maximum(np.exp(-np.maximum(down - upper_now, 0) / (0.015 * mw)),
                         np.exp(-np.maximum(lower_now - down, 0) / (0.02 * mw)))
        out = out + (0.6 * rim)[..., None] * (c["inner_lip"] - out)
        # as soft as the picture around it: drawn edges are sharper than any camera's
        out = cv2.GaussianBlur(out, (0, 0), max(0.5, SOFTNESS * mw))
        return out.astype(np.float32)


# where neighbouring teeth meet, from the middle outward, in half-widths of the mouth (before the
# arch's foreshortening): central and lateral incisors, canines, premolars
TOOTH_EDGES = (0.0, 0.17, 0.31, 0.45)
TOOTH_LENGTH = 0.1  # upper incisors below the rest lip line, in mouth widths
GUM_ABOVE_LIP = 0.12  # the gum line above the rest upper lip line, in mouth widths (speech lifts the lip up to ~0.1)
OVERBITE = 0.02  # the lower incisors' tips behind the upper ones at rest, in mouth widths
LOWER_TEETH_SHOWN = 0.09  # at most this much of the lower teeth shows above the lower lip, in mouth widths
TONGUE_TIP_REACH = 0.02  # the raised tip's top below the rest upper lip line (behind the teeth), mouth widths
TONGUE_TIP_ROUND = 0.6  # how fast the raised tip falls away to the sides: a rounded tip about half the mouth wide
LOWER_TEETH_TRAVEL = 0.5  # the lower incisors move this fraction of the chin's drop (nearer the hinge)


# each upper tooth's brightness from the middle outward (central and lateral incisor, canine, premolars),
# so the row's shade is uneven, as real rows are. (Uneven lengths too looked truer, but made MediaPipe read
# the rendered lip gap less faithfully: tests/test_render_loop.py, r 0.94 -> 0.89.)
TOOTH_TINTS = (1.0, 0.93, 0.9, 0.84)


def _corridor(along: np.ndarray) -> np.ndarray:
    """The teeth's light from the middle (1) to the mouth corners (TEETH_AT_CORNERS)."""
    return TEETH_AT_CORNERS + (1 - TEETH_AT_CORNERS) * smoothstep(TEETH_DARK_FROM, TEETH_LIT_TO, np.abs(along))


def _upper_tooth_tints(along: np.ndarray) -> np.ndarray:
    """Each tooth's tint per pixel, blended over about a gap's width at its edges."""
    side = np.abs(along)
    tint = np.full_like(side, TOOTH_TINTS[0])
    for k, edge in enumerate(TOOTH_EDGES[1:]):
        tint = tint + smoothstep(-0.02, 0.02, side - edge) * (TOOTH_TINTS[k + 1] - TOOTH_TINTS[k])
    return tint


def _tooth_relief(along: np.ndarray, half_width: float, mouth_width: float, size: float = 1.0,
                  depth: float = 0.15) -> np.ndarray:
    """1 on a tooth's face, darker in the narrow gaps between teeth (``size`` scales the teeth)."""
    width = max(0.6, 0.012 * mouth_width) / half_width  # a gap: about a pixel, more on big mouths
    relief = np.ones_like(along)
    for edge in TOOTH_EDGES:
        for sign in (1.0, -1.0) if edge else (1.0,):
            relief -= depth * np.exp(-(((along - sign * edge * size) / width) ** 2))
    return relief


def _sclera(image: np.ndarray, base_xy: np.ndarray, skin: np.ndarray) -> np.ndarray | None:
    """The white of the eyes: the picture's own white under its own light (None when too small)."""
    from .rig_mesh import EYE_LEFT_LOWER, EYE_LEFT_UPPER, EYE_RIGHT_LOWER, EYE_RIGHT_UPPER

    height, width = image.shape[:2]
    eyes = np.zeros((height, width), dtype=np.uint8)
    for upper, lower in ((EYE_LEFT_UPPER, EYE_LEFT_LOWER), (EYE_RIGHT_UPPER, EYE_RIGHT_LOWER)):
        cv2.fillPoly(eyes, [np.round(base_xy[list(upper) + list(lower[::-1])]).astype(np.int32)], 1)
    if len(base_xy) > 477:  # leave the irises out
        for centre, edge in ((468, 469), (473, 474)):
            radius = float(np.linalg.norm(base_xy[edge] - base_xy[centre]))
            cv2.circle(eyes, tuple(int(v) for v in np.round(base_xy[centre])), int(np.ceil(radius * 1.1)), 0, -1)
    pixels = image[eyes > 0]
    if len(pixels) < 8:
        return None
    bright = pixels[pixels.mean(axis=1) >= np.percentile(pixels.mean(axis=1), 60)]
    # of the bright pixels (lids and corners are skin), the white is the least like the skin's hue
    hue = bright / np.maximum(bright.mean(axis=1, keepdims=True), 1.0)
    unlike_skin = np.linalg.norm(hue - skin / max(float(skin.mean()), 1.0), axis=1)
    return np.median(bright[unlike_skin >= np.percentile(unlike_skin, 60)], axis=0)


def _mouth_colours(image: np.ndarray, base_xy: np.ndarray, shown: np.ndarray | None) -> dict[str, np.ndarray]:
    """Cavity, tongue, gums and teeth colours that belong to this picture: teeth from the white of
    its eyes (its white balance and light), the rest from its lips and skin (its palette)."""
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
    sclera = _sclera(image, base_xy, skin)
    white = sclera if sclera is not None else 0.6 * TEETH_WHITE + 0.4 * np.maximum(skin, lip)
    # teeth: the hue of the picture's white, warmed by its skin, a little brighter than the skin in its light
    hue = 0.75 * white / max(float(white.mean()), 1.0) + 0.25 * skin / max(float(skin.mean()), 1.0)
    hue = hue * TEETH_IVORY / TEETH_IVORY.mean()  # enamel over dentin: teeth are ivory, not white
    # never whiter than its eyes, though small eyes in a dim picture read darker than teeth: at least the skin
    teeth = min(TEETH_BRIGHTNESS * float(skin.mean()), max(TEETH_OVER_SCLERA * float(white.mean()), float(skin.mean()))) * hue
    if shown is not None and (shown > 0.5).sum() > 12:  # parted lips show the teeth: use their colour
        # (between closed lips the opening is the seam, whose colour is the lips')
        inside = image[shown > 0.5]
        bright = inside[inside.mean(axis=1) >= np.percentile(inside.mean(axis=1), 70)]
        if bright.mean() > 0.8 * skin.mean():
            teeth = np.median(bright, axis=0)
    lip_halves = []
    for outer, inner in ((LIPS_UPPER_OUTER, LIPS_UPPER_INNER), (LIPS_LOWER_OUTER, LIPS_LOWER_INNER)):
        half = np.zeros((height, width), dtype=np.uint8)
        cv2.fillPoly(half, [np.round(base_xy[list(outer) + list(inner[::-1])]).astype(np.int32)], 1)
        lip_halves.append(np.median(image[half > 0], axis=0) if half.any() else lip)
    colours = {"cavity": lip * np.array([0.42, 0.3, 0.3]) + 3.0,
               "tongue": lip * np.array([0.8, 0.58, 0.58]) + np.array([12.0, 0.0, 0.0]), "teeth": teeth,
               "gums": lip * np.array([1.0, 0.85, 0.85]), "inner_lip": 0.85 * lip,
               "upper_lip": lip_halves[0], "lower_lip": lip_halves[1]}
    if grey:  # black-and-white pictures (and marble) keep no colour cast
        colours = {k: np.full(3, v.mean()) for k, v in colours.items()}
    return {k: np.asarray(v, dtype=np.float32) for k, v in colours.items()}
