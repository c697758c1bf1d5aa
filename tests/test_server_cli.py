"""`npcface demo` (the README's main job) and `npcface say` as a user runs them."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from npcface.core.audio.decode import load_audio
from npcface.core.formats.livelink import read_livelink_csv, read_motion_json
from npcface.core.formats.video import read_video, video_info
from conftest import fixture_line
from server_helpers import running_server

NPCFACE = [sys.executable, "-m", "npcface.bridge.cli"]


def npcface(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*NPCFACE, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


def test_demo_writes_a_talking_mp4_and_the_curves(tmp_path: Path):
    result = npcface("demo", "--out", str(tmp_path / "out"), "--size", "256")
    assert result.returncode == 0, result.stderr
    wav, _ = fixture_line("line_greeting")
    duration = load_audio(wav).duration
    mp4, csv, json = (tmp_path / "out" / f"line_greeting.{ext}" for ext in ("mp4", "csv", "json"))
    assert all(str(path) in result.stdout for path in (mp4, csv, json))
    info = video_info(mp4)
    assert info.has_audio and (info.width, info.height) == (256, 256)
    assert info.duration == pytest.approx(duration, abs=0.1)
    frames = [image for _, image in read_video(mp4)]
    changes = [np.abs(frames[i].astype(int) - frames[0]).mean() for i in range(0, len(frames), 10)]
    assert max(changes) > 1.0, "the portrait must move"
    track = read_livelink_csv(csv)
    assert len(track) == len(frames) and track.channel("JawOpen").max() > 0.2
    np.testing.assert_allclose(read_motion_json(json).blendshapes, track.blendshapes, atol=1e-3)


def test_say_saves_what_a_running_sidecar_sends_back(tmp_path: Path, portrait_path: Path):
    wav, text = fixture_line("line_bilabials")
    with running_server() as server:
        result = npcface("say", str(wav), "--text", text, "--connect", server.endpoint, "--avatar",
                         str(portrait_path), "--size", "128", "--fps", "25", "--emotion", "happy:0.6",
                         "--out", str(tmp_path / "line"))
    assert result.returncode == 0, result.stderr
    track = read_livelink_csv(tmp_path / "line.csv")
    assert track.fps == pytest.approx(25, abs=0.5)
    assert len(track) == pytest.approx(load_audio(wav).duration * 25, abs=2)
    assert video_info(tmp_path / "line.mp4").num_frames == len(track)
    assert track.channel("MouthSmileLeft").mean() > 0.1, "the emotion was applied"


@pytest.mark.parametrize("args, fragment", [
    (["say", "missing.wav", "--connect", "tcp://127.0.0.1:9"], "not found"),
    (["say", "{wav}", "--connect", "tcp://127.0.0.1:9", "--timeout", "0.5"], "no reply from the sidecar"),
    (["say", "{wav}", "--fps", "0"], "--fps"),
    (["say", "{wav}", "--emotion", "smug", "--connect", "tcp://127.0.0.1:9"], "smug"),
])
def test_say_errors_are_one_line(args, fragment):
    wav, _ = fixture_line("line_vowels")
    result = npcface(*[a.replace("{wav}", str(wav)) for a in args])
    assert result.returncode == 2
    assert fragment in result.stderr and result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
