"""The invisible watermark on real portraits: detection after what platforms do to video, false
positives on real footage, visual cost (PSNR) and embedding cost against the frame's own render
cost, all in one run.

    .venv/bin/python bench/bench_watermark.py [--frames-per-line 6] [--grid-clips 20] [--sheet out/wm.png]

Every portrait in ../shared/data/images (or $NPCFACE_DATA/images) is rigged and rendered speaking
each committed fixture line (fixtures/line_*.wav), --frames-per-line frames each, spread over the
line (8 portraits x 5 lines x 6 = 240 frames per transformation). Each frame is rendered without the
watermark and the watermark is then added (the same call Renderer.render makes), so the plain and
marked frames are the same picture and their costs compare. Then each transformation (H.264 CRF 23
and 28 through PyAV, half size, 10% crop from each side, JPEG q75) is applied to the marked and the
plain frames and detected, per frame and per clip (a line's frames summed, as `npcface verify` reads
a video): a detection counts when the payload is the right one.

False positives: `npcface verify`'s own check on every real video and picture in the data folder
(video/, images/, --grid-clips GRID clips) and on re-encoded copies of them (H.264 CRF 28 at half size,
JPEG q75), plus every plain frame above after every transformation: all must be zero.
"""
from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from _common import data_dir  # noqa: E402

from npcface.bridge.cmd_verify import verify  # noqa: E402
from npcface.core.provenance import watermark  # noqa: E402
from npcface.core.audio.decode import load_audio  # noqa: E402
from npcface.core.render.contact_sheet import save_contact_sheet  # noqa: E402
from npcface.core.errors import NpcfaceError  # noqa: E402
from npcface.core.motion.backends import make_generator  # noqa: E402
from npcface.core.render.renderer import Renderer  # noqa: E402
from npcface.core.render.rig import rig_from_file  # noqa: E402
from npcface.core.types import Controls  # noqa: E402
from npcface.core.formats.video import read_video, write_mp4  # noqa: E402

SIZE = 512
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")


def h264(images: list[np.ndarray], crf: int) -> list[np.ndarray]:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = images[0].shape[1], images[0].shape[0], "yuv420p"
        stream.options = {"crf": str(crf)}
        for image in images:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")))
        container.mux(stream.encode(None))
    buffer.seek(0)
    with av.open(buffer) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def jpeg(image: np.ndarray, quality: int = 75) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


def half(image: np.ndarray) -> np.ndarray:
    return cv2.resize(image, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA)


def crop(side: str):
    def cut(image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        return {"left": image[:, w // 10:], "right": image[:, :w - w // 10],
                "top": image[h // 10:], "bottom": image[:h - h // 10]}[side]
    return cut


TRANSFORMS = {  # each takes one clip's frames (a list) and returns them transformed
    "as rendered": lambda clip: clip,
    "H.264 CRF 23": lambda clip: h264(clip, 23),
    "H.264 CRF 28": lambda clip: h264(clip, 28),
    "half size": lambda clip: [half(i) for i in clip],
    **{f"crop 10% {side}": (lambda cut: lambda clip: [cut(i) for i in clip])(crop(side))
       for side in ("left", "right", "top", "bottom")},
    "JPEG q75": lambda clip: [jpeg(i) for i in clip],
}


def render_clips(portraits: list[Path], lines: list[Path], per_line: int):
    """[(portrait name, line name, content id, plain frames, marked frames)], PSNRs, render and embed seconds."""
    generator = make_generator(None, Controls(fps=25.0))
    tracks = {line.stem: generator.animate(load_audio(line), text=line.with_suffix(".txt").read_text().strip())
              for line in lines}
    clips, psnrs, render_s, embed_s = [], [], [], []
    for portrait in portraits:
        try:
            rig = rig_from_file(portrait, name=portrait.name)
        except NpcfaceError as exc:
            print(f"  {portrait.name}: skipped ({exc})")
            continue
        renderer = Renderer(rig, SIZE, watermark=False)
        for name, track in tracks.items():
            marker = watermark.Watermarker(rig.content_id, name)
            plain, marked = [], []
            for index in np.linspace(0, len(track) - 1, per_line).round().astype(int):
                started = time.perf_counter()
                rgb = np.ascontiguousarray(renderer.render(track.frame(int(index))).rgba[..., :3])
                render_s.append(time.perf_counter() - started)
                mark = rgb.copy()
                started = time.perf_counter()
                marker.apply(mark)
                embed_s.append(time.perf_counter() - started)
                plain.append(rgb)
                marked.append(mark)
                psnrs.append((portrait.stem, cv2.PSNR(rgb, mark)))
            clips.append((portrait.stem, name, marker.payload.content_id, plain, marked))
    return clips, psnrs, np.array(render_s), np.array(embed_s)


def best(detections):
    return max(detections, key=lambda d: (d.found, d.z_score))


def read_clip(images: list[np.ndarray]):
    """Each frame's detection (as watermark.detect) and the clip's (its frames' folds summed, as
    `npcface verify` reads a video), folding each frame once."""
    singles, totals = [], {scale: 0.0 for scale in watermark.SCALES}
    for image in images:
        luma = watermark.luminance(image)
        folds = {scale: watermark.fold(luma, scale) for scale in watermark.SCALES}
        singles.append(best([watermark.read_fold(f, scale) for scale, f in folds.items()]))
        for scale, f in folds.items():
            totals[scale] = totals[scale] + f
    return singles, best([watermark.read_fold(f, scale) for scale, f in totals.items()])


def detection_table(clips, only: str | None = None) -> dict[str, tuple[int, int, int, int, int, int]]:
    """transformation -> (frames detected with the right payload, frames, plain frames detected,
    clips detected from their summed frames, clips, plain clips detected)."""
    table = {}
    for name, transform in TRANSFORMS.items():
        if only and only.lower() not in name.lower():
            continue
        hits = total = false = clip_hits = clip_false = 0
        missed: dict[str, int] = {}
        for portrait, _, expected, plain, marked in clips:
            singles, whole = read_clip(transform(marked))
            right = sum(d.found and d.payload.content_id == expected for d in singles)
            hits += right
            if right < len(singles):
                missed[portrait] = missed.get(portrait, 0) + len(singles) - right
            total += len(singles)
            clip_hits += whole.found and whole.payload.content_id == expected
            singles, whole = read_clip(transform(plain))
            false += sum(d.found for d in singles)
            clip_false += whole.found
        table[name] = (hits, total, false, clip_hits, len(clips), clip_false)
        print(f"  {name:16s} frames {hits}/{total} ({100 * hits / total:.1f}%), clips of {total // len(clips)} frames "
              f"{clip_hits}/{len(clips)}; unmarked detected: frames {false}, clips {clip_false}", flush=True)
        if missed:
            print("    frames missed per portrait: " + ", ".join(f"{p} {n}" for p, n in missed.items()))
    return table


def real_files(data: Path, grid_clips: int) -> list[Path]:
    videos = sorted((data / "video").glob("*.mp4"))
    grid = sorted((data / "train" / "grid").glob("*/*.mp4"))
    if grid:
        grid = [grid[i] for i in np.linspace(0, len(grid) - 1, min(grid_clips, len(grid))).round().astype(int)]
    images = sorted(p for p in (data / "images").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    return videos + grid + images


def reencoded(path: Path, folder: Path) -> Path:
    """A platform-style copy: a video re-encoded at CRF 28 and half size, a picture as JPEG q75."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        out = folder / f"{path.stem}_q75.jpg"
        Image.fromarray(jpeg(np.asarray(Image.open(path).convert("RGB")))).save(out, quality=95)
        return out
    out = folder / f"{path.stem}_crf28_half.mp4"
    frames = [half(rgb) for _, rgb in read_video(path)]
    write_mp4(out, frames, 25, crf=28, sign=False)
    return out


def false_positives(files: list[Path]) -> tuple[int, int, list[float]]:
    """(files verify calls generated, files checked, watermark z-scores) over files and re-encoded copies."""
    detected, checked, scores = 0, 0, []
    with tempfile.TemporaryDirectory(prefix="npcface-wm-") as folder:
        for path in files:
            for candidate in (path, reencoded(path, Path(folder))):
                verdict = verify(str(candidate))
                checked += 1
                detected += verdict.generated
                scores.append(verdict.watermark.z_score)
                if verdict.generated:
                    print(f"  FALSE POSITIVE: {candidate.name} z={verdict.watermark.z_score:.1f}")
    return detected, checked, scores


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="real data folder (default $NPCFACE_DATA or ../shared/data)")
    parser.add_argument("--frames-per-line", type=int, default=6)
    parser.add_argument("--grid-clips", type=int, default=20, help="GRID clips checked for false positives")
    parser.add_argument("--only", help="only the transformations whose name contains this (e.g. 'CRF 28')")
    parser.add_argument("--skip-real", action="store_true", help="skip the false-positive pass over real files")
    parser.add_argument("--sheet", help="write a contact sheet (plain, marked, difference x20) to this PNG")
    args = parser.parse_args()
    data = data_dir(args.data)
    if not (data / "images").is_dir():
        print(f"bench_watermark: no real data at {data} (set $NPCFACE_DATA): skipped")
        return 0
    portraits = sorted(p for p in (data / "images").iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    lines = sorted((ROOT / "fixtures").glob("line_*.wav"))
    print(f"rendering {len(portraits)} portraits x {len(lines)} lines x {args.frames_per_line} frames at {SIZE}x{SIZE}")
    clips, psnrs, render_s, embed_s = render_clips(portraits, lines, args.frames_per_line)

    print("visual cost (PSNR, watermarked vs not, per portrait: mean / min):")
    for name in dict.fromkeys(p for p, _ in psnrs):
        values = [v for p, v in psnrs if p == name]
        print(f"  {name:40s} {np.mean(values):5.2f} / {np.min(values):5.2f} dB")
    every = np.array([v for _, v in psnrs])
    print(f"  all {len(every)} frames: mean {every.mean():.2f} dB, min {every.min():.2f} dB (target > 40)")
    print(f"embedding cost per {SIZE}x{SIZE} frame: {1000 * np.median(embed_s):.2f} ms vs render "
          f"{1000 * np.median(render_s):.1f} ms (medians): {100 * np.median(embed_s) / np.median(render_s):.1f}% "
          f"of the frame's own render cost")
    started = time.perf_counter()
    watermark.detect(clips[0][4][0])
    print(f"detection cost per {SIZE}x{SIZE} frame: {1000 * (time.perf_counter() - started):.0f} ms")

    print("detection after each transformation (right payload), and on the unmarked frames:")
    table = detection_table(clips, args.only)

    detected = 0
    files = [] if args.skip_real else real_files(data, args.grid_clips)
    if files:
        print(f"false positives: npcface verify on {len(files)} real files and a re-encoded copy of each")
        detected, checked, scores = false_positives(files)
        print(f"  {detected}/{checked} real files called generated; watermark z-scores max {max(scores):.1f}, "
              f"mean {np.mean(scores):.1f} (a detection needs z >= {watermark.Z_THRESHOLD:g} and a checked payload)")

    if args.sheet:
        rows = []
        for _, _, _, plain, marked in clips[::len(lines)][:6]:
            difference = np.clip(128 + 20 * (marked[0].astype(int) - plain[0].astype(int)), 0, 255).astype(np.uint8)
            rows += [plain[0], marked[0], difference]
        labels = ["plain", "watermarked", "difference x20"] * (len(rows) // 3)
        save_contact_sheet(args.sheet, rows, labels, columns=3, tile=384)
        print(f"wrote {args.sheet}")
    misses = [name for name, row in table.items() if row[0] < row[1]]
    false_total = detected + sum(row[2] + row[5] for row in table.values())
    print(f"summary: transformations with misses: {', '.join(misses) or 'none'}; false positives: {false_total}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
