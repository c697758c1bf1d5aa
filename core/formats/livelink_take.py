"""A Live Link Face take as the iPhone app exports it: curves in a CSV (``X.csv``, or the
calibrated ``X_cal.csv`` / ``X_raw.csv``) and the take's sound, either a WAV beside it (``X.wav``)
or the app's reference video (``X.mov``, e.g. ``MySlate_166_iPhone.mov``) with its audio track.

The app stamps the CSV rows and the video's timecode track from one clock, so the CSV's first row
sits ``csv start - video start`` seconds into the video's audio. A WAV carries no timecode: it is
taken to start with the CSV.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import FormatError

AUDIO_SUFFIXES = (".wav", ".mov")
CSV_VARIANTS = ("_cal", "_raw")
HALF_DAY_S = 43_200.0


@dataclass(frozen=True)
class TakeMedia:
    csv: Path
    media: Path  # the WAV or reference video whose audio belongs to the curves
    offset_s: float  # where the CSV's first row falls in the media's audio (seconds)


def take_stems(csv: Path) -> list[str]:
    """Stems a take's sound file may carry: the CSV's own, then without _cal / _raw."""
    stems = [csv.stem]
    for variant in CSV_VARIANTS:
        if csv.stem.lower().endswith(variant):
            stems.append(csv.stem[: -len(variant)])
    return stems


def find_take_media(csv: Path) -> Path | None:
    """The WAV or reference .mov beside a take's CSV (any letter case), or None."""
    beside = {p.name.lower(): p for p in csv.parent.iterdir() if p.is_file()} if csv.parent.is_dir() else {}
    for stem in take_stems(csv):
        for suffix in AUDIO_SUFFIXES:
            found = beside.get(f"{stem}{suffix}".lower())
            if found is not None:
                return found
    return None


def take_media(csv: Path) -> TakeMedia:
    """The take's sound and where its CSV starts in it; a clear error when it has none or the
    timecodes do not overlap."""
    from .livelink import first_timecode_s
    from .video import video_info, video_timecode_s

    media = find_take_media(csv)
    if media is None:
        names = " or ".join(f"{stem}{suffix}" for stem in take_stems(csv) for suffix in AUDIO_SUFFIXES)
        raise FormatError(f"Live Link take {csv} has no sound beside it (looked for {names})")
    if media.suffix.lower() == ".wav":
        return TakeMedia(csv, media, 0.0)
    info = video_info(media)
    if not info.has_audio:
        raise FormatError(f"Live Link take {csv}: its reference video {media.name} has no audio track")
    video_start = video_timecode_s(media)
    if video_start is None:
        return TakeMedia(csv, media, 0.0)
    offset = first_timecode_s(csv) - video_start
    if offset < -HALF_DAY_S:  # the video started before midnight, the CSV after
        offset += 2 * HALF_DAY_S
    elif offset > HALF_DAY_S:
        offset -= 2 * HALF_DAY_S
    if not -1.0 <= offset <= info.duration:
        raise FormatError(f"Live Link take {csv}: its first row is {offset:+.2f} s from the start of "
                          f"{media.name} ({info.duration:.1f} s long); the timecodes do not overlap")
    return TakeMedia(csv, media, offset)
