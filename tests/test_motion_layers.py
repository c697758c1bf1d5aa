"""The motion generator's layers and its streaming machinery, on real decoded fixture audio.

Phones here are given by hand (the phonetics stage has its own tests; tests/test_motion.py runs the
whole pipeline with real alignment), so these tests pin down what the generator itself does.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import fixture_line
from npcface.core.arkit import ARKIT_INDEX, EMOTIONS, OCULUS_VISEMES, VRM_PRESETS
from npcface.core.audio.decode import load_audio
from npcface.core.errors import AudioError, ControlError
from npcface.core.motion.generator import MotionGenerator, parse_emotion
from npcface.core.motion.emotion import EMOTION_POSES, emotion_weights
from npcface.core.types import ControlEvent, Controls, EmotionEvent, GazeEvent, MotionTrack, Phone, PhoneTimeline
from npcface.core.motion.visemes import VISEME_POSES, lip_gap, visemes_from_blendshapes, vrm_from_blendshapes


@pytest.fixture(scope="module")
def greeting():
    wav, _ = fixture_line("line_greeting")
    return load_audio(wav)


def hand_phones(duration: float) -> PhoneTimeline:
    """A plausible phone sequence covering the audio: vowels and bilabials alternating."""
    labels = ["SIL", "M", "AA", "B", "IY", "P", "OW", "F", "AE", "SIL"]
    edges = np.linspace(0.0, duration, len(labels) + 1)
    return PhoneTimeline(tuple(Phone(l, float(a), float(b)) for l, a, b in zip(labels, edges[:-1], edges[1:])), "aligned")


def stream_in_chunks(audio, timeline, controls, sizes, events=()) -> MotionTrack:
    stream = MotionGenerator(controls).stream_with_phones(timeline)
    for event in events:
        stream.set_emotion(event)
    frames, pos = [], 0
    for size in sizes:
        frames += stream.push_audio(audio.samples[pos:pos + size])
        pos += size
        if pos >= len(audio.samples):
            break
    frames += stream.push_audio(audio.samples[pos:]) + stream.finish()
    return MotionTrack.from_frames(frames, controls.fps)


# ------------------------------------------------------------------ visemes / VRM views

def test_each_viseme_pose_reads_back_as_itself_even_with_a_smile():
    smile = np.zeros(52, np.float32)
    smile[[ARKIT_INDEX["MouthSmileLeft"], ARKIT_INDEX["MouthSmileRight"]]] = 0.7
    for i, name in enumerate(OCULUS_VISEMES):
        weights = visemes_from_blendshapes(VISEME_POSES[i])
        smiling = visemes_from_blendshapes(np.clip(VISEME_POSES[i] + smile, 0, 1))
        assert weights.shape == (15,) and abs(weights.sum() - 1) < 1e-5
        assert OCULUS_VISEMES[int(np.argmax(weights))] == name
        assert OCULUS_VISEMES[int(np.argmax(smiling))] == name


def test_vrm_view_vowels_emotions_and_blink():
    aa = VISEME_POSES[OCULUS_VISEMES.index("aa")]
    vrm = vrm_from_blendshapes(np.stack([aa, aa * 0.4]))
    assert vrm.shape == (2, 11)
    assert vrm[0, VRM_PRESETS.index("aa")] > 0.8
    assert vrm[1, VRM_PRESETS.index("aa")] < vrm[0, VRM_PRESETS.index("aa")]  # a quieter aa is smaller
    for emotion, preset in (("happy", "happy"), ("angry", "angry"), ("sad", "sad"), ("surprised", "surprised")):
        face = vrm_from_blendshapes(EMOTION_POSES[EMOTIONS.index(emotion)])
        assert face[VRM_PRESETS.index(preset)] > 0.5, emotion
        others = [face[VRM_PRESETS.index(p)] for p in ("happy", "angry", "sad", "surprised") if p != preset]
        assert max(others) < 0.3, emotion
    blink = np.zeros(52, np.float32)
    blink[[ARKIT_INDEX["EyeBlinkLeft"], ARKIT_INDEX["EyeBlinkRight"]]] = 1.0
    assert vrm_from_blendshapes(blink)[VRM_PRESETS.index("blink")] == pytest.approx(1.0)
    with pytest.raises(ValueError):
        visemes_from_blendshapes(np.zeros(51))


# ------------------------------------------------------------------ emotion

def test_parse_emotion_accepts_names_and_rejects_the_rest():
    assert parse_emotion("happy:0.8") == ("happy", 0.8)
    assert parse_emotion("Sad") == ("sad", 1.0)
    for bad, message in (("grumpy", "unknown emotion 'grumpy'"), ("happy:1.5", "in [0, 1]"),
                         ("happy:nan", "in [0, 1]"), ("happy:lots", "must be a number")):
        with pytest.raises(ControlError, match=message.replace("[", r"\[").replace("]", r"\]")):
            parse_emotion(bad)


def test_emotion_ramps_smoothly_and_changes_mid_line():
    times = np.arange(0, 3, 0.01)
    w = emotion_weights(times, [EmotionEvent(0.5, "happy", 0.8, 0.4), EmotionEvent(1.2, "angry", 1.0, 0.4)])
    happy, angry = w[:, EMOTIONS.index("happy")], w[:, EMOTIONS.index("angry")]
    assert happy[times < 0.5].max() == 0 and happy[(times > 0.95) & (times < 1.2)].min() == pytest.approx(0.8)
    assert angry[times > 1.65].min() == pytest.approx(1.0) and happy[times > 1.65].max() == pytest.approx(0.0)
    assert np.abs(np.diff(w, axis=0)).max() < 0.06  # no jumps at 100 Hz


# ------------------------------------------------------------------ generator behaviour

def test_controls_are_validated():
    for fps in (0, -5, math.nan, math.inf, 1e6):
        with pytest.raises(ControlError, match="fps"):
            MotionGenerator(Controls(fps=fps))
    with pytest.raises(ControlError, match="motion_amplitude"):
        MotionGenerator(Controls(motion_amplitude=-1))
    with pytest.raises(ControlError, match="head_distance"):
        MotionGenerator(Controls(head_distance=0))
    stream = MotionGenerator().stream_with_phones(PhoneTimeline((), "acoustic"))
    with pytest.raises(ControlError, match="unknown emotion"):
        stream.set_emotion(EmotionEvent(0.0, "smug"))
    with pytest.raises(ControlError, match="gaze"):
        stream.set_gaze(GazeEvent(math.nan, 0, 0))
    with pytest.raises(AudioError, match="NaN"):
        stream.push_audio(np.array([0.0, np.nan], np.float32))
    with pytest.raises(AudioError, match="mono float"):
        stream.push_audio(np.zeros((10, 2), np.float32))


@pytest.mark.parametrize("fps", [24.0, 30.0, 60.0, 59.94, 120.0])
def test_any_fps_gives_frames_on_its_grid_in_range(greeting, fps):
    track = MotionGenerator(Controls(fps=fps)).animate_with_phones(greeting, hand_phones(greeting.duration))
    assert len(track) == math.ceil(greeting.duration * fps - 1e-9)
    np.testing.assert_allclose(track.times, np.arange(len(track)) / fps)
    assert track.blendshapes.dtype == np.float32 and track.blendshapes.shape == (len(track), 52)
    assert track.blendshapes.min() >= 0 and track.blendshapes.max() <= 1
    assert np.isfinite(track.head_rotation).all() and np.abs(track.head_rotation).max() < 25


def test_streaming_with_random_chunks_equals_offline(greeting):
    """Same phones, audio pushed in random chunk sizes (1 sample .. 0.4 s): the frames agree to
    float32 rounding (stated tolerance 1e-5 per channel, 1e-6 degrees for the head)."""
    timeline = hand_phones(greeting.duration)
    controls = Controls(seed=7)
    events = [EmotionEvent(1.0, "happy", 0.7, 0.3)]
    offline = stream_in_chunks(greeting, timeline, controls, [len(greeting.samples)], events)
    rng = np.random.default_rng(0)
    for _ in range(3):
        sizes = rng.integers(1, 6400, size=4000)
        streamed = stream_in_chunks(greeting, timeline, controls, sizes, events)
        assert len(streamed) == len(offline)
        assert np.abs(streamed.blendshapes - offline.blendshapes).max() < 1e-5
        assert np.abs(streamed.head_rotation - offline.head_rotation).max() < 1e-6
        assert np.abs(streamed.gaze - offline.gaze).max() < 1e-6


def test_frames_wait_for_lookahead_and_no_longer(greeting):
    controls = Controls(lookahead_s=0.12)
    stream = MotionGenerator(controls).stream_with_phones(hand_phones(greeting.duration))
    chunk = 320  # 20 ms
    latest_lag = []
    for pos in range(0, len(greeting.samples) - chunk, chunk):
        frames = stream.push_audio(greeting.samples[pos:pos + chunk])
        heard = (pos + chunk) / 16000
        for frame in frames:
            assert frame.time <= heard - 0.12 + 1e-9  # never before the lookahead has arrived
        if frames:
            latest_lag.append(heard - frames[-1].time)
    assert max(latest_lag) < 0.12 + 0.02 + 1 / 60 + 1e-6  # and not later than lookahead + one chunk + one frame


def test_a_lookahead_below_the_features_reach_acts_as_the_minimum(greeting):
    from npcface.core.motion.generator import MIN_LOOKAHEAD_S

    stream = MotionGenerator(Controls(lookahead_s=0.02)).stream_with_phones(hand_phones(greeting.duration))
    lags = []
    for pos in range(0, len(greeting.samples) - 160, 160):
        frames = stream.push_audio(greeting.samples[pos:pos + 160])
        lags += [(pos + 160) / 16000 - f.time for f in frames]
    assert MIN_LOOKAHEAD_S - 1e-9 <= min(lags) and max(lags) < MIN_LOOKAHEAD_S + 0.01 + 1 / 60
    assert MIN_LOOKAHEAD_S <= Controls().lookahead_s  # the default lookahead is honoured exactly


def test_seed_changes_head_and_blinks_but_not_lips(greeting):
    timeline = hand_phones(greeting.duration)
    a = MotionGenerator(Controls(seed=1)).animate_with_phones(greeting, timeline)
    b = MotionGenerator(Controls(seed=1)).animate_with_phones(greeting, timeline)
    c = MotionGenerator(Controls(seed=2)).animate_with_phones(greeting, timeline)
    np.testing.assert_array_equal(a.blendshapes, b.blendshapes)
    np.testing.assert_array_equal(a.head_rotation, b.head_rotation)
    assert np.abs(a.head_rotation - c.head_rotation).max() > 0.5
    mouth = [ARKIT_INDEX[n] for n in ("JawOpen", "MouthClose", "MouthPucker", "MouthRollLower")]
    np.testing.assert_array_equal(a.blendshapes[:, mouth], c.blendshapes[:, mouth])
    assert not np.array_equal(a.channel("EyeBlinkLeft"), c.channel("EyeBlinkLeft"))


def test_gaze_target_is_followed_by_eyes_and_partly_by_head(greeting):
    gen = MotionGenerator(Controls(motion_amplitude=0.0))
    track = gen.animate_with_phones(greeting, hand_phones(greeting.duration), gazes=[GazeEvent(1.0, 20.0, -10.0)])
    before, after = track.times < 1.0, track.times > 2.0
    assert np.abs(track.head_rotation[before]).max() < 1e-9  # amplitude 0 freezes the head
    eye_plus_head_yaw = track.gaze[after, 0, 0] + track.head_rotation[after, 0]
    eye_plus_head_pitch = track.gaze[after, 0, 1] + track.head_rotation[after, 1]
    assert np.abs(eye_plus_head_yaw - 20).max() < 4.5  # saccades wander a few degrees
    assert np.abs(eye_plus_head_pitch + 10).max() < 3.0
    assert 3.0 < track.head_rotation[after, 0].mean() < 8.0  # the head turns part of the way
    look_out_left = track.channel("EyeLookOutLeft")[after]
    assert look_out_left.mean() > 0.3 and track.channel("EyeLookInLeft")[after].max() == 0


def test_head_distance_and_amplitude_controls(greeting):
    timeline = hand_phones(greeting.duration)
    near = MotionGenerator(Controls(head_distance=1.0)).animate_with_phones(greeting, timeline)
    far = MotionGenerator(Controls(head_distance=2.0)).animate_with_phones(greeting, timeline)
    assert np.allclose(near.head_translation[:, 2], 0.0) and far.head_translation[:, 2].max() < -0.3
    calm = MotionGenerator(Controls(motion_amplitude=0.3)).animate_with_phones(greeting, timeline)
    assert calm.head_rotation.std(0).sum() < 0.5 * near.head_rotation.std(0).sum()
    stream = MotionGenerator().stream_with_phones(timeline)
    stream.set_controls(ControlEvent(time=1.0, head_distance=3.0, ramp=0.2))
    frames = stream.push_audio(greeting.samples) + stream.finish()
    z = np.array([f.head_translation[2] for f in frames])
    times = np.array([f.time for f in frames])
    assert z[times < 1.0].max() == 0 and z[times > 1.3].max() == pytest.approx(-1.2)
    with pytest.raises(ControlError, match="head_distance"):
        stream.set_controls(ControlEvent(time=1.0, head_distance=-1.0))


def test_silence_gives_a_closed_neutral_mouth_and_still_blinks():
    silent = load_audio(fixture_line("line_greeting")[0])
    silent = type(silent)(np.zeros(16000 * 8, np.float32), 16000, 1)
    track = MotionGenerator().animate_with_phones(silent, PhoneTimeline((Phone("SIL", 0, 8.0),), "aligned"))
    assert lip_gap(track.blendshapes).max() < 0.01
    assert track.channel("JawOpen").max() < 0.01
    assert track.channel("EyeBlinkLeft").max() > 0.9  # idle faces blink too
    # and their eyes make saccades: quick jumps (> 30 deg/s, ten times the idle head speed)
    # between fixations, several in 8 s
    eye_in_world = track.gaze[:, 0] + track.head_rotation[:, :2]
    speed = np.linalg.norm(np.diff(eye_in_world, axis=0), axis=1) * track.fps
    jumps = np.count_nonzero((speed[1:] > 30) & (speed[:-1] <= 30))
    assert 3 <= jumps <= 30


def test_lines_do_not_all_open_with_a_blink(greeting):
    # With no blink history, a line used to force one at t = 0 for every seed: every NPC line
    # then began with a blink. Seeds must spread the first blink like the rest.
    timeline = hand_phones(greeting.duration)
    first_blinks = []
    for seed in range(10):
        track = MotionGenerator(Controls(fps=60, seed=seed)).animate_with_phones(greeting, timeline)
        closed = np.flatnonzero(track.channel("EyeBlinkLeft") > 0.5)
        first_blinks.append(track.times[closed[0]] if len(closed) else math.inf)
    early = sum(t < 0.3 for t in first_blinks)
    assert early <= 3, f"{early} of 10 seeds blink in the first 0.3 s: {np.round(first_blinks, 2)}"
    assert len({round(t, 1) for t in first_blinks}) >= 6, first_blinks
