"""core/formats/video: real H.264/AAC encoding and decoding through PyAV, written then read back."""
from __future__ import annotations

import av
import numpy as np
import pytest

from npcface.core.errors import ControlError, FormatError, ImageError
from npcface.core.types import SAMPLE_RATE, Audio
from npcface.core.formats.video import read_video, video_info, write_mp4, write_png_sequence


def moving_square_frames(count: int, height: int = 64, width: int = 96):
    """A generator: a bright square sliding right over a gradient, so every frame differs."""
    gradient = np.linspace(0, 200, width, dtype=np.float32)[None, :, None]
    for i in range(count):
        frame = np.broadcast_to(gradient, (height, width, 3)).astype(np.uint8).copy()
        x = 4 + 2 * i
        frame[20:36, x:x + 16] = (250, 40, 40)
        yield frame


def tone(seconds: float, hz: float = 440.0) -> Audio:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return Audio(samples=(0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32),
                 source_rate=SAMPLE_RATE, source_channels=1)


def test_write_then_read_keeps_frames_fps_timestamps_and_pixels(tmp_path):
    path = tmp_path / "clip.mp4"
    originals = list(moving_square_frames(30))
    write_mp4(path, moving_square_frames(30), fps=30)  # a generator, consumed once

    info = video_info(path)
    assert (info.width, info.height, info.fps, info.has_audio) == (96, 64, 30.0, False)
    assert info.duration == pytest.approx(1.0, abs=0.05)

    decoded = list(read_video(path))
    assert len(decoded) == 30
    times = np.array([t for t, _ in decoded])
    np.testing.assert_allclose(times, np.arange(30) / 30, atol=1e-3)  # constant frame rate
    for (_, frame), original in zip(decoded, originals):
        assert frame.shape == (64, 96, 3) and frame.dtype == np.uint8
        assert np.abs(frame.astype(int) - original).mean() < 4  # lossy but close
    # The red square really moved: its column centre in the last frame is 58 px right of the first.
    red_columns = [np.nonzero((f[28, :, 0] > 200) & (f[28, :, 1] < 100))[0].mean() for _, f in decoded[::29]]
    assert red_columns[1] - red_columns[0] == pytest.approx(58, abs=1.5)


def test_audio_is_muxed_as_aac_with_its_duration(tmp_path):
    path = tmp_path / "talk.mp4"
    write_mp4(path, moving_square_frames(50), fps=25, audio=tone(2.0))
    assert video_info(path).has_audio
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "aac"
        decoded = np.concatenate([f.to_ndarray().ravel() for f in container.decode(stream)])
        seconds = stream.duration * stream.time_base
        assert float(seconds) == pytest.approx(2.0, abs=0.03)
        rate = stream.rate
    # The tone survives: its spectrum peaks at 440 Hz.
    one_second = decoded[rate // 4: rate // 4 + rate]
    spectrum = np.abs(np.fft.rfft(one_second))  # 1 Hz bins
    assert np.argmax(spectrum) == pytest.approx(440, abs=3)


def test_rgba_frames_are_composited_and_odd_sizes_padded(tmp_path):
    rgba = np.zeros((33, 47, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[:, :20, 3] = 255  # opaque left part, transparent right part
    path = tmp_path / "odd.mp4"
    write_mp4(path, [rgba] * 3, fps=10)
    info = video_info(path)
    assert (info.width, info.height) == (48, 34)
    _, frame = next(read_video(path))
    assert frame[10, 5].mean() > 180 and frame[10, 40].mean() < 30


@pytest.mark.parametrize("fps", [0, -5, float("nan"), float("inf")])
def test_bad_fps_is_refused(tmp_path, fps):
    with pytest.raises(ControlError, match="fps"):
        write_mp4(tmp_path / "x.mp4", moving_square_frames(2), fps=fps)


def test_bad_frames_are_refused_and_leave_no_file(tmp_path):
    path = tmp_path / "x.mp4"
    with pytest.raises(FormatError, match="no frames"):
        write_mp4(path, [], fps=25)
    assert not path.exists()
    with pytest.raises(ImageError, match="dtype float"):
        write_mp4(path, [np.zeros((8, 8, 3), np.float32)], fps=25)
    with pytest.raises(ImageError, match=r"frame 1: size"):
        write_mp4(path, [np.zeros((8, 8, 3), np.uint8), np.zeros((10, 8, 3), np.uint8)], fps=25)
    assert not path.exists()
    with pytest.raises(ImageError, match="shape"):
        write_mp4(path, [np.zeros((8, 8), np.uint8)], fps=25)


def test_unreadable_videos_get_specific_errors(tmp_path):
    with pytest.raises(FormatError, match="no such video"):
        video_info(tmp_path / "missing.mp4")
    text = tmp_path / "notes.mp4"
    text.write_text("this is not a video at all\n" * 50)
    with pytest.raises(FormatError, match="not a readable video"):
        list(read_video(text))
    # An audio-only file is a real container without a video stream.
    audio_only = tmp_path / "voice.m4a"
    with av.open(str(audio_only), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=SAMPLE_RATE)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(tone(0.5).samples[None, :1024], format="fltp", layout="mono")
        frame.sample_rate = SAMPLE_RATE
        container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    with pytest.raises(FormatError, match="no video stream"):
        video_info(audio_only)
    # FFmpeg would read a PNG as a one-frame video; npcface says what it is.
    from PIL import Image

    still = tmp_path / "portrait.png"
    Image.new("RGB", (32, 32), (10, 200, 30)).save(still)
    with pytest.raises(FormatError, match="still image"):
        list(read_video(still))


def test_truncated_video_keeps_the_frames_before_the_damage_or_says_why(tmp_path):
    path = tmp_path / "full.mp4"
    write_mp4(path, moving_square_frames(40), fps=20, sign=False)  # the cut fractions assume no C2PA box
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: int(len(data) * 0.8)])
    # The index (moov) is at the front (faststart), so a cut file still decodes up to the cut.
    decoded = list(read_video(cut))
    assert 5 <= len(decoded) < 40
    assert np.abs(decoded[0][1].astype(int) - next(moving_square_frames(1))).mean() < 4
    headless = tmp_path / "headless.mp4"  # index intact, but the first picture is cut short
    headless.write_bytes(data[: int(len(data) * 0.35)])
    with pytest.raises(FormatError, match="does not decode"):
        list(read_video(headless))
    tiny = tmp_path / "tiny.mp4"
    tiny.write_bytes(data[:16])
    with pytest.raises(FormatError):
        video_info(tiny)


def test_png_sequence(tmp_path):
    from PIL import Image

    frames = list(moving_square_frames(3))
    assert write_png_sequence(tmp_path / "seq", frames) == 3
    first = np.asarray(Image.open(tmp_path / "seq" / "frame_000000.png"))
    np.testing.assert_array_equal(first, frames[0])  # lossless
    with pytest.raises(FormatError):
        write_png_sequence(tmp_path / "empty", [])


def test_audio_longer_than_the_video_is_kept_whole_and_bad_audio_refused(tmp_path):
    path = tmp_path / "long_audio.mp4"
    write_mp4(path, moving_square_frames(10), fps=25, audio=tone(1.5))  # 0.4 s of video
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        assert float(stream.duration * stream.time_base) == pytest.approx(1.5, abs=0.03)
    assert len(list(read_video(path))) == 10
    broken = Audio(samples=np.full(1600, np.nan, np.float32), source_rate=SAMPLE_RATE, source_channels=1)
    with pytest.raises(FormatError, match="finite mono"):
        write_mp4(tmp_path / "nan.mp4", moving_square_frames(2), fps=25, audio=broken)
    assert not (tmp_path / "nan.mp4").exists()


def test_phone_rotation_flag_is_applied(tmp_path):
    """Phones store portrait video sideways plus a display rotation; frames must come upright."""
    from fractions import Fraction

    path = tmp_path / "phone.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 32, "yuv420p"
        stream.set_display_rotation(90)  # display = stored frame turned 90 degrees counter-clockwise
        stored = np.zeros((32, 64, 3), np.uint8)
        stored[:, :12] = 255  # a white band on the stored frame's left edge
        for i in range(3):
            frame = av.VideoFrame.from_ndarray(stored, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    info = video_info(path)
    assert (info.width, info.height, info.rotation) == (32, 64, 90)
    _, upright = next(read_video(path))
    assert upright.shape == (64, 32, 3)
    # Turned counter-clockwise, the left edge becomes the bottom edge.
    assert upright[-8:].mean() > 200 and upright[:40].mean() < 30


def test_written_mp4_carries_valid_content_credentials_and_still_plays(tmp_path):
    from npcface.core.provenance.credentials import read_manifest

    path = tmp_path / "signed.mp4"
    write_mp4(path, moving_square_frames(30), fps=30)
    report = read_manifest(path)
    assert report.present and report.signature_valid and report.generated
    assert len(list(read_video(path))) == 30 and video_info(path).fps == 30
