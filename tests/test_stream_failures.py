"""A step that fails loses nothing: frames a stream computed before the failure (held for an
event, or stepped in an earlier run of the same call) reach the caller, with the error, or with
its next call (core/motion/stepping.step_streams, MotionStream.finish)."""
from __future__ import annotations

import numpy as np
import pytest

from conftest import fixture_line
from npcface.core.audio.decode import load_audio
from npcface.core.errors import AudioError
from npcface.core.motion.generator import MotionGenerator, MotionStream
from npcface.core.motion.stepping import step_streams
from npcface.core.types import Controls, EmotionEvent
from server_helpers import frame_arrays

FPS = 30.0
SMILE = EmotionEvent(time=0.9, emotion="happy", intensity=0.8, ramp=0.2)


@pytest.fixture(scope="module")
def greeting() -> tuple[np.ndarray, str]:
    wav, text = fixture_line("line_greeting")
    return load_audio(wav).samples[: 16000 * 2], text


@pytest.fixture
def breakable(monkeypatch) -> dict:
    """While ``broken["on"]``, every frame run of a stream raises (a bug in one of its stages)."""
    broken = {"on": False}
    layers = MotionStream._layers_until

    def maybe_broken(self, last_index, cues):
        if broken["on"]:
            raise ValueError("a bug in a stage")
        return layers(self, last_index, cues)

    monkeypatch.setattr(MotionStream, "_layers_until", maybe_broken)
    return broken


def new_stream(text: str) -> MotionStream:
    return MotionGenerator(Controls(fps=FPS, seed=3)).stream(text)  # live phones: frames due wait for a step


def reference(samples: np.ndarray, text: str) -> np.ndarray:
    """Frames of the line with the smile set after its first second, nothing failing."""
    stream = new_stream(text)
    stream.append_audio(samples[:16000])
    stream.set_emotion(SMILE)
    frames = stream.push_audio(samples[16000:24000]) + stream.push_audio(samples[24000:]) + stream.finish()
    return frame_arrays(frames)


def held_after_smile(samples: np.ndarray, text: str) -> tuple[MotionStream, int]:
    """A stream given its first second without a step, then the smile: (it, frames it holds)."""
    stream = new_stream(text)
    stream.append_audio(samples[:16000])
    stream.set_emotion(SMILE)  # the frames due before it are computed now, handed out next call
    return stream, len(stream._held)


@pytest.mark.parametrize("failure", ["NaN audio", "a stage raises"])
def test_frames_held_for_an_event_come_out_after_a_push_that_fails(greeting, breakable, failure):
    samples, text = greeting
    expected = reference(samples, text)
    stream, held = held_after_smile(samples, text)
    assert held > 10
    if failure == "NaN audio":
        bad = samples[16000:24000].copy()
        bad[100] = np.nan
        with pytest.raises(AudioError, match="NaN"):
            stream.push_audio(bad)
        frames = stream.push_audio(samples[16000:24000])
    else:
        breakable["on"] = True
        with pytest.raises(ValueError, match="a bug in a stage"):
            stream.push_audio(samples[16000:24000])
        breakable["on"] = False
        frames = []
    frames += stream.push_audio(samples[24000:]) + stream.finish()
    got = frame_arrays(frames)
    np.testing.assert_array_equal(got[:, 0], expected[:, 0])  # every frame time once: none lost
    np.testing.assert_array_equal(got[:held], expected[:held])  # the held ones as they were


def test_frames_of_earlier_runs_of_a_failing_call_come_with_the_next_call(greeting, breakable, monkeypatch):
    """Live phones: several pushes make frames due, one step computes them run by run; when a
    later run fails, the frames of the runs before it are not dropped."""
    samples, text = greeting
    alone = new_stream(text)
    expected = frame_arrays(alone.push_audio(samples[:16000]) + alone.push_audio(samples[16000:])
                            + alone.finish())
    stream = new_stream(text)
    stream.append_audio(samples[:16000])
    stream.append_audio(samples[16000:])
    assert len(stream._due) == 2
    layers = MotionStream._layers_until
    runs = []

    def second_run_breaks(self, last_index, cues):
        runs.append(last_index)
        if len(runs) == 2:
            raise ValueError("a bug in the second run")
        return layers(self, last_index, cues)

    monkeypatch.setattr(MotionStream, "_layers_until", second_run_breaks)
    with pytest.raises(ValueError, match="second run"):
        step_streams([stream])
    first_run = runs[0] + 1
    got = frame_arrays(stream.finish())
    assert len(got) == len(expected)
    np.testing.assert_array_equal(got[:, 0], expected[:, 0])
    np.testing.assert_array_equal(got[:first_run], expected[:first_run])


def test_finish_that_fails_keeps_the_held_frames_for_the_next_finish(greeting, breakable):
    samples, text = greeting
    expected = reference(samples, text)
    stream, held = held_after_smile(samples, text)
    stream.append_audio(samples[16000:])
    breakable["on"] = True
    with pytest.raises(ValueError, match="a bug in a stage"):
        stream.finish()
    with pytest.raises(ValueError, match="a bug in a stage"):  # still failing: still nothing lost
        stream.finish()
    breakable["on"] = False
    got = frame_arrays(stream.finish())
    assert len(got) >= held > 10
    np.testing.assert_array_equal(got[:held], expected[:held])
    assert np.all(np.diff(got[:, 0]) > 0)  # in order, none twice
    assert stream.finish() == []


def test_a_failure_in_the_tail_of_finish_keeps_the_frames_stepped_before_it(greeting, monkeypatch):
    samples, text = greeting
    expected = reference(samples, text)
    stream, held = held_after_smile(samples, text)
    stream.append_audio(samples[16000:])

    layers = MotionStream._layers_until

    def broken_tail(self, last_index, cues):  # the frames of the line's last rows, after its steps
        if self._finished:
            raise ValueError("a bug at the end of the line")
        return layers(self, last_index, cues)

    monkeypatch.setattr(MotionStream, "_layers_until", broken_tail)
    with pytest.raises(ValueError, match="end of the line"):
        stream.finish()
    monkeypatch.undo()
    got = frame_arrays(stream.finish())  # the tail's own frames were never made; the rest come
    assert held < len(got) < len(expected)
    np.testing.assert_array_equal(got[:, 0], expected[:len(got), 0])
    np.testing.assert_array_equal(got[:held], expected[:held])


def test_with_on_error_the_held_frames_come_back_beside_the_error(greeting, breakable):
    """The sidecar's path (step_streams with on_error): the failing stream is reported, and the
    frames it held come back in this call's result."""
    samples, text = greeting
    expected = reference(samples, text)
    stream, held = held_after_smile(samples, text)
    other = new_stream(text)
    other.append_audio(samples[:16000])
    stream.append_audio(samples[16000:24000])
    breakable["on"] = True
    errors = []
    frames = step_streams([stream, other], lambda k, exc: errors.append((k, str(exc))))
    assert errors == [(0, "a bug in a stage"), (1, "a bug in a stage")]
    np.testing.assert_array_equal(frame_arrays(frames[0]), expected[:held])
    assert frames[1] == []
