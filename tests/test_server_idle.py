"""Protocol 1.1 idle motion (PROTOCOL.md section 7.4), over real ZeroMQ sockets on loopback."""
from __future__ import annotations

import time

import numpy as np

from npcface.bridge.client import SidecarClient
from npcface.core.arkit import ARKIT_INDEX
from server_helpers import RawClient, greeting_pcm, s16, send_line

FPS = 30.0


def idle_ticks(messages, session: str = "npc") -> list:
    return [m for m, _ in messages if m.type == "tick" and m.session == session and m.idle]


def collect_for(client: RawClient, seconds: float) -> list:
    out, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        if client.socket.poll(int(max(deadline - time.monotonic(), 0) * 1000) + 1):
            out.append(client.recv(1.0))
    return out


def blink_count(ticks) -> int:
    blink = np.array([t.arkit[ARKIT_INDEX["EyeBlinkLeft"]] for t in ticks])
    return int(((blink[1:] > 0.5) & (blink[:-1] <= 0.5)).sum())


def test_idle_session_ticks_in_real_time_with_blinks_and_a_closed_mouth(client):
    opened = client.request({"type": "open", "session": "npc", "fps": FPS, "idle": True})
    assert opened.type == "opened" and opened.idle is True
    started = time.monotonic()
    ticks = idle_ticks(collect_for(client, 6.0))
    elapsed = time.monotonic() - started
    assert abs(len(ticks) - elapsed * FPS) <= 0.1 * elapsed * FPS, (len(ticks), elapsed)
    assert all(t.line is None for t in ticks)
    assert [t.index for t in ticks] == list(range(len(ticks)))
    times = np.array([t.time for t in ticks])
    assert np.allclose(np.diff(times), 1 / FPS, atol=1e-6) and times[0] == 0.0
    assert blink_count(ticks) >= 1, "no blink in 6 s of idling"
    jaw = max(t.arkit[ARKIT_INDEX["JawOpen"]] for t in ticks)
    assert jaw < 0.05, jaw
    head = np.array([t.head_rotation for t in ticks])
    assert head.std(axis=0).max() > 0.05, "the idle head does not move"


def test_no_idle_ticks_without_idle(client):
    assert client.request({"type": "open", "session": "npc", "fps": FPS}).idle is False
    messages = collect_for(client, 1.0)
    assert [m.type for m, _ in messages] == []


def test_a_line_stops_idle_ticks_and_idle_resumes_after_it(client):
    client.request({"type": "open", "session": "npc", "fps": FPS, "idle": True})
    before = idle_ticks(collect_for(client, 0.5))
    assert len(before) >= 10
    samples, _ = greeting_pcm()
    line = samples[:16000]  # 1 s of speech, sent at once
    sent = time.monotonic()
    end_id = send_line(client, "npc", s16(line))
    ticks, _, line_end, errors = client.collect_line("npc", end_id)
    assert not errors and line_end.line == 0
    line_ticks = [t for t in ticks if not t.idle]
    idle_during = [t for t in ticks if t.idle]
    assert line_ticks and all(t.line == 0 for t in line_ticks)
    # Idle ticks already queued may arrive just after the first chunk; none come after the line's first tick.
    first_line_tick = ticks.index(line_ticks[0])
    assert not any(t.idle for t in ticks[first_line_tick:]), "idle ticks interleaved with the line's"
    assert len(idle_during) <= 3
    # Idle resumes once the line would have finished playing (sent time + 1 s), at index 0 again.
    first = None
    while first is None:
        message, _ = client.recv(3.0)
        if message.type == "tick" and message.idle:
            first = message
    resumed_after = time.monotonic() - sent
    assert first.index == 0 and first.time == 0.0
    assert 0.95 <= resumed_after <= 1.5, resumed_after


def test_emotion_set_while_idling_shows_on_idle_ticks(client):
    client.request({"type": "open", "session": "npc", "fps": FPS, "idle": True})
    neutral = idle_ticks(collect_for(client, 0.5))
    client.send({"type": "emotion", "session": "npc", "emotion": "happy", "intensity": 1.0, "ramp": 0.1})
    happy = idle_ticks(collect_for(client, 1.0))[-10:]
    smile = ARKIT_INDEX["MouthSmileLeft"]
    assert np.mean([t.arkit[smile] for t in happy]) > np.mean([t.arkit[smile] for t in neutral]) + 0.2


def test_close_stops_idle_ticks_and_the_server_goes_on(client):
    client.request({"type": "open", "session": "npc", "fps": FPS, "idle": True})
    assert idle_ticks(collect_for(client, 0.4))
    closed = client.request({"type": "close", "session": "npc"})
    assert closed.type == "closed" and closed.ticks_sent >= 10
    client.drain(0.1)  # ticks sent before the close reply
    assert idle_ticks(collect_for(client, 0.5)) == []
    assert client.request({"type": "ping"}).type == "pong"


def test_end_line_without_a_line_is_refused_and_idle_goes_on(client):
    client.request({"type": "open", "session": "npc", "fps": FPS, "idle": True})
    reply = client.request({"type": "end_line", "session": "npc"})
    assert reply.type == "error" and reply.code == "no_line"
    assert len(idle_ticks(collect_for(client, 0.5))) >= 10


def test_python_client_keeps_idle_ticks_out_of_lines(server):
    samples, text = greeting_pcm()
    with SidecarClient(server.endpoint) as sidecar:
        sidecar.open_session("npc", fps=FPS, idle=True)
        time.sleep(0.3)
        result = sidecar.say("npc", samples[:16000], 16000, realtime=False)
        assert result.ticks and all(t.line == 0 and not t.idle for t in result.ticks)
        received = sidecar.receive(timeout_s=2.0)
        assert received is not None and received[0].type == "tick" and received[0].idle


def test_rendering_idle_session_sends_idle_frames_within_the_window(server, client):
    from conftest import FIXTURES

    reply = client.request({"type": "upload_avatar"}, (FIXTURES / "portrait_astronaut.png").read_bytes(), timeout_s=60)
    assert reply.type == "avatar", reply
    client.request({"type": "open", "session": "npc", "fps": 10.0, "idle": True, "outputs": ["latents", "frames"],
                    "avatar": reply.avatar, "frame_size": [128, 128], "frame_format": "rgb8", "frame_window": 2})
    frames = []
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        if client.socket.poll(50):
            message, payloads = client.recv(1.0)
            if message.type == "frame":
                frames.append((message, payloads[0]))
                client.send({"type": "frame_ack", "session": "npc", "count": 1})
    assert len(frames) >= 5, len(frames)
    assert all(f.idle and f.line is None and len(p) == 128 * 128 * 3 for f, p in frames)
    indexes = [f.index for f, _ in frames]
    assert indexes == sorted(indexes)
    # Without acks the window holds: at most frame_window frames arrive, the rest are dropped.
    collect_for(client, 0.3)  # what the last acks let through
    unacked = [m for m, _ in collect_for(client, 1.5) if m.type == "frame"]
    assert len(unacked) <= 2
    stats = client.request({"type": "stats"})
    assert stats.type == "stats", stats
    assert stats.your_sessions[0]["frames_dropped"] > 0


def test_the_server_speaks_the_lower_minor_version(server):
    with RawClient(server.endpoint) as old, RawClient(server.endpoint) as new:
        assert old.request({"type": "hello", "protocol": "1.0"}).protocol == "1.0"
        assert new.request({"type": "hello", "protocol": "1.1"}).protocol == "1.1"
        assert new.request({"type": "hello", "protocol": "1.7"}).protocol == "1.1"
