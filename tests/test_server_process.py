"""`npcface serve` as a real process: Ctrl-C, restarts rejoined by the client, bind security, Curve."""
from __future__ import annotations

import socket
import subprocess
from pathlib import Path

import numpy as np
import pytest

from npcface.bridge.client import SidecarClient, SidecarUnavailable
from server_helpers import NPCFACE, ServeProcess, greeting_pcm


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*NPCFACE, *args], capture_output=True, text=True, timeout=60)


def test_ctrl_c_stops_a_busy_server_cleanly():
    server = ServeProcess("--bind", "tcp://127.0.0.1:0")
    samples, text = greeting_pcm()
    with SidecarClient(server.endpoint, timeout_s=30) as client:
        client.open_session("npc")
        client.send_audio("npc", (samples[:8000] * 32767).astype("<i2").tobytes(), 16000)  # mid-line
        assert client.stats().sessions == 1
        returncode, stderr = server.interrupt()
    assert returncode == 0
    assert "Traceback" not in stderr and "stopped" in stderr


def test_the_client_rejoins_a_restarted_server_by_itself():
    port = free_port()
    endpoint = f"tcp://127.0.0.1:{port}"
    samples, text = greeting_pcm()
    samples, text = samples[:16000 * 2], "Well met, stranger."
    first = ServeProcess("--bind", endpoint)
    with SidecarClient(endpoint, timeout_s=30) as client:
        client.open_session("npc", channels=["arkit"], seed=3)
        before = client.say("npc", samples, 16000, text=text)
        first_instance = client.welcome.instance
        assert first.interrupt()[0] == 0
        second = ServeProcess("--bind", endpoint)
        try:
            after = client.say("npc", samples, 16000, text=text)  # same session name, new server
            assert client.rejoins == 1
            assert client.welcome.instance != first_instance
        finally:
            second.interrupt()
        third = ServeProcess("--bind", endpoint)
        try:  # a plain request after a restart is answered too, with the session re-opened
            assert client.stats().your_sessions[0]["session"] == "npc" and client.rejoins == 2
        finally:
            third.interrupt()
    assert after.line_end.ticks == before.line_end.ticks
    np.testing.assert_allclose([t.arkit for t in after.ticks], [t.arkit for t in before.ticks], atol=1e-6)


def test_a_client_without_a_server_gets_a_clear_error():
    client = SidecarClient(f"tcp://127.0.0.1:{free_port()}", timeout_s=0.5)
    with pytest.raises(SidecarUnavailable, match="no reply from the sidecar"):
        client.hello()
    client.close()


def test_non_loopback_binds_are_refused_unless_insecure():
    refused = run_cli("serve", "--bind", "tcp://0.0.0.0:0")
    assert refused.returncode == 2
    assert "not loopback" in refused.stderr and "Traceback" not in refused.stderr
    server = ServeProcess("--bind", "tcp://0.0.0.0:0", "--insecure")
    returncode, stderr = server.interrupt()
    assert returncode == 0 and "INSECURE" in stderr


def test_ipc_endpoints_serve_locally(tmp_path: Path):
    server = ServeProcess("--bind", f"ipc://{tmp_path / 'npcface.sock'}")
    try:
        with SidecarClient(server.endpoint, timeout_s=10) as client:
            assert client.ping().instance == client.welcome.instance
    finally:
        assert server.interrupt()[0] == 0


@pytest.mark.parametrize("bind", ["udp://127.0.0.1:5", "tcp://127.0.0.1:70000", "tcp://127.0.0.1:x"])
def test_bad_bind_addresses_get_one_line_errors(bind):
    result = run_cli("serve", "--bind", bind)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "--bind" in result.stderr


def test_non_positive_limits_are_refused():
    result = run_cli("serve", "--max-message-bytes", "0")
    assert result.returncode == 2 and "--max-*" in result.stderr


def test_curve_keys_encrypt_and_admit_only_known_clients(tmp_path: Path):
    import zmq
    import zmq.auth

    keys, allowed = tmp_path / "keys", tmp_path / "allowed"
    assert run_cli("serve", "--make-keys", str(keys)).returncode == 0
    assert run_cli("serve", "--make-keys", str(allowed), "--key-name", "guard-npc").returncode == 0
    server_public, _ = zmq.auth.load_certificate(keys / "server.key")
    known = zmq.auth.load_certificate(allowed / "guard-npc.key_secret")
    server = ServeProcess("--bind", "tcp://0.0.0.0:0", "--curve-secret-key", str(keys / "server.key_secret"),
                          "--curve-clients", str(allowed))
    try:
        endpoint = server.endpoint.replace("0.0.0.0", "127.0.0.1")
        with SidecarClient(endpoint, timeout_s=10, curve_server_key=server_public, curve_client_keys=known) as client:
            assert client.ping().instance == client.welcome.instance
        for stranger in (SidecarClient(endpoint, timeout_s=1.0, curve_server_key=server_public),  # unknown key
                         SidecarClient(endpoint, timeout_s=1.0)):  # no encryption at all
            for _ in range(2):  # and again: a refused connection must not leave sends hanging
                with pytest.raises(SidecarUnavailable):
                    stranger.hello()
            stranger.close()
    finally:
        assert server.interrupt()[0] == 0
    bad_key = tmp_path / "bad.key"
    bad_key.write_text("short")
    result = run_cli("serve", "--curve-secret-key", str(bad_key))
    assert result.returncode == 2 and "CurveZMQ secret certificate" in result.stderr
    no_keys = run_cli("serve", "--curve-clients", str(allowed))
    assert no_keys.returncode == 2 and "--curve-secret-key" in no_keys.stderr
