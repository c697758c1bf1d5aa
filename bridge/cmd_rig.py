"""``npcface rig``: a portrait picture -> a rig file the renderer and the sidecar load.

    npcface rig portrait.png -o portrait.rig [--face N]
"""
from __future__ import annotations

import argparse
import time

from ..core.errors import NpcfaceError
from .cli_args import check_output_file


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "rig", help="portrait picture -> rig file (face mesh, blendshapes, regions, matte)",
        description="Rig a portrait for the renderer: any picture with a face (photo, painting, drawing).")
    parser.add_argument("image", help="the portrait (PNG, JPEG, WebP, ...)")
    parser.add_argument("-o", "--output", required=True, help="rig file to write (.rig)")
    parser.add_argument("--face", type=int, default=None,
                        help="which face when there are several (0 = largest, the default)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..core.render.rig import rig_from_file

    output = check_output_file(args.output, (".rig",), "rig output")
    started = time.perf_counter()
    rig = rig_from_file(args.image, face_index=args.face, name=args.image)
    try:
        rig.save(output)
    except OSError as error:
        raise NpcfaceError(f"cannot write {output}: {error.strerror or error}") from None
    height, width = rig.image.shape[:2]
    print(f"wrote {output}: {width}x{height} portrait, {len(rig.vertices)} vertices, "
          f"content id {rig.content_id} ({time.perf_counter() - started:.2f} s)")
    return 0
