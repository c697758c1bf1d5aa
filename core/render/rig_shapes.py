"""Per-vertex deltas of the visible ARKit blendshapes, derived from the face's own proportions.

Each shape moves a few handle vertices (lip and lid contours, brows, chin) by amounts measured
in the face's units (mouth width, eye opening, inter-ocular distance), in the face's own frame
(so a tilted portrait opens its jaw along its own chin axis). The skin around the handles follows
by harmonic interpolation on the mesh graph (the smoothest falloff that meets the handles), and
vertices far from the handles stay put.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.linalg import spsolve

from ..arkit import ARKIT_INDEX, ARKIT_NAMES
from .rig_mesh import (
    BROW_LEFT_INNER,
    BROW_LEFT_MID,
    BROW_LEFT_OUTER,
    BROW_RIGHT_INNER,
    BROW_RIGHT_MID,
    BROW_RIGHT_OUTER,
    CHIN,
    EYE_LEFT_LOWER,
    EYE_LEFT_UPPER,
    EYE_RIGHT_LOWER,
    EYE_RIGHT_UPPER,
    FACE_OVAL,
    IRIS_LEFT,
    IRIS_RIGHT,
    LIPS_LOWER_INNER,
    LIPS_LOWER_OUTER,
    LIPS_UPPER_INNER,
    LIPS_UPPER_OUTER,
    NOSE_TIP,
    NOSE_WING_LEFT,
    NOSE_WING_RIGHT,
    NUM_LANDMARKS,
    FaceMesh,
    lid_rings,
)

# At JawOpen = 1, in lip widths. Real mouths part ~0.75 mouth widths per unit of captured lip opening
# (MediaPipe on the real frames of 14 clips, bench/bench_reenact.py); the rig parted them 0.43 with the
# chin travelling as far as the lower lip. Opening the chin further overshot the jaw line and lowered
# mouth SSIM; the opening is made by the lips instead, and the upper lip's share (measured 0.0-0.56 per
# clip) is set by mouth SSIM on the tuning clips (upper 0.0 -> 0.3: 0.673 -> 0.681).
JAW_DROP_PER_MOUTH_WIDTH = 0.45  # chin travel
LOWER_LIP_DROP = 0.45  # the inner lower lip's middle
UPPER_LIP_RISE = 0.3  # the inner upper lip's middle (its outer edge rises OUTER_UPPER_SHARE of that)
OUTER_UPPER_SHARE = 0.6
PARTED_LIPS = 0.06  # lips this far apart at rest (a fraction of the lip width) count as parted
BILABIAL_PRESS = 0.45  # MouthPressLeft/Right of a bilabial (core/motion/lips): seals parted lips


@dataclass(frozen=True)
class FaceFrame:
    """The face's own axes in image pixels: x from its right eye to its left, y down its nose."""

    origin: np.ndarray  # (2,) midpoint of the eye centres
    x_axis: np.ndarray  # (2,) unit
    y_axis: np.ndarray  # (2,) unit
    iod: float  # inter-ocular distance (eye centre to eye centre), pixels
    mouth_width: float  # lip corner to lip corner, pixels

    def coords(self, xy: np.ndarray) -> np.ndarray:
        """(N, 2) pixels -> (N, 2) face coordinates in inter-ocular units."""
        rel = xy - self.origin
        return np.stack([rel @ self.x_axis, rel @ self.y_axis], axis=-1) / self.iod

    def to_pixels(self, du_dv: np.ndarray) -> np.ndarray:
        """(N, 2) displacement in face units -> (N, 2) pixels."""
        return (du_dv[:, :1] * self.x_axis + du_dv[:, 1:2] * self.y_axis) * self.iod


def face_frame(landmarks: np.ndarray) -> FaceFrame:
    right_eye = landmarks[[33, 133], :2].mean(axis=0)
    left_eye = landmarks[[263, 362], :2].mean(axis=0)
    x_axis = left_eye - right_eye
    iod = float(np.linalg.norm(x_axis))
    x_axis = x_axis / iod
    y_axis = np.array([-x_axis[1], x_axis[0]])
    mouth_width = float(np.linalg.norm(landmarks[291, :2] - landmarks[61, :2]))
    return FaceFrame(origin=(right_eye + left_eye) / 2, x_axis=x_axis, y_axis=y_axis, iod=iod,
                     mouth_width=mouth_width)


class _ShapeBuilder:
    """Turns handle displacements (face units) into whole-mesh deltas (pixels, 3D)."""

    def __init__(self, mesh: FaceMesh, frame: FaceFrame):
        self.mesh = mesh
        self.frame = frame
        self.uv = frame.coords(mesh.vertices[:, :2])
        n = len(mesh.vertices)
        tris = mesh.triangles
        rows = np.concatenate([tris[:, 0], tris[:, 1], tris[:, 2], tris[:, 1], tris[:, 2], tris[:, 0]])
        cols = np.concatenate([tris[:, 1], tris[:, 2], tris[:, 0], tris[:, 0], tris[:, 1], tris[:, 2]])
        adjacency = coo_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n)).tocsr()
        adjacency.data[:] = 1.0
        degree = np.asarray(adjacency.sum(axis=1)).ravel()
        self.neighbours = [set(adjacency.indices[adjacency.indptr[i]:adjacency.indptr[i + 1]]) for i in range(n)]
        self.laplacian = csr_matrix(np.diag(degree)) - adjacency
        # never moved by any shape: irises (not in the warp), border and outer rings
        self.always_fixed = np.zeros(n, dtype=bool)
        self.always_fixed[list(IRIS_RIGHT + IRIS_LEFT)] = True
        self.always_fixed[NUM_LANDMARKS + 3:] = mesh.head_weight[NUM_LANDMARKS + 3:] < 0.5

    def delta(self, handles: dict[int, tuple[float, float]], fixed: tuple[int, ...] = (),
              radius: float = 0.9, dz: dict[int, float] | None = None) -> np.ndarray:
        """(V, 3) pixel delta: handles move by (du, dv) face units; the rest interpolates harmonically
        within ``radius`` (face units) of the handles and stays put beyond it."""
        n = len(self.mesh.vertices)
        known = self.always_fixed.copy()
        known[list(fixed)] = True
        handle_ids = np.array(sorted(handles))
        nearest = np.min(np.linalg.norm(self.uv[:, None, :] - self.uv[None, handle_ids, :], axis=2), axis=1)
        known |= nearest > radius
        values = np.zeros((n, 3))
        values[handle_ids, :2] = self.frame.to_pixels(np.array([handles[i] for i in handle_ids]))
        for i, value in (dz or {}).items():
            values[i, 2] = value * self.frame.iod
        known[handle_ids] = True
        free = np.flatnonzero(~known)
        if len(free):
            lap = self.laplacian
            rhs = -(lap[free][:, np.flatnonzero(known)] @ values[known])
            solved = spsolve(lap[free][:, free].tocsc(), rhs)
            values[free] = solved.reshape(len(free), 3)
        return values.astype(np.float32)


def _lip_side(builder: _ShapeBuilder, ids) -> np.ndarray:
    """Lateral position of lip vertices: -1 at the subject's right corner, +1 at its left."""
    uv = builder.uv
    left, right = uv[291, 0], uv[61, 0]
    centre, half = (left + right) / 2, (left - right) / 2
    return np.clip((uv[list(ids), 0] - centre) / half, -1, 1)


def build_blendshape_deltas(mesh: FaceMesh, frame: FaceFrame) -> np.ndarray:
    """(52, V, 3) float32 pixel deltas in ARKIT_NAMES order (zero for shapes with no geometry)."""
    b = _ShapeBuilder(mesh, frame)
    deltas = np.zeros((len(ARKIT_NAMES), len(mesh.vertices), 3), dtype=np.float32)
    mw = frame.mouth_width / frame.iod  # mouth width in face units
    for name, delta in {**_mouth_shapes(b, mw), **_eye_shapes(b), **_brow_and_cheek_shapes(b, mw)}.items():
        deltas[ARKIT_INDEX[name]] = delta
    return deltas


@dataclass
class _Mouth:
    """What every mouth shape measures from: lip vertex sets, lateral positions, jaw travel."""

    b: _ShapeBuilder
    mw: float  # mouth width, face units
    upper: tuple[int, ...] = ()
    lower: tuple[int, ...] = ()
    corners: tuple[int, ...] = (61, 291, 78, 308)
    side: dict = field(default_factory=dict)  # lip vertex -> -1 (its right corner) .. +1 (its left)
    fixed: tuple[int, ...] = EYE_RIGHT_UPPER + EYE_RIGHT_LOWER + EYE_LEFT_UPPER + EYE_LEFT_LOWER + (NOSE_TIP,)

    def __post_init__(self):
        self.upper = tuple(dict.fromkeys(LIPS_UPPER_OUTER[1:-1] + LIPS_UPPER_INNER[1:-1]))
        self.lower = tuple(dict.fromkeys(LIPS_LOWER_OUTER[1:-1] + LIPS_LOWER_INNER[1:-1]))
        self.side = dict(zip(self.lips, _lip_side(self.b, self.lips)))
        uv = self.b.uv
        self.chin_v, self.corner_v = uv[CHIN, 1], uv[[61, 291], 1].mean()
        self.lower_oval = [i for i in FACE_OVAL if uv[i, 1] > self.corner_v]
        self.jaw = JAW_DROP_PER_MOUTH_WIDTH * self.mw
        # each lip vertex's partner on the other lip (same place along the mouth)
        pairs = list(zip(LIPS_UPPER_INNER[1:-1], LIPS_LOWER_INNER[1:-1])) + list(zip(LIPS_UPPER_OUTER[1:-1],
                                                                                   LIPS_LOWER_OUTER[1:-1]))
        self.lower_of = dict(pairs)
        self.upper_of = {lo: up for up, lo in pairs}

    @property
    def lips(self) -> tuple[int, ...]:
        return self.upper + self.lower + self.corners

    def lower_drop(self, i: int) -> float:
        """Lower lip drop at JawOpen = 1: most at the centre."""
        return LOWER_LIP_DROP * self.mw * (0.4 + 0.55 * (1 - self.side[i] ** 2)) / 0.95

    def upper_rise(self, i: int) -> float:
        """Upper lip rise at JawOpen = 1: most at the centre, none at the corners."""
        share = 1.0 if i in LIPS_UPPER_INNER else OUTER_UPPER_SHARE
        return UPPER_LIP_RISE * self.mw * share * max(1 - self.side[i] ** 2, 0.0)

    def lip_gap(self, i: int) -> float:
        """How far the lips part at this vertex's place along the mouth at JawOpen = 1."""
        j = self.lower_of.get(i, i)
        u = self.upper_of.get(i, i)
        return self.lower_drop(j) + self.upper_rise(u)

    def below_corners(self, i: int) -> float:
        """0 at the mouth corners' level, 1 at the chin."""
        return float(np.clip((self.b.uv[i, 1] - self.corner_v) / max(self.chin_v - self.corner_v, 1e-6), 0, 1))

    def shape(self, fn, ids=None, radius: float = 0.7, fixed: tuple[int, ...] = (), dz=None) -> np.ndarray:
        """Deltas of the shape whose lip handles move by fn(vertex) (face units)."""
        handles = {i: fn(i) for i in (self.lips if ids is None else ids)}
        return self.b.delta(handles, fixed=self.fixed + fixed, radius=radius, dz=dz)


def _mouth_shapes(b: _ShapeBuilder, mw: float) -> dict[str, np.ndarray]:
    m = _Mouth(b, mw)
    return {**_jaw_shapes(m), **_lip_shapes(m), **_side_shapes(m)}


def _jaw_shapes(m: _Mouth) -> dict[str, np.ndarray]:
    b, jaw, side = m.b, m.jaw, m.side
    handles = {i: (0.0, m.lower_drop(i)) for i in m.lower}
    handles.update({i: (0.0, 0.3 * jaw) for i in m.corners})
    # the upper lip rises a little in the middle; near the corners the jaw pulls it down
    handles.update({i: (0.0, 0.3 * jaw * np.clip((abs(side[i]) - 0.55) / 0.45, 0, 1) ** 2 - m.upper_rise(i))
                    for i in m.upper})
    for i in m.lower_oval:
        w = m.below_corners(i)
        handles[i] = (-0.04 * np.sign(b.uv[i, 0]) * w, jaw * w ** 0.8)
    shapes = {"JawOpen": b.delta(handles, fixed=m.fixed, radius=1.2)}

    def lateral(shift):
        h = {i: (shift * (0.6 if i in m.upper else 1.0), 0.0) for i in m.lips}
        h.update({i: (shift * m.below_corners(i), 0.0) for i in m.lower_oval})
        return b.delta(h, fixed=m.fixed, radius=1.0)

    shapes["JawLeft"], shapes["JawRight"] = lateral(0.12 * m.mw), lateral(-0.12 * m.mw)
    shapes["JawForward"] = m.shape(lambda i: (0.0, -0.02 * m.mw if i in m.lower else 0.0), radius=0.8,
                                   dz={i: 0.08 for i in m.lower})
    shapes["MouthClose"] = m.shape(lambda i: (0.0, 0.35 * m.lip_gap(i) if i in m.upper
                                              else -0.65 * m.lip_gap(i) if i in m.lower else 0.0),
                                   radius=0.5, fixed=(CHIN,))
    return shapes


def _lip_shapes(m: _Mouth) -> dict[str, np.ndarray]:
    """Shapes of both lips together: funnel, pucker, sideways, rolls and shrugs."""
    mw, side, uv = m.mw, m.side, m.b.uv
    inner_upper, inner_lower = set(LIPS_UPPER_INNER[1:-1]), set(LIPS_LOWER_INNER[1:-1])

    def funnel(i):
        opening = 0.07 * mw * (1 - side[i] ** 2)
        return (-side[i] * 0.12 * mw * abs(side[i]),
                -opening if i in inner_upper else opening if i in inner_lower else 0.0)

    shapes = {
        "MouthFunnel": m.shape(funnel, radius=0.6, dz={i: 0.08 for i in m.lips}),
        "MouthPucker": m.shape(lambda i: (-side[i] * 0.22 * mw * abs(side[i]) ** 0.7,
                                          -0.03 * mw if i in m.upper else 0.03 * mw if i in m.lower else 0.0),
                               radius=0.6, dz={i: 0.12 for i in m.lips}),
        "MouthLeft": m.shape(lambda i: (0.12 * mw, 0.0), radius=0.6),
        "MouthRight": m.shape(lambda i: (-0.12 * mw, 0.0), radius=0.6),
    }
    outer_lower, outer_upper = set(LIPS_LOWER_OUTER[1:-1]), set(LIPS_UPPER_OUTER[1:-1])
    pairs_lower = dict(zip(LIPS_LOWER_OUTER[1:-1], LIPS_LOWER_INNER[1:-1]))
    pairs_upper = dict(zip(LIPS_UPPER_OUTER[1:-1], LIPS_UPPER_INNER[1:-1]))
    shapes["MouthRollLower"] = m.shape(lambda i: (0.0, -0.6 * (uv[i, 1] - uv[pairs_lower[i], 1])
                                                  if i in outer_lower else 0.0), radius=0.5)
    shapes["MouthRollUpper"] = m.shape(lambda i: (0.0, 0.6 * (uv[pairs_upper[i], 1] - uv[i, 1])
                                                  if i in outer_upper else 0.0), radius=0.5)
    shrug = {i: (0.0, -0.06 * mw if i in m.lower else 0.0) for i in m.lips}
    shrug[CHIN] = (0.0, -0.03 * mw)
    shapes["MouthShrugLower"] = m.b.delta(shrug, fixed=m.fixed, radius=0.7)
    shapes["MouthShrugUpper"] = m.shape(lambda i: (0.0, -0.05 * mw if i in m.upper else 0.0), radius=0.6)
    return shapes


def _side_shapes(m: _Mouth) -> dict[str, np.ndarray]:
    """The Left/Right pairs: smile, frown, dimple, stretch, press, lower down, upper up."""
    mw, side, uv = m.mw, m.side, m.b.uv
    # A picture with parted lips (teeth showing) has them apart at rest; pressed lips (a bilabial
    # sets MouthPressLeft/Right to BILABIAL_PRESS) must still meet, so pressing closes that gap too.
    rest_gap = {u: uv[l, 1] - uv[u, 1] for u, l in zip(LIPS_UPPER_INNER[1:-1], LIPS_LOWER_INNER[1:-1])}
    rest_gap.update({l: g for (u, g), l in zip(list(rest_gap.items()), LIPS_LOWER_INNER[1:-1])})
    rest_gap.update({o: rest_gap[u] for o, u in zip(LIPS_UPPER_OUTER[1:-1] + LIPS_LOWER_OUTER[1:-1],
                                                     LIPS_UPPER_INNER[1:-1] + LIPS_LOWER_INNER[1:-1])})
    parted = np.median(list(rest_gap.values())) > PARTED_LIPS * mw
    shapes = {}
    for suffix, sign in (("Left", 1.0), ("Right", -1.0)):
        def seal(i, sign=sign):  # this side's share of closing half the rest gap (inner lips fully)
            if not parted or i not in rest_gap:
                return 0.0
            follow = 1.0 if i in LIPS_UPPER_INNER or i in LIPS_LOWER_INNER else 0.6
            share = float(np.clip(0.5 + sign * side[i], 0, 1))
            # 85%: with the press's own thinning the lips just meet (overlapping lips would fold)
            return 0.85 * follow * share * max(rest_gap[i], 0.0) / 2 / BILABIAL_PRESS

        def weight(i, sign=sign):  # 1 at this side's corner, 0 from the centre over
            return float(np.clip(sign * side[i], 0, 1)) ** 1.5

        def half(i, sign=sign):  # this side's half of the lip, fading across the centre
            return float(np.clip(0.5 + sign * side[i], 0, 1))

        up, down = m.upper, m.lower
        shapes["MouthSmile" + suffix] = m.shape(lambda i: (sign * 0.11 * mw * weight(i), -0.12 * mw * weight(i)))
        shapes["MouthFrown" + suffix] = m.shape(lambda i: (sign * 0.02 * mw * weight(i), 0.09 * mw * weight(i)))
        shapes["MouthDimple" + suffix] = m.shape(lambda i: (sign * 0.06 * mw * weight(i), -0.01 * mw * weight(i)))
        shapes["MouthStretch" + suffix] = m.shape(lambda i: (sign * 0.10 * mw * weight(i), 0.04 * mw * weight(i)))
        shapes["MouthPress" + suffix] = m.shape(lambda i: (0.0, (0.025 * mw * half(i) + seal(i)) if i in up
                                                           else (-0.025 * mw * half(i) - seal(i)) if i in down
                                                           else 0.0))
        shapes["MouthLowerDown" + suffix] = m.shape(lambda i: (0.0, 0.12 * mw * half(i) if i in down else 0.0),
                                                    radius=0.6, fixed=(CHIN,))
        shapes["MouthUpperUp" + suffix] = m.shape(lambda i: (0.0, -0.10 * mw * half(i) if i in up else 0.0),
                                                  radius=0.6)
    return shapes


def _eye_shapes(b: _ShapeBuilder) -> dict[str, np.ndarray]:
    uv = b.uv
    shapes = {}
    for suffix, upper, lower, brows in (
            ("Left", EYE_LEFT_UPPER, EYE_LEFT_LOWER, BROW_LEFT_INNER + BROW_LEFT_OUTER + BROW_LEFT_MID),
            ("Right", EYE_RIGHT_UPPER, EYE_RIGHT_LOWER, BROW_RIGHT_INNER + BROW_RIGHT_OUTER + BROW_RIGHT_MID)):
        corners = (upper[0], upper[-1])
        gaps = {u: uv[l, 1] - uv[u, 1] for u, l in zip(upper[1:-1], lower[1:-1])}
        lower_of = dict(zip(upper[1:-1], lower[1:-1]))

        ring1, ring2 = lid_rings(b.mesh.triangles, uv[:, 1], upper, lower)

        def lids(up, down):
            h = {c: (0.0, 0.0) for c in corners}
            for u in upper[1:-1]:  # the lid margin follows the lid line, the next ring partly
                for n in ring1[u]:
                    h[n] = (0.0, _smaller(h.get(n), 0.85 * up * gaps[u]))
                    for m in ring2[n]:
                        h[m] = (0.0, _smaller(h.get(m), 0.15 * up * gaps[u]))
            h.update({u: (0.0, up * gaps[u]) for u in upper[1:-1]})
            h.update({lower_of[u]: (0.0, -down * gaps[u]) for u in upper[1:-1]})
            return b.delta(h, fixed=brows, radius=0.35)

        shapes["EyeBlink" + suffix] = lids(0.72, 0.28)  # shut lids meet 0.72 of the way down (measured)
        shapes["EyeSquint" + suffix] = lids(0.12, 0.3)
        shapes["EyeWide" + suffix] = lids(-0.3, -0.06)
    return shapes


def _smaller(handle: tuple[float, float] | None, value: float) -> float:
    """The handle's vertical move or value, whichever is nearer zero (a vertex next to several lid
    points follows the one that moves least, so the lid margin never overtakes the lid line)."""
    if handle is None:
        return value
    return handle[1] if abs(handle[1]) <= abs(value) else value


def _brow_and_cheek_shapes(b: _ShapeBuilder, mw: float) -> dict[str, np.ndarray]:
    uv = b.uv
    eyes = EYE_RIGHT_UPPER + EYE_RIGHT_LOWER + EYE_LEFT_UPPER + EYE_LEFT_LOWER
    lips = LIPS_UPPER_OUTER + LIPS_LOWER_OUTER
    shapes = {}
    both_inner = BROW_RIGHT_INNER + BROW_LEFT_INNER
    shapes["BrowInnerUp"] = b.delta({i: (0.0, -0.12) for i in both_inner}
                                    | {i: (0.0, -0.05) for i in BROW_RIGHT_MID + BROW_LEFT_MID},
                                    fixed=eyes, radius=0.5)
    for suffix, sign, inner, outer, mid, wing, eye in (
            ("Left", 1.0, BROW_LEFT_INNER, BROW_LEFT_OUTER, BROW_LEFT_MID, NOSE_WING_LEFT,
             EYE_LEFT_LOWER),
            ("Right", -1.0, BROW_RIGHT_INNER, BROW_RIGHT_OUTER, BROW_RIGHT_MID, NOSE_WING_RIGHT,
             EYE_RIGHT_LOWER)):
        shapes["BrowDown" + suffix] = b.delta({i: (-sign * 0.04, 0.10) for i in inner + mid}
                                              | {i: (0.0, 0.05) for i in outer}, fixed=eyes, radius=0.5)
        shapes["BrowOuterUp" + suffix] = b.delta({i: (0.0, -0.12) for i in outer}
                                                 | {i: (0.0, -0.05) for i in mid}, fixed=eyes, radius=0.5)
        shapes["NoseSneer" + suffix] = b.delta({i: (0.0, -0.06) for i in wing}, fixed=eyes + lips, radius=0.4)
        # the cheek under the eye: vertices 0.15 .. 0.6 below the lower lid, rising
        eye_centre = uv[list(eye)].mean(axis=0)
        below = (uv[:, 1] - eye_centre[1])
        cheek = np.flatnonzero((below > 0.2) & (below < 0.6) & (np.abs(uv[:, 0] - eye_centre[0]) < 0.3)
                               & (np.arange(len(uv)) < NUM_LANDMARKS))
        shapes["CheekSquint" + suffix] = b.delta({int(i): (0.0, -0.05) for i in cheek}, fixed=eyes + lips,
                                                 radius=0.3)
    puff = {}
    for sign in (1.0, -1.0):
        centre = np.array([sign * 0.75, 1.15])
        near = np.flatnonzero((np.linalg.norm(uv - centre, axis=1) < 0.25) & (np.arange(len(uv)) < NUM_LANDMARKS))
        puff.update({int(i): (sign * 0.07, 0.0) for i in near})
    shapes["CheekPuff"] = b.delta(puff, fixed=eyes + lips, radius=0.4)
    return shapes
