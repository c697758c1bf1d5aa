"""Head and eyes: posture shifts at phrase boundaries held in between, prosody-driven nods and a
never-repeating idle wobble; gaze following with saccades; stochastic blinks (more at pauses).

Randomness is a function of (seed, channel, time), never of how audio was chunked: smooth noise
comes from seeded knot values on a fixed time grid, and blinks / saccades are decided slot by slot
on a fixed grid from seeded uniforms, so a stream and an offline pass draw the same numbers.
"""
from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ..numeric import clip as _clip
from ..numeric import clip_float
from .cues import FEW_IN_PYTHON, Cues


SACCADE_S = 0.025  # a small saccade takes 20-30 ms
Hazard = Callable[[np.ndarray], np.ndarray]  # times (s) -> events per second (or a gain) at those times
_BLOCK = 256  # random values are drawn in blocks of this many knots / slots


@lru_cache(maxsize=512)
def _uniform_block(seed: int, channel: int, block: int) -> np.ndarray:
    block = np.random.default_rng([seed & 0xFFFFFFFF, channel, block]).random((_BLOCK, 3))
    block.flags.writeable = False  # shared: events keep views of their rows
    return block


def slot_uniforms(seed: int, channel: int, slots: np.ndarray) -> np.ndarray:
    """(N,) slot indices >= 0 -> (N, 3) uniforms in [0, 1), fixed per (seed, channel, slot)."""
    slots = np.asarray(slots, dtype=np.int64)
    if len(slots) == 0:
        return np.empty((0, 3))
    first, last = int(slots.min()) // _BLOCK, int(slots.max()) // _BLOCK
    if first == last:  # the usual case: a step's few slots lie in one block
        return _uniform_block(seed, channel, first)[slots - first * _BLOCK]
    table = np.concatenate([_uniform_block(seed, channel, b) for b in range(first, last + 1)])
    return table[slots - first * _BLOCK]


def slot_uniform_run(seed: int, channel: int, first: int, count: int) -> np.ndarray:
    """``slot_uniforms`` of the slots first.. first + count - 1 (a slice of one block, usually)."""
    block = first // _BLOCK
    if (first + count - 1) // _BLOCK != block:
        return slot_uniforms(seed, channel, np.arange(first, first + count))
    return _uniform_block(seed, channel, block)[first - block * _BLOCK:first - block * _BLOCK + count]


_NOISE_CHANNELS = 5  # head yaw, pitch, roll, sway x, sway y


@lru_cache(maxsize=256)
def _knot_block(seed: int, octave: int, block: int) -> np.ndarray:
    return np.random.default_rng([seed & 0xFFFFFFFF, 100 + octave, block]).uniform(-1, 1, (_BLOCK, _NOISE_CHANNELS))


@lru_cache(maxsize=256)
def _knot_table(seed: int, octave: int, first: int, last: int) -> np.ndarray:
    """Knot blocks first..last joined (a streamed frame reads the same one or two blocks each time)."""
    return np.concatenate([_knot_block(seed, octave, b) for b in range(first, last + 1)])


def smooth_noise(seed: int, octave: int, times: np.ndarray, spacing: float) -> np.ndarray:
    """(T,) -> (T, 5) smooth noise in about [-1, 1]: Catmull-Rom through seeded knots."""
    return smooth_noise_octaves(seed, (octave,), (spacing,), times)[0]


def smooth_noise_octaves(seed: int, octaves: tuple[int, ...], spacings: tuple[float, ...], times: np.ndarray) -> np.ndarray:
    """(T,) -> (O, T, 5): ``smooth_noise`` for several (octave, spacing) pairs in one pass (a
    streamed frame computes six of them, where the per-call overhead is most of the cost)."""
    return _catmull_rom(*_noise_terms(seed, octaves, spacings, times))


def _noise_terms(seed: int, octaves: tuple[int, ...], spacings: tuple[float, ...], times: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The Catmull-Rom terms of the knots around each time (O, T, 4, 5: _knot_terms) and the
    time's place between the middle two knots (O, T, 1)."""
    pos = np.maximum(np.asarray(times, dtype=np.float64), 0.0)[None, :] / np.array(spacings, dtype=np.float64)[:, None]
    base = np.floor(pos).astype(np.int64)  # (O, T)
    last_knots = tuple(((np.max(base, axis=1, initial=0) + 3) // _BLOCK).tolist())
    table, offsets = _octave_tables(seed, tuple(octaves), last_knots)
    return table[base + offsets[:, None]], (pos - base)[:, :, None]


@lru_cache(maxsize=64)
def _octave_tables(seed: int, octaves: tuple[int, ...], last_blocks: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The knot terms tables of several octaves end to end, and where each starts (one lookup for all)."""
    tables = [_knot_terms(_knot_table(seed, octave, 0, last)) for octave, last in zip(octaves, last_blocks)]
    return np.concatenate(tables), np.cumsum([0] + [len(t) for t in tables[:-1]])


def _knot_terms(knots: np.ndarray) -> np.ndarray:
    """(K, 5) knots -> (K - 3, 4, 5): for each run of four knots p0..p3 from row k, the terms
    of the Catmull-Rom cubic between p1 and p2, made once per table rather than at every frame."""
    p0, p1, p2, p3 = knots[:-3], knots[1:-2], knots[2:-1], knots[3:]
    return np.stack([2 * p1, p2 - p0, 2 * p0 - 5 * p1 + 4 * p2 - p3, 3 * p1 - p0 - 3 * p2 + p3], axis=1)


def _catmull_rom(terms: np.ndarray, frac: np.ndarray) -> np.ndarray:
    """(O, T, 4, 5) terms (_knot_terms), (O, T, 1) -> (O, T, 5); every time on its own (times of many streams may be joined)."""
    return 0.5 * (terms[:, :, 0] + terms[:, :, 1] * frac + terms[:, :, 2] * frac ** 2 + terms[:, :, 3] * frac ** 3)


_IDLE_SPACINGS = (1.7, 1.7 / np.sqrt(5.0))  # two octaves with an irrational spacing ratio


# Head rotation: octaves of seeded smooth noise, knot spacings in irrational ratios (no loop),
# from a slow drift to a syllable-rate bob, each scaled by (base + per_activity * activity) in
# degrees of yaw, then per axis by HEAD_AXES (yaw, pitch, roll); emphasis nods the chin down by
# HEAD_NOD_GAIN * the nod (head_frames.nod_many). Fitted by bench/tune_head.py (the recipe) to heads captured from real
# people talking on video (not GRID's studio speakers, who hold still): to the middle speaker of
# those, not their mean, which the busiest few make (nothing found in the voice tells a busy
# speaker from a calm one: bench/head_prosody.py); bench/bench_head.py measures the generator
# against them and against held-out clips.
HEAD_OCTAVES = ((1.700, 0.052, 5.962), (0.760, 0.878, 4.270), (0.340, 0.053, 0.025),
               (0.152, 1.913, 0.352))  # (knot spacing s, base, per_activity)
HEAD_AXES = (1.0, 0.248, 0.934)
HEAD_NOD_GAIN = 3.0  # held, not fitted (bench/tune_head.py): nods must show over the shifts


_HEAD_NOISE_OCTAVES = tuple(range(len(HEAD_OCTAVES))) + (0, 1)  # the head's octaves, then the sway's two
_HEAD_NOISE_SPACINGS = tuple(spacing for spacing, _, _ in HEAD_OCTAVES) + _IDLE_SPACINGS


_OCTAVE_BASES = np.array([base for _, base, _ in HEAD_OCTAVES])[:, None]  # (octaves, 1)
_OCTAVE_PER_ACTIVITY = np.array([per for _, _, per in HEAD_OCTAVES])[:, None]


def _head_and_idle_noise(noise: np.ndarray, activity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T, 3) yaw, pitch, roll degrees before any gain or nod, and (T, 5) the sway's idle noise (two
    octaves with an irrational spacing ratio, so the sum never repeats), from the noise of
    _HEAD_NOISE_OCTAVES (O, T, 5)."""
    octaves = len(HEAD_OCTAVES)
    scaled = noise[:octaves, :, :3] * (_OCTAVE_BASES + _OCTAVE_PER_ACTIVITY * activity[None, :])[:, :, None]  # (octaves, T, 3)
    out = 0.0 + scaled[0]  # summed octave by octave from zero, as a loop of += on zeros would
    for octave in range(1, octaves):
        out = out + scaled[octave]
    return out * np.array(HEAD_AXES), 0.75 * noise[-2] + 0.35 * noise[-1]


# Posture shifts: real heads hold a pose and move to a new one at phrase boundaries (speech after
# a pause) and on stressed syllables, rarely in between; the noise above only wobbles. A shift
# starts in a 50 ms slot with probability from SHIFT_RATES (per second: always, while talking, at a
# phrase onset, per dB of emphasis), at least SHIFT_REFRACTORY_S after the last one (at the latest SHIFT_MAX_GAP_S after it), and eases
# (minimum jerk) over SHIFT_S from the pose it is at to a seeded target: per axis
# (SHIFT_QUIET_DEG + SHIFT_LOUD_DEG * loudness there) * uniform(-1, 1). Fitted by bench/tune_head.py.
SHIFT_SLOT_S, SHIFT_S, SHIFT_REFRACTORY_S, SHIFT_MAX_GAP_S = 0.05, 0.35, 0.5, 8.0
SHIFT_RATES = (0.08, 0.35, 6.0, 0.25)  # (always, * activity, * phrase onset, * emphasis dB)
SHIFT_QUIET_DEG = (1.014, 0.361, 0.182)  # yaw, pitch, roll
SHIFT_LOUD_DEG = (4.231, 0.561, 0.988)
_PAUSE_PROBES_S = np.array([0.15, 0.25, 0.35, 0.45])  # where a phrase onset looks back for silence


def pause_probe_times(times: np.ndarray) -> np.ndarray:
    """(T * 4,) the times phrase_onset reads the level at, each time's four in a row."""
    return (times[:, None] - _PAUSE_PROBES_S[None, :]).ravel()


def phrase_onset(cues: Cues, times: np.ndarray) -> np.ndarray:
    """0..1 at ``times``: loud now after a quiet stretch 150-450 ms back (speech after a pause)."""
    return phrase_onset_from(cues.at("held", times), cues.at("level", pause_probe_times(times)))


def phrase_onset_from(held: np.ndarray, level_probed: np.ndarray) -> np.ndarray:
    """phrase_onset from the held level at the times (T,) and the level at their pause probes (T * 4,)."""
    before = level_probed.reshape(len(held), len(_PAUSE_PROBES_S)).max(1)
    return _clip(held - 2.0 * before, 0.0, 1.0)


def shift_hazard(cues: Cues) -> Hazard:
    """Posture shifts per second at given times (SHIFT_RATES)."""
    def hazard(times: np.ndarray) -> np.ndarray:
        return shift_rates(cues.at("activity", times), phrase_onset(cues, times), cues.at("emphasis", times))
    return hazard


def shift_rates(activity: np.ndarray, onset_at: np.ndarray, emphasis: np.ndarray) -> np.ndarray:
    """Posture shifts per second from the cues at the slot times (SHIFT_RATES)."""
    always, talking, onset, stress = SHIFT_RATES
    return always + talking * activity + onset * onset_at + stress * emphasis


def _ease(x: np.ndarray) -> np.ndarray:
    x = _clip(x, 0.0, 1.0)
    return x * x * x * (10.0 + x * (6.0 * x - 15.0))  # minimum jerk: no speed step at either end


def _ease_float(x: float) -> float:
    """``_ease`` of one Python float (the same operations in the same order)."""
    x = clip_float(x, 0.0, 1.0)
    return x * x * x * (10.0 + x * (6.0 * x - 15.0))


@dataclass
class PoseShifts:
    """The posture shifts decided so far, in time order (decided slot by slot like blinks, so a
    stream and an offline pass decide the same ones): times (K,), the pose each starts from and
    the pose it goes to (K, 3), yaw, pitch, roll degrees before any gain."""

    seed: int
    quiet_deg: tuple[float, float, float] = SHIFT_QUIET_DEG
    loud_deg: tuple[float, float, float] = SHIFT_LOUD_DEG
    scheduler: SlotScheduler = field(init=False)
    times: list[float] = field(default_factory=list)
    starts: list[np.ndarray] = field(default_factory=list)
    targets: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.scheduler = SlotScheduler(self.seed, 8, slot=SHIFT_SLOT_S, refractory=SHIFT_REFRACTORY_S,
                                       max_gap=SHIFT_MAX_GAP_S)

    def decide_until(self, t_end: float, cues: Cues) -> None:
        known = len(self.scheduler.starts)
        self.scheduler.decide_until(t_end, shift_hazard(cues))
        self.place_new(known, cues)

    def place_new(self, known: int, cues: Cues) -> None:
        """The poses of the shifts the scheduler decided after its first ``known`` ones."""
        new = self.scheduler.starts[known:]
        if not new:
            return
        times = np.array([t for t, _ in new])
        scale = np.array(self.quiet_deg) + np.array(self.loud_deg) * cues.at("phrase", times)[:, None]
        targets = scale * (2.0 * slot_uniforms(self.seed, 9, np.round(times / SHIFT_SLOT_S).astype(np.int64)) - 1.0)
        for t, target in zip(times, targets):
            self.starts.append(self.pose(np.array([t]))[0])
            self.times.append(float(t))
            self.targets.append(target)

    def pose(self, times: np.ndarray) -> np.ndarray:
        """(T,) -> (T, 3): the held pose, easing from each shift's start to its target."""
        return held_pose(*self.shift_at(times), times)

    def shift_at(self, times: np.ndarray) -> tuple[list[float], list[np.ndarray], list[np.ndarray]]:
        """For each time, the last shift started at or before it: its start time (nan: none yet,
        at rest), the pose it left and the pose it goes to. Per time in Python: streams ask for a
        frame or two at a time."""
        began, came_from, target = [], [], []
        for t in times.tolist():
            i = bisect.bisect_right(self.times, t) - 1
            began.append(self.times[i] if i >= 0 else np.nan)
            came_from.append(self.starts[i] if i >= 0 else _REST)
            target.append(self.targets[i] if i >= 0 else _REST)
        return began, came_from, target


_REST = np.zeros(3)


def held_pose(began: list[float], came_from: list[np.ndarray], target: list[np.ndarray], times: np.ndarray) -> np.ndarray:
    """(T, 3) the pose at ``times`` from PoseShifts.shift_at: eased from the shift's start to its
    target. A frame or two in Python floats (the same IEEE operations; ~10 numpy calls cost more)."""
    if len(times) <= FEW_IN_PYTHON:
        out = []
        for t, start, pose_from, pose_to in zip(times.tolist(), began, came_from, target):
            progress = 0.0 if start != start else _ease_float((t - start) / SHIFT_S)  # nan: no shift yet
            out.append([c + (g - c) * progress for c, g in zip(pose_from.tolist(), pose_to.tolist())])
        return np.array(out, dtype=np.float64).reshape(len(out), 3)
    began = np.array(began)
    shifted = ~np.isnan(began)
    progress = np.where(shifted, _ease((times - np.where(shifted, began, 0.0)) / SHIFT_S), 0.0)
    came_from, target = np.array(came_from), np.array(target)
    return came_from + (target - came_from) * progress[:, None]


_SWAY_X, _SWAY_Y = 3, 4  # noise channels 0-2 are the head angles (_head_and_idle_noise)


@lru_cache(maxsize=512)
def _prior_uniform(seed: int, channel: int) -> float:
    """SlotScheduler._prior_event's draw (asked for at every step until a first event; a generator
    costs ~0.3 ms to seed)."""
    return float(np.random.default_rng([seed & 0xFFFFFFFF, 1000 + channel]).uniform())


@dataclass
class SlotScheduler:
    """Decides, slot by slot in time order, whether an event (a blink, a saccade) starts there.

    Slot i covers [i * slot, (i + 1) * slot). An event starts in slot i when the slot's seeded
    uniform is below the hazard probability and the last event is ``refractory`` seconds back,
    or unconditionally when ``max_gap`` seconds have passed. State is just the decided events.
    """

    seed: int
    channel: int
    slot: float
    refractory: float
    max_gap: float
    next_slot: int = 0
    starts: list[tuple[float, np.ndarray]] = field(default_factory=list)  # (time, the slot's uniforms)

    def decide_until(self, t_end: float, hazard_per_s: Hazard) -> None:
        """Decide every slot starting before ``t_end``; ``hazard_per_s(times) -> rates``."""
        times = self.slots_to_decide(t_end)
        if times is not None:
            self.decide(times, np.asarray(hazard_per_s(times), dtype=np.float64))

    def slots_to_decide(self, t_end: float) -> np.ndarray | None:
        """The start times of the slots before ``t_end`` that need the hazard (``decide`` them
        with it); None when none does (the slots up to there are decided already, or fall too
        soon after the last event: those are decided now, without one)."""
        last = int(np.floor(t_end / self.slot))
        if last < self.next_slot:
            return None
        previous = self.starts[-1][0] if self.starts else self._prior_event()
        if last * self.slot - previous < self.refractory:  # too soon after the last event for any slot here
            self.next_slot = last + 1
            return None
        return np.arange(self.next_slot, last + 1) * self.slot

    def decide(self, times: np.ndarray, rates: np.ndarray) -> None:
        """Decide the slots ``slots_to_decide`` gave, with the hazard there (events per second)."""
        previous = self.starts[-1][0] if self.starts else self._prior_event()
        last = self.next_slot + len(times) - 1
        draws = slot_uniform_run(self.seed, self.channel, self.next_slot, len(times))
        probability = 1.0 - np.exp(-rates * self.slot)
        for t, p, u in zip(times, probability, draws):
            since = t - previous
            if since >= self.refractory and (u[0] < p or since >= self.max_gap):
                self.starts.append((float(t), u))
                previous = t
        self.next_slot = last + 1

    def _prior_event(self) -> float:
        """A seeded moment before the line for the "last" event, so that lines do not all open
        with a forced blink (with no history, max_gap would have passed at t = 0)."""
        return -_prior_uniform(self.seed, self.channel) * self.max_gap


def blink_hazard(cues: Cues, blink_gain_at: Hazard) -> Hazard:
    """Blink rate per second at given times: ~17/min baseline, several times that just after
    speech stops (people blink at pauses), scaled by the emotion's blink gain. One stream's
    form of what head_frames.decide_events_many computes for many at once: the tests hold the
    batched path to it."""
    def hazard(times: np.ndarray) -> np.ndarray:
        return blink_rates(cues.at("level", times), cues.at("level", times - BLINK_LOOKBACK_S)) * blink_gain_at(times)
    return hazard


BLINK_LOOKBACK_S = 0.25  # a pause starts where the level was up this long before
SACCADES_PER_S = 0.7  # small gaze shifts while holding a target (plus the refractory time)


def blink_rates(now: np.ndarray, before: np.ndarray) -> np.ndarray:
    """Blinks per second before the emotion's gain, from the level at the slot times and
    BLINK_LOOKBACK_S before them."""
    pause_start = _clip(before - now, 0.0, 1.0) * (now < 0.2)
    return 0.3 + 2.0 * pause_start
