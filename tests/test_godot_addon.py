"""The Godot addon's own parts, headless in Debian's Godot 4 (tools/godot.sh): its GDScript unit
tests (msgpack round trips and malformed input, ZMTP framing), its msgpack against msgpack-python
both ways, its ZMTP DEALER against real pyzmq sockets, and gdlint on the addon."""
from __future__ import annotations

import socket
import subprocess
import sys
import threading
from pathlib import Path

import msgpack
import zmq

from godot_helpers import SAMPLE, needs_godot, run_godot


def key_values(result: subprocess.CompletedProcess) -> dict[str, str]:
    values = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    values["_rc"] = str(result.returncode)
    values["_stderr"] = result.stderr[-3000:]
    return values


def peer_check(*args: str, binds: tuple[Path, ...] = ()) -> dict[str, str]:
    return key_values(run_godot("res://tests/peer_check.gd", *args, binds=binds, timeout=120))


def test_gdlint_passes_on_the_addon_demo_and_tests():
    gdlint = Path(sys.executable).parent / "gdlint"
    result = subprocess.run([str(gdlint), "addons", "demo", "tests"], cwd=SAMPLE, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_gdlint_catches_a_problem(tmp_path):
    """The lint is a real check: a badly named function fails it."""
    bad = tmp_path / "bad.gd"
    bad.write_text("extends Node\n\n\nfunc BadName() -> void:\n\tpass\n")
    gdlint = Path(sys.executable).parent / "gdlint"
    result = subprocess.run([str(gdlint), str(bad)], cwd=SAMPLE, capture_output=True, text=True)
    assert result.returncode != 0 and "BadName" in result.stdout + result.stderr


@needs_godot
def test_gdscript_unit_tests_pass():
    result = run_godot("res://tests/unit_tests.gd", timeout=120)
    assert "unit_tests passed=7 failed=0" in result.stdout, result.stdout + result.stderr[-3000:]
    assert result.returncode == 0


@needs_godot
def test_msgpack_encoding_reads_back_in_msgpack_python(tmp_path):
    out = tmp_path / "sample.bin"
    assert peer_check("msgpack-encode", str(out), binds=(tmp_path,))["encoded"] == "ok"
    data = out.read_bytes()
    decoded = msgpack.unpackb(data, raw=False)
    ints = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**63 - 1, -1, -32, -33, -128, -129,
            -32768, -32769, -(2**31), -(2**31) - 1, -(2**63)]
    assert decoded["ints"] == ints and decoded["f64"] == 1.0 / 3.0
    assert decoded["nil"] is None and decoded["yes"] is True and decoded["no"] is False
    assert decoded["short_str"] == "héllo" and decoded["str_255"] == "a" * 255 and decoded["str_65536"] == "b" * 65536
    assert decoded["bin_300"] == bytes(300)
    assert decoded["array_16"] == [None] * 16 and decoded["array_70000"] == [0.0] * 70000
    assert decoded["map_20"] == {f"k{i}": i for i in range(20)}
    # The shortest encodings, as msgpack-python writes them.
    assert msgpack.packb(ints) in data and msgpack.packb("b" * 65536) in data


@needs_godot
def test_msgpack_decodes_what_msgpack_python_writes(tmp_path):
    value = {"type": "tick", "seq": 2**40, "neg": -(2**40), "small": -5, "t": 0.016666666666666666,
             "weights": [0.0, 0.5, 1.0, 1e-30, -2.5e10], "nested": {"a": [1, [2, [3, {"b": None}]]]},
             "blob": bytes(range(256)) * 3, "flags": [True, False], "empty_map": {}, "empty_list": [],
             "unicode": "Grüße, 世界 🙂"}
    src, dst = tmp_path / "in.bin", tmp_path / "out.bin"
    src.write_bytes(msgpack.packb(value, use_bin_type=True))
    assert peer_check("msgpack-roundtrip", str(src), str(dst), binds=(tmp_path,))["roundtrip"] == "ok"
    assert msgpack.unpackb(dst.read_bytes(), raw=False) == value
    # float32 (a future server's big arrays): read as the same values, written back as float64.
    src.write_bytes(msgpack.packb([1.5, 0.1], use_single_float=True))
    peer_check("msgpack-roundtrip", str(src), str(dst), binds=(tmp_path,))
    assert msgpack.unpackb(dst.read_bytes()) == [1.5, float(__import__("numpy").float32(0.1))]
    src.write_bytes(b"\x81\x01\x02")  # a non-string key: refused by name
    assert "keys must be strings" in peer_check("msgpack-roundtrip", str(src), str(dst), binds=(tmp_path,))["msgpack_error"]


class RouterEcho:
    """A real pyzmq ROUTER that echoes every message back to its sender."""

    def __init__(self):
        self.context = zmq.Context()
        self.router = self.context.socket(zmq.ROUTER)
        self.router.linger = 0
        self.port = self.router.bind_to_random_port("tcp://127.0.0.1")
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self):
        while not self.stop.is_set():
            if self.router.poll(50):
                self.router.send_multipart(self.router.recv_multipart())

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.context.destroy(linger=0)


@needs_godot
def test_zmtp_dealer_talks_to_a_real_router():
    echo = RouterEcho()
    try:
        result = peer_check("echo", str(echo.port))
    finally:
        echo.close()
    assert result["peer_socket_type"] == "ROUTER" and result["peer_minor_version"] == "1", result
    assert result["echo_matched"] == "6/6"  # empty, short, 255/256 boundary, multipart, 1 MiB
    assert result["pongs"] == "1"  # libzmq answers our ZMTP 3.1 PING
    assert result["zmtp_error"] == ""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@needs_godot
def test_zmtp_names_what_is_wrong_with_the_peer():
    # Nothing listening.
    assert "connection refused" in peer_check("connect", str(free_port()))["zmtp_error"]
    context = zmq.Context()
    try:
        # A PUB socket: not a ROUTER (libzmq may also just hang up on the mismatched type).
        pub = context.socket(zmq.PUB)
        pub.linger = 0
        error = peer_check("connect", str(pub.bind_to_random_port("tcp://127.0.0.1")))["zmtp_error"]
        assert "is a PUB socket, not a ROUTER" in error or "refused the handshake" in error, error
        # A CurveZMQ server: the mechanism is named.
        public, secret = zmq.curve_keypair()
        curve = context.socket(zmq.ROUTER)
        curve.linger = 0
        curve.curve_server = True
        curve.curve_secretkey = secret
        error = peer_check("connect", str(curve.bind_to_random_port("tcp://127.0.0.1")))["zmtp_error"]
        assert "asks for the CURVE security mechanism" in error, error
    finally:
        context.destroy(linger=0)


@needs_godot
def test_zmtp_refuses_a_port_that_is_not_zeromq():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(2)

    def answer_http():
        for _ in range(2):
            conn, _ = server.accept()
            conn.recv(64)
            conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
            conn.close()

    thread = threading.Thread(target=answer_http, daemon=True)
    thread.start()
    try:
        error = peer_check("connect", str(server.getsockname()[1]))["zmtp_error"]
    finally:
        server.close()
    assert "is not a ZeroMQ socket" in error, error
    # A port that accepts and stays silent: a timeout that says what to check.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    try:
        error = peer_check("connect", str(silent.getsockname()[1]))["zmtp_error"]
    finally:
        silent.close()
    assert "timed out waiting for the ZMTP greeting" in error, error
