"""`npcface capture video.mp4 -o take.csv|take.json [--plot curves.png]`: webcam-style mocap.

A talking video becomes head rotation, gaze and ARKit blendshape curves (MediaPipe face mesh),
written as Live Link Face CSV (.csv) or npcface motion JSON (.json).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..core.errors import FormatError
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..core.types import MotionTrack

OUTPUT_SUFFIXES = (".csv", ".json")
PLOTTED_CHANNELS = ("JawOpen", "MouthClose", "MouthFunnel", "MouthPucker", "MouthSmileLeft",
                    "MouthSmileRight", "EyeBlinkLeft", "EyeBlinkRight", "BrowInnerUp")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "capture", help="capture a talking video into Live Link Face CSV / motion JSON curves",
        description="Track the face in a video (MediaPipe face mesh) and write head rotation, "
                    "gaze and ARKit blendshape curves.")
    parser.add_argument("video", type=Path, help="video file (mp4, mov, webm, ...)")
    parser.add_argument("-o", "--output", type=Path, required=True,
                        help="output file: .csv (Live Link Face) or .json (npcface motion)")
    parser.add_argument("--plot", type=Path, help="also write a PNG of the main curves")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..core.capture.video import capture_video_result
    from ..core.formats.livelink import write_livelink_csv, write_motion_json

    suffix = args.output.suffix.lower()
    if suffix not in OUTPUT_SUFFIXES:
        raise FormatError(f"output {args.output} must end in .csv or .json")
    for target in (args.output, args.plot):
        if target is not None and not target.resolve().parent.is_dir():
            raise FormatError(f"folder {target.parent} does not exist")
    if args.plot is not None and args.plot.suffix.lower() != ".png":
        raise FormatError(f"--plot {args.plot} must end in .png")

    result = capture_video_result(args.video)
    if suffix == ".csv":
        write_livelink_csv(result.track, args.output)
    else:
        write_motion_json(result.track, args.output)
    if args.plot is not None:
        plot_curves(result.track, args.plot, title=args.video.name)
    print(f"captured {len(result.track)} frames at {result.track.fps:g} fps "
          f"({result.capture_fps:.0f} frames/s), {result.frames_without_face} without a face "
          f"(interpolated) -> {args.output}", file=sys.stderr)
    return 0


def plot_curves(track: MotionTrack, path: Path, title: str = "") -> None:
    """Head rotation, gaze and the main blendshapes over time, in three panels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(3, 1, figsize=(12, 8), sharex=True)
    for i, name in enumerate(("yaw", "pitch", "roll")):
        axes[0].plot(track.times, track.head_rotation[:, i], label=f"head {name}")
    axes[0].set_ylabel("degrees")
    for eye, side in enumerate(("left", "right")):
        axes[1].plot(track.times, track.gaze[:, eye, 0], label=f"{side} eye yaw")
        axes[1].plot(track.times, track.gaze[:, eye, 1], label=f"{side} eye pitch", linestyle="--")
    axes[1].set_ylabel("degrees")
    for name in PLOTTED_CHANNELS:
        axes[2].plot(track.times, track.channel(name), label=name)
    axes[2].set_ylabel("weight")
    axes[2].set_ylim(-0.02, 1.02)
    axes[2].set_xlabel("time (s)")
    for axis in axes:
        axis.legend(loc="upper right", fontsize=7, ncol=3)
        axis.grid(alpha=0.3)
    axes[0].set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
