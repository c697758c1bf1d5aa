"""The mesh-warp portrait renderer: MotionFrame + Rig -> Frame (RGBA uint8).

Per frame: blendshape deltas deform the rig's vertices, the head turns in 3D about its pivot
and moves, a pinhole camera projects it, the vertex motion becomes a dense warp of the picture
(render_warp), then the mouth interior and the eyes (lids, iris) are drawn where the warp alone
would smear (render_mouth, render_eyes).

Conventions (as core/formats/livelink.py): yaw + = the head turns to its own left, pitch + = chin up,
roll + = tilted toward its own left shoulder; eye yaw + = looking to its left, pitch + = up;
head translation in metres, z + = toward the camera, which sits CAMERA_DISTANCE_M in front of
the face (so z = -0.6 halves the head's size).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..errors import ControlError
from ..provenance.watermark import Watermarker
from ..types import Frame, MotionFrame
from .eyes import EyeLayer
from .mouth import MouthLayer
from .rig import Rig
from .rig_mesh import tessellation_triangles
from .warp import MeshWarp, Surround, Unfolder, warp_image, zoom_maps

CAMERA_DISTANCE_M = 0.6  # same as the motion generator's head_distance mapping
IOD_METRES = 0.063  # a typical inter-ocular distance: converts metres to the portrait's pixels
MAX_OUTPUT_SIDE = 4096
WARP_GRID_SPACING = (3, 4)  # output pixels between warp-field nodes: fewest, most
NODES_PER_MOUTH = 20  # a grid fine enough for the lips: about this many nodes across the mouth
FRAMINGS = ("picture", "head")
HEAD_FRAMING_FACES = 2.3  # a "head" crop is this many face heights tall
MAX_TURN_STRETCH = 2.5  # a head turn may grow (shrink) a mesh triangle at most this much in area


@dataclass(frozen=True)
class FaceGeometry:
    """One frame's vertex positions in output pixels."""

    base: np.ndarray  # (V, 2) rest positions
    deformed: np.ndarray  # (V, 2) after blendshapes and head motion
    rigid: np.ndarray  # (V, 2) after head motion only (where teeth and eyeballs go)
    weights: np.ndarray  # (52,) blendshape weights in [0, 1]
    zoom: float = 1.0  # the whole view's scale about zoom_centre (head distance)
    zoom_centre: tuple[float, float] = (0.0, 0.0)


class Renderer:
    """Renders one rig at a fixed output size.

    framing "picture" shows the whole picture (cropped to the output's aspect), "head" a
    head-and-shoulders crop around the face. ``cutout`` makes the background transparent.

    Every frame carries the invisible watermark (core/provenance/watermark) of the rig and ``line_id``, so the
    mp4, PNG and protocol paths all do; ``watermark=False`` is for tests and benchmarks only.
    """

    def __init__(self, rig: Rig, size: int | tuple[int, int] = 512, cutout: bool = False,
                 framing: str = "picture", line_id: str = "", watermark: bool = True):
        self.width, self.height = _output_size(size)
        if framing not in FRAMINGS:
            raise ControlError(f"framing must be one of {', '.join(FRAMINGS)}, got {framing!r}")
        self.rig = rig
        self.cutout = cutout
        image, matte, offset, scale = _view(rig, self.width, self.height, framing)
        self.surround, self.matte_surround = _surround(rig, offset, scale, self.width, self.height)
        self.view_image = image  # (H, W, 3) uint8: the part of the picture the output shows
        scale3 = np.array([scale[0], scale[1], scale.mean()], dtype=np.float32)
        self.vertices = (rig.vertices - np.array([offset[0], offset[1], 0], dtype=np.float32)) * scale3
        self.deltas = rig.deltas * scale3
        self.pivot = (rig.pivot - np.array([offset[0], offset[1], 0], dtype=np.float32)) * scale3
        self.head_weight = rig.head_weight[:, None]
        px_per_metre = rig.iod * float(scale.mean()) / IOD_METRES
        self.px_per_metre = px_per_metre
        self.camera_z = float(self.vertices[1, 2]) + CAMERA_DISTANCE_M * px_per_metre  # nose tip + distance
        self.focal = CAMERA_DISTANCE_M * px_per_metre
        # a sideways move of the head shifts its eyes by px_per_metre per metre, as capture measures it (at
        # the eyes): points behind the nose tip's depth move less in the projection, so the sway is scaled up
        eyes_z = float(self.vertices[[33, 133, 263, 362], 2].mean())
        self.sway_scale = (self.camera_z - eyes_z) / self.focal
        mouth_px = rig.mouth_width * float(scale.mean())
        spacing = int(np.clip(mouth_px // NODES_PER_MOUTH, *WARP_GRID_SPACING))
        self.warp = MeshWarp(self.vertices, rig.triangles, self.height, self.width, spacing,
                             num_face_triangles=rig.num_face_triangles)
        # folds are undone everywhere but in the eye and mouth holes (their layers cover them)
        face = len(tessellation_triangles())
        solid = np.r_[rig.triangles[:face], rig.triangles[rig.num_face_triangles:]]
        self.unfold = Unfolder(self.vertices[:, :2], solid, movable=rig.head_weight > 0)
        self.unstretch = Unfolder(self.vertices[:, :2], solid, movable=rig.head_weight > 0, max_stretch=MAX_TURN_STRETCH,
                                  min_squeeze=1 / MAX_TURN_STRETCH)
        self.view_matte = matte
        self.base_xy = self._project(self.vertices)
        self.mouth = MouthLayer(image, self.vertices[:, :2], rig.mouth_width * float(scale.mean()))
        self.eyes = EyeLayer(image, self.vertices[:, :2], rig.triangles)
        self.watermarker = Watermarker(rig.content_id, line_id) if watermark else None

    def geometry(self, frame: MotionFrame) -> FaceGeometry:
        weights = _check_frame(frame)
        active = np.flatnonzero(weights > 1e-4)
        deformed = self.vertices + np.tensordot(weights[active], self.deltas[active], axes=1)
        rotation = rotation_matrix(*frame.head_rotation)
        x, y, z = (float(v) * self.px_per_metre for v in frame.head_translation)
        sway = np.array([x, -y, 0.0], dtype=np.float32) * np.float32(self.sway_scale)  # y + = up in metres, down in pixels
        moved_xy = self._project(self._move(deformed, rotation, sway))
        rigid_xy = self._project(self._move(self.vertices, rotation, sway))
        blend = deformed[:, :2] - self.vertices[:, :2]
        head, rest = self.head_weight, self.vertices[:, :2]
        # projection changes are added to the picture's positions, so rest reproduces the picture
        deformed_xy = rest + head * (moved_xy - self.base_xy) + (1 - head) * blend
        rigid_xy = rest + head * (rigid_xy - self.base_xy)
        # the turn alone may not fold or overstretch the mesh; the expression rides on top of it
        reined = self.unstretch(rigid_xy)
        deformed_xy, rigid_xy = deformed_xy + (reined - rigid_xy), reined
        # distance (z) zooms the whole picture about the head, as a camera moving back would: scaling
        # the head alone would smear its hair and shoulders into the fixed background
        zoom = self.focal / max(self.focal - z, 1e-3)
        centre = self.pivot[:2]
        deformed_xy = centre + (self.unfold(deformed_xy) - centre) * zoom
        rigid_xy = centre + (rigid_xy - centre) * zoom
        return FaceGeometry(base=self.vertices[:, :2], deformed=deformed_xy, rigid=rigid_xy, weights=weights,
                            zoom=zoom, zoom_centre=(float(centre[0]), float(centre[1])))

    def backward_maps(self, geometry: FaceGeometry) -> tuple[np.ndarray, np.ndarray]:
        """Where each output pixel comes from in the view: the mesh warp, then the zoom as a plain
        scaling of the map (the warp's field ends at the view's edge; a zoomed-out frame does not)."""
        centre = np.array(geometry.zoom_centre, dtype=np.float32)
        unzoomed = centre + (geometry.deformed - centre) / geometry.zoom
        maps = self.warp.backward_maps((unzoomed - geometry.base).astype(np.float64))
        return maps if abs(geometry.zoom - 1.0) < 1e-6 else zoom_maps(maps, centre, geometry.zoom)

    def render(self, frame: MotionFrame) -> Frame:
        geometry = self.geometry(frame)
        maps = self.backward_maps(geometry)
        rgb = warp_image(self.view_image, maps, self.surround)  # (H, W, 3) uint8
        self.mouth.draw(rgb, geometry, frame)
        self.eyes.draw(rgb, geometry, frame)
        if self.watermarker is not None:
            self.watermarker.apply(rgb)
        rgba = cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA)
        if self.cutout:
            rgba[..., 3] = warp_image(self.view_matte, maps, self.matte_surround)
        return Frame(time=float(frame.time), rgba=rgba)

    def _move(self, points: np.ndarray, rotation: np.ndarray, translation: np.ndarray) -> np.ndarray:
        return (points - self.pivot) @ rotation.T + self.pivot + translation

    def _project(self, points: np.ndarray) -> np.ndarray:
        """Pinhole projection about the pivot; points at the nose tip's depth keep their scale."""
        depth = np.maximum(self.camera_z - points[:, 2:3], 1e-3)
        return self.pivot[:2] + (points[:, :2] - self.pivot[:2]) * (self.focal / depth)


def rotation_matrix(yaw: float, pitch: float, roll: float, dtype=np.float32) -> np.ndarray:
    """Camera axes x right, y down, z toward the camera; angles in degrees (see module docstring)."""
    y, p, r = np.radians([yaw, pitch, roll])
    turn = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    nod = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    tilt = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return (tilt @ turn @ nod).astype(dtype)


def rotation_angles(matrix: np.ndarray) -> np.ndarray:
    """(yaw, pitch, roll) degrees of a rotation_matrix (tilt @ turn @ nod), its inverse within +-90 yaw."""
    yaw = -np.arcsin(np.clip(matrix[2, 0], -1.0, 1.0))
    pitch = np.arctan2(matrix[2, 1], matrix[2, 2])
    roll = np.arctan2(matrix[1, 0], matrix[0, 0])
    return np.degrees([yaw, pitch, roll])


def _output_size(size: int | tuple[int, int]) -> tuple[int, int]:
    try:
        width, height = (size, size) if np.isscalar(size) else tuple(size)
        width, height = int(width), int(height)
    except (TypeError, ValueError):
        raise ControlError(f"output size must be an int or (width, height), got {size!r}") from None
    if not (16 <= width <= MAX_OUTPUT_SIDE and 16 <= height <= MAX_OUTPUT_SIDE):
        raise ControlError(f"output size {width}x{height} is out of range (16..{MAX_OUTPUT_SIDE} per side)")
    return width, height


def _check_frame(frame: MotionFrame) -> np.ndarray:
    weights = np.asarray(frame.blendshapes, dtype=np.float32)
    if weights.shape != (52,):
        raise ControlError(f"a MotionFrame needs 52 blendshape weights, got shape {weights.shape}")
    values = np.concatenate([weights, frame.head_rotation, frame.head_translation, frame.gaze_left,
                             frame.gaze_right, [frame.tongue_tip]]).astype(np.float64)
    if not np.all(np.isfinite(values)):
        raise ControlError(f"MotionFrame at t={frame.time} has NaN or infinite values")
    if frame.head_translation[2] * 1.0 >= 0.8 * CAMERA_DISTANCE_M:
        raise ControlError(f"head translation z={frame.head_translation[2]} m puts the face at the camera")
    return np.clip(weights, 0.0, 1.0)


def _view(rig: Rig, width: int, height: int, framing: str):
    """The crop of the picture the output shows (the output's aspect, as centred on the face as it
    can be), resized to the output. Returns (image, matte, crop offset (x, y), scale (sx, sy))."""
    src_h, src_w = rig.image.shape[:2]
    aspect = width / height
    crop_w = min(src_w, round(src_h * aspect))
    face = rig.landmarks[:468, :2]
    if framing == "head":
        crop_w = min(crop_w, max(16, round(HEAD_FRAMING_FACES * np.ptp(face[:, 1]) * max(aspect, 1.0))))
    crop_h = min(src_h, round(crop_w / aspect))
    centre = face.mean(axis=0) + (0, 0.12 * np.ptp(face[:, 1]) if framing == "head" else 0)
    x0 = int(np.clip(round(centre[0] - crop_w / 2), 0, src_w - crop_w))
    y0 = int(np.clip(round(centre[1] - crop_h / 2), 0, src_h - crop_h))
    interpolation = cv2.INTER_AREA if crop_w > width else cv2.INTER_CUBIC
    image = _from_detail(rig, x0, y0, crop_w, crop_h, width, height) if framing == "head" else None
    if image is None:
        image = cv2.resize(rig.image[y0:y0 + crop_h, x0:x0 + crop_w], (width, height), interpolation=interpolation)
    matte = cv2.resize(rig.matte[y0:y0 + crop_h, x0:x0 + crop_w], (width, height), interpolation=interpolation)
    # pixel centres: source x maps to (x + 0.5) * scale - 0.5 in the output
    scale = np.array([width / crop_w, height / crop_h], dtype=np.float32)
    offset = np.array([x0, y0], dtype=np.float32) - 0.5 + 0.5 / scale
    return image, matte, offset, scale


def _from_detail(rig: Rig, x0: int, y0: int, crop_w: int, crop_h: int, width: int, height: int) -> np.ndarray | None:
    """The crop (x0, y0, crop_w, crop_h of the rig's picture) from the rig's full-resolution head, when
    it has one that covers the crop and is sharper than the rig's picture at this output size."""
    detail, scale = rig.detail, float(rig.detail_scale)
    if detail.size == 0 or crop_w >= width:
        return None
    left, top = (x0 - rig.detail_origin[0]) * scale, (y0 - rig.detail_origin[1]) * scale
    if left < 0 or top < 0 or left + crop_w * scale > detail.shape[1] or top + crop_h * scale > detail.shape[0]:
        return None
    step_x, step_y = crop_w * scale / width, crop_h * scale / height  # detail pixels per output pixel
    shrink = min(1.0, 1.0 / max(step_x, step_y))
    if shrink < 1:  # area-average first where the detail is finer than the output
        detail = cv2.resize(detail, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA)
        left, top, step_x, step_y = left * shrink, top * shrink, step_x * shrink, step_y * shrink
    # output pixel centre u + 0.5 -> detail edge coordinate left + (u + 0.5) * step -> its pixel index - 0.5
    affine = np.array([[step_x, 0, left + 0.5 * step_x - 0.5], [0, step_y, top + 0.5 * step_y - 0.5]])
    return cv2.warpAffine(detail, affine, (width, height), flags=cv2.INTER_CUBIC | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)


SURROUND_MARGIN = 0.35  # of the view's size, on each side, kept for zoomed-out frames


def _surround(rig: Rig, offset: np.ndarray, scale: np.ndarray, width: int, height: int) -> tuple[Surround, Surround]:
    """The picture around the view (up to SURROUND_MARGIN on each side) at the output's scale."""
    src_h, src_w = rig.image.shape[:2]
    # the view's source rectangle: output pixel u <-> source x = u / scale + offset
    x0, x1 = offset[0] - 0.5 / scale[0], offset[0] + (width - 0.5) / scale[0]
    y0, y1 = offset[1] - 0.5 / scale[1], offset[1] + (height - 0.5) / scale[1]
    mx, my = SURROUND_MARGIN * (x1 - x0), SURROUND_MARGIN * (y1 - y0)
    cx0, cy0 = int(max(0, np.floor(x0 - mx))), int(max(0, np.floor(y0 - my)))
    cx1, cy1 = int(min(src_w, np.ceil(x1 + mx))), int(min(src_h, np.ceil(y1 + my)))
    size = (max(1, round((cx1 - cx0) * scale[0])), max(1, round((cy1 - cy0) * scale[1])))
    interpolation = cv2.INTER_AREA if scale.mean() < 1 else cv2.INTER_CUBIC
    canvas_scale = np.array([size[0] / (cx1 - cx0), size[1] / (cy1 - cy0)], dtype=np.float32)
    # output u -> source x = u / scale + offset -> canvas c = (x + 0.5 - cx0) * canvas_scale - 0.5
    affine_scale = canvas_scale / scale
    affine_offset = (offset + 0.5 - np.array([cx0, cy0], dtype=np.float32)) * canvas_scale - 0.5
    surrounds = []
    for picture in (rig.image, rig.matte):
        canvas = cv2.resize(picture[cy0:cy1, cx0:cx1], size, interpolation=interpolation)
        surrounds.append(Surround(canvas, affine_scale, affine_offset))
    return surrounds[0], surrounds[1]
