"""core/formats/livelink: Live Link Face CSV variants built here (like the real exports), round trips, and
bad input. No file from ../shared/data is used."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest

from npcface.core.arkit import ARKIT_INDEX, ARKIT_NAMES, LIVELINK_POSE_NAMES
from npcface.core.errors import FormatError
from npcface.core.formats.livelink import (read_livelink_csv, read_motion_json, write_livelink_csv,
                                   write_motion_json)
from npcface.core.types import MotionTrack, Phone, PhoneTimeline


def livelink_rows(count: int, data_fps: int, tc_rate: int = 60, start=(19, 18, 11, 20.002),
                  count_header: str = "BlendShapeCount", drift: float = 0.0):
    """Rows like the iPhone app's: a tc_rate timecode stepping tc_rate/data_fps frames per row
    (plus a sub-frame drift), JawOpen ramping 0..1, LeftEyeYaw a sine in radians."""
    header = ["Timecode", count_header, *ARKIT_NAMES, *LIVELINK_POSE_NAMES]
    hours, minutes, seconds, frame = start
    origin = ((hours * 60 + minutes) * 60 + seconds) * tc_rate + frame
    rows = [header]
    for i in range(count):
        position = origin + i * (tc_rate / data_fps + drift)
        whole_seconds, frames = divmod(position, tc_rate)
        h, rest = divmod(int(whole_seconds), 3600)
        m, s = divmod(rest, 60)
        weights = np.zeros(len(ARKIT_NAMES))
        weights[ARKIT_INDEX["JawOpen"]] = i / max(count - 1, 1)
        pose = np.zeros(len(LIVELINK_POSE_NAMES))
        pose[3] = 0.3 * math.sin(i / 5)  # LeftEyeYaw, radians
        rows.append([f"{h % 24:02d}:{m:02d}:{s:02d}:{frames:06.3f}", "61",
                     *(f"{v:.6f}" for v in weights), *(f"{v:.6f}" for v in pose)])
    return rows


def write_rows(path, rows):
    path.write_text("\n".join(",".join(row) for row in rows) + "\n")
    return path


@pytest.mark.parametrize("data_fps", [30, 60])
@pytest.mark.parametrize("count_header", ["BlendShapeCount", "BlendshapeCount"])
def test_real_variants_give_times_and_fps_from_the_timecodes(tmp_path, data_fps, count_header):
    rows = livelink_rows(90, data_fps, count_header=count_header)
    track = read_livelink_csv(write_rows(tmp_path / "take.csv", rows))
    assert track.fps == data_fps
    np.testing.assert_allclose(track.times, np.arange(90) / data_fps, atol=1e-6)
    np.testing.assert_allclose(track.channel("JawOpen"), np.linspace(0, 1, 90), atol=1e-6)
    # LeftEyeYaw radians become degrees with npcface's sign (+ = looking to its left).
    expected = -np.degrees(0.3 * np.sin(np.arange(90) / 5))
    np.testing.assert_allclose(track.gaze[:, 0, 0], expected, atol=1e-3)


def test_subframe_drift_gives_the_true_rate(tmp_path):
    # The app's fractional frame part creeps (19:18:11:20.002, 21.003, 22.005 ...): ~59.9 fps.
    rows = livelink_rows(300, 60, drift=0.0016)
    track = read_livelink_csv(write_rows(tmp_path / "drift.csv", rows))
    step = np.diff(track.times)
    np.testing.assert_allclose(step, 1.0016 / 60, atol=2e-5)  # timecodes keep 1/1000 frame
    assert 59.8 < track.fps < 60


def test_repeated_first_row_is_dropped_and_midnight_wraps(tmp_path):
    rows = livelink_rows(120, 30, start=(23, 59, 59, 0.0))
    rows.insert(1, list(rows[1]))  # a repeated row (same timecode)
    track = read_livelink_csv(write_rows(tmp_path / "wrap.csv", rows))
    assert len(track) == 120
    np.testing.assert_allclose(track.times, np.arange(120) / 30, atol=1e-6)
    assert rows[-1][0].startswith("00:00:02")  # the take really crossed midnight


def test_a_restarted_clock_is_spliced_one_frame_on(tmp_path):
    rows = livelink_rows(60, 30)
    back = livelink_rows(30, 30, start=(1, 0, 0, 0.0))[1:]  # the clock jumped back to 01:00
    ahead = livelink_rows(30, 30, start=(2, 0, 0, 0.0))[1:]  # then an hour ahead
    track = read_livelink_csv(write_rows(tmp_path / "restart.csv", rows + back + ahead))
    assert len(track) == 120
    np.testing.assert_allclose(track.times, np.arange(120) / 30, atol=1e-6)


def test_dropped_frames_stay_gaps(tmp_path):
    rows = livelink_rows(60, 30)
    del rows[20:23]  # three frames lost
    track = read_livelink_csv(write_rows(tmp_path / "dropped.csv", rows))
    assert track.fps == 30 and len(track) == 57
    assert np.diff(track.times).max() == pytest.approx(4 / 30, abs=1e-6)


def test_short_take_assumes_the_apps_60_timecode_unless_told(tmp_path):
    rows = livelink_rows(10, 30, start=(10, 0, 0, 0.0))  # FF 0..18, never crosses a second
    path = write_rows(tmp_path / "short.csv", rows)
    assert read_livelink_csv(path).fps == 30
    told = read_livelink_csv(path, timecode_rate=30)  # a 30 fps timecode stepping 2: 15 fps
    assert told.fps == 15


def test_columns_in_any_order_and_missing_pose_columns(tmp_path):
    rows = livelink_rows(40, 60)
    order = [0, 1] + list(range(len(rows[0]) - 1, 1, -1))  # reversed data columns
    shuffled = [[row[i] for i in order] for row in rows]
    track = read_livelink_csv(write_rows(tmp_path / "shuffled.csv", shuffled))
    np.testing.assert_allclose(track.channel("JawOpen"), np.linspace(0, 1, 40), atol=1e-6)
    without_pose = [row[: 2 + len(ARKIT_NAMES)] for row in rows]
    track = read_livelink_csv(write_rows(tmp_path / "nopose.csv", without_pose))
    assert np.all(track.gaze == 0) and np.all(track.head_rotation == 0)


def synthetic_track(count=75, fps=25.0):
    rng = np.random.default_rng(3)
    times = np.arange(count) / fps
    return MotionTrack(
        fps=fps, times=times,
        head_rotation=np.stack([10 * np.sin(times), 5 * np.cos(times), 3 * np.sin(2 * times)], axis=1),
        head_translation=np.zeros((count, 3)),
        gaze=rng.uniform(-20, 20, (count, 2, 2)),
        blendshapes=rng.uniform(0, 1, (count, len(ARKIT_NAMES))).astype(np.float32),
    )


def test_csv_round_trip_is_canonical(tmp_path):
    track = synthetic_track()
    path = tmp_path / "out.csv"
    write_livelink_csv(track, path)
    lines = path.read_text().splitlines()
    assert lines[0] == ",".join(("Timecode", "BlendShapeCount") + ARKIT_NAMES + LIVELINK_POSE_NAMES)
    assert lines[1].startswith("00:00:00:00.000,61,") and lines[2].startswith("00:00:00:02.400,61,")
    back = read_livelink_csv(path)
    assert back.fps == 25 and len(back) == len(track)
    np.testing.assert_allclose(back.times, track.times, atol=1e-6)
    np.testing.assert_allclose(back.blendshapes, track.blendshapes, atol=1e-6)
    np.testing.assert_allclose(back.head_rotation, track.head_rotation, atol=1e-3)
    np.testing.assert_allclose(back.gaze, track.gaze, atol=1e-3)


def test_json_round_trip_keeps_everything_and_is_documented_schema(tmp_path):
    phones = PhoneTimeline(phones=(Phone("SIL", 0.0, 0.2), Phone("AA", 0.2, 0.5)), source="recognized")
    track = synthetic_track()
    track = MotionTrack(**{**track.__dict__, "phones": phones,
                           "head_translation": np.full((len(track), 3), 0.01)})
    path = tmp_path / "out.json"
    write_motion_json(track, path)
    document = json.loads(path.read_text())
    assert document["format"] == "npcface-motion" and document["fps"] == 25.0
    assert set(document["frames"][0]) == {"time", "head_rotation", "head_translation", "gaze_left",
                                          "gaze_right", "blendshapes"}
    back = read_motion_json(path)
    np.testing.assert_allclose(back.blendshapes, track.blendshapes, atol=1e-5)
    np.testing.assert_allclose(back.gaze, track.gaze, atol=1e-5)
    np.testing.assert_allclose(back.head_translation, 0.01)
    assert back.phones == phones


def replace_cell(rows, row, column, text):
    """rows with rows[row][column named] replaced (row 0 is the header, line 1 of the file)."""
    changed = [list(r) for r in rows]
    changed[row][rows[0].index(column)] = text
    return changed


@pytest.mark.parametrize("damage, message", [
    (lambda rows: [], "empty file"),
    (lambda rows: rows[:1], "no data rows"),
    (lambda rows: [["Frame", "Count"] + rows[0][2:]] + rows[1:], "header must start with Timecode"),
    (lambda rows: [[c for c in row if c != "JawOpen"] for row in rows[:1]] + rows[1:], "missing blendshape column"),
    (lambda rows: rows[:3] + [rows[3][:-4]] + rows[4:], "row 4 has 59 fields, the header has 63"),
    (lambda rows: replace_cell(rows, 2, "JawForward", "abc"), "row 3, column JawForward: 'abc' is not a number"),
    (lambda rows: replace_cell(rows, 5, "JawRight", "nan"), "row 6, column JawRight: 'nan' is not finite"),
    (lambda rows: replace_cell(rows, 1, "HeadYaw", "-inf"), "row 2, column HeadYaw: '-inf' is not finite"),
    (lambda rows: rows[:2] + [["19:18:aa:00"] + rows[2][1:]] + rows[3:], "row 3, column Timecode"),
])
def test_bad_csv_gets_a_format_error_naming_the_row_and_column(tmp_path, damage, message):
    path = write_rows(tmp_path / "bad.csv", damage(livelink_rows(8, 30)))
    with pytest.raises(FormatError, match=message):
        read_livelink_csv(path)


def test_not_text_and_missing_files(tmp_path):
    binary = tmp_path / "take.csv"
    binary.write_bytes(b"\xff\xfe\x00\x89PNG" * 20)
    with pytest.raises(FormatError, match="not a text CSV"):
        read_livelink_csv(binary)
    with pytest.raises(FormatError, match="no such CSV"):
        read_livelink_csv(tmp_path / "nothing.csv")


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(format="other"), "not an npcface motion JSON"),
    (lambda d: d.update(version=9), "unsupported version 9"),
    (lambda d: d.update(fps=0), "fps"),
    (lambda d: d["frames"][2].update(blendshapes=[0.1] * 51), r"frame 2, field 'blendshapes'"),
    (lambda d: d["frames"][1].update(time="soon"), r"frame 1, field 'time'"),
    (lambda d: d["frames"][0].pop("gaze_left"), r"frame 0, field 'gaze_left'"),
])
def test_bad_json_gets_a_format_error_naming_the_frame_and_field(tmp_path, edit, message):
    path = tmp_path / "m.json"
    write_motion_json(synthetic_track(5), path)
    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document))
    with pytest.raises(FormatError, match=message):
        read_motion_json(path)
    path.write_text("{not json")
    with pytest.raises(FormatError, match="not valid JSON"):
        read_motion_json(path)


def test_writers_refuse_broken_tracks(tmp_path):
    track = synthetic_track(5)
    broken = MotionTrack(**{**track.__dict__, "blendshapes": np.full((5, 52), np.nan, np.float32)})
    with pytest.raises(FormatError, match="NaN"):
        write_livelink_csv(broken, tmp_path / "x.csv")
    short = MotionTrack(**{**track.__dict__, "gaze": np.zeros((4, 2, 2))})
    with pytest.raises(FormatError, match="gaze"):
        write_motion_json(short, tmp_path / "x.json")
