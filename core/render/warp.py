"""The dense backward warp of a portrait from per-vertex motion.

Once per rig and output size: each node of a coarse grid gets the triangle it lies in and its
barycentric weights (a sparse nodes x vertices matrix). Per frame: one sparse product gives the
forward displacement of every node, a few fixed-point steps (src = p - D(src), each a bilinear
lookup of the coarse field) invert it, and the upsampled map drives one bilinear resampling of
the picture. Where the motion folds (between parted lips) the inversion is wrong, and the
mouth layer is drawn over it.
"""
from __future__ import annotations

import cv2
import numpy as np
from scipy.sparse import csr_matrix

INVERSION_STEPS = 8
FIELD_BLUR_NODES = 0.7  # Gaussian sigma, in node spacings, of the forward field
CONVERGED_PX = 0.05  # inversion stops once the nodes land within this of their targets,
UNCONVERGED_SHARE = 0.003  # all but this share of them


def barycentric_matrix(nodes: np.ndarray, vertices: np.ndarray, triangles: np.ndarray) -> csr_matrix:
    """(N, V) sparse matrix of barycentric weights: node n = sum_v M[n, v] * vertex v.

    Earlier triangles win where triangles overlap; a node no triangle covers follows its nearest
    vertex.
    """
    n = len(nodes)
    owner = np.full(n, -1, dtype=np.int64)
    weights = np.zeros((n, 3))
    # nodes lie on a regular grid: find each triangle's candidate nodes through their coordinates
    xs, ys = np.unique(nodes[:, 0]), np.unique(nodes[:, 1])
    grid_index = np.arange(n).reshape(len(ys), len(xs))
    for t, (a, b, c) in enumerate(triangles):
        tri = vertices[[a, b, c]]
        x_lo, x_hi = np.searchsorted(xs, tri[:, 0].min()), np.searchsorted(xs, tri[:, 0].max(), side="right")
        y_lo, y_hi = np.searchsorted(ys, tri[:, 1].min()), np.searchsorted(ys, tri[:, 1].max(), side="right")
        if x_lo >= x_hi or y_lo >= y_hi:
            continue
        ids = grid_index[y_lo:y_hi, x_lo:x_hi].ravel()
        ids = ids[owner[ids] < 0]
        if not len(ids):
            continue
        bary = _barycentric(nodes[ids], tri)
        if bary is None:
            continue
        inside = np.all(bary >= -1e-6, axis=1)
        owner[ids[inside]] = t
        weights[ids[inside]] = bary[inside]
    rows, cols, vals = [], [], []
    covered = np.flatnonzero(owner >= 0)
    for k in range(3):
        rows.append(covered)
        cols.append(triangles[owner[covered], k])
        vals.append(weights[covered, k])
    missing = np.flatnonzero(owner < 0)
    if len(missing):
        nearest = np.argmin(((nodes[missing, None, :] - vertices[None, :, :]) ** 2).sum(-1), axis=1)
        rows.append(missing), cols.append(nearest), vals.append(np.ones(len(missing)))
    return csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                      shape=(n, len(vertices)))


def visible_first(vertices: np.ndarray, triangles: np.ndarray, num_face_triangles: int | None) -> np.ndarray:
    """The face's triangles reordered as a depth buffer would see them, the rest after.

    In a 3/4 portrait MediaPipe puts the hidden far cheek behind the nose, so the face mesh
    overlaps itself in the picture; where it does, a point of the picture belongs to the surface
    facing the camera and nearest to it, not to whichever triangle comes first in the list."""
    count = len(triangles) if num_face_triangles is None else num_face_triangles
    face = triangles[:count]
    xy = vertices[:, :2]
    a, b, c = xy[face[:, 0]], xy[face[:, 1]], xy[face[:, 2]]
    area = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])
    facing = np.sign(area) == np.sign(np.sum(area))  # the orientation most of the face has
    depth = vertices[face, 2].mean(axis=1)  # toward the camera
    order = np.lexsort((-depth, ~facing))  # facing the camera first, then nearest first
    return np.concatenate([face[order], triangles[count:]])


def _barycentric(points: np.ndarray, tri: np.ndarray) -> np.ndarray | None:
    a, b, c = tri
    det = (b[1] - c[1]) * (a[0] - c[0]) + (c[0] - b[0]) * (a[1] - c[1])
    if abs(det) < 1e-9:
        return None
    l1 = ((b[1] - c[1]) * (points[:, 0] - c[0]) + (c[0] - b[0]) * (points[:, 1] - c[1])) / det
    l2 = ((c[1] - a[1]) * (points[:, 0] - c[0]) + (a[0] - c[0]) * (points[:, 1] - c[1])) / det
    return np.stack([l1, l2, 1 - l1 - l2], axis=1)


class MeshWarp:
    """Backward warp maps of an (height, width) output from vertex displacements (output pixels).

    OpenCV's ``remap`` does the sampling (the same bilinear lookup as torch's ``grid_sample``,
    measured faster here and free of thread start-up cost on small arrays; see bench_render).
    """

    def __init__(self, vertices: np.ndarray, triangles: np.ndarray, height: int, width: int, spacing: int = 4,
                 num_face_triangles: int | None = None):
        self.height, self.width = height, width
        self.spacing = k = max(1, int(spacing))
        # node (i, j) sits at pixel ((j + 0.5) k - 0.5, (i + 0.5) k - 0.5): the layout cv2.resize
        # assumes, so one resize upsamples the node field exactly (bilinear)
        cols, rows = -(-width // k), -(-height // k)
        xs, ys = (np.arange(cols) + 0.5) * k - 0.5, (np.arange(rows) + 0.5) * k - 0.5
        nodes = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
        self.coarse_shape = (rows, cols)
        self.matrix = barycentric_matrix(nodes, vertices[:, :2].astype(np.float64),
                                         visible_first(vertices, triangles, num_face_triangles))
        self.nodes = nodes.reshape(rows, cols, 2).astype(np.float32)
        px, py = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
        self.pixels_x, self.pixels_y = px, py

    def to_coarse(self, points: np.ndarray) -> np.ndarray:
        """Pixel positions (..., 2) -> coordinates in the node grid."""
        return (points + 0.5) / self.spacing - 0.5

    def backward_maps(self, displacement: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(V, 2) forward vertex displacement in pixels -> (map_x, map_y): where each output pixel
        comes from, as float32 (H, W) arrays for ``cv2.remap``."""
        rows, cols = self.coarse_shape
        forward = (self.matrix @ displacement).astype(np.float32).reshape(rows, cols, 2)
        # triangles thinner than a node cell (a nose side seen in 3/4) give node values that fold
        # between nodes: a light blur keeps the sampled field as smooth as the mesh's motion
        if FIELD_BLUR_NODES > 0:
            forward = cv2.GaussianBlur(forward, (3, 3), FIELD_BLUR_NODES, borderType=cv2.BORDER_REPLICATE)
        backward = np.ascontiguousarray(self.nodes - self._invert(forward))  # (rows, cols, 2)
        k = self.spacing
        fine = cv2.resize(backward, (cols * k, rows * k), interpolation=cv2.INTER_LINEAR)[:self.height, :self.width]
        return self.pixels_x - fine[..., 0], self.pixels_y - fine[..., 1]

    def _invert(self, forward: np.ndarray) -> np.ndarray:
        """Solve src + D(src) = node for every node by Newton's method on the bilinear field D:
        plain fixed-point steps diverge where a turn stretches the picture more than twofold."""
        d_dy, d_dx = np.gradient(forward / self.spacing, axis=(0, 1))
        jacobian = np.ascontiguousarray(np.concatenate([d_dx, d_dy], axis=2))  # dDx/dx, dDy/dx, dDx/dy, dDy/dy
        source = self.nodes - forward
        cap = float(self.spacing)
        for _ in range(INVERSION_STEPS):
            at = self.to_coarse(source)
            moved = cv2.remap(forward, at[..., 0], at[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            residual = source + moved - self.nodes
            if np.count_nonzero(np.abs(residual) > CONVERGED_PX) <= UNCONVERGED_SHARE * residual.size:
                break  # the rest sit in folds (between parted lips), which the mouth layer covers
            slope = cv2.remap(jacobian, at[..., 0], at[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            a, c, b, d = 1 + slope[..., 0], slope[..., 1], slope[..., 2], 1 + slope[..., 3]  # [[a, b], [c, d]]
            det = a * d - b * c
            # folded or nearly (|det| small): a plain fixed-point step instead
            solvable = np.abs(det) > 0.05
            inverse_det = np.where(solvable, 1.0 / np.where(solvable, det, 1.0), 0.0)
            step = np.empty_like(residual)
            step[..., 0] = (d * residual[..., 0] - b * residual[..., 1]) * inverse_det
            step[..., 1] = (a * residual[..., 1] - c * residual[..., 0]) * inverse_det
            step[~solvable] = residual[~solvable]
            # bilinear cells end at the nodes: longer steps overshoot, so cap them at a cell
            length = np.sqrt((step ** 2).sum(axis=-1, keepdims=True))
            source = source - step * np.minimum(1.0, cap / np.maximum(length, 1e-6))
        return source


def zoom_maps(maps: tuple[np.ndarray, np.ndarray], centre: np.ndarray, zoom: float) -> tuple[np.ndarray, np.ndarray]:
    """Backward maps of the same warp seen through a zoom by ``zoom`` about ``centre``; beyond the
    warp's field the motion is taken as none (the picture's border does not move)."""
    map_x, map_y = maps
    height, width = map_x.shape
    px, py = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    at_x = centre[0] + (px - centre[0]) / zoom
    at_y = centre[1] + (py - centre[1]) / zoom
    motion = np.dstack([map_x - px, map_y - py])
    moved = cv2.remap(motion, at_x, at_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return at_x + moved[..., 0], at_y + moved[..., 1]


def warp_image(image: np.ndarray, maps: tuple[np.ndarray, np.ndarray], surround: "Surround | None" = None
               ) -> np.ndarray:
    """Sample image (H, W[, C], any dtype OpenCV takes) at the backward maps. Where the maps leave
    it (a zoomed-out frame), ``surround`` fills in."""
    out = cv2.remap(image, maps[0], maps[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if surround is not None:
        height, width = image.shape[:2]
        outside = (maps[0] < -0.5) | (maps[0] > width - 0.5) | (maps[1] < -0.5) | (maps[1] > height - 0.5)
        if outside.any():
            out[outside] = surround.sample(maps)[outside]
    return out


class Surround:
    """What lies around the output's view: the rest of the picture (a margin of it, at the output's
    scale), then a blurred mirror image of it where the picture ends (soft, without streaks)."""

    def __init__(self, canvas: np.ndarray, scale: np.ndarray, offset: np.ndarray):
        self.canvas = canvas  # (h, w[, C]) the picture around the view
        self.scale, self.offset = scale, offset  # canvas pixel = output pixel * scale + offset
        blur = max(3.0, 0.05 * max(canvas.shape[:2]))
        self.blurred = cv2.GaussianBlur(canvas, (0, 0), blur)

    def sample(self, maps: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        map_x = maps[0] * self.scale[0] + self.offset[0]
        map_y = maps[1] * self.scale[1] + self.offset[1]
        out = cv2.remap(self.canvas, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        height, width = self.canvas.shape[:2]
        beyond = (map_x < -0.5) | (map_x > width - 0.5) | (map_y < -0.5) | (map_y > height - 0.5)
        if beyond.any():
            blurred = cv2.remap(self.blurred, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
            out[beyond] = blurred[beyond]
        return out


UNFOLD_STEPS = 24
STRETCH_MIN_AREA = 4.0  # square pixels: smaller triangles are only checked for folds


def signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    a, b, c = points[triangles[:, 0]], points[triangles[:, 1]], points[triangles[:, 2]]
    return (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0])


class Unfolder:
    """Takes the folds out of a deformed mesh. A 2D warp cannot hide a far cheek behind the nose
    (a 3/4 portrait turning further away): the triangles there turn over and the inverse map has
    no single answer. Each step pulls the motion of every turned-over triangle's corners toward
    their mean motion (a triangle that moves as one keeps its rest shape) until none is left.
    With ``max_stretch`` / ``min_squeeze`` it also reins in triangles that would grow or shrink more
    than that: a far cheek turning into view has almost no pixels in the picture (stretched, they
    read as a smear), and one squeezed behind the nose is a fold about to happen."""

    def __init__(self, rest: np.ndarray, triangles: np.ndarray, movable: np.ndarray, min_area: float = 0.02,
                 max_stretch: float = np.inf, min_squeeze: float = 0.0):
        area = signed_areas(rest, triangles)
        keep = np.abs(area) > min_area  # slivers flip at any motion and do not matter
        self.rest = rest
        self.triangles = triangles[keep]
        self.area = area[keep]
        self.sized = np.abs(self.area) > STRETCH_MIN_AREA
        self.movable = movable  # (V,) bool, vertices the unfolding may move
        self.max_stretch = max_stretch  # triangles may grow at most this much in area, too
        self.min_squeeze = min_squeeze  # and shrink to no less than this

    def __call__(self, points: np.ndarray) -> np.ndarray:
        motion = points - self.rest
        for _ in range(UNFOLD_STEPS):
            ratio = signed_areas(self.rest + motion, self.triangles) / self.area
            # a sliver's area ratio swings wildly with sub-pixel motion: only folds count for it
            flipped = (ratio <= 0) | (self.sized & ((ratio <= self.min_squeeze) | (ratio > self.max_stretch)))
            if not flipped.any():
                break
            tris = self.triangles[flipped]
            corners = motion[tris]  # (F, 3, 2)
            towards = corners.mean(axis=1, keepdims=True) - corners
            ids, n = tris.ravel(), len(motion)
            count = np.bincount(ids, minlength=n)
            pull = np.stack([np.bincount(ids, weights=towards[..., axis].ravel(), minlength=n) for axis in (0, 1)],
                            axis=1)
            moved = (count > 0) & self.movable
            motion[moved] += 0.6 * pull[moved] / count[moved, None]
        return self.rest + motion
