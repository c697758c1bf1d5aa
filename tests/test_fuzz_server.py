"""10,000+ random and mutated messages to a live server: it never crashes, every message gets one
answer or a documented silence (PROTOCOL.md section 6), and other clients keep being served."""
from __future__ import annotations

import collections
import copy
import math
import random

import msgpack

from npcface.bridge.limits import Limits
from npcface.bridge.protocol import SILENT_REQUESTS, ProtocolError, decode_client
from server_helpers import RawClient, running_server, send_line

MESSAGES = 10_000
STREAM_TYPES = {"tick", "frame"}  # traffic of lines in progress, not replies

TEMPLATES: list[tuple[dict, int]] = [
    ({"type": "hello", "protocol": "1.0", "client": "fuzz"}, 0),
    ({"type": "open", "session": "s", "outputs": ["latents"], "fps": 30, "channels": ["arkit", "vrm"]}, 0),
    ({"type": "audio", "session": "s", "seq": 0, "rate": 16000, "channels": 1, "format": "s16le"}, 1),
    ({"type": "end_line", "session": "s"}, 0),
    ({"type": "emotion", "session": "s", "emotion": "happy", "intensity": 0.5, "time": 0.1}, 0),
    ({"type": "gaze", "session": "s", "yaw": 10.0, "pitch": -5.0}, 0),
    ({"type": "controls", "session": "s", "motion_amplitude": 0.5}, 0),
    ({"type": "frame_ack", "session": "s", "count": 1}, 0),
    ({"type": "close", "session": "s"}, 0),
    ({"type": "ping"}, 0),
    ({"type": "stats"}, 0),
    ({"type": "upload_avatar"}, 1),
]
ODD_VALUES = [None, True, False, -1, 0, 1, 7, 2**40, -2**63, 2**64 - 1, 1.5, -0.0, math.nan, math.inf, -math.inf,
              "", "s", "t", "x" * 300, "happy", "latents", b"\x00\x01", [], [1, "a"], ["latents", "frames"],
              {"a": 1}, {"": None}, [[[]]]]


class Mutator:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)

    def value(self):
        rng = self.rng
        kind = rng.random()
        if kind < 0.6:
            return rng.choice(ODD_VALUES)
        if kind < 0.8:
            return rng.uniform(-1e6, 1e6) if rng.random() < 0.5 else rng.randint(-10**6, 10**6)
        return "".join(chr(rng.randint(0, 0x2FF)) for _ in range(rng.randint(0, 12)))

    def random_bytes(self, size: int) -> bytes:
        return bytes(self.rng.getrandbits(8) for _ in range(size))

    def message(self) -> list[bytes]:
        rng = self.rng
        roll = rng.random()
        if roll < 0.1:  # pure noise
            return [self.random_bytes(rng.randint(0, 40)) for _ in range(rng.randint(1, 3))]
        if roll < 0.2:  # valid msgpack, arbitrary shape
            return [msgpack.packb(self.value(), use_bin_type=True)]
        header, payload_count = copy.deepcopy(rng.choice(TEMPLATES))
        header["id"] = f"f{rng.getrandbits(32)}"
        if roll < 0.3:
            payloads = [self.random_bytes(rng.choice([0, 1, 2, 3, 320, 3201]))] * payload_count
            return [msgpack.packb(header, use_bin_type=True), *payloads]  # valid-ish, unmutated
        for _ in range(rng.randint(1, 3)):
            self.mutate(header)
        payloads = [self.random_bytes(rng.choice([0, 1, 2, 3, 64, 3200])) for _ in range(payload_count)]
        if rng.random() < 0.15:
            payloads = payloads[:-1] if payloads and rng.random() < 0.5 else payloads + [b"extra"]
        raw = msgpack.packb(header, use_bin_type=True)
        if rng.random() < 0.1:  # damage the bytes themselves
            cut = rng.randint(0, len(raw))
            raw = raw[:cut] + self.random_bytes(rng.randint(0, 3)) + raw[cut + 1:]
        return [raw, *payloads]

    def mutate(self, header: dict) -> None:
        rng = self.rng
        op = rng.random()
        keys = list(header)
        if op < 0.3 and keys:
            del header[rng.choice(keys)]
        elif op < 0.7 and keys:
            header[rng.choice(keys)] = self.value()
        elif op < 0.85:
            header[rng.choice(["colour", "seq", "text", "time", "avatar", "frame_window", "rate"])] = self.value()
        else:
            header["type"] = rng.choice([t for t, _ in [(h["type"], 0) for h, _ in TEMPLATES]] + ["nope", ""])


def expected_replies(frames: list[bytes]) -> tuple[int, int]:
    """(least, most) replies the protocol allows for this message from a client that said hello."""
    try:
        message, _ = decode_client(frames)
    except ProtocolError:
        return 1, 1  # an error naming it
    if message.type in SILENT_REQUESTS:
        return 0, 1  # silence, or an error
    return 1, 1


def next_reply(client: RawClient):
    """The next message that is not a line's ticks or frames."""
    while True:
        message, _ = client.recv(timeout_s=20)
        if message.type not in STREAM_TYPES:
            return message


def test_fuzzed_messages_never_break_the_server():
    mutator = Mutator(seed=20261124)
    counts = {"silent": 0, "answered": 0}
    codes: collections.Counter = collections.Counter()
    with running_server(limits=Limits(max_line_seconds=20.0)) as server:
        with RawClient(server.endpoint) as fuzz, RawClient(server.endpoint) as bystander:
            bystander.hello()
            bystander.request({"type": "open", "session": "b"})
            fuzz.hello()
            fuzz.request({"type": "open", "session": "s"})
            for number in range(MESSAGES):
                frames = mutator.message()
                fuzz.socket.send_multipart(frames)
                least, most = expected_replies(frames)
                sentinel = f"sentinel{number}"
                fuzz.send({"type": "ping", "id": sentinel})
                replies = []
                while True:
                    message, _ = fuzz.recv(timeout_s=20)
                    if getattr(message, "id", None) == sentinel:
                        break
                    if message.type not in STREAM_TYPES:
                        replies.append(message)
                header = _header_or_none(frames[0])
                if header is not None and header.get("type") == "upload_avatar" and least and not replies:
                    replies.append(fuzz.recv(timeout_s=20)[0])  # rigging answers from a worker, later
                if header is not None and header.get("type") == "end_line" and least and not replies:
                    replies.append(next_reply(fuzz))  # lines end together at the loop's next step, after the ping
                assert least <= len(replies) <= most, (frames[:1], replies)
                assert not any(getattr(r, "code", "") == "internal" for r in replies), (frames[:1], replies)
                codes.update(getattr(r, "code", r.type) for r in replies)
                counts["answered" if replies else "silent"] += 1
            # Everyone else was served all along, and still is.
            line_end = bystander.collect_line("b", send_line(bystander, "b", b"\x00\x10" * 16000))[2]
            assert line_end.ticks > 0
            assert fuzz.request({"type": "stats"}).type == "stats"
    assert counts["answered"] > MESSAGES / 2 and counts["silent"] > 100, counts
    # The mix reached deep into the handlers, not just the parser.
    assert {"bad_message", "bad_request", "unknown_session", "out_of_order", "bad_audio"} <= set(codes), codes
    print(counts, dict(codes))


def _header_or_none(raw: bytes):
    try:
        header = msgpack.unpackb(raw, raw=False)
    except (ValueError, TypeError, msgpack.UnpackException):
        return None
    return header if isinstance(header, dict) else None
