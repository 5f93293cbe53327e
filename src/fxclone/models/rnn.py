"""Recurrent models: LSTM or GRU with a linear head and an optional input skip.

With ``skip=True`` the output is ``x + head(h)`` (Wright, Damskägg & Välimäki 2019), so the
network learns the difference from the dry signal; with ``skip=False`` it is NAM's LSTM
(one or more LSTM layers and a linear head). Knob values are concatenated to the input at
every sample. Streaming state: ``(h, c)`` for LSTM, ``(h,)`` for GRU, each
``(num_layers, batch, hidden_size)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from fxclone.models.base import EffectModel, State, broadcast_knobs, config_from_dict


@dataclass(frozen=True)
class RNNConfig:
    """Recurrent model: cell type, size, and whether the dry input is added to the output."""

    cell: str = "lstm"
    hidden_size: int = 32
    num_layers: int = 1
    skip: bool = True

    def __post_init__(self) -> None:
        if self.cell not in ("lstm", "gru"):
            raise ValueError(f"cell must be 'lstm' or 'gru', not {self.cell!r}")
        if self.hidden_size < 1 or self.num_layers < 1:
            raise ValueError("hidden_size and num_layers must be positive")

    @classmethod
    def from_dict(cls, data: dict) -> RNNConfig:
        return config_from_dict(cls, data, "recurrent config")


class RecurrentModel(EffectModel):
    """LSTM/GRU effect model with a linear output head."""

    family = "rnn"
    config_class = RNNConfig

    def __init__(self, config: RNNConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        rnn_class = nn.LSTM if config.cell == "lstm" else nn.GRU
        self.rnn = rnn_class(
            self.channels + self.n_knobs, config.hidden_size, config.num_layers, batch_first=True
        )
        self.head = nn.Linear(config.hidden_size, self.channels)
        self.skip = config.skip

    @property
    def receptive_field(self) -> int:
        """0: recurrent state makes the memory unbounded."""
        return 0

    def init_state(self, batch_size: int) -> State:
        p = next(self.parameters())
        shape = (self.config.num_layers, batch_size, self.config.hidden_size)
        n = 2 if self.config.cell == "lstm" else 1
        return tuple(torch.zeros(shape, dtype=p.dtype, device=p.device) for _ in range(n))

    def step(self, x: Tensor, knobs: Tensor, state: State) -> tuple[Tensor, State]:
        if x.shape[2] == 0:  # (PyTorch's recurrent layers refuse empty sequences)
            return x, state
        inp = torch.cat([x, broadcast_knobs(knobs, x.shape[2])], dim=1) if self.n_knobs else x
        seq = inp.transpose(1, 2)  # (B, T, C)
        if self.config.cell == "lstm":
            out, (h, c) = self.rnn(seq, (state[0], state[1]))
            new_state: State = (h, c)
        else:
            out, h = self.rnn(seq, state[0])
            new_state = (h,)
        y = self.head(out).transpose(1, 2)
        if self.skip:
            y = y + x
        return y, new_state
