"""A package that installs but does not load (torchaudio 2.11.1 beside torch 2.11.0 did) gets one
line naming the package and the repair command, from every command and from the sidecar; never a
traceback. The breakage is real: a package of the same name that raises on import, placed ahead of
site-packages, exactly as a mismatched native library raises from the real one."""
from __future__ import annotations

import os
import re
import select
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from conftest import FIXTURES, fixture_line
from npcface.core.deps import REPAIR, dependency_error, failed_package

NPCFACE = [sys.executable, "-m", "npcface.bridge.cli"]
UNDEFINED_SYMBOL = "{name}/lib/lib{name}.so: undefined symbol: torch_exception_get_what_without_backtrace"


def broken_packages(folder: Path, *names: str) -> dict[str, str]:
    """An environment in which each of ``names`` raises OSError when imported, as a package whose
    native library does not match its neighbours does."""
    for name in names:
        (folder / name).mkdir()
        message = UNDEFINED_SYMBOL.format(name=name)
        (folder / name / "__init__.py").write_text(f"raise OSError({message!r})\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), os.environ.get("PYTHONPATH", "")])}


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*NPCFACE, *args], capture_output=True, text=True, timeout=120, env=env)


def assert_one_clear_line(result: subprocess.CompletedProcess, command: str, package: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"npcface {command}: error: {package}")
    assert "failed to load (OSError: " in lines[0] and "undefined symbol" in lines[0]
    assert "bash tools/demo.sh" in lines[0]


def test_failed_package_names_the_deepest_package_being_imported(tmp_path):
    env = broken_packages(tmp_path, "pocketsphinx")
    loaded = {name: module for name, module in sys.modules.items() if name.split(".")[0] == "pocketsphinx"}
    for name in loaded:  # an earlier test may have imported the real one
        del sys.modules[name]
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(OSError) as caught:
            import pocketsphinx  # noqa: F401
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("pocketsphinx", None)
        sys.modules.update(loaded)
    assert env["PYTHONPATH"].startswith(str(tmp_path))
    assert failed_package(caught.value) == "pocketsphinx"
    error = dependency_error(caught.value)
    assert error is not None and error.code == "dependency_unavailable" and REPAIR in str(error)
    # Ordinary errors are not mistaken for a broken install.
    assert dependency_error(OSError("No such file or directory")) is None
    assert dependency_error(ValueError("bad")) is None
    assert failed_package(ModuleNotFoundError("No module named 'torchaudio'", name="torchaudio")) == "torchaudio"


def test_animate_with_a_broken_pocketsphinx_says_so_in_one_line(tmp_path):
    wav, text = fixture_line("line_greeting")
    env = broken_packages(tmp_path, "pocketsphinx")
    result = run_cli(env, "animate", str(wav), "--text", text, "-o", str(tmp_path / "line.csv"))
    assert_one_clear_line(result, "animate", "pocketsphinx")
    assert not (tmp_path / "line.csv").exists()


def test_render_with_a_broken_mediapipe_or_pyav_says_so_in_one_line(tmp_path):
    wav, text = fixture_line("line_greeting")
    for package, shown in (("mediapipe", "mediapipe"), ("av", "av (PyAV)")):
        folder = tmp_path / package
        folder.mkdir()
        result = run_cli(broken_packages(folder, package), "render", str(FIXTURES / "portrait_astronaut.png"),
                         str(wav), "--text", text, "-o", str(folder / "line.mp4"))
        assert_one_clear_line(result, "render", shown)
        assert not (folder / "line.mp4").exists()


def test_animate_and_render_do_not_load_torch_or_torchaudio(tmp_path):
    """The run-time path is numpy/OpenCV/pocketsphinx: a broken torch or torchaudio (the release
    drift that broke fresh installs) cannot stop a line from being animated, and start-up does not
    pay torch's seconds of loading."""
    wav, text = fixture_line("line_bilabials")
    env = broken_packages(tmp_path, "torch", "torchaudio")
    result = run_cli(env, "animate", str(wav), "--text", text, "-o", str(tmp_path / "line.json"))
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "line.json").stat().st_size > 0


def test_help_loads_no_heavy_package():
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys; from npcface.bridge.cli import build_parser; build_parser(); "
         "print(sorted(m for m in ('numpy', 'torch', 'torchaudio', 'cv2', 'mediapipe', 'av', 'zmq', 'pydantic', "
         "'scipy', 'matplotlib', 'pocketsphinx') if m in sys.modules))"],
        capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


def test_the_sidecar_answers_a_broken_package_with_an_error_reply_not_a_traceback(tmp_path):
    from server_helpers import RawClient, s16

    env = broken_packages(tmp_path, "pocketsphinx")
    stderr = tempfile.TemporaryFile(mode="w+")
    process = subprocess.Popen([*NPCFACE, "serve", "--bind", "tcp://127.0.0.1:0", "--warm-lines", "1"],
                               stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
    try:
        ready, _, _ = select.select([process.stdout], [], [], 60)
        line = process.stdout.readline() if ready else ""
        match = re.search(r"ready on (\S+)", line)
        assert match, line
        wav, text = fixture_line("line_greeting")
        with RawClient(match.group(1)) as client:
            assert client.hello().type == "welcome"
            assert client.request({"type": "open", "session": "npc", "fps": 30}).type == "opened"
            pcm = s16(np.zeros(1600, dtype=np.float32))
            client.send({"type": "audio", "session": "npc", "seq": 0, "rate": 16000, "text": text}, pcm)
            error, _ = client.recv(30)
            assert error.type == "error" and error.code == "dependency_unavailable", error
            assert error.message.startswith("pocketsphinx failed to load (OSError: ") and "bash tools/demo.sh" in error.message
            assert client.request({"type": "ping"}).type == "pong"  # the server carries on
    finally:
        process.terminate()
        process.wait(timeout=30)
        stderr.seek(0)
        logged = stderr.read()
    assert "Traceback" not in logged, logged
    assert "pocketsphinx failed to load" in logged


def test_the_learned_mouth_with_a_broken_torch_says_so_in_one_line(tmp_path):
    """torch loads only for `--motion learned` (or a weights file); broken, it is named in one line by
    animate and render, and `serve --motion learned` stops before listening."""
    wav, text = fixture_line("line_bilabials")
    env = broken_packages(tmp_path, "torch")
    result = run_cli(env, "animate", str(wav), "--motion", "learned", "-o", str(tmp_path / "line.csv"))
    assert_one_clear_line(result, "animate", "torch")
    result = run_cli(env, "render", str(FIXTURES / "portrait_astronaut.png"), str(wav), "--motion", "learned",
                     "-o", str(tmp_path / "line.mp4"))
    assert_one_clear_line(result, "render", "torch")
    result = run_cli(env, "serve", "--bind", "tcp://127.0.0.1:0", "--motion", "learned")
    assert_one_clear_line(result, "serve", "torch")
