"""CRAFx and CWAFx: the convolutional recurrent and convolutional WaveNet audio-effects
networks of Martínez Ramírez (2020), thesis Ch. 6-7 (MODELS.md §4-5, code ``Models.py:157-225``
and ``403-463``).

Both see the current frame with ``k = 4`` context frames either side (frame ``N`` = 4,096,
hop 2,048; frames before the stream start are silence) and share front-end and back-end
(channels-first, ``C`` = 32 filters, ``S`` = 64 latent steps)::

    per frame j = -4..4:   R_j = Conv1D(x_j); Z_j = MaxPool(softplus(Conv1D-Local(|R_j|)))
    latent:                Zhat (C, S) from the 9 Z_j            (below)
    X2hat = R_0 * Unpool(Zhat)                                    (C, N)
    X1hat' = SAAF(Dense 32-16-16-32 (tanh, tanh, tanh, linear)(X2hat))
    X0hat = X1hat' * SE(X1hat') + X2hat
    y = deConv1D(X0hat)                                           tied to the first Conv1D

* CRAFx latent: the 9 Z_j stacked on the channel axis (288, S), block j = frame t + j - 4,
  through Bi-LSTMs of 64, 32 and 16 units per direction (tanh, tanh, linear; dropout and
  recurrent dropout 0.1) and a SAAF. 275,073 parameters (Table C.1).
* CWAFx latent: the 9 Z_j concatenated along time (C, 9S), frame t - 4 first, through a
  WaveNet with 'same' padding (initial k=3 conv, 14 gated blocks d = 1..64 twice, relu of
  the summed skips, two k=3 convs with relu between) and a tanh FC along time 9S -> S.
  205,057 parameters.

Loss: waveform MAE; pretraining, supervised training, fine-tuning at lr/4.
Latency ``N - 1 + kH`` = 12,287 samples (768 ms at 16 kHz).
"""

from __future__ import annotations

from abc import abstractmethod
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from fxclone.models.afx_base import AFxModel, FrontEndConfig
from fxclone.models.afx_blocks import (
    DNNSAAF,
    SAAF,
    GatedStack,
    SqueezeExcite,
    glorot_conv,
    same_pad,
    time_dense,
    unpool,
)
from fxclone.models.afx_lstm import stack_lstms


@dataclass(frozen=True)
class ContextConfig(FrontEndConfig):
    """Front-end config plus the context frames ``k`` each side, the hidden widths of the
    back-end's DNN-SAAF, the SE ratio and the LSTMs' dropout."""

    context_frames: int = 4
    dnn_units: tuple[int, ...] = (32, 16, 16)
    se_ratio: int = 16
    dropout: float = 0.1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.context_frames < 0 or self.se_ratio < 1 or not 0.0 <= self.dropout < 1.0:
            raise ValueError("context_frames >= 0, se_ratio >= 1 and 0 <= dropout < 1 needed")
        if not self.dnn_units or min(self.dnn_units) < 1:
            raise ValueError("dnn_units must hold at least one positive width")


@dataclass(frozen=True)
class CRAFxConfig(ContextConfig):
    """CRAFx: units per direction of the three Bi-LSTMs (the last: filters / 2)."""

    lstm_units: tuple[int, ...] = (64, 32, 16)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.lstm_units or min(self.lstm_units) < 1:
            raise ValueError("lstm_units must hold positive unit counts")
        if 2 * self.lstm_units[-1] != self.filters:
            raise ValueError(
                f"the last Bi-LSTM must have filters / 2 = {self.filters / 2:g} units per "
                f"direction, not {self.lstm_units[-1:]}"
            )


@dataclass(frozen=True)
class CWAFxConfig(ContextConfig):
    """CWAFx: the latent WaveNet's residual/skip channels, kernel, one stack's dilations,
    stacks and the widths of its two final convs (the last: filters)."""

    wavenet_channels: int = 32
    wavenet_kernel_size: int = 3
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    stacks: int = 2
    final: tuple[int, int] = (32, 32)

    def __post_init__(self) -> None:
        super().__post_init__()
        if len(self.final) != 2 or self.final[-1] != self.filters:
            raise ValueError(f"final must hold two widths, the last filters = {self.filters}")
        if not self.dilations or min(self.wavenet_channels, self.stacks, *self.dilations) < 1:
            raise ValueError("wavenet_channels, stacks and dilations must be positive")
        if self.wavenet_kernel_size < 1 or self.wavenet_kernel_size % 2 == 0:
            raise ValueError("wavenet_kernel_size must be odd, so that 'same' padding is centred")


def context_windows(z: Tensor, k: int) -> Tensor:
    """Latents of every frame ``(B, F, C, S)`` -> for each output frame its ``2k + 1`` frames
    ``(B * (F - 2k), 2k + 1, C, S)``, oldest first."""
    windows = z.unfold(1, 2 * k + 1, 1)  # (B, F - 2k, C, S, 2k + 1)
    return windows.permute(0, 1, 4, 2, 3).flatten(0, 1)


class ContextModel(AFxModel):
    """CRAFx/CWAFx: front-end over the context frames, a latent network, the shared back-end."""

    def __init__(self, config: ContextConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.dnn = DNNSAAF(config.filters, config.dnn_units, "tanh")
        self.se = SqueezeExcite(config.filters, config.se_ratio)

    @abstractmethod
    def latent(self, context: Tensor) -> Tensor:
        """``(N, 2k + 1, C, S)`` -> ``Zhat (N, C, S)``."""

    def frame_net(self, frames: Tensor, knobs: Tensor) -> Tensor:
        r, z = self.encode(frames, knobs)
        zhat = self.latent(context_windows(z, self.context_frames))
        x2 = r * unpool(zhat, self.pool)
        x1 = self.dnn(x2)
        return self.decode(x1 * self.se(x1) + x2, frames.shape[0])


class CRAFx(ContextModel):
    """Convolutional recurrent audio-effects network (thesis Table 6.1)."""

    family = "crafx"
    config_class = CRAFxConfig

    def __init__(self, config: CRAFxConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        n = len(config.lstm_units)
        width = (2 * config.context_frames + 1) * config.filters
        acts = ("tanh",) * (n - 1) + ("linear",)
        self.lstms = stack_lstms(width, config.lstm_units, acts, config.dropout)
        self.latent_saaf = SAAF(config.filters)

    def latent(self, context: Tensor) -> Tensor:
        seq = context.flatten(1, 2).transpose(1, 2)  # (N, S, 9C): block j = frame t + j - k
        return self.latent_saaf(self.lstms(seq).transpose(1, 2))


class CWAFx(ContextModel):
    """Convolutional and WaveNet audio-effects network (thesis Table 6.2)."""

    family = "cwafx"
    config_class = CWAFxConfig

    def __init__(self, config: CWAFxConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        c, k = config.wavenet_channels, config.wavenet_kernel_size
        self.wn_input = glorot_conv(config.filters, c, k)
        self.wn_stack = GatedStack(c, k, config.dilations * config.stacks)
        self.wn_post = torch.nn.ModuleList(
            [glorot_conv(c, config.final[0], 3), glorot_conv(config.final[0], config.final[1], 3)]
        )
        steps = config.latent_steps
        self.wn_fc = time_dense((2 * config.context_frames + 1) * steps, steps)

    def latent(self, context: Tensor) -> Tensor:
        seq = context.transpose(1, 2).flatten(2)  # (N, C, 9S), frame t - k first
        h = self.wn_input(same_pad(seq, self.config.wavenet_kernel_size))
        s = torch.relu(self.wn_stack(h))
        s = self.wn_post[1](same_pad(torch.relu(self.wn_post[0](same_pad(s, 3))), 3))
        return torch.tanh(self.wn_fc(s))


__all__ = [
    "CRAFx",
    "CRAFxConfig",
    "CWAFx",
    "CWAFxConfig",
    "ContextConfig",
    "ContextModel",
    "context_windows",
]
