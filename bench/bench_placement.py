"""Where the rendered face sits against the real one, per frame, in the self-reenactment of
bench_reenact.py: the rig's landmarks as the renderer places them (its deformed mesh) and as
MediaPipe finds them on the rendered frame, against the real frame's landmarks. Offsets are split
into the head (rigid points: eye corners, nose), the lips' centre, the upper and lower lip and the
chin, so a misplaced mouth can be traced to head motion or to the mouth's own shape.

    .venv/bin/python bench/bench_placement.py --cache /tmp/reenact [--clips v16_...,bbal6n]

Reads the clips bench_reenact.py prepared (its --cache folder; prepared here when missing).
Figures are in pixels of the (at most 512 px) frames and in rest mouth widths (mw); + x = image
right, + y = image down; "err" is the mean length of the offset vector per frame.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import bench_reenact  # noqa: E402
from _common import data_dir  # noqa: E402

GROUPS = {
    "head": (33, 133, 263, 362, 1, 4, 6, 168, 98, 327),  # rigid: eye corners, nose
    "lips": bench_reenact.LIPS_OUTER,
    "upper": (0, 13),  # the upper lip's middle, outer and inner edge
    "lower": (14, 17),
    "chin": (152,),
}


def measure(path: Path) -> dict:
    """Per frame offsets (rendered - real) of each group's centre, from the mesh and from MediaPipe."""
    from npcface.core.capture.video import FaceTracker

    data = np.load(path)
    height, width = data["rest"].shape[:2]
    renderer, driven = bench_reenact.driven_renderer(data)
    rest = renderer.rig.landmarks[:, :2]
    rows = {"mesh": [], "seen": [], "still": []}
    with FaceTracker(video_mode=False) as tracker:
        # the evenly spaced test frames (clips prepared with blink frames also hold those: not placement's)
        regular = np.flatnonzero(data["regular"]) if "regular" in data else range(len(data["picks"]))
        for k in regular:
            frame = driven.frame(k + 1)
            placed = renderer.geometry(frame).deformed[:478]
            found = tracker.landmarks(np.ascontiguousarray(renderer.render(frame).rgba[..., :3]))
            real = data["landmarks"][k]
            for name, points in (("mesh", placed), ("seen", None if found is None else found[:, :2] * (width, height)),
                                 ("still", rest)):
                if points is not None:
                    rows[name].append([(points[list(g)] - real[list(g)]).mean(axis=0) for g in GROUPS.values()])
    mouth_width = float(np.linalg.norm(rest[291] - rest[61]))
    return {"mouth_width": mouth_width, **{name: np.array(r) for name, r in rows.items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the shared data folder (default ../shared/data or $NPCFACE_DATA)")
    parser.add_argument("--cache", required=True, help="bench_reenact.py's --cache folder (prepared clips)")
    parser.add_argument("--clips", help="comma-separated clip stems (default: all)")
    args = parser.parse_args()
    folder = Path(args.cache) / "clips"
    folder.mkdir(parents=True, exist_ok=True)
    data = data_dir(args.data)
    wanted = set(args.clips.split(",")) if args.clips else None
    for clip in bench_reenact.TUNING + bench_reenact.HELD_OUT:
        stem = Path(clip).stem
        if (data / clip).is_file() and (wanted is None or stem in wanted) and not (folder / f"{stem}.npz").is_file():
            bench_reenact.prepare(data / clip, folder)
    held = {Path(c).stem for c in bench_reenact.HELD_OUT}
    names = list(GROUPS)
    print("offset rendered - real, mean (dx, dy) px over the frames | mean |offset| px; mw = rest mouth width")
    print(f"{'clip':28s} {'set':5s} {'mw':>5s} {'src':5s} " + " ".join(f"{n + ' dx,dy|err':>20s}" for n in names))
    totals: dict[str, list] = {}
    for path in sorted(folder.glob("*.npz")):
        if wanted is not None and path.stem not in wanted:
            continue
        found = measure(path)
        kind = "held" if path.stem in held else "tune"
        for source in ("mesh", "seen", "still"):
            offsets = found[source]
            if not len(offsets):
                continue
            mean, error = offsets.mean(axis=0), np.linalg.norm(offsets, axis=2).mean(axis=0)
            totals.setdefault(f"{kind} {source}", []).append(np.c_[mean, error] / found["mouth_width"])
            print(f"{path.stem[:28]:28s} {kind:5s} {found['mouth_width']:5.1f} {source:5s} " + " ".join(
                f"{m[0]:+6.1f},{m[1]:+6.1f}|{e:5.1f}" for m, e in zip(mean, error)), flush=True)
    print("means in mouth widths (dx, dy | err):")
    for key, values in sorted(totals.items()):
        mean = np.mean(values, axis=0)
        print(f"{key:12s} " + " ".join(f"{n}: {m[0]:+.3f},{m[1]:+.3f}|{m[2]:.3f}" for n, m in zip(names, mean)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
