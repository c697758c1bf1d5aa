"""Self-reenactment: each real talking clip's own closed-mouth frame is rigged, driven by the clip's
own capture, and compared with the real frames (PSNR and SSIM over the face box, the mouth box and
the eye boxes, from the real frame's landmarks). The portrait is the person's own frame, so the gap
is the renderer's. ``--before REV`` scores the renderer at git revision REV in the same run, on the same
frames and captured curves (each revision retargets them with its own core/capture/drive); a contact sheet sets
real, before and current mouths side by side.

Eyes are scored twice: on the evenly spaced test frames where the real eye is open, and on the frames
where it is closing or closed (captured EyeBlink >= BLINK_FROM; the even sample rarely hits a blink,
so up to BLINK_FRAMES_PER_CLIP blink frames are added). ``--eye-sheet`` sets real, before and current
eyes side by side at those blink frames.

    .venv/bin/python bench/bench_reenact.py [--before HEAD~3] [--sheet bench/results/reenact.png]

Clips come from ../shared/data (or $NPCFACE_DATA): GRID speakers (train/grid/s1, s4) and the real
videos in video/. TUNING clips are the ones the renderer was tuned on; the figure to report is the
HELD_OUT average. Frames are subsampled (FRAMES_PER_CLIP each) to keep it quick on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _common import add_revision_options, data_dir, run_at_revision, use_code_from  # noqa: E402

TUNING = ("train/grid/s1/bbaf3s.mp4", "train/grid/s4/bbaf2a.mp4", "video/v07_retalking_face1_25fps.mp4",
          "video/v13_liveportrait_d20.mp4")
HELD_OUT = ("train/grid/s1/bbal6n.mp4", "train/grid/s1/bbas2p.mp4", "train/grid/s4/bgbu2a.mp4",
            "train/grid/s4/bbilzs.mp4", "video/v16_dfrf_cnn_anchor_71s.mp4", "video/v17_dfrf_macron_french_50s.mp4",
            "video/v19_hdtf_RD_Radio10_2s.mp4", "video/v20_real3dportrait_May_5s.mp4",
            "video/v22_facegood_zismeif_12s.mp4", "video/v18_retalking_face3.mp4")
MAX_SECONDS = 6.0  # of each clip, tracked from its start
MAX_SIDE = 512  # frames are scaled down to this on the longer side
FRAMES_PER_CLIP = 12
BLINK_FROM = 0.3  # captured EyeBlink (mean of both eyes) from which a frame counts as closing or closed
BLINK_FRAMES_PER_CLIP = 8
LIPS_OUTER = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 146, 91, 181, 84, 17, 314, 405, 321, 375)
EYES = ((33, 246, 161, 160, 159, 158, 157, 173, 133, 7, 163, 144, 145, 153, 154, 155),
        (263, 466, 388, 387, 386, 385, 384, 398, 362, 249, 390, 373, 374, 380, 381, 382))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean structural similarity of two grey images (Wang et al. 2004: Gaussian window sigma 1.5)."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2

    def blur(x):
        return cv2.GaussianBlur(x, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b, cov = blur(a * a) - mu_a ** 2, blur(b * b) - mu_b ** 2, blur(a * b) - mu_a * mu_b
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(index.mean())


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 10 * np.log10(255.0 ** 2 / max(mse, 1e-10))


def boxes(landmarks: np.ndarray, width: int, height: int) -> tuple[tuple[int, ...], ...]:
    """(face box, mouth box, right eye box, left eye box) as (x0, y0, x1, y1) from one frame's (478, 2)
    pixel landmarks; an eye box holds the eye and its lids (up to the crease)."""
    def clipped(x0, y0, x1, y1):
        return (int(max(0, x0)), int(max(0, y0)), int(min(width, x1)), int(min(height, y1)))

    face = landmarks[:468]
    lips = landmarks[list(LIPS_OUTER)]
    span = np.ptp(lips[:, 0])
    pad = 0.1 * span  # the lips and a little skin: the interior weighs in, not the cheeks
    mouth = clipped(*(lips.min(axis=0) - pad), *(lips.max(axis=0) + pad))
    eyes = []
    for contour in EYES:
        eye = landmarks[list(contour)]
        span = np.ptp(eye[:, 0])
        eyes.append(clipped(*(eye.min(axis=0) - (0.15 * span, 0.35 * span)), *(eye.max(axis=0) + (0.15 * span, 0.2 * span))))
    return (clipped(*face.min(axis=0), *face.max(axis=0)), mouth, *eyes)


# ----------------------------------------------------------------------------- preparing the clips

def prepare(clip: Path, folder: Path) -> dict | None:
    """Track a clip, pick its rig frame and test frames, save them with their driving curves."""
    from npcface.core.capture.video import FaceTracker, capture_frames
    from npcface.core.formats.video import read_video, video_info

    info = video_info(clip)
    frames = []
    for time_s, rgb in read_video(clip):
        if time_s > MAX_SECONDS:
            break
        scale = min(1.0, MAX_SIDE / max(rgb.shape[:2]))
        if scale < 1:
            size = (round(rgb.shape[1] * scale) // 2 * 2, round(rgb.shape[0] * scale) // 2 * 2)
            rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        frames.append((time_s, rgb))
    result = capture_frames(frames, info.fps)
    opening = result.mouth_opening
    first = max(1, len(frames) // 4)
    rest = int(np.argmin(opening[:first]))  # a closed mouth among the first quarter
    candidates = np.setdiff1d(np.arange(len(frames)), [rest])
    picks = candidates[np.linspace(0, len(candidates) - 1, FRAMES_PER_CLIP).round().astype(int)]
    blink = _blink(result.track)
    blinking = np.setdiff1d(np.flatnonzero(blink >= BLINK_FROM), np.r_[rest, picks])
    if len(blinking) > BLINK_FRAMES_PER_CLIP:
        blinking = blinking[np.linspace(0, len(blinking) - 1, BLINK_FRAMES_PER_CLIP).round().astype(int)]
    regular = np.r_[np.ones(len(picks), bool), np.zeros(len(blinking), bool)]
    picks = np.r_[picks, blinking]
    height, width = frames[0][1].shape[:2]
    face_boxes, mouth_boxes, eye_boxes, kept, kept_regular, points = [], [], [], [], [], []
    with FaceTracker(video_mode=False) as tracker:
        for index, is_regular in zip(picks, regular):
            found = tracker.landmarks(frames[index][1])
            if found is None:
                continue
            face, mouth, *eyes = boxes(found[:, :2] * (width, height), width, height)
            kept.append(index)
            kept_regular.append(is_regular)
            points.append(found[:, :2] * (width, height))
            face_boxes.append(face)
            mouth_boxes.append(mouth)
            eye_boxes.append(eyes)
    if not kept:
        return None
    kept = np.array(kept)
    take = np.r_[rest, kept]  # the captured curves as they come, the rig frame's first: each revision retargets
    np.savez(folder / f"{clip.stem}.npz", rest=frames[rest][1], real=np.stack([frames[i][1] for i in kept]),
             picks=kept, regular=np.array(kept_regular), blink=blink[kept], face_boxes=np.array(face_boxes),
             mouth_boxes=np.array(mouth_boxes), eye_boxes=np.array(eye_boxes), landmarks=np.array(points, np.float32),
             fps=info.fps, times=result.track.times[take],
             head_rotation=result.track.head_rotation[take], head_translation=result.track.head_translation[take],
             gaze=result.track.gaze[take], blendshapes=result.track.blendshapes[take], opening=opening[kept])
    return {"clip": clip.stem, "frames": len(frames), "rest": rest, "blinks": int((blink[kept] >= BLINK_FROM).sum())}


def driven_renderer(data):
    """The renderer imported now for a prepared clip's rig frame, and the clip's take retargeted onto it
    (frame 0 is the rig frame)."""
    from npcface.core.capture import drive
    from npcface.core.render.renderer import Renderer
    from npcface.core.render.rig import build_rig
    from npcface.core.types import MotionTrack

    height, width = data["rest"].shape[:2]
    # unmarked: the invisible watermark is a fixed perturbation of every frame, not the renderer's gap
    # (it costs ~0.03 mouth SSIM on these small crops); bench_watermark.py measures it
    renderer = Renderer(build_rig(np.ascontiguousarray(data["rest"])), (width, height), watermark=False)
    take = MotionTrack(fps=float(data["fps"]), times=data["times"], head_rotation=data["head_rotation"],
                       head_translation=data["head_translation"], gaze=data["gaze"], blendshapes=data["blendshapes"])
    # the revision's own retargeting of a captured take (older ones had no from_capture step)
    from_capture = getattr(drive, "from_capture", lambda track: track)
    return renderer, drive.retarget(from_capture(take), neutral=0)


def _blink(track) -> np.ndarray:
    """Per frame, the captured EyeBlink of both eyes, averaged (blinks are nearly always both eyes)."""
    from npcface.core.arkit import ARKIT_INDEX

    return track.blendshapes[:, [ARKIT_INDEX["EyeBlinkLeft"], ARKIT_INDEX["EyeBlinkRight"]]].mean(axis=1)


# ----------------------------------------------------------------------------- scoring a renderer

def compare(real: np.ndarray, rendered: np.ndarray, box) -> list[float]:
    """[PSNR (RGB), SSIM (grey)] of the rendered frame against the real one inside box."""
    x0, y0, x1, y1 = box
    a, b = real[y0:y1, x0:x1], rendered[y0:y1, x0:x1]
    grey_a, grey_b = (cv2.cvtColor(np.ascontiguousarray(x), cv2.COLOR_RGB2GRAY) for x in (a, b))
    return [psnr(a, b), ssim(grey_a, grey_b)]


def score(folder: Path, crops_path: Path | None) -> dict:
    """Render every prepared clip with the npcface code imported now; figures per clip."""
    figures, crops = {}, {}
    for path in sorted(folder.glob("*.npz")):
        data = np.load(path)
        renderer, driven = driven_renderer(data)
        # older prepared clips have no blink frames: every frame is a regular one
        regular = data["regular"] if "regular" in data else np.ones(len(data["picks"]), bool)
        blink = data["blink"] if "blink" in data else np.zeros(len(data["picks"]))
        rows, eye_rows, mouths = [], [], []
        for k in range(len(data["picks"])):
            rendered = renderer.render(driven.frame(k + 1)).rgba[..., :3]
            real = data["real"][k]
            eyes = np.mean([compare(real, rendered, box) for box in data["eye_boxes"][k]], axis=0).tolist()
            eye_rows.append(eyes)
            if regular[k]:
                rows.append(compare(real, rendered, data["face_boxes"][k]) + compare(real, rendered, data["mouth_boxes"][k]))
            x0, y0, x1, y1 = data["mouth_boxes"][k]
            mouths.append(rendered[y0:y1, x0:x1])
            for e, (x0, y0, x1, y1) in enumerate(data["eye_boxes"][k]):
                crops.setdefault(path.stem, {})[f"eye{e}|{k}"] = rendered[y0:y1, x0:x1]
        eye_rows, closing = np.array(eye_rows), blink >= BLINK_FROM
        open_eyes = regular & ~closing
        figures[path.stem] = (np.mean(rows, axis=0).tolist()
                              + (eye_rows[open_eyes].mean(axis=0).tolist() if open_eyes.any() else [np.nan] * 2)
                              + (eye_rows[closing].mean(axis=0).tolist() if closing.any() else [np.nan] * 2))
        crops.setdefault(path.stem, {}).update({f"mouth|{k}": m for k, m in enumerate(mouths)})
    if crops_path is not None:
        np.savez(crops_path, **{f"{clip}|{key}": m for clip, ms in crops.items() for key, m in ms.items()})
    return figures


def contact_sheet(folder: Path, crop_files: dict[str, Path], out: Path) -> None:
    """Per clip, its three most open real mouths, then each renderer's at the same frames."""
    from npcface.core.render.contact_sheet import save_contact_sheet

    renders = {name: np.load(path) for name, path in crop_files.items()}
    tiles, labels = [], []

    for path in sorted(folder.glob("*.npz")):
        data = np.load(path)
        for k in sorted(np.argsort(-data["opening"])[:3]):
            x0, y0, x1, y1 = data["mouth_boxes"][k]
            tiles.append(_enlarged(data["real"][k][y0:y1, x0:x1], 200))
            labels.append(f"{path.stem[:14]} real")
            for name, crops in renders.items():
                tiles.append(_enlarged(crops[f"{path.stem}|mouth|{k}"], 200))
                labels.append(name)
    save_contact_sheet(out, tiles, labels, columns=3 * (len(renders) + 1), tile=200)


def eye_placement(folder: Path, reach: int = 6) -> None:
    """Per clip, on its open-eyed test frames: the eye-box SSIM as rendered now, the SSIM with the
    rendered eye shifted (up to ``reach`` pixels each way) to where it matches best, and the mean
    shift (+dx: the rendered eye sits right of the real one, +dy: below it). A big gain at a
    consistent shift means the eye is drawn well but placed off (head motion, not the eye layer)."""
    print(f"\n{'clip':24s} {'eye SSIM':>9s} {'shifted':>9s} {'mean dx':>8s} {'mean dy':>8s}  (open-eyed frames)")
    for path in sorted(folder.glob("*.npz")):
        data = np.load(path)
        if "blink" not in data:
            continue  # prepared by an older version of this bench: no blink figures to tell the open eyes by
        height, width = data["rest"].shape[:2]
        renderer, driven = driven_renderer(data)
        rows = []
        for k in np.flatnonzero(data["regular"] & (data["blink"] < BLINK_FROM)):
            real, rendered = (cv2.cvtColor(np.ascontiguousarray(x), cv2.COLOR_RGB2GRAY)
                              for x in (data["real"][k], renderer.render(driven.frame(k + 1)).rgba[..., :3]))
            for x0, y0, x1, y1 in data["eye_boxes"][k]:
                shifts = {(dx, dy): ssim(real[y0:y1, x0:x1], rendered[y0 + dy:y1 + dy, x0 + dx:x1 + dx])
                          for dx in range(-reach, reach + 1) for dy in range(-reach, reach + 1)
                          if x0 + dx >= 0 and y0 + dy >= 0 and x1 + dx <= width and y1 + dy <= height}
                best = max(shifts, key=shifts.get)
                rows.append((shifts[(0, 0)], shifts[best], *best))
        if rows:
            mean = np.mean(rows, axis=0)
            print(f"{path.stem[:24]:24s} {mean[0]:9.3f} {mean[1]:9.3f} {mean[2]:+8.1f} {mean[3]:+8.1f}")


def eye_sheet(folder: Path, crop_files: dict[str, Path], out: Path) -> None:
    """Per clip with blinks, both eyes at its (up to) three most closed real frames: real, then each
    renderer's at the same frame."""
    from npcface.core.render.contact_sheet import save_contact_sheet

    renders = {name: np.load(path) for name, path in crop_files.items()}
    tiles, labels = [], []
    for path in sorted(folder.glob("*.npz")):
        data = np.load(path)
        if "blink" not in data:
            continue
        closing = np.flatnonzero(data["blink"] >= BLINK_FROM)
        for k in sorted(closing[np.argsort(-data["blink"][closing])][:3]):
            for e, (x0, y0, x1, y1) in enumerate(data["eye_boxes"][k]):
                tiles.append(_enlarged(data["real"][k][y0:y1, x0:x1], 160))
                labels.append(f"{path.stem[:10]} {data['blink'][k]:.2f} real")
                for name, crops in renders.items():
                    tiles.append(_enlarged(crops[f"{path.stem}|eye{e}|{k}"], 160))
                    labels.append(name)
    if tiles:
        save_contact_sheet(out, tiles, labels, columns=2 * (len(renders) + 1), tile=160)


def _enlarged(crop: np.ndarray, size: int) -> np.ndarray:
    """Small crops enlarged so that their pixels show."""
    scale = size / max(crop.shape[:2])
    return cv2.resize(crop, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)


# ----------------------------------------------------------------------------- report

METRICS = ("face PSNR", "face SSIM", "mouth PSNR", "mouth SSIM", "open eyes PSNR", "open eyes SSIM",
           "blink eyes PSNR", "blink eyes SSIM")
SHORT = {"face PSNR": "face dB", "face SSIM": "face SSIM", "mouth PSNR": "mouth dB", "mouth SSIM": "mouth SSIM",
         "open eyes PSNR": "eye dB", "open eyes SSIM": "eye SSIM", "blink eyes PSNR": "blink dB",
         "blink eyes SSIM": "blink SSIM"}


def report(runs: dict[str, dict]) -> None:
    """Per clip and on average, each metric for each renderer side by side, in two tables (face and
    mouth; eyes open and at blinks); a clip without a blink (or without an open-eyed frame) has no
    figure there and is left out of that column's mean."""
    names = list(runs)
    print("renderers: " + ", ".join(names) + f"; eye = open-eyed test frames, blink = EyeBlink >= {BLINK_FROM}")
    clips = sorted(next(iter(runs.values())))
    held = {Path(c).stem for c in HELD_OUT}
    subsets = (("held out", [c for c in clips if c in held]), ("tuning", [c for c in clips if c not in held]),
               ("all", clips))

    def cell(value: float) -> str:
        return f" {value:13.3f}" if np.isfinite(value) else f" {'-':>13s}"

    for columns in (range(4), range(4, len(METRICS))):
        print(f"\n{'clip':24s} {'set':8s}" + "".join(f" {SHORT[METRICS[i]] + ' ' + n.split()[0]:>13s}"
                                                 for i in columns for n in names))
        for clip in clips:
            kind = "held out" if clip in held else "tuning"
            print(f"{clip[:24]:24s} {kind:8s}" + "".join(cell(runs[n][clip][i]) for i in columns for n in names))
        for label, subset in subsets:
            if not subset:
                continue
            counted = {i: sum(np.isfinite(runs[names[0]][c][i]) for c in subset) for i in columns}
            print(f"{'mean, ' + label:24s} {len(subset):<8d}" + "".join(
                cell(np.nanmean([runs[n][c][i] for c in subset]) if counted[i] else np.nan)
                for i in columns for n in names)
                + (f"  (clips with blinks: {counted[len(METRICS) - 1]})" if len(METRICS) - 1 in counted else ""))
    if len(names) == 2:
        before, now = names
        for label, subset in (subsets[0], subsets[2]):
            gains = [np.nanmean([runs[now][c][i] - runs[before][c][i] for c in subset]) for i in range(len(METRICS))]
            print(f"change {label} ({now} - {before}): " + ", ".join(f"{m} {g:+.3f}" for m, g in zip(METRICS, gains)))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the shared data folder (default ../shared/data or $NPCFACE_DATA)")
    parser.add_argument("--before", help="also score the renderer at this git revision")
    parser.add_argument("--sheet", help="write a contact sheet PNG of real vs rendered mouths")
    parser.add_argument("--eye-sheet", help="write a contact sheet PNG of real vs rendered eyes at blink frames")
    parser.add_argument("--eye-placement", action="store_true",
                        help="also say how far the rendered eyes sit from the real ones (best-matching shift)")
    parser.add_argument("--clips", help="comma-separated clip stems to run (default: all)")
    parser.add_argument("--cache", help="keep the tracked clips in this folder and reuse them (quicker reruns)")
    add_revision_options(parser)  # --json, --code: what --before's run of REV is given
    parser.add_argument("--prepared", help=argparse.SUPPRESS)
    parser.add_argument("--crops", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.json:
        use_code_from(args.code)
        print(json.dumps(score(Path(args.prepared), Path(args.crops) if args.crops else None)))
        return 0

    data = data_dir(args.data)
    wanted = set(args.clips.split(",")) if args.clips else None
    clips = [data / c for c in TUNING + HELD_OUT if (data / c).is_file() and (wanted is None or Path(c).stem in wanted)]
    if not clips:
        print(f"no clips under {data}: nothing to measure (set --data or $NPCFACE_DATA)")
        return 0
    with tempfile.TemporaryDirectory(prefix="npcface-reenact-") as work:
        folder = Path(args.cache or work) / "clips"
        folder.mkdir(parents=True, exist_ok=True)
        for clip in clips:
            if (folder / f"{clip.stem}.npz").is_file():
                continue  # prepared by an earlier run with the same --cache
            prepared = prepare(clip, folder)
            print(f"prepared {clip.name}: " + (f"{prepared['frames']} frames tracked, rig frame {prepared['rest']}, "
                                               f"{prepared['blinks']} blink frames"
                                               if prepared else "no face in the test frames, skipped"), flush=True)
        runs, crop_files = {}, {}
        if args.before:
            crop_files[f"before {args.before}"] = Path(work) / "crops_before.npz"
            out = run_at_revision(args.before, __file__, ["--prepared", str(folder),
                                                          "--crops", str(crop_files[f"before {args.before}"])])
            runs[f"before {args.before}"] = json.loads(out)
        crop_files["now"] = Path(work) / "crops_now.npz"
        runs["now"] = score(folder, crop_files["now"])
        report(runs)
        if args.sheet:
            contact_sheet(folder, crop_files, Path(args.sheet))
            print(f"wrote {args.sheet}")
        if args.eye_sheet:
            eye_sheet(folder, crop_files, Path(args.eye_sheet))
            print(f"wrote {args.eye_sheet}")
        if args.eye_placement:
            eye_placement(folder)
    return 0


if __name__ == "__main__":
    sys.exit(main())
