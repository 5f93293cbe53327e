"""What CEQ, CAFx, CRAFx, CWAFx and CSAFx share: framing, the adaptive front-end with its tied
deConv1D, knob conditioning and the thesis' three-stage training protocol (MODELS.md §0.10).

Knobs: a FiLM layer (``z (1 + gamma) + beta`` per channel, from the knob values) on the
front-end's latent ``Z`` of every frame, before any latent network sees it. It exists only
when the model has knobs, so without knobs the parameter counts are Table C.1's.

Training protocol (``training_stages``), each stage a fresh Adam:

1. ``pretrain``: the front-end and deConv1D as an autoencoder (masked unpooling, MODELS.md
   §0.3) on dry and wet audio pooled, MAE, training only W1, W2, their biases and the deConv
   bias;
2. ``supervised``: the whole model, with the model's own loss;
3. ``finetune``: the same at a quarter of the learning rate (the code's lr/4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor, nn

from fxclone.models.afx_blocks import FiLM, FrontEnd
from fxclone.models.afx_frames import FramedModel, check_framing
from fxclone.models.afx_losses import MAELoss
from fxclone.models.base import Stage, config_from_dict

# The thesis code's training settings in fxclone's TrainConfig terms (MODELS.md §0.10): Adam at
# 1e-4 without decay, early stopping after 25 epochs without improvement, one recording (here:
# one training window) per batch. Each preset adds its window length.
THESIS_TRAINING: dict[str, Any] = {
    "learning_rate": 1e-4,
    "lr_decay": 1.0,
    "patience": 25,
    "batch_size": 1,
}

# Overrides giving a tiny front-end model for the contract tests: 32-sample frames, 4 filters.
THESIS_TINY: dict[str, Any] = {
    "frame_samples": 32,
    "hop_samples": 16,
    "filters": 4,
    "kernel_size": 8,
    "local_kernel_size": 16,
    "latent_steps": 8,
}


@dataclass(frozen=True)
class FrontEndConfig:
    """Frame ``N`` and hop ``H`` (samples at the model's rate), the front-end's filters and
    kernels, and the latent length (max-pool = ``N / latent_steps``, 64 in the thesis)."""

    frame_samples: int = 4096
    hop_samples: int = 2048
    filters: int = 32
    kernel_size: int = 64
    local_kernel_size: int = 128
    latent_steps: int = 64

    def __post_init__(self) -> None:
        check_framing(self.frame_samples, self.hop_samples)
        if min(self.filters, self.kernel_size, self.local_kernel_size, self.latent_steps) < 1:
            raise ValueError("filters, kernel sizes and latent_steps must be positive")
        if self.frame_samples % self.latent_steps:
            raise ValueError(
                f"frame_samples ({self.frame_samples}) must be a multiple of latent_steps "
                f"({self.latent_steps})"
            )

    @classmethod
    def from_dict(cls, data: dict) -> Any:
        return config_from_dict(cls, data, cls.__name__.removesuffix("Config"))


def pretrain_forward(model: Any, x: Tensor, knobs: Tensor, target: Tensor) -> Tensor:
    """The pretraining stage's forward: the autoencoder, framed and streamed like the model."""
    return model.frames_forward(x, knobs, model.autoencode)


def frontend_parameters(model: Any) -> Any:
    """What pretraining trains: W1, W2, their biases and the deConv bias."""
    return model.frontend.parameters()


class AFxModel(FramedModel):
    """A frame model built on the adaptive front-end; subclasses implement ``frame_net``
    with :meth:`encode` and :meth:`decode`."""

    native_sample_rate = 16000
    # Hann on the input frames instead of the output frames (CEQ, MODELS.md §1).
    ANALYSIS_WINDOW: ClassVar[bool] = False
    # Shares of the run's epochs and minutes: pretrain, supervised, finetune (0: no stage).
    STAGE_BUDGETS: ClassVar[tuple[float, float, float]] = (0.25, 0.5, 0.25)

    def __init__(self, config: FrontEndConfig, **kwargs: Any) -> None:
        super().__init__(config, **kwargs)
        self.setup_frames(
            config.frame_samples,
            config.hop_samples,
            context_frames=getattr(config, "context_frames", 0),
            analysis_window=self.ANALYSIS_WINDOW,
            width=config.filters,
        )
        self.pool = config.frame_samples // config.latent_steps
        self.frontend = FrontEnd(
            self.channels, config.filters, config.kernel_size, config.local_kernel_size, self.pool
        )
        self.film = FiLM(self.n_knobs, config.filters) if self.n_knobs else None

    def encode(self, frames: Tensor, knobs: Tensor) -> tuple[Tensor, Tensor]:
        """Input frames ``(B, F, channels, N)`` -> ``R`` of the output frames' centre frames
        ``(B * (F - 2k), filters, N)`` and the (knob-conditioned) latent of every frame
        ``Z (B, F, filters, latent_steps)``."""
        b, f, c, n = frames.shape
        k = self.context_frames
        r, _, z = self.frontend.encode(frames.reshape(b * f, c, n))
        z = z.view(b, f, *z.shape[1:])
        if self.film is not None:
            z = self.film(z, knobs)
        r = r.view(b, f, *r.shape[1:])[:, k : f - k]
        return r.reshape(-1, *r.shape[2:]), z

    def decode(self, x1: Tensor, batch: int) -> Tensor:
        """``X1hat (B * F', filters, N)`` -> output frames ``(B, F', channels, N)``."""
        y = self.frontend.decode(x1)
        return y.view(batch, -1, *y.shape[1:])

    def autoencode(self, frames: Tensor, knobs: Tensor) -> Tensor:
        """The pretraining network on the centre frames: same shapes as ``frame_net``."""
        b, f, c, n = frames.shape
        k = self.context_frames
        centre = frames[:, k : f - k].reshape(-1, c, n)
        return self.frontend.autoencode(centre).view(b, f - 2 * k, c, n)

    def supervised_loss(self) -> nn.Module:
        """The loss of the supervised and fine-tuning stages (waveform MAE unless overridden)."""
        return MAELoss()

    def training_stages(self) -> tuple[Stage, ...]:
        pre, sup, fine = self.STAGE_BUDGETS
        loss = self.supervised_loss()
        stages = [
            Stage(
                "pretrain",
                data="autoencoder",
                forward=pretrain_forward,
                loss=MAELoss(),
                parameters=frontend_parameters,
                budget=pre,
            ),
            Stage("supervised", loss=loss, budget=sup),
        ]
        if fine:
            stages.append(Stage("finetune", loss=loss, lr_scale=0.25, budget=fine))
        return tuple(stages)


__all__ = [
    "THESIS_TINY",
    "THESIS_TRAINING",
    "AFxModel",
    "FrontEndConfig",
    "frontend_parameters",
    "pretrain_forward",
]
