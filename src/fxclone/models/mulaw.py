"""McCool's WaveNet idea (MODELS.md §2.3): predict the wet sample as one of 256 µ-law classes.

McCool planned a WaveNet whose output is a one-hot vector over µ-law-encoded sample values
(M4:121-127, 178); his attempt learnt nothing overnight (M4:184, 470) and the report gives no
layers, µ or loss. We fill the gaps with van den Oord et al.'s WaveNet: gated dilated causal
convolutions (kernel 2, dilations 1..512 twice), residual and skip 1x1 convolutions, a
ReLU-1x1-ReLU-1x1 head giving 256 logits per sample, trained with cross-entropy against the
µ-law class of the wet sample, µ = 255 (the usual 8-bit value; the report gives the µ-law
formula, M4:125, but not µ, and judged 8 bits too coarse for music, M4:184).

Two modes (``autoregressive`` in the config):

* non-autoregressive (default): the input channels are the dry audio and the knob values, so
  the model is a causal convolutional net with a classifier head; it trains in parallel and
  streams block by block.
* autoregressive: WaveNet proper, conditioned on the dry input; the previous output sample is
  one more input channel. Training feeds the previous *wet* samples (teacher forcing, through
  the stage forward's ``target``); ``forward``/``step`` generate sample by sample, feeding
  each output back.

Audio output: the expectation of the decoded value under the predicted distribution,
``sum_k p_k decode(k)``, rather than the argmax class. It is the estimate with the least
expected squared error, it is smooth in the weights (so the model also trains with an audio
loss), and it is not limited to the 256 levels whose coarseness McCool objected to (M4:184).
``decode="argmax"`` gives the most likely class instead.

Streaming state: for every layer, its last ``(kernel_size - 1) * dilation`` inputs; in
autoregressive mode, first the previous output sample ``(batch, channels, 1)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fxclone.models.base import EffectModel, Stage, State, broadcast_knobs, config_from_dict

_DILATIONS = tuple(2**i for i in range(10)) * 2


def mulaw_encode(x: Tensor, classes: int = 256) -> Tensor:
    """Audio in [-1, 1] (clamped) -> µ-law class indices in ``[0, classes)``, µ = classes - 1:
    ``F(x) = sgn(x) ln(1 + µ|x|) / ln(1 + µ)`` (M4:125) quantised to ``classes`` levels."""
    mu = classes - 1
    x = x.clamp(-1.0, 1.0)
    f = torch.sign(x) * torch.log1p(mu * x.abs()) / math.log1p(mu)
    return torch.round((f + 1) / 2 * mu).long()


def mulaw_decode(k: Tensor, classes: int = 256) -> Tensor:
    """Class indices -> audio: the inverse companding of the class centres."""
    mu = classes - 1
    f = 2 * k.to(torch.float32) / mu - 1
    return torch.sign(f) * torch.expm1(f.abs() * math.log1p(mu)) / mu


def mulaw_cross_entropy(logits: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy of logits ``(batch, classes, samples)`` (or ``(batch, classes, channels,
    samples)``) against the µ-law classes of the target audio ``(batch, channels, samples)``."""
    classes = mulaw_encode(target, logits.shape[1])
    return F.cross_entropy(logits, classes[:, 0] if logits.ndim == 3 else classes)


@dataclass(frozen=True)
class MuLawConfig:
    """Gated WaveNet with a µ-law classifier head (MODELS.md §2.3; sizes are our choices)."""

    classes: int = 256
    residual_channels: int = 32
    skip_channels: int = 64
    kernel_size: int = 2
    dilations: tuple[int, ...] = _DILATIONS
    autoregressive: bool = False
    decode: str = "expectation"

    def __post_init__(self) -> None:
        if self.classes < 2 or min(self.residual_channels, self.skip_channels) < 1:
            raise ValueError("classes must be >= 2 and the channel counts positive")
        if self.kernel_size < 1 or not self.dilations or min(self.dilations) < 1:
            raise ValueError("kernel_size and every dilation must be positive")
        if self.decode not in ("expectation", "argmax"):
            raise ValueError(f"decode must be 'expectation' or 'argmax', not {self.decode!r}")

    @classmethod
    def from_dict(cls, data: dict) -> MuLawConfig:
        return config_from_dict(cls, data, "µ-law WaveNet config")


class _GatedLayer(nn.Module):
    """``a = tanh(W_f * h) . sigmoid(W_g * h)``; skip ``1x1(a)``; residual ``h + 1x1(a)``."""

    def __init__(self, channels: int, skip: int, kernel: int, dilation: int, last: bool):
        super().__init__()
        self.conv = nn.Conv1d(channels, 2 * channels, kernel, dilation=dilation)
        self.skip = nn.Conv1d(channels, skip, 1)
        # The last layer's residual output feeds nothing, so it has no residual conv.
        self.res = None if last else nn.Conv1d(channels, channels, 1)
        self.channels, self.pad = channels, (kernel - 1) * dilation

    def forward(self, h: Tensor, past: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """h ``(B, R, T)``, past ``(B, R, pad)`` -> next h, skip ``(B, S, T)``, new past."""
        full = torch.cat([past, h], dim=2)
        z = self.conv(full)
        a = torch.tanh(z[:, : self.channels]) * torch.sigmoid(z[:, self.channels :])
        nxt = h if self.res is None else h + self.res(a)
        return nxt, self.skip(a), full[:, :, full.shape[2] - self.pad :]

    def matrices(self) -> tuple[Tensor, ...]:
        """The convolutions as matrices for :func:`_frame`: conv ``(2R, R * k)`` and bias,
        skip ``(S, R)`` and bias, residual ``(R, R)`` and bias (absent in the last layer)."""
        mats: list[Tensor] = []
        convs = [self.conv, self.skip] + ([] if self.res is None else [self.res])
        for conv in convs:
            assert conv.bias is not None
            mats += [conv.weight.flatten(1), conv.bias]
        return tuple(mats)


def _frame(
    h: Tensor, past: Tensor, dilation: int, mats: tuple[Tensor, ...]
) -> tuple[Tensor, Tensor, Tensor]:
    """:meth:`_GatedLayer.forward` for one time step, h ``(B, R)``: the convolutions as matrix
    products on the k taps, a fraction of the operations of a length-1 convolution."""
    full = torch.cat([past, h[:, :, None]], dim=2)
    z = F.linear(full[:, :, ::dilation].flatten(1), mats[0], mats[1])  # taps in-major
    a = z[:, : h.shape[1]].tanh() * z[:, h.shape[1] :].sigmoid()
    if len(mats) > 4:
        h = h + F.linear(a, mats[4], mats[5])
    return h, F.linear(a, mats[2], mats[3]), full[:, :, 1:]


class MuLawWaveNet(EffectModel):
    """WaveNet classifying each output sample into µ-law classes; see the module docstring."""

    family = "mulaw-wavenet"
    config_class = MuLawConfig
    levels: Tensor  # (classes,) decoded class centres, a buffer

    def __init__(self, config: MuLawConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        inputs = self.channels * (2 if config.autoregressive else 1) + self.n_knobs
        r, s = config.residual_channels, config.skip_channels
        self.input = nn.Conv1d(inputs, r, 1)
        last = len(config.dilations) - 1
        layers = [
            _GatedLayer(r, s, config.kernel_size, d, i == last)
            for i, d in enumerate(config.dilations)
        ]
        self.layers = nn.ModuleList(layers)
        self._layers = layers  # typed view of the same modules
        out = config.classes * self.channels
        self.head = nn.Sequential(nn.ReLU(), nn.Conv1d(s, s, 1), nn.ReLU(), nn.Conv1d(s, out, 1))
        # Decoded class centres; a constant recomputed here, so it is not saved.
        levels = mulaw_decode(torch.arange(config.classes), config.classes)
        self.register_buffer("levels", levels, persistent=False)

    @property
    def receptive_field(self) -> int:
        if self.config.autoregressive:
            return 0  # the fed-back output makes the memory unbounded
        return 1 + (self.config.kernel_size - 1) * sum(self.config.dilations)

    def init_state(self, batch_size: int) -> State:
        p = next(self.parameters())
        pasts = tuple(
            torch.zeros(batch_size, lay.channels, lay.pad, dtype=p.dtype, device=p.device)
            for lay in self._layers
        )
        if not self.config.autoregressive:
            return pasts
        return (torch.zeros(batch_size, self.channels, 1, dtype=p.dtype, device=p.device), *pasts)

    def _run(self, inp: Tensor, pasts: State) -> tuple[Tensor, State]:
        """Input channels ``(B, inputs, T)`` -> logits ``(B, classes, [C,] T)``, new pasts."""
        h, skips, new = self.input(inp), None, []
        for layer, past in zip(self._layers, pasts, strict=True):
            h, skip, past = layer(h, past)
            skips = skip if skips is None else skips + skip
            new.append(past)
        logits = self.head(skips)
        b, t = logits.shape[0], logits.shape[2]
        if self.channels > 1:
            logits = logits.view(b, self.config.classes, self.channels, t)
        return logits, tuple(new)

    def _inputs(self, x: Tensor, knobs: Tensor, previous: Tensor | None) -> Tensor:
        parts = [x] if previous is None else [x, previous]
        if self.n_knobs:
            parts.append(broadcast_knobs(knobs, x.shape[2]))
        return torch.cat(parts, dim=1) if len(parts) > 1 else x

    def decode(self, logits: Tensor) -> Tensor:
        """Logits ``(B, classes, [C,] T)`` -> audio ``(B, C, T)`` (expectation or argmax)."""
        if logits.ndim == 3:
            logits = logits[:, :, None]
        if self.config.decode == "argmax":
            return self.levels[logits.argmax(dim=1)]
        return torch.softmax(logits, dim=1).movedim(1, -1) @ self.levels

    def logits(
        self, x: Tensor, knobs: Tensor | None = None, target: Tensor | None = None
    ) -> Tensor:
        """Offline logits ``(B, classes, T)`` (mono) for dry ``x`` ``(B, C, T)`` from silence.

        Autoregressive: the previous output samples are ``target`` delayed by one sample
        (teacher forcing); without a target, the model's own generated output."""
        knobs = self.check_inputs(x, knobs)
        state = self.init_state(x.shape[0])
        if not self.config.autoregressive:
            return self._run(self._inputs(x, knobs, None), state)[0]
        if target is None:
            target = self(x, knobs)
        previous = F.pad(target, (1, 0))[:, :, : x.shape[2]]
        return self._run(self._inputs(x, knobs, previous), state[1:])[0]

    def step(self, x: Tensor, knobs: Tensor, state: State) -> tuple[Tensor, State]:
        if x.shape[2] == 0:
            return x.new_zeros(x.shape), state
        if not self.config.autoregressive:
            logits, pasts = self._run(self._inputs(x, knobs, None), state)
            return self.decode(logits), pasts
        return self._generate(x, knobs, state)

    def _generate(self, x: Tensor, knobs: Tensor, state: State) -> tuple[Tensor, State]:
        """Autoregressive generation: each sample needs the one before it, so the layers run
        one frame at a time (:func:`_frame`), the same maths as ``_run``."""
        previous, pasts = state[0][:, :, 0], list(state[1:])
        b, c, classes = x.shape[0], self.channels, self.config.classes
        # The input 1x1 conv is linear: the dry and knob part for the whole block at once.
        fixed = self.input(self._inputs(x, knobs, torch.zeros_like(x)))
        w_previous = self.input.weight[:, c : 2 * c, 0]
        layers = [(layer.conv.dilation[0], layer.matrices()) for layer in self._layers]
        head = [(m.weight[:, :, 0], m.bias) for m in self.head if isinstance(m, nn.Conv1d)]
        outs = []
        for t in range(x.shape[2]):
            h = fixed[:, :, t] + F.linear(previous, w_previous)
            skips = None
            for i, (dilation, mats) in enumerate(layers):
                h, skip, pasts[i] = _frame(h, pasts[i], dilation, mats)
                skips = skip if skips is None else skips + skip
            assert skips is not None
            logits = F.linear(F.linear(skips.relu(), *head[0]).relu(), *head[1])
            previous = self.decode(logits.view(b, classes, c, 1))[:, :, 0]
            outs.append(previous)
        return torch.stack(outs, dim=2), (previous[:, :, None], *pasts)

    def training_stages(self) -> tuple[Stage, ...]:
        """One supervised stage on logits with cross-entropy (teacher-forced when AR)."""
        return (Stage(forward=_teacher_forced_logits, loss=mulaw_cross_entropy),)


def _teacher_forced_logits(model: Any, x: Tensor, knobs: Tensor, target: Tensor) -> Tensor:
    return model.logits(x, knobs, target)


__all__ = [
    "MuLawConfig",
    "MuLawWaveNet",
    "mulaw_cross_entropy",
    "mulaw_decode",
    "mulaw_encode",
]
