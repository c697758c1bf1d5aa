"""Rendered frames over the wire: avatars, formats, the credit window and drop-oldest policy."""
from __future__ import annotations

import io
import time

import msgpack
import numpy as np
import pytest
from PIL import Image

from npcface.bridge.limits import Limits
from server_helpers import WAIT_S, Arrival, RawClient, greeting_pcm, running_server, s16, send_line


@pytest.fixture(scope="module")
def line_pcm():
    samples, _ = greeting_pcm()
    return s16(samples[:16000])  # 1 s


@pytest.fixture(scope="module")
def avatar(server, portrait_bytes):
    with RawClient(server.endpoint) as client:
        client.hello()
        reply = client.request({"type": "upload_avatar"}, portrait_bytes, timeout_s=60)
    assert reply.type == "avatar", reply
    return reply.avatar


@pytest.fixture(scope="module")
def portrait_bytes():
    from conftest import FIXTURES

    return (FIXTURES / "portrait_astronaut.png").read_bytes()


def png_bytes(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def test_avatar_upload_is_cached_by_content(client, avatar, portrait_bytes):
    again = client.request({"type": "upload_avatar"}, portrait_bytes)
    assert (again.avatar, again.cached, again.width, again.height) == (avatar, True, 512, 512)


@pytest.mark.parametrize("payload, code", [
    (b"definitely not an image", "bad_image"),
    (png_bytes(np.full((200, 200, 3), 128, dtype=np.uint8)), "no_face"),
])
def test_bad_avatars_get_specific_errors(client, payload, code):
    reply = client.request({"type": "upload_avatar"}, payload, timeout_s=60)
    assert (reply.type, reply.code, reply.request) == ("error", code, "upload_avatar")


def test_upload_without_payload_is_a_bad_request(client):
    assert client.request({"type": "upload_avatar"}).code == "bad_request"


def test_every_frame_policy_delivers_all_frames_in_order(client, avatar, line_pcm):
    opened = client.request({"type": "open", "session": "f", "outputs": ["latents", "frames"], "avatar": avatar,
                             "frame_size": [160, 128], "frame_format": "jpeg", "frame_policy": "every"})
    assert opened.type == "opened", opened
    end_id = send_line(client, "f", line_pcm)
    ticks, frames = [], []
    while True:  # acknowledge as we go, like a real client
        message, payloads = client.recv(60)
        if message.type == "frame":
            frames.append((message, payloads[0]))
            client.send({"type": "frame_ack", "session": "f"})
        elif message.type == "tick":
            ticks.append(message)
        elif message.type == "line_end" and message.id == end_id:
            break
    assert (message.frames_sent, message.frames_dropped) == (len(ticks), 0)
    assert [h.index for h, _ in frames] == [t.index for t in ticks]
    assert [h.time for h, _ in frames] == [t.time for t in ticks]
    first = np.asarray(Image.open(io.BytesIO(frames[0][1])))
    assert first.shape == (128, 160, 3)
    moved = [np.abs(np.asarray(Image.open(io.BytesIO(p)), dtype=int) - first).mean() for _, p in frames]
    assert max(moved) > 1.0, "the portrait should move while it speaks"


def test_a_client_that_stops_reading_frames_gets_the_newest_ones_and_a_drop_count(client, avatar, line_pcm):
    client.request({"type": "open", "session": "slow", "outputs": ["latents", "frames"], "avatar": avatar,
                    "frame_size": [128, 128], "frame_format": "rgb8", "frame_window": 2})
    end_id = send_line(client, "slow", line_pcm)
    # Not acknowledging: wait for the window's worth of frames, then until the server has dropped
    # some (ticks keep coming, each wants a frame): everything it sent before its stats reply is
    # in by then, and that is still only the window's worth.
    received = client.receive_until(lambda got: sum(a.message.type == "frame" for a in got) >= 2)
    while (stats := client.request({"type": "stats"}).your_sessions[0])["frames_dropped"] == 0:
        assert time.monotonic() - received[-1].at < WAIT_S, "no frame was ever dropped"
        time.sleep(0.05)
    received += [Arrival(m, p, time.monotonic()) for m, p in client.backlog]
    client.backlog.clear()
    frames = [(a.message, a.payloads[0]) for a in received if a.message.type == "frame"]
    ticks = [a.message for a in received if a.message.type == "tick"]
    assert len(frames) == 2, "exactly the window's worth of frames before any acknowledgement"
    assert all(len(p) == 128 * 128 * 3 for _, p in frames)
    assert stats["frames_dropped"] > 0 and stats["frames_in_flight"] == 2
    client.send({"type": "frame_ack", "session": "slow", "count": 2})
    # On a loaded machine the renderer may fall so far behind that every frame but the last two
    # was late and dropped: then those two took the window and line_end came before the ack.
    line_end = next((a.message for a in received if a.message.type == "line_end" and a.message.id == end_id), None)
    while line_end is None:  # now catch up, acknowledging each frame as it comes
        message, payloads = client.recv()
        if message.type == "frame":
            frames.append((message, payloads[0]))
            client.send({"type": "frame_ack", "session": "slow", "count": 1})
        elif message.type == "tick":
            ticks.append(message)
        elif message.type == "line_end" and message.id == end_id:
            line_end = message
    assert line_end.ticks == len(ticks), "ticks are never dropped"
    assert line_end.frames_sent == len(frames) and line_end.frames_sent + line_end.frames_dropped == len(ticks)
    indices = [h.index for h, _ in frames]
    assert indices == sorted(indices) and indices[-1] == ticks[-1].index, "drop oldest keeps the newest"


def test_avatar_pixel_limit():
    with running_server(limits=Limits(max_avatar_pixels=100_000)) as server, RawClient(server.endpoint) as client:
        client.hello()
        from conftest import FIXTURES

        reply = client.request({"type": "upload_avatar"}, (FIXTURES / "portrait_astronaut.png").read_bytes())
    assert (reply.code, reply.details["limit"]) == ("avatar_too_large", 100_000)


def play_lines(client: RawClient, session: str, pcm: bytes, lines: int, streamed: bool) -> list[tuple[list[int], int, object]]:
    """Send ``lines`` lines (each at once, or chunk by chunk at the pace of playback), acknowledging
    every frame as soon as it arrives, like a player showing them; per line (frame indices, ticks,
    line_end)."""
    results = []
    chunk_bytes, chunk_s = 8000, 0.25
    for _ in range(lines):
        started = time.monotonic()
        chunks = [pcm[i:i + chunk_bytes] for i in range(0, len(pcm), chunk_bytes)]
        end_id, indices, ticks, seq = None, [], 0, 0
        while True:
            if seq < len(chunks) and (not streamed or time.monotonic() >= started + seq * chunk_s):
                client.send({"type": "audio", "session": session, "seq": seq, "rate": 16000}, chunks[seq])
                seq += 1
                continue
            if seq == len(chunks) and end_id is None:
                end_id = f"end-{time.monotonic()}"
                client.send({"type": "end_line", "id": end_id, "session": session})
            if not client.socket.poll(10):
                continue
            message, _ = client.recv()
            if message.type == "frame":
                client.send({"type": "frame_ack", "session": session})
                indices.append(message.index)
            elif message.type == "tick":
                ticks += 1
            elif message.type == "line_end" and message.id == end_id:
                results.append((indices, ticks, message))
                break
    return results


@pytest.mark.parametrize("streamed", [False, True], ids=["sent_at_once", "streamed_in_real_time"])
def test_latest_policy_delivers_every_frame_of_a_line_when_the_renderer_keeps_up(client, avatar, streamed):
    """Issue 11: with "latest", the first frames of every line were dropped although every frame
    was acknowledged at once: a burst of ticks counted as a renderer that is behind, and the acks
    waited behind the line's audio. A player saw a frozen portrait for the start of each line."""
    samples, _ = greeting_pcm()
    pcm = s16(samples[:48000])  # 3 s: 12 frames at 4 fps, 64x64 pixels; a renderer up to 1 s behind
    opened = client.request({"type": "open", "session": "live", "outputs": ["latents", "frames"], "avatar": avatar,
                             "fps": 4, "frame_size": [64, 64], "frame_format": "rgb8", "frame_policy": "latest"})
    assert opened.type == "opened", opened  # (the window's 4 frames at 4 fps) still keeps up
    for indices, ticks, line_end in play_lines(client, "live", pcm, lines=2, streamed=streamed):
        assert ticks == line_end.ticks >= 11
        assert indices == list(range(ticks)), f"frames missing: {sorted(set(range(ticks)) - set(indices))}"
        assert (line_end.frames_sent, line_end.frames_dropped) == (ticks, 0)


def test_a_1_0_client_gets_frames_without_the_idle_field(server, avatar, line_pcm):
    with RawClient(server.endpoint) as old:
        old.hello("1.0")
        old.request({"type": "open", "session": "old", "outputs": ["frames"], "avatar": avatar,
                     "frame_size": [64, 64], "frame_format": "rgb8"})
        old.send({"type": "audio", "session": "old", "seq": 0, "rate": 16000}, line_pcm[:6400])
        while True:
            raw = old.socket.recv_multipart()
            header = msgpack.unpackb(raw[0], raw=False)
            if header["type"] == "frame":
                break
    assert "idle" not in header and header["line"] == 0 and len(raw[1]) == 64 * 64 * 3
