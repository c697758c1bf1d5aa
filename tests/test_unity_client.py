"""The Unity sample's C# client, compiled with Debian's mcs (C# 7.2) and run with mono.

The client core is checked against the real peers: msgpack-python's bytes both ways, a pyzmq
ROUTER socket on loopback, and the real `npcface serve`. The Unity components are compiled against
the UnityEngine stand-in in unity_sample/Tests~/ so a typo cannot ship.
"""
from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import msgpack
import pytest
import zmq

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "unity_sample"
CORE_SOURCES = sorted((SAMPLE / "Runtime" / "Core").glob("*.cs"))

pytestmark = pytest.mark.skipif(shutil.which("mcs") is None or shutil.which("mono") is None,
                                reason="mono-devel is not installed (tools/bootstrap.sh installs it)")


def compile_cs(sources: list[Path], out: Path, references: list[Path] = (), target: str = "exe") -> Path:
    """Compiles with the language level the sample promises (C# 7.2), warnings as errors."""
    command = ["mcs", "-langversion:7.2", "-warnaserror+", "-nologo", f"-target:{target}", f"-out:{out}"]
    command += [f"-r:{ref}" for ref in references]
    command += [str(s) for s in sources]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"mcs failed:\n{result.stdout}\n{result.stderr}"
    return out


def soundfile_duration(path: Path) -> float:
    import soundfile

    return soundfile.info(str(path)).duration


def run_mono(exe: Path, *args: str, timeout: float = 60) -> dict[str, str]:
    result = subprocess.run(["mono", "--debug", str(exe), *args], capture_output=True, text=True, timeout=timeout)
    lines = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    lines["_rc"] = str(result.returncode)
    lines["_stderr"] = result.stderr
    return lines


@pytest.fixture(scope="module")
def core_check(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("cs") / "CoreCheck.exe"
    return compile_cs(CORE_SOURCES + [SAMPLE / "Tests~" / "CoreCheck" / "CoreCheck.cs"], out)


# ---------------------------------------------------------------- msgpack

def test_msgpack_encoding_matches_msgpack_python(core_check, tmp_path):
    out = tmp_path / "sample.bin"
    assert run_mono(core_check, "msgpack-encode", str(out))["encoded"] == "ok"
    data = out.read_bytes()
    decoded = msgpack.unpackb(data, raw=False, strict_map_key=False)
    ints = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, -1, -32, -33, -128, -129,
            -32768, -32769, -(2**31), -(2**31) - 1, -(2**63)]
    assert decoded["ints"] == ints
    assert decoded["u64max"] == 2**64 - 1
    assert decoded["f32"] == 0.25 and decoded["f64"] == 1.0 / 3.0
    assert decoded["nil"] is None and decoded["yes"] is True and decoded["no"] is False
    assert decoded["short_str"] == "héllo"
    assert decoded["str_255"] == "a" * 255 and decoded["str_65536"] == "b" * 65536
    assert decoded["bin_0"] == b"" and decoded["bin_300"] == bytes(300) and decoded["bin_70000"] == bytes(70000)
    assert decoded["array_16"] == [None] * 16 and decoded["array_70000"] == [0.0] * 70000
    assert decoded["map_20"] == {f"k{i}": i for i in range(20)}
    # Same shortest encodings as the reference implementation (the 0.25 float32 aside).
    assert msgpack.packb(ints) in data
    assert msgpack.packb("b" * 65536) in data and msgpack.packb(bytes(70000)) in data


def test_msgpack_roundtrip_of_python_values(core_check, tmp_path):
    value = {
        "type": "tick", "seq": 2**40, "neg": -(2**40), "small": -5, "t": 0.016666666666666666,
        "weights": [0.0, 0.5, 1.0, 1e-30, -2.5e10], "nested": {"a": [1, [2, [3, {"b": None}]]]},
        "blob": bytes(range(256)) * 3, "flags": [True, False], "empty_map": {}, "empty_list": [],
        "unicode": "Grüße, 世界 🙂",
    }
    src, dst = tmp_path / "in.bin", tmp_path / "out.bin"
    src.write_bytes(msgpack.packb(value, use_bin_type=True))
    assert run_mono(core_check, "msgpack-roundtrip", str(src), str(dst))["roundtrip"] == "ok"
    assert msgpack.unpackb(dst.read_bytes(), raw=False) == value
    # float32 values from numpy-style senders come back as the same float32.
    src.write_bytes(msgpack.packb([1.5, 0.1], use_single_float=True))
    run_mono(core_check, "msgpack-roundtrip", str(src), str(dst))
    assert dst.read_bytes() == src.read_bytes()


@pytest.mark.parametrize("data, message", [
    (b"", "ends in the middle"),
    (b"\xc1", "never used"),
    (b"\xd4\x01\x00", "extension type"),
    (b"\x92\x01", "longer than its data"),
    (b"\xdd\x7f\xff\xff\xff", "longer than its data"),
    (b"\xc6\x00\x00\x10\x00abc", "ends in the middle"),
    (b"\x81\x01\x02", "keys must be strings"),
    (b"\x01\x02", "trailing bytes"),
    (b"\x91" * 100 + b"\xc0", "nesting deeper"),
])
def test_msgpack_bad_bytes_get_a_specific_error(core_check, tmp_path, data, message):
    src = tmp_path / "bad.bin"
    src.write_bytes(data)
    result = run_mono(core_check, "msgpack-decode", str(src))
    assert message in result.get("msgpack_error", ""), result


# ---------------------------------------------------------------- ZMTP against pyzmq

def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RouterEcho:
    """A real pyzmq ROUTER that echoes every message back to its sender, recording identities."""

    def __init__(self):
        self.context = zmq.Context()
        self.router = self.context.socket(zmq.ROUTER)
        self.router.linger = 0
        self.port = self.router.bind_to_random_port("tcp://127.0.0.1")
        self.identities: list[bytes] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        poller = zmq.Poller()
        poller.register(self.router, zmq.POLLIN)
        while not self.stop.is_set():
            if poller.poll(50):
                identity, *frames = self.router.recv_multipart()
                self.identities.append(identity)
                self.router.send_multipart([identity, *frames])

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.context.destroy(linger=0)


def test_zmtp_dealer_talks_to_a_real_router(core_check):
    echo = RouterEcho()
    try:
        result = run_mono(core_check, "echo", "127.0.0.1", str(echo.port))
    finally:
        echo.close()
    assert result["_rc"] == "0", result
    assert result["peer_socket_type"] == "ROUTER"
    assert result["peer_minor_version"] == "1"
    assert result["echo_matched"] == "7/7"  # empty, short, 255/256 boundary, multipart, 1 MB, 20 MB
    assert result["quiet_timeout"] == "True"
    assert result["pongs"] == "1"  # libzmq answers our ZMTP 3.1 PING
    assert set(echo.identities) == {b"unity-test"}  # the READY Identity property reached the ROUTER


def test_zmtp_refuses_wrong_peers_with_a_message(core_check):
    # Nothing listening.
    result = run_mono(core_check, "connect", "127.0.0.1", str(free_port()))
    assert "cannot connect" in result["zmtp_error"] and result["_rc"] == "1"
    # A ZeroMQ PUB socket cannot pair with a DEALER.
    context = zmq.Context()
    try:
        pub = context.socket(zmq.PUB)
        pub.linger = 0
        port = pub.bind_to_random_port("tcp://127.0.0.1")
        result = run_mono(core_check, "connect", "127.0.0.1", str(port))
        assert "cannot talk to a PUB socket" in result["zmtp_error"] or "refused the handshake" in result["zmtp_error"], result
        pub.close()
        # A CurveZMQ server: refused, with the reason.
        public, secret = zmq.curve_keypair()
        curve = context.socket(zmq.ROUTER)
        curve.linger = 0
        curve.curve_server = True
        curve.curve_secretkey = secret
        port = curve.bind_to_random_port("tcp://127.0.0.1")
        result = run_mono(core_check, "connect", "127.0.0.1", str(port))
        assert "CURVE security mechanism" in result["zmtp_error"], result
        curve.close()
    finally:
        context.destroy(linger=0)  # closes the sockets too, even after a failed assertion


def test_zmtp_refuses_a_port_that_is_not_zeromq(core_check):
    import socket

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]

    def answer_http():
        conn, _ = server.accept()
        conn.recv(64)
        conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n" + b"x" * 64)
        conn.close()

    thread = threading.Thread(target=answer_http, daemon=True)
    thread.start()
    try:
        result = run_mono(core_check, "connect", "127.0.0.1", str(port))
    finally:
        thread.join(5)
        server.close()
    assert "not a ZeroMQ socket" in result["zmtp_error"], result


# ---------------------------------------------------------------- the full conversation with `npcface serve`

IDLE_TIMEOUT_S = 2.0


class Sidecar:
    """The real `npcface serve` as a subprocess on a fixed loopback port (restartable)."""

    def __init__(self, port: int):
        self.port = port
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        import os
        import sys

        npcface = Path(sys.executable).parent / "npcface"
        # A 2 s idle timeout (heartbeat 0.67 s) so that the heartbeat test takes seconds, not minutes.
        self.process = subprocess.Popen(
            [str(npcface), "serve", "--bind", f"tcp://127.0.0.1:{self.port}", "--quiet", "--idle-timeout", str(IDLE_TIMEOUT_S)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        ready = threading.Event()

        def watch_stdout(process=self.process):  # it prints "npcface serve: ready on <endpoint>" once it listens
            for line in process.stdout:
                if "ready on" in line:
                    ready.set()

        threading.Thread(target=watch_stdout, daemon=True).start()
        assert ready.wait(120), "npcface serve did not get ready within 120 s"

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


@pytest.fixture(scope="module")
def sidecar():
    server = Sidecar(free_port())
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def sidecar_port(sidecar) -> int:
    return sidecar.port


@pytest.fixture(scope="module")
def console_demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("demo") / "ConsoleDemo.exe"
    return compile_cs(CORE_SOURCES + sorted((SAMPLE / "Tools~" / "ConsoleDemo").glob("*.cs")), out)


def test_console_demo_runs_the_whole_conversation(console_demo, sidecar_port, portrait_path, tmp_path):
    from conftest import fixture_line
    from npcface.core.arkit import ARKIT_INDEX

    wav, text = fixture_line("line_bilabials")
    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    # --realtime paces the audio like playback, so the renderer keeps up and frame acks matter.
    ticks_csv = tmp_path / "ticks.csv"
    result = run_mono(console_demo, "--port", str(sidecar_port), "--portrait", str(portrait_path),
                      "--wav", str(wav), "--text", text, "--fps", "30", "--realtime",
                      "--frames-out", str(frames_dir), "--ticks-out", str(ticks_csv), timeout=300)
    assert result["_rc"] == "0", result
    assert result["protocol"] == "1.2"
    assert result["opened_motion"] == "rules"  # 1.2: the session runs the generator it asked for
    assert result["arkit_names"] == "52" and int(result["jaw_open_index"]) == ARKIT_INDEX["JawOpen"]
    assert result["avatar_size"] == "512x512" and result["avatar_again_cached"] == "true"
    assert result["opened_outputs"] == "latents,frames"

    # Ticks: one per 1/30 s of the line, in order, with every channel at its size.
    duration = float(result["audio_duration"])
    ticks = int(result["ticks"])
    import soundfile

    assert duration == pytest.approx(soundfile.info(str(wav)).duration, abs=1e-3)
    assert float(result["line_end_duration"]) == pytest.approx(duration, abs=1e-3)
    assert abs(ticks - duration * 30) <= 2 and int(result["line_end_ticks"]) == ticks
    assert result["ticks_in_order"] == "true" and result["arkit_in_range"] == "true"
    assert (result["arkit_lengths"], result["viseme_lengths"], result["vrm_lengths"]) == ("52", "15", "11")
    assert float(result["jaw_open_max"]) > 0.2  # the mouth opens on speech
    # The mid-line "happy" reaches the face: more smile after it than before.
    assert float(result["smile_after_emotion"]) > float(result["smile_before_emotion"]) + 0.2

    # Frames: the acks kept the 4-frame window moving; every tick's frame was sent or dropped.
    frames = int(result["frames"])
    assert frames > 4 and frames == int(result["frames_sent"])
    assert frames + int(result["frames_dropped"]) == ticks
    assert result["frame_format"] == "rgba8" and result["frame_size"] == "512x512"
    assert int(result["frame_bytes"]) == 512 * 512 * 4
    assert result["frame_indices_increasing"] == "true" and float(result["frames_differ"]) > 0.5
    saved = sorted(frames_dir.glob("*.rgba8"))
    assert len(saved) == frames and all(f.stat().st_size == 512 * 512 * 4 for f in saved)

    # A frames-only session in JPEG: JPEG files, no ticks (latents were not asked for).
    assert int(result["jpeg_frames"]) > 0 and result["jpeg_session_ticks"] == "0"
    assert 1000 < int(result["frame_jpeg_bytes"]) < 512 * 512 * 4 // 4

    # Each deliberately bad request got its own error code; the server carried on.
    assert result["error_bad_fps"] == "bad_request"
    assert result["error_unknown_emotion"] == "bad_control"
    assert result["error_unknown_session"] == "unknown_session"
    assert result["error_out_of_order"] == "out_of_order:expected_seq=0"
    assert result["error_no_line"] == "no_line"
    assert result["error_bad_controls"] == "bad_request" and result["valid_controls_silent"] == "true"
    assert result["stats_type"] == "stats" and result["stats_has_sessions"] == "true"
    assert result["alive_after_errors"] == "true"
    assert int(result["closed_ticks_sent"]) == ticks and result["failures"] == "0"

    # The reference Python client, sending the same line the same way, gets the same face.
    import numpy as np
    import soundfile
    from npcface.bridge.client import SidecarClient

    pcm = soundfile.read(str(wav), dtype="int16")[0].tobytes()
    from server_helpers import WAIT_S

    with SidecarClient(f"tcp://127.0.0.1:{sidecar_port}", timeout_s=WAIT_S) as python_client:
        python_client.open_session("python-guard", outputs=["latents"], channels=["arkit"], fps=30.0)
        python_client.set_emotion("python-guard", "happy", 0.9, time_s=float(result["emotion_time"]), ramp=0.2)
        python_line = python_client.say_pcm("python-guard", pcm, 22050, text=text, chunk_s=0.1)
    csharp = np.loadtxt(ticks_csv, delimiter=",", ndmin=2)
    python = np.array([[t.index, t.time, *t.head_rotation, *t.arkit] for t in python_line.ticks])
    assert csharp.shape == python.shape == (ticks, 2 + 3 + 52)
    np.testing.assert_allclose(csharp, python, atol=1e-5)  # float32 on the C# side


@pytest.mark.parametrize("heartbeat", [True, False])
def test_heartbeats_keep_an_idle_session_alive(console_demo, sidecar_port, heartbeat):
    from conftest import fixture_line

    wav, _ = fixture_line("line_bilabials")
    extra = [] if heartbeat else ["--no-heartbeat"]
    result = run_mono(console_demo, "--port", str(sidecar_port), "--wav", str(wav), "--idle", str(2 * IDLE_TIMEOUT_S), *extra,
                      timeout=300)
    assert result["_rc"] == "0", result
    assert float(result["heartbeat_s"]) == pytest.approx(IDLE_TIMEOUT_S / 3)
    if heartbeat:  # silent for twice the timeout and until 3 heartbeats were answered
        assert result["idle_session_survived"] == "true" and int(result["heartbeat_pongs"]) >= 3
    else:  # the control: silent for twice the timeout, the server forgot the client. Loose: the
        # server checks for silence at least once a second, so it forgets within 1 s + the timeout.
        assert result["idle_session_survived"] == "false" and result["idle_error"] in ("hello_required", "unknown_session")


def test_console_demo_reports_a_missing_sidecar(console_demo, portrait_path):
    from conftest import fixture_line

    wav, _ = fixture_line("line_bilabials")
    result = run_mono(console_demo, "--port", str(free_port()), "--portrait", str(portrait_path), "--wav", str(wav))
    assert result["_rc"] == "1"
    assert "cannot connect" in result["failure"] and "npcface serve" in result["failure"]


def test_client_arkit_names_match_the_python_side(core_check):
    from npcface.core.arkit import ARKIT_NAMES

    assert run_mono(core_check, "arkit-names")["arkit"].split(",") == list(ARKIT_NAMES)


# ---------------------------------------------------------------- the Unity components

@pytest.fixture(scope="module")
def component_check(tmp_path_factory) -> Path:
    """Builds like Unity's asmdefs: the core without UnityEngine, the components against the stand-in."""
    out = tmp_path_factory.mktemp("unity")
    stand_in = compile_cs([SAMPLE / "Tests~" / "UnityEngineStandIn" / "UnityEngine.cs"], out / "UnityEngine.dll", target="library")
    core = compile_cs(CORE_SOURCES, out / "Npcface.Core.dll", target="library")
    runtime = compile_cs(sorted((SAMPLE / "Runtime" / "Components").glob("*.cs")), out / "Npcface.Runtime.dll",
                         references=[stand_in, core], target="library")
    return compile_cs([SAMPLE / "Tests~" / "ComponentCheck" / "ComponentCheck.cs", SAMPLE / "Tools~" / "ConsoleDemo" / "WavFile.cs"],
                      out / "ComponentCheck.exe", references=[stand_in, core, runtime])


def test_a_typo_in_a_component_fails_the_build(tmp_path):
    """The stand-in build is a real check: a misspelt Unity member does not compile."""
    source = (SAMPLE / "Runtime" / "Components" / "NpcfaceFrameApplier.cs").read_text()
    assert "Texture.LoadRawTextureData(flipped)" in source
    broken = tmp_path / "NpcfaceFrameApplier.cs"
    broken.write_text(source.replace("Texture.LoadRawTextureData(flipped)", "Texture.LoadRawTextureDate(flipped)"))
    stand_in = compile_cs([SAMPLE / "Tests~" / "UnityEngineStandIn" / "UnityEngine.cs"], tmp_path / "UnityEngine.dll", target="library")
    core = compile_cs(CORE_SOURCES, tmp_path / "Npcface.Core.dll", target="library")
    others = [p for p in sorted((SAMPLE / "Runtime" / "Components").glob("*.cs")) if p.name != broken.name]
    result = subprocess.run(["mcs", "-langversion:7.2", "-nologo", "-target:library", f"-out:{tmp_path / 'r.dll'}",
                             f"-r:{stand_in}", f"-r:{core}", *map(str, others), str(broken)], capture_output=True, text=True)
    assert result.returncode != 0 and "LoadRawTextureDate" in result.stdout + result.stderr


def test_components_drive_a_rig_bones_and_a_raw_image_from_the_sidecar(component_check, sidecar_port, portrait_path):
    from conftest import fixture_line

    wav, text = fixture_line("line_bilabials")
    # The harness steps a simulated clock and waits for the ticks and frames each step needs, so
    # these counts do not depend on the machine's load (a loaded machine only takes longer).
    result = run_mono(component_check, "scene", str(sidecar_port), str(portrait_path), str(wav), text, timeout=600)
    assert result["_rc"] == "0", result
    assert result["errors"] == "0", result["_stderr"]
    assert result["opened"] == "True" and result["stalled"] == "False", result
    assert result["spoke"] == "True" and result["line_ends"] == "1" and result["audio_scheduled"] == "True"
    # Every tick of the line arrived; each 60 Hz step of the line's playback was checked.
    assert int(result["ticks_received"]) == int(result["line_end_ticks"]) > 0
    steps = int(result["steps"])
    assert abs(steps - (0.25 + soundfile_duration(wav) + 0.3) * 60) <= 1  # start delay + line + 0.3 s
    # Bound: "blendShape1.jawOpen", "EyeBlinkLeft", "Mouth_Smile_L", "Fcl_MTH_A" (mapping asset), "viseme_PP".
    assert result["bound_shapes"] == "5" and result["unrelated_weight"] == "0"
    assert float(result["jaw_weight_max"]) > 20  # on Unity's 0-100 scale
    assert float(result["viseme_pp_max"]) > 20  # the bilabial line closes the lips (PP)
    assert int(result["mapped_checks"]) == steps and result["mapped_mismatches"] == "0"  # the asset's 0.5 scale holds
    # A VRoid face through the preset: "Fcl_" shapes from the vrm channel; its "JawOpen" stays
    # unbound (the preset turns name matching off); the mid-line "happy" reaches Fcl_ALL_Joy.
    assert result["vroid_bound"] == "3"
    assert float(result["vroid_aa_max"]) > 20 and float(result["vroid_joy_max"]) > 30
    # Head and eyes turn to the side the pose says (yaw + = the character's left = -X in Unity);
    # the eyes on both sides, after SetGaze to the left at 2 s and to the right at 3 s.
    assert int(result["yaw_checks"]) > 20 and result["yaw_wrong_side"] == "0"
    assert int(result["gaze_left_checks"]) > 30 and int(result["gaze_right_checks"]) > 30
    assert result["gaze_wrong_side"] == "0"
    # Frames reach the RawImage as a bottom-up RGBA32 texture, one after another: every frame of
    # the line (its window never filled up), each shown once when its time came.
    assert int(result["frames_received"]) == int(result["line_end_frames_sent"]) == int(result["line_end_ticks"])
    assert result["line_end_frames_dropped"] == "0"
    assert int(result["frames_shown"]) == int(result["frames_received"])
    assert result["texture"] == "512x512 RGBA32" and result["raw_image_has_texture"] == "True"
    assert result["rows_flipped"] == "True"


def test_components_without_a_sidecar_warn_once_and_keep_running(component_check):
    result = run_mono(component_check, "offline", str(free_port()), timeout=300)  # retries every 0.1 s for 1.5 s+
    assert result["_rc"] == "0", result
    assert result["face_open"] == "False" and result["warnings"] == "1" and result["exceptions"] == "0"


# ---------------------------------------------------------------- the sample scene, and a sidecar restart (the package files: test_unity_package.py)

def test_quick_start_sample_compiles_against_the_components(component_check, tmp_path):
    out = component_check.parent
    compile_cs(sorted((SAMPLE / "Samples~" / "QuickStart").glob("*.cs")), tmp_path / "Sample.dll", target="library",
               references=[out / "UnityEngine.dll", out / "Npcface.Core.dll", out / "Npcface.Runtime.dll"])


def test_components_reconnect_and_reopen_after_a_sidecar_restart(component_check, sidecar):
    """A sidecar restarted during play (a crash, a new build): the face comes back by itself."""
    from conftest import fixture_line

    wav, _ = fixture_line("line_bilabials")
    harness = subprocess.Popen(["mono", "--debug", str(component_check), "restart", str(sidecar.port), str(wav)],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = harness.stdout.readline()
        assert first.strip() == "phase=open", first + harness.stderr.read()
        sidecar.stop()
        sidecar.start()  # the same port, a new server that knows nothing of the client
        out, err = harness.communicate(timeout=600)  # each wait in the harness gives up after 120 s
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait()
    result = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
    assert result["lost"] == "True" and result["reopened"] == "True", out + err
    assert result["spoke"] == "True" and result["line_ends_completed"] == "True", out + err
    assert result["errors"] == "0", err
