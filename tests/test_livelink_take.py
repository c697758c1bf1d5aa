"""Live Link Face takes as the iPhone app exports them: the curves' CSV (X_cal.csv / X.csv) beside
the app's reference video X.mov, whose audio is the take's sound. The CSV rows and the video's
timecode track share one clock, so the curves land where they were spoken; each broken take gets
its own sentence."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import av
import numpy as np
import pytest

from conftest import fixture_line
from npcface.bridge.cli import main
from npcface.core.audio.decode import load_audio
from npcface.core.errors import FormatError
from npcface.core.formats.livelink import first_timecode_s, write_livelink_csv
from npcface.core.formats.livelink_take import take_media
from npcface.core.formats.video import video_timecode_s
from npcface.core.motion.generator import MotionGenerator
from npcface.core.train.data import DataError, collect_clips, find_sources
from npcface.core.types import FEATURE_HOP_S, SAMPLE_RATE, Controls

VIDEO_START = "17:54:38:12"  # at 30 fps: 64478.4 s into the day
VIDEO_START_S = 17 * 3600 + 54 * 60 + 38 + 12 / 30
LEAD_IN_S = 0.5  # the actor speaks half a second into the reference video
OUTPUTS = ("JawOpen", "LipGap")


def write_reference_video(path: Path, samples: np.ndarray | None, timecode: str | None, seconds: float) -> None:
    """An H.264 .mov like the app's: tiny frames, the take's sound as AAC, a timecode track."""
    with av.open(str(path), "w", format="mov") as container:
        video = container.add_stream("h264", rate=30)
        video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        if timecode:
            video.metadata["timecode"] = timecode
        audio = container.add_stream("aac", rate=SAMPLE_RATE) if samples is not None else None
        for _ in range(int(seconds * 30)):
            frame = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 90, np.uint8), format="rgb24")
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if audio is not None:
            for start in range(0, len(samples), 1024):
                block = av.AudioFrame.from_ndarray(samples[None, start:start + 1024].astype(np.float32),
                                                   format="fltp", layout="mono")
                block.sample_rate = SAMPLE_RATE
                container.mux(audio.encode(block))
            container.mux(audio.encode())


@pytest.fixture(scope="module")
def line():
    wav, text = fixture_line("line_bilabials")
    audio = load_audio(wav)
    track = MotionGenerator(Controls(fps=60.0)).animate(audio, text=text)
    return audio, track


def make_take(folder: Path, line, csv_start_s: float, timecode: str | None = VIDEO_START,
              with_audio: bool = True, name: str = "MySlate_7_iPhone") -> Path:
    """An app export: NAME.mov (sound LEAD_IN_S late) + NAME_cal.csv + NAME_raw.csv + extras."""
    audio, track = line
    folder.mkdir(parents=True, exist_ok=True)
    samples = np.concatenate([np.zeros(int(LEAD_IN_S * SAMPLE_RATE), np.float32), audio.samples])
    write_reference_video(folder / f"{name}.mov", samples if with_audio else None, timecode,
                          len(samples) / SAMPLE_RATE)
    stamped = dataclasses.replace(track, times=track.times + csv_start_s)
    write_livelink_csv(stamped, folder / f"{name}_cal.csv")
    write_livelink_csv(stamped, folder / f"{name}_raw.csv")
    (folder / "frame_log.csv").write_text("Timecode,Frame\n")
    (folder / "thumbnail.jpg").write_bytes(b"\xff\xd8\xff")
    return folder / f"{name}_cal.csv"


def test_the_video_and_csv_clocks_are_read(tmp_path, line):
    csv = make_take(tmp_path / "take", line, VIDEO_START_S + LEAD_IN_S)
    assert video_timecode_s(csv.with_name("MySlate_7_iPhone.mov")) == pytest.approx(VIDEO_START_S)
    assert first_timecode_s(csv) == pytest.approx(VIDEO_START_S + LEAD_IN_S, abs=1e-3)
    take = take_media(csv)
    assert take.media.name == "MySlate_7_iPhone.mov"
    assert take.offset_s == pytest.approx(LEAD_IN_S, abs=1e-3)


def test_the_curves_land_where_they_were_spoken(tmp_path, line):
    _, track = line
    csv = make_take(tmp_path / "take", line, VIDEO_START_S + LEAD_IN_S)
    [clip] = collect_clips([csv], OUTPUTS, cache=tmp_path / "cache")
    gap = np.clip(track.channel("JawOpen") - track.channel("MouthClose"), 0, 1)
    centres = (np.arange(len(clip.lip_gap)) + 0.5) * FEATURE_HOP_S
    aligned = np.interp(centres - LEAD_IN_S, track.times - track.times[0], gap)
    unaligned = np.interp(centres, track.times - track.times[0], gap)
    assert np.abs(clip.lip_gap - aligned).max() < 1e-3
    assert np.abs(clip.lip_gap - unaligned).max() > 0.1  # ignoring the timecodes would be caught
    # the features are the reference video's sound: as many rows as its audio has
    assert abs(len(clip.features) * FEATURE_HOP_S - (LEAD_IN_S + line[0].duration)) < 0.1


def test_a_video_without_a_timecode_starts_with_the_csv(tmp_path, line):
    csv = make_take(tmp_path / "take", line, 1000.0, timecode=None)
    assert take_media(csv).offset_s == 0.0


def test_the_app_layout_gives_one_take_per_sound_and_no_face_video(tmp_path, line):
    make_take(tmp_path / "takes" / "20261201_MySlate_7", line, VIDEO_START_S + LEAD_IN_S)
    make_take(tmp_path / "takes" / "20261201_MySlate_8", line, VIDEO_START_S + LEAD_IN_S, name="MySlate_8_iPhone")
    groups = find_sources([tmp_path / "takes"])
    assert [(speaker, [f.name for f in files]) for speaker, files in groups] == [
        ("MySlate_7_iPhone_cal", ["MySlate_7_iPhone_cal.csv"]),
        ("MySlate_8_iPhone_cal", ["MySlate_8_iPhone_cal.csv"])]


def test_broken_takes_each_get_their_own_sentence(tmp_path, line):
    silent = make_take(tmp_path / "silent", line, VIDEO_START_S + LEAD_IN_S, with_audio=False)
    with pytest.raises(FormatError, match="MySlate_7_iPhone.mov has no audio track"):
        take_media(silent)
    elsewhere = make_take(tmp_path / "elsewhere", line, VIDEO_START_S + 3600)
    with pytest.raises(FormatError, match=r"first row is \+3600.00 s from the start.*do not overlap"):
        take_media(elsewhere)
    lone = tmp_path / "lone" / "Take_iPhone.csv"
    lone.parent.mkdir()
    lone.write_text(silent.read_text())
    with pytest.raises(DataError, match="has no Take_iPhone.wav or reference .mov beside it"):
        find_sources([lone])
    with pytest.raises(FormatError, match="no sound beside it"):
        take_media(lone)


def test_train_on_a_take_with_a_bad_timecode_is_one_line_and_exit_2(tmp_path, line, capsys):
    make_take(tmp_path / "takes", line, VIDEO_START_S + 3600)
    assert main(["train", str(tmp_path / "takes"), "-o", str(tmp_path / "m.safetensors"), "--steps", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()  # a progress line, then the error
    errors = [text for text in err if "error" in text]
    assert len(errors) == 1 and "timecodes do not overlap" in errors[0] and "Traceback" not in "".join(err), err
