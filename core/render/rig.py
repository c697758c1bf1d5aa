"""A portrait rig: the picture, its warp mesh, blendshape deltas, face regions and a person matte.

    image = load_image("portrait.png")       # RGB uint8, huge pictures downscaled, bombs refused
    rig = build_rig(image)                   # < 1 s: MediaPipe face mesh + geometry
    rig = rig_from_file("portrait.png")      # the same, keeping a large picture's head at full resolution
    rig.save("portrait.rig"); Rig.load("portrait.rig")

``content_id`` is a hash of the decoded picture, the chosen face and the rig version, so a
server can cache rigs by it.
"""
from __future__ import annotations

import hashlib
import io
import warnings
import zipfile
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import FormatError, ImageError
from ..native_quiet import native_stderr_silenced
from .rig_mesh import FaceMesh, build_mesh, detect_landmarks
from .rig_shapes import FaceFrame, build_blendshape_deltas, face_frame

RIG_VERSION = 1
MAX_IMAGE_PIXELS = 40_000_000  # refuse anything bigger before decoding (decompression bombs)
MAX_SIDE = 1024  # rigs keep at most this many pixels on the longer side
MIN_SIDE = 32
FULL_SIDE = 4096  # rig_from_file decodes up to this, for the head crop's detail
DETAIL_MAX_SIDE = 1536  # the head-detail crop keeps at most this many pixels on its longer side
DETAIL_MIN_GAIN = 1.25  # kept only when it is this much sharper than the rig's picture
DETAIL_FACES = 2.6  # the detail crop is this many face heights on each side of the face's centre


def load_image(source: str | Path | bytes, max_side: int = MAX_SIDE) -> np.ndarray:
    """Decode a picture file (or its bytes) to RGB uint8, downscaled to max_side on its longer side.

    Transparent pixels are composited over white. Raises ImageError for anything that is not a
    picture, is too small, or declares more than MAX_IMAGE_PIXELS pixels.
    """
    name = "the image bytes" if isinstance(source, bytes) else str(source)
    if isinstance(source, bytes):
        stream = io.BytesIO(source)
    else:
        if not Path(source).is_file():
            raise ImageError(f"image not found: {source}")
        stream = Path(source).open("rb")
    previous_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(stream) as picture:
                width, height = picture.size
                if width * height > MAX_IMAGE_PIXELS:
                    raise ImageError(f"{name} is {width}x{height}: more than {MAX_IMAGE_PIXELS} pixels "
                                     "(refused as a possible decompression bomb)")
                picture.draft("RGB", (max_side, max_side))  # JPEG: decode at a reduced scale
                picture.load()
                rgb = _to_rgb(picture)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{name} is refused as a possible decompression bomb ({exc})") from None
    except UnidentifiedImageError:
        raise ImageError(f"{name} is not a picture Pillow can read") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{name} could not be decoded: {exc}") from None
    finally:
        Image.MAX_IMAGE_PIXELS = previous_limit
        stream.close()
    if min(rgb.size) < MIN_SIDE:
        raise ImageError(f"{name} is {rgb.size[0]}x{rgb.size[1]}: too small for a face (at least {MIN_SIDE} px)")
    return np.asarray(_fit(rgb, max_side), dtype=np.uint8).copy()


def _fit(picture: Image.Image, max_side: int) -> Image.Image:
    """``picture`` downscaled (Lanczos) so its longer side is at most ``max_side``."""
    if max(picture.size) <= max_side:
        return picture
    scale = max_side / max(picture.size)
    return picture.resize((max(1, round(picture.size[0] * scale)), max(1, round(picture.size[1] * scale))),
                          Image.Resampling.LANCZOS)


def _to_rgb(picture: Image.Image) -> Image.Image:
    if picture.mode in ("RGBA", "LA", "PA") or (picture.mode == "P" and "transparency" in picture.info):
        rgba = picture.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return picture.convert("RGB")


@dataclass(frozen=True)
class Rig:
    """Everything the renderer needs about one portrait (all positions in image pixels)."""

    content_id: str
    image: np.ndarray  # (H, W, 3) uint8
    matte: np.ndarray  # (H, W) uint8, 255 on the person
    landmarks: np.ndarray  # (478, 3) float32, x, y, z toward the camera
    vertices: np.ndarray  # (V, 3) float32: landmarks, hole centres, outer rings, border
    triangles: np.ndarray  # (T, 3) int32
    num_face_triangles: int
    head_weight: np.ndarray  # (V,) float32
    deltas: np.ndarray  # (52, V, 3) float32, ARKit order
    pivot: np.ndarray  # (3,) float32 head rotation centre
    frame_origin: np.ndarray  # (2,) face frame (see rig_shapes.FaceFrame)
    frame_x_axis: np.ndarray  # (2,)
    iod: float  # inter-ocular distance, pixels
    mouth_width: float
    # the head at a higher resolution than ``image`` (a small face in a large picture), or empty (0, 0, 3)
    detail: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 3), np.uint8))
    detail_origin: np.ndarray = field(default_factory=lambda: np.zeros(2, np.float32))  # its top-left, image px
    detail_scale: float = 1.0  # its pixels per image pixel

    @property
    def face_frame(self) -> FaceFrame:
        x_axis = np.asarray(self.frame_x_axis, dtype=np.float64)
        return FaceFrame(origin=np.asarray(self.frame_origin, dtype=np.float64), x_axis=x_axis,
                         y_axis=np.array([-x_axis[1], x_axis[0]]), iod=self.iod, mouth_width=self.mouth_width)

    def save(self, path: str | Path) -> None:
        arrays = {f.name: np.asarray(getattr(self, f.name)) for f in fields(self)
                  if f.name not in ("image", "matte", "content_id", "detail")}
        arrays["image_png"] = _png_bytes(self.image)
        arrays["matte_png"] = _png_bytes(self.matte)
        if self.detail.size:
            arrays["detail_png"] = _png_bytes(self.detail)
        arrays["content_id"] = np.array(self.content_id)
        arrays["rig_version"] = np.array(RIG_VERSION)
        with Path(path).open("wb") as out:
            np.savez_compressed(out, **arrays)

    @staticmethod
    def load(path: str | Path) -> "Rig":
        path = Path(path)
        if not path.is_file():
            raise FormatError(f"rig not found: {path}")
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
            raise FormatError(f"{path} is not an npcface rig ({exc})") from None
        version = int(arrays.get("rig_version", -1))
        if version != RIG_VERSION:
            raise FormatError(f"{path} is a rig of version {version}; this npcface reads version {RIG_VERSION} "
                              "(rebuild it with `npcface rig`)")
        try:
            optional = ("detail", "detail_origin", "detail_scale")  # rigs saved before they existed lack them
            values = {f.name: arrays[f.name] for f in fields(Rig) if f.name not in ("image", "matte") + optional}
            values["image"] = _png_array(arrays["image_png"])
            values["matte"] = _png_array(arrays["matte_png"])
            if "detail_png" in arrays:
                values["detail"] = _png_array(arrays["detail_png"])
                values["detail_origin"] = arrays["detail_origin"]
                values["detail_scale"] = float(arrays["detail_scale"])
        except KeyError as exc:
            raise FormatError(f"{path} is an incomplete rig (missing {exc})") from None
        values["content_id"] = str(values["content_id"])
        values["num_face_triangles"] = int(values["num_face_triangles"])
        values["iod"], values["mouth_width"] = float(values["iod"]), float(values["mouth_width"])
        return Rig(**values)


def _png_bytes(array: np.ndarray) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", compress_level=3)
    return np.frombuffer(buffer.getvalue(), dtype=np.uint8)


def _png_array(data: np.ndarray) -> np.ndarray:
    with Image.open(io.BytesIO(data.tobytes())) as picture:
        return np.asarray(picture).copy()


def content_id_of(image: np.ndarray, face_index: int | None) -> str:
    digest = hashlib.sha256()
    digest.update(f"npcface-rig-v{RIG_VERSION}:{image.shape}:{face_index}".encode())
    digest.update(np.ascontiguousarray(image).tobytes())
    return digest.hexdigest()[:32]


def rig_from_file(source: str | Path | bytes, face_index: int | None = None, name: str | None = None) -> Rig:
    """Rig a picture file (or its bytes), keeping its head at full resolution for ``--framing head``."""
    label = name or ("the image bytes" if isinstance(source, bytes) else str(source))
    full = load_image(source, max_side=FULL_SIDE)
    image = np.asarray(_fit(Image.fromarray(full), MAX_SIDE))
    return build_rig(image, face_index, label, full=full)


def build_rig(image: np.ndarray, face_index: int | None = None, name: str = "the image",
              full: np.ndarray | None = None) -> Rig:
    """Rig a portrait (RGB uint8 from load_image). Raises NoFaceError naming ``name`` if no face.
    ``full`` is the same picture at a higher resolution (rig_from_file), for a sharper head crop."""
    image = _check_image(image, name)
    with native_stderr_silenced():
        landmarks = detect_landmarks(image, face_index, name)
        matte = person_matte(image)
    height, width = image.shape[:2]
    mesh: FaceMesh = build_mesh(landmarks, width, height)
    frame = face_frame(landmarks)
    deltas = build_blendshape_deltas(mesh, frame)
    return Rig(
        content_id=content_id_of(image, face_index), image=image, matte=matte,
        landmarks=landmarks, vertices=mesh.vertices, triangles=mesh.triangles,
        num_face_triangles=mesh.num_face_triangles, head_weight=mesh.head_weight, deltas=deltas,
        pivot=_head_pivot(landmarks, frame), frame_origin=frame.origin.astype(np.float32),
        frame_x_axis=frame.x_axis.astype(np.float32), iod=frame.iod, mouth_width=frame.mouth_width,
        **_head_detail(image, full, landmarks))


def _head_detail(image: np.ndarray, full: np.ndarray | None, landmarks: np.ndarray) -> dict:
    """The head cut from the full-resolution picture when it is clearly sharper than the rig's."""
    if full is None or full.shape[0] < DETAIL_MIN_GAIN * image.shape[0]:
        return {}
    ratio = full.shape[0] / image.shape[0]  # full pixels per image pixel
    face = landmarks[:468, :2]
    centre, reach = face.mean(axis=0), DETAIL_FACES * float(np.ptp(face[:, 1]))
    x0, y0 = np.floor(np.maximum(centre - reach, 0) * ratio).astype(int)
    x1 = int(min(full.shape[1], np.ceil((centre[0] + reach) * ratio)))
    y1 = int(min(full.shape[0], np.ceil((centre[1] + reach) * ratio)))
    shrink = min(1.0, DETAIL_MAX_SIDE / max(x1 - x0, y1 - y0, 1))
    if ratio * shrink < DETAIL_MIN_GAIN:
        return {}
    crop = full[y0:y1, x0:x1]
    size = (max(1, round((x1 - x0) * shrink)), max(1, round((y1 - y0) * shrink)))
    detail = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.LANCZOS)) if shrink < 1 else crop
    scale = size[0] / ((x1 - x0) / ratio)  # detail pixels per image pixel
    return {"detail": np.ascontiguousarray(detail), "detail_origin": np.array([x0, y0], np.float32) / ratio,
            "detail_scale": float(scale)}


def _check_image(image: np.ndarray, name: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ImageError(f"{name}: expected an RGB uint8 picture (H, W, 3), got {image.dtype} {image.shape}")
    if min(image.shape[:2]) < MIN_SIDE:
        raise ImageError(f"{name} is {image.shape[1]}x{image.shape[0]}: too small for a face")
    if max(image.shape[:2]) > MAX_SIDE:
        raise ImageError(f"{name} is {image.shape[1]}x{image.shape[0]}: load it with load_image (downscales)")
    return np.ascontiguousarray(image)


def _head_pivot(landmarks: np.ndarray, frame: FaceFrame) -> np.ndarray:
    """The head turns about a point between the ears: level with the nose's root, ~1.5 eye distances
    behind the nose tip."""
    from .rig_mesh import FACE_OVAL, NOSE_TIP

    oval = landmarks[list(FACE_OVAL)]
    x, y = oval[:, 0].mean(), landmarks[[6, 1], 1].mean()
    z = landmarks[NOSE_TIP, 2] - 1.5 * frame.iod
    return np.array([x, y, z], dtype=np.float32)


def person_matte(image: np.ndarray) -> np.ndarray:
    """(H, W) uint8 alpha of the person: MediaPipe selfie segmentation (its model ships in the wheel)."""
    import mediapipe as mp

    with mp.solutions.selfie_segmentation.SelfieSegmentation(model_selection=0) as segmenter:
        mask = segmenter.process(np.ascontiguousarray(image)).segmentation_mask
    if mask is None:
        return np.full(image.shape[:2], 255, dtype=np.uint8)
    return np.clip(mask * 255.0 + 0.5, 0, 255).astype(np.uint8)
