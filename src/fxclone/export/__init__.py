"""Hand models to players: ``.nam`` (Neural Amp Modeler), ONNX, RTNeural JSON, and an impulse
response as a WAV file for any convolution plugin; read ``.nam``.

``export_model(model_path, out_path, format)`` writes one file from a saved fxclone model;
``import_nam(path)`` builds the fxclone model a ``.nam`` file describes;
``initialise_from(model, path)`` copies the weights of a saved model or ``.nam`` file into a
freshly built model of the same architecture (fine-tuning). See docs/export.md.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from fxclone import __version__
from fxclone.audio import atomic_path
from fxclone.errors import FxcloneError
from fxclone.models.base import EffectModel, config_to_dict

PathLike = str | os.PathLike[str]
FORMATS = ("nam", "onnx", "rtneural", "wav")
_SUFFIXES = {".nam": "nam", ".onnx": "onnx", ".json": "rtneural", ".wav": "wav"}
_LEVEL_KEYS = ("input_level_dbu", "output_level_dbu")


def export_model(model_path: PathLike, out_path: PathLike, format: str | None = None) -> Path:
    """Write the saved model ``model_path`` to ``out_path`` as ``format``.

    ``format`` is ``nam``, ``onnx``, ``rtneural`` or ``wav`` (an impulse-response model's
    response, for convolution plugins); ``None`` picks it from the suffix (``.nam``,
    ``.onnx``, ``.json``, ``.wav``). Refuses, with a one-line FxcloneError, models the format
    cannot hold exactly. Returns the written path.
    """
    from fxclone.modelfile import load_model

    out = Path(out_path)
    fmt = _resolve_format(format, out)
    if out.is_dir():
        raise FxcloneError(f"{out} is a folder; give a file name such as {out / ('model.' + fmt)}")
    loaded = load_model(model_path)
    model, meta = loaded.model, loaded.metadata
    name = Path(model_path).stem
    if fmt == "nam":
        from fxclone.export.nam import model_to_nam

        extra: dict[str, Any] = {"name": name, **_levels(meta)}
        extra["fxclone"] = {"version": __version__, **_training_note(meta)}
        doc = model_to_nam(model, extra)
        _check_roundtrip(model, doc)
        _write_json(out, doc)
    elif fmt == "wav":
        _write_response(model, out)
    elif fmt == "onnx":
        from fxclone.export.onnx import export_onnx

        export_onnx(model, out, {"name": name, "version": __version__, **_training_note(meta)})
    else:
        from fxclone.export.rtneural import model_to_rtneural

        doc = model_to_rtneural(model, {"name": name, "fxclone_version": __version__})
        _write_json(out, doc)
    return out


def _write_response(model: EffectModel, out: Path) -> None:
    """An impulse-response model's response as a 32-bit float WAV, one channel per channel."""
    from fxclone.audio import write_audio

    if model.family != "ir":
        raise FxcloneError(
            f"--format wav writes impulse responses; this is a {model.family} model: export it "
            "with --format nam, onnx or rtneural"
        )
    if getattr(model, "gains", ()):
        raise FxcloneError(
            "this impulse-response model has saturating branches, which a convolution plugin "
            "cannot run; run it with fxclone apply, or train the linear 'ir' model to export"
        )
    if out.suffix.lower() != ".wav":
        raise FxcloneError(f"{out.name}: an impulse response is written as WAV; name it *.wav")
    response = model.get_parameter("h").detach().cpu().numpy()
    write_audio(out, response, model.sample_rate)


def export(model_path: PathLike, out_path: PathLike, fmt: str | None = None) -> Path:
    """Journey-level name of :func:`export_model` (``fxclone export MODEL OUT --format F``)."""
    return export_model(model_path, out_path, fmt)


def import_nam(path: PathLike) -> EffectModel:
    """The fxclone model (WaveNet or LSTM) a ``.nam`` file describes, with its weights.

    Save it with :func:`fxclone.modelfile.save_model`. NAM's LSTM files store an initial
    state; fxclone models start from silence, so that state is not kept.
    """
    from fxclone.export.nam import nam_to_model

    p = Path(path)
    if not p.is_file():
        raise FxcloneError(f"{p}: no such .nam file; check the path")
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FxcloneError(f"{p} is not a readable .nam file ({exc!s:.80})") from None
    return nam_to_model(doc, str(p))


def initialise_from(model: EffectModel, path: PathLike) -> EffectModel:
    """Copy the weights of a saved fxclone model or ``.nam`` file into ``model``.

    The source must have the same family, configuration, sample rate, channels and knobs;
    anything else raises a one-line FxcloneError naming the difference and the fix.
    """
    from fxclone.modelfile import load_model

    p = Path(path)
    source = import_nam(p) if p.suffix.lower() == ".nam" else load_model(p).model
    diffs = []
    if source.family != model.family or source.config != model.config:
        diffs.append(f"architecture ({_describe(source)} vs {_describe(model)})")
    if source.sample_rate != model.sample_rate:
        diffs.append(f"sample rate ({source.sample_rate} vs {model.sample_rate} Hz)")
    if source.channels != model.channels:
        diffs.append(f"channels ({source.channels} vs {model.channels})")
    src_knobs, knobs = [k.name for k in source.knobs], [k.name for k in model.knobs]
    if src_knobs != knobs:
        diffs.append(f"knobs ({', '.join(src_knobs) or 'none'} vs {', '.join(knobs) or 'none'})")
    if diffs:
        raise FxcloneError(
            f"--init {p} does not match the model being trained: {'; '.join(diffs)}; "
            "train with the same --model and data, or drop --init"
        )
    model.load_state_dict(source.state_dict())
    return model


def _describe(model: EffectModel) -> str:
    from fxclone.models.registry import PRESETS

    for preset in PRESETS.values():
        if preset.family == model.family and preset.config == model.config:
            return preset.name
    return f"{model.family} {json.dumps(config_to_dict(model.config))[:80]}"


def _resolve_format(fmt: str | None, out: Path) -> str:
    if fmt is None:
        guess = _SUFFIXES.get(out.suffix.lower())
        if guess is None:
            raise FxcloneError(
                f"cannot tell the format of {out.name}; pass --format nam, onnx, rtneural or wav"
            )
        return guess
    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise FxcloneError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return fmt


def _levels(meta: dict[str, Any]) -> dict[str, Any]:
    """The rig's calibration levels (dBu) the model was trained with, as NAM names them."""
    training = meta.get("training") or {}
    calibration = training.get("calibration") or {}
    return {k: meta.get(k, training.get(k, calibration.get(k))) for k in _LEVEL_KEYS}


def _training_note(meta: dict[str, Any]) -> dict[str, Any]:
    esr = (meta.get("training") or {}).get("best_val_esr")
    return {"validation_esr": esr} if esr is not None else {}


def _check_roundtrip(model: EffectModel, doc: dict[str, Any]) -> None:
    """Read the document back and compare outputs: catches any weight-order slip."""
    from fxclone.export.nam import nam_to_model
    from fxclone.modelfile import reference_input

    back = nam_to_model(doc)
    x = reference_input(model.sample_rate, model.channels, 2048)
    with torch.no_grad():
        err = float((back(x) - model(x)).abs().max())
    if not err <= 1e-5:
        raise FxcloneError(f"the .nam document does not reproduce the model (max error {err:.3g})")


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(doc, separators=(",", ":")) + "\n", encoding="utf-8")


__all__ = ["FORMATS", "export", "export_model", "import_nam", "initialise_from"]
