"""CEQ and CAFx: the convolutional EQ and audio-effects networks of Martínez Ramírez (2020),
thesis Ch. 4-5 and 7 (MODELS.md §1-2, layer tables and Table C.1 counts there).

Per frame of ``N`` samples (channels-first shapes, ``C`` = filters = 128, ``S`` = 64)::

    R = X1 = Conv1D(x)                       (C, N)    k=64, the residual
    X2 = softplus(Conv1D-Local(|X1|))        (C, N)    depthwise k=128
    Z = MaxPool(X2)                          (C, S)    pool N/64
    Zhat = softplus(Dense(softplus(Dense-Local(Z))))   one 64x64 FC per channel along time,
                                                       then one FC along time shared by all
    X1hat = R * Unpool(Zhat)                 (C, N)
    CEQ:  y = deConv1D(X1hat)                          (tied to Conv1D, MODELS.md §0.4)
    CAFx: y = deConv1D(SAAF(DNN(X1hat)))               Dense over channels 128-64-64-64-128,
                                                       relu (the code's five layers)

CEQ (Ch. 4): N = 1,024, hop 256, Hann on the input frames (the thesis windows input and
target; the output frames are then overlap-added without a second window); loss
``1.0 KL + 1.0 MSE + 0.1 MAE`` on 1,024-point spectra (:class:`CEQLoss`); pretraining then
supervised training, 100 epochs each (no fine-tuning stage: T:L3219-3258).
CAFx (the code and Ch. 7): N = 4,096, hop 2,048, rectangular input frames, Hann overlap-add;
waveform MAE; pretraining, supervised, fine-tuning at lr/4.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fxclone.models.afx_base import AFxModel, FrontEndConfig
from fxclone.models.afx_blocks import DNNSAAF, glorot_uniform_, time_dense, unpool
from fxclone.models.afx_losses import CEQLoss


@dataclass(frozen=True)
class CEQConfig(FrontEndConfig):
    """CEQ: Ch. 4 framing (N = 1,024, hop 256) and 128 filters."""

    frame_samples: int = 1024
    hop_samples: int = 256
    filters: int = 128


@dataclass(frozen=True)
class CAFxConfig(FrontEndConfig):
    """CAFx: the code's framing (N = 4,096, hop 2,048), 128 filters and the widths of the
    hidden dense layers over channels (the last layer returns to ``filters``)."""

    filters: int = 128
    hidden: tuple[int, ...] = (128, 64, 64, 64)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.hidden or min(self.hidden) < 1:
            raise ValueError("hidden must hold at least one positive width")


class LocalDense(nn.Module):
    """One FC layer per channel along time (the thesis' Dense-Local):
    ``(N, C, S_in) -> (N, C, S_out)`` with ``C`` separate ``S_in x S_out`` matrices."""

    def __init__(self, channels: int, steps_in: int, steps_out: int) -> None:
        super().__init__()
        w = torch.empty(channels, steps_in, steps_out)
        self.weight = nn.Parameter(glorot_uniform_(w, steps_in, steps_out))
        self.bias = nn.Parameter(torch.zeros(channels, steps_out))

    def forward(self, z: Tensor) -> Tensor:
        return torch.einsum("ncs,cst->nct", z, self.weight) + self.bias


class CEQ(AFxModel):
    """Convolutional EQ network (thesis Ch. 4, Table 4.1; MODELS.md §1): 561,473 parameters."""

    family = "ceq"
    config_class: ClassVar[type] = CEQConfig
    ANALYSIS_WINDOW = True
    STAGE_BUDGETS = (0.5, 0.5, 0.0)

    def __init__(self, config: FrontEndConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        c, s = config.filters, config.latent_steps
        self.local_dense = LocalDense(c, s, s)
        self.dense = time_dense(s, s)

    def back_end(self, x1: Tensor) -> Tensor:
        """What happens to ``X1hat`` before the deConv1D (nothing in CEQ)."""
        return x1

    def frame_net(self, frames: Tensor, knobs: Tensor) -> Tensor:
        r, z = self.encode(frames, knobs)
        z = z.flatten(0, 1)
        zhat = F.softplus(self.dense(F.softplus(self.local_dense(z))))
        x1 = r * unpool(zhat, self.pool)
        return self.decode(self.back_end(x1), frames.shape[0])

    def supervised_loss(self) -> nn.Module:
        return CEQLoss(self.frame_samples, self.hop_samples)


class CAFx(CEQ):
    """Convolutional audio-effects network (thesis Ch. 5/7, code ``Models.py:76-128``;
    MODELS.md §2): CEQ's front-end and latent DNN plus a DNN-SAAF back-end; 604,545
    parameters."""

    family = "cafx"
    config_class = CAFxConfig
    ANALYSIS_WINDOW = False
    STAGE_BUDGETS = (0.25, 0.5, 0.25)

    def __init__(self, config: CAFxConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.dnn = DNNSAAF(config.filters, config.hidden, "relu")

    def back_end(self, x1: Tensor) -> Tensor:
        return self.dnn(x1)

    def supervised_loss(self) -> nn.Module:
        return AFxModel.supervised_loss(self)


__all__ = ["CAFx", "CAFxConfig", "CEQ", "CEQConfig", "LocalDense"]
