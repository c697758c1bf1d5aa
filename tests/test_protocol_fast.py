"""The server's hot-path shortcuts give exactly what the full path gives: headers unpacked in C
equal the checked unpacking (or its error), ticks encoded from plain values are the bytes of the
Tick model's encoding."""
from __future__ import annotations

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from npcface.bridge import protocol as p
from npcface.bridge.protocol import ProtocolError
from npcface.bridge.server_session import WireSession
from npcface.core.types import MotionFrame

msgpack_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False) | st.text(max_size=8)
    | st.binary(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(inner.filter(lambda v: not isinstance(v, (list, dict))),
                                                                 inner, max_size=3),
    max_leaves=8)


@settings(max_examples=400, deadline=None)
@given(value=msgpack_values | st.dictionaries(st.sampled_from(["type", "id", "session"]) | msgpack_values.filter(
    lambda v: not isinstance(v, (list, dict))), msgpack_values, max_size=4))
def test_headers_unpacked_in_c_equal_the_checked_unpacking(value):
    raw = msgpack.packb(value, use_bin_type=True)
    for candidate in (raw, raw[:-1]):  # and truncated
        try:
            expected = p._unpack_header_checked(candidate)
        except ProtocolError as exc:
            with pytest.raises(ProtocolError) as caught:
                p.unpack_header(candidate)
            assert (caught.value.code, str(caught.value), caught.value.readable) == (exc.code, str(exc), exc.readable)
            continue
        assert p.unpack_header(candidate) == expected


def test_frame_acks_are_still_recognised_and_others_are_not():
    assert p.is_frame_ack([msgpack.packb({"type": "frame_ack", "session": "s"})])
    assert not p.is_frame_ack([msgpack.packb({"type": "audio", "session": "frame_ack"}), b"x"])
    assert not p.is_frame_ack([msgpack.packb({"type": "audio", "session": "s"})])


def reference_tick(wire: WireSession, motion: MotionFrame, index: int, idle: bool) -> list[bytes]:
    """The tick as the server built it before the shortcut: the Tick model, encoded."""
    from npcface.core.motion.visemes import visemes_from_blendshapes, vrm_from_blendshapes

    channels = wire.settings.channels
    floats = lambda values: [float(v) for v in values]  # noqa: E731
    tick = p.Tick(session=wire.name, line=None if idle else wire.line, idle=idle, index=index, time=float(motion.time),
                  head_rotation=floats(motion.head_rotation), head_translation=floats(motion.head_translation),
                  gaze_left=floats(motion.gaze_left), gaze_right=floats(motion.gaze_right),
                  arkit=floats(motion.blendshapes) if "arkit" in channels else None,
                  visemes=floats(visemes_from_blendshapes(motion.blendshapes)) if "visemes" in channels else None,
                  vrm=floats(vrm_from_blendshapes(motion.blendshapes)) if "vrm" in channels else None)
    return p.encode(tick, minor=wire.minor)


@pytest.mark.parametrize("channels", [["arkit"], [], ["visemes"], ["arkit", "visemes", "vrm"], ["vrm", "arkit"]])
@pytest.mark.parametrize("minor", [0, 1, 2])
def test_ticks_encoded_from_values_are_the_bytes_of_the_tick_model(channels, minor):
    rng = np.random.default_rng(len(channels) + 10 * minor)
    wire = WireSession("guard", p.Open(session="guard", channels=channels), npc=None, minor=minor)
    wire.start_line(0.0)
    for index in range(5):
        motion = MotionFrame(np.float64(index / 30), tuple(rng.normal(size=3)), tuple(rng.normal(size=3).tolist()),
                             (np.float32(rng.normal()), 0.5), tuple(rng.normal(size=2)),
                             rng.random(52).astype(np.float32))
        for idle in (False, True):
            assert wire._tick(motion, index, idle) == reference_tick(wire, motion, index, idle)


# a valid request of each type, which the drawn fields then change (or break)
VALID = {"hello": {"protocol": "1.2"}, "upload_avatar": {}, "open": {"session": "n1"},
         "audio": {"session": "n1", "seq": 0, "rate": 16000}, "end_line": {"session": "n1"},
         "emotion": {"session": "n1", "emotion": "happy"}, "gaze": {"session": "n1", "yaw": 1.0, "pitch": 2},
         "controls": {"session": "n1"}, "frame_ack": {"session": "n1"}, "close": {"session": "n1"}, "ping": {},
         "stats": {}}
request_fields = st.dictionaries(
    st.sampled_from(["id", "session", "seq", "rate", "channels", "format", "text", "count", "emotion", "yaw",
                     "pitch", "time", "protocol", "fps", "outputs", "idle", "motion", "bogus"]),
    st.none() | st.booleans() | st.integers(-5, 200_000) | st.sampled_from([0.0, 1.0, 2.0, 16000.0, 0.5, -1.5])
    | st.sampled_from(["s16le", "f32le", "n1", "", "x" * 70, "1.2", "happy", "rules", "1"])
    | st.lists(st.sampled_from(["latents", "arkit"]), max_size=3),
    max_size=3)


@settings(max_examples=800, deadline=None)
@given(kind=st.sampled_from(sorted(p._CLIENT_TYPES)), fields=request_fields)
def test_requests_parse_as_the_tagged_union_parses_them(kind, fields):
    """parse_request tries the request's own model first: it must accept exactly what the union
    accepts, as the same message, and its errors are the union's."""
    assert set(VALID) == set(p._CLIENT_TYPES)
    header = {**VALID[kind], **fields, "type": kind}
    payloads = [b"\x00\x00"] * p._CLIENT_TYPES[kind].payload_count
    try:
        expected = p._CLIENT_ADAPTER.validate_python(header)
    except p.ValidationError:
        with pytest.raises(ProtocolError) as caught:
            p.parse_request(header, payloads)
        assert caught.value.code == "bad_request"
        assert caught.value.details["errors"] == _union_errors(header)
        return
    parsed = p.parse_request(header, payloads)
    assert type(parsed) is type(expected) and parsed == expected
    assert parsed.model_fields_set == expected.model_fields_set


def _union_errors(header: dict) -> list[str]:
    try:
        p._CLIENT_ADAPTER.validate_python(header)
    except p.ValidationError as exc:
        return p._validation_messages(exc)
    raise AssertionError("the union accepted it")
