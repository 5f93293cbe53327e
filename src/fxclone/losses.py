"""Training losses (torch). Every loss maps ``(estimate, target)`` of shape
``(batch, channels, samples)`` to a scalar tensor.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def pre_emphasis(x: Tensor, coeff: float) -> Tensor:
    """First-order pre-emphasis ``y[n] = x[n] - coeff * x[n-1]`` along the last axis."""
    if coeff == 0.0:
        return x
    return torch.cat([x[..., :1], x[..., 1:] - coeff * x[..., :-1]], dim=-1)


class ESRLoss(nn.Module):
    """Error-to-signal ratio ``sum((t - y)^2) / sum(t^2)`` (unitless), optionally pre-emphasised.

    Pre-emphasis (Wright et al. 2019, coefficient 0.95) weights high frequencies, where
    distortion products live and where plain ESR is least sensitive.
    """

    def __init__(self, pre_emphasis: float = 0.0, eps: float = 1e-8) -> None:
        super().__init__()
        self.coeff = float(pre_emphasis)
        self.eps = eps

    def forward(self, estimate: Tensor, target: Tensor) -> Tensor:
        y = pre_emphasis(estimate, self.coeff)
        t = pre_emphasis(target, self.coeff)
        return torch.sum((t - y) ** 2) / (torch.sum(t**2) + self.eps)


class TrainingLoss(nn.Module):
    """Pre-emphasised ESR plus an optional multi-resolution STFT term (auraloss)."""

    def __init__(self, pre_emphasis: float = 0.95, mrstft_weight: float = 0.0) -> None:
        super().__init__()
        self.esr = ESRLoss(pre_emphasis)
        self.mrstft_weight = float(mrstft_weight)
        self.mrstft: nn.Module | None = None
        if self.mrstft_weight > 0:
            import auraloss

            self.mrstft = auraloss.freq.MultiResolutionSTFTLoss()

    def forward(self, estimate: Tensor, target: Tensor) -> Tensor:
        loss = self.esr(estimate, target)
        if self.mrstft is not None:
            loss = loss + self.mrstft_weight * self.mrstft(estimate, target)
        return loss
