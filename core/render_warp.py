"""The dense backward warp of a portrait from per-vertex motion.

Once per rig and output size: each node of a coarse grid gets the triangle it lies in and its
barycentric weights (a sparse nodes x vertices matrix). Per frame: one sparse product gives the
forward displacement of every node, a few fixed-point steps (src = p - D(src), each a
``grid_sample`` of the coarse field) invert it, and an upsampled map drives one ``grid_sample``
of the picture. Where the motion folds (between parted lips) the inversion is wrong, and the
mouth layer is drawn over it.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.sparse import csr_matrix

INVERSION_STEPS = 4


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


def _barycentric(points: np.ndarray, tri: np.ndarray) -> np.ndarray | None:
    a, b, c = tri
    det = (b[1] - c[1]) * (a[0] - c[0]) + (c[0] - b[0]) * (a[1] - c[1])
    if abs(det) < 1e-9:
        return None
    l1 = ((b[1] - c[1]) * (points[:, 0] - c[0]) + (c[0] - b[0]) * (points[:, 1] - c[1])) / det
    l2 = ((c[1] - a[1]) * (points[:, 0] - c[0]) + (a[0] - c[0]) * (points[:, 1] - c[1])) / det
    return np.stack([l1, l2, 1 - l1 - l2], axis=1)


class MeshWarp:
    """Backward warp maps of an (height, width) output from vertex displacements (output pixels)."""

    def __init__(self, vertices: np.ndarray, triangles: np.ndarray, height: int, width: int,
                 spacing: float = 4.0):
        self.height, self.width = height, width
        cols = max(2, int(np.ceil((width - 1) / spacing)) + 1)
        rows = max(2, int(np.ceil((height - 1) / spacing)) + 1)
        xs, ys = np.linspace(0, width - 1, cols), np.linspace(0, height - 1, rows)
        nodes = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)
        self.coarse_shape = (rows, cols)
        self.matrix = barycentric_matrix(nodes, vertices[:, :2].astype(np.float64), triangles)
        # normalised coordinates (align_corners=True: -1 and 1 are the first and last pixel centres)
        self.to_norm = torch.tensor([2.0 / max(width - 1, 1), 2.0 / max(height - 1, 1)], dtype=torch.float32)
        self.coarse_norm = torch.from_numpy(nodes.astype(np.float32)).reshape(1, rows, cols, 2) * self.to_norm - 1
        gy, gx = torch.meshgrid(torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij")
        self.full_norm = torch.stack([gx, gy], dim=-1).unsqueeze(0)  # (1, H, W, 2)

    def sample_grid(self, displacement: np.ndarray) -> torch.Tensor:
        """(V, 2) forward vertex displacement in pixels -> (1, H, W, 2) grid for ``grid_sample``."""
        rows, cols = self.coarse_shape
        forward = torch.from_numpy((self.matrix @ displacement).astype(np.float32))
        forward = (forward * self.to_norm).reshape(1, rows, cols, 2).permute(0, 3, 1, 2)  # (1, 2, rows, cols)
        target = self.coarse_norm
        source = target - forward.permute(0, 2, 3, 1)
        for _ in range(INVERSION_STEPS):
            moved = F.grid_sample(forward, source, mode="bilinear", padding_mode="border", align_corners=True)
            source = target - moved.permute(0, 2, 3, 1)
        backward = (target - source).permute(0, 3, 1, 2)  # (1, 2, rows, cols)
        backward = F.interpolate(backward, size=(self.height, self.width), mode="bilinear", align_corners=True)
        return self.full_norm - backward.permute(0, 2, 3, 1)


def warp_image(image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """(1, C, H, W) float image sampled at a (1, H', W', 2) grid -> (1, C, H', W')."""
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)
