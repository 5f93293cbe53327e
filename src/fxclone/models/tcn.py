"""Steinmetz & Reiss' micro-TCN (AES 152, 2022; github csteinmetz1/micro-tcn), causal form.

A stack of blocks; block n (channels 32, kernel k, dilation ``growth ** (n % stack_size)``)::

    h = conv_k,d(x)              # no bias
    h = FiLM(BatchNorm(h), c)    # BatchNorm without affine, then g(c) * h + b(c) per channel
    y = PReLU(h) + res(x)        # res: 1x1 depthwise conv, no bias

and the output is ``tanh(1x1(h_last))``. The knob values ``p`` pass through an MLP
(n_knobs -> 16 -> 32 -> 32, ReLU after each) to the conditioning vector ``c``; every block maps
``c`` to its FiLM scale and shift with its own linear layer. Without knobs the blocks use
plain BatchNorm with affine weights, as micro-TCN does without parameters.

Causal: each conv is zero-padded on the left by ``(k - 1) * d`` (its streaming state), so the
model streams with zero latency. micro-TCN's causal mode instead runs 'valid' convolutions and
crops the residual with ``causal_crop``, which stops one sample short and so delays the
residual by one sample; here the residual is aligned with the conv's newest sample.

BatchNorm uses batch statistics while training and its running statistics in evaluation,
where the model is a fixed causal filter that streams exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from fxclone.models.base import EffectModel, State, config_from_dict

COND_WIDTH = 32  # micro-TCN's conditioning vector


@dataclass(frozen=True)
class TCNConfig:
    """micro-TCN: blocks, kernel, dilation growth, blocks per dilation cycle, channels.
    Defaults: uTCN-300 (4 blocks, growth 10, kernel 13; train.py of micro-tcn)."""

    blocks: int = 4
    kernel_size: int = 13
    dilation_growth: int = 10
    stack_size: int = 10
    channels: int = 32

    def __post_init__(self) -> None:
        if min(self.blocks, self.kernel_size, self.dilation_growth, self.stack_size) < 1:
            raise ValueError("blocks, kernel_size, dilation_growth and stack_size must be >= 1")
        if self.channels < 1:
            raise ValueError("channels must be positive")

    @property
    def dilations(self) -> tuple[int, ...]:
        return tuple(self.dilation_growth ** (n % self.stack_size) for n in range(self.blocks))

    @classmethod
    def from_dict(cls, data: dict) -> TCNConfig:
        return config_from_dict(cls, data, "TCN config")


class _Block(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, dilation: int, conditioned: bool):
        super().__init__()
        self.conv = nn.Conv1d(cin, cout, kernel, dilation=dilation, bias=False)
        self.norm = nn.BatchNorm1d(cout, affine=not conditioned)
        self.film = nn.Linear(COND_WIDTH, 2 * cout) if conditioned else None
        self.act = nn.PReLU(cout)
        groups = cin if cout % cin == 0 else 1  # depthwise where the channel counts allow
        self.res = nn.Conv1d(cin, cout, 1, groups=groups, bias=False)
        self.cin, self.pad = cin, (kernel - 1) * dilation

    def forward(self, x: Tensor, cond: Tensor | None, past: Tensor) -> tuple[Tensor, Tensor]:
        """x ``(B, cin, T)``, cond ``(B, 32)``, past ``(B, cin, pad)`` -> y, new past."""
        full = torch.cat([past, x], dim=2)
        h = self.norm(self.conv(full))
        if self.film is not None and cond is not None:
            g, b = self.film(cond)[:, :, None].chunk(2, dim=1)
            h = h * g + b
        return self.act(h) + self.res(x), full[:, :, full.shape[2] - self.pad :]


class TCN(EffectModel):
    """Causal micro-TCN with FiLM conditioning on the knobs; see the module docstring."""

    family = "tcn"
    config_class = TCNConfig

    def __init__(self, config: TCNConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        conditioned = self.n_knobs > 0
        self.cond = (
            nn.Sequential(
                nn.Linear(self.n_knobs, 16),
                nn.ReLU(),
                nn.Linear(16, COND_WIDTH),
                nn.ReLU(),
                nn.Linear(COND_WIDTH, COND_WIDTH),
                nn.ReLU(),
            )
            if conditioned
            else None
        )
        blocks, cin = [], self.channels
        for d in config.dilations:
            blocks.append(_Block(cin, config.channels, config.kernel_size, d, conditioned))
            cin = config.channels
        self.blocks = nn.ModuleList(blocks)
        self._blocks = blocks  # typed view of the same modules
        self.output = nn.Conv1d(config.channels, self.channels, 1)

    @property
    def receptive_field(self) -> int:
        return 1 + (self.config.kernel_size - 1) * sum(self.config.dilations)

    def init_state(self, batch_size: int) -> State:
        p = next(self.parameters())
        return tuple(
            torch.zeros(batch_size, b.cin, b.pad, dtype=p.dtype, device=p.device)
            for b in self._blocks
        )

    def step(self, x: Tensor, knobs: Tensor, state: State) -> tuple[Tensor, State]:
        if x.shape[2] == 0:
            return x.new_zeros(x.shape), state
        cond = self.cond(knobs) if self.cond is not None else None
        h, new = x, []
        for block, past in zip(self._blocks, state, strict=True):
            h, past = block(h, cond, past)
            new.append(past)
        return torch.tanh(self.output(h)), tuple(new)


__all__ = ["TCN", "TCNConfig"]
