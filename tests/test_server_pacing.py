"""How often the sidecar steps its talking sessions (`serve --step-interval-ms`, PROTOCOL.md 7.2):
audio that arrives soon after a step waits for the next one, with the other sessions' chunks;
audio after a quiet spell is stepped at once; 0 steps after every burst. Real sockets."""
from __future__ import annotations

import subprocess
import time

import numpy as np
import pytest

import npcface.bridge.server as server_module
from npcface.bridge.server import Server
from npcface.core.session import step_sessions
from server_helpers import NPCFACE, RawClient, greeting_pcm, running_server, s16


@pytest.fixture()
def steps(monkeypatch) -> list[tuple[float, int]]:
    """(time.monotonic(), sessions stepped) of every step of the talking sessions."""
    seen: list[tuple[float, int]] = []

    def recording_step(sessions, *on_error):
        seen.append((time.monotonic(), len(sessions)))
        return step_sessions(sessions, *on_error)

    monkeypatch.setattr(server_module, "step_sessions", recording_step)
    return seen


# The first chunks are 0.3 s: with the default lookahead (0.12 s) their last tick is at 0.167 s at
# 30 fps; a tick after 0.2 s needs the next chunk.
LAST_TICK_OF_FIRST_CHUNK_S = 0.2


def _chunk(seconds: float, offset: float) -> bytes:
    samples, _ = greeting_pcm()
    start = int(offset * 16000)
    return s16(samples[start:start + int(seconds * 16000)])


def _open(client: RawClient, names: list[str]) -> None:
    assert client.hello().type == "welcome"
    for name in names:
        reply = client.request({"type": "open", "session": name, "fps": 30, "motion": "learned"})
        assert reply.type == "opened", reply


def _tick_after(client: RawClient, session: str, time_s: float = -1.0) -> None:
    """Read until a tick of ``session`` later than ``time_s`` on its line arrives (earlier ones,
    left from a step before, are skipped); no error may come."""
    def arrived(received: list) -> bool:
        if not received:
            return False
        message = received[-1].message
        assert message.type != "error", message
        return message.type == "tick" and message.session == session and message.time > time_s

    client.receive_until(arrived)


def _two_bursts_after_a_step(client: RawClient, steps: list[tuple[float, int]], pause_s: float) -> float:
    """Session a's first chunk, stepped; then b's first chunk and, ``pause_s`` later, a's next
    one, as two bursts; waits for both sessions' ticks of them. The time of the first step."""
    _open(client, ["a", "b"])
    client.send({"type": "audio", "session": "a", "seq": 0, "rate": 16000}, _chunk(0.3, 0.5))
    _tick_after(client, "a")
    first = steps[-1][0]
    client.send({"type": "audio", "session": "b", "seq": 0, "rate": 16000}, _chunk(0.3, 0.5))
    time.sleep(pause_s)
    client.send({"type": "audio", "session": "a", "seq": 1, "rate": 16000}, _chunk(0.1, 0.8))
    _tick_after(client, "b")
    _tick_after(client, "a", LAST_TICK_OF_FIRST_CHUNK_S)
    return first


def test_audio_soon_after_a_step_waits_for_the_next_one_with_the_other_sessions(steps):
    with running_server(step_interval_s=0.5) as server, RawClient(server.endpoint) as client:
        first = _two_bursts_after_a_step(client, steps, pause_s=0.1)  # both within the interval
    later = [(at, count) for at, count in steps if at > first]
    assert later[0][1] == 2, later  # one step held both sessions' audio
    # not before the interval, and at its end (not at the loop's next 1 s wake-up)
    assert first + 0.5 - 0.005 <= later[0][0] < first + 0.8, later[0][0] - first


def test_a_line_end_alone_waits_for_the_step_interval_and_no_longer():
    with running_server(step_interval_s=0.3) as server, RawClient(server.endpoint) as client:
        _open(client, ["a"])
        client.send({"type": "audio", "session": "a", "seq": 0, "rate": 16000}, _chunk(0.3, 0.5))
        _tick_after(client, "a")
        stepped = time.monotonic()  # the step was at most this long ago
        client.send({"type": "end_line", "id": "end", "session": "a"})
        _, _, _, errors = client.collect_line("a", "end")
        waited = time.monotonic() - stepped
        assert not errors
    # the end waits for the interval's end (not the loop's next 1 s wake-up, nor not at all)
    assert 0.3 - 0.1 <= waited < 0.7, waited


def test_a_frame_ack_does_not_step_early_but_a_ping_does(steps):
    """A client's other requests step its queued audio first (its ticks come before the reply),
    except frame_acks, which come one per frame and are handled ahead of audio anyway."""
    with running_server(step_interval_s=0.5) as server, RawClient(server.endpoint) as client:
        _open(client, ["a", "b"])
        client.send({"type": "audio", "session": "a", "seq": 0, "rate": 16000}, _chunk(0.3, 0.5))
        _tick_after(client, "a")
        first = steps[-1][0]
        client.send({"type": "audio", "session": "a", "seq": 1, "rate": 16000}, _chunk(0.1, 0.8))
        client.send({"type": "frame_ack", "session": "a"})
        _tick_after(client, "a", LAST_TICK_OF_FIRST_CHUNK_S)
        acked = [at for at, _ in steps if at > first]
        client.send({"type": "audio", "session": "b", "seq": 0, "rate": 16000}, _chunk(0.3, 0.5))
        assert client.request({"type": "ping"}).type == "pong"
        pinged = [at for at, _ in steps if at > acked[0]]
    assert acked[0] >= first + 0.5 - 0.005, acked[0] - first  # the ack did not step a's chunk early
    assert pinged and pinged[0] < acked[0] + 0.3  # the ping stepped b's chunk before its pong


def test_audio_after_a_quiet_spell_is_stepped_at_once(steps):
    with running_server(step_interval_s=1.0) as server, RawClient(server.endpoint) as client:
        _open(client, ["a"])
        client.send({"type": "audio", "session": "a", "seq": 0, "rate": 16000}, _chunk(0.3, 0.5))
        _tick_after(client, "a")
        time.sleep(max(0.0, steps[-1][0] + 1.2 - time.monotonic()))  # the interval has passed
        sent = time.monotonic()
        client.send({"type": "audio", "session": "a", "seq": 1, "rate": 16000}, _chunk(0.1, 0.8))
        _tick_after(client, "a", LAST_TICK_OF_FIRST_CHUNK_S)
    # not held to a later interval boundary (that would be ~1 s after it was sent)
    assert steps[-1][0] - sent < 0.5, steps[-1][0] - sent


class _Clock:
    now = 100.0

    def monotonic(self) -> float:
        return self.now


@pytest.mark.parametrize("interval, step_takes, stepped_at", [
    (0.0, 0.0, [0.0, 0.001, 0.002, 0.006, 0.0101, 0.012, 5.0]),  # 0: every turn that finds audio queued
    (0.01, 0.0, [0.0, 0.0101, 5.0]),  # the turns up to 0.006 and at 0.012 wait; 5.0 comes after a quiet spell
    (0.01, 0.006, [0.0, 0.006, 0.012, 0.018, 0.024, 0.03, 5.0]),  # steps of half the interval or more: none waits
])
def test_the_loop_steps_at_most_once_per_interval(monkeypatch, interval, step_takes, stepped_at):
    """``_step_talking_when_due`` on a clock the test moves: each loop turn that finds audio
    queued steps only if the interval has passed since the last step began, or if that step
    took half the interval or more (a busy loop batches without waiting)."""
    server = Server("tcp://127.0.0.1:0", step_interval_s=interval)
    clock = _Clock()
    monkeypatch.setattr(server_module, "time", clock)  # the loop's clock only (server.py's `time`)
    stepped: list[float] = []

    def step() -> None:
        stepped.append(round(clock.now - 100.0, 6))
        clock.now += step_takes
        server._to_step.clear()

    server._step_talking = step
    try:
        for at in (0.0, 0.001, 0.002, 0.006, 0.0101, 0.012, 5.0):
            clock.now = max(clock.now, 100.0 + at)  # a turn begins when the last one has ended
            server._to_step[(b"c", "a")] = (None, None)  # audio queued by this turn's requests
            server._step_talking_when_due()
        server._to_step.clear()
        clock.now = 110.0
        server._step_talking_when_due()  # nothing queued: no step
    finally:
        monkeypatch.undo()
        server.close()
    assert stepped == stepped_at


@pytest.mark.parametrize("value", [-0.001, 1.5, float("nan"), "10", True])
def test_a_bad_step_interval_is_refused_by_name(value):
    with pytest.raises(ValueError, match="step_interval_s must be in"):
        Server("tcp://127.0.0.1:0", step_interval_s=value)


@pytest.mark.parametrize("value", ["-1", "1001", "nan", "inf"])
def test_serve_refuses_a_bad_step_interval_in_one_line(value):
    result = subprocess.run([*NPCFACE, "serve", "--bind", "tcp://127.0.0.1:0", "--step-interval-ms", value],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1, result.stderr
    assert "--step-interval-ms" in result.stderr and "Traceback" not in result.stderr


def test_ticks_stepped_at_the_interval_equal_those_stepped_at_once(steps):
    """Pacing only regroups steps: a line's ticks are the same numbers either way."""
    pcm = _chunk(1.5, 0.0)
    chunks = [pcm[i:i + 640] for i in range(0, len(pcm), 640)]
    arrays, counts = [], []
    for interval in (0.0, 0.05):
        before = len(steps)
        with running_server(step_interval_s=interval) as server, RawClient(server.endpoint) as client:
            _open(client, ["a"])
            for seq, chunk in enumerate(chunks):
                client.send({"type": "audio", "session": "a", "seq": seq, "rate": 16000}, chunk)
                time.sleep(0.005)
            client.send({"type": "end_line", "id": "end", "session": "a"})
            ticks, _, _, errors = client.collect_line("a", "end")
            assert not errors
            arrays.append(np.array([[t.index, *t.arkit] for t in ticks]))
        counts.append(len(steps) - before)
    assert len(arrays[0]) > 30
    assert counts[1] < counts[0] / 2, counts  # 20 ms chunks every 5 ms: several a step at 50 ms
    np.testing.assert_allclose(arrays[1], arrays[0], rtol=0, atol=1e-9)
