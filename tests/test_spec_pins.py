"""What bridge/PROTOCOL.md promises where a client written from it alone found the server
disagreeing (issue 11), pinned against the real server over real ZeroMQ on loopback. Replies are
read as raw msgpack maps where the point is which keys are on the wire."""
from __future__ import annotations

import socket
import struct
import time

import msgpack
import pytest
import zmq

from npcface.bridge.client import SidecarClient
from npcface.bridge.limits import Limits, Liveness
from server_helpers import WAIT_S, RawClient, greeting_pcm, running_server, s16, send_line


@pytest.fixture(scope="module")
def short_pcm() -> bytes:
    samples, _ = greeting_pcm()
    return s16(samples[:16000])  # 1 s


def raw_request(client: RawClient, header: dict, *payloads: bytes) -> dict:
    """Send with a fresh id; the reply echoing it as the raw msgpack map (other messages skipped)."""
    client.counter += 1
    request_id = f"r{client.counter}"
    client.send({**header, "id": request_id}, *payloads)
    return raw_reply(client, request_id)


def raw_reply(client: RawClient, request_id: str | None) -> dict:
    deadline = time.monotonic() + WAIT_S
    while True:
        assert client.socket.poll(int(max(0.0, deadline - time.monotonic()) * 1000)), "no reply"
        header = msgpack.unpackb(client.socket.recv_multipart()[0], raw=False)
        if header.get("id") == request_id or (request_id is None and header["type"] == "error"):
            return header


def wait_until_forgotten(server, sessions_before: int) -> None:
    """Until the server has freed a silent client's sessions (asked from fresh connections, since
    asking keeps a connection alive)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        with RawClient(server.endpoint) as asker:
            asker.hello()
            if asker.request({"type": "stats"}).sessions < sessions_before:
                return
        time.sleep(0.1)
    raise AssertionError("the silent client was never forgotten")


# ---------------------------------------------------------------- 1. heartbeat_s


def test_heartbeat_is_a_third_of_the_idle_timeout_and_pinging_that_often_keeps_sessions(server):
    with RawClient(server.endpoint) as client:
        welcome = client.hello()
    assert (welcome.heartbeat_s, welcome.idle_timeout_s) == (10.0, 30.0)  # the spec's defaults
    with running_server(liveness=Liveness(idle_timeout_s=1.5)) as short, RawClient(short.endpoint) as client:
        welcome = client.hello()
        assert welcome.heartbeat_s == pytest.approx(0.5)
        client.request({"type": "open", "session": "kept"})
        until = time.monotonic() + 3 * welcome.idle_timeout_s
        while time.monotonic() < until:  # nothing but pings, every heartbeat_s
            time.sleep(welcome.heartbeat_s)
            assert client.request({"type": "ping"}).type == "pong"
        assert [s["session"] for s in client.request({"type": "stats"}).your_sessions] == ["kept"]


# ---------------------------------------------------------------- 2. a forgotten client


def test_a_silent_client_is_forgotten_learns_it_from_hello_required_and_recovers(short_pcm):
    with running_server(liveness=Liveness(idle_timeout_s=1.0)) as server, RawClient(server.endpoint) as client:
        client.hello()
        client.request({"type": "open", "session": "guard"})
        wait_until_forgotten(server, 1)
        pong = client.request({"type": "ping"})
        assert pong.instance == server.instance, "pong.instance does not change: the server did not restart"
        forgotten = raw_request(client, {"type": "open", "session": "guard"})
        assert (forgotten["code"], forgotten["request"]) == ("hello_required", "open")
        assert "silent" in forgotten["message"] and "1 session(s) closed" in forgotten["message"]
        welcome = client.hello()  # the recovery of section 9: hello, re-open, the line from seq 0
        assert welcome.instance == server.instance
        assert client.request({"type": "open", "session": "guard"}).type == "opened"
        ticks, _, line_end, errors = client.collect_line("guard", send_line(client, "guard", short_pcm))
        assert errors == [] and line_end.ticks == len(ticks) > 0
        with RawClient(server.endpoint) as stranger:  # a new connection hears the plain reason
            fresh = raw_request(stranger, {"type": "stats"})
        assert fresh["code"] == "hello_required" and "silent" not in fresh["message"]


def test_the_python_client_rejoins_by_itself_after_being_forgotten(short_pcm):
    import numpy as np

    with running_server(liveness=Liveness(idle_timeout_s=1.0)) as server:
        with SidecarClient(server.endpoint, timeout_s=WAIT_S) as client:
            client.open_session("guard")
            wait_until_forgotten(server, 1)  # the client sends nothing meanwhile: no heartbeats
            samples = np.frombuffer(short_pcm, dtype="<i2").astype(np.float32) / 32767
            line = client.say("guard", samples, 16000)
            assert client.rejoins == 1 and line.line_end.ticks == len(line.ticks) > 0


# ---------------------------------------------------------------- 3. bad_request carries errors


@pytest.fixture(scope="module")
def limited_server():
    with running_server(limits=Limits(max_fps=60, max_frame_size=512)) as server:
        yield server



@pytest.mark.parametrize("header, payloads, mentions", [
    ({"type": "audio", "session": "s", "seq": 0, "rate": 16000}, (), "payload"),
    ({"type": "ping"}, (b"extra",), "payload"),
    ({"type": "teleport"}, (), "type"),
    ({"type": "open", "session": "s", "fps": 90}, (), "fps"),  # within 1-120, beyond this server's max_fps
    ({"type": "open", "session": "s", "frame_size": [1024, 64]}, (), "frame_size"),
    ({"type": "emotion", "session": "s", "emotion": "happy", "intensity": 2}, (), "intensity"),
])
def test_every_bad_request_details_its_errors_as_strings(limited_server, header, payloads, mentions):
    with RawClient(limited_server.endpoint) as client:
        client.hello()
        reply = raw_request(client, header, *payloads)
    assert reply["code"] == "bad_request" and reply["request"] == header["type"]
    errors = reply["details"]["errors"]
    assert errors and all(isinstance(e, str) for e in errors) and any(mentions in e for e in errors), errors


# ---------------------------------------------------------------- 4. omitted keys mean nil


def test_server_messages_omit_keys_that_have_no_value(client):
    opened = raw_request(client, {"type": "open", "session": "plain"})
    assert opened["type"] == "opened" and "avatar" not in opened  # latents only: no avatar, not nil
    client.send({"type": "close", "session": "ghost"})  # no id
    error = raw_reply(client, None)
    assert error["code"] == "unknown_session" and "id" not in error and error["session"] == "ghost"
    client.send(b"\xc1")
    garbage = raw_reply(client, None)
    assert garbage["code"] == "bad_message" and not {"id", "request", "session"} & garbage.keys()
    assert garbage["details"] == {}
    assert None not in (opened | error | garbage).values(), "nil is never sent: the key is left out"


# ---------------------------------------------------------------- 5. and 9. bad_message


@pytest.mark.parametrize("header, request_type, fragment", [
    ({"id": "q1", "session": "guard"}, None, "no string field 'type'"),
    ({"id": "q2", "type": 7}, None, "no string field 'type'"),
    ({"id": "q3", "type": "ping", 5: "x"}, "ping", "not a string: 5 (integer)"),
    ({"id": "q4", "type": "ping", b"colour": 1}, "ping", "not a string: b'colour' (bin)"),
])
def test_bad_message_echoes_a_valid_id_and_names_a_non_string_key(client, header, request_type, fragment):
    client.send(msgpack.packb(header, use_bin_type=True))
    reply = raw_reply(client, header["id"])
    assert reply["code"] == "bad_message" and fragment in reply["message"]
    assert "msgpack (" not in reply["message"], "it is valid msgpack"
    assert reply.get("request") == request_type and reply.get("session") == header.get("session")
    assert client.request({"type": "ping"}).type == "pong"  # the connection goes on


# ---------------------------------------------------------------- 6. fields newer than the connection


def test_a_1_0_client_never_sees_newer_fields_and_cannot_ask_for_them(server, short_pcm):
    with RawClient(server.endpoint) as client:
        assert client.hello("1.0").protocol == "1.0"
        opened = raw_request(client, {"type": "open", "session": "old"})
        assert opened["type"] == "opened" and not {"idle", "motion"} & opened.keys()
        end_id = send_line(client, "old", short_pcm)
        ticks = []
        while True:
            header = msgpack.unpackb(client.socket.recv_multipart()[0], raw=False)
            if header["type"] == "tick":
                ticks.append(header)
            if header.get("id") == end_id:
                break
        assert ticks and all("idle" not in t for t in ticks)
        stats = raw_request(client, {"type": "stats"})
        assert "idling" not in stats["your_sessions"][0] and "in_line" in stats["your_sessions"][0]
        for field, value, version in (("idle", True, "1.1"), ("motion", "rules", "1.2")):
            refused = raw_request(client, {"type": "open", "session": "new", field: value})
            assert refused["code"] == "bad_request", refused
            assert any(e.startswith(f"{field}: added in protocol {version}") for e in refused["details"]["errors"])


def test_a_1_1_client_gets_idle_but_not_motion(server):
    with RawClient(server.endpoint) as client:
        client.hello("1.1")
        opened = raw_request(client, {"type": "open", "session": "mid", "idle": True})
        assert opened["idle"] is True and "motion" not in opened
        assert raw_request(client, {"type": "stats"})["your_sessions"][0]["idling"] is True


# ---------------------------------------------------------------- 7. version_mismatch.supported


def test_version_mismatch_lists_every_version_the_server_speaks(server):
    with RawClient(server.endpoint) as client:
        refused = raw_request(client, {"type": "hello", "protocol": "2.0"})
        assert refused["code"] == "version_mismatch"
        supported = refused["details"]["supported"]
        assert supported == ["1.0", "1.1", "1.2"]
        for version in supported:  # each one is spoken as it is
            assert client.hello(version).protocol == version


# ---------------------------------------------------------------- 8. ZMTP-level heartbeats


class ZmtpPeer:
    """Just enough raw ZMTP 3.1 (NULL mechanism, DEALER) over TCP to see what libzmq does below
    the messages: what a client in an engine without a ZeroMQ binding has to handle."""

    def __init__(self, endpoint: str):
        host, port = endpoint.removeprefix("tcp://").rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=WAIT_S)
        greeting = b"\xff" + b"\x00" * 8 + b"\x7f" + bytes([3, 1]) + b"NULL".ljust(20, b"\x00") + b"\x00" * 32
        self.sock.sendall(greeting)
        theirs = self.read(64)
        assert theirs[0] == 0xFF and theirs[9] == 0x7F and theirs[10] == 3 and theirs[12:16] == b"NULL"
        self.command(b"READY", b"\x0bSocket-Type" + struct.pack(">I", 6) + b"DEALER")
        name, body = self.next_command()
        assert name == b"READY" and b"ROUTER" in body

    def read(self, n: int) -> bytes:
        data = b""
        while len(data) < n:
            chunk = self.sock.recv(n - len(data))
            assert chunk, "the server closed the connection"
            data += chunk
        return data

    def command(self, name: bytes, body: bytes) -> None:
        data = bytes([len(name)]) + name + body
        self.sock.sendall(bytes([0x04, len(data)]) + data)

    def send_message(self, payload: bytes) -> None:  # one frame, short form
        self.sock.sendall(bytes([0x00, len(payload)]) + payload)

    def next_frame(self) -> tuple[int, bytes]:
        flags = self.read(1)[0]
        size = struct.unpack(">Q", self.read(8))[0] if flags & 0x02 else self.read(1)[0]
        return flags, self.read(size)

    def next_command(self) -> tuple[bytes, bytes]:
        flags, data = self.next_frame()
        assert flags & 0x04, f"a message frame where a command was expected (flags {flags:#x})"
        return data[1:1 + data[0]], data[1 + data[0]:]


def test_the_server_sends_no_zmtp_pings_and_answers_a_clients_ping(server):
    peer = ZmtpPeer(server.endpoint)
    try:
        peer.command(b"PING", struct.pack(">H", 100) + b"ctx-42")  # TTL 10 s, then the context
        assert peer.next_command() == (b"PONG", b"ctx-42")
        peer.send_message(msgpack.packb({"type": "hello", "protocol": "1.2", "id": "h"}))
        flags, data = peer.next_frame()
        assert flags & 0x05 == 0, "one message frame (no MORE): no identity, no empty delimiter"
        assert msgpack.unpackb(data)["type"] == "welcome"  # over 255 bytes: a long frame (flag 0x02)
        peer.sock.settimeout(2.0)  # libzmq sends PINGs only with ZMQ_HEARTBEAT_IVL set: nothing comes
        with pytest.raises(socket.timeout):
            peer.sock.recv(1)
    finally:
        peer.sock.close()
    assert server.socket.getsockopt(zmq.HEARTBEAT_IVL) == 0
