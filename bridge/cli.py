"""`npcface` command line: a thin dispatcher. Each subcommand lives in its own module
(bridge/cmd_<name>.py) exposing ``add_parser(subparsers)`` and ``run(args) -> int``.

User errors (NpcfaceError) become one line on stderr and exit code 2; never a traceback.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ..core.deps import dependency_error
from ..core.errors import NpcfaceError

SUBCOMMANDS = ("animate", "capture", "rig", "render", "serve", "say", "demo", "train", "prerender", "verify")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="npcface", description="Give game characters a talking face.")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"npcface.bridge.cmd_{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"npcface.bridge.cmd_{name}":
                continue  # not built yet
            raise
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except NpcfaceError as exc:
        print(f"npcface {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # a package that installed but does not load: one line, no traceback
        failed = dependency_error(exc)
        if failed is None:
            raise
        print(f"npcface {args.command}: error: {failed}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"npcface {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
