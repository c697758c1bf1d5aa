"""``npcface prerender``: a whole game's dialogue (a manifest of lines) -> engine-ready files.

    npcface prerender lines.csv -o out/ [--workers 2] [--ray auto|HOST:PORT] [--progress json]
    npcface prerender lines.jsonl -o out/ --dry-run

Exit codes: 0 every line done (or already done), 1 some lines failed (the summary says how many;
report.md says why), 2 the manifest or the options are wrong (one line on stderr).
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from ..core.errors import ControlError
from .cli_args import add_motion_argument
from .progress import Progress

PROGRESS_MODES = ("auto", "bar", "json", "none")


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "prerender", help="a manifest of dialogue lines -> mp4 / PNG / Live Link CSV / JSON / Unity .anim / "
                          "Godot .tres / plots, resumable, on a process pool or a Ray cluster",
        description="Prerender many lines at once. The manifest (CSV with a header, or JSON Lines) has one "
                    "line per row: id, audio, and optionally text, text_file, language, emotion, avatar, "
                    "seed, fps, outputs, motion. Paths are relative to the manifest. Re-running skips the "
                    "lines already done with the same inputs.")
    parser.add_argument("manifest", help="the manifest: .csv or .jsonl")
    parser.add_argument("-o", "--output", required=True, help="output folder (created if missing)")
    parser.add_argument("--outputs", default="json",
                        help="outputs for rows that name none: any of mp4 png csv json anim tres plot, "
                             "comma-separated (default json)")
    parser.add_argument("--fps", type=float, default=30.0, help="frames per second for rows without fps (default 30)")
    parser.add_argument("--seed", type=int, default=0, help="seed for rows without one (default 0)")
    parser.add_argument("--language", default="en-us", help="language for rows without one (default en-us)")
    add_motion_argument(parser)
    parser.add_argument("--size", default="512", help="rendered size: N or WIDTHxHEIGHT (default 512)")
    parser.add_argument("--framing", choices=("picture", "head"), default="picture", help="rendered framing")
    parser.add_argument("--unity-path", default="Face",
                        help="SkinnedMeshRenderer path below the Animator in .anim files (default Face)")
    parser.add_argument("--godot-path", default="Face",
                        help="MeshInstance3D path from the AnimationPlayer's root in .tres files (default Face)")
    parser.add_argument("--blendshape-names", choices=("livelink", "arkit"), default="livelink",
                        help="blend shape names in .anim/.tres: JawOpen (livelink, default) or jawOpen (arkit)")
    parser.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")
    parser.add_argument("--ray", metavar="auto|local|HOST:PORT", default=None,
                        help="run the lines as Ray tasks: auto (this machine's cluster, else a local one), "
                             "local (a new local cluster) or a cluster's address")
    parser.add_argument("--progress", choices=PROGRESS_MODES, default="auto",
                        help="auto: a bar on a terminal; json: one JSON object per event on stdout")
    parser.add_argument("--dry-run", action="store_true",
                        help="check every row (files, audio decodes, faces found, emotions) and render nothing")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from ..core.prerender.line import LineSettings, code_version
    from ..core.prerender.manifest import LineDefaults, read_manifest
    from ..core.prerender.plan import plan_run, prepare_output
    from .cmd_render import parse_size

    workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
    if workers < 1:
        raise ControlError(f"--workers must be at least 1, got {workers}")
    size = parse_size(args.size)
    if not all(16 <= side <= 4096 for side in size):
        raise ControlError(f"--size sides must be 16 to 4096 pixels, got {args.size!r}")
    defaults = LineDefaults(outputs=_default_outputs(args.outputs), fps=args.fps, seed=args.seed,
                            language=args.language, motion=args.motion)
    manifest = read_manifest(args.manifest, defaults)
    out_dir = Path(args.output)
    prepare_output(out_dir)
    settings = LineSettings(out_dir=out_dir.resolve(), size=size, framing=args.framing, unity_path=args.unity_path,
                            godot_path=args.godot_path, name_style=args.blendshape_names, code_version=code_version(),
                            render_threads=max(1, (os.cpu_count() or 1) // workers))
    reporter = _Reporter(args.progress, len(manifest.rows) + len(manifest.problems))
    plan = plan_run(manifest, settings, dry_run=args.dry_run)
    engine = "dry run" if args.dry_run else (f"ray {args.ray}" if args.ray else f"process pool of {workers}")
    header = {"manifest": str(args.manifest), "engine": engine, "dry_run": args.dry_run,
              "outside_paths": [{"line_no": row.line_no, "id": row.id, "path": path}
                                for row, path in manifest.outside_paths]}
    reporter.start(header, len(plan.jobs))
    for result in plan.finished:
        reporter.line(result)
    interrupted = False
    previous = signal.signal(signal.SIGTERM, _terminate)  # stop like Ctrl-C: workers, Ray and the report tidied
    try:
        if args.dry_run:
            for job in plan.jobs:
                reporter.line_checked(job)
        elif args.ray:
            from ..core.prerender.engines import run_ray

            header["engine"] = run_ray(plan.jobs, args.ray, workers, reporter.line)
        else:
            from ..core.prerender.engines import run_local

            run_local(plan.jobs, workers, reporter.line)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        signal.signal(signal.SIGTERM, previous)
    return reporter.finish(out_dir, header, interrupted, len(manifest.outside_paths))


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt


def _default_outputs(text: str) -> tuple[str, ...]:
    from ..core.prerender.manifest import OUTPUT_KINDS

    kinds = [k.strip().lower() for k in text.replace(";", ",").replace(" ", ",").split(",") if k.strip()]
    unknown = [k for k in kinds if k not in OUTPUT_KINDS]
    if unknown or not kinds:
        raise ControlError(f"--outputs takes any of {', '.join(OUTPUT_KINDS)}, got {text!r}")
    return tuple(k for k in OUTPUT_KINDS if k in kinds)


class _Reporter:
    """Progress on stderr (bar) or stdout (JSON events), the failures on stderr, the reports at the end."""

    def __init__(self, mode: str, total: int):
        from ..core.prerender.report import RunTally

        self.json = mode == "json"
        self.tally = RunTally(total=total)
        self.bar = Progress(total, "prerender", unit="lines") if mode in ("auto", "bar") else None
        if self.bar is not None and mode == "bar":
            self.bar.enabled = True

    def emit(self, event: dict) -> None:
        if self.json:
            print(json.dumps(event), flush=True)

    def start(self, header: dict, to_run: int) -> None:
        self.emit({"event": "start", **header, "lines": self.tally.total, "to_run": to_run})

    def line(self, result) -> None:
        from ..core.prerender.report import bar_detail, line_event

        self.tally.add(result)
        self.emit(line_event(self.tally, result))
        if result.status == "failed" and not self.json:
            self._clear_bar()
            print(f"npcface prerender: manifest line {result.line_no} (id {result.id or '?'}): {result.reason}",
                  file=sys.stderr, flush=True)
        if self.bar is not None:
            self.bar.update(self.tally.settled, bar_detail(self.tally))

    def line_checked(self, job) -> None:
        from ..core.prerender.line import LineResult

        self.line(LineResult(id=job.row.id, line_no=job.row.line_no, status="checked"))

    def _clear_bar(self) -> None:
        if self.bar is not None and self.bar.enabled:
            self.bar.stream.write("\r\033[K")

    def finish(self, out_dir: Path, header: dict, interrupted: bool, outside: int) -> int:
        from ..core.prerender.report import write_reports

        if self.bar is not None:
            self.bar.close()
        counts = self.tally.counts()
        checked = self.tally.count("checked")
        report = write_reports(out_dir, self.tally, header, interrupted)
        self.emit({"event": "end", **counts, "checked": checked, "interrupted": interrupted, "report": str(report)})
        if header["dry_run"]:
            summary = f"dry run: {checked} lines ready, {counts['failed']} with problems of {counts['total']}"
        else:
            summary = (f"{counts['done']} done, {counts['skipped']} already done, {counts['failed']} failed "
                       f"of {counts['total']} lines ({self.tally.lines_per_min():.1f} lines/min, {header['engine']})")
        if outside:
            summary += f"; {outside} path(s) lead outside the manifest's folder (see the report)"
        if interrupted:
            summary += "; interrupted: re-run to finish"
        print(f"prerender: {summary}; report: {report}", file=sys.stderr if self.json else sys.stdout, flush=True)
        if interrupted:
            return 130
        return 1 if counts["failed"] else 0
