"""The learned mouth backend: same interface as the rules, exact streaming, bounded lookahead,
bilabials still closing with aligned text, and weights files that fail with a clear message."""
from __future__ import annotations

import json
import struct

import numpy as np
import pytest
import torch

from conftest import fixture_line
from npcface.core.audio.decode import load_audio
from npcface.core.arkit import ARKIT_INDEX
from npcface.core.audio.features import compute_features
from npcface.core.motion.learned import LearnedMotionGenerator, feature_matrix, run_model
from npcface.core.motion.learned_weights import SHIPPED_WEIGHTS, ModelError, load_weights, save_weights
from npcface.core.types import Controls, EmotionEvent
from npcface.core.motion.visemes import lip_gap
from npcface.models.audio2face import Audio2Face, Config


def _untrained(config: Config, seed: int, path):
    """An untrained model with nonzero weights and input normalisation, saved to ``path``."""
    torch.manual_seed(seed)
    model = Audio2Face(config)
    with torch.no_grad():
        model.input_mean.normal_(0, 1)
        model.input_std.uniform_(0.5, 2.0)
    save_weights(model, path)
    return path


@pytest.fixture(scope="module")
def random_weights(tmp_path_factory):
    """Exactness must not depend on training."""
    return _untrained(Config(), 3, tmp_path_factory.mktemp("weights") / "random.safetensors")


@pytest.fixture(scope="module")
def coarse_weights(tmp_path_factory):
    """Options away from the default config: pooled mel bands, more dropout (inert outside
    training), a narrower width."""
    config = Config(mel_bands=8, dropout=0.3, dilations=(1, 2, 4), width=24)
    return _untrained(config, 4, tmp_path_factory.mktemp("weights") / "coarse.safetensors")


@pytest.fixture(scope="module")
def cue_weights(tmp_path_factory):
    """The rule generator's cues as extra input columns (Config.rule_cues)."""
    from npcface.core.motion.learned_inputs import RULE_COLUMNS

    return _untrained(Config(rule_cues=len(RULE_COLUMNS)), 5, tmp_path_factory.mktemp("weights") / "cues.safetensors")


@pytest.fixture(scope="module")
def formantless_weights(tmp_path_factory):
    """A network that reads no F1/F2 (Config.formants False, the shipped recipe's choice)."""
    return _untrained(Config(formants=False), 3, tmp_path_factory.mktemp("weights") / "formantless.safetensors")


@pytest.fixture(scope="module")
def greeting():
    wav, text = fixture_line("line_greeting")
    return load_audio(wav), text


def stream_in_random_chunks(stream, samples: np.ndarray, rng: np.random.Generator) -> list:
    """Every frame of a line pushed in chunks of 37, 320, 1111 or 4000 samples, then finished."""
    frames, start = [], 0
    while start < len(samples):
        size = int(rng.choice([37, 320, 1111, 4000]))
        frames += stream.push_audio(samples[start:start + size])
        start += size
    return frames + stream.finish()


@pytest.mark.parametrize("weights", ["random_weights", "coarse_weights", "cue_weights", "formantless_weights"])
def test_streaming_equals_offline_for_random_chunkings(weights, greeting, request):
    audio, _ = greeting
    generator = LearnedMotionGenerator(Controls(fps=30.0, seed=5), request.getfixturevalue(weights))
    offline = generator.animate(audio)
    assert np.ptp(offline.channel("JawOpen")) > 0.01  # the network does move the mouth
    rng = np.random.default_rng(0)
    for _ in range(2):
        stream = generator.stream()
        stream.set_emotion(EmotionEvent(0.5, "happy", 0.6))
        frames = stream_in_random_chunks(stream, audio.samples, rng)
        offline_happy = generator.stream()
        offline_happy.set_emotion(EmotionEvent(0.5, "happy", 0.6))
        whole = offline_happy.push_audio(audio.samples) + offline_happy.finish()
        assert len(frames) == len(whole) == len(offline)
        np.testing.assert_allclose(np.array([f.blendshapes for f in frames]),
                                   np.array([f.blendshapes for f in whole]), atol=1e-6)


def test_pooled_mel_bands_read_every_band_and_keep_coarse_shapes(coarse_weights, greeting):
    """mel_bands=8: the first layer reads 8 + 7 columns; a change inside one band changes the
    output only through that band's mean (raising one band and lowering its neighbour in the
    same group by as much changes nothing)."""
    audio, _ = greeting
    model = load_weights(coarse_weights)
    assert model.inp.in_channels == 15
    rows = feature_matrix(compute_features(audio.samples))
    base = run_model(model, rows, final=True)
    same_group, other_group = rows.copy(), rows.copy()
    same_group[:, 0] += 1.0
    same_group[:, 1] -= 1.0  # bands 0 and 1 are pooled together (40 / 8 = 5 per group)
    other_group[:, 0] += 1.0
    other_group[:, 5] -= 1.0  # band 5 starts the next group
    np.testing.assert_allclose(run_model(model, same_group, final=True), base, atol=1e-12)
    assert np.abs(run_model(model, other_group, final=True) - base).max() > 1e-3


def test_a_config_with_impossible_mel_bands_is_refused():
    with pytest.raises(ValueError, match="mel_bands must be 1..40, got 0"):
        Config(mel_bands=0)


def test_the_rules_cues_reach_their_own_rows_output_and_no_earlier(cue_weights, greeting):
    """A cue column changed at one row changes the network's output from that row on (the cues
    are read ``lookahead`` rows late, at their own row), and nothing before it."""
    from npcface.core.motion.learned_inputs import with_rule_columns

    audio, _ = greeting
    model = load_weights(cue_weights)
    rows = with_rule_columns(feature_matrix(compute_features(audio.samples)), model.config.rule_cues)
    with torch.inference_mode():
        base = model(torch.from_numpy(rows)[None])[0].numpy()
        row = 200
        for column in range(47, rows.shape[1]):
            changed = rows.copy()
            changed[row, column] += 1.0
            out = model(torch.from_numpy(changed)[None])[0].numpy()
            np.testing.assert_array_equal(out[:row], base[:row])
            assert np.abs(out[row] - base[row]).max() > 1e-6, column


def test_cue_columns_follow_the_rules_acoustic_mouth(greeting):
    """The columns are the rule generator's own numbers: its level cue and its phone-less jaw,
    row by row, as lip_layer makes them from compute_cues on the same features."""
    from npcface.core.motion.cues import compute_cues
    from npcface.core.motion.learned_inputs import RULE_COLUMNS, rule_columns_many
    from npcface.core.motion.lips import PhoneTable, lip_layer

    audio, _ = greeting
    features = compute_features(audio.samples)
    columns = rule_columns_many([feature_matrix(features)])[0]
    cues = compute_cues(features)
    jaw = lip_layer(cues.row_times(), cues, PhoneTable.build(()), "acoustic").mouth[:, ARKIT_INDEX["JawOpen"]]
    assert columns.shape == (features.num_frames, len(RULE_COLUMNS))
    np.testing.assert_allclose(columns[:, RULE_COLUMNS.index("level")], cues.level, atol=1e-5)
    np.testing.assert_allclose(columns[:, RULE_COLUMNS.index("acoustic_jaw")], jaw, atol=1e-5)
    assert np.ptp(jaw) > 0.1


@pytest.mark.parametrize("changes, message", [
    ({"rule_cues": 5}, "rule_cues must be 0 or 11"),
    ({"rule_cues": 11, "lookahead": 4}, "rule_cues need lookahead >= 8"),
])
def test_a_weights_file_with_impossible_rule_cues_is_refused(tmp_path, changes, message):
    path = _untrained(Config(**changes), 0, tmp_path / "cues.safetensors")
    with pytest.raises(ModelError, match=message) as error:
        load_weights(path)
    assert str(path) in str(error.value)


def test_same_input_same_output(random_weights, greeting):
    audio, _ = greeting
    a = LearnedMotionGenerator(Controls(seed=1), random_weights).animate(audio)
    b = LearnedMotionGenerator(Controls(seed=1), random_weights).animate(audio)
    np.testing.assert_array_equal(a.blendshapes, b.blendshapes)


@pytest.mark.parametrize("weights", ["random_weights", "cue_weights"])
def test_the_network_reads_at_most_80_ms_ahead(weights, greeting, request):
    """With the rules' cues too: a cue reads 80 ms ahead and the network reads it that much late."""
    audio, _ = greeting
    model = load_weights(request.getfixturevalue(weights))
    rows = feature_matrix(compute_features(audio.samples))
    out = run_model(model, rows, final=False)
    changed = rows.copy()
    cut = 150
    changed[cut:] = np.random.default_rng(1).normal(0, 3, changed[cut:].shape)
    out_changed = run_model(model, changed, final=False)
    lookahead = model.config.lookahead
    assert lookahead <= 10  # 100 ms at most
    np.testing.assert_array_equal(out[:cut - lookahead], out_changed[:cut - lookahead])
    assert np.abs(out[cut - lookahead] - out_changed[cut - lookahead]).max() > 0  # and does read that far


@pytest.mark.skipif(not SHIPPED_WEIGHTS.exists(), reason="shipped weights not built")
def test_shipped_model_closes_bilabials_with_text_and_opens_on_vowels():
    closed = total = 0
    vowel_gap, silence_gap = [], []
    for name in ("line_bilabials", "line_greeting", "line_vowels"):
        wav, text = fixture_line(name)
        track = LearnedMotionGenerator().animate(load_audio(wav), text=text)
        assert track.phones.source == "aligned"
        gaps = lip_gap(track.blendshapes)
        for phone in track.phones.phones:
            inside = (track.times >= phone.start) & (track.times < phone.end)
            if not inside.any():
                continue
            if phone.label in ("P", "B", "M"):
                total += 1
                closed += bool(((gaps[inside] <= 0.02) & (track.channel("JawOpen")[inside] <= 0.12)).any())
            elif phone.label in ("AA", "AE", "AO", "AY", "AW"):
                vowel_gap.append(gaps[inside].max())
            elif phone.label == "SIL" and phone.end - phone.start > 0.4:
                core = (track.times >= phone.start + 0.15) & (track.times < phone.end - 0.15)
                silence_gap.append(gaps[core].mean())
    assert total >= 10 and closed / total >= 0.9, f"{closed}/{total} bilabials closed"
    assert np.median(vowel_gap) > 0.15
    assert np.median(vowel_gap) > 3 * max(np.median(silence_gap), 0.01)


def _truncated(path, tmp_path):
    data = path.read_bytes()
    out = tmp_path / "truncated.safetensors"
    out.write_bytes(data[: len(data) - 1000])
    return out


def _header_cut(path, tmp_path):
    out = tmp_path / "header_cut.safetensors"
    out.write_bytes(path.read_bytes()[:40])
    return out


def _garbage(path, tmp_path):
    out = tmp_path / "garbage.safetensors"
    out.write_bytes(b"PK\x03\x04 this is a zip, or a pickle, not safetensors" * 10)
    return out


def _other_model(path, tmp_path):
    from safetensors.torch import save_file

    out = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(3)}, str(out))
    return out


def _mismatched(path, tmp_path):
    from safetensors.torch import save_file

    model = Audio2Face(Config(width=32))
    out = tmp_path / "mismatched.safetensors"
    config = Config().to_dict()  # says width 64, tensors are width 32
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(out),
              metadata={"npcface_model": "audio2face", "config": json.dumps(config)})
    return out


def _with_config(path, tmp_path, **changes):
    """The weights at ``path`` with their metadata's config changed."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(path), "pt") as weights:
        metadata, tensors = weights.metadata(), {k: weights.get_tensor(k) for k in weights.keys()}
    out = tmp_path / "changed.safetensors"
    save_file(tensors, str(out), metadata={**metadata, "config": json.dumps({**json.loads(metadata["config"]), **changes})})
    return out


def _bad_config(path, tmp_path):
    from safetensors.torch import save_file

    out = tmp_path / "bad_config.safetensors"
    save_file({"weight": torch.zeros(3)}, str(out), metadata={"npcface_model": "audio2face", "config": "{\"depth\": 3}"})
    return out


def test_the_learned_mouth_rests_in_silence_and_room_noise_and_eases_shut_after_a_line(greeting):
    """The network reads audio relative to its recent level, so alone it held the mouth open on
    silence (JawOpen 0.18) and room noise (0.3); the speech gate rests it there, without a pop."""
    from npcface.core.types import Audio

    generator = LearnedMotionGenerator(Controls(fps=30.0))
    rng = np.random.default_rng(3)
    for quiet in (np.zeros(32000, np.float32), rng.normal(0, 0.001, 32000).astype(np.float32)):  # -60 dB noise
        track = generator.animate(Audio(quiet, 16000, 1))
        assert track.channel("JawOpen").max() < 0.01 and lip_gap(track.blendshapes).max() < 0.01
    spoken = greeting[0].samples
    line = np.concatenate([spoken, np.zeros(16000, np.float32)])  # the line, then a second of silence
    track = generator.animate(Audio(line, 16000, 1))
    jaw = track.channel("JawOpen")
    speaking = track.times < len(spoken) / 16000
    assert jaw[speaking].max() > 0.3  # speech still opens it
    assert np.all(jaw[track.times > len(spoken) / 16000 + 0.35] == 0.0)  # rests after the line
    assert np.abs(np.diff(jaw[~speaking])).max() < 0.06  # easing shut, not snapping


@pytest.mark.parametrize("make, message", [
    (lambda p, t: t / "missing.safetensors", "does not exist"),
    (_garbage, "is not a safetensors file"),
    (_header_cut, "is truncated: its header needs"),
    (_truncated, "is truncated: its tensors need"),
    (_other_model, "is not an npcface audio2face model"),
    (_mismatched, "has shape"),
    (_bad_config, "no usable config"),
    (lambda p, t: _with_config(p, t, formants="no"), "formants must be true or false, got 'no'"),
])
def test_bad_weights_files_get_a_clear_error_naming_the_file(random_weights, tmp_path, make, message):
    path = make(random_weights, tmp_path)
    with pytest.raises(ModelError) as error:
        load_weights(path)
    assert message in str(error.value) and str(path) in str(error.value)
    assert "\n" not in str(error.value)


def test_header_length_that_is_no_length(tmp_path):
    path = tmp_path / "huge.safetensors"
    path.write_bytes(struct.pack("<Q", 1 << 60) + b"{}")
    with pytest.raises(ModelError, match="no header length"):
        load_weights(path)


def test_backend_factory_and_cli_flag(random_weights, tmp_path, capsys):
    from npcface.bridge.cli import main
    from npcface.core.errors import ControlError
    from npcface.core.motion.generator import MotionGenerator
    from npcface.core.motion.backends import make_generator

    assert type(make_generator("rules")) is MotionGenerator
    assert isinstance(make_generator(str(random_weights)), LearnedMotionGenerator)
    with pytest.raises(ControlError, match="rules, learned or a .safetensors weights file"):
        make_generator("neural")
    wav, _ = fixture_line("line_greeting")
    out = tmp_path / "line.csv"
    assert main(["animate", str(wav), "--motion", str(random_weights), "-o", str(out)]) == 0
    assert out.stat().st_size > 0
    for spec, message in (("neural", "rules, learned or a .safetensors"),
                          (str(tmp_path / "none.safetensors"), "motion weights file not found")):
        capsys.readouterr()
        assert main(["animate", str(wav), "--motion", spec, "-o", str(out)]) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and len(err.splitlines()) == 1, err


@pytest.mark.parametrize("weights", ["random_weights", "coarse_weights", "cue_weights"])
def test_incremental_network_equals_the_whole_line_run(weights, greeting, request):
    from npcface.core.motion.learned import IncrementalMouth

    audio, _ = greeting
    model = load_weights(request.getfixturevalue(weights))
    rows = feature_matrix(compute_features(audio.samples))
    whole = run_model(model, rows, final=True)
    for chunk in (1, 2, 7, 64, len(rows)):
        mouth = IncrementalMouth(model)
        for start in range(0, len(rows), chunk):
            mouth.feed(rows[start:start + chunk])
        mouth.finish()
        np.testing.assert_allclose(mouth.values(0), whole, atol=1e-12)


def test_render_takes_the_motion_flag_too(tmp_path, capsys, portrait_path):
    from npcface.bridge.cli import main

    wav, _ = fixture_line("line_greeting")
    argv = ["render", str(portrait_path), str(wav), "--motion", "neural", "-o", str(tmp_path / "x.mp4")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "rules, learned or a .safetensors" in err and len(err.splitlines()) == 1, err


def test_mouths_fed_together_equal_each_fed_alone(cue_weights, random_weights, greeting):
    """feed_many (the sidecar's batched step) with cue and plain models and rows of different
    lengths and offsets: every mouth gets what it gets alone (its cue window included)."""
    from npcface.core.motion.learned import IncrementalMouth, feed_many

    audio, _ = greeting
    rows = feature_matrix(compute_features(audio.samples))
    models = [load_weights(cue_weights), load_weights(cue_weights), load_weights(random_weights)]
    lines = [rows, rows[37:], rows[::-1].copy()]
    chunks = [3, 5, 2]
    together = [IncrementalMouth(m) for m in models]
    position = [0, 0, 0]
    while any(p < len(line) for p, line in zip(position, lines)):
        parts = [line[p:p + c] for p, line, c in zip(position, lines, chunks)]
        feed_many(together, parts)
        position = [p + c for p, c in zip(position, chunks)]
    for mouth, model, line in zip(together, models, lines):
        mouth.finish()
        alone = IncrementalMouth(model)
        alone.feed(line)
        alone.finish()
        together_values, alone_values = mouth.values(0), alone.values(0)
        assert len(together_values) == len(line)
        np.testing.assert_allclose(together_values, alone_values, atol=1e-12)


def test_a_network_without_formants_reads_rows_whose_f1_f2_are_zero(formantless_weights, random_weights, greeting,
                                                                    monkeypatch):
    """Config.formants False: the stream computes no F1/F2 (their root-finding is skipped) and the
    network gets exactly the rows with F1/F2 zeroed, which is what it was trained on
    (core/train/data.without_formants); a network that reads them still gets them."""
    from npcface.core.motion import learned
    from npcface.core.motion.learned import FORMANT_COLUMNS

    audio, _ = greeting
    without = LearnedMotionGenerator(Controls(fps=100.0), formantless_weights)
    assert without.stream()._features.formants is False
    assert LearnedMotionGenerator(Controls(fps=100.0), random_weights).stream()._features.formants is True
    rows = feature_matrix(compute_features(audio.samples))
    assert np.abs(rows[:, list(FORMANT_COLUMNS)]).max() > 0.1  # speech: F1/F2 in kHz
    zeroed = rows.copy()
    zeroed[:, list(FORMANT_COLUMNS)] = 0.0
    fed = []  # the rows the stream's network is fed
    feed_many = learned.feed_many
    monkeypatch.setattr(learned, "feed_many", lambda mouths, matrices, phones: (fed.extend(matrices),
                                                                                 feed_many(mouths, matrices, phones)))
    stream = without.stream()
    for start in range(0, len(audio.samples), 320):
        stream.push_audio(audio.samples[start:start + 320])
    stream.finish()
    # the line's rows, then silence rows past its end (the lookahead's)
    assert np.array_equal(np.concatenate(fed)[:len(zeroed)], zeroed)
    # phones found in the rows (the acoustic fallback, here German) need F1/F2: they are computed
    # for them, and the network still reads zeros there
    fed.clear()
    acoustic = LearnedMotionGenerator(Controls(fps=100.0, language="de"), formantless_weights).stream("hallo welt")
    assert acoustic._features.formants is True
    for start in range(0, len(audio.samples), 320):
        acoustic.push_audio(audio.samples[start:start + 320])
    acoustic.finish()
    assert np.array_equal(np.concatenate(fed)[:len(zeroed)], zeroed)
    # run_model (benches, tools) gives such a network the same rows, whatever F1/F2 it is handed
    assert np.array_equal(run_model(without.model, rows, final=True), run_model(without.model, zeroed, final=True))
    reader = load_weights(random_weights)
    assert np.abs(run_model(reader, rows, final=True) - run_model(reader, zeroed, final=True)).max() > 1e-3
