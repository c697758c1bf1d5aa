"""Training data for the learned mouth: real faces with their audio, as (feature rows, targets).

Sources (``collect_clips``):
- a folder of talking videos (.mp4 .mov .avi .mkv), one speaker per folder: each video is face-
  tracked once (core/capture/cache.py, by content hash) and calibrated per speaker;
- a Live Link Face take: the iPhone's own curves in a CSV, with its sound beside it: a WAV of the
  same stem or the app's reference video (``X_iPhone.mov``), aligned by timecode
  (core/formats/livelink_take.py). A take's reference video is its sound, not a face video.

Per-speaker normalisation: a speaker's clips are calibrated as one take (the rest pose is the
speaker's, not each 3-second clip's), then JawOpen and LipGap are scaled so that the speaker's
95th percentile of JawOpen is TARGET_P95_JAW: faces that open little and faces that open a lot
teach the same thing. Targets are sampled at the feature rows' centres (10 ms).

Text beside a video or a take's sound (``X.txt``: the words said; or ``X.align``: GRID's word
alignment, lines "start end word", whose words, silences dropped, are the text) gives the clip its phones: the
project's own forced aligner (core/phonetics, what ``animate --text`` runs) on the clip's audio,
as one articulatory class per feature row (core/motion/learned_inputs.PHONE_CLASSES), cached by
the video's content hash and the text. A clip without text, or whose text the aligner cannot
fit to the audio, has none.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..audio.features import compute_features
from ..capture.blendshapes import channels_from_measurements
from ..capture.cache import cache_root, file_digest, tracked_landmarks
from ..capture.video import capture_from_landmarks
from ..errors import NpcfaceError
from ..motion.learned import feature_matrix
from ..types import FEATURE_HOP_S

VIDEO_SUFFIXES = (".mp4", ".mov", ".avi", ".mkv")
TARGET_P95_JAW = 0.6
FEATURES_VERSION = 1
PHONES_VERSION = 1  # bump when PHONE_CLASSES or the aligner change


class DataError(NpcfaceError):
    code = "bad_data"


@dataclass(frozen=True)
class Clip:
    name: str  # file stem
    speaker: str  # folder name (videos) or take name (Live Link)
    path: Path
    features: np.ndarray  # (T, 47) float32 network input rows
    targets: np.ndarray  # (T, n_outputs) float32 in the model's OUTPUTS order, per-speaker normalised
    lip_gap: np.ndarray  # (T,) float32 the raw measured lip opening (the judging curve)
    phones: np.ndarray | None = None  # (T,) int8 PHONE_CLASSES index per row, from the text beside it; None: no text


def clip_features(media: Path, cache: Path | None = None) -> np.ndarray:
    """(T, 47) float32 network input for a file's audio, cached by content hash."""
    from ..audio.decode import load_audio

    folder = (cache or cache_root()) / "features"
    entry = folder / f"{file_digest(media)}-v{FEATURES_VERSION}.npy"
    if entry.exists():
        return np.load(entry, allow_pickle=False)
    matrix = feature_matrix(compute_features(load_audio(media).samples)).astype(np.float32)
    folder.mkdir(parents=True, exist_ok=True)
    partial = entry.with_suffix(".partial.npy")
    np.save(partial, matrix)
    os.replace(partial, entry)
    return matrix


def text_beside(media: Path) -> str | None:
    """The words said in a video, from ``X.txt`` or GRID's ``X.align`` beside it (None: neither,
    or no words). A malformed .align is a DataError naming the file and line."""
    align, txt = media.with_suffix(".align"), media.with_suffix(".txt")
    if align.exists():
        words = []
        for number, line in enumerate(align.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 3 or not all(f.lstrip("-").isdigit() for f in fields[:2]):
                raise DataError(f"{align}: line {number} is not 'start end word' (GRID's word alignment): {line[:60]!r}")
            if fields[2] not in ("sil", "sp"):
                words.append(fields[2])
        return " ".join(words) or None
    if txt.exists():
        try:
            text = txt.read_text(encoding="utf-8").strip()
        except UnicodeDecodeError:
            raise DataError(f"text file {txt} is not UTF-8 text") from None
        return text or None
    return None


def clip_phones(media: Path, text: str | None, rows: int, cache: Path | None = None) -> np.ndarray | None:
    """(rows,) int8 phone class per feature row of a file's audio with its text (forced
    alignment), cached by content hash and text; None without text or when the aligner fell back
    to recognition (the text does not fit the audio)."""
    import hashlib

    from ..audio.decode import load_audio
    from ..motion.learned_inputs import phone_class_rows
    from ..phonetics.timeline import phones_for

    if text is None:
        return None
    folder = (cache or cache_root()) / "phones"
    key = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    entry = folder / f"{file_digest(media)}-{key}-v{PHONES_VERSION}.npy"
    if entry.exists():
        classes = np.load(entry, allow_pickle=False)
    else:
        timeline = phones_for(load_audio(media), text)
        aligned = timeline.source == "aligned"
        classes = phone_class_rows(timeline.phones, 0, rows).astype(np.int8) if aligned else np.zeros(0, np.int8)
        folder.mkdir(parents=True, exist_ok=True)
        partial = entry.with_suffix(".partial.npy")
        np.save(partial, classes)
        os.replace(partial, entry)
    return classes if len(classes) == rows else None


def _at_rows(times: np.ndarray, values: np.ndarray, rows: int) -> np.ndarray:
    centres = (np.arange(rows) + 0.5) * FEATURE_HOP_S
    return np.stack([np.interp(centres, times, values[:, k]) for k in range(values.shape[1])], axis=1)


def _targets(channels: dict[str, np.ndarray], outputs: tuple[str, ...]) -> np.ndarray:
    return np.stack([channels[name] for name in outputs], axis=1)


def _video_speaker(folder_name: str, videos: list[Path], outputs: tuple[str, ...], cache: Path | None) -> list[Clip]:
    from ..arkit import ARKIT_INDEX

    tracked = [tracked_landmarks(v, cache) for v in videos]
    results = [capture_from_landmarks(t) for t in tracked]
    # One calibration over all the speaker's clips: the rest pose and range are the speaker's.
    weights, _ = channels_from_measurements(np.concatenate([r.measurements for r in results]))
    jaw_p95 = float(np.percentile(weights[:, ARKIT_INDEX["JawOpen"]], 95))
    scale = TARGET_P95_JAW / max(jaw_p95, 0.05)
    clips, start = [], 0
    for video, result in zip(videos, results):
        count = len(result.measurements)
        part = weights[start:start + count].astype(np.float64)
        start += count
        channels = {name: part[:, ARKIT_INDEX[name]] for name in outputs if name in ARKIT_INDEX}
        channels["JawOpen"] = np.clip(part[:, ARKIT_INDEX["JawOpen"]] * scale, 0, 1)
        channels["LipGap"] = np.clip((part[:, ARKIT_INDEX["JawOpen"]] - part[:, ARKIT_INDEX["MouthClose"]]) * scale, 0, 1)
        features = clip_features(video, cache)
        times = result.track.times
        targets = _at_rows(times, _targets(channels, outputs), len(features))
        lip_gap = _at_rows(times, result.mouth_opening[:, None], len(features))[:, 0]
        phones = clip_phones(video, text_beside(video), len(features), cache)
        clips.append(Clip(video.stem, folder_name, video, features, targets.astype(np.float32), lip_gap.astype(np.float32), phones))
    return clips


def _livelink_take(csv: Path, outputs: tuple[str, ...], cache: Path | None) -> Clip:
    from ..formats.livelink import read_livelink_csv
    from ..formats.livelink_take import take_media

    take = take_media(csv)
    track = read_livelink_csv(csv)
    channels = {name: track.channel(name).astype(np.float64) for name in outputs if name != "LipGap"}
    jaw = channels["JawOpen"]
    gap = np.clip(jaw - track.channel("MouthClose"), 0, 1)
    scale = TARGET_P95_JAW / max(float(np.percentile(jaw, 95)), 0.05)
    channels["JawOpen"], channels["LipGap"] = np.clip(jaw * scale, 0, 1), np.clip(gap * scale, 0, 1)
    features = clip_features(take.media, cache)
    times = track.times - track.times[0] + take.offset_s  # on the sound's clock
    targets = _at_rows(times, _targets(channels, outputs), len(features))
    lip_gap = _at_rows(times, gap[:, None], len(features))[:, 0]
    phones = clip_phones(take.media, text_beside(take.media), len(features), cache)
    return Clip(csv.stem, csv.stem, csv, features, targets.astype(np.float32), lip_gap.astype(np.float32), phones)


def _csv_preference(csv: Path) -> int:
    stem = csv.stem.lower()
    return 0 if stem.endswith("_cal") else 2 if stem.endswith("_raw") else 1


def _folder_sources(path: Path) -> list[tuple[str, list[Path]]]:
    """A folder's takes (a CSV with its sound) and its talking videos; a take's reference video
    is its sound, not another face video."""
    from ..formats.livelink_take import find_take_media

    files = sorted(p for p in path.iterdir() if p.is_file())
    takes = [(p, find_take_media(p)) for p in files if p.suffix.lower() == ".csv"]
    by_media: dict[Path, Path] = {}  # one CSV per sound: _cal, else the plain one, else _raw
    for csv, media in takes:
        if media is not None and (media not in by_media or _csv_preference(csv) < _csv_preference(by_media[media])):
            by_media[media] = csv
    takes = sorted((csv, media) for media, csv in by_media.items())
    partners = set(by_media)
    videos = [p for p in files if p.suffix.lower() in VIDEO_SUFFIXES and p not in partners]
    groups = [(path.name, videos)] if videos else []
    return groups + [(csv.stem, [csv]) for csv, _ in takes]


def find_sources(paths: list[str | Path]) -> list[tuple[str, list[Path]]]:
    """(speaker, files) groups: each folder's videos, each Live Link take (CSV + WAV or reference
    .mov); a folder of take folders (the app's export layout) is searched one level down."""
    from ..formats.livelink_take import find_take_media

    groups: list[tuple[str, list[Path]]] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise DataError(f"training source {path} does not exist")
        if path.is_file():
            if path.suffix.lower() == ".csv":
                if find_take_media(path) is None:
                    raise DataError(f"Live Link take {path} has no {path.with_suffix('.wav').name} "
                                    f"or reference .mov beside it")
                groups.append((path.stem, [path]))
            elif path.suffix.lower() in VIDEO_SUFFIXES:
                groups.append((path.parent.name, [path]))
            else:
                raise DataError(f"training source {path} is neither a folder, a video nor a Live Link CSV")
            continue
        found = _folder_sources(path)
        for sub in sorted(p for p in path.iterdir() if p.is_dir()):
            found += [group for group in _folder_sources(sub) if group[1][0].suffix.lower() == ".csv"]
        if not found:
            raise DataError(f"training source {path} holds no videos and no Live Link takes "
                            f"(CSV + WAV or reference .mov)")
        groups.extend(found)
    return groups


def without_formants(clips: list[Clip]) -> list[Clip]:
    """The clips with F1/F2 zeroed in their feature rows: what a stream whose network reads no
    formants (Config.formants) computes."""
    from ..motion.learned import zero_formants

    return [replace(clip, features=zero_formants(clip.features.copy())) for clip in clips]


def collect_clips(paths: list[str | Path], outputs: tuple[str, ...], cache: Path | None = None,
                  progress=None) -> list[Clip]:
    clips: list[Clip] = []
    for speaker, files in find_sources(paths):
        if files[0].suffix.lower() == ".csv":
            clips.append(_livelink_take(files[0], outputs, cache))
        else:
            clips.extend(_video_speaker(speaker, files, outputs, cache))
        if progress:
            progress(len(clips))
    return clips


MAX_OFFSET_ROWS = 25  # the A/V offsets looked for: +-250 ms


def _lag_r(gap: np.ndarray, loudness: np.ndarray, lag: int) -> float:
    """Pearson r of gap[t] with loudness[t - lag] over the rows both exist."""
    a, b = (gap[lag:], loudness[:len(loudness) - lag]) if lag >= 0 else (gap[:lag], loudness[-lag:])
    if len(a) < 10 or a.std() < 1e-9 or b.std() < 1e-9:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def speaker_offsets(clips: list[Clip]) -> dict[str, int]:
    """Rows by which each speaker's measured mouth trails its loudness (> 0: the video lags the
    sound): the lag with the best mean r over the speaker's clips. GRID s1, for example, carries one."""
    lags = range(-MAX_OFFSET_ROWS, MAX_OFFSET_ROWS + 1)
    totals: dict[str, np.ndarray] = {}
    for clip in clips:
        loudness = clip.features[:, 40].astype(np.float64)
        loudness = np.maximum(loudness, loudness.max() - 40.0)  # ignore the room's floor
        rs = np.array([_lag_r(clip.lip_gap.astype(np.float64), loudness, lag) for lag in lags])
        totals[clip.speaker] = totals.get(clip.speaker, 0) + rs
    return {speaker: int(lags[int(np.argmax(rs))]) for speaker, rs in totals.items()}


def shift_targets(clip: Clip, rows: int) -> Clip:
    """The clip with targets[t] = old targets[t + rows] (ends held): rows > 0 moves the mouth earlier."""
    if rows == 0:
        return clip
    index = np.clip(np.arange(len(clip.targets)) + rows, 0, len(clip.targets) - 1)
    return Clip(clip.name, clip.speaker, clip.path, clip.features, clip.targets[index], clip.lip_gap, clip.phones)


def align_targets(clips: list[Clip], held: list[Clip], by_speaker: bool, lead_ms: float) -> tuple[list[Clip], list[Clip]]:
    """Targets moved so each speaker's mouth meets its sound (``by_speaker``: its offset measured
    on the training clips) and then leads it by ``lead_ms``; the held-out clips move with them."""
    offsets = speaker_offsets(clips) if by_speaker else {}
    lead = int(round(lead_ms / 1000 / FEATURE_HOP_S))
    return ([shift_targets(c, offsets.get(c.speaker, 0) + lead) for c in clips],
            [shift_targets(c, offsets.get(c.speaker, 0) + lead) for c in held])
