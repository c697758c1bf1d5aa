"""Small drawing helpers shared by the mouth and eye layers."""
from __future__ import annotations

import cv2
import numpy as np

SUBPIXEL_BITS = 4


def polygon_mask(points: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] of a polygon over box = (x0, y0, x1, y1), shape (y1-y0, x1-x0)."""
    x0, y0, x1, y1 = box
    canvas = np.zeros((y1 - y0, x1 - x0), dtype=np.uint8)
    scaled = np.round((points - (x0, y0)) * (1 << SUBPIXEL_BITS)).astype(np.int32)
    cv2.fillPoly(canvas, [scaled], 255, lineType=cv2.LINE_AA, shift=SUBPIXEL_BITS)
    return canvas.astype(np.float32) / 255.0


def bounding_box(points: np.ndarray, pad: float, width: int, height: int) -> tuple[int, int, int, int] | None:
    """Integer box around points, padded and clipped to the image; None when empty."""
    x0, y0 = np.floor(points.min(axis=0) - pad).astype(int)
    x1, y1 = np.ceil(points.max(axis=0) + pad).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x1 - x0 < 1 or y1 - y0 < 1:
        return None
    return int(x0), int(y0), int(x1), int(y1)


def fit_affine(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(2, 3) least-squares affine map taking source points (N, 2) to target points."""
    design = np.column_stack([source, np.ones(len(source))])
    solution, *_ = np.linalg.lstsq(design, target, rcond=None)
    return solution.T


def inverse_points(affine: np.ndarray, box: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Where each pixel of box comes from under the inverse of ``affine``: (map_x, map_y) float32."""
    x0, y0, x1, y1 = box
    inverse = cv2.invertAffineTransform(affine.astype(np.float64))
    xs, ys = np.meshgrid(np.arange(x0, x1, dtype=np.float32), np.arange(y0, y1, dtype=np.float32))
    map_x = inverse[0, 0] * xs + inverse[0, 1] * ys + inverse[0, 2]
    map_y = inverse[1, 0] * xs + inverse[1, 1] * ys + inverse[1, 2]
    return map_x.astype(np.float32), map_y.astype(np.float32)


def sample(image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """Bilinear lookup of image (float32, H x W [x C]) at the given maps (edges replicated)."""
    return cv2.remap(image, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3 - 2 * t)


def composite(rgb: np.ndarray, box: tuple[int, int, int, int], cover: np.ndarray, colour: np.ndarray) -> None:
    """rgb[box] = cover * colour + (1 - cover) * rgb[box], in place on a uint8 image; cover (h, w, 1)."""
    x0, y0, x1, y1 = box
    region = rgb[y0:y1, x0:x1].astype(np.float32)
    region += cover * (colour - region)
    rgb[y0:y1, x0:x1] = np.clip(region + 0.5, 0, 255).astype(np.uint8)
