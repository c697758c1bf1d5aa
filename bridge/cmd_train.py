"""`npcface train SOURCES... -o model.safetensors`: teach the learned mouth real faces.

SOURCES are folders of talking videos (one speaker per folder; face-tracked once, cached by
content hash) and Live Link Face takes (a CSV with its WAV beside it). A video with its text
beside it (``X.txt``, or GRID's ``X.align``) is also aligned to its phones, which a model with
``phone_classes`` in its recipe reads (with text) beside the audio. ``--recipe FILE`` takes
sources (relative to --data), held-out clips and training settings from a committed recipe
(models/recipes/audio2face.json made the shipped weights). ``--init`` fine-tunes the shipped
model (or a given one) instead of starting afresh. A checkpoint beside the output every
--checkpoint-every steps: run the same command again after a kill and it resumes, ending with the
same weights as an uninterrupted run. Writes the weights, a PNG of the loss curves, and prints a
validation table per held-out clip (model vs rules vs loudness, Pearson r of the lip gap).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..core.errors import FormatError
from .progress import Progress

DEFAULT_VALIDATION_ROWS = 12


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train", help="train the learned mouth on talking videos / Live Link takes",
        description="Train (or fine-tune) the learned audio-to-mouth model on real faces.")
    parser.add_argument("sources", nargs="*", type=Path,
                        help="folders of talking videos, Live Link CSVs with a WAV beside them. A video's "
                             "text beside it (X.txt: the words said, or GRID's X.align word alignment) gives "
                             "it phones (forced alignment, cached) for a model with phone_classes")
    parser.add_argument("-o", "--output", type=Path, required=True, help="weights to write (.safetensors)")
    parser.add_argument("--recipe", type=Path, help="JSON recipe: sources, held_out, train settings")
    parser.add_argument("--data", type=Path, help="folder the recipe's sources are relative to "
                                                  "(default $NPCFACE_DATA, else ../shared/data)")
    parser.add_argument("--init", nargs="?", const="shipped", metavar="FILE",
                        help="fine-tune from the shipped model (or FILE) instead of starting afresh")
    parser.add_argument("--steps", type=int, help="training steps (default: recipe or 3000)")
    parser.add_argument("--checkpoint-every", type=int, help="steps between checkpoints (default 250)")
    parser.add_argument("--seed", type=int, help="random seed (default: recipe or 0)")
    parser.add_argument("--plot", type=Path, help="loss curves PNG (default: OUTPUT with .loss.png)")
    parser.add_argument("--validate", type=int, default=DEFAULT_VALIDATION_ROWS,
                        help=f"held-out clips in the validation table (default {DEFAULT_VALIDATION_ROWS}; 0: none)")
    parser.add_argument("--cache", type=Path, help="cache folder (default $NPCFACE_CACHE or ~/.cache/npcface)")
    parser.set_defaults(run=run)


def _positive(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise FormatError(f"{name} must be at least 1, got {value}")


def _settings(args: argparse.Namespace):
    from ..core.train.loop import TrainConfig

    recipe = {}
    if args.recipe is not None:
        try:
            recipe = json.loads(args.recipe.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FormatError(f"recipe {args.recipe} does not exist") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise FormatError(f"recipe {args.recipe} is not JSON ({error})") from None
        unknown = set(recipe) - {"sources", "held_out", "train", "note", "manifest"}
        if unknown:
            raise FormatError(f"recipe {args.recipe}: unknown keys {sorted(unknown)}")
    try:
        config = TrainConfig.from_dict(dict(recipe.get("train", {})))
    except (TypeError, ValueError) as error:
        raise FormatError(f"recipe {args.recipe}: {error}") from None
    for name, value in (("--steps", args.steps), ("--checkpoint-every", args.checkpoint_every)):
        _positive(name, value)
    if args.steps is not None:
        config.steps = args.steps
    if args.checkpoint_every is not None:
        config.checkpoint_every = args.checkpoint_every
    if args.seed is not None:
        config.seed = args.seed
    return recipe, config


def _sources(args: argparse.Namespace, recipe: dict) -> list[Path]:
    sources = list(args.sources)
    if recipe.get("sources"):
        from os import environ

        base = args.data or Path(environ.get("NPCFACE_DATA", Path.cwd().parent / "shared" / "data"))
        sources += [base / s for s in recipe["sources"]]
    if not sources:
        raise FormatError("give training sources (folders of videos, Live Link CSVs) or a --recipe with sources")
    return sources


def _check_manifest(groups, manifest: dict[str, str]) -> None:
    """The recipe's data are the files it was made from: same names, same content hashes."""
    from ..core.capture.cache import file_digest

    found = {f"{speaker}/{path.stem}": path for speaker, files in groups for path in files}
    missing = sorted(set(manifest) - set(found))
    extra = sorted(set(found) - set(manifest))
    changed = sorted(name for name in set(manifest) & set(found) if file_digest(found[name])[:16] != manifest[name])
    if missing or extra or changed:
        raise FormatError(f"the training data differ from the recipe's manifest: {len(missing)} missing, "
                          f"{len(extra)} not listed, {len(changed)} changed (e.g. {(missing + extra + changed)[0]})")


def _split(clips, held_out: list[str]):
    """(training clips, held-out clips): the recipe's held_out ('speaker/name'), else every 10th from the 2nd."""
    if held_out:
        wanted = set(held_out)
        held = [c for c in clips if f"{c.speaker}/{c.name}" in wanted]
    else:
        held = clips[1::10] if len(clips) >= 2 else []
    names = {id(c) for c in held}
    return [c for c in clips if id(c) not in names], held


def run(args: argparse.Namespace) -> int:
    from ..core.motion.learned_weights import SHIPPED_WEIGHTS, load_weights, save_weights
    from ..core.train.loop import plot_losses, train
    from ..core.train.data import collect_clips, find_sources
    from ..models.audio2face import OUTPUTS
    from .cli_args import check_output_file

    output = check_output_file(str(args.output), (".safetensors",), "output")
    plot = check_output_file(str(args.plot), (".png",), "--plot") if args.plot else output.with_suffix(".loss.png")
    recipe, config = _settings(args)
    init = None
    if args.init is not None:
        init = load_weights(SHIPPED_WEIGHTS if args.init == "shipped" else Path(args.init))
    sources = _sources(args, recipe)
    groups = find_sources(sources)  # every source exists and holds something, before any slow work
    if recipe.get("manifest"):
        _check_manifest(groups, recipe["manifest"])
    outputs = init.config.outputs if init is not None else OUTPUTS
    print(f"reading {len(sources)} source(s) (face tracking is cached by content hash)", file=sys.stderr)
    clips = collect_clips(sources, outputs, cache=args.cache)
    training, held = _split(clips, recipe.get("held_out", []))
    if not training:
        raise FormatError("no training clips left after holding out the validation clips")
    hours = sum(len(c.features) for c in training) / 360000
    print(f"{len(training)} training clips ({hours * 60:.1f} min), {len(held)} held out", file=sys.stderr)
    checkpoint = output.with_suffix(".ckpt")
    if checkpoint.exists():
        print(f"resuming from checkpoint {checkpoint}", file=sys.stderr)
    progress = Progress(config.steps, "train", unit="steps", plain=True)
    try:
        model, state = train(training, held, config, checkpoint, init=init,
                             progress=lambda step, steps, loss: progress.update(step, f"loss {loss:.4f}"))
    finally:
        progress.close()
    save_weights(model, output, {"steps": str(state.step), "seed": str(config.seed),
                                 "train_config": json.dumps(config.__dict__)})
    plot_losses(state, config.checkpoint_every, plot)
    checkpoint.unlink(missing_ok=True)
    print(f"trained {state.step} steps in {state.seconds:.0f} s; {model.num_parameters()} parameters "
          f"-> {output} ({output.stat().st_size / 1e6:.2f} MB), loss curves -> {plot}", file=sys.stderr)
    if args.validate > 0 and held:
        from ..core.train.validate import validation_table

        print(validation_table(output, held[: args.validate]))
    return 0
