"""The sidecar over real ZeroMQ sockets on loopback: conversations, ticks, errors, limits."""
from __future__ import annotations

import math
import time

import msgpack
import numpy as np
import pytest

from npcface.bridge.limits import Limits, Liveness
from npcface.core.arkit import ARKIT_INDEX, ARKIT_NAMES, OCULUS_VISEMES, VRM_PRESETS
from server_helpers import WAIT_S, RawClient, greeting_pcm, running_server, s16, send_line


@pytest.fixture(scope="module")
def short_line():
    samples, _ = greeting_pcm()
    return samples[: 16000 * 3 // 2]  # 1.5 s: enough speech, quick to process


def test_welcome_lists_protocol_channels_and_limits(server):
    with RawClient(server.endpoint) as client:
        welcome = client.hello("1.0")
    assert welcome.protocol == "1.0"
    assert welcome.instance == server.instance
    assert welcome.capabilities["channels"]["arkit"] == list(ARKIT_NAMES)
    assert welcome.capabilities["channels"]["visemes"] == list(OCULUS_VISEMES)
    assert welcome.capabilities["channels"]["vrm"] == list(VRM_PRESETS)
    assert welcome.limits["max_message_bytes"] == Limits().max_message_bytes
    assert welcome.heartbeat_s < welcome.idle_timeout_s


def test_other_major_version_is_refused(server):
    with RawClient(server.endpoint) as client:
        reply = client.request({"type": "hello", "protocol": "2.0"})
    assert (reply.type, reply.code, reply.request) == ("error", "version_mismatch", "hello")


def test_requests_before_hello_get_hello_required_but_ping_works(server):
    with RawClient(server.endpoint) as client:
        reply = client.request({"type": "open", "session": "a"})
        assert (reply.code, reply.request, reply.session) == ("hello_required", "open", "a")
        assert client.request({"type": "ping"}).instance == server.instance


def test_a_line_streams_ticks_on_the_audio_timeline(client, short_line):
    assert client.request({"type": "open", "session": "npc", "fps": 25, "channels": ["arkit", "visemes", "vrm"]}).type == "opened"
    end_id = send_line(client, "npc", s16(short_line), chunk_bytes=1234)  # odd sizes split samples
    ticks, frames, line_end, errors = client.collect_line("npc", end_id)
    assert errors == [] and frames == []
    duration = len(short_line) / 16000
    assert line_end.duration == pytest.approx(duration, abs=1e-3)
    assert line_end.ticks == len(ticks) and abs(len(ticks) - math.ceil(duration * 25)) <= 2
    assert [t.index for t in ticks] == list(range(len(ticks)))
    assert [t.time for t in ticks] == pytest.approx([i / 25 for i in range(len(ticks))], abs=1e-6)
    tick = ticks[len(ticks) // 2]
    assert (len(tick.arkit), len(tick.visemes), len(tick.vrm)) == (52, 15, 11)
    assert len(tick.head_rotation) == 3 and len(tick.gaze_left) == 2
    jaw = np.array([t.arkit[ARKIT_INDEX["JawOpen"]] for t in ticks])
    assert jaw.max() > 0.1 and jaw.min() < jaw.max() / 2, "the jaw should move with the speech"


def test_stereo_48k_float_chunks_give_the_same_timeline(client, short_line):
    from scipy.signal import resample_poly

    stereo = np.repeat(resample_poly(short_line, 3, 1).astype("<f4")[:, None], 2, axis=1)
    client.request({"type": "open", "session": "st"})
    end_id = send_line(client, "st", stereo.tobytes(), rate=48000, fmt="f32le", channels=2, chunk_bytes=8 * 997)
    ticks, _, line_end, errors = client.collect_line("st", end_id)
    assert errors == []
    assert line_end.duration == pytest.approx(len(short_line) / 16000, abs=1e-3)
    assert abs(len(ticks) - math.ceil(len(short_line) / 16000 * 30)) <= 2


def test_out_of_order_and_bad_chunks_are_refused_and_the_line_goes_on(client, short_line):
    client.request({"type": "open", "session": "o"})
    pcm = s16(short_line)
    half = len(pcm) // 2
    chunk = {"type": "audio", "session": "o", "rate": 16000}
    client.send({**chunk, "seq": 0}, pcm[:half])
    skip = client.request({**chunk, "seq": 2}, pcm[half:])
    assert (skip.code, skip.details["expected_seq"], skip.session) == ("out_of_order", 1, "o")
    nan = np.full(100, np.nan, dtype="<f4").tobytes()
    bad = client.request({**chunk, "seq": 1, "format": "f32le"}, nan)
    assert bad.code == "bad_audio" and "format changed" in bad.message  # s16le -> f32le mid-line
    ragged = client.request({**chunk, "seq": 1}, b"\x00\x01\x02")
    assert ragged.code == "bad_audio" and "whole number" in ragged.message
    client.send({**chunk, "seq": 1}, pcm[half:])
    client.send({"type": "end_line", "id": "fin", "session": "o"})
    ticks, _, line_end, errors = client.collect_line("o", "fin")
    assert line_end.duration == pytest.approx(len(short_line) / 16000, abs=1e-3)
    assert [t.index for t in ticks] == list(range(line_end.ticks))


def test_nan_float_audio_is_bad_audio(client):
    client.request({"type": "open", "session": "n"})
    samples = np.zeros(1600, dtype="<f4")
    samples[700] = np.inf
    reply = client.request({"type": "audio", "session": "n", "seq": 0, "rate": 16000, "format": "f32le"},
                           samples.tobytes())
    assert reply.code == "bad_audio" and "NaN or infinite" in reply.message
    assert client.request({"type": "end_line", "session": "n"}).code == "no_line"  # the line never started


@pytest.mark.parametrize("header, code", [
    ({"type": "end_line", "session": "ghost"}, "unknown_session"),
    ({"type": "emotion", "session": "ghost", "emotion": "happy"}, "unknown_session"),
    ({"type": "open", "session": "x", "fps": 500}, "bad_request"),
    ({"type": "open", "session": "x", "fps": "30"}, "bad_request"),
    ({"type": "open", "session": "x", "outputs": ["frames"]}, "avatar_required"),
    ({"type": "open", "session": "x", "outputs": ["latents"], "avatar": "nope"}, "unknown_avatar"),
    ({"type": "open", "session": "x", "sesion_typo": 1}, "bad_request"),
    ({"type": "teleport"}, "bad_request"),
])
def test_bad_requests_get_an_error_naming_them(client, header, code):
    reply = client.request(header)
    assert (reply.type, reply.code, reply.request) == ("error", code, header["type"])
    assert reply.message


def test_garbage_gets_bad_message_and_the_client_keeps_working(client):
    client.send(b"\xc1 not msgpack")
    assert client.recv()[0].code == "bad_message"
    client.send(msgpack.packb([1, 2, 3]))
    assert client.recv()[0].code == "bad_message"
    assert client.request({"type": "ping"}).type == "pong"


def test_emotion_and_control_errors(client):
    client.request({"type": "open", "session": "e"})
    unknown = client.request({"type": "emotion", "session": "e", "emotion": "smug"})
    assert unknown.code == "bad_control" and "smug" in unknown.message
    too_big = client.request({"type": "emotion", "session": "e", "emotion": "happy", "intensity": 7})
    assert too_big.code == "bad_request" and "intensity" in too_big.message
    text_late = client.request({"type": "audio", "session": "e", "seq": 0, "rate": 16000, "text": "x" * 5000},
                               b"\x00\x00" * 160)
    assert text_late.code == "text_too_long"


def test_emotion_sent_between_lines_changes_the_next_line(client, short_line):
    smiles = {}
    for name, emotion in (("plain", None), ("glad", "happy")):
        client.request({"type": "open", "session": name})
        if emotion:
            client.send({"type": "emotion", "session": name, "emotion": emotion, "intensity": 1.0, "time": 0.0})
        end_id = send_line(client, name, s16(short_line))
        ticks, _, _, errors = client.collect_line(name, end_id)
        assert errors == []
        smiles[name] = np.mean([t.arkit[ARKIT_INDEX["MouthSmileLeft"]] for t in ticks[len(ticks) // 2:]])
    assert smiles["glad"] > smiles["plain"] + 0.1


def test_same_seed_same_ticks_and_close_reports_counts(client, short_line):
    runs = []
    for name in ("s1", "s2"):
        client.request({"type": "open", "session": name, "seed": 7})
        ticks, *_ = client.collect_line(name, send_line(client, name, s16(short_line)))
        runs.append(np.array([t.arkit + t.head_rotation for t in ticks]))
    np.testing.assert_allclose(runs[0], runs[1], atol=1e-6)
    closed = client.request({"type": "close", "session": "s1"})
    assert (closed.type, closed.lines, closed.ticks_sent) == ("closed", 1, len(runs[0]))
    assert client.request({"type": "end_line", "session": "s1"}).code == "unknown_session"


def test_limits_each_get_their_error():
    limits = Limits(max_sessions_per_client=2, max_message_bytes=50_000, max_line_seconds=1.0, max_text_chars=10)
    with running_server(limits=limits) as server, RawClient(server.endpoint) as client:
        client.hello()
        assert client.request({"type": "open", "session": "a"}).type == "opened"
        assert client.request({"type": "open", "session": "a"}).code == "session_exists"
        assert client.request({"type": "open", "session": "b"}).type == "opened"
        full = client.request({"type": "open", "session": "c"})
        assert (full.code, full.details["limit"]) == ("too_many_sessions", 2)
        big = client.request({"type": "audio", "session": "a", "seq": 0, "rate": 16000}, b"\x00" * 60_000)
        assert (big.code, big.details["limit"]) == ("message_too_large", 50_000)
        chunk = {"type": "audio", "session": "a", "rate": 16000}
        client.send({**chunk, "seq": 0}, b"\x00\x00" * 12_000)  # 0.75 s
        long = client.request({**chunk, "seq": 1}, b"\x00\x00" * 8_000)  # +0.5 s > 1 s
        assert long.code == "line_too_long"
        text = client.request({**chunk, "session": "b", "seq": 0, "text": "far too long a line"}, b"\x00\x00")
        assert text.code == "text_too_long"


def test_a_silent_client_loses_its_sessions_after_the_idle_timeout():
    timeout_s = 1.0  # short for a quick test; the requests before the wait must each come within it
    with running_server(liveness=Liveness(idle_timeout_s=timeout_s)) as server:
        with RawClient(server.endpoint) as quiet, RawClient(server.endpoint) as watcher:
            quiet.hello()
            quiet.request({"type": "open", "session": "a"})
            quiet.send({"type": "audio", "session": "a", "seq": 0, "rate": 16000}, b"\x00\x00" * 1600)
            watcher.hello()
            pinged = time.monotonic()
            quiet.request({"type": "ping"})  # mid-line and alive: its session is held
            assert watcher.request({"type": "stats"}).sessions == 1
            watcher_heard = time.monotonic()
            # Ask from fresh connections (asking would keep a client alive) until the session is
            # freed, and until the watcher has been silent for the timeout too.
            freed_at = None
            while True:
                with RawClient(server.endpoint) as asker:
                    asker.hello()
                    asking = time.monotonic()
                    stats = asker.request({"type": "stats"})
                if stats.type == "stats" and stats.sessions == 0 and freed_at is None:
                    freed_at = time.monotonic()
                if freed_at is not None and asking - watcher_heard > timeout_s:
                    break  # the server checked for silence after that stats, past the watcher's timeout
                assert asking - pinged < WAIT_S, "the silent client's session was never freed"
                time.sleep(0.1)
            assert freed_at - pinged >= timeout_s, "freed before the idle timeout"  # exact: one clock
            assert watcher.request({"type": "stats"}).code == "hello_required"  # silent too: forgotten
            assert quiet.request({"type": "end_line", "session": "a"}).code == "hello_required"


def test_one_bad_client_does_not_disturb_another(server, short_line):
    with RawClient(server.endpoint) as good, RawClient(server.endpoint) as bad:
        good.hello()
        good.request({"type": "open", "session": "g"})
        end_id = send_line(good, "g", s16(short_line))
        for junk in (b"", b"\xff" * 100, msgpack.packb({"type": "audio"}), msgpack.packb({"type": 3})):
            bad.send(junk)
        ticks, _, line_end, errors = good.collect_line("g", end_id)
        assert errors == [] and line_end.ticks == len(ticks) > 0
        assert [m.code for m, _ in bad.sync()] == ["bad_message", "bad_message", "hello_required", "bad_message"]


def test_ticks_wait_for_exactly_the_lookahead_the_server_announces(client, short_line):
    opened = client.request({"type": "open", "session": "la", "lookahead_s": 0.0})
    assert opened.lookahead_s > 0.05, "a zero lookahead is raised to what the generator needs"
    sent_s = 1.0
    client.send({"type": "audio", "session": "la", "seq": 0, "rate": 16000}, s16(short_line[:int(sent_s * 16000)]))
    ticks = [m for m, _ in client.sync() if m.type == "tick"]  # all the chunk's ticks come before the pong
    assert ticks, "ticks flow before the line ends"
    latest = max(t.time for t in ticks)
    assert sent_s - opened.lookahead_s - 1.5 / 30 <= latest <= sent_s - opened.lookahead_s + 1e-6


def test_the_whole_server_has_a_session_limit_too():
    with running_server(limits=Limits(max_sessions=3, max_sessions_per_client=2)) as server:
        with RawClient(server.endpoint) as first, RawClient(server.endpoint) as second:
            first.hello()
            second.hello()
            assert [first.request({"type": "open", "session": n}).type for n in "ab"] == ["opened", "opened"]
            assert second.request({"type": "open", "session": "a"}).type == "opened"  # names are per client
            full = second.request({"type": "open", "session": "b"})
            assert (full.code, full.details["limit"]) == ("too_many_sessions", 3) and "full" in full.message
            first.request({"type": "close", "session": "a"})
            assert second.request({"type": "open", "session": "b"}).type == "opened"


def test_gaze_and_controls_reach_the_face(client, short_line):
    results = {}
    for name, events in (("free", []),
                         ("steered", [{"type": "gaze", "yaw": 25.0, "pitch": -10.0, "time": 0.0},
                                      {"type": "controls", "motion_amplitude": 0.0, "time": 0.0}])):
        client.request({"type": "open", "session": name})
        for event in events:
            client.send({**event, "session": name})
        ticks, _, _, errors = client.collect_line(name, send_line(client, name, s16(short_line)))
        assert errors == []
        late = ticks[len(ticks) // 2:]  # after the ramps
        results[name] = (np.mean([t.gaze_left for t in late], axis=0), np.ptp([t.head_rotation for t in late], axis=0))
    gaze, head_range = results["steered"]
    assert gaze[0] > results["free"][0][0] + 10 and gaze[1] < results["free"][0][1] - 4, "the eyes turn to the target"
    assert head_range.max() < results["free"][1].max() / 2, "motion_amplitude 0 calms the head"


def test_a_message_with_a_part_that_is_not_bytes_is_refused_before_any_part_goes():
    """The server sends a message part by part; a bad part found after the client's identity had
    gone would leave the ROUTER mid-message, and the next client's message would be glued to it."""
    import zmq

    from npcface.bridge.server import ClientState, Server

    server = Server("tcp://127.0.0.1:0")
    context = zmq.Context()
    dealers = [context.socket(zmq.DEALER) for _ in range(2)]
    try:
        states = []
        for dealer in dealers:
            dealer.connect(server.endpoint)
            dealer.send(b"hi")
            assert server.socket.poll(int(WAIT_S * 1000))
            states.append(ClientState(server.socket.recv_multipart()[0], time.monotonic()))
        with pytest.raises(TypeError, match="str"):
            server.send(states[0], [b"first part", "not bytes"])
        server.send(states[1], [b"whole", b"message"])
        assert dealers[1].poll(int(WAIT_S * 1000))
        assert dealers[1].recv_multipart() == [b"whole", b"message"]
        assert dealers[0].poll(200) == 0, "nothing of the refused message reached its client"
    finally:
        for dealer in dealers:
            dealer.close(0)
        context.term()
        server.close()


def test_a_line_whose_last_step_fails_still_ends_and_the_next_line_ends_too(client, short_line, monkeypatch):
    """end_line whose final motion step raises (an internal failure): the client gets the error and
    the line's line_end; the session's next line ends normally (its line_end does not wait behind
    the broken one for good)."""
    from npcface.core.motion.generator import MotionStream

    layers = MotionStream._layers_until

    def broken_tail(self, last_index, cues):  # the frames of the line's last rows
        if self._finished:
            raise RuntimeError("a bug at the end of the line")
        return layers(self, last_index, cues)

    client.request({"type": "open", "session": "f"})
    monkeypatch.setattr(MotionStream, "_layers_until", broken_tail)
    end_id = send_line(client, "f", s16(short_line))
    _, _, line_end, errors = client.collect_line("f", end_id)
    assert [(e.code, e.id, e.session) for e in errors] == [("internal", end_id, "f")]
    assert line_end.duration == pytest.approx(len(short_line) / 16000, abs=1e-3)
    monkeypatch.setattr(MotionStream, "_layers_until", layers)
    end_id = send_line(client, "f", s16(short_line))
    ticks, _, line_end, errors = client.collect_line("f", end_id)
    assert errors == [] and line_end.line == 1 and len(ticks) == line_end.ticks > 30
