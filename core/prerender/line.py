"""One manifest row -> its outputs on disk: the function both prerender engines run (a local
process pool and Ray), so they cannot differ.

Safety: every output is written to ``OUT/.partial/`` first and moved into place with os.replace
(atomic on one file system), and the line's done-marker ``OUT/.done/<id>.json`` (its input key and
output names) is written last. A kill at any moment leaves each output either whole or absent; a
line without a current marker is simply done again. The key hashes everything that decides the
outputs: audio bytes, text, language, emotions, avatar bytes, seed, fps, outputs, motion (and its
weights' bytes), render and export settings, and the npcface code itself.
"""
from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import NpcfaceError
from .manifest import ManifestRow

PARTIAL = ".partial"
DONE = ".done"
RIGS = ".rigs"
_PACKAGE = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class LineSettings:
    """Run-wide settings (from the command line) that every line's outputs depend on."""

    out_dir: Path
    size: tuple[int, int] = (512, 512)
    framing: str = "picture"
    unity_path: str = "Face"
    godot_path: str = "Face"
    name_style: str = "livelink"
    code_version: str = ""
    render_threads: int = 2


@dataclass(frozen=True)
class LineJob:
    """A row ready to run: its key, and the rig built for its avatar (shared by path)."""

    row: ManifestRow
    settings: LineSettings
    key: str
    rig_path: Path | None


@dataclass(frozen=True)
class LineResult:
    id: str
    line_no: int
    status: str  # "done", "skipped" (already done with the same key) or "failed"
    seconds: float = 0.0
    outputs: tuple[str, ...] = ()
    reason: str = ""
    worker: str = ""
    peak_rss_mb: float = 0.0
    cpu_seconds: float = 0.0  # CPU time of the worker process on this line (all its threads)


def output_names(row: ManifestRow) -> tuple[str, ...]:
    """File (or folder, for png) names of the row's outputs, inside OUT."""
    names = {"mp4": f"{row.id}.mp4", "png": f"{row.id}_frames", "csv": f"{row.id}.csv", "json": f"{row.id}.json",
             "anim": f"{row.id}.anim", "tres": f"{row.id}.tres", "plot": f"{row.id}_curves.png"}
    return tuple(names[kind] for kind in row.outputs)


def code_version() -> str:
    """A hash of npcface's own source and shipped weights: a new release redoes every line."""
    digest = hashlib.sha256()
    for folder in ("core", "models"):
        for path in sorted((_PACKAGE / folder).rglob("*")):
            if path.suffix in (".py", ".safetensors") and path.is_file():
                digest.update(str(path.relative_to(_PACKAGE)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def line_key(row: ManifestRow, settings: LineSettings, digest=file_digest) -> str:
    """The content hash of everything that decides this row's outputs (``digest(path)``: a file's
    content hash, see prerender_plan.DigestCache)."""
    rendered = any(kind in ("mp4", "png") for kind in row.outputs)
    exports = {"unity_path": settings.unity_path, "godot_path": settings.godot_path,
               "name_style": settings.name_style}
    inputs = {
        "audio": digest(row.audio), "text": row.text, "language": row.language,
        "emotions": [[e.time, e.emotion, e.intensity, e.ramp] for e in row.emotions],
        "avatar": digest(row.avatar) if row.avatar is not None and rendered else None,
        "seed": row.seed, "fps": row.fps, "outputs": list(row.outputs), "motion": row.motion,
        "motion_weights": digest(Path(row.motion)) if row.motion.endswith(".safetensors") else None,
        "render": [list(settings.size), settings.framing] if rendered else None,
        "exports": exports if {"anim", "tres"} & set(row.outputs) else None,
        "code": settings.code_version,
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def marker_path(out_dir: Path, line_id: str) -> Path:
    return out_dir / DONE / f"{line_id}.json"


def is_done(job: LineJob) -> bool:
    """The line's marker holds this key and every output it names is there."""
    try:
        marker = json.loads(marker_path(job.settings.out_dir, job.row.id).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    out = job.settings.out_dir
    return (marker.get("key") == job.key and marker.get("outputs") == list(output_names(job.row))
            and all((out / name).exists() for name in marker["outputs"]))


# ---------------------------------------------------------------------------- the work

_worker_ready = False
_rigs: dict[Path, object] = {}


def warm_worker() -> None:
    """Once per worker process: load the phone decoders now, not inside the first line's time."""
    global _worker_ready
    if _worker_ready:
        return
    from ..phonetics.timeline import warm_up

    warm_up(1)
    _worker_ready = True


def run_line(job: LineJob) -> LineResult:
    """Do one line (see the module notes). Never raises for a problem with the line: the result
    says it failed and why, and the other lines go on."""
    warm_worker()
    started, cpu_started = time.perf_counter(), time.process_time()
    row = job.row
    try:
        _unlink(marker_path(job.settings.out_dir, row.id))  # from now on the old outputs are stale
        _write_outputs(job)
        _write_marker(job, time.perf_counter() - started)
        status, reason = "done", ""
    except NpcfaceError as error:
        status, reason = "failed", str(error)
    except MemoryError:
        status, reason = "failed", "out of memory"
    except Exception as error:  # a bug must not stop the other lines; the report names it
        status, reason = "failed", f"internal error: {type(error).__name__}: {error}"
    return LineResult(id=row.id, line_no=row.line_no, status=status, seconds=time.perf_counter() - started,
                      outputs=output_names(row) if status == "done" else (), reason=reason,
                      worker=f"{os.uname().nodename}:{os.getpid()}", peak_rss_mb=_peak_rss_mb(),
                      cpu_seconds=time.process_time() - cpu_started)


def _write_outputs(job: LineJob) -> None:
    from ..audio.decode import load_audio
    from ..motion.backends import make_generator
    from ..types import Controls

    row, settings = job.row, job.settings
    controls = Controls(fps=row.fps, seed=row.seed, language=row.language)
    audio = load_audio(row.audio)
    track = make_generator(row.motion, controls).animate(audio, text=row.text, emotions=list(row.emotions))
    names = dict(zip(row.outputs, output_names(row)))
    for kind, name in names.items():
        final = settings.out_dir / name
        with _atomic(final, settings.out_dir) as temp:
            _write_one(kind, temp, job, track, audio)


def _write_one(kind: str, temp: Path, job: LineJob, track, audio) -> None:
    row, settings = job.row, job.settings
    if kind == "csv":
        from ..formats.livelink import write_livelink_csv

        write_livelink_csv(track, temp)
    elif kind == "json":
        from ..formats.livelink import write_motion_json

        write_motion_json(track, temp)
    elif kind == "anim":
        from ..formats.unity_anim import write_unity_anim

        write_unity_anim(track, temp, row.id, settings.unity_path, settings.name_style)
    elif kind == "tres":
        from ..formats.godot_anim import write_godot_animation

        write_godot_animation(track, temp, row.id, settings.godot_path, settings.name_style)
    elif kind == "plot":
        from ..formats.plot import plot_motion

        plot_motion(track, audio, temp, title=row.id)
    else:  # mp4 or png frames: the renderer `npcface render` uses
        from ..render.to_file import line_id_of, render_track_to_file

        render_track_to_file(_rig(job), track, audio, temp, "mp4" if kind == "mp4" else "frames",
                             size=settings.size, framing=settings.framing, workers=settings.render_threads,
                             line_id=line_id_of(audio, row.text))


def _rig(job: LineJob):
    from ..render.rig import Rig

    if job.rig_path is None:
        raise NpcfaceError("no rig was built for this line's avatar")
    if job.rig_path not in _rigs:
        _rigs[job.rig_path] = Rig.load(job.rig_path)
    return _rigs[job.rig_path]


class _atomic:
    """``with _atomic(final, out) as temp``: write temp (file or folder) in OUT/.partial, then
    move it onto ``final`` in one rename; on an error the temp goes and ``final`` is untouched."""

    def __init__(self, final: Path, out_dir: Path):
        self.final = final
        partial = out_dir / PARTIAL
        partial.mkdir(exist_ok=True)
        # keep the suffix: writers pick the format from it
        self.temp = partial / f"{os.getpid()}-{time.monotonic_ns()}-{final.name}"

    def __enter__(self) -> Path:
        return self.temp

    def __exit__(self, kind, value, traceback) -> None:
        if kind is not None:
            _remove(self.temp)
            return
        if self.temp.is_dir():
            if self.final.exists():  # a folder cannot be replaced in one step: move the old one aside
                old = self.temp.with_name(self.temp.name + ".old")
                os.replace(self.final, old)
                _remove(old)
            os.replace(self.temp, self.final)
        else:
            if self.final.is_dir():
                _remove(self.final)
            os.replace(self.temp, self.final)


def _write_marker(job: LineJob, seconds: float) -> None:
    path = marker_path(job.settings.out_dir, job.row.id)
    path.parent.mkdir(exist_ok=True)
    temp = job.settings.out_dir / PARTIAL / f"{os.getpid()}-{job.row.id}.done"
    temp.write_text(json.dumps({"key": job.key, "outputs": list(output_names(job.row)),
                                "seconds": round(seconds, 3)}), encoding="utf-8")
    os.replace(temp, path)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        _unlink(path)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux reports KiB


def result_dict(result: LineResult) -> dict:
    values = asdict(result)
    values["outputs"] = list(result.outputs)
    values["seconds"] = round(result.seconds, 3)
    values["peak_rss_mb"] = round(result.peak_rss_mb, 1)
    values["cpu_seconds"] = round(result.cpu_seconds, 3)
    return values
