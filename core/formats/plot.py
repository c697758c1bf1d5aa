"""The ``--plot`` picture: the main motion curves over the waveform and the phone timeline."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import NpcfaceError
from ..types import SAMPLE_RATE, Audio, MotionTrack

_MOUTH_CURVES = (("JawOpen", "tab:red"), ("MouthClose", "tab:blue"), ("MouthFunnel", "tab:green"),
                 ("MouthPucker", "tab:olive"), ("MouthRollLower", "tab:purple"))


def _pair(track: MotionTrack, stem: str) -> np.ndarray:
    return 0.5 * (track.channel(stem + "Left") + track.channel(stem + "Right"))


def plot_motion(track: MotionTrack, audio: Audio | None, path: str | Path, title: str = "") -> None:
    """Write a PNG: waveform + phones, mouth curves, face (smile, frown, brows, blink), head pose."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(4, 1, figsize=(14, 9), sharex=True, gridspec_kw={"height_ratios": [1.2, 1.6, 1, 1]})
    wave_ax, mouth_ax, face_ax, head_ax = axes
    if audio is not None:
        step = max(1, len(audio.samples) // 20000)  # plenty of points for the envelope's shape
        wave_t = np.arange(0, len(audio.samples), step) / SAMPLE_RATE
        wave_ax.plot(wave_t, audio.samples[::step], color="0.4", linewidth=0.5)
    wave_ax.set_ylim(-1.05, 1.05)
    if track.phones is not None:
        for i, phone in enumerate(track.phones.phones):
            if phone.label == "SIL":
                wave_ax.axvspan(phone.start, phone.end, color="0.9", zorder=0)
                continue
            colour = "tab:blue" if phone.label in ("P", "B", "M") else "black"
            wave_ax.axvline(phone.start, color="0.75", linewidth=0.5)
            wave_ax.text(0.5 * (phone.start + phone.end), 0.75 - 0.3 * (i % 2), phone.label, ha="center",
                         fontsize=7, color=colour)
        wave_ax.set_title(f"{title}  (phones: {track.phones.source}, {track.phones.language})", fontsize=10)
    elif title:
        wave_ax.set_title(title, fontsize=10)
    for name, colour in _MOUTH_CURVES:
        mouth_ax.plot(track.times, track.channel(name), label=name, color=colour, linewidth=1.2)
    mouth_ax.set_ylim(-0.02, 1.02)
    mouth_ax.legend(loc="upper right", fontsize=7, ncol=5)
    face_ax.plot(track.times, _pair(track, "MouthSmile"), label="smile", color="tab:orange")
    face_ax.plot(track.times, _pair(track, "MouthFrown"), label="frown", color="tab:brown")
    face_ax.plot(track.times, _pair(track, "BrowDown"), label="brow down", color="tab:gray")
    face_ax.plot(track.times, track.channel("BrowInnerUp"), label="brow inner up", color="tab:pink")
    face_ax.plot(track.times, _pair(track, "EyeBlink"), label="blink", color="black", linewidth=0.8)
    face_ax.set_ylim(-0.02, 1.02)
    face_ax.legend(loc="upper right", fontsize=7, ncol=5)
    for axis, name in enumerate(("yaw", "pitch", "roll")):
        head_ax.plot(track.times, track.head_rotation[:, axis], label=f"head {name}")
    head_ax.plot(track.times, track.gaze[:, 0, 0], label="eye yaw", linewidth=0.7, linestyle="--")
    head_ax.set_ylabel("degrees")
    head_ax.legend(loc="upper right", fontsize=7, ncol=4)
    head_ax.set_xlabel("seconds")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=90)
    except OSError as error:
        raise NpcfaceError(f"cannot write plot {path}: {error.strerror or error}") from None
    finally:
        plt.close(fig)
