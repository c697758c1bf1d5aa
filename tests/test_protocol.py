"""The wire format: encode/decode are an inverse pair; bad headers get specific error codes."""
from __future__ import annotations

import msgpack
import pytest
from hypothesis import given, settings, strategies as st

from npcface.bridge import protocol as p
from npcface.bridge.protocol import ProtocolError, decode_client, decode_server, encode

names = st.text(min_size=1, max_size=64)
ids = st.none() | st.text(max_size=64)
finite = dict(allow_nan=False, allow_infinity=False)

client_messages = st.one_of(
    st.builds(p.Hello, id=ids, protocol=st.text(max_size=16), client=st.text(max_size=128)),
    st.builds(p.Open, id=ids, session=names, fps=st.floats(1, 120, **finite),
              outputs=st.sampled_from([["latents"], ["frames"], ["latents", "frames"]]),
              channels=st.lists(st.sampled_from(["arkit", "visemes", "vrm"]), max_size=3, unique=True),
              frame_size=st.lists(st.integers(64, 1024), min_size=2, max_size=2),
              frame_policy=st.sampled_from(["latest", "every"]), seed=st.integers(0, 2**63 - 1)),
    st.builds(p.AudioChunk, id=ids, session=names, seq=st.integers(0, 2**31), rate=st.integers(8000, 192000),
              channels=st.sampled_from([1, 2]), format=st.sampled_from(["s16le", "f32le"]),
              text=st.none() | st.text(max_size=200)),
    st.builds(p.SetEmotion, id=ids, session=names, emotion=st.text(max_size=32),
              time=st.none() | st.floats(0, 1e6, **finite), intensity=st.floats(0, 1, **finite)),
    st.builds(p.SetGaze, id=ids, session=names, yaw=st.floats(-60, 60, **finite), pitch=st.floats(-60, 60, **finite)),
    st.builds(p.SetControls, id=ids, session=names, motion_amplitude=st.none() | st.floats(0, 3, **finite)),
    st.builds(p.FrameAck, session=names, count=st.integers(1, 64)),
    st.builds(p.EndLine, id=ids, session=names),
    st.builds(p.Close, id=ids, session=names),
    st.builds(p.Ping, id=ids),
    st.builds(p.StatsRequest, id=ids),
)


@settings(max_examples=300, deadline=None)
@given(message=client_messages, payload=st.binary(max_size=64))
def test_client_messages_survive_encode_then_decode(message, payload):
    payloads = [payload] * type(message).payload_count
    decoded, decoded_payloads = decode_client(encode(message, payloads))
    assert decoded == message and decoded_payloads == payloads


def test_upload_avatar_round_trips_with_its_image_frame():
    message = p.UploadAvatar(id="a", face_index=1)
    frames = encode(message, [b"\x89PNG..."])
    assert len(frames) == 2 and decode_client(frames) == (message, [b"\x89PNG..."])


def test_server_messages_survive_encode_then_decode():
    tick = p.Tick(session="npc", line=2, index=7, time=7 / 30, head_rotation=[1.5, -2.0, 0.25],
                  head_translation=[0.0, 0.01, 0.0], gaze_left=[3.0, 1.0], gaze_right=[2.5, 1.0],
                  arkit=[i / 52 for i in range(52)], vrm=[0.0] * 11)
    frame = p.FrameHeader(session="npc", line=0, index=3, time=0.1, width=4, height=2, format="rgba8")
    error = p.ErrorReply(id="x", code="out_of_order", message="m", request="audio", session="s",
                         details={"expected_seq": 3})
    assert decode_server(encode(tick)) == (tick, [])
    assert decode_server(encode(frame, [b"\x00" * 32])) == (frame, [b"\x00" * 32])
    assert decode_server(encode(error)) == (error, [])
    assert "visemes" not in msgpack.unpackb(encode(tick)[0]), "channels not asked for are left out"


def test_float32_and_integer_numbers_are_accepted_for_floats():
    header = {"type": "gaze", "session": "s", "yaw": 12.5, "pitch": 3}
    message, _ = decode_client([msgpack.packb(header, use_single_float=True)])
    assert (message.yaw, message.pitch) == (12.5, 3.0)


def test_clients_ignore_unknown_server_fields_and_types():
    newer = msgpack.packb({"type": "pong", "instance": "i", "id": None, "added_in_1_1": [1, 2]})
    assert decode_server([newer])[0] == p.Pong(instance="i")
    assert decode_server([msgpack.packb({"type": "hologram"})])[0] is None


@pytest.mark.parametrize("frames, code, fragment", [
    ([b""], "bad_message", "msgpack"),
    ([b"\x93\x01\x02"], "bad_message", "msgpack"),  # truncated array
    ([msgpack.packb([1, 2])], "bad_message", "map"),
    ([msgpack.packb({1: "x"})], "bad_message", "not a string: 1 (integer)"),  # valid msgpack, wrong key type
    ([msgpack.packb({"type": "ping", b"id": "x"}, use_bin_type=True)], "bad_message", "b'id' (bin)"),
    ([msgpack.packb({"type": "open", "session": "s", "outputs": {0: "latents"}})], "bad_message", "0 (integer)"),
    ([msgpack.packb({"id": "q"})], "bad_message", "'type'"),
    ([msgpack.packb({"type": "dance"})], "bad_request", "unknown message type"),
    ([msgpack.packb({"type": "ping", "colour": 1})], "bad_request", "colour"),
    ([msgpack.packb({"type": "audio", "session": "s", "seq": 0, "rate": 16000})], "bad_request", "payload"),
    ([msgpack.packb({"type": "audio", "session": "s", "seq": -1, "rate": 16000}), b"x"], "bad_request", "seq"),
    ([msgpack.packb({"type": "audio", "session": "s", "seq": 0, "rate": 16000, "format": "u8"}), b"x"],
     "bad_request", "format"),
    ([msgpack.packb({"type": "open", "session": ""})], "bad_request", "session"),
    ([msgpack.packb({"type": "open", "session": "s", "fps": True})], "bad_request", "fps"),
    ([msgpack.packb({"type": "gaze", "session": "s", "yaw": float("nan"), "pitch": 0})], "bad_request", "yaw"),
    ([msgpack.packb({"type": "frame_ack", "session": "s", "count": 1.5})], "bad_request", "count"),
    ([msgpack.packb({"type": "ping", "id": 42})], "bad_request", "id"),
])
def test_bad_headers_get_specific_codes(frames, code, fragment):
    with pytest.raises(ProtocolError) as caught:
        decode_client(frames)
    assert caught.value.code == code and fragment in str(caught.value)


def test_error_context_names_the_request_even_when_invalid():
    header = p.unpack_header(msgpack.packb({"type": "open", "id": "r7", "session": "guard", "fps": "fast"}))
    assert p.request_context(header) == ("r7", "open", "guard")
    assert p.request_context({"type": 5, "id": ["no"], "session": "x" * 100}) == (None, None, None)
