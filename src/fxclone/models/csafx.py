"""CSAFx: the convolutional recurrent and sparse-filtering network of Martínez Ramírez (2020)
for plate and spring reverb, thesis Ch. 8 (MODELS.md §6; code ``PSR Models.py:153-270``,
``model_1``, whose topology Table C.1 counts: 410,977 parameters).

Per output frame (channels-first, ``C`` = 32, ``S`` = 64, ``N`` = 4,096, ``P`` = 512)::

    front-end over the 9 frames t-4..t+4, latents stacked on channels   (288, S)
    shared = Bi-LSTM 64 (tanh)                                          (128, S)
    Zs = SAAF(Bi-LSTM 16, linear (Bi-LSTM 32, tanh (shared)))           (C, S)  SFIR branch
    Ze = SAAF(Bi-LSTM 16, linear (shared))                              (C, S)  envelopes
    coeff = tanh(Dense_S->P(Zs)), idx = sigmoid(Dense_S->P(Zs))         (C, P)  along time
    h_c[8m + floor(7 idx[c, m])] = coeff[c, m], other taps 0            (C, N)  sparse FIR
    X5 = correlate(R, h) per channel, 'same' (tap N/2 - 1 is lag 0)     (C, N)
    X3 = SAAF(X5) * Unpool(Ze)
    X2 = DNN-SAAF(X3)                                                   Dense 32-16-16-32
    X0 = SE-LSTM_1(X3) * X3 + SE-LSTM_2(X2) * X2
    y = deConv1D(X0) * Hann(N)                                          overlap-added at hop H

The correlation runs by FFT (one per frame and channel), which equals the direct sum to float
precision; the code's grouped conv1d would cost N^2 per channel.

Sparse-FIR positions (MODELS.md §6, item 5): the thesis back-propagates through the floor with
an identity gradient; in the code the positions' Dense layer gets no gradient at all. Here,
with ``straight_through`` (default), the forward pass uses the integer taps and the backward
pass the gradient of the same filter with each coefficient split linearly between the two
taps around ``7 idx``; with ``straight_through = False`` the positions get no gradient, as in
the code.

Loss: :class:`CSAFxLoss` in supervised training and fine-tuning (lr/4); pretraining as the
other front-end models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from fxclone.models.afx_base import AFxModel
from fxclone.models.afx_blocks import DNNSAAF, SAAF, SqueezeExcite, correlate, time_dense, unpool
from fxclone.models.afx_losses import CSAFxLoss
from fxclone.models.afx_lstm import stack_lstms
from fxclone.models.crafx import ContextConfig, context_windows


@dataclass(frozen=True)
class CSAFxConfig(ContextConfig):
    """CSAFx: units per direction of the shared Bi-LSTM, of the SFIR branch's two and of the
    envelope branch's one (the last of each: filters / 2), sparse-FIR slots per frame (the
    code's 512 = 2,000 per second at 16 kHz) and the position gradient."""

    shared_units: int = 64
    sfir_units: tuple[int, ...] = (32, 16)
    envelope_units: int = 16
    sfir_taps: int = 512
    straight_through: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.sfir_units or min(self.shared_units, *self.sfir_units) < 1:
            raise ValueError("shared_units and sfir_units must be positive")
        if 2 * self.sfir_units[-1] != self.filters or 2 * self.envelope_units != self.filters:
            raise ValueError("the last Bi-LSTM of each branch needs filters / 2 units")
        if self.sfir_taps < 1 or self.frame_samples % self.sfir_taps:
            raise ValueError("sfir_taps must divide frame_samples")
        if self.frame_samples // self.sfir_taps < 2:
            raise ValueError("sparse-FIR slots need at least 2 samples each")


def sparse_fir(coeff: Tensor, idx: Tensor, frame_samples: int, straight_through: bool) -> Tensor:
    """Sparse FIR filters from coefficients and positions ``(N, C, P)`` -> ``(N, C, frame)``:
    slot ``m`` holds ``coeff`` at tap ``m T + floor((T - 1) idx)``, ``T = frame / P``."""
    slot = frame_samples // coeff.shape[2]
    starts = slot * torch.arange(coeff.shape[2], device=coeff.device)
    u = (slot - 1) * idx
    taps = starts + torch.floor(u).long().detach()
    h = coeff.new_zeros(*coeff.shape[:2], frame_samples).scatter(2, taps, coeff)
    if not (straight_through and torch.is_grad_enabled()):
        return h
    # Backward only: the filter with each coefficient split between its two nearest taps,
    # differentiable in the position; its forward value is subtracted out exactly.
    low = torch.clamp(torch.floor(u.detach()), max=slot - 2)
    frac = u - low
    soft = coeff.new_zeros(h.shape)
    soft = soft.scatter_add(2, starts + low.long(), coeff * (1 - frac))
    soft = soft.scatter_add(2, starts + low.long() + 1, coeff * frac)
    return h + (soft - soft.detach())


class CSAFx(AFxModel):
    """Convolutional recurrent and sparse filtering network (thesis Tables 8.1-8.2)."""

    family = "csafx"
    config_class = CSAFxConfig

    def __init__(self, config: CSAFxConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        c, s, d = config.filters, config.latent_steps, config.dropout
        width = (2 * config.context_frames + 1) * c
        self.shared = stack_lstms(width, (config.shared_units,), ("tanh",), d)
        n = len(config.sfir_units)
        acts = ("tanh",) * (n - 1) + ("linear",)
        self.sfir_lstms = stack_lstms(2 * config.shared_units, config.sfir_units, acts, d)
        self.sfir_saaf = SAAF(c)
        self.envelope_lstm = stack_lstms(
            2 * config.shared_units, (config.envelope_units,), ("linear",), d
        )
        self.envelope_saaf = SAAF(c)
        self.coeff = time_dense(s, config.sfir_taps)
        nn.init.uniform_(self.coeff.weight, -1.0, 1.0)
        self.position = time_dense(s, config.sfir_taps)
        self.filtered_saaf = SAAF(c)
        self.dnn = DNNSAAF(c, config.dnn_units, "tanh")
        self.se_direct = SqueezeExcite(c, config.se_ratio, lstm=True, dropout=d)
        self.se_dnn = SqueezeExcite(c, config.se_ratio, lstm=True, dropout=d)

    def frame_net(self, frames: Tensor, knobs: Tensor) -> Tensor:
        r, z = self.encode(frames, knobs)
        seq = context_windows(z, self.context_frames).flatten(1, 2).transpose(1, 2)
        shared = self.shared(seq)  # (N, S, 128)
        zs = self.sfir_saaf(self.sfir_lstms(shared).transpose(1, 2))  # (N, C, S)
        ze = self.envelope_saaf(self.envelope_lstm(shared).transpose(1, 2))
        h = sparse_fir(
            torch.tanh(self.coeff(zs)),
            torch.sigmoid(self.position(zs)),
            self.frame_samples,
            self.config.straight_through,
        )
        x5 = correlate(r, h, self.frame_samples // 2 - 1)
        x3 = self.filtered_saaf(x5) * unpool(ze, self.pool)
        x2 = self.dnn(x3)
        x0 = self.se_direct(x3) * x3 + self.se_dnn(x2) * x2
        return self.decode(x0, frames.shape[0])

    def supervised_loss(self) -> nn.Module:
        return CSAFxLoss(self.frame_samples, self.hop_samples)


__all__ = ["CSAFx", "CSAFxConfig", "sparse_fir"]
