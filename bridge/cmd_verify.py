"""``npcface verify``: was this video or picture made by npcface (or another AI tool that says so)?

    npcface verify line.mp4        # exit 0: generated content detected, 1: not detected, 2: bad input
    npcface verify frame_000012.png

Reports the invisible watermark (found or not, its confidence and payload) and the C2PA content
credentials (present or not, whether the signature validates, what they claim).
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from ..core.errors import FormatError

MAX_VIDEO_FRAMES = 60  # frames read from a video, spread over its length (the folds add up)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "verify", help="is a video or picture generated? watermark and C2PA content credentials",
        description="Look for npcface's invisible watermark and for C2PA content credentials. "
                    "Exit 0: generated content detected; 1: not detected; 2: bad input.")
    parser.add_argument("file", help="a video (mp4, mov, webm, ...) or a picture (PNG, JPEG, WebP, ...)")
    parser.set_defaults(run=run)


@dataclass(frozen=True)
class Verdict:
    kind: str  # "image" or "video"
    summary: str  # size and frames read
    watermark: object  # core.provenance.watermark.Detection
    frames_found: str  # "12/60 frames" for a video, "" for a picture
    manifest: object  # core.provenance.credentials.ManifestReport

    @property
    def generated(self) -> bool:
        credentials = self.manifest.present and self.manifest.signature_valid and self.manifest.generated
        return bool(self.watermark.found or credentials)


def verify(path: str) -> Verdict:
    """Read a file's watermark and content credentials. Raises FormatError for bad input."""
    from ..core.provenance.credentials import read_manifest

    file = Path(path)
    if not file.exists():
        raise FormatError(f"{path}: no such file")
    if not file.is_file():
        raise FormatError(f"{path}: is not a file")
    picture = _read_picture(file)
    if picture is not None:
        from ..core.provenance.watermark import detect

        detection = detect(picture)
        summary = f"picture {picture.shape[1]}x{picture.shape[0]}"
        return Verdict("image", summary, detection, "", read_manifest(file))
    detection, summary, frames_found = _read_video(file)
    return Verdict("video", summary, detection, frames_found, read_manifest(file))


def _read_picture(file: Path):
    """The picture as RGB uint8, or None when the file is no picture PIL knows (a video, say)."""
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(file) as image:
            image.load()
            return np.asarray(image.convert("RGB"))
    except UnidentifiedImageError:
        return None
    except (OSError, SyntaxError, ValueError) as exc:  # PIL's word for damaged data
        raise FormatError(f"{file}: truncated or damaged picture ({exc})") from None


def _read_video(file: Path):
    from ..core.formats.video import read_video, video_info
    from ..core.provenance.watermark import VideoDetector

    try:
        info = video_info(file)
    except FormatError as exc:
        if "no such" in str(exc) or "still image" in str(exc):
            raise
        raise FormatError(f"{file}: not a video or picture npcface can read") from None
    step = max(1, info.num_frames // MAX_VIDEO_FRAMES) if info.num_frames else 1
    detector = VideoDetector()
    decoded = 0
    try:
        for index, (_, rgb) in enumerate(read_video(file)):
            decoded += 1
            if index % step == 0 and detector.frames < MAX_VIDEO_FRAMES:
                detector.add(rgb)
    except FormatError as exc:
        raise FormatError(f"{file}: truncated or damaged video ({str(exc).split(': ', 1)[-1]})") from None
    # real files often state a frame or two more than decode; a truncated one loses many more
    if info.num_frames and decoded < info.num_frames - max(2, info.num_frames // 50):
        raise FormatError(f"{file}: truncated or damaged video (only {decoded} of {info.num_frames} frames decode)")
    summary = f"video {info.width}x{info.height}, {decoded} frames, {detector.frames} read"
    return detector.result(), summary, f"{detector.frames_found}/{detector.frames} frames alone"


def describe(verdict: Verdict) -> list[str]:
    from ..core.provenance.watermark import Z_THRESHOLD

    mark, manifest = verdict.watermark, verdict.manifest
    if mark.found:
        where = f", {verdict.frames_found}" if verdict.frames_found else ""
        payload = mark.payload
        lines = [f"watermark: found (confidence z={mark.z_score:.1f}{where}): npcface, format v{payload.version}, "
                 f"content id {payload.content_hex}"]
    else:
        lines = [f"watermark: not found (z={mark.z_score:.1f}, a detection needs a sync z >= {Z_THRESHOLD:g} and a payload that checks)"]
    if not manifest.present:
        lines.append("content credentials: none")
    else:
        state = "signature valid" if manifest.signature_valid else f"signature INVALID ({', '.join(manifest.problems) or manifest.validation})"
        trust = "on a trust list" if manifest.trusted else "signer not on a trust list"
        claim = "says AI-generated (trainedAlgorithmicMedia)" if manifest.generated else "makes no AI-generated claim"
        lines.append(f"content credentials: C2PA, {state}, {claim}, by {manifest.generator or '?'}; "
                     f"signer {manifest.signer}, {trust}")
        if manifest.self_made:
            lines.append("  the signer is npcface's self-made test key: it shows the file is unchanged since signing, "
                         "not who made it")
    lines.append("verdict: generated content detected" if verdict.generated else "verdict: no generated content detected")
    return lines


def run(args: argparse.Namespace) -> int:
    verdict = verify(args.file)
    print(f"{args.file}: {verdict.summary}")
    for line in describe(verdict):
        print(line)
    return 0 if verdict.generated else 1
