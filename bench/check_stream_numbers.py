"""Same numbers: stream real clips through this code and the code at --before REV, with the same
random chunking, and print the largest difference per output channel (speed work must not move
them; the bar is 1e-9).

    .venv/bin/python bench/check_stream_numbers.py --before REV [--clips 3] [--with-text 2] [--seed 0]

Per clip, motion (`rules`, `learned`) and way of stepping: one stream pushed chunk by chunk
(random chunks of 1..2000 samples), and 4 streams with their own random chunking stepped together
by step_streams. --with-text N adds N clips of read speech streamed with their transcript (live
aligned phones). Channels: the 52 ARKit blendshapes, head rotation (yaw, pitch, roll),
translation (x, y, z), gaze (left / right eye, yaw / pitch), tongue tip. Exits 1 if any differs
by more than 1e-9.
"""
from __future__ import annotations

import argparse
import base64
import io
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from _common import add_revision_options, data_dir, run_at_revision, use_code_from  # noqa: E402
from bench_stream import ENGLISH, chosen_clips  # noqa: E402

TOLERANCE = 1e-9


def _chunkings(length: int, seed: int, count: int) -> list[list[int]]:
    """``count`` random chunkings of ``length`` samples: chunk boundaries, 1..2000 samples apart."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        sizes = rng.integers(1, 2001, size=length // 1000 + 2)
        out.append([0] + [int(b) for b in np.cumsum(sizes) if b < length] + [length])
    return out


def _frame_array(frames) -> np.ndarray:
    """(T, 52 + 3 + 3 + 4 + 1) of a stream's frames."""
    return np.array([list(f.blendshapes) + list(f.head_rotation) + list(f.head_translation) + list(f.gaze_left)
                     + list(f.gaze_right) + [f.tongue_tip] for f in frames], dtype=np.float64)


def channel_names() -> list[str]:
    from npcface.core.arkit import ARKIT_NAMES

    return (list(ARKIT_NAMES) + ["head yaw", "head pitch", "head roll", "head x", "head y", "head z",
                                 "gaze left yaw", "gaze left pitch", "gaze right yaw", "gaze right pitch", "tongue tip"])


def outputs(clips: list[str], seed: int) -> dict[str, np.ndarray]:
    """{"clip motion stepping": (T, channels)} for this code. Clips from speech/ (their
    transcript beside them) stream with that text: live aligned phones."""
    import torch

    from npcface.core.audio.decode import load_audio
    from npcface.core.motion.generator import MotionGenerator, step_streams
    from npcface.core.motion.learned import LearnedMotionGenerator
    from npcface.core.types import Controls

    torch.set_num_threads(1)
    out = {}
    for number, clip in enumerate(clips):
        samples = load_audio(clip).samples
        name = os.path.basename(clip)[:3]
        language = "en-us" if name in ENGLISH or name.startswith("s") else "de"  # the other clips: the acoustic fallback (a02 is German)
        transcript = os.path.splitext(clip)[0] + ".txt"
        text = open(transcript).read().strip() if name.startswith("s") and os.path.exists(transcript) else None
        for motion, kind in (("rules", MotionGenerator), ("learned", LearnedMotionGenerator)):
            generator = kind(Controls(language=language, seed=number))
            alone = _chunkings(len(samples), seed + number, 1)[0]
            stream = generator.stream(text)
            frames = [f for a, b in zip(alone, alone[1:]) for f in stream.push_audio(samples[a:b])] + stream.finish()
            out[f"{name} {motion} alone"] = _frame_array(frames)
            # 4 streams, each its own chunking, stepped together at every 20 ms of wall clock
            cuts = _chunkings(len(samples), seed + 100 + number, 4)
            streams = [generator.stream(text) for _ in cuts]
            got: list[list] = [[] for _ in cuts]
            for until in range(320, len(samples) + 320, 320):
                for stream, bounds, done in zip(streams, cuts, got):
                    while len(bounds) > 1 and bounds[1] <= until:
                        stream.append_audio(samples[bounds[0]:bounds[1]])
                        bounds.pop(0)
                for done, frames in zip(got, step_streams(streams)):
                    done.extend(frames)
            for k, (stream, done) in enumerate(zip(streams, got)):
                done.extend(stream.finish())
                out[f"{name} {motion} together {k}"] = _frame_array(done)
    return out


def _encode(arrays: dict[str, np.ndarray]) -> str:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return base64.b64encode(buffer.getvalue()).decode()


def _decode(text: str) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(base64.b64decode(text))) as data:
        return {name: data[name] for name in data.files}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the shared data folder (default ../shared/data)")
    parser.add_argument("--clips", type=int, default=3, help="real clips (English first)")
    parser.add_argument("--with-text", type=int, default=0, metavar="N",
                        help="also N clips of read speech (speech/), streamed with their transcript")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random chunking")
    parser.add_argument("--before", metavar="REV", help="the revision to compare with (required)")
    add_revision_options(parser)  # --json, --code: what --before's run of REV is given
    args = parser.parse_args()
    clips = [str(f) for f in chosen_clips(data_dir(args.data) / "audio", args.clips)]
    clips += [str(f) for f in sorted((data_dir(args.data) / "speech").glob("s*.wav")) if f.with_suffix(".txt").exists()][:args.with_text]
    if not clips:
        print(f"no real audio in {data_dir(args.data) / 'audio'}: nothing to check (set NPCFACE_DATA or --data)")
        return 0
    use_code_from(args.code)
    if args.json:
        print(_encode(outputs(clips, args.seed)))
        return 0
    if not args.before:
        parser.error("--before REV is required (the revision whose numbers must not move)")
    options = ["--clips", str(args.clips), "--with-text", str(args.with_text), "--seed", str(args.seed)] + (["--data", args.data] if args.data else [])
    before = _decode(run_at_revision(args.before, __file__, options))
    now = outputs(clips, args.seed)
    names = channel_names()
    worst = np.zeros(len(names))
    for key, value in now.items():
        if value.shape != before[key].shape:
            print(f"{key}: {len(value)} frames now, {len(before[key])} at {args.before}")
            return 1
        if len(value):
            worst = np.maximum(worst, np.abs(value - before[key]).max(axis=0))
        print(f"{key:28s} {len(value):5d} frames, max difference {np.abs(value - before[key]).max():.3g}")
    print(f"\nmax difference per channel vs {args.before} (channels not listed: exactly equal)")
    for name, diff in zip(names, worst):
        if diff > 0:
            print(f"  {name:20s} {diff:.3g}")
    print(f"overall {worst.max():.3g}: {'within' if worst.max() <= TOLERANCE else 'OVER'} {TOLERANCE:g}")
    return 0 if worst.max() <= TOLERANCE else 1


if __name__ == "__main__":
    sys.exit(main())
