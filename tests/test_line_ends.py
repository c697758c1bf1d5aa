"""Ending many lines together (what the sidecar does with the end_lines of one loop turn) gives
each line exactly what ending it alone gives: core/motion/stepping.finish_streams,
core/session.end_lines, and the server's loop over real sockets (and in
tests/test_stream_batch.py: many lines ended in one batch over the wire, with the ticks of each alone)."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import fixture_line
from npcface.core.audio.decode import load_audio
from npcface.core.motion.generator import MotionGenerator, MotionStream
from npcface.core.motion.learned import LearnedMotionGenerator
from npcface.core.motion.stepping import finish_streams
from npcface.core.session import LineFormat, NpcSession, SessionSettings, end_lines
from npcface.core.types import Controls, EmotionEvent, Phone, PhoneTimeline
from server_helpers import RawClient, frame_arrays, greeting_pcm, s16

SMILE = EmotionEvent(time=0.6, emotion="happy", intensity=0.8, ramp=0.2)


@pytest.fixture(scope="module")
def greeting() -> tuple[np.ndarray, str]:
    wav, text = fixture_line("line_greeting")
    return load_audio(wav).samples[: 16000 * 2], text


def make_streams(text: str) -> list[MotionStream]:
    """Rules and learned, fixed phones and live ones (with text), different frame rates and seeds."""
    aligned = PhoneTimeline(phones=tuple(Phone(label, 0.1 + 0.12 * i, 0.22 + 0.12 * i) for i, label in
                                         enumerate(["HH", "AH", "L", "OW", "M", "AY", "B", "EY"])),
                            source="aligned", language="en-us")
    return [MotionGenerator(Controls(fps=30.0, seed=1)).stream_with_phones(aligned),
            LearnedMotionGenerator(Controls(fps=60.0, seed=2)).stream(),
            MotionGenerator(Controls(fps=25.0, seed=3)).stream(text),
            LearnedMotionGenerator(Controls(fps=30.0, seed=4)).stream(text)]


def start_lines(streams: list[MotionStream], samples: np.ndarray) -> list[list]:
    """Each stream pushed part of the line, then given more without a step (finish steps it first);
    the third holds frames for an emotion set after that audio. The frames pushed so far."""
    pushed = []
    for k, stream in enumerate(streams):
        cut = 12000 + 1700 * k
        pushed.append(stream.push_audio(samples[:cut]))
        stream.append_audio(samples[cut:cut + 3000 + 500 * k])
    streams[2].set_emotion(SMILE)
    assert streams[2]._held and streams[3]._due  # what finish must step before the line's tail
    return pushed


def test_streams_finished_together_give_exactly_their_own_finish(greeting):
    samples, text = greeting
    alone = []
    alone_streams = make_streams(text)
    for stream, pushed in zip(alone_streams, start_lines(alone_streams, samples)):
        alone.append(pushed + stream.finish())
    batch = make_streams(text)
    together = [pushed + frames for pushed, frames in zip(start_lines(batch, samples), finish_streams(batch))]
    for k in range(len(batch)):
        assert len(together[k]) == len(alone[k]) > 20
        np.testing.assert_array_equal(frame_arrays(together[k]), frame_arrays(alone[k]))
        assert batch[k].timeline == alone_streams[k].timeline
    assert finish_streams(batch) == [[], [], [], []]  # finished lines give nothing more


def test_a_line_failing_at_its_end_is_reported_and_the_others_end_as_alone(greeting, monkeypatch):
    samples, text = greeting
    alone_streams = make_streams(text)
    alone = [pushed + stream.finish() for stream, pushed in zip(alone_streams, start_lines(alone_streams, samples))]
    layers = MotionStream._layers_until

    def broken_tail_for_seed_3(self, last_index, cues):  # the line's last frames, after its steps
        if self.controls.seed == 3 and self._finished:
            raise ValueError("a bug at the end of the line")
        return layers(self, last_index, cues)

    monkeypatch.setattr(MotionStream, "_layers_until", broken_tail_for_seed_3)
    batch = make_streams(text)
    pushed = start_lines(batch, samples)
    errors = []
    frames = finish_streams(batch, lambda k, exc: errors.append((k, str(exc))))
    assert errors == [(2, "a bug at the end of the line")]
    for k in (0, 1, 3):
        np.testing.assert_array_equal(frame_arrays(pushed[k] + frames[k]), frame_arrays(alone[k]))
    broken = pushed[2] + frames[2]  # what it had stepped before its tail failed (the held frames too)
    assert len(pushed[2]) < len(broken) < len(alone[2])
    np.testing.assert_array_equal(frame_arrays(broken), frame_arrays(alone[2])[:len(broken)])
    lone = make_streams(text)[2]
    lone.push_audio(samples)
    with pytest.raises(ValueError, match="end of the line"):  # without on_error, it propagates
        finish_streams([lone])


def test_sessions_ended_together_get_what_end_line_gives_each(greeting):
    """Lines at 16 kHz and at rates the converter resamples (its last samples come at the end)."""
    samples, text = greeting
    formats = [(16000, None), (22050, text), (44100, None), (16000, text)]

    def started() -> list[NpcSession]:
        sessions = []
        for k, (rate, line_text) in enumerate(formats):
            npc = NpcSession(SessionSettings(controls=Controls(fps=30.0, seed=k), motion="learned" if k % 2 else "rules"))
            npc.start_line(LineFormat(rate, 1, "s16le"), line_text)
            source = np.interp(np.arange(int(len(samples) * rate / 16000)) * 16000 / rate, np.arange(len(samples)), samples)
            npc.queue_pcm(s16(source[: len(source) - 777]))
            sessions.append(npc)
        return sessions

    alone = [npc.end_line() for npc in started()]
    batch = started()
    together = end_lines(batch)
    for k in range(len(batch)):
        assert len(together[k]) == len(alone[k]) > 30
        np.testing.assert_array_equal(frame_arrays(together[k]), frame_arrays(alone[k]))
        assert not batch[k].in_line
    with pytest.raises(Exception, match="no line in progress"):
        end_lines([NpcSession(SessionSettings()), *started()[:1]])


def test_a_sessions_next_line_in_the_same_burst_starts_after_its_line_end(server):
    """end_line, then at once the session's next line (and an emotion for it): line 0's last tick
    and line_end come before any tick of line 1, as sent."""
    samples, _ = greeting_pcm()
    pcm = s16(samples[:12000])
    chunks = [pcm[i:i + 3200] for i in range(0, len(pcm), 3200)]
    with RawClient(server.endpoint) as client:
        assert client.request({"type": "hello", "protocol": "1.2"}).type == "welcome"
        assert client.request({"type": "open", "session": "s", "fps": 30, "motion": "learned"}).type == "opened"
        for line in range(2):
            for seq, chunk in enumerate(chunks):
                client.send({"type": "audio", "session": "s", "seq": seq, "rate": 16000}, chunk)
            client.send({"type": "end_line", "id": f"end{line}", "session": "s"})
            client.send({"type": "emotion", "session": "s", "emotion": "happy", "intensity": 0.5})
        order = []
        while len([m for m in order if m[0] == "line_end"]) < 2:
            message, _ = client.recv()
            assert message.type != "error", message
            order.append((message.type, message.line))
    ends = [i for i, (kind, _) in enumerate(order) if kind == "line_end"]
    assert order[ends[0]] == ("line_end", 0) and order[ends[1]] == ("line_end", 1)
    assert all(line == 0 for _, line in order[:ends[0]]) and all(line == 1 for _, line in order[ends[0] + 1:])
    assert sum(kind == "tick" for kind, _ in order[:ends[0]]) > 20


def test_lines_ended_before_a_second_hello_end_before_its_welcome(server):
    """end_line, then hello again in the same burst: the line's ticks and line_end come first, as
    sent; the new connection's session of the same name knows nothing of it."""
    samples, _ = greeting_pcm()
    pcm = s16(samples[:8000])
    with RawClient(server.endpoint) as client:
        assert client.request({"type": "hello", "protocol": "1.2"}).type == "welcome"
        assert client.request({"type": "open", "session": "a", "fps": 30, "motion": "learned"}).type == "opened"
        client.send({"type": "audio", "session": "a", "seq": 0, "rate": 16000}, pcm)
        client.send({"type": "end_line", "id": "old", "session": "a"})
        client.send({"type": "hello", "protocol": "1.2"})
        client.send({"type": "open", "session": "a", "fps": 30, "motion": "learned"})
        client.send({"type": "audio", "session": "a", "seq": 0, "rate": 16000}, pcm)
        client.send({"type": "end_line", "id": "new", "session": "a"})
        order = []
        while ("line_end", "new") not in order:
            message, _ = client.recv()
            assert message.type != "error", message
            order.append((message.type, getattr(message, "id", None)))
    assert order.index(("line_end", "old")) < [kind for kind, _ in order].index("welcome")
    assert [kind for kind, _ in order].count("line_end") == 2
