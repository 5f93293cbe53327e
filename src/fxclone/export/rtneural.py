"""RTNeural model JSON (what RTNeural's ``json_parser`` and the AIDA-X player load).

The Keras-style document: ``in_shape`` ``[null, null, 1 + n_knobs]`` (audio first, then the
knob values), ``layers``: one ``lstm`` or ``gru`` layer per recurrent layer and a ``dense``
head, each with ``shape`` ``[null, null, units]`` and Keras-layout ``weights``:

* LSTM: kernel ``(in, 4H)``, recurrent kernel ``(H, 4H)``, bias ``(4H,)`` (= b_ih + b_hh);
  gate order i, f, c, o, the same as PyTorch's i, f, g, o.
* GRU (Keras ``reset_after=True``): kernel ``(in, 3H)``, recurrent kernel ``(H, 3H)``, bias
  ``(2, 3H)`` (input bias, recurrent bias); gate order z, r, h, where PyTorch stores r, z, n.
* Dense: kernel ``(H, 1)``, bias ``(1,)``.

fxclone's input skip (``y = dense(rnn(x)) + x``) is written as ``"in_skip": 1``, the field
AIDA-X and the Automated-GuitarAmpModelling trainer use: the player adds the first input
element (the dry sample) to the network's output. RTNeural itself ignores the field, so a
host that runs the JSON through RTNeural alone must add the dry input itself.
"""

from __future__ import annotations

from typing import Any, cast

import torch
from torch import Tensor

from fxclone.errors import FxcloneError
from fxclone.models.base import EffectModel
from fxclone.models.rnn import RecurrentModel

# AIDA-X's compiled model shapes: one recurrent layer of these sizes, 1..3 inputs.
AIDAX_HIDDEN_SIZES = (8, 12, 16, 20, 24, 32, 40, 64, 80)
AIDAX_MAX_INPUTS = 3


def check_rtneural_exportable(model: EffectModel) -> None:
    """Raise a one-line FxcloneError unless ``model`` is a mono recurrent model."""
    if not isinstance(model, RecurrentModel):
        raise FxcloneError(
            f"RTNeural JSON holds recurrent models; this is a {model.family} model: "
            "export it with --format nam or onnx"
        )
    if model.channels != 1:
        raise FxcloneError(f"RTNeural models here are mono; this one has {model.channels} channels")


def _rows(t: Tensor) -> list[Any]:
    return cast(list[Any], t.detach().float().cpu().tolist())


def model_to_rtneural(model: EffectModel, metadata: dict[str, Any] | None = None) -> dict[str, Any]:
    """The RTNeural JSON document of a recurrent ``model``."""
    check_rtneural_exportable(model)
    rnn_model = cast(RecurrentModel, model)
    cfg = rnn_model.config
    rnn, hidden = rnn_model.rnn, cfg.hidden_size
    layers = []
    for n in range(cfg.num_layers):
        w_ih, w_hh = getattr(rnn, f"weight_ih_l{n}"), getattr(rnn, f"weight_hh_l{n}")
        b_ih, b_hh = getattr(rnn, f"bias_ih_l{n}"), getattr(rnn, f"bias_hh_l{n}")
        if cfg.cell == "lstm":
            weights = [_rows(w_ih.T), _rows(w_hh.T), _rows(b_ih + b_hh)]
        else:
            # PyTorch gate blocks r, z, n -> Keras z, r, h.
            order = torch.cat([torch.arange(hidden, 2 * hidden), torch.arange(hidden)])
            order = torch.cat([order, torch.arange(2 * hidden, 3 * hidden)])
            bias = torch.stack([b_ih[order], b_hh[order]])
            weights = [_rows(w_ih[order].T), _rows(w_hh[order].T), _rows(bias)]
        layers.append(
            {
                "type": cfg.cell,
                "activation": "tanh",
                "shape": [None, None, hidden],
                "weights": weights,
            }
        )
    layers.append(
        {
            "type": "dense",
            "activation": "",
            "shape": [None, None, 1],
            "weights": [_rows(rnn_model.head.weight.T), _rows(rnn_model.head.bias)],
        }
    )
    doc: dict[str, Any] = {"in_shape": [None, None, 1 + model.n_knobs]}
    if cfg.skip:
        doc["in_skip"] = 1
    doc["layers"] = layers
    doc["metadata"] = {
        "samplerate": model.sample_rate,
        "knobs": [k.to_dict() for k in model.knobs],
        "aidax_compatible": aidax_compatible(rnn_model),
        **{k: v for k, v in (metadata or {}).items() if v is not None},
    }
    return doc


def aidax_compatible(model: RecurrentModel) -> bool:
    """Whether AIDA-X's compiled model shapes include this model."""
    cfg = model.config
    return (
        cfg.num_layers == 1
        and cfg.hidden_size in AIDAX_HIDDEN_SIZES
        and 1 + model.n_knobs <= AIDAX_MAX_INPUTS
    )
