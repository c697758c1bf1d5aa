"""What the engine-client receive benches share (bench_csharp_client.py, bench_godot_client.py): a
sidecar stand-in that sends protocol messages as fast as a client takes them, the Python client's
receive path beside it, and the timing loop over kinds and clients."""
from __future__ import annotations

import multiprocessing
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import msgpack
import numpy as np
import zmq


def protocol_messages(frame_side: int) -> dict[str, list[bytes]]:
    """One tick and one frame message (frame_side x frame_side rgba8), as the sidecar encodes them."""
    from npcface.bridge.protocol import FrameHeader, Tick, encode

    rng = np.random.default_rng(0)
    tick = Tick(session="guard", line=0, index=41, time=41 / 30, head_rotation=[2.5, -1.25, 0.5],
                head_translation=[0.0, 0.001, -0.002], gaze_left=[3.0, -1.0], gaze_right=[3.2, -1.0],
                arkit=rng.random(52).tolist(), visemes=rng.random(15).tolist(), vrm=rng.random(11).tolist())
    frame = FrameHeader(session="guard", line=0, index=41, time=41 / 30, width=frame_side, height=frame_side,
                        format="rgba8")
    pixels = rng.integers(0, 256, frame_side * frame_side * 4, dtype=np.uint8).tobytes()
    return {"tick": encode(tick), "frame": encode(frame, [pixels])}


def message_sizes(frame_side: int) -> dict[str, int]:
    return {kind: sum(len(f) for f in frames) for kind, frames in protocol_messages(frame_side).items()}


def _sender(port_out, stop, frame_side: int) -> None:
    """The sidecar stand-in: answers each bench_go with COUNT messages of the asked kind."""
    messages = protocol_messages(frame_side)
    context = zmq.Context()
    router = context.socket(zmq.ROUTER)
    router.setsockopt(zmq.ROUTER_MANDATORY, 1)  # block at the high-water mark instead of dropping
    router.sndhwm = 256
    router.linger = 0
    port_out.put(router.bind_to_random_port("tcp://127.0.0.1"))
    while not stop.is_set():
        if not router.poll(100):
            continue
        identity, header, *_ = router.recv_multipart()
        request = msgpack.unpackb(header)
        if request.get("type") != "bench_go":
            continue
        frames = [identity, *messages[request["kind"]]]
        for _ in range(request["count"]):
            router.send_multipart(frames, copy=False)
    context.destroy(linger=0)


@contextmanager
def running_sender(frame_side: int) -> Iterator[int]:
    """The sidecar stand-in in its own process; yields its loopback port."""
    ports, stop = multiprocessing.Queue(), multiprocessing.Event()
    process = multiprocessing.Process(target=_sender, args=(ports, stop, frame_side), daemon=True)
    process.start()
    try:
        yield ports.get(timeout=60)
    finally:
        stop.set()
        process.join(10)


def receive_python(port: int, kind: str, count: int, decode: bool, frame_side: int, frames_as_arrays: bool) -> float:
    """Seconds for what bridge/client.py's SidecarClient does per message (recv_multipart +
    decode_server; with ``frames_as_arrays`` each frame becomes an (H, W, 4) array), or, without
    ``decode``, bare recv_multipart (the transport's ceiling)."""
    from npcface.bridge.client import frame_pixels
    from npcface.bridge.protocol import decode_server

    context = zmq.Context()
    dealer = context.socket(zmq.DEALER)
    dealer.linger = 0
    dealer.connect(f"tcp://127.0.0.1:{port}")
    checksum = 0
    start = time.perf_counter()
    dealer.send(msgpack.packb({"type": "bench_go", "kind": kind, "count": count}))
    for _ in range(count):
        frames = dealer.recv_multipart()
        if not decode:
            checksum += len(frames[-1])
            continue
        message, payloads = decode_server(frames)
        if kind == "tick":
            checksum += message.index + int(message.arkit[17] * 1000)
        elif frames_as_arrays:
            checksum += int(frame_pixels(message, payloads[0])[frame_side // 2, frame_side // 2, 0])
        else:
            checksum += message.index + payloads[0][len(payloads[0]) // 2]
    seconds = time.perf_counter() - start
    context.destroy(linger=0)
    return seconds


def time_clients(counts: dict[str, int], repeats: int,
                 clients: dict[str, Callable[[str, int], float]]) -> list[tuple[str, str, int, float, float]]:
    """(kind, client, count, best s, median s) for every kind and client, ``repeats`` runs each."""
    rows = []
    for kind, count in counts.items():
        for name, receive in clients.items():
            seconds = [receive(kind, count) for _ in range(repeats)]
            rows.append((kind, name, count, min(seconds), statistics.median(seconds)))
    return rows
