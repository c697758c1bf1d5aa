"""Before any line runs: key every row, skip the rows already done, build each avatar's rig once
(cached in ``OUT/.rigs/`` by the picture's bytes, so workers share it by path and a re-run does
not rig again), and, for ``--dry-run``, check that every row's audio decodes and face is found."""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import NpcfaceError
from .line import PARTIAL, RIGS, LineJob, LineResult, LineSettings, file_digest, is_done, line_key, output_names
from .manifest import RENDERED_KINDS, Manifest, ManifestRow

DIGESTS = ".digests.json"


@dataclass(frozen=True)
class Plan:
    jobs: tuple[LineJob, ...]  # lines to run
    finished: tuple[LineResult, ...]  # lines settled before running: skipped (done) or failed (bad row)


def prepare_output(out_dir: Path) -> None:
    """Create OUT if needed, check it takes files, and clear what a killed run left half-written."""
    if out_dir.exists() and not out_dir.is_dir():
        raise NpcfaceError(f"output folder {out_dir} is a file")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe = out_dir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise NpcfaceError(f"output folder {out_dir} is not writable: {error.strerror or error}") from None
    shutil.rmtree(out_dir / PARTIAL, ignore_errors=True)  # temp files of lines a kill interrupted


class DigestCache:
    """Content hashes of input files, kept in ``OUT/.digests.json`` by path with the file's size and
    modification time (as git and make trust them), so a re-run of thousands of unchanged lines
    does not read all their audio again. A file rewritten with new content gets a new stamp."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / DIGESTS
        try:
            self.known = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.known = {}
        self.changed = False

    def __call__(self, path: Path) -> str:
        stat = path.stat()
        stamp = [stat.st_size, stat.st_mtime_ns]
        entry = self.known.get(str(path))
        if isinstance(entry, list) and len(entry) == 3 and entry[:2] == stamp:
            return entry[2]
        digest = file_digest(path)
        self.known[str(path)] = stamp + [digest]
        self.changed = True
        return digest

    def save(self) -> None:
        if self.changed:
            temp = self.path.parent / PARTIAL / f"{os.getpid()}-{DIGESTS}"
            temp.parent.mkdir(exist_ok=True)
            temp.write_text(json.dumps(self.known), encoding="utf-8")
            os.replace(temp, self.path)


def plan_run(manifest: Manifest, settings: LineSettings, dry_run: bool = False) -> Plan:
    digests = DigestCache(settings.out_dir)
    finished = [LineResult(id=p.id, line_no=p.line_no, status="failed", reason=p.reason) for p in manifest.problems]
    candidates: list[LineJob] = []
    for row in manifest.rows:
        try:
            job = LineJob(row=row, settings=settings, key=line_key(row, settings, digests), rig_path=None)
        except OSError as error:
            finished.append(_failed(row, f"cannot read an input: {error.strerror or error}"))
            continue
        if not dry_run and is_done(job):
            finished.append(LineResult(id=row.id, line_no=row.line_no, status="skipped",
                                       outputs=output_names(row)))
        else:
            candidates.append(job)
    digests.save()
    rigs = _build_rigs([j.row for j in candidates if dry_run or _rendered(j.row)], settings.out_dir)
    jobs = []
    for job in candidates:
        rig = rigs.get(job.row.avatar) if job.row.avatar is not None else None
        if isinstance(rig, str) and (dry_run or _rendered(job.row)):
            finished.append(_failed(job.row, rig))
            continue
        if dry_run:
            problem = _audio_problem(job.row)
            if problem:
                finished.append(_failed(job.row, problem))
                continue
        jobs.append(LineJob(row=job.row, settings=settings, key=job.key,
                            rig_path=rig if isinstance(rig, Path) else None))
    return Plan(jobs=tuple(jobs), finished=tuple(sorted(finished, key=lambda r: r.line_no)))


def _rendered(row: ManifestRow) -> bool:
    return any(kind in RENDERED_KINDS for kind in row.outputs)


def _failed(row: ManifestRow, reason: str) -> LineResult:
    return LineResult(id=row.id, line_no=row.line_no, status="failed", reason=reason)


def _build_rigs(rows: list[ManifestRow], out_dir: Path) -> dict[Path, Path | str]:
    """Each distinct avatar -> its rig file, or the reason it has none (no face, not a picture)."""
    rigs: dict[Path, Path | str] = {}
    for avatar in dict.fromkeys(row.avatar for row in rows if row.avatar is not None):
        try:
            rigs[avatar] = _rig_file(avatar, out_dir)
        except NpcfaceError as error:
            rigs[avatar] = f"avatar {avatar.name}: {error}"
        except OSError as error:
            rigs[avatar] = f"avatar {avatar.name}: {error.strerror or error}"
    return rigs


def _rig_file(avatar: Path, out_dir: Path) -> Path:
    from ..render.rig import Rig, rig_from_file

    if avatar.suffix.lower() == ".rig":
        Rig.load(avatar)  # a rig of another version or a damaged file fails here, once
        return avatar
    cached = out_dir / RIGS / f"{file_digest(avatar)[:32]}.rig"
    if cached.is_file():
        return cached
    rig = rig_from_file(avatar, name=avatar.name)
    cached.parent.mkdir(exist_ok=True)
    (out_dir / PARTIAL).mkdir(exist_ok=True)
    temp = out_dir / PARTIAL / f"{os.getpid()}-{cached.name}"
    rig.save(temp)
    os.replace(temp, cached)
    return cached


def _audio_problem(row: ManifestRow) -> str:
    from ..audio.decode import load_audio

    try:
        load_audio(row.audio)
    except NpcfaceError as error:
        return str(error)
    return ""
