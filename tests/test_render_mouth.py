"""The mouth interior up close: what a player sees when a closed-mouth portrait opens its mouth.
The portrait is the fixture with its parted lips filled in (a closed mouth, so the whole interior is
drawn by the renderer); colours must come from the picture, not from a fixed palette."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from conftest import FIXTURES
from npcface.core.arkit import ARKIT_INDEX
from npcface.core.render.renderer import Renderer
from npcface.core.render.draw import polygon_mask
from npcface.core.render.mouth import INNER_CONTOUR
from npcface.core.render.rig import build_rig, load_image
from npcface.core.render.rig_mesh import EYE_LEFT_LOWER, EYE_LEFT_UPPER, EYE_RIGHT_LOWER, EYE_RIGHT_UPPER
from npcface.core.types import MotionFrame

SIZE = 384


def closed_mouth_picture(tint=(1.0, 1.0, 1.0), grey: bool = False) -> np.ndarray:
    image = np.ascontiguousarray(load_image(FIXTURES / "portrait_astronaut.png")[10:250, 105:345])
    landmarks = build_rig(image).landmarks
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round(landmarks[INNER_CONTOUR, :2]).astype(np.int32)], 255)
    closed = cv2.inpaint(image, cv2.dilate(mask, np.ones((3, 3), np.uint8)), 5, cv2.INPAINT_TELEA)
    if grey:
        closed = np.repeat(cv2.cvtColor(closed, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    return np.clip(closed * np.array(tint), 0, 255).astype(np.uint8)


def frame(**weights) -> MotionFrame:
    blendshapes = np.zeros(52, dtype=np.float32)
    for name, value in weights.items():
        blendshapes[ARKIT_INDEX[name]] = value
    return MotionFrame(0.0, (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0), (0.0, 0.0), blendshapes)


def interior(renderer: Renderer, motion: MotionFrame) -> np.ndarray:
    """(N, 3) float pixels strictly inside the rendered lip opening."""
    rgb = renderer.render(motion).rgba[..., :3]
    geometry = renderer.geometry(motion)
    inside = polygon_mask(geometry.deformed[INNER_CONTOUR], (0, 0, SIZE, SIZE))
    inside = cv2.erode((inside > 0.99).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    return rgb[inside].astype(np.float64)


def eye_whites(renderer: Renderer) -> np.ndarray:
    """The brightest tenth of the picture's open eyes (the white of the eye, in its light)."""
    mask = np.zeros((SIZE, SIZE), np.uint8)
    for upper, lower in ((EYE_LEFT_UPPER, EYE_LEFT_LOWER), (EYE_RIGHT_UPPER, EYE_RIGHT_LOWER)):
        cv2.fillPoly(mask, [np.round(renderer.vertices[list(upper) + list(lower[::-1]), :2]).astype(np.int32)], 1)
    pixels = renderer.view_image[mask > 0].astype(np.float64)
    return pixels[pixels.mean(axis=1) >= np.percentile(pixels.mean(axis=1), 90)]


@pytest.fixture(scope="module")
def closed():
    renderer = Renderer(build_rig(closed_mouth_picture()), SIZE)
    assert not renderer.mouth.source_parted  # the picture's lips really are closed
    return renderer


def test_an_open_mouth_shows_a_dark_cavity_and_teeth_no_whiter_than_the_eyes(closed):
    pixels = interior(closed, frame(JawOpen=0.8))
    luma = pixels.mean(axis=1)
    skin = closed.view_image[SIZE // 2 - 10:SIZE // 2 + 10, SIZE // 2 - 60:SIZE // 2 - 40].mean()
    assert len(pixels) > 200
    assert np.percentile(luma, 10) < 0.3 * skin  # deep inside, the mouth is dark
    # the teeth are lit by the picture's light: not whiter than the white of its eyes (the old
    # renderer drew a fixed near-white band, brighter than this picture's eye whites)
    assert np.percentile(luma, 98) <= 1.02 * eye_whites(closed).mean(axis=1).mean()


def test_teeth_are_not_a_uniform_band(closed):
    """Along the row of upper teeth, brightness varies (gaps between teeth, shading to the corners)."""
    motion = frame(JawOpen=0.5)
    rgb = closed.render(motion).rgba[..., :3].astype(np.float64)
    geometry = closed.geometry(motion)
    upper = geometry.deformed[[13, 82, 312]].mean(axis=0)
    left, right = geometry.deformed[78], geometry.deformed[308]
    row = int(round(upper[1] + 0.04 * closed.mouth.mouth_width))  # just under the upper lip: the teeth
    xs = np.arange(int(left[0] + 0.25 * (right[0] - left[0])), int(right[0] - 0.25 * (right[0] - left[0])))
    luma = rgb[row, xs].mean(axis=1)
    assert luma.std() > 4.0
    assert luma.max() - luma.min() > 12.0


def test_the_lower_teeth_and_tongue_ride_on_the_jaw(closed):
    """Opening the jaw further moves what lies above the lower lip down with it, and widens the dark
    between the rows (the upper teeth stay with the skull)."""
    dark = []
    for jaw in (0.3, 0.9):
        pixels = interior(closed, frame(JawOpen=jaw))
        dark.append(int((pixels.mean(axis=1) < 60).sum()))
    assert dark[1] > 2 * dark[0]


def test_lower_teeth_show_above_the_lower_lip(closed):
    """Down the middle of a half-open mouth: upper teeth, the dark between the rows, then the lower
    teeth's tips just above the lower lip (the lower row rides on the jaw)."""
    motion = frame(JawOpen=0.6)
    geometry = closed.geometry(motion)
    rgb = closed.render(motion).rgba[..., :3].astype(np.float64)
    top, bottom = geometry.deformed[13], geometry.deformed[14]
    x = int(round((top[0] + bottom[0]) / 2))
    column = rgb[int(np.ceil(top[1])):int(bottom[1]), x].mean(axis=1)
    assert len(column) > 12
    darkest = int(np.argmin(column))
    below = column[darkest:]
    assert 0 < darkest < len(column) - 3
    assert below.max() > 1.5 * column[darkest]  # a bright row of teeth between the dark and the lip
    assert column[:darkest].max() > 1.5 * column[darkest]  # and the upper row above the dark


def test_gums_show_when_the_upper_lip_rises(closed):
    """Where the raised upper lip uncovers what was behind it, pink gum shows above white teeth."""
    raised = frame(JawOpen=0.3, MouthUpperUpLeft=1.0, MouthUpperUpRight=1.0)
    geometry = closed.geometry(raised)
    rgb = closed.render(raised).rgba[..., :3].astype(np.float64)
    lip_now, lip_rest = geometry.deformed[13], geometry.rigid[13]  # the inner upper lip rose by this much
    assert lip_rest[1] - lip_now[1] > 4
    x = int(round(lip_now[0]))
    gum = rgb[int(round(lip_now[1] + 0.2 * (lip_rest[1] - lip_now[1]))), x]  # just under the raised lip
    tooth = rgb[int(round(lip_rest[1] + 0.05 * closed.mouth.mouth_width)), x]
    assert (gum[0] - gum[1]) > (tooth[0] - tooth[1]) + 10  # redder than the teeth below it
    assert tooth.mean() > gum.mean()


def test_a_black_and_white_portrait_keeps_a_grey_mouth():
    renderer = Renderer(build_rig(closed_mouth_picture(grey=True)), SIZE)
    pixels = interior(renderer, frame(JawOpen=0.7))
    assert np.abs(pixels - pixels.mean(axis=1, keepdims=True)).max() <= 2.0


def test_the_mouth_takes_the_pictures_white_balance(closed):
    """A picture under bluish light gets bluish teeth: the interior's colour follows the picture's
    white (the eyes) rather than a built-in tooth white."""
    blue = Renderer(build_rig(closed_mouth_picture(tint=(0.8, 0.95, 1.15))), SIZE)

    def teeth_balance(renderer):
        pixels = interior(renderer, frame(JawOpen=0.5))
        teeth = pixels[pixels.mean(axis=1) >= np.percentile(pixels.mean(axis=1), 80)]
        return teeth[:, 2].mean() / teeth[:, 0].mean()

    def white_balance(renderer):
        whites = eye_whites(renderer)
        return whites[:, 2].mean() / whites[:, 0].mean()

    picture_shift = white_balance(blue) / white_balance(closed)  # the tint, less what clipped at 255
    assert picture_shift > 1.2
    assert teeth_balance(blue) / teeth_balance(closed) > picture_shift ** 0.8


# ----------------------------------------------------------------------------- the tongue tip

TONGUE_TIP_PHONES = {"T", "D", "N", "L", "TH", "DH"}
VOWELS = {"AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW"}


@pytest.fixture(scope="module")
def greeting():
    """line_greeting animated with its text: phones aligned, so the generator knows each T, D, N, L."""
    from conftest import fixture_line
    from npcface.core.audio.decode import load_audio
    from npcface.core.motion.generator import MotionGenerator

    wav, text = fixture_line("line_greeting")
    track = MotionGenerator().animate(load_audio(wav), text)
    assert track.phones.source == "aligned"
    return track


def _middle_frame(track, phone) -> MotionFrame:
    return track.frame(int(np.argmin(np.abs(track.times - (phone.start + phone.end) / 2))))


def _away_from_tongue_phones(track, phone, margin: float = 0.1) -> bool:
    return all(p.end + margin < phone.start or p.start - margin > phone.end
               for p in track.phones.phones if p.label in TONGUE_TIP_PHONES)


def test_aligned_t_d_n_l_th_raise_the_tongue_tip_and_vowels_do_not(greeting):
    phones = greeting.phones.phones
    tip = [_middle_frame(greeting, p).tongue_tip for p in phones if p.label in TONGUE_TIP_PHONES]
    vowel = [_middle_frame(greeting, p).tongue_tip for p in phones
             if p.label in VOWELS and _away_from_tongue_phones(greeting, p)]
    assert len(tip) >= 10 and len(vowel) >= 4
    assert min(tip) > 0.9
    assert max(vowel) < 0.05


def _below_the_upper_teeth(renderer: Renderer, motion: MotionFrame) -> tuple[np.ndarray, float] | None:
    """(mean RGB of the few pixels just below the upper teeth down the middle of the mouth, the
    teeth's luma there), None where the mouth shows nothing below them. The upper teeth are the
    brightest run of that column under the upper lip."""
    geometry = renderer.geometry(motion)
    rgb = renderer.render(motion).rgba[..., :3].astype(np.float64)
    top, bottom = geometry.deformed[13], geometry.deformed[14]
    x = int(round((top[0] + bottom[0]) / 2))
    column = rgb[int(np.ceil(top[1])):int(bottom[1]) + 1, x]
    luma = column.mean(axis=1)
    brightest = int(np.argmax(luma))
    edge = brightest + int(np.argmax(luma[brightest:] < 0.8 * luma[brightest]))  # the teeth's lower edge
    if edge <= brightest or edge + 4 > len(column):
        return None
    return column[edge:edge + 4].mean(axis=0), float(luma[brightest])


@pytest.fixture(scope="module")
def close_up():
    """The closed-mouth portrait at twice the size: a T's opening is a few pixels at 384."""
    return Renderer(build_rig(closed_mouth_picture()), 2 * SIZE)


def test_a_rendered_t_d_n_l_shows_the_tongue_behind_the_upper_teeth_a_vowel_does_not(close_up, greeting):
    """Down the middle of the mouth, just below the upper teeth: an aligned T/D/N/L/TH of the line, its
    jaw opened wide enough to see behind the teeth (a shouted "L"; spoken, the rows nearly meet), shows
    the lit tongue tip, a clear red (R - G over 0.3 of the teeth's luma); the same mouth without the
    tip, and the line's widest-open vowels, show the mouth's dim dark there."""
    def opening(p):
        geometry = close_up.geometry(_middle_frame(greeting, p))
        return float(np.linalg.norm(geometry.deformed[13] - geometry.deformed[14]))

    def red(below: tuple[np.ndarray, float] | None) -> float:
        """0 where nothing shows below the upper teeth (so no tongue either)."""
        return 0.0 if below is None else float(below[0][0] - below[0][1]) / below[1]

    phones = greeting.phones.phones
    consonant = max((p for p in phones if p.label in TONGUE_TIP_PHONES), key=opening)
    spoken = _middle_frame(greeting, consonant)
    shouted = spoken.blendshapes.copy()
    shouted[ARKIT_INDEX["JawOpen"]] = max(0.5, float(shouted[ARKIT_INDEX["JawOpen"]]))
    motion = MotionFrame(spoken.time, spoken.head_rotation, spoken.head_translation, spoken.gaze_left,
                         spoken.gaze_right, shouted, tongue_tip=spoken.tongue_tip)
    assert _below_the_upper_teeth(close_up, motion) is not None
    assert red(_below_the_upper_teeth(close_up, motion)) > 0.33, consonant
    no_tip = MotionFrame(motion.time, motion.head_rotation, motion.head_translation, motion.gaze_left, motion.gaze_right,
                         motion.blendshapes)
    assert red(_below_the_upper_teeth(close_up, no_tip)) < 0.27
    vowels = sorted((p for p in phones if p.label in VOWELS and _away_from_tongue_phones(greeting, p)), key=opening)[-3:]
    for vowel in vowels:
        assert red(_below_the_upper_teeth(close_up, _middle_frame(greeting, vowel))) < 0.27, vowel
