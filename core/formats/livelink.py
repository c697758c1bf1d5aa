"""Live Link Face CSV and npcface motion JSON: read and write MotionTracks.

CSV (what the Live Link Face iPhone app exports; Unreal, Maya and MotionBuilder tools read it):
``Timecode,BlendShapeCount,<52 ARKit names>,<9 pose names>``, one row per captured frame.

Reading accepts every variant seen in real files: ``BlendShapeCount`` or ``BlendshapeCount``,
columns in any order and any letter case, 30 or 60 fps data, timecodes ``HH:MM:SS:FF`` or
``HH:MM:SS:FF.fff`` (FF is a frame of the timecode rate, .fff a fraction of a frame; the app
writes a 60 fps timecode even for 30 fps data, stepping FF by 2). Times come from the timecodes:
- the timecode rate is inferred as the smallest standard rate above the largest FF seen (when the
  take crosses a second boundary; a shorter take is assumed to use 60, the app's rate), or given;
- rows that repeat the previous timecode are dropped (the later copy);
- a timecode that jumps back by about a day is a midnight wrap and is unwrapped; any other jump
  back, or forward by over a second (a restarted clock), is spliced on one frame after the
  previous row (shorter forward gaps are dropped frames and are kept as gaps);
- times start at 0 on the first row; ``fps`` is 1 / the median frame step.
The pose columns are optional (zeros when absent); blendshapes are clipped to [0, 1] (ARKit
overshoots slightly, e.g. 1.003).

Angles: Live Link Face writes radians, and its signs are the opposite of npcface's on every axis.
npcface: head yaw + = turned to its own left, pitch + = chin up, roll + = tilted toward its own
left shoulder; eye yaw + = looking to its left, eye pitch + = looking up; all in degrees.
The eye columns were checked against the EyeLook blendshapes in two real takes (LeftEyeYaw rises
with EyeLookInLeft, eye pitch with EyeLookDown, ~0.6 rad at full look-out); the head columns are
zero in both real takes we have, so their signs are assumed to follow the eyes'. Eye roll is
dropped on read and written as 0.

Writing gives the canonical form: ``Timecode,BlendShapeCount,`` + ARKIT_NAMES +
LIVELINK_POSE_NAMES, count 61, one row per frame with a 60 fps timecode of the frame's time
(``HH:MM:SS:FF.fff``, the app's own form), so rows step at the track's fps.

JSON (``write_motion_json``), easy for engines (Unity's JsonUtility, Godot's JSON) to parse::

    {"format": "npcface-motion", "version": 1, "fps": 60.0,
     "blendshape_names": [52 names, ARKit / Live Link order],
     "frames": [{"time": 0.0, "head_rotation": [yaw, pitch, roll],
                 "head_translation": [x, y, z], "gaze_left": [yaw, pitch],
                 "gaze_right": [yaw, pitch], "blendshapes": [52 weights]}, ...],
     "phone_source": "aligned",                                    # optional, with phones
     "phones": [{"label": "AA", "start": 0.1, "end": 0.2}, ...]}   # optional

Angles in degrees, translation in metres, weights in [0, 1].
"""
from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path

import numpy as np

from ..arkit import ARKIT_NAMES, LIVELINK_POSE_NAMES
from ..errors import FormatError
from ..types import MotionTrack, Phone, PhoneTimeline

STANDARD_TIMECODE_RATES = (24, 25, 30, 48, 50, 60, 100, 120, 240)
WRITE_TIMECODE_RATE = 60
DAY_S = 86_400.0
MAX_GAP_S = 1.0  # a larger jump in the timecode is a clock restart, not dropped frames
_TIMECODE = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})[:;](\d{1,3})(?:\.(\d+))?$")
_COUNT_HEADERS = ("blendshapecount",)
JSON_FORMAT = "npcface-motion"
JSON_VERSION = 1


# ---------------------------------------------------------------------------- CSV reading

def read_livelink_csv(path: str | Path, timecode_rate: float | None = None) -> MotionTrack:
    """Parse a Live Link Face CSV (any real variant) into a MotionTrack. See the module notes."""
    path = Path(path)
    rows = _read_rows(path)
    columns = _column_indices(path, rows[0])
    data = rows[1:]
    if not data:
        raise FormatError(f"{path}: has a header but no data rows")
    width = len(rows[0])
    for line, row in enumerate(data, start=2):
        if len(row) != width:
            raise FormatError(f"{path}: row {line} has {len(row)} fields, the header has {width}")

    timecodes = [_parse_timecode(path, line, row[0]) for line, row in enumerate(data, start=2)]
    rate = float(timecode_rate) if timecode_rate else _infer_timecode_rate(timecodes)
    if not math.isfinite(rate) or rate <= 0:
        raise FormatError(f"{path}: timecode rate must be positive, got {timecode_rate}")
    raw_times = np.array([s + frames / rate for s, frames in timecodes])
    keep, times = _clean_times(raw_times)

    values = _numeric_block(path, data, columns)[keep]
    blendshapes = np.clip(values[:, :len(ARKIT_NAMES)], 0.0, 1.0).astype(np.float32)
    pose = -np.degrees(values[:, len(ARKIT_NAMES):])  # radians, opposite signs (module notes)
    gaze = np.stack([pose[:, 3:5], pose[:, 6:8]], axis=1)  # (T, eye, (yaw, pitch))
    return MotionTrack(
        fps=_frame_rate(times), times=times, head_rotation=pose[:, 0:3].copy(),
        head_translation=np.zeros((len(times), 3)), gaze=gaze, blendshapes=blendshapes,
    )


def first_timecode_s(path: str | Path, timecode_rate: float | None = None) -> float:
    """The first row's timecode in seconds of the day: where the take starts on the capture clock
    (the same clock the app writes into its reference video's timecode track)."""
    path = Path(path)
    rows = _read_rows(path)
    _column_indices(path, rows[0])
    if len(rows) < 2:
        raise FormatError(f"{path}: has a header but no data rows")
    timecodes = [_parse_timecode(path, line, row[0]) for line, row in enumerate(rows[1:], start=2)]
    rate = float(timecode_rate) if timecode_rate else _infer_timecode_rate(timecodes)
    seconds, frames = timecodes[0]
    return seconds + frames / rate


def _read_rows(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise FormatError(f"{path}: no such CSV file")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise FormatError(f"{path}: not a text CSV (byte {exc.start} is not UTF-8)") from exc
    rows = [row for row in csv.reader(text.splitlines()) if any(cell.strip() for cell in row)]
    if not rows:
        raise FormatError(f"{path}: empty file, expected a Live Link Face CSV header")
    return [[cell.strip() for cell in row] for row in rows]


def _column_indices(path: Path, header: list[str]) -> list[int | None]:
    """Index of each ARKit then pose column in the header (None for an absent pose column)."""
    lowered = [name.lower() for name in header]
    if len(header) < 2 or lowered[0] != "timecode" or lowered[1] not in _COUNT_HEADERS:
        raise FormatError(f"{path}: header must start with Timecode,BlendShapeCount; "
                          f"got {','.join(header[:2])!r}")
    position = {name: i for i, name in enumerate(lowered)}
    missing = [name for name in ARKIT_NAMES if name.lower() not in position]
    if missing:
        raise FormatError(f"{path}: missing blendshape column(s) {', '.join(missing)}")
    return [position.get(name.lower()) for name in ARKIT_NAMES + LIVELINK_POSE_NAMES]


def _numeric_block(path: Path, data: list[list[str]], columns: list[int | None]) -> np.ndarray:
    names = ARKIT_NAMES + LIVELINK_POSE_NAMES
    block = np.zeros((len(data), len(names)), dtype=np.float64)
    for line, row in enumerate(data, start=2):
        for j, column in enumerate(columns):
            if column is None:
                continue
            try:
                value = float(row[column])
            except ValueError:
                raise FormatError(f"{path}: row {line}, column {names[j]}: "
                                  f"{row[column]!r} is not a number") from None
            if not math.isfinite(value):
                raise FormatError(f"{path}: row {line}, column {names[j]}: {row[column]!r} is not finite")
            block[line - 2, j] = value
    return block


def _parse_timecode(path: Path, line: int, text: str) -> tuple[int, float]:
    """(whole seconds of the day, frames into that second including the fraction)."""
    match = _TIMECODE.match(text)
    if not match:
        raise FormatError(f"{path}: row {line}, column Timecode: {text!r} is not HH:MM:SS:FF[.fff]")
    hours, minutes, seconds, frame = (int(match.group(i)) for i in range(1, 5))
    if minutes >= 60 or seconds >= 60:
        raise FormatError(f"{path}: row {line}, column Timecode: {text!r} has minutes/seconds over 59")
    fraction = float("0." + match.group(5)) if match.group(5) else 0.0
    return hours * 3600 + minutes * 60 + seconds, frame + fraction


def _infer_timecode_rate(timecodes: list[tuple[int, float]]) -> float:
    largest_frame = max(int(frames) for _, frames in timecodes)
    crosses_second = len({s for s, _ in timecodes}) > 1
    for rate in STANDARD_TIMECODE_RATES:
        if rate > largest_frame and (crosses_second or rate >= WRITE_TIMECODE_RATE):
            return float(rate)
    return float(largest_frame + 1)


def _clean_times(raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drop repeated timecodes, unwrap midnight, splice clock restarts; times from 0."""
    steps = np.diff(raw)
    forward = steps[steps > 1e-9]
    nominal = float(np.median(forward)) if len(forward) else 1.0 / WRITE_TIMECODE_RATE
    keep = [0]
    times = [0.0]
    previous = raw[0]
    offset = 0.0  # added to raw times after a wrap or a restart
    for i in range(1, len(raw)):
        step = raw[i] + offset - previous
        if abs(step + DAY_S) < MAX_GAP_S:  # midnight wrap
            offset += DAY_S
            step += DAY_S
        if abs(step) <= 1e-9:
            continue  # repeated timecode
        if step < 0 or step > MAX_GAP_S:  # the clock restarted or jumped: one frame after the last row
            offset += nominal - step
            step = nominal
        previous = raw[i] + offset
        keep.append(i)
        times.append(times[-1] + step)
    return np.array(keep), np.array(times, dtype=np.float64)


def _frame_rate(times: np.ndarray) -> float:
    if len(times) < 2:
        return float(WRITE_TIMECODE_RATE)
    fps = 1.0 / float(np.median(np.diff(times)))
    nearest = min(STANDARD_TIMECODE_RATES + (15, 20, 23.976, 29.97, 59.94), key=lambda r: abs(fps - r))
    return float(nearest) if abs(fps - nearest) < 0.005 * nearest else round(fps, 3)


# ---------------------------------------------------------------------------- CSV writing

def _timecode(time_s: float) -> str:
    milliframes = int(round(time_s * WRITE_TIMECODE_RATE * 1000))
    frames, fraction = divmod(milliframes, 1000)
    seconds, frame = divmod(frames, WRITE_TIMECODE_RATE)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours % 24:02d}:{minutes:02d}:{secs:02d}:{frame:02d}.{fraction:03d}"


def write_livelink_csv(track: MotionTrack, path: str | Path) -> None:
    """Write the canonical Live Link Face CSV (61 columns after Timecode and the count)."""
    _check_track(track)
    if len(track) and float(np.min(track.times)) < 0:
        raise FormatError("a Live Link CSV cannot hold negative times")
    pose = np.zeros((len(track), len(LIVELINK_POSE_NAMES)))
    pose[:, 0:3] = track.head_rotation
    pose[:, 3:5] = track.gaze[:, 0]
    pose[:, 6:8] = track.gaze[:, 1]
    pose = -np.radians(pose)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("Timecode", "BlendShapeCount") + ARKIT_NAMES + LIVELINK_POSE_NAMES)
        count = str(len(ARKIT_NAMES) + len(LIVELINK_POSE_NAMES))
        for i in range(len(track)):
            weights = np.clip(track.blendshapes[i], 0.0, 1.0)
            writer.writerow([_timecode(float(track.times[i])), count]
                            + [f"{v:.6f}" for v in weights] + [f"{v:.6f}" for v in pose[i]])


def _check_track(track: MotionTrack) -> None:
    n = len(track.times)
    shapes = {"head_rotation": (n, 3), "head_translation": (n, 3), "gaze": (n, 2, 2),
              "blendshapes": (n, len(ARKIT_NAMES))}
    for name, shape in shapes.items():
        if np.shape(getattr(track, name)) != shape:
            raise FormatError(f"track.{name} has shape {np.shape(getattr(track, name))}, expected {shape}")
    for name in ("times", *shapes):
        if not np.all(np.isfinite(getattr(track, name))):
            raise FormatError(f"track.{name} holds NaN or infinite values")


# ---------------------------------------------------------------------------- JSON

def write_motion_json(track: MotionTrack, path: str | Path) -> None:
    """Write the npcface motion JSON (schema in the module notes)."""
    _check_track(track)

    def rounded(values: np.ndarray, digits: int = 5) -> list[float]:
        return [round(float(v), digits) for v in np.ravel(values)]

    document = {
        "format": JSON_FORMAT, "version": JSON_VERSION, "fps": float(track.fps),
        "blendshape_names": list(ARKIT_NAMES),
        "frames": [{"time": round(float(track.times[i]), 6),
                    "head_rotation": rounded(track.head_rotation[i]),
                    "head_translation": rounded(track.head_translation[i]),
                    "gaze_left": rounded(track.gaze[i, 0]), "gaze_right": rounded(track.gaze[i, 1]),
                    "blendshapes": rounded(track.blendshapes[i])} for i in range(len(track))],
    }
    if track.phones is not None:
        document["phone_source"] = track.phones.source
        document["phones"] = [{"label": p.label, "start": round(p.start, 4), "end": round(p.end, 4)}
                              for p in track.phones.phones]
    Path(path).write_text(json.dumps(document, separators=(",", ":")), encoding="utf-8")


def read_motion_json(path: str | Path) -> MotionTrack:
    """Read a motion JSON written by ``write_motion_json`` (validated field by field)."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such JSON file")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FormatError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(document, dict) or document.get("format") != JSON_FORMAT:
        raise FormatError(f"{path}: not an npcface motion JSON (\"format\" must be {JSON_FORMAT!r})")
    if document.get("version") != JSON_VERSION:
        raise FormatError(f"{path}: unsupported version {document.get('version')!r}, this reads {JSON_VERSION}")
    fps = document.get("fps")
    if not isinstance(fps, (int, float)) or not math.isfinite(fps) or fps <= 0:
        raise FormatError(f"{path}: \"fps\" must be a positive number, got {fps!r}")
    names = document.get("blendshape_names")
    if names != list(ARKIT_NAMES):
        raise FormatError(f"{path}: \"blendshape_names\" must list the 52 ARKit names in Live Link order")
    frames = document.get("frames")
    if not isinstance(frames, list):
        raise FormatError(f"{path}: \"frames\" must be a list")
    fields = {"time": 1, "head_rotation": 3, "head_translation": 3, "gaze_left": 2, "gaze_right": 2,
              "blendshapes": len(ARKIT_NAMES)}
    columns = {name: np.zeros((len(frames), size)) for name, size in fields.items()}
    for i, frame in enumerate(frames):
        if not isinstance(frame, dict):
            raise FormatError(f"{path}: frame {i} is not an object")
        for name, size in fields.items():
            columns[name][i] = _json_numbers(path, i, name, frame.get(name), size)
    track = MotionTrack(
        fps=float(fps), times=columns["time"][:, 0], head_rotation=columns["head_rotation"],
        head_translation=columns["head_translation"],
        gaze=np.stack([columns["gaze_left"], columns["gaze_right"]], axis=1),
        blendshapes=columns["blendshapes"].astype(np.float32),
        phones=_json_phones(path, document.get("phones"), document.get("phone_source", "aligned")),
    )
    return track


def _json_numbers(path: Path, index: int, name: str, value: object, size: int) -> list[float]:
    values = [value] if size == 1 and not isinstance(value, list) else value
    if (not isinstance(values, list) or len(values) != size
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                       for v in values)):
        raise FormatError(f"{path}: frame {index}, field {name!r}: expected "
                          f"{'a number' if size == 1 else f'{size} finite numbers'}, got {value!r}"[:300])
    return values


def _json_phones(path: Path, phones: object, source: object) -> PhoneTimeline | None:
    if phones is None:
        return None
    if source not in ("aligned", "recognized", "acoustic"):
        raise FormatError(f"{path}: \"phone_source\" must be aligned, recognized or acoustic, got {source!r}")
    if not isinstance(phones, list):
        raise FormatError(f"{path}: \"phones\" must be a list")
    parsed = []
    for i, phone in enumerate(phones):
        try:
            parsed.append(Phone(label=str(phone["label"]), start=float(phone["start"]), end=float(phone["end"])))
        except (TypeError, KeyError, ValueError) as exc:
            raise FormatError(f"{path}: phone {i} needs label, start and end ({exc})") from None
    return PhoneTimeline(phones=tuple(parsed), source=source)
