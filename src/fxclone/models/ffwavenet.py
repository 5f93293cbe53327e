"""The feedforward WaveNet of Martínez Ramírez (2020), after Rethage et al. 2018 (thesis Ch. 5
and 7, code ``Models.py:241-399``; MODELS.md §3): the thesis' baseline for CAFx.

Frame-based and non-causal: each output frame of ``N`` samples comes from an input frame of
``N + 2m`` samples centred on it, with ``m = (k - 1) / 2 * (1 + stacks * sum(dilations))`` (511
for the Ch. 7 model: 4,096 out of 5,118 in)::

    h = Conv1D(x)                                      k=3, 1 -> 16, 'same'
    16 gated residual blocks, d = 1 .. 128 twice       'same'; skips cropped to the centre N
    s = relu(sum of skips)
    y = Conv1D_1x1(Conv1D_k3(relu(Conv1D_k3(s))))      16 -> 2048 -> 256 -> 1, 'same'

Output frames overlap-add with a Hann window at hop ``H`` (MODELS.md §0.1). Knob values enter
as constant extra input channels of the first conv. Loss: waveform MAE; no pretraining;
supervised training then fine-tuning at lr/4 (MODELS.md §3). 1,707,585 parameters for the
Ch. 7 model (Table C.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from fxclone.models.afx_blocks import GatedStack, glorot_conv, same_pad
from fxclone.models.afx_frames import FramedModel, check_framing
from fxclone.models.afx_losses import MAELoss
from fxclone.models.base import Stage, config_from_dict


@dataclass(frozen=True)
class FFWaveNetConfig:
    """Output frame and hop (samples), residual/skip channels, kernel, one stack's
    dilations, stacks, and the widths of the two k=3 convs after the skip sum. Defaults: the
    Ch. 7 model (2 x 8 dilations; Ch. 5 used dilations 1..32, N = 1,024, hop 256)."""

    frame_samples: int = 4096
    hop_samples: int = 2048
    channels: int = 16
    kernel_size: int = 3
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128)
    stacks: int = 2
    final: tuple[int, int] = (2048, 256)

    def __post_init__(self) -> None:
        check_framing(self.frame_samples, self.hop_samples)
        if self.kernel_size < 1 or self.kernel_size % 2 == 0:
            raise ValueError("kernel_size must be odd, so that 'same' padding is centred")
        if min(self.channels, self.stacks) < 1 or not self.dilations or min(self.dilations) < 1:
            raise ValueError("channels, stacks and dilations must be positive")
        if len(self.final) != 2 or min(self.final) < 1:
            raise ValueError("final must hold two positive widths")

    @property
    def margin(self) -> int:
        """Input samples each side of an output frame: the stack's and first conv's reach."""
        return (self.kernel_size - 1) // 2 * (1 + self.stacks * sum(self.dilations))

    @classmethod
    def from_dict(cls, data: dict) -> FFWaveNetConfig:
        return config_from_dict(cls, data, "feedforward WaveNet")


def supervised_stages(budgets: tuple[float, float] = (0.75, 0.25)) -> tuple[Stage, ...]:
    """MAE training, then fine-tuning at a quarter of the learning rate (fresh Adam)."""
    loss = MAELoss()
    return (
        Stage("supervised", loss=loss, budget=budgets[0]),
        Stage("finetune", loss=loss, lr_scale=0.25, budget=budgets[1]),
    )


class FFWaveNet(FramedModel):
    """Feedforward (non-causal, frame-based) WaveNet of the thesis."""

    family = "ffwavenet"
    config_class = FFWaveNetConfig
    native_sample_rate = 16000

    def __init__(self, config: FFWaveNetConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.setup_frames(
            config.frame_samples,
            config.hop_samples,
            margin=config.margin,
            width=max(config.channels, *config.final),
        )
        k, c = config.kernel_size, config.channels
        self.input = glorot_conv(self.channels + self.n_knobs, c, k)
        self.stack = GatedStack(c, k, config.dilations * config.stacks)
        self.post = nn.ModuleList(
            [
                glorot_conv(c, config.final[0], 3),
                glorot_conv(config.final[0], config.final[1], 3),
                glorot_conv(config.final[1], self.channels, 1),
            ]
        )

    @property
    def receptive_field(self) -> int:
        """Tighter than the frame bound: output position ``p`` sees input ``p - reach .. p +
        reach`` only, ``reach = m + 2`` (the two k=3 convs after the crop), so ``L + reach + 1``
        samples counted at the output index."""
        return self.latency_samples + self.frame_margin + 3

    def frame_net(self, frames: Tensor, knobs: Tensor) -> Tensor:
        b, f, c, span = frames.shape
        x = frames.reshape(b * f, c, span)
        if self.n_knobs:
            k = knobs[:, None, :, None].expand(b, f, -1, span).reshape(b * f, -1, span)
            x = torch.cat([x, k], dim=1)
        h = self.input(same_pad(x, self.config.kernel_size))
        s = torch.relu(self.stack(h, crop=self.frame_margin))
        s = torch.relu(self.post[0](same_pad(s, 3)))
        y = self.post[2](self.post[1](same_pad(s, 3)))
        return y.view(b, f, c, self.frame_samples)

    def training_stages(self) -> tuple[Stage, ...]:
        return supervised_stages()


__all__ = ["FFWaveNet", "FFWaveNetConfig", "supervised_stages"]
