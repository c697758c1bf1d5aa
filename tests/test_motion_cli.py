"""`npcface animate` through the real CLI entry point: outputs, plot, and every bad input."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile

from conftest import fixture_line
from npcface.bridge.cli import main
from npcface.core.arkit import ARKIT_NAMES


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["animate", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize(("extra", "message"), [
    (["--emotion", "grumpy"], "unknown emotion 'grumpy'"),
    (["--emotion-at", "1.0=smug:0.5"], "unknown emotion 'smug'"),
    (["--emotion-at", "soon=happy"], "--emotion-at time must be seconds"),
    (["--emotion-at", "happy"], "--emotion-at needs TIME=NAME"),
    (["--fps", "0"], "fps must be a number > 0"),
    (["--fps", "nan"], "fps must be a number > 0"),
    (["--fps", "100000"], "fps must be a number > 0"),
    (["--text-file", "/nonexistent/line.txt"], "text file not found"),
])
def test_bad_controls_get_one_line_and_exit_2(capsys, tmp_path, extra, message):
    wav, _ = fixture_line("line_greeting")
    code, _, err = run_cli(capsys, str(wav), "-o", str(tmp_path / "out.csv"), *extra)
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "out.csv").exists()


def test_bad_paths_get_specific_errors(capsys, tmp_path):
    wav, _ = fixture_line("line_greeting")
    cases = [
        ([str(tmp_path / "missing.wav"), "-o", str(tmp_path / "o.csv")], "audio file not found"),
        ([str(wav), "-o", str(tmp_path / "o.txt")], "output must end in .csv or .json"),
        ([str(wav), "-o", str(tmp_path / "no_such_folder" / "o.csv")], "does not exist"),
        ([str(wav), "-o", str(tmp_path)], "output must end in"),
        ([str(wav), "-o", str(tmp_path / "o.csv"), "--plot", str(tmp_path / "p.jpg")], "plot must end in .png"),
    ]
    (tmp_path / "dir.csv").mkdir()
    cases.append(([str(wav), "-o", str(tmp_path / "dir.csv")], "is a folder"))
    not_audio = tmp_path / "notes.wav"
    not_audio.write_text("this is not audio at all")
    cases.append(([str(not_audio), "-o", str(tmp_path / "o.csv")], "notes.wav"))
    silent_nan = tmp_path / "nan.wav"
    soundfile.write(silent_nan, np.full(1600, np.nan, np.float32), 16000, subtype="FLOAT")
    cases.append(([str(silent_nan), "-o", str(tmp_path / "o.csv")], "NaN"))
    for argv, message in cases:
        code, _, err = run_cli(capsys, *argv)
        assert code == 2, argv
        assert message in err and "Traceback" not in err, (argv, err)


def test_animate_writes_livelink_csv_json_and_plot(capsys, tmp_path):
    from PIL import Image

    from npcface.core.formats.livelink import read_livelink_csv, read_motion_json

    wav, text = fixture_line("line_bilabials")
    csv_path, json_path, png = tmp_path / "line.csv", tmp_path / "line.json", tmp_path / "line.png"
    code, out, err = run_cli(capsys, str(wav), "--text", text, "--emotion", "happy:0.5", "--emotion-at", "2=sad:0.8",
                             "--fps", "30", "--seed", "4", "-o", str(csv_path), "--plot", str(png))
    assert code == 0, err
    assert "phones: aligned" in out
    track = read_livelink_csv(csv_path)
    duration = soundfile.info(str(wav)).duration
    assert abs(len(track) - duration * 30) <= 2
    with open(csv_path, newline="") as handle:
        header = next(csv.reader(handle))
    assert header[2:54] == list(ARKIT_NAMES)
    smile = track.channel("MouthSmileLeft")
    frown = track.channel("MouthFrownLeft")
    assert smile[track.times < 1.5].mean() > 0.3 and frown[track.times > 2.6].mean() > 0.3
    with Image.open(png) as image:
        assert image.size[0] > 800 and len(np.unique(np.asarray(image.convert("L")))) > 20  # a real picture
    text_file = tmp_path / "line.txt"
    text_file.write_text(text, encoding="utf-8")
    code, _, err = run_cli(capsys, str(wav), "--text-file", str(text_file), "-o", str(json_path))
    assert code == 0, err
    again = read_motion_json(json_path)
    assert len(again) == pytest.approx(duration * 60, abs=2)
    assert again.phones is not None and again.phones.source == "aligned"
    assert json.loads(json_path.read_text())["fps"] == 60.0
