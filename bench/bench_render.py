"""Renderer speed: frames per second at 256x256 and 512x512, where the time goes per stage, rig build
time and memory, against baselines measured in the same run (one plain ``grid_sample`` of the
picture, and OpenCV's ``remap``, at the same size).

    .venv/bin/python bench/bench_render.py [--frames 300] [--portrait path.png] [--threads 2]
    .venv/bin/python bench/bench_render.py --gallery bench/results/render_gallery   # see below
    .venv/bin/python bench/bench_render.py --before HEAD~3   # frame cost now vs an older renderer

Target (issue 3): 512x512 at 60 fps or more per stream on 2 CPU cores.

``--gallery DIR`` renders every portrait in ../shared/data/images (or $NPCFACE_DATA/images)
speaking a real line (a15, with a happy then surprised emotion) plus a sweep of poses and
expressions, one contact sheet per portrait, to look at. ``--close-ups DIR`` writes one sheet of every
portrait's mouth (open, closed, tongue tip, smile) and eye (blinks) enlarged.
"""
from __future__ import annotations

import argparse
import os
import resource
import tracemalloc
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from _common import add_revision_options, run_at_revision, use_code_from  # noqa: E402

if "--code" in sys.argv:  # a --before run: npcface comes from an older source tree
    use_code_from(sys.argv[sys.argv.index("--code") + 1])

from npcface.core.arkit import ARKIT_INDEX  # noqa: E402
from npcface.core.render.renderer import Renderer  # noqa: E402
from npcface.core.render.warp import warp_image  # noqa: E402
from npcface.core.render.rig import build_rig, load_image  # noqa: E402
from npcface.core.types import MotionFrame  # noqa: E402


def talking_frames(count: int, fps: float = 60.0) -> list[MotionFrame]:
    """A busy, speech-like motion: jaw and lips every syllable, the tongue tip, blinks, head turns, gaze shifts."""
    frames = []
    for i in range(count):
        t = i / fps
        weights = np.zeros(52, dtype=np.float32)
        weights[ARKIT_INDEX["JawOpen"]] = 0.35 * (1 + np.sin(2 * np.pi * 4.0 * t)) / 2 + 0.05
        weights[ARKIT_INDEX["MouthFunnel"]] = 0.3 * max(0.0, np.sin(2 * np.pi * 1.3 * t))
        weights[ARKIT_INDEX["MouthSmileLeft"]] = weights[ARKIT_INDEX["MouthSmileRight"]] = 0.3
        weights[ARKIT_INDEX["BrowInnerUp"]] = 0.3 * max(0.0, np.sin(2 * np.pi * 0.5 * t))
        blink = max(0.0, 1 - abs((t % 3.0) - 1.5) / 0.08)
        weights[ARKIT_INDEX["EyeBlinkLeft"]] = weights[ARKIT_INDEX["EyeBlinkRight"]] = blink
        gaze = (10 * np.sin(2 * np.pi * 0.3 * t), 4 * np.sin(2 * np.pi * 0.2 * t))
        frames.append(MotionFrame(time=t, head_rotation=(8 * np.sin(2 * np.pi * 0.4 * t),
                                                         5 * np.sin(2 * np.pi * 0.7 * t), 3 * np.sin(t)),
                                  head_translation=(0.0, 0.0, 0.0), gaze_left=gaze, gaze_right=gaze,
                                  blendshapes=weights, **_tongue(max(0.0, np.sin(2 * np.pi * 2.0 * t)))))
    return frames


def timed(fn, repeats: int) -> float:
    """Median seconds of fn() over repeats calls (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def stage_times(renderer: Renderer, frames: list[MotionFrame]) -> dict[str, float]:
    """Mean milliseconds per stage of Renderer.render, stage by stage (the same calls it makes)."""
    totals = dict.fromkeys(("geometry (deltas, rotation, projection)", "warp maps (sparse + inversion + upsample)",
                            "remap of the picture", "-", "mouth layer", "eye layers", "to RGBA"), 0.0)
    for frame in frames:
        t0 = time.perf_counter()
        geometry = renderer.geometry(frame)
        t1 = time.perf_counter()
        maps = renderer.backward_maps(geometry)
        t2 = time.perf_counter()
        rgb = warp_image(renderer.view_image, maps)
        t3 = time.perf_counter()
        t4 = time.perf_counter()
        renderer.mouth.draw(rgb, geometry, frame)
        t5 = time.perf_counter()
        renderer.eyes.draw(rgb, geometry, frame)
        t6 = time.perf_counter()
        cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA)
        t7 = time.perf_counter()
        for key, seconds in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5, t7 - t6)):
            totals[key] += seconds
    return {key: 1000 * value / len(frames) for key, value in totals.items()}


def pose(name: str, yaw=0.0, pitch=0.0, roll=0.0, gaze=(0.0, 0.0), tongue_tip=0.0, **weights) -> tuple[str, MotionFrame]:
    blendshapes = np.zeros(52, dtype=np.float32)
    for key, value in weights.items():
        blendshapes[ARKIT_INDEX[key]] = value
    return name, MotionFrame(0.0, (yaw, pitch, roll), (0.0, 0.0, 0.0), gaze, gaze, blendshapes, **_tongue(tongue_tip))


def _tongue(tip: float) -> dict[str, float]:
    """MotionFrame's tongue_tip where the renderer has one (a --before revision may not)."""
    return {"tongue_tip": tip} if "tongue_tip" in MotionFrame.__dataclass_fields__ else {}


SWEEP = (pose("yaw -20", yaw=-20), pose("yaw +20 talking", yaw=20, JawOpen=0.4), pose("pitch +15", pitch=15),
         pose("pitch -15 roll 10", pitch=-15, roll=10), pose("smile", MouthSmileLeft=0.8, MouthSmileRight=0.8, JawOpen=0.3),
         pose("frown", MouthFrownLeft=1, MouthFrownRight=1, BrowDownLeft=1, BrowDownRight=1),
         pose("pucker", MouthPucker=1), pose("blink", EyeBlinkLeft=1, EyeBlinkRight=1),
         pose("gaze right", gaze=(25.0, 0.0)), pose("gaze up-left", gaze=(-20.0, 15.0)),
         pose("surprise", JawOpen=0.5, BrowInnerUp=1, BrowOuterUpLeft=1, BrowOuterUpRight=1, EyeWideLeft=1,
              EyeWideRight=1), pose("jaw 1", JawOpen=1), pose("L, tongue tip", JawOpen=0.35, tongue_tip=1.0),
         pose("jaw 0.35, no tip", JawOpen=0.35))


def gallery(folder: Path) -> int:
    from npcface.core.audio.decode import load_audio
    from npcface.core.render.contact_sheet import save_contact_sheet
    from npcface.core.motion.generator import MotionGenerator
    from npcface.core.types import Controls, EmotionEvent

    data = Path(os.environ["NPCFACE_DATA"]) if os.environ.get("NPCFACE_DATA") else ROOT.parent / "shared" / "data"
    portraits = sorted((data / "images").glob("*"))
    line = data / "audio" / "a15_a2f_Claire_neutral.wav"
    if not portraits or not line.is_file():
        print(f"no portraits or line under {data}: nothing to render")
        return 0
    folder.mkdir(parents=True, exist_ok=True)
    audio = load_audio(line)
    track = MotionGenerator(Controls(fps=30.0)).animate(
        audio, emotions=[EmotionEvent(0.0, "happy", 0.5, 0.0), EmotionEvent(audio.duration / 2, "surprised", 0.8)])
    jaw = track.channel("JawOpen")
    picks = sorted(set(np.argsort(-jaw)[:3].tolist() + np.linspace(0, len(track) - 1, 9).round().astype(int).tolist()))
    for path in portraits + [ROOT / "fixtures" / "portrait_astronaut.png"]:
        renderer = Renderer(build_rig(load_image(path), name=str(path)), 256, framing="head")
        frames = [renderer.render(track.frame(i)).rgba for i in picks] + [renderer.render(f).rgba for _, f in SWEEP]
        labels = [f"{track.times[i]:.2f} s, jaw {jaw[i]:.2f}" for i in picks] + [name for name, _ in SWEEP]
        out = folder / f"{path.stem}.png"
        save_contact_sheet(out, frames, labels, columns=6, tile=256)
        print(f"wrote {out}")
    return 0


CLOSE_UPS = (pose("rest"), pose("jaw 0.2", JawOpen=0.2), pose("jaw 0.5", JawOpen=0.5), pose("jaw 1", JawOpen=1),
             pose("L: jaw 0.35, tongue tip", JawOpen=0.35, tongue_tip=1.0), pose("jaw 0.35, no tip", JawOpen=0.35),
             pose("smile, jaw 0.3", JawOpen=0.3, MouthSmileLeft=0.8, MouthSmileRight=0.8),
             pose("upper lip up", JawOpen=0.2, MouthUpperUpLeft=1, MouthUpperUpRight=1),
             pose("half blink", EyeBlinkLeft=0.5, EyeBlinkRight=0.5), pose("blink", EyeBlinkLeft=1, EyeBlinkRight=1))


def close_ups(folder: Path) -> int:
    """Per portrait, its mouth (and for blinks its eye) enlarged at 512x512 head framing: what the
    gallery's small tiles cannot show."""
    from npcface.core.render.contact_sheet import save_contact_sheet

    data = Path(os.environ["NPCFACE_DATA"]) if os.environ.get("NPCFACE_DATA") else ROOT.parent / "shared" / "data"
    portraits = sorted((data / "images").glob("*")) + [ROOT / "fixtures" / "portrait_astronaut.png"]
    folder.mkdir(parents=True, exist_ok=True)
    tiles, labels = [], []
    for path in portraits:
        renderer = Renderer(build_rig(load_image(path), name=str(path)), 512, framing="head")
        mouth = renderer.vertices[[61, 291], :2]
        eye = renderer.vertices[[33, 133], :2]
        for name, frame in CLOSE_UPS:
            centre, width = ((eye.mean(axis=0), 2.2 * np.ptp(eye[:, 0])) if "blink" in name
                             else (mouth.mean(axis=0) + (0, 0.25 * np.ptp(mouth[:, 0])), 1.6 * np.ptp(mouth[:, 0])))
            x0, y0 = (np.round(centre - width / 2).astype(int)).clip(0, 511 - int(width))
            crop = renderer.render(frame).rgba[y0:y0 + int(width), x0:x0 + int(width), :3]
            tiles.append(cv2.resize(crop, (200, 200), interpolation=cv2.INTER_CUBIC))
            labels.append(f"{path.stem[:12]} {name}")
    out = folder / "close_ups.png"
    save_contact_sheet(out, tiles, labels, columns=len(CLOSE_UPS), tile=200)
    print(f"wrote {out}")
    return 0


def frame_cost(rig, frames: list[MotionFrame], size: int = 512) -> dict[str, float]:
    """Milliseconds per talking frame at size x size, and one grid_sample of the picture, same process."""
    renderer = Renderer(rig, size)
    for frame in frames[:5]:
        renderer.render(frame)
    start = time.perf_counter()
    for frame in frames:
        renderer.render(frame)
    ms = 1000 * (time.perf_counter() - start) / len(frames)
    return {"ms": ms, "grid_sample_ms": 1000 * grid_sample_seconds(renderer, size)}


def grid_sample_seconds(renderer: Renderer, size: int) -> float:
    """The baseline: one torch grid_sample of the renderer's picture and matte at size x size."""
    planes = torch.from_numpy(np.dstack([renderer.view_image, renderer.view_matte]).astype(np.float32))
    planes = planes.permute(2, 0, 1).unsqueeze(0).contiguous()
    ys_n, xs_n = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    identity = torch.stack([xs_n, ys_n], dim=-1).unsqueeze(0)
    return timed(lambda: F.grid_sample(planes, identity, mode="bilinear", padding_mode="border",
                                       align_corners=True), 50)


def compare_with(revision: str, args, rounds: int = 3) -> None:
    """The renderer at git ``revision`` and the current one, same frames, same machine, taking turns
    ``rounds`` times; the fastest of each is compared (the least disturbed by other work on the machine)."""
    import json

    rig, frames = build_rig(load_image(args.portrait)), talking_frames(args.frames)
    before, now = [], []
    for _ in range(rounds):
        out = run_at_revision(revision, __file__, ["--frames", str(args.frames), "--portrait", args.portrait,
                                                   "--threads", str(args.threads)])
        before.append(json.loads(out))
        now.append(frame_cost(rig, frames))
    fastest_before, fastest_now = (min(run, key=lambda r: r["ms"]) for run in (before, now))
    print(f"\n512x512, {args.frames} talking frames, fastest of {rounds} turns each: "
          f"before {revision}: {fastest_before['ms']:.2f} ms/frame "
          f"({fastest_before['ms'] / fastest_before['grid_sample_ms']:.1f} grid_samples); "
          f"now: {fastest_now['ms']:.2f} ms/frame ({fastest_now['ms'] / fastest_now['grid_sample_ms']:.1f} grid_samples); "
          f"now / before = {fastest_now['ms'] / fastest_before['ms']:.2f}x")
    print("  every turn, ms/frame: before " + " ".join(f"{r['ms']:.1f}" for r in before)
          + "; now " + " ".join(f"{r['ms']:.1f}" for r in now))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--portrait", default=str(ROOT / "fixtures" / "portrait_astronaut.png"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--gallery", help="write contact sheets of every shared portrait to this folder instead")
    parser.add_argument("--close-ups", help="write enlarged mouths and eyes of every shared portrait to this folder instead")
    parser.add_argument("--before", help="also time the renderer at this git revision (512x512, same frames)")
    add_revision_options(parser)  # --json, --code: what --before's run of REV is given
    args = parser.parse_args()
    if args.gallery:
        return gallery(Path(args.gallery))
    if args.close_ups:
        return close_ups(Path(args.close_ups))
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    if args.json:
        import json

        print(json.dumps(frame_cost(build_rig(load_image(args.portrait)), talking_frames(args.frames))))
        return 0
    if args.before:
        compare_with(args.before, args)
        return 0
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; portrait {Path(args.portrait).name}")

    image = load_image(args.portrait)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    build = timed(lambda: build_rig(image), 3)
    rig = build_rig(image)
    print(f"rig build: {1000 * build:.0f} ms (median of 3; MediaPipe mesh + matte + 52 blendshape solves)")

    frames = talking_frames(args.frames)
    for size in (256, 512):
        init = timed(lambda: Renderer(rig, size), 2)
        tracemalloc.start()
        renderer = Renderer(rig, size)
        held = tracemalloc.get_traced_memory()[0] / 2 ** 20
        tracemalloc.stop()
        start = time.perf_counter()
        for frame in frames:
            renderer.render(frame)
        seconds = time.perf_counter() - start
        fps = len(frames) / seconds
        base_torch = grid_sample_seconds(renderer, size)
        xs, ys = np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32))
        base_cv = timed(lambda: cv2.remap(renderer.view_image, xs, ys, cv2.INTER_LINEAR), 50)
        print(f"\n{size}x{size}: {fps:.1f} fps ({1000 / fps:.2f} ms/frame over {len(frames)} talking frames), "
              f"renderer set-up {1000 * init:.0f} ms, {held:.1f} MiB held per renderer (stream)")
        print(f"  baseline, one grid_sample of the picture (4 planes): {1000 * base_torch:.2f} ms "
              f"({1 / base_torch:.0f} fps); cv2.remap (uint8 RGB): {1000 * base_cv:.2f} ms ({1 / base_cv:.0f} fps)")
        print(f"  a whole frame costs {(1 / fps) / base_torch:.1f} plain grid_samples")
        for stage, ms in stage_times(renderer, frames[: min(120, len(frames))]).items():
            if stage != "-":
                print(f"  {stage:45s} {ms:6.2f} ms")
        target = "meets" if fps >= 60 else "misses"
        if size == 512:
            print(f"  target 60 fps at 512x512: {target} it ({fps / 60:.2f}x)")
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    arrays = sum(a.nbytes for a in (rig.image, rig.matte, rig.deltas, rig.vertices)) / 2 ** 20
    print(f"\nmemory: rig arrays {arrays:.1f} MiB; peak RSS {rss_after:.0f} MiB "
          f"({rss_before:.0f} MiB before rigging, torch + MediaPipe loaded)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
