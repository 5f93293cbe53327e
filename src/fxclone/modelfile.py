"""The saved-model file: one ``.safetensors`` file, never a pickle.

Tensors: the model's ``state_dict`` plus ``__reference_input__``/``__reference_output__`` (and
``__reference_knobs__``), a short signal and the model's output for it, so a reload can prove
it computes what was saved. Metadata (``__metadata__["fxclone"]``, JSON): format version,
family, config, sample rate, channels, knobs with ranges, and a training summary.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load as st_load
from safetensors.torch import save as st_save

from fxclone import __version__
from fxclone.audio import atomic_path
from fxclone.errors import FxcloneError
from fxclone.models.base import EffectModel, KnobSpec
from fxclone.models.registry import build_model

FORMAT_NAME = "fxclone-model"
FORMAT_VERSION = 1
_REF_KEYS = ("__reference_input__", "__reference_knobs__", "__reference_output__")
REFERENCE_SAMPLES = 4096


@dataclass
class LoadedModel:
    """A model read from disk with its metadata."""

    model: EffectModel
    metadata: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None


def reference_input(
    sample_rate: int, channels: int, samples: int = REFERENCE_SAMPLES
) -> torch.Tensor:
    """A deterministic probe ``(1, channels, samples)``: a rising chirp over seeded noise."""
    t = np.arange(samples) / sample_rate
    f0, f1 = 60.0, min(6000.0, 0.4 * sample_rate)
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * t[-1]))
    rng = np.random.default_rng(1234)
    sig = 0.4 * np.sin(phase) * np.linspace(0.1, 1.0, samples) + 0.05 * rng.standard_normal(samples)
    return torch.from_numpy(np.tile(sig.astype(np.float32), (1, channels, 1)))


def save_model(
    path: str | os.PathLike[str], model: EffectModel, training: dict[str, Any] | None = None
) -> Path:
    """Write ``model`` (weights, config, knob ranges, reference pair) atomically."""
    model = model.eval()
    ref_in = reference_input(model.sample_rate, model.channels)
    ref_knobs = torch.full((1, model.n_knobs), 0.5)
    with torch.no_grad():
        ref_out = model(ref_in, ref_knobs).contiguous()
    tensors = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    tensors.update(dict(zip(_REF_KEYS, (ref_in, ref_knobs, ref_out), strict=True)))
    meta = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "fxclone_version": __version__,
        **model.describe(),
        "training": training or {},
    }
    blob = st_save(tensors, metadata={"fxclone": json.dumps(meta)})
    p = Path(path)
    with atomic_path(p, durable=True) as tmp:
        tmp.write_bytes(blob)
    return p


def read_metadata(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON metadata of a saved model, validated (format and version)."""
    meta, _ = _read(Path(path))
    return meta


def load_model(path: str | os.PathLike[str], *, verify: bool = True) -> LoadedModel:
    """Load a saved model; with ``verify`` it must reproduce its stored reference output."""
    p = Path(path)
    meta, tensors = _read(p)
    refs = {k: tensors.pop(k, None) for k in _REF_KEYS}
    try:
        model = build_model(
            meta["family"],
            meta["config"],
            sample_rate=int(meta["sample_rate"]),
            knobs=[KnobSpec.from_dict(k) for k in meta.get("knobs", [])],
            channels=int(meta.get("channels", 1)),
        )
        model.load_state_dict(tensors, strict=True)
    except FxcloneError as exc:
        raise FxcloneError(f"{p}: {exc}") from None
    except (KeyError, TypeError, RuntimeError, ValueError) as exc:
        detail = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise FxcloneError(
            f"{p} does not match its own architecture ({detail}); the file is damaged, "
            "re-export or retrain it"
        ) from None
    model.eval()
    if verify and all(v is not None for v in refs.values()):
        with torch.no_grad():
            out = model(refs["__reference_input__"], refs["__reference_knobs__"])
        err = float((out - refs["__reference_output__"]).abs().max())
        if not err <= 1e-4:
            raise FxcloneError(
                f"{p} does not reproduce its reference output (max error {err:.3g}); "
                "the file is damaged, re-export or retrain it"
            )
    return LoadedModel(model=model, metadata=meta, path=p)


def _read(p: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    if not p.exists():
        raise FxcloneError(f"{p}: no such model file; check the path (models end in .safetensors)")
    if p.is_dir():
        raise FxcloneError(f"{p} is a folder; give the model's .safetensors file")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise FxcloneError(
            f"cannot read {p} ({exc.strerror}); check the file's permissions"
        ) from None
    if not data:
        raise FxcloneError(f"{p} is empty (0 bytes); retrain or re-copy the model file")
    damaged = (
        f"{p} is not a readable fxclone model (%s); the file is truncated or corrupt, "
        "re-copy it or retrain"
    )
    # The header first: a newer format is reported as such even if its tensors are unknown.
    try:
        header_len = int.from_bytes(data[:8], "little")
        if len(data) < 8 or header_len > len(data) - 8:
            raise ValueError("header longer than the file")
        header = json.loads(data[8 : 8 + header_len])
        meta = json.loads(header.get("__metadata__", {}).get("fxclone", "null"))
    except (ValueError, UnicodeDecodeError, AttributeError, TypeError) as exc:
        raise FxcloneError(damaged % _first_line(exc)) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise FxcloneError(
            f"{p} is a safetensors file but not an fxclone model (no fxclone metadata); "
            "give a model written by `fxclone train`"
        )
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise FxcloneError(
            f"{p} has model format version {version}, newer than this fxclone understands "
            f"({FORMAT_VERSION}); upgrade fxclone (pip install -U fxclone)"
        )
    try:
        tensors = st_load(data)
    except (SafetensorError, ValueError, OverflowError, RuntimeError) as exc:
        raise FxcloneError(damaged % _first_line(exc)) from None
    return meta, dict(tensors)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:80] if text else type(exc).__name__
