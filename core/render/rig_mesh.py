"""Face landmarks and the warp mesh of a portrait rig.

MediaPipe's face mesh gives 478 landmarks (468 face + 10 iris) with depth. Its tessellation has
holes at the eyes and the mouth; we close them with a fan around an added centre vertex, then
extend the mesh to the image border with two rings of vertices around the face oval and points
on the border (Delaunay), so every pixel of the picture lies in exactly one triangle.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from matplotlib.path import Path as PolygonPath
from scipy.spatial import Delaunay

from ..errors import NoFaceError

NUM_LANDMARKS = 478

# Ordered contours (MediaPipe face mesh indices). "Right" is the subject's right (image left).
LIPS_UPPER_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291)
LIPS_LOWER_OUTER = (61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291)
LIPS_UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LIPS_LOWER_INNER = (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
EYE_RIGHT_UPPER = (33, 246, 161, 160, 159, 158, 157, 173, 133)
EYE_RIGHT_LOWER = (33, 7, 163, 144, 145, 153, 154, 155, 133)
EYE_LEFT_UPPER = (263, 466, 388, 387, 386, 385, 384, 398, 362)
EYE_LEFT_LOWER = (263, 249, 390, 373, 374, 380, 381, 382, 362)
IRIS_RIGHT = (468, 469, 470, 471, 472)  # centre first
IRIS_LEFT = (473, 474, 475, 476, 477)
BROW_RIGHT_INNER = (107, 66, 55, 65)
BROW_RIGHT_OUTER = (70, 63, 46, 53)
BROW_RIGHT_MID = (105, 52)
BROW_LEFT_INNER = (336, 296, 285, 295)
BROW_LEFT_OUTER = (300, 293, 276, 283)
BROW_LEFT_MID = (334, 282)
BROW_RIGHT_LOWER = (46, 53, 52, 65, 55)
BROW_LEFT_LOWER = (276, 283, 282, 295, 285)
BROWS = frozenset(BROW_RIGHT_INNER + BROW_RIGHT_OUTER + BROW_RIGHT_MID + BROW_RIGHT_LOWER
                  + BROW_LEFT_INNER + BROW_LEFT_OUTER + BROW_LEFT_MID + BROW_LEFT_LOWER)
NOSE_WING_RIGHT = (48, 64, 98, 115, 129, 219)
NOSE_WING_LEFT = (278, 294, 327, 344, 358, 439)
NOSE_TIP = 1
CHIN = 152
FACE_OVAL = (10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400,
             377, 152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109)

RING_SCALES = (1.25, 1.7)  # rings around the face oval, as multiples of its size
BORDER_POINTS_PER_SIDE = 8


@dataclass(frozen=True)
class FaceMesh:
    """The warp mesh in source-image pixels.

    vertices: 478 landmarks, then 3 hole centres (right eye, left eye, mouth), then ring and border
    vertices. z is toward the camera, in pixels. head_weight says how much of the head's motion a
    vertex follows (1 on the face, less on hair/neck rings, 0 on the border).
    """

    vertices: np.ndarray  # (V, 3) float32
    triangles: np.ndarray  # (T, 3) int32
    head_weight: np.ndarray  # (V,) float32
    num_face_triangles: int  # triangles [0, num_face_triangles) cover the face (and its holes)


EYE_RIGHT_CENTRE = NUM_LANDMARKS
EYE_LEFT_CENTRE = NUM_LANDMARKS + 1
MOUTH_CENTRE = NUM_LANDMARKS + 2


@lru_cache(maxsize=1)
def tessellation_triangles() -> np.ndarray:
    """The 854 triangles of MediaPipe's face mesh: the 3-cliques of its tessellation edges."""
    from mediapipe.python.solutions.face_mesh_connections import FACEMESH_TESSELATION

    neighbours: dict[int, set[int]] = {}
    for a, b in FACEMESH_TESSELATION:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    triangles = set()
    for a, b in FACEMESH_TESSELATION:
        for c in neighbours[a] & neighbours[b]:
            triangles.add(tuple(sorted((a, b, c))))
    return np.array(sorted(triangles), dtype=np.int32)


SEARCH_WINDOWS = (0.5, 0.3)  # window sides, as fractions of the picture's shorter side, for small faces


def _faces_in(mesh, image: np.ndarray, x0: int, y0: int) -> list[np.ndarray]:
    """(478, 3) pixel landmarks of every face the mesh finds in image, placed at (x0, y0)."""
    height, width = image.shape[:2]
    result = mesh.process(np.ascontiguousarray(image))
    return [np.array([[p.x * width + x0, p.y * height + y0, -p.z * width] for p in face.landmark],
                     dtype=np.float32) for face in result.multi_face_landmarks or ()]


def _faces_in_windows(mesh, image: np.ndarray) -> list[np.ndarray]:
    """Faces found in overlapping windows (half a window apart), each face once."""
    height, width = image.shape[:2]
    faces: list[np.ndarray] = []
    for fraction in SEARCH_WINDOWS:
        side = max(64, int(fraction * min(height, width)))
        for y0 in range(0, max(1, height - side // 2), side // 2):
            for x0 in range(0, max(1, width - side // 2), side // 2):
                for face in _faces_in(mesh, image[y0:y0 + side, x0:x0 + side], x0, y0):
                    centre, size = face[:, :2].mean(axis=0), np.ptp(face[:, 0])
                    if all(np.linalg.norm(centre - other[:, :2].mean(axis=0)) > 0.5 * size for other in faces):
                        faces.append(face)
        if faces:
            return faces
    return faces


def detect_landmarks(image: np.ndarray, face_index: int | None, name: str) -> np.ndarray:
    """(478, 3) landmarks in pixels (x, y, z toward the camera) of the chosen face.

    face_index None picks the largest face; faces are numbered largest first.
    """
    import mediapipe as mp

    with mp.solutions.face_mesh.FaceMesh(static_image_mode=True, refine_landmarks=True,
                                         max_num_faces=8, min_detection_confidence=0.5) as mesh:
        faces = _faces_in(mesh, image, 0, 0)
        if not faces:  # the detector misses faces under about a quarter of the picture: look closer
            faces = _faces_in_windows(mesh, image)
    if not faces:
        raise NoFaceError(f"no face found in {name}")
    faces.sort(key=lambda pts: -np.ptp(pts[:, 0]) * np.ptp(pts[:, 1]))
    index = 0 if face_index is None else face_index
    if not 0 <= index < len(faces):
        raise NoFaceError(f"{name} has {len(faces)} face(s); face index {face_index} does not exist "
                          f"(faces are numbered 0..{len(faces) - 1}, largest first)")
    return faces[index]


def _ring_points(landmarks: np.ndarray, width: int, height: int, min_gap: float) -> np.ndarray:
    oval = landmarks[list(FACE_OVAL), :2]
    centre = oval.mean(axis=0)
    points = []
    for scale in RING_SCALES:
        ring = centre + (oval - centre) * scale
        ring[:, 0] = np.clip(ring[:, 0], 0, width - 1)
        ring[:, 1] = np.clip(ring[:, 1], 0, height - 1)
        points.append(ring)
    corners = [(0, 0), (width - 1, 0), (0, height - 1), (width - 1, height - 1)]
    border = list(corners)
    for k in range(1, BORDER_POINTS_PER_SIDE):
        fx, fy = (width - 1) * k / BORDER_POINTS_PER_SIDE, (height - 1) * k / BORDER_POINTS_PER_SIDE
        border += [(fx, 0), (fx, height - 1), (0, fy), (width - 1, fy)]
    candidates = np.concatenate([np.array(border, dtype=np.float64)] + points)
    kept: list[np.ndarray] = []
    for point in candidates:  # drop points that crowd the border or each other (clipped rings)
        if all(np.hypot(*(point - other)) >= min_gap for other in kept):
            kept.append(point)
    return np.array(kept)


def build_mesh(landmarks: np.ndarray, width: int, height: int) -> FaceMesh:
    """Close the face mesh's holes and extend it to the image border."""
    face_tris = tessellation_triangles()
    centres = [
        landmarks[list(EYE_RIGHT_UPPER + EYE_RIGHT_LOWER[1:-1])].mean(axis=0),
        landmarks[list(EYE_LEFT_UPPER + EYE_LEFT_LOWER[1:-1])].mean(axis=0),
        landmarks[list(LIPS_UPPER_INNER + LIPS_LOWER_INNER[1:-1])].mean(axis=0),
    ]
    hole_tris = []
    for centre_index, upper, lower in ((EYE_RIGHT_CENTRE, EYE_RIGHT_UPPER, EYE_RIGHT_LOWER),
                                       (EYE_LEFT_CENTRE, EYE_LEFT_UPPER, EYE_LEFT_LOWER),
                                       (MOUTH_CENTRE, LIPS_UPPER_INNER, LIPS_LOWER_INNER)):
        for contour in (upper, lower):
            hole_tris += [(a, b, centre_index) for a, b in zip(contour[:-1], contour[1:])]
    iod = float(np.linalg.norm(landmarks[EYE_LEFT_CENTRE_LANDMARKS].mean(0)[:2]
                               - landmarks[EYE_RIGHT_CENTRE_LANDMARKS].mean(0)[:2]))
    inner = np.concatenate([landmarks, np.array(centres, dtype=np.float32)])
    inner[:, 2] = edge_smoothed_depth(inner, landmarks[list(FACE_OVAL), :2], sigma=0.2 * iod)
    outer_xy = _ring_points(landmarks, width, height, min_gap=max(0.12 * iod, 2.0))
    oval_ids = np.array(FACE_OVAL)
    all_xy = np.concatenate([landmarks[oval_ids, :2], outer_xy])
    delaunay = Delaunay(all_xy)
    oval_path = PolygonPath(landmarks[oval_ids, :2])
    local_to_global = np.concatenate([oval_ids, len(inner) + np.arange(len(outer_xy))])
    outer_tris = []
    for tri in delaunay.simplices:
        if np.all(tri < len(oval_ids)) and oval_path.contains_point(all_xy[tri].mean(axis=0)):
            continue  # inside the face oval: the face mesh covers it
        outer_tris.append(local_to_global[tri])

    # Outer vertices: depth of the head's sides; the head weight falls off outward, and faster below
    # the chin (the neck and shoulders do not turn with the head).
    oval_centre = landmarks[oval_ids, :2].mean(axis=0)
    oval_radius = np.linalg.norm(landmarks[oval_ids, :2] - oval_centre, axis=1).mean()
    distance = np.linalg.norm(outer_xy - oval_centre, axis=1) / oval_radius
    below_chin = np.clip((outer_xy[:, 1] - landmarks[CHIN, 1]) / (0.5 * oval_radius), 0, 1)
    beyond_first_ring = np.clip((distance - RING_SCALES[0]) / (RING_SCALES[1] - RING_SCALES[0]), 0, 1)
    outer_weight = np.clip(1.0 - (distance - RING_SCALES[0]) / 1.0, 0, 1) * (1.0 - 0.6 * below_chin * beyond_first_ring)
    on_border = ((outer_xy[:, 0] <= 0.5) | (outer_xy[:, 0] >= width - 1.5)
                 | (outer_xy[:, 1] <= 0.5) | (outer_xy[:, 1] >= height - 1.5))
    outer_weight[on_border] = 0.0
    # an outer vertex turns like the nearest edge of the face (hair and ears hug the head)
    nearest_oval = np.argmin(((outer_xy[:, None, :] - landmarks[oval_ids, None, :2][:, 0][None]) ** 2).sum(-1), axis=1)
    outer = np.column_stack([outer_xy, inner[oval_ids[nearest_oval], 2]])

    vertices = np.concatenate([inner, outer]).astype(np.float32)
    head_weight = np.concatenate([np.ones(len(inner)), outer_weight]).astype(np.float32)
    triangles = np.concatenate([face_tris, np.array(hole_tris), np.array(outer_tris)]).astype(np.int32)
    return FaceMesh(vertices=vertices, triangles=triangles, head_weight=head_weight,
                    num_face_triangles=len(face_tris) + len(hole_tris))


def lid_rings(triangles: np.ndarray, down: np.ndarray, upper: tuple[int, ...], lower: tuple[int, ...]
              ) -> tuple[dict[int, list[int]], dict[int, list[int]]]:
    """The two rings of face-mesh vertices above an upper lid line (the lid margin with the lashes,
    then the skin up toward the crease), never brow vertices. ``down`` is each vertex's position
    down the face. Returns ({lid point: ring-1 vertices}, {ring-1 vertex: ring-2 vertices})."""
    neighbours: dict[int, set[int]] = {}
    for a, b, c in triangles:
        for p, q in ((a, b), (b, c), (c, a)):
            neighbours.setdefault(int(p), set()).add(int(q))
            neighbours.setdefault(int(q), set()).add(int(p))

    def above(ids, exclude):
        return {u: sorted(n for n in neighbours.get(u, ()) if n not in exclude and n < NUM_LANDMARKS
                          and down[n] < down[u]) for u in ids}

    contour = set(upper) | set(lower) | BROWS
    ring1 = above(upper[1:-1], contour)
    ring1_ids = {n for ns in ring1.values() for n in ns}
    return ring1, above(sorted(ring1_ids), contour | ring1_ids)


def edge_smoothed_depth(points: np.ndarray, oval: np.ndarray, sigma: float) -> np.ndarray:
    """Depth low-passed over the picture plane toward the face's edge. The mesh wraps around the
    sides of the face, where triangles are slivers in the picture with very different depths at
    almost the same place; a turn would fold them over. The middle of the face (nose, lips, eyes)
    keeps its full relief, which is what makes a turned head read as turned."""
    xy = points[:, :2].astype(np.float64)
    weights = np.exp(-((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1) / (2 * sigma ** 2))
    smooth = weights @ points[:, 2] / weights.sum(axis=1)
    centre = oval.mean(axis=0)
    radius = np.linalg.norm(oval - centre, axis=1).mean()
    edge = np.clip((np.linalg.norm(xy - centre, axis=1) / radius - 0.55) / 0.3, 0, 1)
    return ((1 - edge) * points[:, 2] + edge * smooth).astype(np.float32)


EYE_RIGHT_CENTRE_LANDMARKS = [33, 133]
EYE_LEFT_CENTRE_LANDMARKS = [263, 362]
