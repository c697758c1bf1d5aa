"""Saving and loading the learned mouth model (models/audio2face.py) as safetensors, never pickle.

A weights file holds every tensor of the model (float32) and, in the safetensors metadata,
``npcface_model = "audio2face"`` and ``config`` (the Config as JSON). Any file that is not such a
file (missing, not safetensors, truncated, another model, tensors of the wrong shape) raises
ModelError naming the file and what is wrong.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import torch

from ..errors import NpcfaceError

MODEL_KIND = "audio2face"
SHIPPED_WEIGHTS = Path(__file__).resolve().parents[2] / "models" / "weights" / "audio2face.safetensors"
_MAX_HEADER = 100_000_000


class ModelError(NpcfaceError):
    code = "bad_model"


def save_weights(model, path: str | Path, extra_metadata: dict[str, str] | None = None) -> None:
    from safetensors.torch import save_file

    tensors = {name: value.detach().to(torch.float32).contiguous() for name, value in model.state_dict().items()}
    metadata = {"npcface_model": MODEL_KIND, "config": json.dumps(model.config.to_dict()), **(extra_metadata or {})}
    save_file(tensors, str(path), metadata=metadata)


def _read_header(path: Path) -> dict:
    """The safetensors JSON header, checked against the file's size (clear errors, not Rust ones)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"model file {path} does not exist") from None
    except OSError as error:
        raise ModelError(f"cannot read model file {path}: {error.strerror}") from None
    if len(data) < 8:
        raise ModelError(f"model file {path} is not a safetensors file (only {len(data)} bytes)")
    (length,) = struct.unpack("<Q", data[:8])
    if length > _MAX_HEADER:
        raise ModelError(f"model file {path} is not a safetensors file (its first 8 bytes are no header length)")
    if len(data) < 8 + length:
        raise ModelError(f"model file {path} is truncated: its header needs {length} bytes, the file has {len(data) - 8}")
    try:
        header = json.loads(data[8:8 + length])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelError(f"model file {path} is not a safetensors file (the header is not JSON)") from None
    if not isinstance(header, dict):
        raise ModelError(f"model file {path} is not a safetensors file (the header is not a JSON object)")
    ends = [entry["data_offsets"][1] for name, entry in header.items()
            if name != "__metadata__" and isinstance(entry, dict) and "data_offsets" in entry]
    if ends and max(ends) > len(data) - 8 - length:
        raise ModelError(f"model file {path} is truncated: its tensors need {max(ends)} bytes of data, "
                         f"the file has {len(data) - 8 - length}")
    return header


def network_config(values: dict):
    """The network's Config from its dict (a weights file's metadata, a recipe's ``model``), with
    the columns it reads checked against what this version computes; ValueError says what is wrong."""
    from ...models.audio2face import Config
    from .learned_inputs import check_phone_classes, check_rule_cues

    if not isinstance(values, dict):
        raise ValueError(f"the model config must be a mapping of names to values, got {type(values).__name__}")
    config = Config.from_dict(values)
    check_rule_cues(config.rule_cues, config.lookahead)
    check_phone_classes(config.phone_classes)
    return config


def load_weights(path: str | Path):
    """An Audio2Face model from a weights file, in eval mode, float64 (exact streaming)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from ...models.audio2face import Audio2Face

    path = Path(path)
    header = _read_header(path)
    metadata = header.get("__metadata__") or {}
    if metadata.get("npcface_model") != MODEL_KIND:
        raise ModelError(f"model file {path} is not an npcface {MODEL_KIND} model "
                         f"(metadata npcface_model = {metadata.get('npcface_model')!r})")
    try:
        config = network_config(json.loads(metadata["config"]))
    except (KeyError, ValueError, TypeError) as error:
        raise ModelError(f"model file {path} has no usable config in its metadata ({error})") from None
    try:
        tensors = load_file(str(path))
    except SafetensorError as error:
        raise ModelError(f"model file {path} is not a readable safetensors file ({error})") from None
    model = Audio2Face(config)
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise ModelError(f"model file {path} does not match its config: missing tensors {missing[:3]}, "
                         f"unexpected {unexpected[:3]}")
    for name, value in expected.items():
        if tuple(tensors[name].shape) != tuple(value.shape):
            raise ModelError(f"model file {path}: tensor {name} has shape {tuple(tensors[name].shape)}, "
                             f"its config needs {tuple(value.shape)}")
        if not torch.isfinite(tensors[name]).all():
            raise ModelError(f"model file {path}: tensor {name} holds NaN or infinite values")
    model.load_state_dict(tensors)
    return model.double().eval()
