"""`npcface train` on Live Link takes made from the fixtures (a tiny model, a few steps): it writes
weights the learned backend loads, a loss PNG and a validation table; a run killed midway and
started again ends with exactly the weights of an uninterrupted run (augmentation, target
shifts, dropout and the correlation term included); bad input gets one line."""
from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.torch import load_file

from conftest import fixture_line
from npcface.bridge.cli import main
from npcface.core.audio.decode import load_audio
from npcface.core.formats.livelink import write_livelink_csv
from npcface.core.motion.generator import MotionGenerator
from npcface.core.audio.features import compute_features
from npcface.core.motion.learned import LearnedMotionGenerator, feature_matrix, run_model
from npcface.core.types import Controls

TINY = {"train": {"batch": 4, "window": 40, "checkpoint_every": 5, "threads": 1,
                  "augment": {}, "align_speakers": True, "target_lead_ms": 30.0, "correlation_weight": 0.5,
                  "model": {"width": 16, "dilations": [1, 2, 4], "context": 20, "dropout": 0.1, "mel_bands": 10}}}


@pytest.fixture(scope="module")
def takes(tmp_path_factory) -> Path:
    """A folder of Live Link takes (CSV + WAV): the rules' curves for three fixture lines stand in
    for an actor's capture."""
    folder = tmp_path_factory.mktemp("takes")
    for name in ("line_greeting", "line_bilabials", "line_vowels"):
        wav, text = fixture_line(name)
        track = MotionGenerator(Controls(fps=60.0)).animate(load_audio(wav), text=text)
        write_livelink_csv(track, folder / f"{name}.csv")
        shutil.copy(wav, folder / f"{name}.wav")
        if name != "line_vowels":  # text beside the sound: the take gets its aligned phones
            (folder / f"{name}.txt").write_text(text)
    (folder / "tiny.json").write_text(json.dumps(TINY))
    cues = json.loads(json.dumps(TINY))
    cues["train"]["model"]["rule_cues"] = 11  # the rule generator's cues as inputs
    (folder / "tiny_cues.json").write_text(json.dumps(cues))
    phones = json.loads(json.dumps(TINY))
    phones["train"]["model"]["phone_classes"] = 9  # the aligned text's phone classes as inputs
    (folder / "tiny_phones.json").write_text(json.dumps(phones))
    formantless = json.loads(json.dumps(TINY))
    formantless["train"]["model"]["formants"] = False  # trained on rows whose F1/F2 are 0, as it streams
    (folder / "tiny_formantless.json").write_text(json.dumps(formantless))
    return folder


def command(takes: Path, out: Path, steps: int, cache: Path, recipe: str = "tiny.json") -> list[str]:
    return ["train", str(takes), "-o", str(out), "--recipe", str(takes / recipe), "--steps", str(steps),
            "--cache", str(cache), "--validate", "1"]


@pytest.mark.parametrize("recipe", ["tiny.json", "tiny_cues.json", "tiny_phones.json", "tiny_formantless.json"])
def test_train_writes_weights_plot_and_validation_table(takes, tmp_path, capsys, recipe):
    out = tmp_path / "actor.safetensors"
    assert main(command(takes, out, 10, tmp_path / "cache", recipe)) == 0
    printed = capsys.readouterr()
    assert "held-out clip" in printed.out and "line_greeting" in printed.out  # the 2nd take (sorted) is held out
    assert (tmp_path / "actor.loss.png").stat().st_size > 1000
    assert not (tmp_path / "actor.ckpt").exists()  # finished: the checkpoint is gone
    wav, _ = fixture_line("line_greeting")
    generator = LearnedMotionGenerator(weights=out)
    assert generator.model.config.rule_cues == (11 if recipe == "tiny_cues.json" else 0)
    assert generator.model.config.phone_classes == (9 if recipe == "tiny_phones.json" else 0)
    assert generator.model.config.formants == (recipe != "tiny_formantless.json")
    # the input normalisation saw F1/F2 (network columns after the 10 pooled mel bands) only where read
    f1_f2_mean = generator.model.input_mean[10 + 3:10 + 5].abs().max().item()
    assert (f1_f2_mean == 0.0) == (recipe == "tiny_formantless.json"), f1_f2_mean
    track = generator.animate(load_audio(wav))
    assert np.isfinite(track.blendshapes).all()
    rows = feature_matrix(compute_features(load_audio(wav).samples))
    with_text = run_model(generator.model, rows, final=True, phones=track_with_text(generator, wav).phones)
    assert (np.abs(with_text - run_model(generator.model, rows, final=True)).max() > 1e-4) == (recipe == "tiny_phones.json")


def track_with_text(generator, wav):
    return generator.animate(load_audio(wav), text=fixture_line(wav.stem)[1])


def test_takes_with_text_train_with_their_phones_on_about_half_the_examples(takes, tmp_path):
    """Clips with text carry one phone class per row (forced alignment, cached); a batch gives
    an example its phones (one-hot, flag 1) or none (zeros, flag 0), about half each; a clip
    without text never has them."""
    from npcface.core.train.data import collect_clips
    from npcface.core.train.loop import TrainConfig, _batch
    from npcface.models.audio2face import OUTPUTS, Config

    clips = collect_clips([takes], OUTPUTS, cache=tmp_path)
    by_name = {c.name: c for c in clips}
    assert by_name["line_vowels"].phones is None
    for name in ("line_greeting", "line_bilabials"):
        phones = by_name[name].phones
        assert phones is not None and len(phones) == len(by_name[name].features)
        assert len(set(phones.tolist())) >= 4  # silence, and several kinds of speech sound
    assert 1 in by_name["line_bilabials"].phones.tolist()  # PHONE_CLASSES' bilabial
    model_config = Config(phone_classes=9, context=20, dilations=(1, 2, 4), width=16)
    config = TrainConfig(batch=8, window=40, augment={})
    with_text = [by_name["line_greeting"], by_name["line_bilabials"]]
    flags = []
    for step in range(10):
        features, _, _ = _batch(with_text, config, step, model_config)
        columns = features[..., -10:].numpy()  # (B, T, 9 + 1)
        flag = columns[..., -1]
        assert ((flag == 0) | (flag == 1)).all() and (flag == flag[:, :1]).all()  # per example
        np.testing.assert_allclose(columns[..., :-1].sum(axis=-1), flag, atol=1e-5)  # warped one-hot
        flags += flag[:, 0].tolist()
    assert 0.3 < np.mean(flags) < 0.7, np.mean(flags)
    features, _, _ = _batch([by_name["line_vowels"]], config, 0, model_config)
    assert not features[..., -10:].any()


def test_a_killed_run_resumes_to_the_same_weights(takes, tmp_path):
    steps = 60
    whole = tmp_path / "whole.safetensors"
    assert main(command(takes, whole, steps, tmp_path / "cache")) == 0

    resumed = tmp_path / "resumed.safetensors"
    argv = [sys.executable, "-m", "npcface.bridge.cli"] + command(takes, resumed, steps, tmp_path / "cache")
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    checkpoint = resumed.with_suffix(".ckpt")
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert checkpoint.exists() and not resumed.exists(), "the kill must land between the first checkpoint and the end"
    assert subprocess.run(argv, capture_output=True).returncode == 0
    a, b = load_file(str(whole)), load_file(str(resumed))
    assert a.keys() == b.keys()
    for name in a:
        assert np.array_equal(a[name].numpy(), b[name].numpy()), name


def test_correlation_term_judges_shape_not_scale():
    """The loss's correlation term: 1 for the same shape at any scale and offset, -1 for the
    opposite, flat (silent) targets neutral, rows outside the mask ignored."""
    import torch

    from npcface.core.train.loop import _masked_pearson
    from npcface.models.audio2face import OUTPUTS

    rng = torch.Generator().manual_seed(0)
    targets = torch.rand(3, 50, len(OUTPUTS), generator=rng, dtype=torch.float64)
    mask = torch.ones(3, 50, 1, dtype=torch.float64)
    np.testing.assert_allclose(_masked_pearson(0.3 * targets + 0.2, targets, mask, OUTPUTS).numpy(), 1.0, atol=1e-6)
    np.testing.assert_allclose(_masked_pearson(-targets, targets, mask, OUTPUTS).numpy(), -1.0, atol=1e-6)
    flat = targets.clone()
    flat[1] = 0.25
    assert torch.allclose(_masked_pearson(torch.rand_like(targets), flat, mask, OUTPUTS)[1], torch.ones(2, dtype=torch.float64))
    garbled = targets.clone()
    garbled[:, 40:] = torch.rand(3, 10, len(OUTPUTS), generator=rng, dtype=torch.float64)
    mask[:, 40:] = 0.0
    np.testing.assert_allclose(_masked_pearson(garbled, targets, mask, OUTPUTS).numpy(), 1.0, atol=1e-6)
    assert _masked_pearson(garbled, targets, torch.ones_like(mask), OUTPUTS).max() < 0.99


@pytest.mark.parametrize("arguments, message", [
    (["train", "nowhere", "-o", "x.safetensors"], "does not exist"),
    (["train", "fixtures", "-o", "x.pt"], "must end in .safetensors"),
    (["train", "-o", "x.safetensors"], "give training sources"),
    (["train", "fixtures", "-o", "x.safetensors", "--steps", "0"], "--steps must be at least 1"),
    (["train", "fixtures/portrait_astronaut.png", "-o", "x.safetensors"], "neither a folder, a video nor"),
    (["train", "fixtures", "-o", "x.safetensors", "--init", "fixtures/line_greeting.wav"], "not a safetensors file"),
    (["train", "fixtures", "-o", "x.safetensors", "--recipe", "fixtures/line_greeting.txt"], "is not JSON"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, arguments, message):
    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(root)
    arguments = [str(tmp_path / a) if a.startswith("x.") else a for a in arguments]
    assert main(arguments) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err


def test_a_recipe_manifest_that_does_not_match_the_data_is_refused(takes, tmp_path, capsys):
    recipe = dict(TINY, manifest={"line_greeting/line_greeting": "0" * 16})
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    argv = ["train", str(takes), "-o", str(tmp_path / "m.safetensors"), "--recipe", str(tmp_path / "recipe.json")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "differ from the recipe's manifest: 0 missing, 2 not listed, 1 changed" in err, err


def test_text_beside_a_video_and_what_bad_text_files_get(tmp_path):
    from npcface.core.train.data import DataError, text_beside

    video = tmp_path / "clip.mp4"
    assert text_beside(video) is None
    (tmp_path / "clip.align").write_text("0 17750 sil\n17750 22500 bin\n22500 27000 blue\n27000 30000 sp\n30000 40000 at\n")
    assert text_beside(video) == "bin blue at"  # GRID's silences dropped
    (tmp_path / "clip.align").write_text("0 17750 sil\nbin blue\n")
    with pytest.raises(DataError, match=r"clip.align: line 2 is not 'start end word'"):
        text_beside(video)
    (tmp_path / "clip.align").unlink()
    (tmp_path / "clip.txt").write_bytes(b"\xff\xfe bad")
    with pytest.raises(DataError, match=r"clip.txt is not UTF-8 text"):
        text_beside(video)
    (tmp_path / "clip.txt").write_text("  \n")
    assert text_beside(video) is None
    (tmp_path / "clip.txt").write_text("Place blue at F two now.\n")
    assert text_beside(video) == "Place blue at F two now."


@pytest.mark.parametrize("model, message", [
    ({"phone_classes": 5}, "phone_classes must be 0 or 9"),
    ({"rule_cues": 3}, "rule_cues must be 0 or 11"),
    ({"rule_cues": 11, "lookahead": 4}, "rule_cues need lookahead >= 8"),
    ({"lookahead": 9}, "lookahead must be 0..8 rows"),
    ({"width": "wide"}, "width must be a whole number, got 'wide'"),
    ({"dilations": []}, "dilations must be a non-empty list"),
    ({"dropout": 1.5}, "dropout must be in [0, 1)"),
    ({"formants": "no"}, "formants must be true or false, got 'no'"),
    ({"outputs": ["JawOpen", "Nose"], "n_outputs": 2}, "outputs must be distinct names"),
    ({"depth": 3}, "unknown config keys ['depth']"),
    ([1, 2], "must be a mapping"),
])
def test_a_recipe_whose_network_cannot_be_built_or_loaded_fails_before_training(tmp_path, capsys, model, message):
    """Before, such a recipe trained for up to an hour and wrote weights that no loader accepts
    (phone_classes, rule_cues) or failed deep in torch (width, dilations)."""
    recipe = dict(TINY, train=dict(TINY["train"], model=model))
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    argv = ["train", "nowhere-needed", "-o", str(tmp_path / "m.safetensors"), "--recipe", str(tmp_path / "recipe.json")]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "recipe.json" in err, err
    assert not (tmp_path / "m.safetensors").exists()
