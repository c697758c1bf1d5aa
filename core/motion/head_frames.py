"""The head's per-frame inputs for the frames of many streams at once (a sidecar steps every
talking session together, and each stream has a frame or two per step: per-stream numpy calls
would cost more than the arithmetic).

Every frame's numbers come from its own stream's state and its own time only, with the same
arithmetic whichever frames join it, so a stream gets the same frames batched or alone, and
streamed or offline.
"""
from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..numeric import clip as _clip
from ..numeric import clip_float
from ..types import FEATURE_HOP_S, EmotionEvent, GazeEvent
from .cues import Cues, at_many, cue_batch, last_row_at_or_before
from .emotion import emotion_layer, ramped_timeline
from .head import (_HEAD_NOISE_OCTAVES, _HEAD_NOISE_SPACINGS, _SWAY_X, _SWAY_Y, BLINK_LOOKBACK_S, HEAD_NOD_GAIN,
                   SACCADE_S, SACCADES_PER_S, PoseShifts, SlotScheduler, _catmull_rom, _head_and_idle_noise, _noise_terms,
                   blink_rates, held_pose, pause_probe_times, phrase_onset_from, shift_rates)


# The nod kernel reads emphasis rows with lag in (-0.03, 0.55) s; a frame's window of rows starts
# at its first row later than t - 0.56 s and spans this many rows (0.64 s > 0.56 + 0.04 s).
_NOD_WINDOW_ROWS = 64


@dataclass(frozen=True)
class HeadSource:
    """One stream's part of the head for a run of its frames (its schedulers and shifts decided
    up to the last of ``times``)."""

    times: np.ndarray  # (T,)
    cues: Cues
    seed: int
    amplitude: np.ndarray  # (T,) motion_amplitude control
    distance: np.ndarray  # (T,) head_distance control
    gazes: Sequence[GazeEvent]
    emotion_pitch: np.ndarray  # (T,) degrees
    motion_gain: np.ndarray  # (T,)
    blinks: SlotScheduler  # decided up to the last of ``times`` by decide_events_many
    saccades: SlotScheduler
    shifts: PoseShifts
    emotions: Sequence[EmotionEvent] = ()  # their blink gain scales the blink rate


@dataclass(frozen=True)
class HeadInputs:
    """The per-frame inputs to the head maths (head_layers, below), each (N, ...) over the frames
    of every stream in the batch, one stream's after another's."""

    activity: np.ndarray  # (N,) the activity cue at the frames
    amplitude: np.ndarray  # (N,) motion_amplitude control
    distance: np.ndarray  # (N,) head_distance control
    emotion_pitch: np.ndarray  # (N,) degrees
    motion_gain: np.ndarray  # (N,)
    gaze_target: np.ndarray  # (N, 2) yaw, pitch degrees
    head_follow: np.ndarray  # (N, 2) how far the head turns after the gaze
    saccades: np.ndarray  # (N, 2) saccade offsets
    nodding: np.ndarray  # (N,) nod_many()
    blink: np.ndarray  # (N,) 0..1
    pose_shift: np.ndarray  # (N, 3) the held posture (PoseShifts.pose), degrees before any gain
    noise_terms: np.ndarray  # (O, N, 4, 5) the Catmull-Rom terms of the noise knots of _HEAD_NOISE_OCTAVES around each frame
    frac: np.ndarray  # (O, N, 1) each frame's place between its knots


@dataclass(frozen=True)
class HeadLayer:
    rotation: np.ndarray  # (T, 3) yaw, pitch, roll degrees (pitch + = chin up)
    translation: np.ndarray  # (T, 3) metres
    gaze: np.ndarray  # (T, 2, 2) [eye, (yaw, pitch)] degrees relative to the head
    blink: np.ndarray  # (T,) 0..1
    brow_raise: np.ndarray  # (T,) 0..1 eyebrows lift with the emphasis that nods the head


def decide_events_many(sources: Sequence[HeadSource]) -> None:
    """Decide each source's blinks, saccades and posture shifts up to its last frame (what
    SlotScheduler.decide_until and PoseShifts.decide_until do), with the hazards of every
    source's undecided slots from one read of their cues (at_many)."""
    blinks, shifts = [], []  # (source, slot times), and for shifts the decided count before
    for s in sources:
        until = float(s.times[-1])
        times = s.blinks.slots_to_decide(until)
        if times is not None:
            blinks.append((s, times))
        times = s.saccades.slots_to_decide(until)
        if times is not None:
            s.saccades.decide(times, np.full(len(times), SACCADES_PER_S))
        known = len(s.shifts.scheduler.starts)
        times = s.shifts.scheduler.slots_to_decide(until)
        if times is not None:
            shifts.append((s, times, known))
    if not blinks and not shifts:
        return
    # level now and BLINK_LOOKBACK_S before for the blinks; activity, held and emphasis now and
    # the level at the pause probes for the shifts: every point, every name, one pass
    reads = at_many([(s.cues, t) for s, t in blinks] + [(s.cues, t - BLINK_LOOKBACK_S) for s, t in blinks]
                    + [(s.cues, t) for s, t, _ in shifts] + [(s.cues, pause_probe_times(t)) for s, t, _ in shifts],
                    ("level", "activity", "held", "emphasis"))
    level, activity, held, emphasis = reads.T
    # the blinks' points at the slots, then as many BLINK_LOOKBACK_S before; then the shifts'
    # points at the slots, then their pause probes (every slot's numbers on its own)
    count, shifting = sum(len(t) for _, t in blinks), sum(len(t) for _, t, _ in shifts)
    blinking = blink_rates(level[:count], level[count:2 * count])
    at = slice(2 * count, 2 * count + shifting)
    moving = shift_rates(activity[at], phrase_onset_from(held[at], level[at.stop:]), emphasis[at])
    start = 0
    for s, times in blinks:
        rates = blinking[start:start + len(times)]
        if s.emotions:  # neutral's gain is 1 throughout
            rates = rates * emotion_layer(times, s.emotions).blink_gain
        s.blinks.decide(times, rates)
        start += len(times)
    start = 0
    for s, times, known in shifts:
        s.shifts.scheduler.decide(times, moving[start:start + len(times)])
        s.shifts.place_new(known, s.cues)
        start += len(times)


def head_inputs_many(sources: Sequence[HeadSource]) -> HeadInputs:
    def joined(values) -> np.ndarray:
        return np.concatenate(list(values))

    times = joined(s.times for s in sources)
    gaze_target, head_follow = zip(*[_gaze(s.times, s.gazes) for s in sources])
    terms, frac = _noise_terms_by_seed(times, [s.seed for s in sources for _ in range(len(s.times))])
    return HeadInputs(activity=at_many([(s.cues, s.times) for s in sources], ("activity",))[:, 0],
                      amplitude=joined(s.amplitude for s in sources), distance=joined(s.distance for s in sources),
                      emotion_pitch=joined(s.emotion_pitch for s in sources),
                      motion_gain=joined(s.motion_gain for s in sources),
                      gaze_target=joined(gaze_target), head_follow=joined(head_follow),
                      saccades=saccade_offsets_many(sources), nodding=nod_many([(s.times, s.cues) for s in sources]),
                      blink=blink_curve_many(sources), pose_shift=pose_many(sources),
                      noise_terms=terms, frac=frac)


def _gaze(times: np.ndarray, gazes: Sequence[GazeEvent]) -> tuple[np.ndarray, np.ndarray]:
    if not gazes:  # straight ahead: what the timelines give with no events
        zeros = np.zeros((len(times), 2))
        return zeros, zeros
    return (ramped_timeline(times, np.zeros(2), [(g.time, np.array([g.yaw, g.pitch]), 0.08) for g in gazes]),
            ramped_timeline(times, np.zeros(2), [(g.time, 0.3 * np.array([g.yaw, g.pitch]), 0.7) for g in gazes]))


def _noise_terms_by_seed(times: np.ndarray, seeds: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """_noise_terms for frames of several seeds: one lookup per seed (each frame on its own)."""
    distinct = sorted(set(seeds))
    if len(distinct) == 1:
        return _noise_terms(distinct[0], _HEAD_NOISE_OCTAVES, _HEAD_NOISE_SPACINGS, times)
    octaves = len(_HEAD_NOISE_OCTAVES)
    terms, frac = np.empty((octaves, len(times), 4, 5)), np.empty((octaves, len(times), 1))
    seed_of = np.array(seeds)
    for seed in distinct:
        these = np.nonzero(seed_of == seed)[0]
        terms[:, these], frac[:, these] = _noise_terms(seed, _HEAD_NOISE_OCTAVES, _HEAD_NOISE_SPACINGS, times[these])
    return terms, frac


def _time(event: tuple[float, np.ndarray]) -> float:
    return event[0]


def saccade_offsets_many(sources: Sequence[HeadSource]) -> np.ndarray:
    """(N, 2) gaze offset (yaw, pitch degrees): hold each fixation, jump to the next in SACCADE_S.
    A frame is in the last saccade started at or before it, coming from the one before (from
    straight ahead for the first saccade a stream's first frame still shows, as ever).
    Per frame in Python floats (streams step a frame or two at a time, where a dozen numpy calls
    cost more than the arithmetic): each number is the IEEE operation numpy would do."""
    out = []
    for s in sources:
        events = s.saccades.starts
        shown_from = max(bisect.bisect_right(events, float(s.times[0]) - 0.05, key=_time) - 1, 0)
        for t in s.times.tolist():
            i = bisect.bisect_right(events, t, key=_time) - 1
            if i < shown_from:  # no saccade yet: straight ahead
                out.append((0.0, 0.0))
                continue
            start, draw = events[i]
            target_yaw, target_pitch = _saccade_target(draw)
            previous_yaw, previous_pitch = _saccade_target(events[i - 1][1]) if i - 1 >= shown_from else (0.0, 0.0)
            progress = clip_float((t - start) / SACCADE_S, 0.0, 1.0)
            out.append((previous_yaw + (target_yaw - previous_yaw) * progress,
                        previous_pitch + (target_pitch - previous_pitch) * progress))
    return np.array(out, dtype=np.float64).reshape(len(out), 2)


def _saccade_target(u: np.ndarray) -> tuple[float, float]:
    """A saccade's (yaw, pitch) degrees from its slot's uniforms."""
    return (float(u[1]) * 2 - 1) * 4.0, (float(u[2]) * 2 - 1) * 2.5


def blink_curve_many(sources: Sequence[HeadSource]) -> np.ndarray:
    """(N,) EyeBlink weight (0 open, 1 closed): a fast close and a slower reopening; each blink
    lasts 100-160 ms (from its seeded uniforms). Blinks are at least a refractory second apart, so
    only the last one started before a frame can show there. Numpy only for the frames inside a
    blink (most steps have none); the rest is the same IEEE arithmetic in Python floats."""
    frames, rel, duration = [], [], []  # of the frames inside a blink: index, time since it started, its length
    index = 0
    for s in sources:
        events = s.blinks.starts
        for t in s.times.tolist():
            i = bisect.bisect_left(events, t, key=_time) - 1
            if i >= 0:
                since, length = t - events[i][0], 0.10 + 0.06 * float(events[i][1][1])
                if 0 < since < length:
                    frames.append(index)
                    rel.append(since)
                    duration.append(length)
            index += 1
    out = np.zeros(index)
    if frames:
        since, length = np.array(rel), np.array(duration)
        closing = 0.4 * length
        shape = np.where(since < closing, np.sin(0.5 * np.pi * since / closing),
                         np.cos(0.5 * np.pi * (since - closing) / (length - closing)))
        out[frames] = np.maximum(0.0, shape)
    return out


def pose_many(sources: Sequence[HeadSource]) -> np.ndarray:
    """(N, 3) the held pose (PoseShifts.pose) of every stream's frames, in one head.held_pose."""
    began, came_from, target = [], [], []
    for s in sources:
        for joined, part in zip((began, came_from, target), s.shifts.shift_at(s.times)):
            joined.extend(part)
    return held_pose(began, came_from, target, np.concatenate([s.times for s in sources]))


def nod_many(parts: Sequence[tuple[np.ndarray, Cues]]) -> np.ndarray:
    """(N,) downward head pitch (degrees, >= 0) following emphasis, for the (times, cues) of each
    stream: each emphatic row pulls the chin down, peaking ~150 ms later and easing back over
    ~0.4 s. A frame sums a fixed window of its own stream's rows (so the same numbers whichever
    frames join it), gathered for all frames at once from the streams' cue_batch."""
    batch, index = cue_batch([cues for _, cues in parts], ("emphasis", "pitch"))
    stream = np.repeat(index, [len(times) for times, _ in parts])
    times = np.concatenate([times for times, _ in parts])
    start, rows = batch.start_times[stream], batch.lengths[stream]
    window = (last_row_at_or_before(start, rows, times - 0.56) + 1)[:, None] + np.arange(_NOD_WINDOW_ROWS)  # (N, W)
    inside = window < rows[:, None]
    gather = (stream[:, None], np.minimum(window, batch.columns["emphasis"].shape[1] - 1))
    strength = batch.columns["emphasis"][gather] * (0.6 + 0.8 * batch.columns["pitch"][gather]) * FEATURE_HOP_S
    pulled = np.where(inside & (strength > 1e-4), strength, 0.0)
    lag = times[:, None] - (start[:, None] + window * FEATURE_HOP_S)  # row times as Cues.row_times
    kernel = np.where((lag > -0.03) & (lag < 0.55), np.sin(np.pi * _clip((lag + 0.03) / 0.58, 0, 1)) ** 2, 0.0)
    return (kernel * pulled).sum(1) * 4.0


def head_layers(inputs: HeadInputs) -> HeadLayer:
    """The head layer of the frames of ``head_inputs_many`` (each frame on its own)."""
    activity, amplitude, motion_gain, nodding = inputs.activity, inputs.amplitude, inputs.motion_gain, inputs.nodding
    head_follow = inputs.head_follow
    head, noise = _head_and_idle_noise(_catmull_rom(inputs.noise_terms, inputs.frac), activity)  # noise: for the sway
    liveliness = (0.5 + 1.2 * activity) * motion_gain * amplitude
    gain = motion_gain * amplitude
    rotation = (inputs.pose_shift + head) * gain[:, None]
    rotation[:, 0] += head_follow[:, 0]
    rotation[:, 1] += inputs.emotion_pitch + head_follow[:, 1] - HEAD_NOD_GAIN * gain * nodding
    sway = 0.004 * liveliness
    translation = np.stack([sway * noise[:, _SWAY_X], sway * noise[:, _SWAY_Y],
                            (1.0 - inputs.distance) * 0.6], axis=1)  # z: the portrait sits ~0.6 m away
    # The eyes hold the target while the head moves (vestibulo-ocular reflex), plus saccades.
    eyes = _clip(inputs.gaze_target + inputs.saccades - rotation[:, :2], -30.0, 30.0)
    gaze = np.stack([eyes, eyes], axis=1)
    brow_raise = _clip((nodding - 1.5) / 4.0, 0.0, 1.0) * _clip(amplitude, 0.0, 1.0)
    return HeadLayer(rotation=rotation, translation=translation, gaze=gaze, blink=inputs.blink, brow_raise=brow_raise)
