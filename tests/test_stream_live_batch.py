"""Streams with live phones (rules with text or without, learned with text, the acoustic fallback
of other languages) step in the shared batch with every other stream: each push that makes
frames due keeps the phones found at that push, and the next step computes those frames with
them. So a stream's frames depend on its own audio and chunking only: stepped with others, in
any grouping, or finished with pushes pending, it gets exactly the frames of pushing chunk by
chunk alone (core/motion/stepping.step_streams)."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import fixture_line
from test_motion_learned import _untrained
from npcface.core.audio.decode import load_audio
from npcface.core.audio.features import FeatureStream
from npcface.core.motion.generator import MotionGenerator, MotionStream
from npcface.core.motion.stepping import step_streams
from npcface.core.motion.learned import LearnedMotionGenerator
from npcface.core.motion.learned_inputs import PHONE_CLASSES
from npcface.core.phonetics.timeline import PhoneStream
from npcface.core.types import Controls, EmotionEvent, Phone, PhoneTimeline
from npcface.models.audio2face import Config
from server_helpers import RawClient, frame_arrays, greeting_pcm, s16, tick_arrays

SECONDS = 2.5


@pytest.fixture(scope="module")
def greeting() -> tuple[np.ndarray, str]:
    wav, text = fixture_line("line_greeting")
    return load_audio(wav).samples[: int(16000 * SECONDS)], text


@pytest.fixture(scope="module")
def phone_weights(tmp_path_factory):
    """A learned mouth that also reads the live aligner's phones as its rows arrive."""
    return _untrained(Config(phone_classes=len(PHONE_CLASSES)), 6, tmp_path_factory.mktemp("weights") / "phones.safetensors")


LIVE = 5  # make_streams' first streams have live phones


def assert_same_frames(k: int, got: np.ndarray, alone: np.ndarray, what: str = "") -> None:
    """Live phones: exactly. Fixed phones step when the batch does, and the start of their kept
    rows moves the cues' last bits (as a stream pushed in other chunks)."""
    assert len(got) == len(alone) > 40, (what, k)
    if k < LIVE:
        np.testing.assert_array_equal(got, alone, err_msg=f"{what} stream {k}")
    else:
        np.testing.assert_allclose(got, alone, rtol=0, atol=1e-9, err_msg=f"{what} stream {k}")


def make_streams(text: str, phone_weights) -> list[MotionStream]:
    """Live phones of every kind, then streams with fixed phones (learned without text, a fixed
    timeline) that the batch has always stepped together."""
    aligned = PhoneTimeline(phones=tuple(Phone(label, 0.1 + 0.12 * i, 0.22 + 0.12 * i) for i, label in
                                         enumerate(["HH", "AH", "L", "OW", "M", "AY", "B", "EY", "K", "ER"])),
                            source="aligned", language="en-us")
    live = [MotionGenerator(Controls(fps=30.0, seed=1)).stream(text),  # rules, aligned live
            MotionGenerator(Controls(fps=25.0, seed=2)).stream(None),  # rules, recognized live
            LearnedMotionGenerator(Controls(fps=30.0, seed=3)).stream(text),  # learned, aligned closures
            LearnedMotionGenerator(Controls(fps=60.0, seed=4), phone_weights).stream(text),  # phones feed the network
            MotionGenerator(Controls(fps=30.0, seed=5, language="de")).stream(text)]  # the acoustic fallback
    fixed = [LearnedMotionGenerator(Controls(fps=30.0, seed=6)).stream(),
             MotionGenerator(Controls(fps=30.0, seed=7)).stream_with_phones(aligned)]
    return live + fixed


def chunked(samples: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    bounds = np.cumsum([0] + sizes)
    return [samples[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if a < len(samples)]


def chunk_plans(count: int, length: int, seed: int) -> list[list[np.ndarray]]:
    """Each stream its own chunk sizes (20 ms, odd sizes, several frames at once)."""
    rng = np.random.default_rng(seed)
    return [list(rng.choice([37, 320, 320, 700, 1600], size=length // 37 + 1)) for _ in range(count)]


def pushed_alone(streams: list[MotionStream], chunks: list[list[np.ndarray]]) -> list[np.ndarray]:
    out = []
    for stream, parts in zip(streams, chunks):
        frames = [f for part in parts for f in stream.push_audio(part)]
        out.append(frame_arrays(frames + stream.finish()))
    return out


def test_live_phone_streams_stepped_together_in_any_grouping_give_their_frames_alone(greeting, phone_weights):
    samples, text = greeting
    sizes = chunk_plans(7, len(samples), seed=1)
    chunks = [chunked(samples, s) for s in sizes]
    alone = pushed_alone(make_streams(text, phone_weights), chunks)
    rng = np.random.default_rng(2)
    for grouping in ("every round", "random subsets"):
        streams = make_streams(text, phone_weights)
        together: list[list] = [[] for _ in streams]
        for round_ in range(max(map(len, chunks))):
            for k, stream in enumerate(streams):
                if round_ < len(chunks[k]):
                    stream.append_audio(chunks[k][round_])
            # every stream each round, or a random few (a stream then has several pushes due)
            picked = list(range(len(streams))) if grouping == "every round" else \
                [k for k in range(len(streams)) if rng.random() < 0.3]
            for k, frames in zip(picked, step_streams([streams[k] for k in picked])):
                together[k] += frames
        for k, stream in enumerate(streams):
            assert_same_frames(k, frame_arrays(together[k] + stream.finish()), alone[k], grouping)


@pytest.mark.parametrize("language, with_text", [("en-us", True), ("en-us", False), ("de", True)])
def test_each_run_of_frames_reads_the_phones_found_at_the_push_that_made_it_due(greeting, monkeypatch, language, with_text):
    """Checked against a phone stream of its own fed the same chunks: the frames a push made due
    read the phones found once that push's audio (and for the acoustic fallback of other
    languages, its feature rows) was in, not those of the push before or of the later step that
    computes them."""
    samples, text = greeting
    text = text if with_text else None
    chunks = chunked(samples, chunk_plans(1, len(samples), seed=4)[0])
    generator = MotionGenerator(Controls(fps=30.0, seed=10, language=language))
    alone = generator.stream(text)
    first_frame_of_push = {}  # first frame time -> the push that made it due
    for j, chunk in enumerate(chunks):
        frames = alone.push_audio(chunk)
        if frames:
            first_frame_of_push[round(frames[0].time, 9)] = j
    # the same calls as the stream's: every chunk in, the rows so far and the phones at due pushes
    observer, rows = PhoneStream(text, language, features_from_caller=True), FeatureStream()
    found = []
    for j, chunk in enumerate(chunks):
        observer.push(chunk.astype(np.float32))
        rows.append(chunk)
        if j in first_frame_of_push.values():
            observer.add_features(rows.take())
            found.append(observer.phones())
        else:
            found.append(None)

    read: list[tuple[float, tuple]] = []
    current_phones = MotionStream._current_phones

    def recording(self, first_time):
        read.append((round(first_time, 9), self._phones.current()[0]))
        return current_phones(self, first_time)

    monkeypatch.setattr(MotionStream, "_current_phones", recording)
    stream = generator.stream(text)
    rng = np.random.default_rng(5)
    for chunk in chunks:
        stream.append_audio(chunk)
        if rng.random() < 0.25:  # several pushes due at most steps
            step_streams([stream])
    step_streams([stream])
    assert len(read) == len(first_frame_of_push) > 20
    for first_time, phones in read:
        assert phones == found[first_frame_of_push[first_time]], first_time


def test_a_live_stream_finished_with_pushes_pending_gets_the_frames_of_pushing_them_one_by_one(greeting, phone_weights):
    """Pushes never stepped, an emotion set between them: finish computes each push's frames
    with the phones of that push, and the emotion applies from the frames after it, as pushed."""
    samples, text = greeting
    chunks = chunked(samples, [640] * (len(samples) // 640 + 1))
    for make in (lambda: MotionGenerator(Controls(fps=30.0, seed=8)).stream(text),
                 lambda: LearnedMotionGenerator(Controls(fps=30.0, seed=9), phone_weights).stream(text)):
        pushed, pending = make(), make()
        frames = []
        for i, chunk in enumerate(chunks):
            frames += pushed.push_audio(chunk)
            pending.append_audio(chunk)
            if i == len(chunks) // 2:
                for stream in (pushed, pending):
                    stream.set_emotion(EmotionEvent(0.3, "happy", 0.8))  # in the past: from the next frame
        alone = frame_arrays(frames + pushed.finish())
        got = frame_arrays(pending.finish())
        assert len(got) == len(alone) > 40
        np.testing.assert_array_equal(got, alone)


def test_a_live_stream_that_fails_in_the_batch_fails_alone_and_the_others_keep_their_frames(greeting, phone_weights, monkeypatch):
    samples, text = greeting
    sizes = chunk_plans(7, len(samples), seed=3)
    chunks = [chunked(samples, s) for s in sizes]
    alone = pushed_alone(make_streams(text, phone_weights), chunks)
    layers = MotionStream._layers_until

    def broken_after_one_second(self, last_index, cues):
        if self.controls.seed == 1 and last_index / self.controls.fps > 1.0:  # the rules stream with text
            raise ValueError("a bug in one line")
        return layers(self, last_index, cues)

    monkeypatch.setattr(MotionStream, "_layers_until", broken_after_one_second)
    streams = make_streams(text, phone_weights)
    together: list[list] = [[] for _ in streams]
    errors: list[tuple[int, str]] = []
    for round_ in range(max(map(len, chunks))):
        for k, stream in enumerate(streams):
            if round_ < len(chunks[k]) and not (k == 0 and errors):  # a failed line gets no more audio
                stream.append_audio(chunks[k][round_])
        if round_ % 4 == 3:  # several pushes due per stream at each step
            for k, frames in enumerate(step_streams(streams, lambda k, exc: errors.append((k, str(exc))))):
                together[k] += frames
    assert errors == [(0, "a bug in one line")]
    assert 0 < len(together[0]) < len(alone[0])  # its frames before the bug came out
    np.testing.assert_array_equal(frame_arrays(together[0]), alone[0][:len(together[0])])
    for k in range(1, len(streams)):
        assert_same_frames(k, frame_arrays(together[k] + streams[k].finish()), alone[k])


def test_a_failure_in_a_rounds_shared_head_maths_is_reported_for_each_of_its_streams(greeting, monkeypatch):
    """Blinks, saccades and shifts of a round are decided together (compose_frames): when that
    shared part raises, every stream of the round is reported through on_error and the call
    returns; without on_error the exception propagates as before."""
    import npcface.core.motion.compose as compose

    samples, text = greeting
    decide = compose.decide_events_many

    def broken_with_seed_13(heads):
        if any(head.seed == 13 for head in heads):
            raise ValueError("a bug in the shared head maths")
        return decide(heads)

    monkeypatch.setattr(compose, "decide_events_many", broken_with_seed_13)
    streams = [MotionGenerator(Controls(seed=seed)).stream(text) for seed in (13, 4)]
    for stream in streams:
        stream.append_audio(samples[:16000])
    errors: list[tuple[int, str]] = []
    frames = step_streams(streams, lambda k, exc: errors.append((k, str(exc))))
    assert sorted(errors) == [(0, "a bug in the shared head maths"), (1, "a bug in the shared head maths")]
    assert frames == [[], []]
    again = MotionGenerator(Controls(seed=13)).stream(text)
    again.append_audio(samples[:16000])
    with pytest.raises(ValueError, match="shared head maths"):
        step_streams([again])


def test_a_live_stream_reads_its_phone_source_however_the_language_code_is_written(greeting):
    """en_US is English as en-us is: its live phones are aligned to the text, not acoustic."""
    samples, text = greeting
    frames = {}
    for language in ("en-us", "en_US", " EN-us "):
        stream = MotionGenerator(Controls(seed=2, language=language)).stream(text)
        assert stream._phones.current()[1] == "aligned", language
        frames[language] = frame_arrays(stream.push_audio(samples) + stream.finish())
    np.testing.assert_array_equal(frames["en_US"], frames["en-us"])
    np.testing.assert_array_equal(frames[" EN-us "], frames["en-us"])


def test_sessions_with_text_stream_over_the_wire_in_the_loops_batch_with_the_ticks_of_one_alone(server, monkeypatch):
    """Lines with text (rules and learned) and one without, all chunks sent back to back: the
    loop steps the live-phone lines together, and each gets the ticks of its line sent alone."""
    import npcface.core.motion.stepping as stepping

    live_together = []
    step_once = stepping._step_once

    def counting(streams, steps, report):
        live_together.append(sum(stream._phones.live for stream in streams))
        return step_once(streams, steps, report)

    monkeypatch.setattr(stepping, "_step_once", counting)
    samples, text = greeting_pcm()
    pcm = s16(samples[: 16000 * 2])
    chunks = [pcm[i:i + 640] for i in range(0, len(pcm), 640)]
    sessions = {"rules": ("rules", text), "learned": ("learned", text), "plain": ("learned", None)}

    def open_session(client, name: str, motion: str) -> None:
        assert client.request({"type": "open", "session": name, "fps": 30, "motion": motion}).type == "opened"

    def send_chunk(client, name: str, seq: int, line_text) -> None:
        header = {"type": "audio", "session": name, "seq": seq, "rate": 16000}
        if seq == 0 and line_text is not None:  # the line's text comes with its first chunk
            header["text"] = line_text
        client.send(header, chunks[seq])

    with RawClient(server.endpoint) as client:
        assert client.request({"type": "hello", "protocol": "1.2"}).type == "welcome"
        alone = {}
        for name, (motion, line_text) in sessions.items():
            open_session(client, f"alone-{name}", motion)
            for seq in range(len(chunks)):
                send_chunk(client, f"alone-{name}", seq, line_text)
            client.send({"type": "end_line", "id": f"end-{name}", "session": f"alone-{name}"})
            alone[name], _, _, errors = client.collect_line(f"alone-{name}", f"end-{name}")
            assert not errors
        live_together.clear()
        for name, (motion, line_text) in sessions.items():
            open_session(client, name, motion)
        for seq in range(len(chunks)):  # every session's chunks back to back, unpaced
            for name, (_, line_text) in sessions.items():
                send_chunk(client, name, seq, line_text)
        for name in sessions:
            client.send({"type": "end_line", "id": f"end-{name}", "session": name})
        ticks = client.collect_lines(sessions)
    assert max(live_together) == 2  # both lines with text stepped in one batch
    for name in ("rules", "learned"):  # the live-phone lines: exactly
        assert len(ticks[name]) == len(alone[name]) > 30
        np.testing.assert_array_equal(tick_arrays(ticks[name]), tick_arrays(alone[name]), err_msg=name)
    # without text, rows coalesce per loop turn (last bits, tests/test_stream_batch.py)
    np.testing.assert_allclose(tick_arrays(ticks["plain"]), tick_arrays(alone["plain"]), rtol=0, atol=1e-9)
