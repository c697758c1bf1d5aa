"""The prerender manifest: one dialogue line per row, as CSV (with a header) or JSON Lines.

Columns (JSONL: keys), paths relative to the manifest's folder:

- ``id`` (required): names the line's outputs (letters, digits, ``._-``; unique, ignoring case)
- ``audio`` (required): the line's audio file
- ``text`` or ``text_file``: what is said (optional; enables forced alignment in English)
- ``language``: default ``en-us``
- ``emotion``: ``NAME[:INTENSITY]`` then timed changes ``TIME=NAME[:INTENSITY]``, separated by
  ``;`` or spaces, e.g. ``happy:0.8; 1.5=angry:0.6`` (JSONL: that string, or a list of them)
- ``avatar``: a picture with a face or a ``.rig`` file (needed for ``mp4`` and ``png``)
- ``seed``, ``fps``: integers / frames per second (defaults from the command line)
- ``outputs``: any of ``mp4 png csv json anim tres plot`` separated by spaces, ``;``, ``|`` or ``,``
  (JSONL: a list too); default from the command line
- ``motion``: ``rules``, ``learned`` or a ``.safetensors`` file

A problem with the file as a whole (not CSV/JSONL, a missing or unknown column, duplicate ids)
raises FormatError; a problem with one row (a missing file, a bad emotion) is recorded with the
row's manifest line number and id, and the other rows go on.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import FormatError, NpcfaceError
from ..types import EmotionEvent

OUTPUT_KINDS = ("mp4", "png", "csv", "json", "anim", "tres", "plot")
RENDERED_KINDS = ("mp4", "png")
REQUIRED_COLUMNS = ("id", "audio")
OPTIONAL_COLUMNS = ("text", "text_file", "language", "emotion", "avatar", "seed", "fps", "outputs", "motion")
RESERVED_IDS = ("report",)  # report.json / report.md live beside the lines' outputs
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_SEPARATORS = re.compile(r"[\s;|,]+")


@dataclass(frozen=True)
class LineDefaults:
    """What a row gets for a column it leaves empty (from the command line)."""

    outputs: tuple[str, ...] = ("json",)
    fps: float = 30.0
    seed: int = 0
    language: str = "en-us"
    motion: str | None = None


@dataclass(frozen=True)
class ManifestRow:
    """One validated line to prerender."""

    line_no: int  # where it is in the manifest file (1 = the first line)
    id: str
    audio: Path
    text: str | None
    language: str
    emotions: tuple[EmotionEvent, ...]
    avatar: Path | None
    seed: int
    fps: float
    outputs: tuple[str, ...]
    motion: str  # "rules", "learned" or a weights file path
    outside: tuple[str, ...] = ()  # paths given that lead out of the manifest's folder

    def where(self) -> str:
        return f"manifest line {self.line_no} (id {self.id})"


@dataclass(frozen=True)
class RowProblem:
    line_no: int
    id: str
    reason: str

    def __str__(self) -> str:
        return f"manifest line {self.line_no} (id {self.id or '?'}): {self.reason}"


@dataclass(frozen=True)
class Manifest:
    path: Path
    rows: tuple[ManifestRow, ...]
    problems: tuple[RowProblem, ...] = field(default=())

    @property
    def outside_paths(self) -> list[tuple[ManifestRow, str]]:
        return [(row, path) for row in self.rows for path in row.outside]


def read_manifest(path: str | Path, defaults: LineDefaults = LineDefaults()) -> Manifest:
    """Parse and validate a manifest (see the module notes). FormatError for the file as a whole."""
    path = Path(path)
    records = _records(path)
    _check_ids(path, records)
    rows, problems = [], []
    for line_no, record in records:
        try:
            rows.append(_row(path.parent, line_no, record, defaults))
        except NpcfaceError as error:
            problems.append(RowProblem(line_no, str(record.get("id") or "").strip(), str(error)))
    return Manifest(path=path, rows=tuple(rows), problems=tuple(problems))


def _records(path: Path) -> list[tuple[int, dict]]:
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl", ".ndjson"):
        raise FormatError(f"{path}: a manifest must be CSV (.csv) or JSON Lines (.jsonl), got {suffix or 'no suffix'!r}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise FormatError(f"{path}: manifest not found") from None
    except UnicodeDecodeError:
        raise FormatError(f"{path}: manifest is not UTF-8 text") from None
    except OSError as error:
        raise FormatError(f"cannot read manifest {path}: {error.strerror or error}") from None
    if "\x00" in text:
        raise FormatError(f"{path}: manifest is not text (it holds NUL bytes)")
    records = _csv_records(path, text) if suffix == ".csv" else _jsonl_records(path, text)
    if not records:
        raise FormatError(f"{path}: manifest has no rows")
    return records


def _csv_records(path: Path, text: str) -> list[tuple[int, dict]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader, None)
        if header is None:
            raise FormatError(f"{path}: manifest is empty")
        columns = [name.strip().lower() for name in header]
        _check_columns(path, columns)
        records = []
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(columns):
                raise FormatError(f"{path}: line {reader.line_num} has {len(values)} fields, the header {len(columns)}")
            records.append((reader.line_num, dict(zip(columns, values))))
    except csv.Error as error:
        raise FormatError(f"{path}: not valid CSV ({error})") from None
    return records


def _jsonl_records(path: Path, text: str) -> list[tuple[int, dict]]:
    records = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise FormatError(f"{path}: line {line_no} is not JSON ({error.msg})") from None
        if not isinstance(record, dict):
            raise FormatError(f"{path}: line {line_no} is not a JSON object")
        record = {str(key).lower(): value for key, value in record.items()}
        _check_columns(path, list(record), line_no)
        records.append((line_no, record))
    return records


def _check_columns(path: Path, columns: list[str], line_no: int | None = None) -> None:
    where = f"line {line_no}" if line_no is not None else "header"
    missing = [name for name in REQUIRED_COLUMNS if name not in columns]
    if missing:
        raise FormatError(f"{path}: {where} lacks the column(s) {', '.join(missing)} "
                          f"(needed: {', '.join(REQUIRED_COLUMNS)})")
    unknown = [name for name in columns if name not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise FormatError(f"{path}: {where} has unknown column(s) {', '.join(map(repr, unknown))} "
                          f"(known: {', '.join(REQUIRED_COLUMNS + OPTIONAL_COLUMNS)})")
    if len(set(columns)) != len(columns):
        raise FormatError(f"{path}: {where} names a column twice")


def _check_ids(path: Path, records: list[tuple[int, dict]]) -> None:
    seen: dict[str, int] = {}
    for line_no, record in records:
        key = str(record.get("id") or "").strip().lower()
        if not key:
            continue  # a row problem, reported with the row
        if key in seen:  # ignoring case: the outputs must not collide on a case-insensitive disk
            raise FormatError(f"{path}: duplicate id {str(record['id']).strip()!r} on lines {seen[key]} and {line_no}")
        seen[key] = line_no


def _row(folder: Path, line_no: int, record: dict, defaults: LineDefaults) -> ManifestRow:
    from ..motion.backends import check_motion
    from ..phonetics.timeline import normalise_language

    line_id = _text(record.get("id"))
    if not line_id or not _ID.match(line_id):
        raise FormatError(f"id must be letters, digits, '.', '_' or '-' (up to 128), got {line_id!r}")
    if line_id.lower() in RESERVED_IDS:
        raise FormatError(f"id {line_id!r} is reserved for the run's report")
    outside: list[str] = []
    audio = _file(folder, record.get("audio"), "audio", outside)
    text = _text(record.get("text")) or None
    text_file = _text(record.get("text_file"))
    if text and text_file:
        raise FormatError("give text or text_file, not both")
    if text_file:
        text = _read_text(_file(folder, text_file, "text_file", outside))
    avatar_name = _text(record.get("avatar"))
    avatar = _file(folder, avatar_name, "avatar", outside) if avatar_name else None
    outputs = _outputs(record.get("outputs"), defaults.outputs)
    if avatar is None and any(kind in RENDERED_KINDS for kind in outputs):
        raise FormatError(f"outputs {', '.join(k for k in outputs if k in RENDERED_KINDS)} need an avatar")
    motion = _text(record.get("motion")) or defaults.motion
    if motion and motion.lower().endswith(".safetensors"):
        motion = str(_file(folder, motion, "motion", outside))
    return ManifestRow(
        line_no=line_no, id=line_id, audio=audio, text=text,
        language=normalise_language(_text(record.get("language")) or defaults.language),
        emotions=_emotions(record.get("emotion")), avatar=avatar,
        seed=_integer(record.get("seed"), defaults.seed, "seed"),
        fps=_fps(record.get("fps"), defaults.fps), outputs=outputs, motion=check_motion(motion),
        outside=tuple(outside))


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        raise FormatError(f"expected text, got {type(value).__name__}")
    return str(value).strip()


def _file(folder: Path, name: object, column: str, outside: list[str]) -> Path:
    name = _text(name)
    if not name:
        raise FormatError(f"{column} is empty")
    path = Path(name).expanduser()
    if not path.is_absolute():
        path = folder / path
    resolved = Path(os.path.abspath(path))  # `..` resolved, links kept: what the user wrote
    if not resolved.is_relative_to(Path(os.path.abspath(folder))):
        outside.append(name)
    if not resolved.is_file():
        raise FormatError(f"{column} file not found: {name}")
    return resolved


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        raise FormatError(f"text_file is not UTF-8 text: {path.name}") from None
    except OSError as error:
        raise FormatError(f"cannot read text_file {path.name}: {error.strerror or error}") from None


def _outputs(value: object, default: tuple[str, ...]) -> tuple[str, ...]:
    if value is None or value == "" or value == []:
        return default
    names = value if isinstance(value, list) else _SEPARATORS.split(_text(value))
    kinds = [str(name).strip().lower() for name in names if str(name).strip()]
    unknown = [kind for kind in kinds if kind not in OUTPUT_KINDS]
    if unknown:
        raise FormatError(f"unknown output(s) {', '.join(map(repr, unknown))} (known: {' '.join(OUTPUT_KINDS)})")
    return tuple(kind for kind in OUTPUT_KINDS if kind in kinds) or default


def _emotions(value: object) -> tuple[EmotionEvent, ...]:
    from ..motion.emotion import parse_emotion, parse_emotion_change

    parts = value if isinstance(value, list) else [p for p in re.split(r"[;\s]+", _text(value)) if p]
    events = [EmotionEvent(0.0, "neutral", 1.0, ramp=0.0)]
    for index, part in enumerate(str(p).strip() for p in parts):
        if "=" in part:
            events.append(parse_emotion_change(part, "emotion change"))
            continue
        if index:
            raise FormatError(f"emotion changes need TIME=NAME[:INTENSITY], got {part!r}")
        name, intensity = parse_emotion(part)
        events[0] = EmotionEvent(0.0, name, intensity, ramp=0.0)
    return tuple(events)


def _integer(value: object, default: int, column: str) -> int:
    text = _text(value)
    if not text:
        return default
    try:
        return int(text)
    except ValueError:
        raise FormatError(f"{column} must be an integer, got {text!r}") from None


def _fps(value: object, default: float) -> float:
    text = _text(value)
    if not text:
        return default
    try:
        fps = float(text)
    except ValueError:
        fps = float("nan")
    if not math.isfinite(fps) or not 1 <= fps <= 240:
        raise FormatError(f"fps must be a number from 1 to 240, got {text!r}")
    return fps
