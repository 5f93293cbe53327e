"""Neural Amp Modeler ``.nam`` files: write fxclone's WaveNets and NAM-style LSTM, read NAM's.

A ``.nam`` file is JSON: ``version``, ``architecture`` (``"WaveNet"`` or ``"LSTM"``), ``config``,
``weights`` (one flat list), ``sample_rate`` and ``metadata``. fxclone writes file version
0.5.4, which every NAM player core reads (cores before 0.4 accept only 0.5.x), and gives each
non-gated layer array both the legacy keys (``head_size``, ``head_bias``, ``kernel_size``,
``gated``, ``activation``) and the nested ``head`` object that current cores and the
``neural-amp-modeler`` Python package (0.13) read. Weight order (NAM's): per layer array the
input rechannel; per layer the dilated conv (weight, bias), the input mixer, the 1x1 (weight,
bias); the head rechannel (weight, bias if any); finally ``head_scale``. LSTM: per layer the
``(4H, in + H)`` matrix ``[W_ih | W_hh]`` row-major, ``b_ih + b_hh``, initial ``h`` and ``c``;
then the head's weight and bias. Gate order i, f, g, o as in PyTorch.
"""

from __future__ import annotations

import datetime
import importlib.util
import math
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor

from fxclone.errors import FxcloneError
from fxclone.models.base import EffectModel
from fxclone.models.registry import build_model
from fxclone.models.rnn import RecurrentModel, RNNConfig
from fxclone.models.wavenet import LayerArrayConfig, WaveNet, WaveNetConfig, _Layer, _LayerArray

NAM_FILE_VERSION = "0.5.4"
DEFAULT_SAMPLE_RATE = 48000  # what NAM assumes for old files without "sample_rate"
_ACTIVATIONS = ("Tanh", "ReLU", "Hardtanh", "Sigmoid")
_FILM_KEYS = (
    "conv_pre_film",
    "conv_post_film",
    "input_mixin_pre_film",
    "input_mixin_post_film",
    "activation_pre_film",
    "activation_post_film",
    "layer1x1_post_film",
    "head1x1_post_film",
)
_ARRAY_KEYS = {
    *_FILM_KEYS,
    *("input_size", "condition_size", "channels", "dilations", "activation", "gated"),
    *("head", "head_size", "head_bias", "kernel_size", "kernel_sizes", "bottleneck"),
    *("head1x1", "layer1x1", "groups_input", "groups_input_mixin", "gating_mode"),
    *("secondary_activation", "slimmable", "packing"),
}


# ---------------------------------------------------------------------------------------------
# export


def check_nam_exportable(model: EffectModel) -> None:
    """Raise a one-line FxcloneError if NAM's format cannot hold ``model`` exactly."""
    if model.channels != 1:
        raise FxcloneError(f"NAM models are mono; this model has {model.channels} channels")
    if model.n_knobs:
        names = ", ".join(k.name for k in model.knobs)
        raise FxcloneError(
            f"NAM's format has no knob inputs and this model is conditioned on {names}; "
            "export it with --format onnx (knobs become an input) or train it without knobs"
        )
    if isinstance(model, RecurrentModel):
        cfg = model.config
        if cfg.cell != "lstm" or cfg.skip:
            what = "a GRU" if cfg.cell != "lstm" else "an LSTM with input skip"
            raise FxcloneError(
                f"NAM's LSTM has no input skip and there is no NAM GRU, so {what} cannot be "
                "written as .nam: export it with --format rtneural or onnx, or train the "
                "nam-lstm preset"
            )
    elif not isinstance(model, WaveNet):
        raise FxcloneError(f"models of family {model.family!r} cannot be written as .nam")


def model_to_nam(
    model: EffectModel, metadata: dict[str, Any] | None = None, *, loudness: bool = True
) -> dict[str, Any]:
    """The ``.nam`` JSON document of ``model`` (WaveNet, or LSTM without skip or knobs).

    ``metadata`` adds to the file's metadata (e.g. ``name``, ``input_level_dbu``). With
    ``loudness`` and the ``neural-amp-modeler`` package installed, ``loudness`` and ``gain``
    are measured with NAM's standard input, as NAM's trainer does.
    """
    check_nam_exportable(model)
    model = model.eval()
    if isinstance(model, WaveNet):
        arch, config = "WaveNet", _wavenet_config(model)
        flat = [t.detach().reshape(-1) for t in _wavenet_tensors(model)]
        flat.append(torch.tensor([model.head_scale]))
    else:
        rnn = cast(RecurrentModel, model)
        arch, config = (
            "LSTM",
            {
                "input_size": 1,
                "hidden_size": rnn.config.hidden_size,
                "num_layers": rnn.config.num_layers,
            },
        )
        flat = _lstm_flat(rnn)
    weights = torch.cat([t.float().cpu() for t in flat]).tolist()
    now = datetime.datetime.now()
    meta: dict[str, Any] = {
        "date": {
            "year": now.year,
            "month": now.month,
            "day": now.day,
            "hour": now.hour,
            "minute": now.minute,
            "second": now.second,
        }
    }
    if loudness:
        meta.update(nam_loudness(model))
    meta.update({k: v for k, v in (metadata or {}).items() if v is not None})
    return {
        "version": NAM_FILE_VERSION,
        "metadata": meta,
        "architecture": arch,
        "config": config,
        "weights": weights,
        "sample_rate": float(model.sample_rate),
    }


def _wavenet_config(model: WaveNet) -> dict[str, Any]:
    arrays = []
    input_size = model.channels
    for cfg in cast(WaveNetConfig, model.config).layers:
        d: dict[str, Any] = {
            "input_size": input_size,
            "condition_size": model.channels,
            "head_size": cfg.head_size,
            "channels": cfg.channels,
            "kernel_size": cfg.kernel_size,
            "dilations": list(cfg.dilations),
            "activation": cfg.activation,
            "gated": cfg.gated,
            "head_bias": cfg.head_bias,
        }
        if not cfg.gated:
            # Current readers prefer this; a gated array stays legacy-only so that readers
            # which ignore "gated" refuse it (no "head") instead of misreading it.
            d["head"] = {"out_channels": cfg.head_size, "kernel_size": 1, "bias": cfg.head_bias}
        arrays.append(d)
        input_size = cfg.channels
    return {"layers": arrays, "head": None, "head_scale": model.head_scale}


def _wavenet_tensors(model: WaveNet) -> list[Tensor]:
    """The WaveNet's parameters in NAM's weight order (without the trailing head_scale)."""
    out: list[Tensor] = []
    for array in cast(list[_LayerArray], list(model.arrays)):
        out.append(array.rechannel.weight)
        for layer in cast(list[_Layer], list(array.layers)):
            out += [layer.conv.weight, cast(Tensor, layer.conv.bias), layer.input_mixer.weight]
            out += [layer.layer1x1.weight, cast(Tensor, layer.layer1x1.bias)]
        out.append(array.head_rechannel.weight)
        if array.head_rechannel.bias is not None:
            out.append(array.head_rechannel.bias)
    return out


def _lstm_flat(model: RecurrentModel) -> list[Tensor]:
    rnn, flat = model.rnn, []
    for i in range(model.config.num_layers):
        w = torch.cat([getattr(rnn, f"weight_ih_l{i}"), getattr(rnn, f"weight_hh_l{i}")], dim=1)
        b = getattr(rnn, f"bias_ih_l{i}") + getattr(rnn, f"bias_hh_l{i}")
        zeros = torch.zeros(2 * model.config.hidden_size)  # fxclone starts from silence
        flat += [w.detach().reshape(-1), b.detach(), zeros]
    return flat + [model.head.weight.detach().reshape(-1), model.head.bias.detach()]


def nam_loudness(model: EffectModel) -> dict[str, float]:
    """NAM's ``loudness`` (dB) and ``gain`` (0..1) metadata, or ``{}`` without NAM installed.

    Both are measured on the standard input the ``neural-amp-modeler`` package ships, by NAM's
    definitions: RMS of the output in dB at unit gain, and how the RMS grows over 11 input gains.
    """
    spec = importlib.util.find_spec("nam")  # locates the package without importing it
    if spec is None or not spec.submodule_search_locations:
        return {}
    wav = Path(list(spec.submodule_search_locations)[0], "models/_resources/loudness_input.wav")
    if not wav.is_file():
        return {}
    import soundfile as sf

    x, _ = sf.read(str(wav), dtype="float32", always_2d=True)
    gains = np.linspace(0.0, 1.0, 11, dtype=np.float32)
    # NAM measures from the state silence leaves (its input is zero-padded by the receptive
    # field), not from fxclone's all-zero start.
    lead = max(model.receptive_field - 1, 0)
    x = np.concatenate([np.zeros(lead, np.float32), x[:, 0]])
    batch = torch.from_numpy(gains[:, None, None] * x[None, None, :])
    with torch.no_grad():
        y = model(batch, torch.zeros(len(gains), 0))[..., lead:]
    rms = torch.sqrt(torch.mean(y.double() ** 2, dim=(1, 2))).numpy()
    if not rms[-1] > 0:
        return {}
    max_gain = rms[-1] * len(gains)
    gain = (rms.sum() - 0.5 * max_gain) / (0.5 * max_gain)
    return {"loudness": float(20 * np.log10(rms[-1])), "gain": float(np.clip(gain, 0.0, 1.0))}


# ---------------------------------------------------------------------------------------------
# import


def nam_to_model(doc: Any, source: str = ".nam file") -> EffectModel:
    """Build the fxclone model a ``.nam`` JSON document describes, with its weights."""
    if not isinstance(doc, dict) or not {"architecture", "config", "weights"} <= set(doc):
        raise FxcloneError(f"{source} is not a NAM model (no architecture, config and weights)")
    version = str(doc.get("version", "0.5.0"))
    if not version.startswith("0."):
        raise FxcloneError(f"{source} has NAM file version {version}, which fxclone cannot read")
    arch = doc["architecture"]
    sr_value = doc.get("sample_rate")
    sample_rate = int(round(float(sr_value))) if sr_value not in (None, -1) else DEFAULT_SAMPLE_RATE
    weights = torch.tensor(np.asarray(doc["weights"], dtype=np.float32))
    config = doc["config"]
    try:
        if arch == "WaveNet":
            return _import_wavenet(config, weights, sample_rate)
        if arch == "LSTM":
            return _import_lstm(config, weights, sample_rate)
    except FxcloneError as exc:
        raise FxcloneError(f"{source}: {exc}") from None
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise FxcloneError(f"{source} has an unreadable {arch} config ({exc!s:.120})") from None
    raise FxcloneError(
        f"{source} holds a NAM {arch!r} model; fxclone imports NAM's WaveNet and LSTM models"
    )


def _uniform(values: Any, what: str) -> Any:
    items = values if isinstance(values, list) else [values]
    if not items or any(v != items[0] for v in items):
        raise FxcloneError(f"per-layer {what} differ within a layer array ({values})")
    return items[0]


def _activation_name(value: Any) -> str:
    if isinstance(value, dict):
        extra = set(value) - {"type", "name"}
        if extra:
            raise FxcloneError(f"activation parameters {sorted(extra)} are not supported")
        value = value.get("type", value.get("name"))
    if value not in _ACTIVATIONS:
        raise FxcloneError(f"activation {value!r} is not one of {', '.join(_ACTIVATIONS)}")
    return str(value)


def _is_inactive(value: Any) -> bool:
    return value in (None, False) or (isinstance(value, dict) and not value.get("active", True))


def _array_config(d: dict[str, Any], i: int) -> LayerArrayConfig:
    unknown = sorted(set(d) - _ARRAY_KEYS)
    if unknown:
        raise FxcloneError(f"layer array {i} has settings fxclone does not know: {unknown}")
    unsupported = [k for k in (*_FILM_KEYS, "slimmable", "packing") if not _is_inactive(d.get(k))]
    head1x1, layer1x1 = d.get("head1x1") or {}, d.get("layer1x1") or {}
    if head1x1.get("active", False):
        unsupported.append("head1x1")
    if not layer1x1.get("active", True) or layer1x1.get("groups", 1) != 1:
        unsupported.append("layer1x1")
    unsupported += [k for k in ("groups_input", "groups_input_mixin") if d.get(k, 1) != 1]
    if d.get("bottleneck", d["channels"]) != d["channels"]:
        unsupported.append("bottleneck")
    if d["condition_size"] != 1:
        unsupported.append("condition_size")
    head = d.get("head") or {}
    if head.get("kernel_size", 1) != 1:
        unsupported.append("head.kernel_size")
    if unsupported:
        raise FxcloneError(
            f"layer array {i} uses {', '.join(unsupported)}, which fxclone's WaveNet does not "
            "compute; fxclone imports NAM's standard/lite/feather/nano-style WaveNets"
        )
    activation = _activation_name(_uniform(d["activation"], "activations"))
    if "gating_mode" in d:
        mode = _uniform(d["gating_mode"], "gating modes")
        if mode not in ("none", "gated"):
            raise FxcloneError(f"gating mode {mode!r} is not supported")
        gated = mode == "gated"
        secondary = d.get("secondary_activation")
        if gated and secondary is not None:
            if _activation_name(_uniform(secondary, "secondary activations")) != "Sigmoid":
                raise FxcloneError("gated layers must use a Sigmoid gate")
    else:
        gated = bool(d.get("gated", False))
    kernel = _uniform(d.get("kernel_sizes", d.get("kernel_size")), "kernel sizes")
    return LayerArrayConfig(
        channels=int(d["channels"]),
        head_size=int(head.get("out_channels", d.get("head_size", 0))),
        kernel_size=int(kernel),
        dilations=tuple(int(x) for x in d["dilations"]),
        activation=activation,
        gated=gated,
        head_bias=bool(head.get("bias", d.get("head_bias", False))),
    )


def _import_wavenet(config: dict[str, Any], weights: Tensor, sample_rate: int) -> EffectModel:
    if not _is_inactive(config.get("head")) or not _is_inactive(config.get("condition_dsp")):
        raise FxcloneError("a WaveNet head or condition DSP is not supported")
    arrays = tuple(_array_config(d, i) for i, d in enumerate(config["layers"]))
    # The weights end with head_scale stored as float32; keep the config's value when they
    # agree (so 0.02 stays 0.02), as NAM does.
    tail = float(weights[-1]) if weights.numel() else math.nan
    head_scale = float(config.get("head_scale", tail))
    if not math.isclose(tail, head_scale, rel_tol=1e-6, abs_tol=1e-7):
        head_scale = tail
    wn_config = WaveNetConfig(layers=arrays, head_scale=head_scale)
    model = cast(WaveNet, build_model("wavenet", wn_config, sample_rate=sample_rate))
    tensors = _wavenet_tensors(model)
    _check_count(weights, sum(t.numel() for t in tensors) + 1)
    _fill(tensors, weights)
    return model.eval()


def _import_lstm(config: dict[str, Any], weights: Tensor, sample_rate: int) -> EffectModel:
    extra = sorted(set(config) - {"input_size", "hidden_size", "num_layers"})
    if extra or int(config.get("input_size", 1)) != 1:
        raise FxcloneError("only mono LSTMs without extra inputs are supported")
    hidden, layers = int(config["hidden_size"]), int(config.get("num_layers", 1))
    cfg = RNNConfig(cell="lstm", hidden_size=hidden, num_layers=layers, skip=False)
    model = cast(RecurrentModel, build_model("rnn", cfg, sample_rate=sample_rate))
    rnn, i = model.rnn, 0
    expected = sum(4 * hidden * ((1 if n == 0 else hidden) + hidden) for n in range(layers))
    _check_count(weights, expected + layers * 6 * hidden + hidden + 1)
    with torch.no_grad():
        for n in range(layers):
            inp = 1 if n == 0 else hidden
            w = weights[i : i + 4 * hidden * (inp + hidden)].reshape(4 * hidden, inp + hidden)
            getattr(rnn, f"weight_ih_l{n}").copy_(w[:, :inp])
            getattr(rnn, f"weight_hh_l{n}").copy_(w[:, inp:])
            i += w.numel()
            getattr(rnn, f"bias_ih_l{n}").copy_(weights[i : i + 4 * hidden])
            getattr(rnn, f"bias_hh_l{n}").zero_()
            # The stored initial (h, c) is dropped: fxclone models start from silence.
            i += 6 * hidden
        _fill([model.head.weight, model.head.bias], weights[i:])
    return model.eval()


def _check_count(weights: Tensor, expected: int) -> None:
    if weights.numel() != expected:
        raise FxcloneError(
            f"the file has {weights.numel()} weights but its config needs {expected}; "
            "the file is damaged or uses settings fxclone does not know"
        )


def _fill(tensors: list[Tensor], weights: Tensor) -> None:
    i = 0
    with torch.no_grad():
        for t in tensors:
            t.copy_(weights[i : i + t.numel()].reshape(t.shape))
            i += t.numel()
