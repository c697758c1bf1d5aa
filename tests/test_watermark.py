"""core/provenance/watermark on real renders of the committed portrait: invisible (PSNR), found again with its
payload after what platforms do to video (H.264 CRF 23/28, half size, a 10% crop from each side,
JPEG), never found on real pictures, and carried by frames that come over the protocol."""
from __future__ import annotations

import io

import av
import cv2
import numpy as np
import pytest
from PIL import Image

from npcface.core.provenance import watermark
from npcface.core.arkit import ARKIT_INDEX
from npcface.core.errors import ImageError
from npcface.core.render.renderer import Renderer
from npcface.core.render.rig import build_rig, load_image
from npcface.core.types import MotionFrame

SIZE = 512
LINE = "test line"


def motion(jaw: float, yaw: float = 0.0) -> MotionFrame:
    weights = np.zeros(52, dtype=np.float32)
    weights[ARKIT_INDEX["JawOpen"]] = jaw
    return MotionFrame(time=0.0, head_rotation=(yaw, 0.0, 0.0), head_translation=(0.0, 0.0, 0.0),
                       gaze_left=(0.0, 0.0), gaze_right=(0.0, 0.0), blendshapes=weights)


@pytest.fixture(scope="module")
def rig():
    from conftest import FIXTURES

    return build_rig(load_image(FIXTURES / "portrait_astronaut.png"))


@pytest.fixture(scope="module")
def frames(rig):
    """(watermarked, plain) renders of the same three motion frames."""
    marked = Renderer(rig, SIZE, line_id=LINE)
    plain = Renderer(rig, SIZE, watermark=False)
    poses = [motion(0.0), motion(0.5, yaw=8), motion(0.2, yaw=-5)]
    return ([marked.render(m).rgba[..., :3] for m in poses], [plain.render(m).rgba[..., :3] for m in poses])


def h264(images: list[np.ndarray], crf: int) -> list[np.ndarray]:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = images[0].shape[1], images[0].shape[0], "yuv420p"
        stream.options = {"crf": str(crf), "preset": "medium"}
        for image in images:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode(None))
    buffer.seek(0)
    with av.open(buffer) as container:
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]


def jpeg(image: np.ndarray, quality: int = 75) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buffer.getvalue())).convert("RGB"))


CUT = SIZE // 10
TRANSFORMS = {
    "as rendered": lambda images: images,
    "H.264 CRF 23": lambda images: h264(images, 23),
    "H.264 CRF 28": lambda images: h264(images, 28),
    "half size": lambda images: [cv2.resize(i, None, fx=0.5, fy=0.5, interpolation=cv2.INTER_AREA) for i in images],
    "crop 10% left": lambda images: [i[:, CUT:] for i in images],
    "crop 10% right": lambda images: [i[:, :-CUT] for i in images],
    "crop 10% top": lambda images: [i[CUT:] for i in images],
    "crop 10% bottom": lambda images: [i[:-CUT] for i in images],
    "JPEG q75": lambda images: [jpeg(i) for i in images],
}


def test_watermark_is_invisible_by_psnr_but_there(frames):
    marked, plain = frames
    for a, b in zip(marked, plain):
        assert 40.0 < cv2.PSNR(a, b) < 60.0  # changed, and by less than 40 dB's worth


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_watermark_survives_what_platforms_do(frames, rig, name):
    expected = watermark.content_id(rig.content_id, LINE)
    for image in TRANSFORMS[name](frames[0]):
        found = watermark.detect(image)
        assert found.found, (name, found)
        assert (found.payload.content_id, found.payload.version) == (expected, watermark.FORMAT_VERSION)


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_no_watermark_in_unmarked_renders_or_real_pictures(frames, name):
    from conftest import FIXTURES

    real = load_image(FIXTURES / "portrait_astronaut.png")
    for image in TRANSFORMS[name](frames[1] + [np.ascontiguousarray(real[:SIZE, :SIZE])]):
        found = watermark.detect(image)
        assert not found.found and found.z_score < watermark.Z_THRESHOLD, (name, found)


def test_content_id_tells_lines_and_rigs_apart(rig):
    ids = {watermark.content_id(rig.content_id, line) for line in ("a", "b", "c")}
    ids.add(watermark.content_id("another rig", "a"))
    assert len(ids) == 4
    other = Renderer(rig, SIZE, line_id="another line").render(motion(0.3)).rgba
    assert watermark.detect(other).payload.content_id == watermark.content_id(rig.content_id, "another line")


def test_payload_round_trip_and_checks():
    payload = watermark.Payload(version=1, content_id=0xBEEF)
    bits = watermark.encode_payload(payload)
    assert watermark.decode_payload(bits) == payload
    for index in range(len(bits)):  # any single wrong bit fails the marker or the CRC
        flipped = bits.copy()
        flipped[index] ^= 1
        assert watermark.decode_payload(flipped) is None


def test_video_detector_adds_frames_up(frames):
    detector = watermark.VideoDetector()
    singles = [detector.add(image) for image in h264(frames[0] * 2, 28)]
    total = detector.result()
    assert total.found and total.z_score > max(d.z_score for d in singles) * 0.9
    assert detector.frames == 6


@pytest.mark.parametrize("image, message", [
    (np.zeros((64, 64, 3), np.float32), "uint8"),
    (np.zeros((64, 64, 5), np.uint8), "(H, W, 3)"),
    (np.zeros((20, 200, 3), np.uint8), "too small"),
])
def test_bad_pictures_get_one_line_errors(image, message):
    with pytest.raises(ImageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        watermark.detect(image)


def test_frames_over_the_protocol_carry_the_watermark(server):
    """A real sidecar's rgb8 frames: the renderer's watermark reaches the client."""
    from conftest import FIXTURES
    from server_helpers import RawClient, greeting_pcm, s16, send_line

    with RawClient(server.endpoint) as client:
        client.hello()
        avatar = client.request({"type": "upload_avatar"}, (FIXTURES / "portrait_astronaut.png").read_bytes(),
                                timeout_s=60).avatar
        opened = client.request({"type": "open", "session": "w", "outputs": ["frames"], "avatar": avatar,
                                 "frame_size": [256, 256], "frame_format": "rgb8", "frame_policy": "every"})
        assert opened.type == "opened", opened
        samples, _ = greeting_pcm()
        end_id = send_line(client, "w", s16(samples[:8000]))
        pixels = None
        while True:
            message, payloads = client.recv(60)
            if message.type == "frame" and pixels is None:
                pixels = np.frombuffer(payloads[0], np.uint8).reshape(256, 256, 3)
            if message.type == "frame":
                client.send({"type": "frame_ack", "session": "w"})
            if message.type == "line_end" and message.id == end_id:
                break
    assert pixels is not None
    found = watermark.detect(pixels)
    assert found.found and found.payload.version == watermark.FORMAT_VERSION, found


def test_strength_follows_texture_so_flat_shading_stays_clean():
    """Half the picture flat grey, half fine texture: the watermark goes mostly into the texture."""
    rng = np.random.default_rng(1)
    picture = np.full((512, 512, 3), 128, np.uint8)
    picture[:, 256:] = rng.integers(60, 200, size=(512, 256, 1), dtype=np.uint8)
    marked = picture.copy()
    watermark.Watermarker("rig", "line").apply(marked)
    change = marked.astype(float) - picture
    flat, textured = np.sqrt(np.mean(change[:, 16:240] ** 2)), np.sqrt(np.mean(change[:, 272:496] ** 2))
    assert textured > 2.5 * flat > 0
    assert cv2.PSNR(picture, marked) > 40.0
