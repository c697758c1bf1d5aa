"""Video in and out with PyAV (its bundled FFmpeg): read any mp4/mov/webm as RGB frames with
timestamps; write H.264 (yuv420p) + AAC mp4 from a stream of frames; write PNG sequences.

Writing streams: frames may come from a generator and are encoded one at a time, never held
together. The video is constant frame rate (frame i has pts i in a 1/fps time base), and the audio
is interleaved as the video advances, so players keep the two in sync.
"""
from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from ..errors import ControlError, FormatError, ImageError
from ..provenance.credentials import Credentials, load_credentials, sign_mp4
from ..types import SAMPLE_RATE, Audio

AUDIO_FRAME_SAMPLES = 1024  # AAC encodes 1024 samples per frame
MAX_FPS = 1000.0


@dataclass(frozen=True)
class VideoInfo:
    fps: float  # average frame rate of the video stream
    width: int
    height: int
    duration: float  # seconds (container duration, or frames / fps when the container lacks it)
    num_frames: int  # as the container states it; 0 when unknown
    has_audio: bool
    rotation: int = 0  # degrees counter-clockwise applied for display (phone videos: often -90)


def _open_for_reading(path: str | Path) -> av.container.InputContainer:
    path = Path(path)
    if not path.is_file():
        raise FormatError(f"{path}: no such video file")
    try:
        container = av.open(str(path), mode="r")
    except av.FFmpegError as exc:
        raise FormatError(f"{path}: not a readable video ({exc.strerror or exc})") from exc
    if not container.streams.video:
        container.close()
        raise FormatError(f"{path}: has no video stream")
    if container.format.name == "image2" or container.format.name.endswith("_pipe"):
        container.close()  # FFmpeg reads PNG/JPEG/WebP as one-frame "videos"; they are images
        raise FormatError(f"{path}: is a still image ({container.format.name}), not a video")
    return container


def _quarter_turns(rotation: float | None) -> int:
    """Counter-clockwise quarter turns of a display rotation (phones store portrait video
    sideways with a rotation flag; players, and npcface, turn it upright)."""
    return int(round((rotation or 0) / 90.0)) % 4


def _first_frame_rotation(container: av.container.InputContainer) -> int:
    try:
        for frame in container.decode(video=0):
            return int(frame.rotation or 0)
    except av.FFmpegError:
        return 0  # read_video reports damaged data; the size and rate are still known
    return 0


def video_timecode_s(path: str | Path) -> float | None:
    """The start timecode of a video in seconds of the day (QuickTime/MP4 ``timecode`` tag, as an
    iPhone's Live Link Face app writes into its reference video), or None when it has none."""
    with _open_for_reading(path) as container:
        video = container.streams.video[0]
        rate = video.average_rate or video.guessed_rate or video.base_rate
        tags = [dict(s.metadata).get("timecode") for s in container.streams] + [container.metadata.get("timecode")]
    text = next((t for t in tags if t), None)
    if text is None:
        return None
    parts = text.replace(";", ":").split(":")
    try:
        hours, minutes, seconds, frames = (int(part) for part in parts)
    except ValueError:
        raise FormatError(f"{path}: timecode tag {text!r} is not HH:MM:SS:FF") from None
    fps = round(float(rate)) if rate else 0
    if fps <= 0 or frames >= max(fps, 1) or minutes >= 60 or seconds >= 60:
        raise FormatError(f"{path}: timecode tag {text!r} does not fit the video's {float(rate or 0):g} fps")
    return hours * 3600 + minutes * 60 + seconds + frames / fps


def video_info(path: str | Path) -> VideoInfo:
    """Frame rate, display size (after any rotation flag), duration and whether there is an
    audio track; decodes one frame at most (for the rotation)."""
    with _open_for_reading(path) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        fps = float(rate) if rate else 0.0
        num_frames = int(stream.frames or 0)
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
        else:
            duration = num_frames / fps if fps else 0.0
        width, height = stream.codec_context.width, stream.codec_context.height
        if fps <= 0 or width <= 0 or height <= 0:
            raise FormatError(f"{path}: video stream has no usable frame rate or size")
        has_audio = bool(container.streams.audio)
        rotation = _first_frame_rotation(container)
        if _quarter_turns(rotation) % 2:
            width, height = height, width
        return VideoInfo(fps=fps, width=width, height=height, duration=duration,
                         num_frames=num_frames, has_audio=has_audio, rotation=rotation)


def read_video(path: str | Path) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (time in seconds, RGB uint8 (H, W, 3)) for every decoded frame, in order.

    Times are the frames' presentation timestamps (variable frame rate is kept as it is).
    Frames come upright: a display-rotation flag (phone videos) is applied.
    Raises FormatError for a file that is not a video, is truncated so badly that nothing decodes,
    or holds no frames.
    """
    container = _open_for_reading(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rate = float(stream.average_rate or stream.guessed_rate or 25)
        count = 0
        damage = None
        for frame in _decode_until_damage(container, stream):
            if isinstance(frame, av.FFmpegError):
                damage = frame
                break
            time = frame.time if frame.time is not None else count / rate
            rgb = frame.to_ndarray(format="rgb24")
            turns = _quarter_turns(frame.rotation)
            if turns:
                rgb = np.ascontiguousarray(np.rot90(rgb, turns))
            yield float(time), rgb
            count += 1
        if count == 0 and damage is not None:
            raise FormatError(f"{path}: video data does not decode ({damage.strerror or damage})")
        if count == 0:
            raise FormatError(f"{path}: video stream holds no decodable frames")
    finally:
        container.close()


def _decode_until_damage(container: av.container.InputContainer, stream: av.VideoStream):
    """Decoded frames in order; on damaged data (a truncated file), the frames still buffered in
    the decoder, then the error itself as the last item."""
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
            frames = packet.decode()
        except StopIteration:
            return
        except av.FFmpegError as exc:
            try:
                yield from stream.codec_context.decode(None)  # flush what decoded before the damage
            except av.FFmpegError:
                pass  # the decoder cannot even flush: nothing more to recover
            yield exc
            return
        yield from frames


def _i420_frame(frame: np.ndarray, index: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Validate one input frame; return it as yuv420p planes stacked (H*3/2, W) and its (H, W).

    Straight from RGB(A) to the encoder's format in one OpenCV call (~0.4 ms at 512x512; the
    RGBA -> RGB -> swscale path cost ~6 ms). Alpha is composited over black only where it is not
    opaque; odd sizes repeat their last row/column (yuv420p needs even sizes)."""
    frame = np.asarray(frame)
    if frame.dtype != np.uint8:
        raise ImageError(f"frame {index}: dtype {frame.dtype}, expected uint8")
    if frame.ndim != 3 or frame.shape[2] not in (3, 4) or frame.shape[0] < 2 or frame.shape[1] < 2:
        raise ImageError(f"frame {index}: shape {frame.shape}, expected (H, W, 3) or (H, W, 4)")
    size = frame.shape[:2]
    if frame.shape[2] == 4 and frame[:, :, 3].min() < 255:
        alpha = frame[:, :, 3:4].astype(np.uint16)
        frame = (frame[:, :, :3].astype(np.uint16) * alpha // 255).astype(np.uint8)
    pad_h, pad_w = frame.shape[0] % 2, frame.shape[1] % 2
    if pad_h or pad_w:
        frame = cv2.copyMakeBorder(frame, 0, pad_h, 0, pad_w, cv2.BORDER_REPLICATE)
    code = cv2.COLOR_RGBA2YUV_I420 if frame.shape[2] == 4 else cv2.COLOR_RGB2YUV_I420
    return cv2.cvtColor(np.ascontiguousarray(frame), code), size


def _check_fps(fps: float) -> Fraction:
    if not np.isfinite(fps) or fps <= 0 or fps > MAX_FPS:
        raise ControlError(f"fps must be a number in (0, {MAX_FPS:g}], got {fps}")
    return Fraction(fps).limit_denominator(1001)


class _AudioMuxer:
    """Encodes an Audio into an AAC stream in 1024-sample frames, as far as the video has got."""

    def __init__(self, container: av.container.OutputContainer, samples: np.ndarray):
        self.samples = samples
        self.stream = container.add_stream("aac", rate=SAMPLE_RATE)
        self.stream.layout = "mono"
        self.container = container
        self.written = 0

    def write_until(self, time_s: float) -> None:
        end = min(len(self.samples), int(round(time_s * SAMPLE_RATE)))
        while self.written < end:
            chunk = self.samples[self.written:self.written + AUDIO_FRAME_SAMPLES]
            frame = av.AudioFrame.from_ndarray(chunk[np.newaxis, :], format="fltp", layout="mono")
            frame.sample_rate = SAMPLE_RATE
            frame.pts = self.written
            frame.time_base = Fraction(1, SAMPLE_RATE)
            self.container.mux(self.stream.encode(frame))
            self.written += len(chunk)

    def finish(self) -> None:
        self.write_until(len(self.samples) / SAMPLE_RATE)
        self.container.mux(self.stream.encode(None))


def _check_audio(audio: Audio) -> np.ndarray:
    samples = np.asarray(audio.samples, dtype=np.float32)
    if samples.ndim != 1 or not np.all(np.isfinite(samples)):
        raise FormatError("audio for the video must be finite mono samples")
    return np.clip(samples, -1.0, 1.0)


def _add_video_stream(container: av.container.OutputContainer, rate: Fraction,
                      shape: tuple[int, ...], crf: int) -> av.VideoStream:
    video = container.add_stream("libx264", rate=rate)
    video.height, video.width = shape[0], shape[1]
    video.pix_fmt = "yuv420p"
    video.codec_context.time_base = 1 / rate
    video.options = {"crf": str(crf), "preset": "veryfast"}
    return video


def write_mp4(path: str | Path, frames: Iterable[np.ndarray], fps: float,
              audio: Audio | None = None, crf: int = 18, credentials: Credentials | None = None,
              sign: bool = True) -> None:
    """Encode RGB/RGBA uint8 frames (all the same size) as H.264 yuv420p at a constant ``fps``,
    with ``audio`` muxed as AAC (16 kHz mono) when given. Odd sizes are padded by one edge pixel.

    The finished file carries signed C2PA content credentials saying it is AI-generated (core/
    provenance), signed with ``credentials`` or, without them, the environment's or a self-made test
    key. ``sign=False`` is for re-encoding real videos (benchmarks), never for rendered output.

    The whole audio is written even when it outlasts the video (players hold the last frame).
    Raises ControlError for a bad fps, ImageError for a bad frame, FormatError for no frames.
    """
    rate = _check_fps(fps)
    samples = _check_audio(audio) if audio is not None else None
    path = Path(path)
    if path.parent and not path.parent.is_dir():
        raise FormatError(f"{path}: folder {path.parent} does not exist")
    # faststart puts the index first: the file plays while downloading and survives truncation
    container = av.open(str(path), mode="w", format="mp4", options={"movflags": "+faststart"})
    completed = False
    try:
        video = muxer = size = None
        count = 0
        for index, raw in enumerate(frames):
            planes, frame_size = _i420_frame(raw, index)
            if size is None:
                size = frame_size
                video = _add_video_stream(container, rate, (planes.shape[0] * 2 // 3, planes.shape[1]), crf)
                if samples is not None:
                    muxer = _AudioMuxer(container, samples)
            elif frame_size != size:
                raise ImageError(f"frame {index}: size {frame_size} differs from the first frame's {size}")
            frame = av.VideoFrame.from_ndarray(planes, format="yuv420p")
            frame.pts = index
            frame.time_base = 1 / rate
            container.mux(video.encode(frame))
            count += 1
            if muxer is not None:
                muxer.write_until((index + 1) / float(rate))
        if count == 0:
            raise FormatError(f"{path}: no frames to write")
        container.mux(video.encode(None))
        if muxer is not None:
            muxer.finish()
        container.close()
        if sign:
            sign_mp4(path, credentials if credentials is not None else load_credentials(None, None))
        completed = True
    finally:
        container.close()
        if not completed:
            path.unlink(missing_ok=True)  # never leave a half-written file that looks like a video


def write_png_sequence(folder: str | Path, frames: Iterable[np.ndarray], prefix: str = "frame") -> int:
    """Write frames as ``folder/prefix_000000.png`` ... (RGBA kept as RGBA); returns the count."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    count = 0
    for index, raw in enumerate(frames):
        frame = np.asarray(raw)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] not in (3, 4):
            raise ImageError(f"frame {index}: expected (H, W, 3|4) uint8, got {frame.shape} {frame.dtype}")
        Image.fromarray(frame).save(folder / f"{prefix}_{index:06d}.png")
        count += 1
    if count == 0:
        raise FormatError(f"{folder}: no frames to write")
    return count
