"""`npcface serve --workers 2` over real sockets: clients on different worker processes talk at
once and get the ticks a session gets alone; limits and stats hold across workers; a bad message
gets its error from its worker; a worker that dies is logged, its client told, the other client
carries on; SIGINT stops every process.

One server serves the module's tests in order (starting one loads the motion stack in each
worker); every test closes the sessions it opens."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from npcface.core.session import LineFormat, NpcSession, SessionSettings
from npcface.core.types import Controls
from server_helpers import NPCFACE, WAIT_S, RawClient, ServeProcess, frame_arrays, greeting_pcm, s16, tick_arrays

MAX_SESSIONS = 3
PER_CLIENT = 2


@pytest.fixture(scope="module")
def server():
    # --step-interval-ms 0: the workers step after every burst (the option reaches them; the
    # default interval is what every other server test runs)
    serve = ServeProcess("--bind", "tcp://127.0.0.1:0", "--workers", "2", "--warm-lines", "1", "--step-interval-ms", "0",
                         "--max-sessions", str(MAX_SESSIONS), "--max-sessions-per-client", str(PER_CLIENT),
                         start_timeout_s=300)
    yield serve
    if serve.process.poll() is None:
        serve.interrupt(timeout_s=60)


def worker_pids(log: str) -> dict[int, int]:
    """worker index -> pid of its latest process, from the front's log."""
    return {int(k): int(pid) for k, pid in re.findall(r"worker (\d+) started \(pid (\d+)\)", log)}


def pair(endpoint: str) -> tuple[RawClient, RawClient]:
    """Two connections, said hello in turn: the front gives each a worker of its own."""
    first, second = RawClient(endpoint), RawClient(endpoint)
    assert first.hello().type == "welcome" and second.hello().type == "welcome"
    return first, second


def alone(pcm: bytes, chunk_bytes: int) -> np.ndarray:
    """The ticks' numbers for one session stepped in-process with the server's open defaults."""
    controls = Controls(fps=30.0, seed=0, motion_amplitude=1.0, head_distance=1.0, language="en-us", lookahead_s=0.12)
    npc = NpcSession(SessionSettings(controls=controls, motion="learned"))
    npc.start_line(LineFormat(16000, 1, "s16le"))
    frames = []
    for start in range(0, len(pcm), chunk_bytes):
        frames += npc.push_pcm(pcm[start:start + chunk_bytes])
    frames += npc.end_line()
    return frame_arrays(frames)


def test_two_clients_on_different_workers_talk_at_once_and_get_the_ticks_of_one_alone(server):
    samples, _ = greeting_pcm()
    pcm, chunk = s16(samples[: 16000 * 2]), 640
    first, second = pair(server.endpoint)
    with first, second:
        for client in (first, second):
            assert client.request({"type": "open", "session": "npc", "motion": "learned"}).type == "opened"
        for seq, start in enumerate(range(0, len(pcm), chunk)):  # interleaved: both workers step at once
            for client in (first, second):
                client.send({"type": "audio", "session": "npc", "seq": seq, "rate": 16000}, pcm[start:start + chunk])
        for client in (first, second):
            client.send({"type": "end_line", "id": "end", "session": "npc"})
        expected = alone(pcm, chunk)
        for client in (first, second):
            ticks, _, line_end, errors = client.collect_line("npc", "end")
            assert not errors and line_end.ticks == len(ticks) == len(expected) > 50
            assert [t.index for t in ticks] == list(range(len(ticks)))
            # the loop coalesces what audio each turn finds: last-bit differences, as with any chunking
            np.testing.assert_allclose(tick_arrays(ticks), expected, rtol=0, atol=1e-9)
        for client in (first, second):
            assert client.request({"type": "close", "session": "npc"}).type == "closed"


def test_limits_and_stats_hold_across_workers(server):
    first, second = pair(server.endpoint)
    with first, second:
        for name in ("a", "b"):
            assert first.request({"type": "open", "session": name}).type == "opened"
        over = first.request({"type": "open", "session": "c"})
        assert (over.type, over.code, over.details["limit"]) == ("error", "too_many_sessions", PER_CLIENT)
        assert second.request({"type": "open", "session": "a"}).type == "opened"  # the server's 3rd
        full = second.request({"type": "open", "session": "b"})
        assert (full.code, full.details["limit"]) == ("too_many_sessions", MAX_SESSIONS) and "full" in full.message
        stats = second.request({"type": "stats"})
        assert (stats.clients >= 2, stats.sessions) == (True, MAX_SESSIONS)
        assert [s["session"] for s in stats.your_sessions] == ["a"]
        assert first.request({"type": "close", "session": "a"}).type == "closed"
        assert second.request({"type": "open", "session": "b"}).type == "opened"  # room again, seen by the other worker
        for client, names in ((first, ["b"]), (second, ["a", "b"])):
            for name in names:
                assert client.request({"type": "close", "session": name}).type == "closed"
        assert first.request({"type": "stats"}).sessions == 0


def test_a_bad_message_gets_its_error_from_its_worker_and_the_other_client_carries_on(server):
    first, second = pair(server.endpoint)
    with first, second:
        second.send(b"\xc1")  # never valid msgpack
        error, _ = second.recv()
        assert (error.type, error.code) == ("error", "bad_message")
        unknown = second.request({"type": "audio", "session": "ghost", "seq": 0, "rate": 16000}, b"\x00\x00")
        assert unknown.code == "unknown_session"
        pongs = [client.request({"type": "ping"}) for client in (first, second)]
        assert pongs[0].instance == pongs[1].instance  # one server, whichever worker answers


def test_a_worker_that_dies_is_logged_its_client_told_and_the_other_carries_on(server):
    first, second = pair(server.endpoint)
    with first, second:
        for client in (first, second):
            assert client.request({"type": "open", "session": "npc"}).type == "opened"
        before = worker_pids(server.logged())
        assert sorted(before) == [0, 1]
        os.kill(before[0], signal.SIGKILL)
        poller = zmq.Poller()
        for client in (first, second):
            poller.register(client.socket, zmq.POLLIN)
        told = dict(poller.poll(int(WAIT_S * 1000)))  # the dead worker's client hears of it
        assert len(told) == 1, "one client, the dead worker's, is told"
        victim, survivor = (first, second) if first.socket in told else (second, first)
        error, _ = victim.recv()
        assert (error.type, error.code) == ("error", "internal") and "stopped" in error.message
        assert "stopped unexpectedly" in server.logged()
        samples, _ = greeting_pcm()
        survivor.send({"type": "audio", "session": "npc", "seq": 0, "rate": 16000}, s16(samples[:16000]))
        survivor.send({"type": "end_line", "id": "end", "session": "npc"})
        ticks, _, line_end, errors = survivor.collect_line("npc", "end")
        assert not errors and len(ticks) == line_end.ticks > 10
        again = victim.request({"type": "open", "session": "npc"})
        assert again.code == "hello_required"  # its worker is gone: the protocol's recovery follows
        assert victim.hello().type == "welcome"
        assert victim.request({"type": "open", "session": "npc"}).type == "opened"
        for client in (first, second):
            assert client.request({"type": "close", "session": "npc"}).type == "closed"
        deadline = time.monotonic() + WAIT_S  # a new worker takes the dead one's place
        while worker_pids(server.logged())[0] == before[0]:
            assert time.monotonic() < deadline, "no new worker started"
            time.sleep(0.1)


def test_sigint_stops_every_process(server):
    pids = worker_pids(server.logged()).values()
    returncode, log = server.interrupt(timeout_s=60)
    assert returncode == 0 and "Traceback" not in log
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists() or "(Z)" in Path(f"/proc/{pid}/stat").read_text(), pid


@pytest.mark.parametrize("args, flag", [(["--workers", "0"], "--workers"), (["--workers", "65"], "--workers"),
                                        (["--render-threads", "0"], "--render-threads")])
def test_bad_worker_counts_get_one_line_errors(args, flag):
    result = subprocess.run([*NPCFACE, "serve", "--bind", "tcp://127.0.0.1:0", *args], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and flag in result.stderr


def test_a_busy_endpoint_stops_a_workers_server_in_one_line():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = subprocess.run([*NPCFACE, "serve", "--bind", f"tcp://127.0.0.1:{port}", "--workers", "2"],
                                capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "cannot listen" in result.stderr
