"""An invisible watermark in every rendered frame: "made by npcface", a format version and a short
content id of the rig and line, readable back from a frame, a re-encoded video, a scaled or cropped
copy.

How (a tiled spread-spectrum pattern, keyed by a fixed seed):
- A TILE x TILE pixel tile holds a GRID x GRID grid of chips, each +-1 from the key. About half the
  chips are a known sync pattern; the rest carry the payload's bits, each bit spread over
  CHIPS_PER_BIT chips scattered across the tile (repetition coding). The chips are band-limited
  (mid frequencies: low enough to survive H.264, JPEG and half-size scaling, high enough to stay
  apart from the picture's own content) and the tile repeats over the whole frame.
- It is added to the luminance at RMS ``STRENGTH`` grey levels (PSNR about 40.5 dB), stronger in
  textured parts of the frame and weaker on flat ones (texture_mask).
- Detection high-passes the luminance, folds the frame into one tile (sums every tile: any crop
  still has whole tiles' worth of signal, and a crop only shifts the fold circularly), finds the
  shift by correlating with the sync pattern (FFT), and reads the bits at that shift. Its
  confidence is the sync peak's z-score over all shifts; a frame counts as watermarked only when the
  z-score passes Z_THRESHOLD and the payload's marker and CRC check out. Halved copies are
  scaled back up first (SCALES). A video sums its frames' folds: confidence grows with length.
"""
from __future__ import annotations

import hashlib
import itertools
import zlib
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from ..errors import ImageError

TILE = 128  # pixels per tile side (a 512 frame holds 16 tiles; a 90% crop 12 whole ones)
GRID = 64  # chips per tile side (2 px a chip)
KEY = b"npcface-watermark"
FORMAT_VERSION = 1
MARKER = 0xA  # 4 bits that say "npcface" (so does the keyed pattern itself)
PAYLOAD_BITS = 32  # marker 4 | version 4 | content id 16 | crc 8
ID_BITS = 16
CHIPS_PER_BIT = 64
STRENGTH = 2.4  # RMS grey levels added to a frame (PSNR about 40.5 dB)
BAND = (6.0, 32.0)  # cycles per tile the pattern keeps (measured: lower bands drown in the picture)
RESIDUAL_SIGMA = 1.5  # the high-pass that removes the picture's content before folding
SCALES = (1.0, 2.0)  # detection tries the frame as it is, and scaled back up from half size
Z_THRESHOLD = 6.0  # sync peak z-score a detection needs (unmarked pictures stay below ~4.5)


@dataclass(frozen=True)
class Payload:
    version: int
    content_id: int  # ID_BITS bits

    @property
    def content_hex(self) -> str:
        return f"{self.content_id:04x}"


@dataclass(frozen=True)
class Detection:
    """What detect() found. ``found`` means the sync peak is strong and the payload checks out."""

    found: bool
    z_score: float  # the sync peak's z-score (confidence): ~0-4.5 on unmarked pictures
    payload: Payload | None  # decoded and checked, or None
    scale: float  # the scale the frame was read at
    bit_margin: float  # weakest bit's |soft value| / the typical one (0 = a coin flip)


def content_id(rig_id: str, line_id: str = "") -> int:
    """A short (ID_BITS) id of a rig and a line: the same rig and line always give the same id."""
    digest = hashlib.sha256(f"{rig_id}\n{line_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> (32 - ID_BITS)


def _crc8(value: int) -> int:
    return zlib.crc32(value.to_bytes(5, "big")) & 0xFF


def encode_payload(payload: Payload) -> np.ndarray:
    head = (MARKER << (ID_BITS + 4)) | ((payload.version & 0xF) << ID_BITS) | (payload.content_id & ((1 << ID_BITS) - 1))
    word = (head << 8) | _crc8(head)
    return np.array([(word >> (PAYLOAD_BITS - 1 - i)) & 1 for i in range(PAYLOAD_BITS)], dtype=np.int8)


def decode_payload(bits: np.ndarray) -> Payload | None:
    word = 0
    for bit in bits:
        word = (word << 1) | int(bit)
    head, crc = word >> 8, word & 0xFF
    if head >> (ID_BITS + 4) != MARKER or _crc8(head) != crc:
        return None
    return Payload(version=(head >> ID_BITS) & 0xF, content_id=head & ((1 << ID_BITS) - 1))


@dataclass(frozen=True)
class _Key:
    signs: np.ndarray  # (GRID*GRID,) +-1 per chip
    bit_of_chip: np.ndarray  # (GRID*GRID,) the payload bit a chip carries, -1 for sync chips
    sync_tile: np.ndarray  # (TILE, TILE) float32 band-limited sync pattern
    chip_kernel: np.ndarray  # (TILE, TILE) complex: spectrum of one chip at the origin, band-limited


@lru_cache(maxsize=1)
def _key() -> _Key:
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(KEY).digest()[:8], "big"))
    chips = GRID * GRID
    signs = rng.choice(np.array([-1.0, 1.0]), size=chips)
    bit_of_chip = np.full(chips, -1, dtype=np.int64)
    carriers = rng.permutation(chips)[:PAYLOAD_BITS * CHIPS_PER_BIT]
    bit_of_chip[carriers] = np.arange(len(carriers)) % PAYLOAD_BITS
    chip_kernel = _band_spectrum()
    sync = np.where(bit_of_chip < 0, signs, 0.0)
    return _Key(signs=signs, bit_of_chip=bit_of_chip, sync_tile=_chips_to_tile(sync, chip_kernel),
                chip_kernel=chip_kernel)


def _band_spectrum() -> np.ndarray:
    """A smooth band-pass (BAND cycles per tile) as a TILE x TILE spectrum."""
    freq = np.fft.fftfreq(TILE) * TILE
    radius = np.hypot(freq[:, None], freq[None, :])
    low, high = BAND
    rise = np.clip((radius - low + 1) / 2, 0, 1)
    fall = np.clip((high + 1 - radius) / 2, 0, 1)
    return (rise * fall).astype(np.complex128)


def _chips_to_tile(values: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Chip values (GRID*GRID,) as impulses at chip centres, band-limited: a periodic tile."""
    step = TILE // GRID
    impulses = np.zeros((TILE, TILE))
    impulses[step // 2::step, step // 2::step] = values.reshape(GRID, GRID)
    tile = np.real(np.fft.ifft2(np.fft.fft2(impulses) * kernel))
    return (tile / tile.std()).astype(np.float32)


@lru_cache(maxsize=16)
def _pattern_tile(content: int, version: int) -> np.ndarray:
    key = _key()
    bits = encode_payload(Payload(version=version, content_id=content)).astype(np.float64) * 2 - 1
    values = np.where(key.bit_of_chip < 0, 1.0, bits[np.maximum(key.bit_of_chip, 0)]) * key.signs
    return _chips_to_tile(values, key.chip_kernel)


class Watermarker:
    """Adds the watermark for one payload to frames (the tiled pattern is built once per size).

    The pattern's strength follows the picture's own texture (MASK_RANGE of the frame's typical
    strength, normalised so the frame's RMS stays STRENGTH): uniform grain showed on flat skin and
    cartoon shading; in texture it does not, and H.264 keeps texture's detail better anyway."""

    def __init__(self, rig_id: str, line_id: str = ""):
        self.payload = Payload(version=FORMAT_VERSION, content_id=content_id(rig_id, line_id))
        self._pattern = np.zeros((0, 0), np.float32)

    def _tiled(self, height: int, width: int) -> np.ndarray:
        if self._pattern.shape != (height, width):
            tile = _pattern_tile(self.payload.content_id, self.payload.version) * STRENGTH
            self._pattern = np.tile(tile, (-(-height // TILE), -(-width // TILE)))[:height, :width].copy()
        return self._pattern

    def apply(self, rgb: np.ndarray) -> None:
        """Watermark an (H, W, 3) uint8 RGB frame in place."""
        height, width = rgb.shape[:2]
        delta = self._tiled(height, width) * texture_mask(rgb)
        delta = np.rint(delta).astype(np.int16)
        # saturating uint8 add and subtract (cv2) are far cheaper than a signed round trip
        up = np.clip(delta, 0, 255).astype(np.uint8)
        down = np.clip(-delta, 0, 255).astype(np.uint8)
        cv2.add(rgb, cv2.merge([up, up, up]), dst=rgb)
        cv2.subtract(rgb, cv2.merge([down, down, down]), dst=rgb)


MASK_RANGE = (0.5, 2.0)  # a pixel's strength, relative to the frame's median texture (measured, bench)


def texture_mask(rgb: np.ndarray) -> np.ndarray:
    """(H, W) float32 strength per pixel: local detail (mean |high-pass| over ~18 px), relative to the
    frame's median, clipped to MASK_RANGE and normalised to RMS 1. Computed at half size (cheaper)."""
    grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    height, width = grey.shape
    small = cv2.resize(grey, (max(1, width // 2), max(1, height // 2)), interpolation=cv2.INTER_AREA).astype(np.float32)
    detail = cv2.blur(cv2.absdiff(small, cv2.blur(small, (3, 3))), (9, 9))  # box filters: cheap
    mask = np.clip(detail / (float(np.median(detail)) + 1e-3), *MASK_RANGE)
    mask /= float(np.sqrt(np.mean(mask * mask)))
    return cv2.resize(mask, (width, height), interpolation=cv2.INTER_LINEAR)


def luminance(image: np.ndarray) -> np.ndarray:
    """(H, W) float32 luminance of a grey, RGB or RGBA uint8 picture."""
    image = np.asarray(image)
    if image.ndim == 2:
        return image.astype(np.float32)
    if image.ndim != 3 or image.shape[2] not in (3, 4) or image.dtype != np.uint8:
        raise ImageError(f"expected an (H, W), (H, W, 3) or (H, W, 4) uint8 picture, got {image.shape} {image.dtype}")
    rgb = image[:, :, :3].astype(np.float32)
    return rgb @ np.array([0.299, 0.587, 0.114], dtype=np.float32)


def fold(luma: np.ndarray, scale: float) -> np.ndarray:
    """The high-passed luminance (scaled by ``scale``) summed over every TILE x TILE tile."""
    if scale != 1.0:
        luma = cv2.resize(luma, None, fx=scale, fy=scale, interpolation=cv2.INTER_LINEAR)
    residual = luma - cv2.GaussianBlur(luma, (0, 0), RESIDUAL_SIGMA)
    limit = 3.0 * float(np.median(np.abs(residual))) / 0.6745 + 1e-3
    residual = np.clip(residual, -limit, limit)  # edges and text would swamp the fold
    height, width = residual.shape
    padded = np.zeros((-(-height // TILE) * TILE, -(-width // TILE) * TILE), np.float32)
    padded[:height, :width] = residual
    return padded.reshape(padded.shape[0] // TILE, TILE, padded.shape[1] // TILE, TILE).sum(axis=(0, 2))


def read_fold(folded: np.ndarray, scale: float = 1.0) -> Detection:
    """Find the sync shift in a fold (or a sum of folds) and read the payload there."""
    key = _key()
    spectrum = np.fft.fft2(folded)
    surface = np.real(np.fft.ifft2(spectrum * np.conj(np.fft.fft2(key.sync_tile))))  # correlation per shift
    std = float(surface.std()) or 1.0
    peak = int(np.argmax(surface))
    z = float((surface.flat[peak] - surface.mean()) / std)
    dy, dx = divmod(peak, TILE)
    aligned = np.roll(folded, (-dy, -dx), axis=(0, 1))
    # matched filter per chip: the aligned fold through the chip band, sampled at chip centres
    filtered = np.real(np.fft.ifft2(np.fft.fft2(aligned) * key.chip_kernel))
    step = TILE // GRID
    chips = filtered[step // 2::step, step // 2::step].reshape(-1) * key.signs
    carrying = key.bit_of_chip >= 0
    soft = np.bincount(key.bit_of_chip[carrying], weights=chips[carrying], minlength=PAYLOAD_BITS)
    typical = float(np.median(np.abs(soft))) or 1.0
    payload = _chase_decode(soft)
    found = payload is not None and z >= Z_THRESHOLD
    return Detection(found=found, z_score=z, payload=payload, scale=scale,
                     bit_margin=float(np.abs(soft).min() / typical))


CHASE_BITS = 6  # the weakest bits tried flipped (up to two at once) when the checks fail


def _chase_decode(soft: np.ndarray) -> Payload | None:
    """Hard decision, then flips of the least reliable bits until marker and CRC check out."""
    hard = (soft > 0).astype(np.int8)
    weakest = np.argsort(np.abs(soft))[:CHASE_BITS]
    flips = [()] + [(i,) for i in weakest] + list(itertools.combinations(weakest, 2))
    for flip in flips:
        bits = hard.copy()
        bits[list(flip)] ^= 1
        payload = decode_payload(bits)
        if payload is not None:
            return payload
    return None


def detect(image: np.ndarray) -> Detection:
    """Look for the watermark in one picture (grey, RGB or RGBA uint8), at each of SCALES."""
    luma = luminance(image)
    if min(luma.shape) < 32:
        raise ImageError(f"picture {luma.shape[1]}x{luma.shape[0]} is too small to hold a watermark")
    results = [read_fold(fold(luma, scale), scale) for scale in SCALES]
    return max(results, key=lambda d: (d.found, d.z_score))


class VideoDetector:
    """Sums the folds of a video's frames (at every scale) and reads them once at the end."""

    def __init__(self):
        self.folds = {scale: np.zeros((TILE, TILE), np.float32) for scale in SCALES}
        self.frames = 0
        self.frames_found = 0

    def add(self, image: np.ndarray) -> Detection:
        luma = luminance(image)
        results = []
        for scale in SCALES:
            folded = fold(luma, scale)
            self.folds[scale] += folded
            results.append(read_fold(folded, scale))
        best = max(results, key=lambda d: (d.found, d.z_score))
        self.frames += 1
        self.frames_found += best.found
        return best

    def result(self) -> Detection:
        results = [read_fold(folded, scale) for scale, folded in self.folds.items()]
        return max(results, key=lambda d: (d.found, d.z_score))
