"""`npcface prerender`: a manifest of lines -> files, resumable and safe against kills.

What each bad input gets (one line on stderr, exit 2, nothing rendered is lost): a manifest that
is not .csv/.jsonl, a missing or unknown column, duplicate ids (ignoring case), an output folder
that is a file or cannot be created, --workers 0. A bad row (missing audio, unknown emotion,
unreadable audio, no face in the avatar) fails alone: the other lines are done, exit 1, and the
report gives its manifest line, id and reason.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import FIXTURES
from npcface.bridge.cli import main

NPCFACE = [sys.executable, "-m", "npcface.bridge.cli"]
LINES = ("line_greeting", "line_bilabials", "line_vowels", "line_fricatives", "line_names")


def write_manifest(folder: Path, rows: list[dict], name: str = "lines.csv") -> Path:
    path = folder / name
    columns = sorted({key for row in rows for key in row}, key=lambda c: ("id", "audio").index(c)
                     if c in ("id", "audio") else 9)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    return path


def fixture_rows(folder: Path, count: int, outputs: str = "csv json") -> list[dict]:
    """``count`` rows over the fixture lines, their audio copied beside the manifest."""
    rows = []
    for i in range(count):
        name = LINES[i % len(LINES)]
        if not (folder / f"{name}.wav").exists():
            shutil.copy(FIXTURES / f"{name}.wav", folder)
            shutil.copy(FIXTURES / f"{name}.txt", folder)
        rows.append({"id": f"l{i:03d}", "audio": f"{name}.wav", "text_file": f"{name}.txt" if i % 2 else "",
                     "emotion": "happy:0.6; 1.5=angry:0.4" if i % 3 == 0 else "", "seed": str(i), "outputs": outputs})
    return rows


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*NPCFACE, "prerender", *args], capture_output=True, text=True, timeout=300)


def one_error_line(capsys, argv: list[str]) -> str:
    code = main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("npcface prerender: error: ")
    return err[0]


def test_bad_manifests_and_folders_get_one_clear_line(tmp_path, capsys):
    shutil.copy(FIXTURES / "line_vowels.wav", tmp_path)
    out = str(tmp_path / "out")
    text = tmp_path / "lines.txt"
    text.write_text("id,audio\na,line_vowels.wav\n")
    assert "must be CSV (.csv) or JSON Lines (.jsonl)" in one_error_line(capsys, ["prerender", str(text), "-o", out])
    no_audio = tmp_path / "no_audio.csv"
    no_audio.write_text("id,text\na,hello\n")
    assert "lacks the column(s) audio" in one_error_line(capsys, ["prerender", str(no_audio), "-o", out])
    unknown = tmp_path / "unknown.csv"
    unknown.write_text("id,audio,voice\na,line_vowels.wav,x\n")
    assert "unknown column(s) 'voice'" in one_error_line(capsys, ["prerender", str(unknown), "-o", out])
    twice = tmp_path / "twice.csv"
    twice.write_text("id,audio\nGuard_1,line_vowels.wav\nb,line_vowels.wav\nguard_1,line_vowels.wav\n")
    assert "duplicate id 'guard_1' on lines 2 and 4" in one_error_line(capsys, ["prerender", str(twice), "-o", out])
    jsonl = tmp_path / "broken.jsonl"
    jsonl.write_text('{"id": "a", "audio": "line_vowels.wav"}\n{"id": "b", "audio": \n')
    assert "line 2 is not JSON" in one_error_line(capsys, ["prerender", str(jsonl), "-o", out])
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe")
    assert "not UTF-8 text" in one_error_line(capsys, ["prerender", str(binary), "-o", out])
    good = write_manifest(tmp_path, [{"id": "a", "audio": "line_vowels.wav"}])
    a_file = tmp_path / "taken"
    a_file.write_text("not a folder")
    assert "is a file" in one_error_line(capsys, ["prerender", str(good), "-o", str(a_file)])
    assert "is not writable" in one_error_line(capsys, ["prerender", str(good), "-o", str(a_file / "below")])
    assert "--workers must be at least 1" in one_error_line(capsys, ["prerender", str(good), "-o", out, "--workers", "0"])
    assert "--outputs takes any of" in one_error_line(capsys, ["prerender", str(good), "-o", out, "--outputs", "gif"])
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").glob("a.*"))


def test_bad_rows_fail_alone_with_line_number_id_and_reason(tmp_path, capsys):
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((256, 256, 3), 128, np.uint8)).save(blank)
    (tmp_path / "not_audio.wav").write_text("this is text, not sound")
    sub = tmp_path / "sub"
    sub.mkdir()
    shutil.copy(FIXTURES / "line_bilabials.wav", tmp_path)
    manifest = write_manifest(sub, [
        {"id": "good", "audio": "../line_bilabials.wav", "outputs": "csv"},
        {"id": "missing", "audio": "nowhere.wav", "outputs": "csv"},
        {"id": "feeling", "audio": "../line_bilabials.wav", "emotion": "furious", "outputs": "csv"},
        {"id": "noise", "audio": "../not_audio.wav", "outputs": "csv"},
        {"id": "faceless", "audio": "../line_bilabials.wav", "avatar": "../blank.png", "outputs": "mp4"},
        {"id": "bad/id", "audio": "../line_bilabials.wav"},
    ])
    out = tmp_path / "out"
    code = main(["prerender", str(manifest), "-o", str(out), "--workers", "1", "--progress", "none"])
    captured = capsys.readouterr()
    assert code == 1
    assert "1 done, 0 already done, 5 failed of 6 lines" in captured.out
    assert "path(s) lead outside the manifest's folder" in captured.out
    report = json.loads((out / "report.json").read_text())
    by_id = {line["id"]: line for line in report["lines"]}
    assert by_id["good"]["status"] == "done" and (out / "good.csv").is_file()
    assert by_id["missing"]["reason"] == "audio file not found: nowhere.wav" and by_id["missing"]["line_no"] == 3
    assert "unknown emotion 'furious'" in by_id["feeling"]["reason"]
    assert by_id["noise"]["status"] == "failed" and by_id["noise"]["reason"]
    assert "avatar blank.png" in by_id["faceless"]["reason"] and "face" in by_id["faceless"]["reason"]
    assert any(line["line_no"] == 7 and "id must be" in line["reason"] for line in report["lines"])
    assert {o["path"] for o in report["outside_paths"]} >= {"../line_bilabials.wav", "../blank.png"}
    markdown = (out / "report.md").read_text()
    assert "| 3 | missing | audio file not found: nowhere.wav |" in markdown
    for line in captured.err.splitlines():  # each failure is one line naming its row
        assert line.startswith("npcface prerender: manifest line ") and "Traceback" not in line


def test_dry_run_checks_every_row_and_writes_nothing(tmp_path):
    (tmp_path / "not_audio.wav").write_text("this is text, not sound")
    rows = fixture_rows(tmp_path, 2) + [{"id": "noise", "audio": "not_audio.wav"}]
    rows[0]["avatar"], rows[0]["outputs"] = str(FIXTURES / "portrait_astronaut.png"), "mp4 csv"
    out = tmp_path / "out"
    result = run_cli(str(write_manifest(tmp_path, rows)), "-o", str(out), "--dry-run", "--progress", "json")
    assert result.returncode == 1, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert [e["event"] for e in events][0] == "start" and events[-1]["event"] == "end"
    statuses = {e["id"]: e["status"] for e in events if e["event"] == "line"}
    assert statuses == {"l000": "checked", "l001": "checked", "noise": "failed"}
    assert not list(out.glob("l00*")), "a dry run renders nothing"


def outputs_of(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and not p.name.startswith(("report", "."))}


def test_rerun_skips_what_is_done_and_redoes_what_changed(tmp_path):
    rows = fixture_rows(tmp_path, 4, "csv json tres")
    manifest = write_manifest(tmp_path, rows)
    out = tmp_path / "out"
    first = run_cli(str(manifest), "-o", str(out), "--workers", "2")
    assert first.returncode == 0, first.stderr
    assert "4 done, 0 already done, 0 failed of 4 lines" in first.stdout
    before = outputs_of(out)
    assert len(before) == 12
    stamps = {name: (out / name).stat().st_mtime_ns for name in before}

    started = time.perf_counter()
    again = run_cli(str(manifest), "-o", str(out))
    assert time.perf_counter() - started < 15  # a whole process start; the bench measures the real cost
    assert "0 done, 4 already done" in again.stdout and again.returncode == 0
    assert {name: (out / name).stat().st_mtime_ns for name in before} == stamps

    rows[1]["emotion"] = "sad:0.9"
    (out / "l002.json").unlink()  # a lost output is redone too
    changed = run_cli(str(write_manifest(tmp_path, rows)), "-o", str(out), "--progress", "json")
    events = [json.loads(line) for line in changed.stdout.splitlines()]
    statuses = {e["id"]: e["status"] for e in events if e["event"] == "line"}
    assert statuses == {"l000": "skipped", "l001": "done", "l002": "done", "l003": "skipped"}
    after = outputs_of(out)
    assert after["l001.json"] != before["l001.json"], "the new emotion changed the face"
    assert after["l002.json"] == before["l002.json"], "same inputs, same seed: the same bytes"


def test_sigkill_midway_leaves_no_partial_file_and_a_rerun_matches_an_uninterrupted_run(tmp_path):
    rows = fixture_rows(tmp_path, 10, "csv json anim")
    manifest = write_manifest(tmp_path, rows)
    reference = tmp_path / "reference"
    assert run_cli(str(manifest), "-o", str(reference), "--workers", "2").returncode == 0
    out = tmp_path / "killed"
    process = subprocess.Popen([*NPCFACE, "prerender", str(manifest), "-o", str(out), "--workers", "2"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and len(list((out / ".done").glob("*.json"))) < 3:
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)  # the whole job, as a cancelled CI build or a power cut does
    process.wait()
    time.sleep(0.5)
    done = len(list((out / ".done").glob("*.json")))
    assert 3 <= done < 10, f"the kill should land midway, {done} lines were done"
    expected = outputs_of(reference)
    for name, data in outputs_of(out).items():  # every file present is whole: the same bytes as the reference
        assert data == expected[name], f"{name} is truncated or different"
    rerun = run_cli(str(manifest), "-o", str(out), "--workers", "2")
    assert rerun.returncode == 0, rerun.stderr
    assert f"{10 - done} done, {done} already done" in rerun.stdout
    assert outputs_of(out) == expected
    assert not list((out / ".partial").iterdir())


def test_jsonl_manifest_with_an_mp4_line(tmp_path):
    from npcface.core.formats.video import video_info

    shutil.copy(FIXTURES / "line_vowels.wav", tmp_path)
    manifest = tmp_path / "lines.jsonl"
    manifest.write_text(json.dumps({"id": "portrait", "audio": "line_vowels.wav", "text": "Ah, father saw a large calm heart far off.",
                                    "emotion": ["happy:0.5", "1.0=surprised:0.7"], "avatar": str(FIXTURES / "portrait_astronaut.png"),
                                    "outputs": ["mp4", "json"], "fps": 25}) + "\n")
    out = tmp_path / "out"
    result = run_cli(str(manifest), "-o", str(out), "--size", "128", "--progress", "bar")
    assert result.returncode == 0, result.stderr
    assert "1/1 lines, 0 failed, " in result.stderr and " lines/min, " in result.stderr  # the bar's last state
    info = video_info(out / "portrait.mp4")
    frames = len(json.loads((out / "portrait.json").read_text())["frames"])
    assert (info.width, info.height) == (128, 128) and abs(info.num_frames - frames) <= 1 and info.has_audio
    assert len(list((out / ".rigs").glob("*.rig"))) == 1, "the avatar is rigged once, in the parent"


def test_a_prerendered_mp4_is_what_npcface_render_makes_of_the_same_line(tmp_path):
    """One rendering loop (core/render/to_file): whatever `npcface render` adds to its frames reaches
    prerendered videos too."""
    from npcface.core.formats.video import read_video

    wav, text = FIXTURES / "line_bilabials.wav", (FIXTURES / "line_bilabials.txt").read_text().strip()
    manifest = write_manifest(tmp_path, [{"id": "bob", "audio": str(wav), "text": text, "emotion": "happy:0.5; 1=sad:0.7",
                                          "avatar": str(FIXTURES / "portrait_astronaut.png"), "seed": "5",
                                          "fps": "20", "outputs": "mp4"}])
    prerendered = run_cli(str(manifest), "-o", str(tmp_path / "out"), "--size", "96")
    assert prerendered.returncode == 0, prerendered.stderr
    rendered = subprocess.run([*NPCFACE, "render", str(FIXTURES / "portrait_astronaut.png"), str(wav), "--text", text,
                               "--emotion", "happy:0.5", "--emotion-at", "1=sad:0.7", "--seed", "5", "--fps", "20",
                               "--size", "96", "-o", str(tmp_path / "render.mp4")], capture_output=True, text=True, timeout=300)
    assert rendered.returncode == 0, rendered.stderr
    ours = np.stack([frame for _, frame in read_video(tmp_path / "out" / "bob.mp4")]).astype(int)
    theirs = np.stack([frame for _, frame in read_video(tmp_path / "render.mp4")]).astype(int)
    assert ours.shape == theirs.shape and len(ours) > 60
    assert np.abs(ours - theirs).max() <= 2
    assert np.abs(np.diff(ours, axis=0)).max() > 40, "the face moves"


def test_sigterm_stops_after_the_lines_in_flight_and_says_so_in_the_report(tmp_path):
    lines = 16  # enough that a loaded machine cannot finish them all before the signal lands
    manifest = write_manifest(tmp_path, fixture_rows(tmp_path, lines, "csv"))
    out = tmp_path / "out"
    process = subprocess.Popen([*NPCFACE, "prerender", str(manifest), "-o", str(out), "--workers", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not list((out / ".done").glob("*.json")):
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "interrupted: re-run to finish" in stdout and "Traceback" not in stderr
    report = json.loads((out / "report.json").read_text())
    assert report["interrupted"] and 1 <= report["done"] < lines
    assert sorted(p.stem for p in (out / ".done").glob("*.json")) == sorted(p.stem for p in out.glob("*.csv"))
    rerun = run_cli(str(manifest), "-o", str(out))
    assert f"{lines - report['done']} done, {report['done']} already done" in rerun.stdout
