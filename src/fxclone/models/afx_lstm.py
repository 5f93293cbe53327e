"""The LSTM of Keras 2.2.4, as the thesis models use it (MODELS.md §0.8).

Gates ``i, f, c, o``; the gate function is ``hard_sigmoid(x) = clip(0.2 x + 0.5, 0, 1)``;
``activation`` (tanh, linear or relu) is both the candidate's and the one in
``h = o * act(c)``. One bias per gate, so a layer has ``4 (u (in + u) + u)`` parameters
(PyTorch's ``nn.LSTM`` would add ``4u`` more and has no hard_sigmoid). Weights in Keras layout:
``kernel (in, 4u)``, ``recurrent_kernel (u, 4u)``, ``bias (4u,)``, initialised glorot-uniform,
orthogonal and zeros with the forget bias at 1.

Dropout is Keras' variational dropout: in training, one mask per gate over the input and one
per gate over ``h``, drawn once per sequence and scaled by ``1 / (1 - p)``.

A bidirectional layer (Keras ``Bidirectional``, merge ``concat``) holds both directions'
weights stacked on a leading axis and runs them in one loop; the output is
``[forward, backward]`` on the feature axis.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

_ACTIVATIONS = {"tanh": torch.tanh, "linear": lambda v: v, "relu": torch.relu}


def hard_sigmoid(x: Tensor) -> Tensor:
    """Keras' ``hard_sigmoid``: ``clip(0.2 x + 0.5, 0, 1)``."""
    return torch.clamp(0.2 * x + 0.5, 0.0, 1.0)


class KerasLSTM(nn.Module):
    """One (optionally bidirectional) Keras LSTM layer over ``(batch, steps, features)``.

    Returns the whole output sequence ``(batch, steps, units * directions)``, starting from a
    zero state (Keras ``stateful=False``)."""

    def __init__(
        self,
        input_size: int,
        units: int,
        *,
        activation: str = "tanh",
        bidirectional: bool = False,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}")
        if not (0.0 <= dropout < 1.0 and 0.0 <= recurrent_dropout < 1.0):
            raise ValueError("dropout rates must lie in [0, 1)")
        d = 2 if bidirectional else 1
        self.units, self.directions, self.activation = units, d, activation
        self.dropout, self.recurrent_dropout = float(dropout), float(recurrent_dropout)
        self.kernel = nn.Parameter(torch.empty(d, input_size, 4 * units))
        self.recurrent_kernel = nn.Parameter(torch.empty(d, units, 4 * units))
        self.bias = nn.Parameter(torch.zeros(d, 4 * units))
        with torch.no_grad():
            limit = (6.0 / (input_size + 4 * units)) ** 0.5
            self.kernel.uniform_(-limit, limit)
            for i in range(d):
                nn.init.orthogonal_(self.recurrent_kernel[i])
            self.bias[:, units : 2 * units] = 1.0

    def _masks(self, shape: tuple[int, ...], rate: float, like: Tensor) -> Tensor | None:
        if not self.training or rate == 0.0:
            return None
        keep = torch.full(shape, 1.0 - rate, dtype=like.dtype, device=like.device)
        return torch.bernoulli(keep) / (1.0 - rate)

    def forward(self, x: Tensor) -> Tensor:
        """``x (batch, steps, features)`` -> ``(batch, steps, directions * units)``."""
        b, steps, _ = x.shape
        d, u = self.directions, self.units
        act = _ACTIVATIONS[self.activation]
        seqs = torch.stack([x, x.flip(1)]) if d == 2 else x[None]  # (D, B, T, in)
        in_mask = self._masks((d, 4, b, 1, x.shape[2]), self.dropout, x)
        if in_mask is None:
            proj = torch.matmul(seqs, self.kernel[:, None])  # (D, B, T, 4u)
        else:  # a different input mask per gate: one product per gate
            w = self.kernel.view(d, -1, 4, u)
            proj = torch.einsum("dgbti,digu->dbtgu", seqs[:, None] * in_mask, w)
            proj = proj.reshape(d, b, steps, 4 * u)
        proj = proj + self.bias[:, None, None]
        rec_mask = self._masks((d, 4, b, u), self.recurrent_dropout, x)
        w_rec = self.recurrent_kernel
        h = x.new_zeros(d, b, u)
        c = x.new_zeros(d, b, u)
        outs = []
        for t in range(steps):
            if rec_mask is None:
                rec = torch.bmm(h, w_rec)
            else:
                rec = torch.einsum("dgbu,dugv->dbgv", h[:, None] * rec_mask, w_rec.view(d, u, 4, u))
                rec = rec.reshape(d, b, 4 * u)
            z = proj[:, :, t] + rec
            i, f, g, o = z.split(u, dim=2)
            c = hard_sigmoid(f) * c + hard_sigmoid(i) * act(g)
            h = hard_sigmoid(o) * act(c)
            outs.append(h)
        out = torch.stack(outs, dim=2)  # (D, B, T, u)
        if d == 1:
            return out[0]
        return torch.cat([out[0], out[1].flip(1)], dim=2)


def stack_lstms(
    input_size: int,
    units: tuple[int, ...],
    activations: tuple[str, ...],
    dropout: float,
) -> nn.Sequential:
    """Bidirectional Keras LSTMs in series (units per direction; each doubles the width)."""
    layers = []
    for n, act in zip(units, activations, strict=True):
        layers.append(
            KerasLSTM(
                input_size,
                n,
                activation=act,
                bidirectional=True,
                dropout=dropout,
                recurrent_dropout=dropout,
            )
        )
        input_size = 2 * n
    return nn.Sequential(*layers)


__all__ = ["KerasLSTM", "hard_sigmoid", "stack_lstms"]
