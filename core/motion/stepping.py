"""Stepping many motion streams at once (what a sidecar does for all its talking sessions each
turn of its loop): their feature rows in one batch, their cues, network rows, head maths and face
together, each stream getting exactly the frames it gets alone (tests/test_stream_batch.py).
``step_streams`` computes the frames the audio so far releases, ``finish_streams`` ends lines.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from ..audio.features import take_many
from ..types import SAMPLE_RATE, AudioFeatures, MotionFrame
from .compose import FrameLayers, compose_frames
from .cues import compute_cues_many
from .line_phones import DueFrames

if TYPE_CHECKING:
    from .generator import MotionStream

Report = Callable[[int, Exception], None]


def step_streams(streams: Sequence[MotionStream],
                 on_error: Callable[[int, Exception], None] | None = None) -> list[list[MotionFrame]]:
    """The frames the audio appended so far releases, for several streams at once: the feature
    rows of every stream with frames due are computed in one batch (``take_many``), which is
    where a sidecar with many talking sessions saves most, and so are their cues, lips, head
    and face. Each stream's frames are exactly those its own ``push_audio`` calls would give
    (tests/test_stream_batch.py): a stream with live phones computes the frames each of its
    pushes made due, each run with that push's phones and rows, one run per stream a round.

    ``on_error(k, exc)``: a stream whose own stages raise gets no more frames from this call and
    is reported there, and the others still get theirs (without it, the exception propagates,
    and the frames each stream had stepped, held ones included, stay held for its next call); a
    failure in a round's shared head and face maths is reported for each stream of that round.
    If the shared feature batch (``take_many``) raises, no stream has changed."""
    steps = [stream._steps() for stream in streams]
    needing = [k for k, stream in enumerate(streams) if steps[k] and steps[k][-1].rows_until > stream._rows_taken()]
    for k, rows in zip(needing, take_many([streams[k]._features for k in needing])):
        streams[k]._take_rows(rows)
    out: list[list[MotionFrame]] = []
    for stream in streams:  # frames a stream stepped before an event come first
        out.append(stream._held)
        stream._held = []
    failed: set[int] = set()
    report = _reporter(streams, on_error, failed)
    try:
        for depth in range(max(map(len, steps), default=0)):  # a stream's runs in order, one a round
            group = [k for k in range(len(streams)) if len(steps[k]) > depth and k not in failed]
            for i, frames in _step_once([streams[k] for k in group], [steps[k][depth] for k in group],
                                        lambda i, exc, group=group: report(group[i], exc)):
                out[group[i]] += frames
    except BaseException:  # the error goes to the caller; frames already stepped come with the next call
        for stream, frames in zip(streams, out):
            stream._held = frames + stream._held
        raise
    return out


def _reporter(streams: Sequence[MotionStream], on_error: Report | None, failed: set[int]) -> Report:
    """``report(k, exc)`` of a call's stream k: the exception propagates without ``on_error``;
    with it, the stream is marked failed (no more runs this call) and reported."""
    def report(k: int, exc: Exception) -> None:
        if on_error is None:
            raise exc
        failed.add(k)
        streams[k]._due.clear()
        on_error(k, exc)
    return report


def _step_once(streams: list[MotionStream], steps: list[DueFrames], report: Report) -> list[tuple[int, list[MotionFrame]]]:
    """One frame run of each stream, together: (index, frames) of those that emit."""
    for stream, step in zip(streams, steps):
        if stream._phones.live:
            stream._due.pop(0)
            stream._phones.pinned = step.phones
    try:
        added = _add_rows(streams, {k: stream._rows_to(step.rows_until) for k, (stream, step) in enumerate(zip(streams, steps))},
                          report)
        return _emit_runs(streams, {k: steps[k].last_index for k in added}, report)
    finally:
        for stream in streams:
            if stream._phones.live:
                stream._phones.pinned = None


def finish_streams(streams: Sequence[MotionStream], on_error: Report | None = None) -> list[list[MotionFrame]]:
    """``[stream.finish() for stream in streams]``, computed together (a game whose NPCs speak
    3 s lines ends about ten lines a second): frames due at past pushes are stepped first, all
    streams in one ``step_streams``; then every line's last rows, cues, layers and faces in one
    batch. Each stream gets exactly what its own ``finish`` gives (it is this with one stream).

    ``on_error`` as in ``step_streams``: a failing stream is reported and gets the frames it had
    stepped; the others go on. Without it the exception propagates, and frames stepped before it
    stay held for the next call (the tail's own frames, whose rows are used up, are not made)."""
    failed: set[int] = set()
    report = _reporter(streams, on_error, failed)
    out: list[list[MotionFrame]] = [[] for _ in streams]
    stepping = [k for k, stream in enumerate(streams) if stream._due or stream._held]
    if stepping:
        stepped = step_streams([streams[k] for k in stepping], None if on_error is None else
                               (lambda i, exc: report(stepping[i], exc)))
        for k, frames in zip(stepping, stepped):
            out[k] = frames
    ending = [k for k, stream in enumerate(streams) if k not in failed and not stream._finished]
    try:
        tails = _finish_tails([streams[k] for k in ending], lambda i, exc: report(ending[i], exc))
    except BaseException:
        for stream, frames in zip(streams, out):
            stream._held = frames + stream._held
        raise
    for i, frames in tails:
        out[ending[i]] += frames
    return out


def _finish_tails(streams: list[MotionStream], report: Report) -> list[tuple[int, list[MotionFrame]]]:
    """Every row taken, then the flushed last rows, the phones finished, and the frames up to the
    end of each line: (index, frames) of those that emit."""
    for stream in streams:
        stream._finished = True
    ongoing = _add_taken(streams, list(range(len(streams))), take_many([s._features for s in streams]), report)
    flushed: list[tuple[int, AudioFeatures | None]] = []
    for k in ongoing:
        try:
            flushed.append((k, streams[k]._features.flush()))
        except Exception as exc:
            report(k, exc)
    ongoing = _add_taken(streams, [k for k, _ in flushed], [rows for _, rows in flushed], report)
    last: dict[int, int] = {}
    for k in ongoing:
        stream = streams[k]
        try:
            stream.timeline = stream._phones.finish()
        except Exception as exc:
            report(k, exc)
            continue
        last[k] = math.ceil(stream._received / SAMPLE_RATE * stream.controls.fps - 1e-9) - 1
    return _emit_runs(streams, last, report)


def _add_taken(streams: list[MotionStream], chosen: list[int], rows: list[AudioFeatures | None],
               report: Report) -> list[int]:
    """Rows just taken, to the phones; then every row taken so far added (at the end of a line
    there is no run to wait for). The chosen streams that did not fail."""
    took = []
    for k, part in zip(chosen, rows):
        try:
            streams[k]._take_rows(part)
            took.append(k)
        except Exception as exc:
            report(k, exc)
    return _add_rows(streams, {k: streams[k]._rows_to(streams[k]._rows_taken()) for k in took}, report)


def _add_rows(streams: list[MotionStream], rows: dict[int, AudioFeatures | None], report: Report) -> list[int]:
    """New rows of the streams ``rows`` names, added backend by backend (one call each: the
    learned network's rows run together); the streams that did not fail, in order."""
    by_kind: dict[Callable, list[int]] = {}
    for k in rows:
        by_kind.setdefault(type(streams[k])._add_rows_many, []).append(k)
    added = []
    for add_rows_many, group in by_kind.items():
        try:
            add_rows_many([streams[k] for k in group], [rows[k] for k in group])
            added += group
        except Exception as exc:
            for k in group:
                report(k, exc)
    return sorted(added)


def _emit_runs(streams: list[MotionStream], last: dict[int, int], report: Report) -> list[tuple[int, list[MotionFrame]]]:
    """The frames of the streams ``last`` names, up to each one's last index: (index, frames) of
    those that emit. The cues of all in one batch, then each stream's own layers, then the head
    maths and the face of all their frames in one batch (each gets what it gets alone)."""
    emitting = [k for k in last if streams[k]._emits(last[k])]
    mouth = any(streams[k].MOUTH_READS_CUES for k in emitting)  # the mouth's cues when any stream's lips read them
    cues = compute_cues_many([streams[k]._rows for k in emitting], mouth) if emitting else []
    layers: list[tuple[int, FrameLayers]] = []
    for k, stream_cues in zip(emitting, cues):
        try:
            layers.append((k, streams[k]._layers_until(last[k], stream_cues)))
        except Exception as exc:
            report(k, exc)
    try:
        composed = compose_frames([part for _, part in layers])
    except Exception as exc:  # shared by the round: each of its streams is told, none gets frames
        for k, _ in layers:
            report(k, exc)
        return []
    return [(k, frames) for (k, _), frames in zip(layers, composed)]
