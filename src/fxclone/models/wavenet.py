"""Causal dilated-convolution WaveNet that computes exactly Neural Amp Modeler's WaveNet maths.

One layer (NAM's ``_Layer``)::

    z    = conv_k,d(x) + mixer(c)          # dilated conv with bias; 1x1 mixer of the condition
    a    = tanh(z)                         # or tanh(z[:C]) * sigmoid(z[C:]) when gated
    x'   = x + 1x1(a)                      # residual path to the next layer
    head += a                              # skip path to the array's head

A layer array rechannels its input (1x1, no bias), runs its layers, and projects the summed
skip path with ``head_rechannel`` (1x1); the next array starts its skip sum from that output.
The model output is ``head_scale * head`` of the last array. The condition ``c`` is the dry
input, with the knob values appended as extra constant channels (with no knobs the maths is
NAM's, so ``.nam`` export is exact).

Knob-conditioned models (``film_hidden > 0``) also use FiLM (Perez et al. 2018, as in
Steinmetz's micro-TCN): a small network of the knob vector gives every layer a per-channel
scale and shift applied before its activation (``z * s + b``: a drive knob scales what the
nonlinearity sees), and the output a per-channel gain (``y * s_out``: a level knob). An
additive condition alone cannot express a gain, so without FiLM a drive or level knob has to
be learned through the nonlinearities. With ``film_log`` (the default) the scales are
``exp(g)`` and the network has a linear path from the knobs next to its hidden layer, so a
knob marked in dB (drive 0-40 dB, level -24-+6 dB: a gain factor of 100 or 32 over the range)
is exactly linear in ``g``; files saved before it used ``1 + g`` and no linear path. The
network's last layer and the linear path start at zero, so training starts from the
unmodulated model. Both terms are affine in the layer weights, so a streaming kernel folds
them into its weights when the knobs change.

Streaming state: for every layer, the last ``(kernel_size - 1) * dilation`` samples of that
layer's input. The offline ``forward`` is ``step`` from a zero state, which is the same as
causal zero padding at every layer. Neural Amp Modeler's players, and fxclone's
:class:`~fxclone.streaming.StreamProcessor` (``apply``, ``evaluate``, ``sweep``), start
instead from the state that silence leaves (each layer's history holds its response to zero
input, bias-driven), so the two differ over the first receptive field of output only; after
that they are equal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from fxclone.models.base import EffectModel, State, broadcast_knobs, config_from_dict

_ACTIVATIONS = {"Tanh": nn.Tanh, "ReLU": nn.ReLU, "Hardtanh": nn.Hardtanh, "Sigmoid": nn.Sigmoid}


@dataclass(frozen=True)
class LayerArrayConfig:
    """One NAM layer array. ``input_size`` and ``condition_size`` are derived, not set."""

    channels: int
    head_size: int
    kernel_size: int = 3
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
    activation: str = "Tanh"
    gated: bool = False
    head_bias: bool = False

    def __post_init__(self) -> None:
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation {self.activation!r} not in {sorted(_ACTIVATIONS)}")
        if self.channels < 1 or self.head_size < 1 or self.kernel_size < 1:
            raise ValueError("channels, head_size and kernel_size must be positive")
        if not self.dilations or min(self.dilations) < 1:
            raise ValueError("dilations must be a non-empty list of positive integers")


def _standard_arrays() -> tuple[LayerArrayConfig, ...]:
    return (
        LayerArrayConfig(channels=16, head_size=8, head_bias=False),
        LayerArrayConfig(channels=8, head_size=1, head_bias=True),
    )


@dataclass(frozen=True)
class WaveNetConfig:
    """NAM WaveNet: a list of layer arrays and the output scale (standard preset by default)."""

    layers: tuple[LayerArrayConfig, ...] = field(default_factory=_standard_arrays)
    head_scale: float = 0.02
    # Hidden width of the knobs -> FiLM network; 0 = knobs only as extra condition channels.
    # Used only when the model has knobs.
    film_hidden: int = 16
    # FiLM scales as exp(g) with a linear knob path (True), or 1 + g without one (older files).
    film_log: bool = True

    def __post_init__(self) -> None:
        if not self.layers:
            raise ValueError("a WaveNet needs at least one layer array")
        if self.film_hidden < 0:
            raise ValueError("film_hidden must be >= 0")

    @classmethod
    def from_dict(cls, data: dict) -> WaveNetConfig:
        # Files saved before FiLM existed have no such key: they were built without it.
        data = {"film_hidden": 0, "film_log": False, **data}
        if "layers" in data:
            data["layers"] = tuple(
                a
                if isinstance(a, LayerArrayConfig)
                else config_from_dict(LayerArrayConfig, a, "layer array")
                for a in data["layers"]
            )
        return config_from_dict(cls, data, "WaveNet config")


class _Layer(nn.Module):
    def __init__(
        self,
        condition_size: int,
        channels: int,
        kernel_size: int,
        dilation: int,
        activation: str,
        gated: bool,
    ) -> None:
        super().__init__()
        mid = 2 * channels if gated else channels
        self.conv = nn.Conv1d(channels, mid, kernel_size, dilation=dilation)
        self.input_mixer = nn.Conv1d(condition_size, mid, 1, bias=False)
        self.layer1x1 = nn.Conv1d(channels, channels, 1)
        self.activation = _ACTIVATIONS[activation]()
        self.gated = gated
        self.channels = channels
        self.mid = mid
        self.pad = (kernel_size - 1) * dilation

    def forward(
        self, x: Tensor, cond: Tensor, past: Tensor, film: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """x: (B, C, T) layer input; cond: (B, Dc, T); past: (B, C, pad) previous inputs;
        film: (B, 2 * mid, 1) FiLM scales and shifts, or None."""
        full = torch.cat([past, x], dim=2) if self.pad else x
        z = self.conv(full) + self.input_mixer(cond)
        if film is not None:
            z = z * film[:, : self.mid] + film[:, self.mid :]
        if self.gated:
            a = self.activation(z[:, : self.channels]) * torch.sigmoid(z[:, self.channels :])
        else:
            a = self.activation(z)
        new_past = full[:, :, full.shape[2] - self.pad :] if self.pad else past
        return x + self.layer1x1(a), a, new_past


class _LayerArray(nn.Module):
    def __init__(self, cfg: LayerArrayConfig, input_size: int, condition_size: int) -> None:
        super().__init__()
        self.rechannel = nn.Conv1d(input_size, cfg.channels, 1, bias=False)
        self.layers_list = [
            _Layer(condition_size, cfg.channels, cfg.kernel_size, d, cfg.activation, cfg.gated)
            for d in cfg.dilations
        ]
        self.layers = nn.ModuleList(self.layers_list)
        self.head_rechannel = nn.Conv1d(cfg.channels, cfg.head_size, 1, bias=cfg.head_bias)
        self.receptive_field = 1 + (cfg.kernel_size - 1) * sum(cfg.dilations)


class WaveNet(EffectModel):
    """Neural Amp Modeler's WaveNet (layer arrays, gated or not, head_scale), streamable."""

    family = "wavenet"
    config_class = WaveNetConfig

    def __init__(self, config: WaveNetConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        condition_size = self.channels + self.n_knobs
        arrays: list[_LayerArray] = []
        input_size = self.channels
        for i, cfg in enumerate(config.layers):
            last = i == len(config.layers) - 1
            if last and cfg.head_size != self.channels:
                raise ValueError(
                    f"the last layer array's head_size ({cfg.head_size}) must equal the audio "
                    f"channel count ({self.channels})"
                )
            if i > 0 and config.layers[i - 1].head_size != cfg.channels:
                raise ValueError("each layer array's channels must equal the previous head_size")
            arrays.append(_LayerArray(cfg, input_size, condition_size))
            input_size = cfg.channels
        self.arrays = nn.ModuleList(arrays)
        self._array_list: list[_LayerArray] = arrays  # typed view of the same modules
        self.head_scale = float(config.head_scale)
        # FiLM terms: 2 * mid per layer, then the output gain (one per output channel).
        self._film_sizes = [2 * layer.mid for layer in self._layers()] + [self.channels]
        self.film: nn.Sequential | None = None
        self.film_linear: nn.Linear | None = None
        self.film_log = bool(config.film_log)
        if self.n_knobs and config.film_hidden:
            self.film = nn.Sequential(
                nn.Linear(self.n_knobs, config.film_hidden),
                nn.ReLU(),
                nn.Linear(config.film_hidden, sum(self._film_sizes)),
            )
            film_out = self.film[2]
            assert isinstance(film_out, nn.Linear)
            nn.init.zeros_(film_out.weight)
            nn.init.zeros_(film_out.bias)
            if self.film_log:
                self.film_linear = nn.Linear(self.n_knobs, sum(self._film_sizes), bias=False)
                nn.init.zeros_(self.film_linear.weight)
        self.film_is_scale: Tensor
        is_scale = torch.tensor(film_scale_mask(self._film_sizes))
        self.register_buffer("film_is_scale", is_scale, persistent=False)

    @property
    def receptive_field(self) -> int:
        return 1 + sum(a.receptive_field - 1 for a in self._array_list)

    def _layers(self) -> list[_Layer]:
        return [layer for a in self._array_list for layer in a.layers_list]

    def init_state(self, batch_size: int) -> State:
        p = next(self.parameters())
        return tuple(
            torch.zeros(batch_size, layer.channels, layer.pad, dtype=p.dtype, device=p.device)
            for layer in self._layers()
        )

    def step(self, x: Tensor, knobs: Tensor, state: State) -> tuple[Tensor, State]:
        cond = torch.cat([x, broadcast_knobs(knobs, x.shape[2])], dim=1) if self.n_knobs else x
        films: list[Tensor | None] = [None] * len(self._film_sizes)
        if self.film is not None:
            films = list(self.film_affine(knobs)[:, :, None].split(self._film_sizes, dim=1))
        new_state: list[Tensor] = []
        y = x
        head: Tensor | None = None
        i = 0
        for array in self._array_list:
            h = array.rechannel(y)
            for layer in array.layers_list:
                h, a, past = layer(h, cond, state[i], films[i])
                new_state.append(past)
                head = a if head is None else head + a
                i += 1
            head = array.head_rechannel(head)
            y = h
        assert head is not None
        out = self.head_scale * head
        gain = films[-1]
        return (out if gain is None else out * gain), tuple(new_state)

    def film_affine(self, knobs: Tensor) -> Tensor:
        """``(batch, n_knobs)`` normalised knobs -> ``(batch, sum(film sizes))`` FiLM terms:
        per layer ``mid`` scales then ``mid`` shifts, then the output gains."""
        assert self.film is not None
        terms = self.film(knobs)
        if self.film_linear is not None:
            terms = terms + self.film_linear(knobs)
        is_scale = self.film_is_scale
        if self.film_log:  # exp of the scale terms only: a large shift must not overflow
            return torch.where(is_scale, torch.exp(terms.masked_fill(~is_scale, 0.0)), terms)
        return torch.where(is_scale, 1 + terms, terms)


def film_scale_mask(sizes: list[int]) -> list[bool]:
    """Which FiLM terms are scales (per layer: the first half; the output gains: all)."""
    mask: list[bool] = []
    for size in sizes[:-1]:
        mask += [True] * (size // 2) + [False] * (size // 2)
    return mask + [True] * sizes[-1]
