"""Contact sheets: a grid of frames with captions, to look at what the renderer makes."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..errors import FormatError, ImageError


def contact_sheet(frames: Sequence[np.ndarray], labels: Sequence[str] | None = None, columns: int = 6,
                  tile: int = 256) -> np.ndarray:
    """(H, W, 3) uint8 grid of the frames (RGB or RGBA, any sizes), each scaled to fit a tile x tile
    cell, captioned with its label."""
    if not frames:
        raise ImageError("a contact sheet needs at least one frame")
    if labels is not None and len(labels) != len(frames):
        raise ImageError(f"{len(labels)} labels for {len(frames)} frames")
    columns = max(1, min(columns, len(frames)))
    rows = (len(frames) + columns - 1) // columns
    caption = 14 if labels is not None else 0
    sheet = Image.new("RGB", (columns * tile, rows * (tile + caption)), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for index, frame in enumerate(frames):
        picture = Image.fromarray(np.asarray(frame, dtype=np.uint8)[..., :3])
        picture.thumbnail((tile, tile), Image.Resampling.LANCZOS)
        x = (index % columns) * tile
        y = (index // columns) * (tile + caption)
        sheet.paste(picture, (x + (tile - picture.width) // 2, y + caption + (tile - picture.height) // 2))
        if labels is not None:
            draw.text((x + 3, y + 1), str(labels[index]), fill=(235, 235, 235))
    return np.asarray(sheet)


def save_contact_sheet(path: str | Path, frames: Sequence[np.ndarray], labels: Sequence[str] | None = None,
                       columns: int = 6, tile: int = 256) -> None:
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise FormatError(f"contact sheet must be a .png file, got {str(path)!r}")
    if not path.parent.is_dir():
        raise FormatError(f"cannot write {str(path)!r}: folder {str(path.parent)!r} does not exist")
    try:
        Image.fromarray(contact_sheet(frames, labels, columns, tile)).save(path)
    except OSError as error:
        raise FormatError(f"cannot write {path}: {error.strerror or error}") from None
