"""Stepping many talking streams together (what the sidecar does each loop turn) gives each one
exactly the frames it gets alone: core/audio/features.take_many, core/motion/stepping.step_streams,
core/session.step_sessions and the server's batched loop over real sockets."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import fixture_line
from npcface.core.audio.decode import load_audio
from npcface.core.audio.features import FEATURE_COLUMNS, FeatureStream, compute_features, slice_features, take_many
from npcface.core.motion.cues import compute_cues, compute_cues_many
from npcface.core.motion.generator import MotionGenerator
from npcface.core.motion.stepping import step_streams
from npcface.core.motion.learned import LearnedMotionGenerator
from npcface.core.session import LineFormat, NpcSession, SessionSettings, end_lines, step_sessions
from npcface.core.types import Controls, ControlEvent, EmotionEvent, GazeEvent, Phone, PhoneTimeline
from server_helpers import RawClient, fail_layers_for_seed, frame_arrays, greeting_pcm, s16, tick_arrays


@pytest.fixture(scope="module")
def greeting() -> np.ndarray:
    wav, _ = fixture_line("line_greeting")
    return load_audio(wav).samples[: 16000 * 2]  # 2 s: speech and a pause, quick


def test_take_many_gives_each_stream_the_rows_its_own_take_gives():
    rng = np.random.default_rng(1)
    signals = [rng.normal(0, 0.1, 12000) * np.sin(np.arange(12000) / (200.0 + 50 * k)) for k in range(4)]
    alone, together = [FeatureStream() for _ in signals], [FeatureStream() for _ in signals]
    positions = [0] * len(signals)
    for _ in range(40):
        for k, signal in enumerate(signals):
            size = int(rng.choice([0, 37, 160, 320, 999]))  # some streams get nothing this round
            chunk = signal[positions[k]:positions[k] + size]
            positions[k] += size
            alone[k].append(chunk)
            together[k].append(chunk)
        for own, batched in zip([s.take() for s in alone], take_many(together)):
            assert (own is None) == (batched is None)
            if own is not None:
                assert own.start_time == batched.start_time
                for name in FEATURE_COLUMNS:
                    np.testing.assert_array_equal(getattr(own, name), getattr(batched, name))


def test_cues_of_streams_batched_are_their_cues_alone(greeting):
    """Rows of different lengths and starts side by side give each stream exactly its own cues."""
    whole = compute_features(greeting)
    parts = [whole, slice_features(whole, 37), slice_features(whole, 150)]
    parts[2] = type(whole)(start_time=parts[2].start_time,
                           **{name: getattr(parts[2], name)[:20] for name in FEATURE_COLUMNS})  # short, ends early
    for batched, part in zip(compute_cues_many(parts), parts):
        alone = compute_cues(part)
        assert batched.num_rows == part.num_frames and batched.start_time == part.start_time
        for name in ("level", "voiced", "f1_open", "f2_round", "f2_spread", "fricative", "emphasis", "pitch",
                     "activity", "phrase", "dip", "held"):
            np.testing.assert_array_equal(getattr(batched, name), getattr(alone, name), err_msg=name)
    assert compute_cues(parts[0]).level.max() > 0.5  # real speech: the cues are not all zero


def make_streams():
    """Streams that differ in backend, seed, frame rate, emotion, gaze, controls and phones (none,
    or a line's aligned phones, as with text)."""
    no_phones = PhoneTimeline(phones=(), source="acoustic", language="en-us")
    aligned = PhoneTimeline(phones=tuple(Phone(label, 0.1 + 0.12 * i, 0.22 + 0.12 * i) for i, label in
                                         enumerate(["HH", "AH", "L", "OW", "M", "AY", "B", "EY", "K", "ER"])),
                            source="aligned", language="en-us")
    rules = MotionGenerator(Controls(fps=30.0, seed=1)).stream_with_phones(no_phones)
    learned = LearnedMotionGenerator(Controls(fps=60.0, seed=2)).stream()
    happy = LearnedMotionGenerator(Controls(fps=30.0, seed=3)).stream()
    happy.set_emotion(EmotionEvent(0.5, "happy", 0.7))
    looking = MotionGenerator(Controls(fps=25.0, seed=4)).stream_with_phones(aligned)
    looking.set_gaze(GazeEvent(0.4, 15.0, -5.0))
    looking.set_controls(ControlEvent(0.8, motion_amplitude=1.6, head_distance=0.7, ramp=0.3))
    looking.set_emotion(EmotionEvent(1.0, "angry", 0.5))
    with_text = LearnedMotionGenerator(Controls(fps=30.0, seed=5)).stream_with_phones(aligned)
    with_text.set_gaze(GazeEvent(1.2, -10.0, 3.0))
    return [rules, learned, happy, looking, with_text]


def test_streams_stepped_together_give_exactly_their_frames_alone(greeting):
    rng = np.random.default_rng(2)
    sizes = [list(rng.choice([37, 320, 700, 1600], size=200)) for _ in range(5)]

    def chunks(k: int):
        start = 0
        for size in sizes[k]:
            if start >= len(greeting):
                return
            yield greeting[start:start + size]
            start += size

    alone = []
    for k, stream in enumerate(make_streams()):
        frames = [f for chunk in chunks(k) for f in stream.push_audio(chunk)]
        alone.append(frames + stream.finish())

    streams = make_streams()
    feeds = [chunks(k) for k in range(len(streams))]
    together: list[list] = [[] for _ in streams]
    while True:
        fed = False
        for k, stream in enumerate(streams):
            chunk = next(feeds[k], None)
            if chunk is not None:
                stream.append_audio(chunk)
                fed = True
        for k, frames in enumerate(step_streams(streams)):
            together[k] += frames
        if not fed:
            break
    for k, stream in enumerate(streams):
        together[k] += stream.finish()
        assert len(together[k]) == len(alone[k]) > 20
        np.testing.assert_array_equal(frame_arrays(together[k]), frame_arrays(alone[k]))


def test_sessions_stepped_together_equal_push_pcm_and_idle_ones_get_nothing(greeting):
    pcm = s16(greeting)
    line = LineFormat(16000, 1, "s16le")

    def sessions():
        made = [NpcSession(SessionSettings(controls=Controls(fps=30.0, seed=s), motion="learned")) for s in (4, 5)]
        for npc in made:
            npc.start_line(line)
        return made + [NpcSession(SessionSettings())]  # the last one never starts a line

    alone = [[f for start in range(0, len(pcm), 640) for f in npc.push_pcm(pcm[start:start + 640])]
             for npc in sessions()[:2]]
    batch = sessions()
    together: list[list] = [[] for _ in batch]
    for start in range(0, len(pcm), 640):
        for npc in batch[:2]:
            npc.queue_pcm(pcm[start:start + 640])
        for k, frames in enumerate(step_sessions(batch)):
            together[k] += frames
    assert together[2] == []
    for k in range(2):
        assert len(together[k]) == len(alone[k]) > 20
        np.testing.assert_array_equal(frame_arrays(together[k]), frame_arrays(alone[k]))


def test_sessions_streamed_at_once_over_the_wire_get_the_ticks_of_one_alone(server, monkeypatch):
    import npcface.bridge.server as server_module
    import npcface.bridge.server_handlers as handlers

    batch_sizes = []

    def counting_step(sessions, *on_error):
        batch_sizes.append(sum(npc.in_line for npc in sessions))
        return step_sessions(sessions, *on_error)

    monkeypatch.setattr(server_module, "step_sessions", counting_step)
    end_batch_sizes = []

    def counting_ends(sessions, *on_error):
        end_batch_sizes.append(len(sessions))
        return end_lines(sessions, *on_error)

    monkeypatch.setattr(handlers, "end_lines", counting_ends)
    samples, _ = greeting_pcm()
    pcm = s16(samples[: 16000 * 3 // 2])
    chunks = [pcm[i:i + 640] for i in range(0, len(pcm), 640)]
    names = [f"npc{k}" for k in range(4)]
    with RawClient(server.endpoint) as client:
        assert client.request({"type": "hello", "protocol": "1.2"}).type == "welcome"
        for name in ["alone", *names]:
            assert client.request({"type": "open", "session": name, "fps": 30, "motion": "learned"}).type == "opened"
        for seq, chunk in enumerate(chunks):
            client.send({"type": "audio", "session": "alone", "seq": seq, "rate": 16000}, chunk)
        client.send({"type": "end_line", "id": "end-alone", "session": "alone"})
        alone, _, _, errors = client.collect_line("alone", "end-alone")
        assert not errors
        # every session's chunks back to back, unpaced: the loop finds many queued per turn
        for seq, chunk in enumerate(chunks):
            for name in names:
                client.send({"type": "audio", "session": name, "seq": seq, "rate": 16000}, chunk)
        for name in names:
            client.send({"type": "end_line", "id": f"end-{name}", "session": name})
        ticks = client.collect_lines(names)
    assert len(alone) > 30 and max(batch_sizes) > 1  # the loop did step several sessions at once
    assert max(end_batch_sizes) > 1  # and ended several lines at once (end_lines sent back to back)
    for name in names:
        assert [t.index for t in ticks[name]] == list(range(len(alone)))
        # The loop coalesces whatever audio each turn finds, so the network's matrix products see
        # other row counts than alone (last-bit differences, as with any other chunking).
        np.testing.assert_allclose(tick_arrays(ticks[name]), tick_arrays(alone), rtol=0, atol=1e-9)


def test_a_line_that_fails_to_step_gets_one_error_and_ends_while_the_others_go_on(server, monkeypatch):
    fail_layers_for_seed(monkeypatch, 13, "a bug in one line")
    samples, _ = greeting_pcm()
    chunks = [s16(samples[i:i + 320]) for i in range(0, 16000, 320)]
    with RawClient(server.endpoint) as client:
        assert client.request({"type": "hello", "protocol": "1.2"}).type == "welcome"
        for name, seed in (("healthy", 0), ("broken", 13)):  # learned, no text: stepped in the loop's batch
            header = {"type": "open", "session": name, "fps": 30, "seed": seed, "motion": "learned"}
            assert client.request(header).type == "opened"
        for seq, chunk in enumerate(chunks):
            for name in ("healthy", "broken"):
                client.send({"type": "audio", "session": name, "seq": seq, "rate": 16000}, chunk)
        client.send({"type": "end_line", "id": "end-healthy", "session": "healthy"})
        ticks, errors, ends = [], [], {}
        while len(ends) < 2:
            message, _ = client.recv()
            if message.type == "tick" and message.session == "healthy":
                ticks.append(message)
            elif message.type == "error":
                errors.append(message)
            elif message.type == "line_end":
                ends[message.session] = message
        assert client.request({"type": "ping"}).type == "pong"
    assert [e.code for e in errors if e.code == "internal"] == ["internal"] and errors[0].session == "broken", errors
    # the client's later chunks of the stopped line are refused as a new line's would be
    assert all(e.session == "broken" and e.code == "out_of_order" for e in errors[1:]), errors
    assert ends["healthy"].ticks == len(ticks) > 20 and ends["broken"].ticks == 0


def test_a_live_phone_stream_gives_the_same_frames_however_its_steps_are_grouped(greeting):
    """Live phones change with every push, so the frames a push makes due keep that push's phones
    for the step that computes them: a sidecar that steps it after every third chunk sends
    exactly the frames of pushing chunk by chunk (more kinds: tests/test_stream_live_batch.py)."""
    chunks = [greeting[i:i + 640] for i in range(0, len(greeting), 640)]
    generator = MotionGenerator(Controls(fps=30.0, seed=6))
    pushed = generator.stream(None)  # no text: phones recognised live
    alone = [f for chunk in chunks for f in pushed.push_audio(chunk)] + pushed.finish()
    grouped_stream = generator.stream(None)
    grouped = []
    for i, chunk in enumerate(chunks):
        grouped_stream.append_audio(chunk)
        if i % 3 == 2:
            grouped += step_streams([grouped_stream])[0]
    grouped += step_streams([grouped_stream])[0] + grouped_stream.finish()
    assert len(grouped) == len(alone) > 20
    np.testing.assert_array_equal(frame_arrays(grouped), frame_arrays(alone))
